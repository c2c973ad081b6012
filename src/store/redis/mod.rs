//! [`RedisStore`]: sessions in Redis, for many instances (feature `redis`).

#[cfg(feature = "redis-cluster")]
pub(crate) mod cluster;
#[cfg(feature = "redis-cluster")]
mod routing;

use std::future::Future;
use std::time::Duration;

use redis::ErrorKind;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};

use crate::store::{StoreError, StoreKey};

/// A store in Redis (or any server speaking its protocol: Valkey,
/// KeyDB, Dragonfly), shared by every instance.
///
/// Entries are plain Redis strings under `prefix + hex(key)` (default
/// prefix `sealed-session:`), written with `SET … NX PX` (create) or
/// `SET … XX PX` (replace), each one atomic command, so Redis drops them
/// when the session's lifetime is over and a write that fails leaves the
/// old value. A [`ConnectionManager`](https://docs.rs/redis/1/redis/aio/struct.ConnectionManager.html) reconnects after the server comes
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
    core: Redis<ConnectionManager>,
}

/// How long a connection keeps a reply slot that nobody awaits any more.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default per-call timeout of the Redis stores.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

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
            // Each call is bounded by the store's own timeout
            // (`with_timeout`); this one only drops replies nobody awaits.
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let connection = bounded(
            2 * DEFAULT_TIMEOUT,
            ConnectionManager::new_with_config(client, config),
        )
        .await?;
        let core = Redis::new(connection);
        core.warn_if_evicting().await;
        Ok(RedisStore { core })
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
        self.core.prefix = prefix.into();
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
        self.core.timeout = timeout;
        self
    }
}

/// What every Redis store shares, over any connection (one node's
/// [`ConnectionManager`](https://docs.rs/redis/1/redis/aio/struct.ConnectionManager.html), the cluster store's router): the key prefix, the
/// per-call timeout, the error mapping and the conditional writes.
#[derive(Clone)]
pub(crate) struct Redis<C> {
    connection: C,
    pub(crate) prefix: String,
    pub(crate) timeout: Duration,
    /// `WAIT replicas timeout` after every write, on the same connection.
    pub(crate) wait: Option<Wait>,
}

/// Writes wait until this many replicas have them, for at most `timeout`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wait {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}

impl<C: ConnectionLike + Clone + Send + Sync + 'static> Redis<C> {
    pub(crate) fn new(connection: C) -> Redis<C> {
        Redis {
            connection,
            prefix: "sealed-session:".to_owned(),
            timeout: DEFAULT_TIMEOUT,
            wait: None,
        }
    }

    /// Logs a `warn` when the server may evict keys under memory pressure:
    /// every key this store writes has a time to live, so a `volatile-*`
    /// or `allkeys-*` policy may drop live sessions and, worse,
    /// revocation markers (written once, never read again while nobody
    /// replays the copy: first in line for LRU), which makes revoked
    /// copies open again. A server that does not allow `CONFIG GET`
    /// (some managed services) is not checked; in a cluster, the node
    /// that answers is. Logs a `warn` too when the server persists
    /// nothing (no append-only file, no RDB save points).
    pub(crate) async fn warn_if_evicting(&self) {
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
        let mut command = redis::cmd("CONFIG");
        command.arg("GET").arg("appendonly").arg("save");
        match self.query::<Vec<String>>(command).await {
            Ok(reply) if !persists(&reply) => tracing::warn!(
                "Redis has no persistence (appendonly no, no save points): a restart of this server loses every store-held session and revocation marker; set appendonly yes (see README, 'Stores under faults')"
            ),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "Redis persistence not checked"),
        }
    }

    fn key(&self, key: &StoreKey) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn query<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        bounded(self.timeout, command.query_async::<T>(&mut connection)).await
    }

    /// Runs the write `command`, then, with [`Wait`], `WAIT` in the same
    /// pipeline (same connection, so it waits for this write; in a
    /// cluster the pipeline goes to the key's master, and the router
    /// sends the `WAIT` only once the write's reply shows it ran). `changed` says from
    /// the write's reply whether it changed anything; a change that fewer
    /// replicas than asked confirmed in time is [`StoreError::Timeout`]
    /// when `strict`, else reported done with a `warn` (a delete: the
    /// lifecycle must not take a session it ended for one it kept).
    async fn write<T: redis::FromRedisValue>(
        &self,
        command: redis::Cmd,
        changed: fn(&T) -> bool,
        strict: bool,
    ) -> Result<T, StoreError> {
        let Some(wait) = self.wait else {
            return self.query(command).await;
        };
        let mut pipeline = redis::pipe();
        pipeline
            .add_command(command)
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(millis(wait.timeout));
        let mut connection = self.connection.clone();
        let (reply, confirmed): (T, u32) = bounded(
            self.timeout + wait.timeout,
            pipeline.query_async(&mut connection),
        )
        .await?;
        if changed(&reply) && confirmed < wait.replicas {
            tracing::warn!(
                confirmed,
                asked = wait.replicas,
                "Redis write not confirmed by enough replicas in time; it may be lost if the master fails"
            );
            if strict {
                return Err(StoreError::Timeout);
            }
        }
        Ok(reply)
    }

    /// `SET key value <condition> PX ttl`: one atomic command, so a write
    /// that fails leaves the old value; `Ok(false)` when the condition
    /// (`NX`: absent, `XX`: present) did not hold. `wait`: whether
    /// [`Wait`] applies to it.
    async fn set_if(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
        condition: &str,
        wait: bool,
    ) -> Result<bool, StoreError> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.key(key))
            .arg(value)
            .arg(condition)
            .arg("PX")
            .arg(millis(ttl).max(1));
        // `OK` when written, nil when the condition did not hold.
        let reply: Option<String> = if wait {
            self.write(command, Option::is_some, true).await?
        } else {
            self.query(command).await?
        };
        Ok(reply.is_some())
    }

    /// `SET … NX PX`: see [`SessionStore::create`](crate::SessionStore::create).
    pub(crate) async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.set_if(key, value, ttl, "NX", true).await
    }

    /// `SET … NX PX` without `WAIT`: see
    /// [`SessionStore::create_hint`](crate::SessionStore::create_hint).
    pub(crate) async fn create_hint(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.set_if(key, value, ttl, "NX", false).await
    }

    /// `SET … XX PX`: see [`SessionStore::replace`](crate::SessionStore::replace).
    pub(crate) async fn replace(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.set_if(key, value, ttl, "XX", true).await
    }

    pub(crate) async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        let mut command = redis::cmd("GET");
        command.arg(self.key(key));
        self.query(command).await
    }

    pub(crate) async fn delete(&self, key: &StoreKey) -> Result<bool, StoreError> {
        let mut command = redis::cmd("DEL");
        command.arg(self.key(key));
        Ok(self.write::<u64>(command, |&n| n > 0, false).await? > 0)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Runs a Redis call within `timeout`, mapping its errors.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(store_error),
        Err(_elapsed) => Err(StoreError::Timeout),
    }
}

