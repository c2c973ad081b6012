//! The counter app (`GET /` reads a counter from the session, adds one,
//! writes it back and answers `Visits: N`) on sealed-session and on its
//! peers, and each framework without sessions (answering the number of
//! requests it has served, in the same words).
//!
//! ```text
//! server KIND [--port PORT] [--requests N]
//! ```
//!
//! KIND is one of [`KINDS`]. Listens on `127.0.0.1:PORT` (default from
//! `PORT`, else 3000), one thread for the app (tokio's current-thread
//! runtime; actix-web with one worker). With `--requests N` it stops
//! after serving N requests (after the Nth answer, once the clients have
//! closed their connections) and exits with status 0, so that a profiler
//! around it writes its totals; without, it serves until killed.
//!
//! Cookies are not `Secure` (plain HTTP over loopback); everything else is
//! each library's default.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

/// Every server, `framework-sessions`.
const KINDS: [&str; 8] = [
    "hyper-none",
    "hyper-privatejar",
    "actix-none",
    "actix-session",
    "axum-none",
    "tower-sessions",
    "sealed-session",
    "sealed-session-read",
];

/// How long a stopping server waits for its clients to close.
const DRAIN: Duration = Duration::from_secs(10);

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("server: {message}");
    std::process::exit(2)
}

/// Requests served so far, the limit from `--requests`, and what is told
/// when the limit is reached.
struct Served {
    count: AtomicU64,
    limit: u64,
    done: Arc<Notify>,
}

static SERVED: OnceLock<Served> = OnceLock::new();

/// Counts one request (every handler calls this once); returns how many
/// have been served, this one included.
fn served() -> u64 {
    let served = SERVED.get().expect("SERVED is set before serving");
    let n = served.count.fetch_add(1, Ordering::Relaxed) + 1;
    if n == served.limit {
        served.done.notify_one();
    }
    n
}

/// Resolves when `--requests` have been served (never without it).
async fn limit_reached(done: Arc<Notify>) {
    done.notified().await;
}

fn visits(count: u64) -> String {
    format!("Visits: {count}\n")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| {
        fail(format!(
            "usage: server KIND [--port PORT] [--requests N]; KIND: {}",
            KINDS.join(", ")
        ))
    });
    if !KINDS.contains(&kind.as_str()) {
        fail(format!("unknown KIND {kind}; one of {}", KINDS.join(", ")));
    }
    let mut port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let mut limit = u64::MAX;
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(format!("{arg} needs a value")));
        match arg.as_str() {
            "--port" => port = value.parse().unwrap_or_else(|_| fail("bad --port")),
            "--requests" => limit = value.parse().unwrap_or_else(|_| fail("bad --requests")),
            _ => fail(format!("unknown argument {arg}")),
        }
    }
    let done = Arc::new(Notify::new());
    let _ = SERVED.set(Served {
        count: AtomicU64::new(0),
        limit,
        done: Arc::clone(&done),
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = std::net::TcpListener::bind(addr)
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    listener.set_nonblocking(true).unwrap();
    if kind.starts_with("actix") {
        actix::serve(&kind, listener, done);
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            if kind.starts_with("hyper") {
                plain_hyper::serve(&kind, listener, done).await
            } else {
                with_axum::serve(&kind, listener, done).await
            }
        });
    }
    let n = SERVED.get().unwrap().count.load(Ordering::Relaxed);
    eprintln!("server: {n} requests served");
}

/// hyper 1 alone, and with the `cookie` crate's `PrivateJar`.
mod plain_hyper {
    use std::convert::Infallible;
    use std::sync::Arc;

    use cookie::{Cookie, CookieJar, Key};
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::sync::Notify;
    use tokio::task::JoinSet;

    use super::{DRAIN, limit_reached, served, visits};

    fn text(body: String) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        response.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }

    fn none() -> Response<Full<Bytes>> {
        text(visits(served()))
    }

    /// The counter in a private (AES-256-GCM) cookie named `counter`.
    fn private_jar(request: &Request<Incoming>, key: &Key) -> Response<Full<Bytes>> {
        served();
        let mut jar = CookieJar::new();
        for header in request.headers().get_all(COOKIE) {
            let Ok(header) = header.to_str() else {
                continue;
            };
            for cookie in Cookie::split_parse(header).flatten() {
                jar.add_original(cookie.into_owned());
            }
        }
        let count = jar
            .private(key)
            .get("counter")
            .and_then(|c| c.value().parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        jar.private_mut(key).add(
            Cookie::build(("counter", count.to_string()))
                .path("/")
                .http_only(true)
                .same_site(cookie::SameSite::Lax),
        );
        let mut response = text(visits(count));
        for cookie in jar.delta() {
            response
                .headers_mut()
                .append(SET_COOKIE, cookie.to_string().parse().unwrap());
        }
        response
    }

    pub async fn serve(kind: &str, listener: tokio::net::TcpListener, done: Arc<Notify>) {
        let key = Arc::new(Key::generate());
        let jar = kind == "hyper-privatejar";
        let mut connections = JoinSet::new();
        let stop = limit_reached(done);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let key = Arc::clone(&key);
                    let service = service_fn(move |request: Request<Incoming>| {
                        let response = if jar { private_jar(&request, &key) } else { none() };
                        async move { Ok::<_, Infallible>(response) }
                    });
                    connections.spawn(
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service),
                    );
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = &mut stop => break,
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(DRAIN, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
    }
}

