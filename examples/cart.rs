//! A shopping cart that outgrows its cookie and moves to the server store.
//!
//! - `POST /cart/add?item=NAME&bytes=N` adds an item with N bytes of notes
//!   (N at most 65536);
//! - `GET /cart` lists the items and says whether the session lives in the
//!   cookie or in the store;
//! - `POST /cart/clear` empties the cart (back into the cookie);
//! - `GET /logout` destroys the session (and its store entry).
//!
//! The store is a `MemoryStore`, or Redis when `REDIS_URL` is set.
//! `SESSION_MODE=server` keeps every session in the store (the classic
//! design); the default `cookie` uses the store only when needed.
//!
//! ```sh
//! SESSION_SECURE=0 cargo run --example cart --features axum,redis
//! curl -c jar -b jar -X POST 'http://127.0.0.1:3000/cart/add?item=book&bytes=3000'
//! curl -c jar -b jar -X POST 'http://127.0.0.1:3000/cart/add?item=lamp&bytes=3000'
//! curl -c jar -b jar http://127.0.0.1:3000/cart
//! ```

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::{get, post};
use sealed_session::{
    MemoryStore, RedisStore, Session, SessionConfig, SessionLayer, Sessions, StoreMode,
};
use serde::{Deserialize, Serialize};

/// What the session holds.
#[derive(Default, Serialize, Deserialize)]
pub struct Cart {
    items: Vec<Item>,
}

#[derive(Serialize, Deserialize)]
struct Item {
    name: String,
    notes: String,
}

#[derive(Deserialize)]
struct Add {
    item: String,
    #[serde(default)]
    bytes: usize,
}

/// The most notes one item may carry.
const MAX_NOTES: usize = 65536;

/// The cart app; tests serve it too.
pub fn app(sessions: Sessions) -> Router {
    Router::new()
        .route("/cart", get(list))
        .route("/cart/add", post(add))
        .route("/cart/clear", post(clear))
        .route("/logout", get(logout))
        .layer(SessionLayer::<Cart>::new(sessions))
}

async fn list(session: Session<Cart>) -> String {
    let place = if session.in_store() {
        "store"
    } else {
        "cookie"
    };
    session.read(|cart| {
        let mut out = format!("{} items, session in the {place}\n", cart.items.len());
        for item in &cart.items {
            let _ = writeln!(out, "- {} ({} bytes of notes)", item.name, item.notes.len());
        }
        out
    })
}

async fn add(
    session: Session<Cart>,
    Query(add): Query<Add>,
) -> Result<String, (StatusCode, String)> {
    if add.bytes > MAX_NOTES || add.item.is_empty() || add.item.len() > 100 {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("item must be 1-100 bytes, notes at most {MAX_NOTES}\n"),
        ));
    }
    let count = session.update(|cart| {
        cart.items.push(Item {
            name: add.item,
            notes: "n".repeat(add.bytes),
        });
        cart.items.len()
    });
    Ok(format!("{count} items\n"))
}

async fn clear(session: Session<Cart>) -> &'static str {
    session.set(Cart::default());
    "cart cleared\n"
}

async fn logout(session: Session<Cart>) -> &'static str {
    session.destroy();
    "logged out\n"
}

/// `SESSION_MODE` and the store: Redis at `REDIS_URL`, else in memory.
pub async fn with_store(config: SessionConfig) -> SessionConfig {
    let mode = match std::env::var("SESSION_MODE").as_deref() {
        Ok("server") => StoreMode::Server,
        Ok("cookie") | Err(_) => StoreMode::Cookie,
        Ok(other) => {
            eprintln!("error: SESSION_MODE={other}: use cookie or server");
            std::process::exit(2)
        }
    };
    let config = config.with_store_mode(mode);
    match std::env::var("REDIS_URL") {
        Ok(url) => match RedisStore::connect(&url).await {
            Ok(store) => config.with_store(store),
            Err(e) => {
                eprintln!("error: REDIS_URL={url}: {e}");
                std::process::exit(2)
            }
        },
        Err(_) => config.with_store(MemoryStore::new()),
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    common::init_logging();
    let config = with_store(common::config()).await;
    let sessions = Sessions::new(common::keyring(), config).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2)
    });
    common::serve("cart", app(sessions)).await;
}
