//! End to end over real HTTP on loopback: the `counter` example's app.

mod common;

#[path = "../examples/counter.rs"]
mod counter;

use std::net::SocketAddr;

use common::client::{get, pair};
use sealed_session::{Key, SessionConfig, Sessions};
use tokio::sync::oneshot;

/// A running server; dropping the handle's sender stops it.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Starts the counter app on `addr` (port 0 for any), with sessions
    /// built from a `SESSION_KEYS` text as a fresh process would.
    async fn start(addr: SocketAddr, keys: &str) -> Server {
        let sessions = Sessions::new(
            keys.parse::<sealed_session::Keyring>().unwrap(),
            SessionConfig::default()
                .with_secure(false)
                .with_cookie_name("session"),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, counter::app(sessions))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap();
    }
}

/// Sends `GET /` with `cookie`; returns the count and the cookie to send
/// next (the new one if the server set one).
async fn visit(addr: SocketAddr, cookie: Option<&str>) -> (u64, Option<String>) {
    let reply = get(addr, "/", cookie).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.set_cookies.len() <= 1);
    let count = reply
        .body
        .trim()
        .strip_prefix("Visits: ")
        .unwrap_or_else(|| panic!("unexpected body {:?}", reply.body))
        .parse()
        .unwrap();
    let next = reply
        .set_cookies
        .first()
        .map(|c| pair(c))
        .or(cookie.map(str::to_owned));
    (count, next)
}

#[tokio::test]
async fn count_rises_with_the_cookie_restarts_without_and_survives_a_restart() {
    let keys = Key::generate().to_base64url();
    let server = Server::start("127.0.0.1:0".parse().unwrap(), &keys).await;
    let addr = server.addr;

    let (one, cookie) = visit(addr, None).await;
    let (two, cookie) = visit(addr, cookie.as_deref()).await;
    let (three, cookie) = visit(addr, cookie.as_deref()).await;
    assert_eq!((one, two, three), (1, 2, 3));

    // No cookie: a new session.
    assert_eq!(visit(addr, None).await.0, 1);
    // A garbage cookie: a new session, not an error.
    assert_eq!(visit(addr, Some("session=garbage")).await.0, 1);

    // Restart with the same key: the count goes on.
    server.stop().await;
    let server = Server::start(addr, &keys).await;
    let (four, _) = visit(server.addr, cookie.as_deref()).await;
    assert_eq!(four, 4);
    server.stop().await;

    // Restart with another key: the old cookie starts over.
    let other = Key::generate().to_base64url();
    let server = Server::start(addr, &other).await;
    assert_eq!(visit(server.addr, cookie.as_deref()).await.0, 1);
    server.stop().await;
}