/// axum 0.8 alone, with tower-sessions (MemoryStore), and with
/// sealed-session (cookie mode): the counter, and a read-only counter.
mod with_axum {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::get;
    use axum::serve::ListenerExt;
    use sealed_session::{Key, Keyring, Session, SessionConfig, SessionLayer, Sessions};
    use serde::{Deserialize, Serialize};
    use tokio::sync::Notify;

    use super::{limit_reached, served, visits};

    /// What sealed-session's session holds.
    #[derive(Default, Serialize, Deserialize)]
    struct Visits {
        count: u64,
    }

    async fn none() -> String {
        visits(served())
    }

    async fn tower_sessions_counter(session: tower_sessions::Session) -> String {
        served();
        let count = session
            .get::<u64>("counter")
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
            + 1;
        session.insert("counter", count).await.unwrap();
        visits(count)
    }

    async fn sealed_counter(session: Session<Visits>) -> String {
        served();
        let count = session.update(|visits| {
            visits.count += 1;
            visits.count
        });
        visits(count)
    }

    /// Reads the counter and changes nothing, so nothing is sealed; a
    /// request without a session (the client's first) starts one at 1.
    async fn sealed_read(session: Session<Visits>) -> String {
        served();
        let count = if session.is_new() {
            session.update(|visits| {
                visits.count += 1;
                visits.count
            })
        } else {
            session.read(|visits| visits.count)
        };
        visits(count)
    }

    fn sessions() -> Sessions {
        let config = SessionConfig::default()
            .with_secure(false)
            .with_cookie_name("session");
        Sessions::new(Keyring::new(Key::generate()), config).expect("a valid configuration")
    }

    pub async fn serve(kind: &str, listener: tokio::net::TcpListener, done: Arc<Notify>) {
        let app = match kind {
            "axum-none" => Router::new().route("/", get(none)),
            "tower-sessions" => Router::new().route("/", get(tower_sessions_counter)).layer(
                tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
                    .with_secure(false),
            ),
            "sealed-session" => Router::new()
                .route("/", get(sealed_counter))
                .layer(SessionLayer::<Visits>::new(sessions())),
            "sealed-session-read" => Router::new()
                .route("/", get(sealed_read))
                .layer(SessionLayer::<Visits>::new(sessions())),
            _ => unreachable!("checked in main"),
        };
        let listener = listener.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        let serving = axum::serve(listener, app).with_graceful_shutdown(limit_reached(done));
        serving.await.unwrap();
    }
}

/// actix-web 4 alone, and with actix-session's `CookieSessionStore`
/// (private, AES-256-GCM cookie).
mod actix {
    use std::sync::Arc;

    use actix_session::storage::CookieSessionStore;
    use actix_session::{Session, SessionMiddleware};
    use actix_web::cookie::Key;
    use actix_web::{App, HttpResponse, HttpServer, web};
    use tokio::sync::Notify;

    use super::{DRAIN, limit_reached, served, visits};

    fn text(body: String) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(body)
    }

    async fn none() -> HttpResponse {
        text(visits(served()))
    }

    async fn counter(session: Session) -> HttpResponse {
        served();
        let count = session.get::<u64>("counter").ok().flatten().unwrap_or(0) + 1;
        session.insert("counter", count).unwrap();
        text(visits(count))
    }

    pub fn serve(kind: &str, listener: std::net::TcpListener, done: Arc<Notify>) {
        let with_session = kind == "actix-session";
        actix_web::rt::System::new().block_on(async move {
            let server = if with_session {
                let key = Key::generate();
                HttpServer::new(move || {
                    App::new()
                        .wrap(
                            SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                                .cookie_secure(false)
                                .build(),
                        )
                        .route("/", web::get().to(counter))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(DRAIN.as_secs())
                .listen(listener)
                .unwrap()
                .run()
            } else {
                HttpServer::new(|| App::new().route("/", web::get().to(none)))
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(DRAIN.as_secs())
                    .listen(listener)
                    .unwrap()
                    .run()
            };
            let handle = server.handle();
            actix_web::rt::spawn(async move {
                limit_reached(done).await;
                handle.stop(true).await;
            });
            server.await.unwrap();
        });
    }
}
