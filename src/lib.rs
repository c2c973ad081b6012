//! Typed web sessions that live entirely inside an encrypted cookie.
//!
//! The whole session (a value of your own type) is encoded with postcard
//! and sealed with XAES-256-GCM under a rotatable [`Keyring`]. Any number
//! of stateless server instances that share the keys can serve any user:
//! no session database, no sticky sessions. Lifetime (idle and absolute
//! timeouts) is enforced on the server from sealed timestamps; old keys
//! keep opening cookies after a rotation while every response re-seals
//! under the new one. A session too large for its cookie moves to a
//! [`SessionStore`] ([`MemoryStore`], or `RedisStore`,
//! `RedisClusterStore`, `PostgresStore` or `SqliteStore` with their
//! features), sealed there too, with a sealed pointer in the cookie.
//!
//! # Lifecycle of a request
//!
//! 1. [`Sessions::load`] reads the request's `Cookie` headers. A valid
//!    cookie gives its session; anything else (no cookie, garbage, expired,
//!    unknown key, tampered) gives a new session holding `T::default()`,
//!    with the reason in [`Session::rejection`]. A bad cookie is never an
//!    error and never a panic. A cookie that points at a store entry loads
//!    it; a store that cannot answer is an error ([`LoadError`]), never an
//!    empty session.
//! 2. The handler reads and changes the [`Session<T>`].
//! 3. [`Sessions::save`] writes one `Set-Cookie` only when needed: the value
//!    changed, the session was renewed or destroyed, the cookie was opened
//!    under an older key, or the rolling threshold passed. A sealed cookie
//!    over the size limit (4096 bytes of name plus value) goes to the store
//!    if one is configured; otherwise it is an error ([`SaveError`]) and no
//!    `Set-Cookie` is written, so the browser keeps the cookie it had.
//!    [`Session::destroy`] and [`Session::renew`] end the id the request
//!    loaded whatever the handler does after them (its store entry
//!    deleted, its id revoked when revocation is on) before any cookie is
//!    written; a request that raced another one's logout cannot bring the
//!    session back ([`SaveError::Ended`]). The rules, in order, are at the
//!    top of `src/sessions/save.rs`.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sealed_session::{Keyring, SessionConfig, Sessions};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Cart {
//!     items: Vec<String>,
//! }
//!
//! // SESSION_KEYS=primary,older,... (each from `Key::generate().to_base64url()`)
//! let keys: Keyring = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE".parse()?;
//! let sessions = Sessions::new(keys, SessionConfig::default())?;
//!
//! let request = http::HeaderMap::new();
//! let session = sessions.load::<Cart>(&request).await?;
//! session.update(|cart| cart.items.push("book".into()));
//!
//! let mut response = http::HeaderMap::new();
//! sessions.save(&session, &mut response).await?;
//! assert!(response.contains_key(http::header::SET_COOKIE));
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `tower`: `SessionLayer`, which loads before and saves after any
//!   tower service over `http` requests.
//! - `axum`: [`Session<T>`] as an axum extractor (with `tower`).
//! - `redis`: `RedisStore`, a [`SessionStore`] in Redis for many
//!   instances (brings in the `redis` client and tokio's timer).
//! - `redis-cluster`: `RedisClusterStore`, the same store in a Redis
//!   Cluster, keys spread over every master (with `redis`; adds the
//!   client's async cluster support).
//! - `postgres`: `PostgresStore`, a [`SessionStore`] in a PostgreSQL
//!   table, on the `sqlx::PgPool` the application already has (brings in
//!   `sqlx` 0.8 with its tokio runtime and PostgreSQL driver only).
//! - `sqlite`: `SqliteStore`, a [`SessionStore`] in a SQLite file that
//!   survives a restart, for a single instance (brings in `sqlx` 0.8 with
//!   its tokio runtime and SQLite, compiled in).
//!
//! # Security
//!
//! SECURITY.md in the repository documents the wire format byte by byte,
//! the threat model and the limits (a copied cookie replays until it
//! expires). In short: XAES-256-GCM with a 192-bit nonce, subkeys
//! per purpose derived with HKDF-SHA256, the cookie name (and the
//! application context, [`SessionConfig::with_context`]) bound into the
//! associated data, key bytes never in `Debug` and zeroized on drop.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod error;
mod rejection;
mod session;

mod crypto;
mod lifetime;
mod middleware;
mod schema;
mod sessions;
mod store;
mod wire;

pub use config::{DEFAULT_SIZE_LIMIT, SessionConfig};
pub use crypto::key::Key;
pub use crypto::keyring::{KeyId, KeyStats, Keyring};
pub use error::{ConfigError, KeyError, LoadError, SaveError};
pub use lifetime::clock::{Clock, ManualClock, SystemClock};
pub use lifetime::session_lifetime::SessionLifetime;
pub use rejection::Rejection;
pub use schema::versions::{Schema, SchemaStats};
pub use session::Session;
pub use sessions::import::{Import, ImportError, Imported, MAX_OLD_COOKIE_LEN};
pub use sessions::inspect::{Inspection, Refusal};
pub use sessions::rejection_log::{REJECTION_WARN_INTERVAL, RejectionStats};
pub use sessions::{MAX_CANDIDATES, Sessions};
pub use store::breaker::CircuitBreaker;
pub use store::memory::MemoryStore;
pub use store::{SessionStore, StoreError, StoreFuture, StoreKey, StoreMode};
pub use wire::attributes::SameSite;
pub use wire::envelope::SessionId;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use crate::middleware::axum::MissingSessionLayer;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use crate::middleware::tower::{ResponseFuture, SessionLayer, SessionService};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use crate::store::redis::RedisStore;
#[cfg(feature = "redis-cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
pub use crate::store::redis::cluster::RedisClusterStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use crate::store::sql::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use crate::store::sql::sqlite::SqliteStore;
