//! The server store behind the cookie: the [`SessionStore`] trait.
//!
//! A store is used only when a session is too large for its cookie (mode
//! [`StoreMode::Cookie`](crate::StoreMode::Cookie), the default), for every
//! session (mode [`StoreMode::Server`](crate::StoreMode::Server)), and for
//! the revocation list when revocation is on. What it holds is sealed with
//! its own subkey and bound to its key: a dump of the store neither
//! reveals nor allows forging a session.
//!
//! The folder holds the trait and one module per back end: `memory`
//! ([`MemoryStore`](crate::MemoryStore)), `redis` (`RedisStore`, with
//! `redis::cluster` for `RedisClusterStore` and `redis::routing` for its
//! slot map) and `sql` (what `PostgresStore` and `SqliteStore` share, with
//! `sql::statements`, `sql::postgres` and `sql::sqlite`).
//!
//! Uses [`crypto`](crate::crypto) (random keys), [`lifetime`](crate::lifetime)
//! (the memory store's clock) and the shared error types. Used by
//! [`wire`](crate::wire) (an envelope points at a [`StoreKey`]),
//! [`sessions`](crate::sessions) and the configuration. A store sees only
//! sealed bytes and keys, never a session.

pub(crate) mod breaker;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) mod sql;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The future a [`SessionStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The key of one store entry: 32 bytes, random for session data.
///
/// `Display` is 64 lowercase hex digits, for stores that key by string.
///
/// # Example
///
/// ```
/// let key = sealed_session::StoreKey::from_bytes([0xab; 32]);
/// assert_eq!(key.to_string(), "ab".repeat(32));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// A key from its bytes (for store implementations and their tests).
    ///
    /// # Example
    ///
    /// ```
    /// let key = sealed_session::StoreKey::from_bytes([1; 32]);
    /// assert_eq!(key.as_bytes(), &[1; 32]);
    /// ```
    pub fn from_bytes(bytes: [u8; 32]) -> StoreKey {
        StoreKey(bytes)
    }

    /// The key's bytes.
    ///
    /// # Example
    ///
    /// ```
    /// let key = sealed_session::StoreKey::from_bytes([2; 32]);
    /// assert_eq!(key.as_bytes().len(), 32);
    /// ```
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A fresh random key for session data (256 bits).
    pub(crate) fn random() -> StoreKey {
        StoreKey(crate::crypto::rng::array())
    }

    /// The revocation marker of a session: a hash, so it lives in a
    /// namespace of its own and reveals nothing about the session id.
    /// `binding` is the cookie name, with the application context if any
    /// (`seal::binding`); `id` is the session id's bytes.
    pub(crate) fn revocation(binding: &[u8], id: &[u8; 16]) -> StoreKey {
        let digest = Sha256::new()
            .chain_update(b"sealed-session v1 revoked\0")
            .chain_update(binding)
            .chain_update(b"\0")
            .chain_update(id)
            .finalize();
        StoreKey(digest.into())
    }

    /// The note left for a short while when an entry is deleted because
    /// its session ended or moved (its value: when, in unix seconds), so a
    /// request that finds the entry gone can tell a session that ended a
    /// moment ago from one long gone. A hash of the entry's key, in a
    /// namespace of its own.
    pub(crate) fn moved(entry: &StoreKey) -> StoreKey {
        let digest = Sha256::new()
            .chain_update(b"sealed-session v1 moved\0")
            .chain_update(entry.0)
            .finalize();
        StoreKey(digest.into())
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({self})")
    }
}

/// A store could not do what was asked. Every store error reaches the
/// caller of [`Sessions::load`](crate::Sessions::load) or
/// [`Sessions::save`](crate::Sessions::save): a store that is down never
/// passes for "no session".
///
/// # Example
///
/// ```
/// use sealed_session::StoreError;
/// let err = StoreError::Unavailable("connection refused".into());
/// assert!(err.is_transient());
/// assert!(!StoreError::Corrupt("not a string".into()).is_transient());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store cannot be reached or refused the command.
    Unavailable(String),
    /// The store did not answer in time.
    Timeout,
    /// The store is at its configured capacity (a full store refuses new
    /// entries rather than evicting live sessions).
    Full,
    /// The store answered with something that is not an entry.
    Corrupt(String),
}

