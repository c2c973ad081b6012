//! The cart example over real HTTP: a session that outgrows its cookie
//! moves to the store and back, and no cookie ever exceeds 4096 bytes.

mod common;

#[path = "../examples/cart.rs"]
mod cart;

use std::net::SocketAddr;

use common::client::Jar;
use common::{plain_http, serve};
use http::Method;
use sealed_session::{MemoryStore, SessionConfig};

/// Serves the cart app on a free loopback port; the server stops with the
/// test's runtime.
async fn start(config: SessionConfig) -> SocketAddr {
    serve(cart::app(plain_http(config))).await
}

#[tokio::test]
async fn a_cart_grows_past_4_kb_into_the_store_and_comes_back() {
    let addr = start(SessionConfig::default().with_store(MemoryStore::new())).await;
    let mut jar = Jar::default();
    for i in 0..6 {
        let reply = jar
            .send(
                addr,
                Method::POST,
                &format!("/cart/add?item=item{i}&bytes=1000"),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let listing = jar.send(addr, Method::GET, "/cart").await.body;
    assert!(
        listing.starts_with("6 items, session in the store"),
        "{listing}"
    );
    for i in 0..6 {
        assert!(
            listing.contains(&format!("- item{i} (1000 bytes of notes)")),
            "{listing}"
        );
    }
    // A small cart goes back into the cookie.
    jar.send(addr, Method::POST, "/cart/clear").await;
    jar.send(addr, Method::POST, "/cart/add?item=pen&bytes=10")
        .await;
    let listing = jar.send(addr, Method::GET, "/cart").await.body;
    assert!(
        listing.starts_with("1 items, session in the cookie"),
        "{listing}"
    );
    // Logout removes the cookie.
    let reply = jar.send(addr, Method::GET, "/logout").await;
    assert_eq!(reply.status, 200);
    assert!(jar.pair.is_none());
    assert!(
        jar.send(addr, Method::GET, "/cart")
            .await
            .body
            .starts_with("0 items")
    );
}

#[tokio::test]
async fn without_a_store_an_oversized_cart_is_a_500_and_the_old_cart_stays() {
    let addr = start(SessionConfig::default()).await;
    let mut jar = Jar::default();
    for i in 0..2 {
        assert_eq!(
            jar.send(
                addr,
                Method::POST,
                &format!("/cart/add?item=i{i}&bytes=1000")
            )
            .await
            .status,
            200
        );
    }
    let reply = jar
        .send(addr, Method::POST, "/cart/add?item=big&bytes=3000")
        .await;
    assert_eq!(reply.status, 500);
    assert!(reply.set_cookies.is_empty());
    assert!(
        jar.send(addr, Method::GET, "/cart")
            .await
            .body
            .starts_with("2 items, session in the cookie")
    );
}
