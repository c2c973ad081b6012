//! [`RedisClusterStore`]: sessions in a Redis Cluster (feature
//! `redis-cluster`).

use std::time::Duration;

use crate::store::StoreError;
use crate::store::redis::routing::Router;
use crate::store::redis::{
    DEFAULT_TIMEOUT, Redis, Wait, bounded, redis_session_store, store_error,
};

/// A store in a Redis Cluster (or a managed Redis/Valkey in cluster
/// mode), shared by every instance.
///
/// The same entries as [`RedisStore`](crate::RedisStore): plain strings
/// under `prefix + hex(key)`, written with `SET … NX PX` (create), `SET …
/// XX PX` (replace) and `DEL`, each one atomic single-key command, with
/// the same per-call timeout (default 1 s) and the same error mapping.
/// The keys carry no hash tag, so sessions spread over every slot and
/// every master. Each call goes to the master of its key's slot over one
/// connection per node (the `redis` crate's connection manager), follows
/// `MOVED` and `ASK` redirections, and picks up a new slot map (a
/// resharding, a failover) from `CLUSTER SLOTS` by itself.
///
/// **When a master fails**, the calls for its slots fail until its replica
/// is promoted: a dead node's refused connection, `CLUSTERDOWN`,
/// `TRYAGAIN` and `MASTERDOWN` are [`StoreError::Unavailable`], a node
/// that stops answering is [`StoreError::Timeout`]. The layer answers
/// `503` for the sessions held there, never an empty session, and
/// nothing is overwritten. The other shards go on **if the cluster runs
/// with `cluster-require-full-coverage no`**; with Redis's default
/// (`yes`) every node refuses every key (`CLUSTERDOWN`) from the moment
/// the master is marked failed until its replica takes over. The window
/// is the cluster's `cluster-node-timeout` plus the election: about
/// 2.2–3.0 s with a 1 s node timeout in this crate's failover test (the
/// default node timeout is 15 s).
///
/// **When the operators change the cluster**, the store follows without
/// a restart: a resharding, a rebalance or a slot migration (`MOVED`,
/// `ASK`), a master added or removed, a failover (the promoted replica is
/// learned from the nodes the store knows; the seeds need not list it),
/// nodes restarted on the same addresses. A node that refuses a call
/// without running it because it does not serve the slot (a master
/// removed by `redis-cli --cluster del-node`, which resets it and leaves
/// it running: `CLUSTERDOWN Hash slot not served`; `MASTERDOWN`), or that
/// cannot be connected to, makes the store read the slot map again at
/// once (at most once per 100 ms) and send the call once to the slot's
/// new master; a cluster that is down everywhere gets its error at once.
/// A call whose connection broke after it was sent is not sent again (it
/// may have run): that one call fails, the next go to the new master. The
/// map is read from the masters the store knows, and from the seeds only
/// when none of them gives one, and taken only from a node that knows one
/// of the node ids of the cluster as the store last saw it (`CLUSTER
/// NODES`): a node of another cluster that took over a seed's address is
/// ignored (with a `warn`). So if the whole cluster moved to new
/// addresses, or was re-created with new node ids, connect again (with
/// new seeds).
///
/// **Replication is asynchronous.** A master acknowledges a write before
/// its replica has it, so a write acknowledged just before the master
/// dies can be missing on the promoted replica: a `replace` acknowledged
/// to the user is undone (the next request sees the session as it was
/// before), a `delete` (logout) is undone (the session is back), and a
/// revocation marker is lost (a revoked copy opens again). Where that
/// matters, [`with_wait`](RedisClusterStore::with_wait) makes each write
/// wait until a replica has it.
///
/// **Use `maxmemory-policy noeviction`** on every node, as for
/// [`RedisStore`](crate::RedisStore); [`connect`](RedisClusterStore::connect)
/// asks one node and logs a `warn` when it evicts.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use sealed_session::{RedisClusterStore, SessionConfig};
///
/// // Any reachable nodes; the store learns the others from them.
/// let store = RedisClusterStore::connect(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
///     .await?
///     .with_prefix("myapp:session:")
///     .with_timeout(Duration::from_millis(500));
/// let config = SessionConfig::default().with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisClusterStore {
    core: Redis<Router>,
}