impl StoreError {
    /// Whether trying again later may succeed (unavailable, timeout, full).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(sealed_session::StoreError::Timeout.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        !matches!(self, StoreError::Corrupt(_))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "session store unavailable: {why}"),
            StoreError::Timeout => f.write_str("session store timed out"),
            StoreError::Full => f.write_str("session store is full"),
            StoreError::Corrupt(why) => write!(f, "session store returned a corrupt entry: {why}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A place for sealed session entries: load, create, replace, delete.
/// Small on purpose; [`MemoryStore`](crate::MemoryStore) and (with the
/// `redis` feature) `RedisStore` implement it.
///
/// The library hands a store only sealed bytes and keys: a store never
/// sees session content. A store must return exactly the bytes last
/// written under a key until their time to live passes, then nothing.
///
/// **The contract the session lifecycle relies on** (the shared store
/// suite checks it on every store):
///
/// - Writes are conditional, and each is one atomic step. [`create`]
///   writes only where nothing is (a new entry under a fresh random key, a
///   revocation marker); [`replace`] writes only where an entry still is
///   (a session that continues its entry). Each answers whether it wrote,
///   so a request that raced a logout learns that the entry it loaded is
///   gone and never brings it back.
/// - [`delete`] answers whether something was there.
/// - A write that fails (an error, a full store) leaves what was stored
///   as it was: never remove first and write second. The one exception
///   no client can rule out: a write whose outcome is unknown (it **timed
///   out**, or the connection broke after the command was sent) may still
///   have been applied (the server got it, the answer did not come back).
///   Stores bound that where they can (the SQL stores' servers give up at
///   the timeout when so configured; see each store).
/// - An entry past its time to live counts as absent for all four methods.
///
/// [`create`]: SessionStore::create
/// [`replace`]: SessionStore::replace
/// [`delete`]: SessionStore::delete
///
/// [`SessionConfig::with_store`](crate::SessionConfig::with_store) takes it
/// as `Arc<dyn SessionStore>`, so the methods return boxed futures
/// ([`StoreFuture`]) rather than using `async fn`.
///
/// # Example
///
/// A store that refuses everything (for failure tests):
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{SessionStore, StoreError, StoreFuture, StoreKey};
///
/// #[derive(Debug)]
/// struct Down;
///
/// fn down<'a, T>() -> StoreFuture<'a, T> {
///     Box::pin(async { Err(StoreError::Unavailable("down".into())) })
/// }
///
/// impl SessionStore for Down {
///     fn load<'a>(&'a self, _key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
///         down()
///     }
///     fn create<'a>(&'a self, _key: &'a StoreKey, _value: &'a [u8], _ttl: Duration) -> StoreFuture<'a, bool> {
///         down()
///     }
///     fn replace<'a>(&'a self, _key: &'a StoreKey, _value: &'a [u8], _ttl: Duration) -> StoreFuture<'a, bool> {
///         down()
///     }
///     fn delete<'a>(&'a self, _key: &'a StoreKey) -> StoreFuture<'a, bool> {
///         down()
///     }
/// }
/// ```
pub trait SessionStore: Send + Sync + fmt::Debug + 'static {
    /// The bytes stored under `key`, or `None` if there are none (never
    /// written, deleted, or past their time to live).
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Writes `value` under `key`, to be dropped after `ttl`, only if
    /// nothing is stored there: `Ok(true)` when written, `Ok(false)` when
    /// an entry was already there (it is left as it was). Redis: `SET key
    /// value NX PX ttl`.
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Replaces the entry under `key` with `value` and a new `ttl`, only if
    /// an entry is there: `Ok(true)` when replaced, `Ok(false)` when
    /// nothing was there (nothing is written). Redis: `SET key value XX PX
    /// ttl`.
    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Deletes what is under `key`: `Ok(true)` if an entry was there,
    /// `Ok(false)` if nothing was (not an error).
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool>;

    /// Like [`create`](SessionStore::create), for a small hint the
    /// lifecycle can do without if a failover loses it: the note that an
    /// entry was deleted, and when, kept as long as a cookie pointing at
    /// the entry could open (it keeps a parallel request from removing
    /// the cookie the deleting save sends, and tells a deleted entry from
    /// one the store lost). A store that makes its writes wait for
    /// replicas (`RedisClusterStore::with_wait`)
    /// does not wait for this one, so one slow replica does not fail a
    /// save over a hint. The default calls `create`: a wrapper around
    /// another store (metrics, tracing) must forward this method to the
    /// inner store's `create_hint`, or its hints become creates that
    /// wait (a save then fails on a slow replica, deleting nothing).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{MemoryStore, SessionStore, StoreKey};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = MemoryStore::new();
    /// let key = StoreKey::from_bytes([7; 32]);
    /// let ttl = std::time::Duration::from_secs(60);
    /// assert_eq!(store.create_hint(&key, b"t", ttl).await, Ok(true));
    /// assert_eq!(store.create_hint(&key, b"u", ttl).await, Ok(false));
    /// assert_eq!(store.load(&key).await, Ok(Some(b"t".to_vec())));
    /// # }
    /// ```
    fn create_hint<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.create(key, value, ttl)
    }

