//! [`RedisStore`]: sessions in Redis, for many instances (feature `redis`).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::ErrorKind;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::store::{SessionStore, StoreError, StoreFuture, StoreKey};

/// A store in Redis (or any server speaking its protocol: Valkey,
/// KeyDB, Dragonfly), shared by every instance.
///
/// Entries are plain Redis strings under `prefix + hex(key)` (default
/// prefix `sealed-session:`), written with `SET … NX PX` (create) or
/// `SET … XX PX` (replace), each one atomic command, so Redis drops them
/// when the session's lifetime is over and a write that fails leaves the
/// old value. A [`ConnectionManager`] reconnects after the server comes
/// back. Every call is bounded by a timeout (default 1 s); a call that
/// fails or times out is a [`StoreError`], never an empty answer (a call
/// that timed out may still have run on the server).
///
/// **Use `maxmemory-policy noeviction`** for the session store. A server
/// at `maxmemory` then refuses writes (`OOM`), which is
/// [`StoreError::Full`] and keeps what was stored. With an evicting policy
/// (the default of several managed services) Redis may drop live
/// sessions, which then read as missing, and revocation markers, which
/// lets revoked copies open again; [`connect`](RedisStore::connect) logs a
/// `warn` when it sees one.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use sealed_session::{RedisStore, SessionConfig};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379")
///     .await?
///     .with_prefix("myapp:session:")
///     .with_timeout(Duration::from_millis(500));
/// let config = SessionConfig::default().with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

impl RedisStore {
    /// Connects to the server at `url` (`redis://host:port/db`,
    /// `rediss://` for TLS when the client is built with it).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] for a bad URL or a refused connection,
    /// [`StoreError::Timeout`] when the server does not answer within the
    /// default timeout.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = sealed_session::RedisStore::connect("redis://127.0.0.1:6379").await;
    /// assert!(store.is_ok());
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_TIMEOUT))
            .set_number_of_retries(2);
        let connection = bounded(
            2 * DEFAULT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await?;
        let store = RedisStore {
            connection,
            prefix: "sealed-session:".to_owned(),
            timeout: DEFAULT_TIMEOUT,
        };
        store.warn_if_evicting().await;
        Ok(store)
    }

    /// Logs a `warn` when the server may evict keys under memory pressure:
    /// every key this store writes has a time to live, so a `volatile-*`
    /// or `allkeys-*` policy may drop live sessions and, worse,
    /// revocation markers (written once, never read again while nobody
    /// replays the copy: first in line for LRU), which makes revoked
    /// copies open again. A server that does not allow `CONFIG GET`
    /// (some managed services) is not checked.
    async fn warn_if_evicting(&self) {
        let mut command = redis::cmd("CONFIG");
        command.arg("GET").arg("maxmemory-policy");
        match self.query::<Vec<String>>(command).await {
            Ok(reply) => {
                if let Some(policy) = reply.get(1).filter(|p| p.as_str() != "noeviction") {
                    tracing::warn!(
                        policy = %policy,
                        "Redis may evict session entries and revocation markers under memory pressure; set maxmemory-policy noeviction for the session store"
                    );
                }
            }
            Err(error) => tracing::debug!(%error, "Redis eviction policy not checked"),
        }
    }

    /// The prefix of every key this store writes. Default
    /// `sealed-session:`.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::StoreError> {
    /// let store = sealed_session::RedisStore::connect("redis://127.0.0.1:6379")
    ///     .await?
    ///     .with_prefix("shop:sessions:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> RedisStore {
        self.prefix = prefix.into();
        self
    }

    /// The longest one call may take before it fails with
    /// [`StoreError::Timeout`]. Default 1 s.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::StoreError> {
    /// let store = sealed_session::RedisStore::connect("redis://127.0.0.1:6379")
    ///     .await?
    ///     .with_timeout(std::time::Duration::from_millis(200));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> RedisStore {
        self.timeout = timeout;
        self
    }

    fn key(&self, key: &StoreKey) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        bounded(self.timeout, command.query_async::<T>(&mut connection)).await
    }
}

/// Runs a Redis call within `timeout`, mapping its errors.
async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(store_error),
        Err(_elapsed) => Err(StoreError::Timeout),
    }
}

fn store_error(error: redis::RedisError) -> StoreError {
    if error.is_timeout() {
        return StoreError::Timeout;
    }
    // Redis at `maxmemory` with a no-eviction policy refuses writes.
    if error.code() == Some("OOM") {
        return StoreError::Full;
    }
    match error.kind() {
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => {
            StoreError::Corrupt(error.to_string())
        }
        _ => StoreError::Unavailable(error.to_string()),
    }
}

impl RedisStore {
    /// `SET key value <condition> PX ttl`: one atomic command, so a write
    /// that fails leaves the old value; `Ok(false)` when the condition
    /// (`NX`: absent, `XX`: present) did not hold.
    async fn set_if(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
        condition: &str,
    ) -> Result<bool, StoreError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(key))
            .arg(value)
            .arg(condition)
            .arg("PX")
            .arg(millis);
        // `OK` when written, nil when the condition did not hold.
        let reply = self.query::<Option<String>>(command).await?;
        Ok(reply.is_some())
    }
}

impl SessionStore for RedisStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut command = redis::cmd("GET");
            command.arg(self.key(key));
            self.query::<Option<Vec<u8>>>(command).await
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.set_if(key, value, ttl, "NX"))
    }

    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(self.set_if(key, value, ttl, "XX"))
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut command = redis::cmd("DEL");
            command.arg(self.key(key));
            Ok(self.query::<u64>(command).await? > 0)
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
