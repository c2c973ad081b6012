//! PostgreSQL stopped mid-run under the cart app, over real HTTP, in
//! cookie mode (the store holds only the sessions too big for their
//! cookie) and in server mode (the store holds every session):
//! store-held sessions get 503 without Set-Cookie, cookie-held sessions
//! keep working, and once the server is back everything is there with
//! nothing overwritten.

mod common;

#[path = "../examples/cart.rs"]
mod cart;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::{Jar, Reply};
use common::postgres_server::PostgresServer;
use common::{plain_http, serve};
use http::Method;
use sealed_session::{PostgresStore, SessionConfig, StoreMode};

async fn start(store: &PostgresStore, mode: StoreMode) -> SocketAddr {
    let config = SessionConfig::default()
        .with_store(store.clone())
        .with_store_mode(mode);
    serve(cart::app(plain_http(config))).await
}

async fn add(jar: &mut Jar, addr: SocketAddr, item: &str, bytes: usize) -> Reply {
    let path = format!("/cart/add?item={item}&bytes={bytes}");
    jar.send(addr, Method::POST, &path).await
}

async fn listing(jar: &mut Jar, addr: SocketAddr) -> String {
    let reply = jar.send(addr, Method::GET, "/cart").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// Reads and writes of a store-held session are refused with 503 and no
/// cookie; the browser keeps the cookie it had.
async fn assert_refused(jar: &mut Jar, addr: SocketAddr) {
    let before = jar.pair.clone();
    for (method, path) in [
        (Method::GET, "/cart"),
        (Method::POST, "/cart/add?item=lost&bytes=10"),
    ] {
        let reply = jar.send(addr, method, path).await;
        assert_eq!(reply.status, 503, "{path}");
        assert!(reply.set_cookies.is_empty());
    }
    assert_eq!(jar.pair, before);
}

#[tokio::test]
async fn a_stopped_postgres_is_a_503_cookie_sessions_go_on_and_nothing_is_overwritten() {
    let server = PostgresServer::start();
    let store = PostgresStore::connect(&server.url())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    store.migrate().await.unwrap();
    let cookie_mode = start(&store, StoreMode::Cookie).await;
    let server_mode = start(&store, StoreMode::Server).await;

    let (mut small, mut big, mut held) = (Jar::default(), Jar::default(), Jar::default());
    assert_eq!(add(&mut small, cookie_mode, "pen", 10).await.status, 200);
    for i in 0..5 {
        assert_eq!(
            add(&mut big, cookie_mode, &format!("b{i}"), 1000)
                .await
                .status,
            200
        );
    }
    for i in 0..2 {
        assert_eq!(
            add(&mut held, server_mode, &format!("s{i}"), 10)
                .await
                .status,
            200
        );
    }
    assert!(
        listing(&mut big, cookie_mode)
            .await
            .starts_with("5 items, session in the store")
    );
    assert!(
        listing(&mut held, server_mode)
            .await
            .starts_with("2 items, session in the store")
    );

    server.stop();
    assert_refused(&mut big, cookie_mode).await;
    assert_refused(&mut held, server_mode).await;
    // Cookie-held: reads and writes go on.
    assert_eq!(add(&mut small, cookie_mode, "ink", 10).await.status, 200);
    assert!(
        listing(&mut small, cookie_mode)
            .await
            .starts_with("2 items, session in the cookie")
    );
    // Growing past the cookie needs the store: refused, cart unchanged.
    let reply = add(&mut small, cookie_mode, "huge", 5000).await;
    assert_eq!(reply.status, 503);
    assert!(reply.set_cookies.is_empty());
    // A new visitor in server mode cannot get a session either.
    let reply = add(&mut Jar::default(), server_mode, "new", 10).await;
    assert_eq!(reply.status, 503);

    server.start_again();
    // The pool reconnects; bounded retries while it does.
    let mut reply = big.send(cookie_mode, Method::GET, "/cart").await;
    // Up to 10 s: the circuit breaker, open after the failures above,
    // probes after 1, 2, 4 s.
    for _ in 0..100 {
        if reply.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        reply = big.send(cookie_mode, Method::GET, "/cart").await;
    }
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.starts_with("5 items, session in the store"),
        "{}",
        reply.body
    );
    let held_back = listing(&mut held, server_mode).await;
    assert!(
        held_back.starts_with("2 items, session in the store"),
        "{held_back}"
    );
    for body in [&reply.body, &held_back] {
        assert!(!body.contains("lost"), "{body}");
    }
    assert!(
        listing(&mut small, cookie_mode)
            .await
            .starts_with("2 items, session in the cookie")
    );
    // And the store-held carts take writes again.
    assert_eq!(add(&mut big, cookie_mode, "b5", 10).await.status, 200);
    assert_eq!(add(&mut held, server_mode, "s2", 10).await.status, 200);
    assert!(listing(&mut big, cookie_mode).await.starts_with("6 items"));
    assert!(listing(&mut held, server_mode).await.starts_with("3 items"));
}