impl RedisClusterStore {
    /// Connects to the cluster through any of `nodes` (`redis://host:port`
    /// each, with the password and TLS every node shares): reads the slot
    /// map from the first that answers; connections to the masters are
    /// made when first used.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] for a bad URL, no node reachable or a
    /// cluster that is down, [`StoreError::Timeout`] when the nodes do not
    /// answer within twice the default timeout.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = sealed_session::RedisClusterStore::connect(["redis://127.0.0.1:7000"]).await;
    /// assert!(store.is_ok());
    /// # }
    /// ```
    pub async fn connect<I, S>(nodes: I) -> Result<RedisClusterStore, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut seeds = Vec::new();
        for node in nodes {
            let info = redis::IntoConnectionInfo::into_connection_info(node.as_ref())
                .map_err(store_error)?;
            seeds.push(info);
        }
        let router = Router::new(seeds);
        bounded(2 * DEFAULT_TIMEOUT, router.refresh()).await?;
        let core = Redis::new(router);
        core.warn_if_evicting().await;
        Ok(RedisClusterStore { core })
    }

    /// The prefix of every key this store writes. Default
    /// `sealed-session:`.
    ///
    /// # Panics
    ///
    /// If `prefix` holds a Redis Cluster hash tag (a `{` followed later by
    /// a `}` with something between): every key would then hash to the
    /// tag's slot, and all the sessions would live on one master.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::StoreError> {
    /// let store = sealed_session::RedisClusterStore::connect(["redis://127.0.0.1:7000"])
    ///     .await?
    ///     .with_prefix("shop:sessions:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> RedisClusterStore {
        let prefix = prefix.into();
        assert!(
            !has_hash_tag(&prefix),
            "a RedisClusterStore prefix must not hold a hash tag ({{…}}): it would put every session on one node"
        );
        self.core.prefix = prefix;
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
    /// let store = sealed_session::RedisClusterStore::connect(["redis://127.0.0.1:7000"])
    ///     .await?
    ///     .with_timeout(std::time::Duration::from_millis(200));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_timeout(mut self, timeout: Duration) -> RedisClusterStore {
        self.core.timeout = timeout;
        self
    }

    /// Makes every write (create, replace, delete; not the note below)
    /// wait until `replicas`
    /// replicas of the key's master have it, for at most `timeout`
    /// (Redis's `WAIT`, sent on the same connection once the write's reply
    /// shows it ran: one more round trip per write; a write refused, e.g.
    /// by a removed node, sends no `WAIT` and goes to the slot's new
    /// master). A write that fewer replicas confirmed in time is
    /// [`StoreError::Timeout`], so the layer answers `503`; like any call
    /// that timed out, it may still have taken effect on the master.
    ///
    /// This narrows the asynchronous-replication window: a write
    /// acknowledged with `with_wait(1, …)` is on the replica that a
    /// failover would promote (with one replica per master). It is not
    /// full consistency (Redis may still lose it, e.g. if that replica
    /// restarts without persistence before the failover), and it costs
    /// availability: while a master has fewer live replicas than
    /// `replicas` (after a failover, until the old master is back as a
    /// replica), every create and replace to its slots fails (deletes and
    /// notes go through, see below). Reads do not wait: writes
    /// that wait go over a connection of their own to each master.
    ///
    /// A create or replace that fewer replicas confirmed in time is a
    /// `Timeout`; a delete that ran is reported done even unconfirmed
    /// (with a `warn`): the session it ended or moved back into its
    /// cookie must not be reported kept, and a failover that undoes it
    /// only brings back an entry, as without `WAIT`. The note a delete
    /// leaves (that it went, and when;
    /// [`SessionStore::create_hint`](crate::SessionStore::create_hint))
    /// does not wait: a failover that loses it only lets a request that
    /// raced the delete remove the browser's cookie (and a later one with
    /// the old pointer log that the store lost an entry), and waiting for it
    /// failed the save whenever its slot's replica was slow. (A note
    /// already there, left by an attempt whose delete failed, is replaced
    /// by an ordinary write, which waits.) A wrapper around this store
    /// must forward `create_hint`, or its notes wait. Timeouts
    /// under a millisecond count as one (Redis reads `WAIT n 0` as
    /// "forever").
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::StoreError> {
    /// use std::time::Duration;
    /// let store = sealed_session::RedisClusterStore::connect(["redis://127.0.0.1:7000"])
    ///     .await?
    ///     .with_wait(1, Duration::from_millis(100));
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_wait(mut self, replicas: u32, timeout: Duration) -> RedisClusterStore {
        let timeout = timeout.max(Duration::from_millis(1));
        self.core.wait = Some(Wait { replicas, timeout });
        self
    }
}

/// Whether `prefix + hex` would hash by a tag (Redis Cluster's rule: the
/// first `{`, then the first `}` after it, not right after it). The hex
/// digits that follow hold no brace, so the prefix decides.
fn has_hash_tag(prefix: &str) -> bool {
    prefix
        .find('{')
        .and_then(|open| prefix[open + 1..].find('}'))
        .is_some_and(|length| length > 0)
}

// A node down fails only its own slots' calls: no store-wide breaker.
redis_session_store!(RedisClusterStore, fails_as_one = false);

#[cfg(test)]
mod tests {
    use super::has_hash_tag;

    #[test]
    fn a_prefix_with_a_hash_tag_is_recognised_by_redis_rule() {
        for tagged in ["{app}:", "a{b}c", "x{{}"] {
            assert!(has_hash_tag(tagged), "{tagged}");
        }
        // "{}{a}": the first `}` comes right after the first `{`, so
        // Redis hashes the whole key: not a tag.
        for plain in ["sealed-session:", "a{b", "a}b{", "{}", "app{}:", "{}{a}"] {
            assert!(!has_hash_tag(plain), "{plain}");
        }
    }
}
