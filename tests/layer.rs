//! The tower layer and the axum extractor, driven in-process.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::{Request, StatusCode};
use sealed_session::{ManualClock, Session, SessionLayer};
use tower::ServiceExt as _;

fn app(clock: &ManualClock) -> Router {
    Router::new()
        .route(
            "/grow",
            get(|session: Session<Vec<u8>>| async move {
                session.update(|v| v.extend([0u8; 2000]));
                "grew"
            }),
        )
        .route(
            "/len",
            get(|session: Session<Vec<u8>>| async move { session.read(|v| v.len()).to_string() }),
        )
        .layer(SessionLayer::<Vec<u8>>::new(sessions(&[1], clock)))
}

async fn call(app: &Router, path: &str, cookie: Option<&str>) -> http::Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_save_error_is_a_500_without_set_cookie_and_the_old_cookie_still_works() {
    let clock = ManualClock::new(START);
    let app = app(&clock);
    let first = call(&app, "/grow", None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = client_pair(&first);

    // 4000 bytes cannot fit in 4096 once sealed and encoded.
    let second = call(&app, "/grow", Some(&cookie)).await;
    assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(second.headers().get(http::header::SET_COOKIE).is_none());

    let len = call(&app, "/len", Some(&cookie)).await;
    let body = axum::body::to_bytes(len.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"2000");
}

#[tokio::test]
async fn the_extractor_without_its_layer_is_a_500() {
    let app: Router =
        Router::new().route("/", get(|_session: Session<u32>| async { "unreachable" }));
    let response = call(&app, "/", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn the_layer_wraps_a_plain_tower_service() {
    let clock = ManualClock::new(START);
    let service = tower::service_fn(|request: Request<()>| async move {
        let session = request.extensions().get::<Session<u32>>().unwrap().clone();
        session.update(|n| *n += 1);
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let service = tower::ServiceBuilder::new()
        .layer(SessionLayer::<u32>::new(sessions(&[1], &clock)))
        .service(service);
    let response = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(
        response
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .count(),
        1
    );
}

fn client_pair(response: &http::Response<Body>) -> String {
    let set_cookie = response.headers()[http::header::SET_COOKIE]
        .to_str()
        .unwrap();
    common::client::pair(set_cookie)
}

/// An inner service that must be polled ready before each call (like a
/// concurrency or rate limit); a clone starts not ready. Answers `Err` on
/// `/fail`, and counts the session on other paths.
#[derive(Default)]
struct MustBeReady {
    ready: bool,
}

impl Clone for MustBeReady {
    fn clone(&self) -> Self {
        MustBeReady { ready: false }
    }
}

impl tower::Service<Request<()>> for MustBeReady {
    type Response = http::Response<String>;
    type Error = &'static str;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.ready = true;
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let was_ready = std::mem::take(&mut self.ready);
        std::future::ready(if !was_ready {
            Err("called without poll_ready")
        } else if request.uri().path() == "/fail" {
            Err("inner failure")
        } else {
            let session = request.extensions().get::<Session<u32>>().unwrap();
            let count = session.update(|n| {
                *n += 1;
                *n
            });
            Ok(http::Response::new(count.to_string()))
        })
    }
}

/// Sessions for both ways the layer runs: inline (no store) and in a
/// boxed future (a store).
fn both_paths() -> [(&'static str, sealed_session::Sessions); 2] {
    let clock = ManualClock::new(START);
    let store = config(&clock).with_store(sealed_session::MemoryStore::new());
    [
        ("no store", sessions(&[1], &clock)),
        (
            "store",
            sealed_session::Sessions::new(ring(&[1]), store).unwrap(),
        ),
    ]
}

/// Without a store the layer runs inline, with one it runs a boxed future:
/// both must call the inner service that was polled ready, pass its errors
/// through untouched (no cookie written), and keep the session going.
#[tokio::test]
async fn readiness_and_inner_errors_with_and_without_a_store() {
    use tower::Service as _;

    for (label, sessions) in both_paths() {
        let mut service = tower::ServiceBuilder::new()
            .layer(SessionLayer::<u32>::new(sessions))
            .service(MustBeReady::default());
        let mut cookie: Option<String> = None;
        for expected in 1..=3u32 {
            let mut request = Request::get("/").body(()).unwrap();
            if let Some(cookie) = &cookie {
                request
                    .headers_mut()
                    .insert(http::header::COOKIE, cookie.parse().unwrap());
            }
            let response = service.ready().await.unwrap().call(request).await;
            let response = response.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(response.body(), &expected.to_string(), "{label}");
            let set_cookie = response.headers()[http::header::SET_COOKIE]
                .to_str()
                .unwrap();
            cookie = Some(common::client::pair(set_cookie));

            let mut failing = Request::get("/fail").body(()).unwrap();
            failing.headers_mut().insert(
                http::header::COOKIE,
                cookie.as_deref().unwrap().parse().unwrap(),
            );
            let failed = service.ready().await.unwrap().call(failing).await;
            assert_eq!(failed.unwrap_err(), "inner failure", "{label}");
        }
    }
}

/// A handler for the cache rules, told what to do by the request: header
/// `x-act` (`none`, `read`, `set`: add one, or `destroy`) says what it
/// does to the session; every `x-vary` and `x-cache-control` line is copied to its
/// response as `Vary` and `Cache-Control`.
async fn cache_handler(
    request: Request<()>,
) -> Result<http::Response<String>, std::convert::Infallible> {
    let headers = request.headers();
    let session = request.extensions().get::<Session<u32>>().unwrap();
    match headers.get("x-act").map(|v| v.as_bytes()) {
        Some(b"read") => drop(session.get()),
        Some(b"set") => session.update(|n| *n += 1),
        Some(b"destroy") => session.destroy(),
        _ => {}
    }
    let mut response = http::Response::new(String::new());
    for (from, to) in [
        ("x-vary", http::header::VARY),
        ("x-cache-control", http::header::CACHE_CONTROL),
    ] {
        for value in headers.get_all(from) {
            response.headers_mut().append(to.clone(), value.clone());
        }
    }
    Ok(response)
}

/// What a request brings: its session cookie.
#[derive(Clone, Copy, Debug)]
enum Brings {
    Nothing,
    AnotherCookie,
    Garbage,
    Valid,
}

/// One request to `service` with `brings`, the action and the handler's
/// own headers; returns the response's `Vary` and `Cache-Control` lines
/// and whether it set the session cookie.
async fn cache_headers<S>(
    service: &S,
    brings: Brings,
    valid: &str,
    act: &str,
    vary: &[&str],
    cache_control: &[&str],
) -> (Vec<String>, Vec<String>, bool)
where
    S: tower::Service<Request<()>, Response = http::Response<String>> + Clone,
    S::Error: std::fmt::Debug,
{
    let mut request = Request::get("/").header("x-act", act);
    request = match brings {
        Brings::Nothing => request,
        Brings::AnotherCookie => request.header(http::header::COOKIE, "theme=dark"),
        Brings::Garbage => request.header(http::header::COOKIE, "__Host-session=garbage"),
        Brings::Valid => request.header(http::header::COOKIE, valid),
    };
    for value in vary {
        request = request.header("x-vary", *value);
    }
    for value in cache_control {
        request = request.header("x-cache-control", *value);
    }
    let response = service
        .clone()
        .oneshot(request.body(()).unwrap())
        .await
        .unwrap();
    let lines = |name| -> Vec<String> {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let set_cookie = response.headers().contains_key(http::header::SET_COOKIE);
    (
        lines(http::header::VARY),
        lines(http::header::CACHE_CONTROL),
        set_cookie,
    )
}

/// Header lines.
type Lines = &'static [&'static str];

/// The cache rules of `SessionLayer` ("Caches" in its docs), with and
/// without a store (the inline and the boxed paths): `Vary: Cookie` when
/// the request carried the session cookie or the cookie is set,
/// `Cache-Control: private` when it is set, merged into the handler's own.
#[tokio::test]
async fn responses_that_depend_on_the_session_are_kept_from_shared_caches() {
    use Brings::*;

    #[rustfmt::skip]
    let cases: &[(Brings, &str, Lines, Lines, Lines, Lines, bool)] = &[
        // (request, act, handler's Vary, handler's Cache-Control,
        //  expected Vary, expected Cache-Control, sets the cookie)
        (Nothing, "none", &[], &[], &[], &[], false),
        (AnotherCookie, "none", &["Accept-Encoding"], &["public, max-age=60"],
            &["Accept-Encoding"], &["public, max-age=60"], false),
        (Valid, "read", &[], &[], &["Cookie"], &[], false),
        (Valid, "none", &[], &[], &["Cookie"], &[], false),
        // A cookie that can never open is removed (`load.rs`).
        (Garbage, "none", &[], &[], &["Cookie"], &["private"], true),
        (Nothing, "set", &[], &[], &["Cookie"], &["private"], true),
        (Valid, "set", &[], &[], &["Cookie"], &["private"], true),
        (Valid, "destroy", &[], &[], &["Cookie"], &["private"], true),
        // The handler's Vary is kept, Cookie added once, `*` left alone.
        (Valid, "read", &["Accept-Encoding"], &[], &["Accept-Encoding, Cookie"], &[], false),
        (Nothing, "set", &["Accept-Encoding", "Origin"], &[],
            &["Accept-Encoding, Origin, Cookie"], &["private"], true),
        (Valid, "read", &["Accept-Encoding, cookie"], &[], &["Accept-Encoding, cookie"], &[], false),
        (Valid, "set", &["*"], &[], &["*"], &["private"], true),
        // Without a cookie set, the handler's Cache-Control is its own.
        (Valid, "read", &[], &["public, max-age=60"], &["Cookie"], &["public, max-age=60"], false),
        // With one: private, and never public or s-maxage.
        (Nothing, "set", &[], &["public, max-age=60"], &["Cookie"], &["max-age=60, private"], true),
        (Valid, "set", &[], &["max-age=60", "S-Maxage=600"], &["Cookie"], &["max-age=60, private"], true),
        (Valid, "destroy", &[], &["no-cache"], &["Cookie"], &["no-cache, private"], true),
        (Nothing, "set", &[], &["private=\"Set-Cookie, X-Id\", max-age=60"],
            &["Cookie"], &["max-age=60, private"], true),
        (Nothing, "set", &[], &["no-cache=\"Set-Cookie, X-Id\""],
            &["Cookie"], &["no-cache=\"Set-Cookie, X-Id\", private"], true),
        (Nothing, "set", &[], &["public, private"], &["Cookie"], &["private"], true),
        (Nothing, "set", &[], &["no-store, public"], &["Cookie"], &["no-store, public"], true),
        (Nothing, "set", &[], &["Private", "max-age=0"], &["Cookie"], &["Private", "max-age=0"], true),
    ];
    for (label, sessions) in both_paths() {
        let service = tower::ServiceBuilder::new()
            .layer(SessionLayer::<u32>::new(sessions))
            .service_fn(cache_handler);
        let first = service
            .clone()
            .oneshot(Request::get("/").header("x-act", "set").body(()).unwrap())
            .await
            .unwrap();
        let valid =
            common::client::pair(first.headers()[http::header::SET_COOKIE].to_str().unwrap());
        for &(brings, act, vary, cache_control, want_vary, want_cc, want_set) in cases {
            let got = cache_headers(&service, brings, &valid, act, vary, cache_control).await;
            let want = (
                want_vary.iter().map(|s| s.to_string()).collect(),
                want_cc.iter().map(|s| s.to_string()).collect(),
                want_set,
            );
            assert_eq!(
                got, want,
                "{label}: {brings:?} {act} {vary:?} {cache_control:?}"
            );
        }
    }
}

/// Over real HTTP, as a cache would see it: one `Vary` line with the
/// handler's field and `Cookie`, one `Cache-Control` line, private.
#[tokio::test]
async fn over_http_a_response_setting_the_cookie_carries_the_cache_rule() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let clock = ManualClock::new(START);
    let sessions = common::plain_http(config(&clock));
    let app = Router::new()
        .route(
            "/",
            get(|session: Session<u32>| async move {
                session.set(1);
                (
                    [
                        (http::header::VARY, "Accept-Encoding"),
                        (http::header::CACHE_CONTROL, "public, max-age=60"),
                    ],
                    "set",
                )
            }),
        )
        .layer(SessionLayer::<u32>::new(sessions));
    let addr = serve(app).await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let head = reply.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    let lines = |name: &str| -> Vec<&str> {
        head.lines()
            .filter_map(|line| line.strip_prefix(name))
            .collect()
    };
    assert_eq!(lines("vary: "), ["accept-encoding, cookie"], "{reply}");
    assert_eq!(lines("cache-control: "), ["max-age=60, private"], "{reply}");
    assert_eq!(lines("set-cookie: ").len(), 1, "{reply}");
}
