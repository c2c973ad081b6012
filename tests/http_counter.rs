//! End to end over real HTTP on loopback: the `counter` example's app.

mod common;

#[path = "../examples/counter.rs"]
mod counter;

use std::net::SocketAddr;

use common::client::{get, pair};
use common::{Server, sessions_from_keys};
use sealed_session::Key;

/// Starts the counter app on `addr` with sessions from a key text.
async fn start(addr: SocketAddr, keys: &str) -> Server {
    Server::start(addr, counter::app(sessions_from_keys(keys))).await
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
    let server = start("127.0.0.1:0".parse().unwrap(), &keys).await;
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
    let server = start(addr, &keys).await;
    let (four, _) = visit(server.addr, cookie.as_deref()).await;
    assert_eq!(four, 4);
    server.stop().await;

    // Restart with another key: the old cookie starts over.
    let other = Key::generate().to_base64url();
    let server = start(addr, &other).await;
    assert_eq!(visit(server.addr, cookie.as_deref()).await.0, 1);
    server.stop().await;
}
