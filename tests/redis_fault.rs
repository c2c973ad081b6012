//! Redis killed mid-run under the cart app, over real HTTP: store-held
//! sessions get 503 without Set-Cookie, cookie-held sessions keep working,
//! and after a restart everything is back with nothing overwritten.

mod common;

#[path = "../examples/cart.rs"]
mod cart;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::Jar;
use common::redis_server::RedisServer;
use common::{plain_http, serve};
use http::Method;
use sealed_session::{RedisStore, SessionConfig};

async fn start(store: RedisStore) -> SocketAddr {
    let store = store.with_timeout(Duration::from_millis(300));
    serve(cart::app(plain_http(
        SessionConfig::default().with_store(store),
    )))
    .await
}

#[tokio::test]
async fn a_killed_redis_is_a_503_cookie_sessions_go_on_and_nothing_is_overwritten() {
    let mut redis = RedisServer::start_persistent();
    let addr = start(RedisStore::connect(&redis.url()).await.unwrap()).await;

    let (mut small, mut big) = (Jar::default(), Jar::default());
    assert_eq!(
        small
            .send(addr, Method::POST, "/cart/add?item=pen&bytes=10")
            .await
            .status,
        200
    );
    for i in 0..5 {
        let reply = big
            .send(
                addr,
                Method::POST,
                &format!("/cart/add?item=b{i}&bytes=1000"),
            )
            .await;
        assert_eq!(reply.status, 200);
    }
    assert!(
        big.send(addr, Method::GET, "/cart")
            .await
            .body
            .starts_with("5 items, session in the store")
    );
    let big_cookie = big.pair.clone();

    redis.kill();
    // Store-held: 503, no Set-Cookie, for reads and writes.
    for (method, path) in [
        (Method::GET, "/cart"),
        (Method::POST, "/cart/add?item=lost&bytes=10"),
    ] {
        let reply = big.send(addr, method, path).await;
        assert_eq!(reply.status, 503, "{path}");
        assert!(reply.set_cookies.is_empty());
    }
    assert_eq!(big.pair, big_cookie);
    // Cookie-held: still works, reads and writes.
    assert_eq!(
        small
            .send(addr, Method::POST, "/cart/add?item=ink&bytes=10")
            .await
            .status,
        200
    );
    assert!(
        small
            .send(addr, Method::GET, "/cart")
            .await
            .body
            .starts_with("2 items, session in the cookie")
    );
    // Growing past the cookie needs the store: refused, cart unchanged.
    let reply = small
        .send(addr, Method::POST, "/cart/add?item=huge&bytes=5000")
        .await;
    assert_eq!(reply.status, 503);
    assert!(reply.set_cookies.is_empty());

    redis.restart();
    // The connection manager reconnects; bounded retries while it does.
    let mut listing = big.send(addr, Method::GET, "/cart").await;
    // Up to 10 s: the circuit breaker, open after the failures above,
    // probes after 1, 2, 4 s.
    for _ in 0..100 {
        if listing.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        listing = big.send(addr, Method::GET, "/cart").await;
    }
    assert_eq!(listing.status, 200);
    assert!(
        listing.body.starts_with("5 items, session in the store"),
        "{}",
        listing.body
    );
    assert!(!listing.body.contains("lost"));
    assert!(
        small
            .send(addr, Method::GET, "/cart")
            .await
            .body
            .starts_with("2 items, session in the cookie")
    );
    // And the store-held cart takes writes again.
    assert_eq!(
        big.send(addr, Method::POST, "/cart/add?item=b5&bytes=10")
            .await
            .status,
        200
    );
    assert!(
        big.send(addr, Method::GET, "/cart")
            .await
            .body
            .starts_with("6 items")
    );
}