    /// Whether one call that finds the store unreachable says the whole
    /// store is down: `true` (the default) for a store on one server or
    /// one database, so a [`CircuitBreaker`](crate::CircuitBreaker) in
    /// front of it fails every call at once while it is down. `false` for
    /// a store spread over independent nodes (`RedisClusterStore`), where
    /// one node down must not fail the sessions the others hold: no
    /// store-wide breaker is put in front of it. A store that wraps
    /// another (metrics, tracing) forwards it, or it falls back to `true`
    /// and one node down fails every call.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{MemoryStore, SessionStore};
    /// assert!(MemoryStore::new().fails_as_one());
    /// ```
    fn fails_as_one(&self) -> bool {
        true
    }
}

/// `SessionStore` for a store type whose field `$inner` has async
/// `load`, `create`, `replace` and `delete` of the trait's signatures
/// (the Redis and SQL stores).
#[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
macro_rules! delegate_session_store {
    ($store:ident, $inner:ident $(, fails_as_one = $one:expr)? $(, hint = $hint:ident)?) => {
        impl $crate::store::SessionStore for $store {
            fn load<'a>(
                &'a self,
                key: &'a $crate::store::StoreKey,
            ) -> $crate::store::StoreFuture<'a, Option<Vec<u8>>> {
                Box::pin(self.$inner.load(key))
            }

            fn create<'a>(
                &'a self,
                key: &'a $crate::store::StoreKey,
                value: &'a [u8],
                ttl: std::time::Duration,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(self.$inner.create(key, value, ttl))
            }

            fn replace<'a>(
                &'a self,
                key: &'a $crate::store::StoreKey,
                value: &'a [u8],
                ttl: std::time::Duration,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(self.$inner.replace(key, value, ttl))
            }

            fn delete<'a>(
                &'a self,
                key: &'a $crate::store::StoreKey,
            ) -> $crate::store::StoreFuture<'a, bool> {
                Box::pin(self.$inner.delete(key))
            }

            $(
                fn create_hint<'a>(
                    &'a self,
                    key: &'a $crate::store::StoreKey,
                    value: &'a [u8],
                    ttl: std::time::Duration,
                ) -> $crate::store::StoreFuture<'a, bool> {
                    Box::pin(self.$inner.$hint(key, value, ttl))
                }
            )?

            $(
                fn fails_as_one(&self) -> bool {
                    $one
                }
            )?
        }
    };
}
#[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
pub(crate) use delegate_session_store;

/// Where session values live when a store is configured.
///
/// # Example
///
/// ```
/// use sealed_session::{MemoryStore, SessionConfig, StoreMode};
/// let config = SessionConfig::default()
///     .with_store(MemoryStore::new())
///     .with_store_mode(StoreMode::Server);
/// # let _ = config;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StoreMode {
    /// In the cookie; in the store only when the sealed cookie would be
    /// over the size limit (the default).
    #[default]
    Cookie,
    /// Always in the store; the cookie holds only a sealed pointer, like a
    /// classic server-side session.
    Server,
}