/// A Redis error as a [`StoreError`]. Everything that is neither a
/// timeout, a full server nor a reply of the wrong shape is
/// [`StoreError::Unavailable`]: a refused or dropped connection, and in a
/// cluster `CLUSTERDOWN`, `TRYAGAIN`, `MASTERDOWN` and redirections the
/// client gave up following.
pub(crate) fn store_error(error: redis::RedisError) -> StoreError {
    if error.is_timeout() {
        return StoreError::Timeout;
    }
    match error.code() {
        // Redis at `maxmemory` with a no-eviction policy refuses writes.
        Some("OOM") => return StoreError::Full,
        // Something other than a string under the key: not an entry.
        Some("WRONGTYPE") => return StoreError::Corrupt(error.to_string()),
        _ => {}
    }
    match error.kind() {
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => {
            StoreError::Corrupt(error.to_string())
        }
        _ => StoreError::Unavailable(error.to_string()),
    }
}

/// `SessionStore` and `Debug` for a Redis store type with a `core:
/// Redis<_>` field.
macro_rules! redis_session_store {
    ($store:ident $(, $($extra:tt)*)?) => {
        $crate::store::delegate_session_store!($store, core $(, $($extra)*)?, hint = create_hint);

        impl std::fmt::Debug for $store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("prefix", &self.core.prefix)
                    .field("timeout", &self.core.timeout)
                    .field("wait", &self.core.wait)
                    .finish_non_exhaustive()
            }
        }
    };
}
#[cfg(feature = "redis-cluster")]
pub(crate) use redis_session_store;

redis_session_store!(RedisStore);

/// Whether a `CONFIG GET appendonly save` reply (name, value pairs) says
/// the server writes its data to disk: an append-only file, or RDB save
/// points. Anything unreadable counts as persisting (no warning).
fn persists(reply: &[String]) -> bool {
    let value = |name: &str| {
        reply
            .chunks_exact(2)
            .find(|pair| pair[0] == name)
            .map(|pair| pair[1].as_str())
    };
    match (value("appendonly"), value("save")) {
        (Some(aof), Some(save)) => aof == "yes" || !save.trim().is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::persists;

    #[test]
    fn persistence_is_an_append_only_file_or_save_points() {
        let reply =
            |aof: &str, save: &str| ["appendonly", aof, "save", save].map(String::from).to_vec();
        assert!(!persists(&reply("no", "")));
        assert!(persists(&reply("yes", "")));
        assert!(persists(&reply("no", "3600 1 300 100")));
        assert!(persists(&[]), "unreadable: no warning");
    }
}
