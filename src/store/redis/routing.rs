//! Routing for [`RedisClusterStore`](crate::RedisClusterStore): the slot
//! map, and the [`Router`] that sends each call to the master of its key's
//! slot over one connection per node, follows `MOVED` and `ASK`, and
//! refreshes the map when the cluster changed under it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::store::redis::DEFAULT_TIMEOUT;

/// The cluster slot of `key`: CRC16 (XMODEM) of the key, or of its hash
/// tag when it has one, modulo 16384.
fn slot(key: &[u8]) -> usize {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let close = key[open + 1..].iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &key[open + 1..open + 1 + close])
        })
        .unwrap_or(key);
    let crc = hashed.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    });
    usize::from(crc) % SLOTS
}

/// Redirections followed for one call (`MOVED` after a resharding or a
/// failover, `ASK` during a slot migration).
const REDIRECTIONS: usize = 3;

/// The shortest time between two slot-map refreshes.
const REFRESH_INTERVAL: Duration = Duration::from_millis(100);

/// How long a refresh waits for more nodes' maps after the first (a
/// node that hangs costs this much, not the whole timeout).
const ANSWER_GRACE: Duration = Duration::from_millis(50);

/// How long a node connection keeps a reply slot that nobody awaits any
/// more (each call has the store's own timeout, and `with_wait`'s).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The suffix of a node's second connection, for writes that `WAIT`.
const WAIT_LANE: &str = "#wait";

/// Routes each command to the master of its key's slot, over one
/// connection per node: a node that is down or hangs fails only the calls
/// for its own slots. (The `redis` crate's own cluster connection, 1.2,
/// rebuilds its view of the cluster with every request on hold, and after
/// a master died it stalled calls to every shard for seconds in this
/// crate's failover test.)
///
/// The slot map comes from `CLUSTER SLOTS` (of the known master, else
/// seed, of this cluster that knows the highest config epoch, see
/// [`Router::refresh`]), at connect and again
/// (at most every [`REFRESH_INTERVAL`]) in the background after a
/// `MOVED`, a connection error or a call abandoned at its timeout, and at
/// once, before the call is sent again, after a refusal ([`refused`]) or
/// a connection that could not be made ([`Router::other_master`]).
/// `MOVED` is followed at once (the map is updated for that slot), `ASK`
/// by sending `ASKING` and the command to the node named.
#[derive(Clone)]
pub(crate) struct Router {
    shared: Arc<Shared>,
}

struct Shared {
    /// The nodes given to `connect`, asked for the slot map when no
    /// known master gives one.
    seeds: Vec<redis::ConnectionInfo>,
    /// The node ids of the cluster, as the node whose map was last taken
    /// knows them: a refreshed map is taken only from a node that knows
    /// one of them. Empty before `connect` (or when the nodes do not give
    /// `CLUSTER NODES`).
    members: RwLock<HashSet<String>>,
    /// The master of each slot, as an index into `masters`.
    map: RwLock<SlotMap>,
    /// One connection per node address, made when first needed.
    connections: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<ConnectionManager>>>>,
    /// Held while a refresh runs: a call that needs the new map waits
    /// for the refresh under way rather than start another.
    refreshing: tokio::sync::Mutex<()>,
    started: Instant,
    /// When the last refresh began, in milliseconds since `started`;
    /// claimed ([`Router::claim_refresh`]) only while `refreshing` is held,
    /// so a refresh claimed is one that ran or runs now.
    refreshed_ms: AtomicU64,
    /// A background refresh is spawned and has not taken `refreshing`
    /// yet: no other is spawned meanwhile.
    refresh_pending: AtomicBool,
}

#[derive(Default)]
struct SlotMap {
    /// `host:port` of each master.
    masters: Vec<String>,
    /// For each of the 16384 slots, its master's index, or `None`.
    slots: Vec<Option<usize>>,
}

const SLOTS: usize = 16384;

impl SlotMap {
    fn master(&self, slot: usize) -> Option<&str> {
        let index = (*self.slots.get(slot)?)?;
        self.masters.get(index).map(String::as_str)
    }

    fn set(&mut self, slot: usize, address: &str) {
        let index = match self.masters.iter().position(|m| m == address) {
            Some(index) => index,
            None => {
                self.masters.push(address.to_owned());
                self.masters.len() - 1
            }
        };
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some(index);
        }
    }
}

/// One call: a command, or a pipeline (every command for one key).
#[derive(Clone, Copy)]
enum Call<'a> {
    Command(&'a Cmd),
    Pipeline(&'a Pipeline),
}

impl Call<'_> {
    /// The key that routes the call: the first argument after the
    /// command name (this store sends single-key commands, and
    /// `CONFIG GET`, whose "key" then picks some master, as good as any).
    fn key(&self) -> Option<&[u8]> {
        let command = match self {
            Call::Command(command) => *command,
            Call::Pipeline(pipeline) => pipeline.cmd_iter().next()?,
        };
        match command.args_iter().nth(1)? {
            redis::Arg::Simple(key) => Some(key),
            _ => None,
        }
    }

    /// Whether the call waits for replicas (`WAIT`): it goes over a
    /// connection of its own, since Redis blocks the whole connection
    /// while `WAIT` waits.
    fn waits(&self) -> bool {
        let Call::Pipeline(pipeline) = self else {
            return false;
        };
        pipeline.cmd_iter().any(is_wait)
    }

    /// Sends the call on `connection`, after `ASKING` if `asking`. A
    /// pipeline that waits ([`Call::waits`]) goes in two steps, see
    /// [`send_then_wait`].
    async fn send(
        self,
        connection: &mut ConnectionManager,
        asking: bool,
    ) -> RedisResult<Vec<Value>> {
        if let Call::Pipeline(pipeline) = self {
            let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
            if let Some(at) = commands.iter().position(|command| is_wait(command)) {
                return send_then_wait(&commands, at, connection, asking).await;
            }
        }
        let commands: Vec<&Cmd> = match self {
            Call::Command(command) if !asking => {
                return Ok(vec![connection.req_packed_command(command).await?]);
            }
            Call::Pipeline(pipeline) if !asking => {
                return connection
                    .req_packed_commands(pipeline, 0, pipeline.len())
                    .await;
            }
            Call::Command(command) => vec![command],
            Call::Pipeline(pipeline) => pipeline.cmd_iter().collect(),
        };
        let mut asked = redis::pipe();
        asked.cmd("ASKING");
        for command in commands {
            asked.add_command(command.clone());
        }
        let replies = connection
            .req_packed_commands(&asked, 0, asked.len())
            .await?;
        // Without the reply to `ASKING`.
        Ok(replies.into_iter().skip(1).collect())
    }
}

/// Whether `command` is `WAIT`.
fn is_wait(command: &Cmd) -> bool {
    matches!(command.args_iter().next(), Some(redis::Arg::Simple(name)) if name.eq_ignore_ascii_case(b"WAIT"))
}

/// Sends a write that waits for replicas (`commands`, `WAIT` at `at`) in
/// two round trips on `connection`: the write (after `ASKING` if
/// `asking`), then, only if no reply is an error (the write ran), the
/// `WAIT`. A write refused (`CLUSTERDOWN` from a removed node, which has
/// no replica), redirected or failed sends no `WAIT`: Redis would run it
/// anyway and block the connection for its whole timeout, and the writes
/// queued behind it would time out. The `WAIT` replies are then 0 (no
/// replica confirmed; the write's error is the answer).
///
/// `WAIT` waits for the writes of its own client, so both steps carry
/// `CLIENT ID`: if the connection was replaced between them (it broke and
/// the connection manager made a new one), the `WAIT` did not wait for
/// this write, and its reply is taken as 0.
async fn send_then_wait(
    commands: &[&Cmd],
    at: usize,
    connection: &mut ConnectionManager,
    asking: bool,
) -> RedisResult<Vec<Value>> {
    let (writes, waits) = commands.split_at(at);
    let mut first = redis::pipe();
    if asking {
        first.cmd("ASKING");
    }
    for command in writes {
        first.add_command((*command).clone());
    }
    first.cmd("CLIENT").arg("ID");
    let mut replies = connection
        .req_packed_commands(&first, 0, first.len())
        .await?;
    let written_by = replies.pop();
    if asking && !replies.is_empty() {
        // The reply to `ASKING`.
        replies.remove(0);
    }
    let unconfirmed = || waits.iter().map(|_| Value::Int(0)).collect::<Vec<_>>();
    if replies
        .iter()
        .any(|reply| matches!(reply, Value::ServerError(_)))
    {
        replies.extend(unconfirmed());
        return Ok(replies);
    }
    let mut second = redis::pipe();
    for command in waits {
        second.add_command((*command).clone());
    }
    second.cmd("CLIENT").arg("ID");
    let mut waited = connection
        .req_packed_commands(&second, 0, second.len())
        .await?;
    let waited_by = waited.pop();
    if let (Some(Value::Int(written_by)), Some(Value::Int(waited_by))) = (written_by, waited_by) {
        if written_by != waited_by {
            waited = unconfirmed();
        }
    }
    replies.extend(waited);
    Ok(replies)
}

/// Where a reply sends the call instead.
enum Redirect {
    Moved(usize, String),
    Ask(String),
}

/// The redirection in `replies`, if any.
fn redirect(replies: &[Value]) -> Option<Redirect> {
    replies.iter().find_map(|reply| {
        let Value::ServerError(_) = reply else {
            return None;
        };
        let error = reply.clone().extract_error().err()?;
        let (address, slot) = error.redirect_node()?;
        let address = address.to_owned();
        match error.code()? {
            "MOVED" => Some(Redirect::Moved(usize::from(slot), address)),
            "ASK" => Some(Redirect::Ask(address)),
            _ => None,
        }
    })
}

/// Whether the node refused the call without running it, in a way that
/// says it may not be the right node any more: `CLUSTERDOWN` (a node
/// reset by `redis-cli --cluster del-node` answers `Hash slot not served`
/// for every key, never `MOVED`; so does a node restarted without its
/// `nodes.conf`) and `MASTERDOWN` (a replica cut off from its master).
/// Redis checks both before it runs a command, so sending the call again
/// elsewhere never runs it twice. The first reply is the keyed command's
/// (the others are `WAIT`, which is never refused so).
///
/// Not `TRYAGAIN` (the right node, mid-migration, for commands over
/// several keys, which this store never sends; the map is not at fault),
/// nor `LOADING` (the right node, restarting).
fn refused(replies: &[Value]) -> bool {
    let Some(reply @ Value::ServerError(_)) = replies.first() else {
        return false;
    };
    let Err(error) = reply.clone().extract_error() else {
        return false;
    };
    matches!(error.code(), Some("CLUSTERDOWN" | "MASTERDOWN"))
}

/// The highest config epoch in a `CLUSTER NODES` answer (its seventh
/// field: a master's own, a replica's master's), 0 for none.
fn highest_config_epoch(nodes: &str) -> u64 {
    nodes
        .lines()
        .filter_map(|line| line.split_whitespace().nth(6)?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// The node ids in a `CLUSTER NODES` answer (each line's first field).
fn node_ids(nodes: &str) -> HashSet<String> {
    nodes
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// What one node says of the cluster.
struct View {
    map: SlotMap,
    /// The highest config epoch it knows.
    epoch: u64,
    /// The ids of the nodes it knows, itself included.
    members: HashSet<String>,
}

impl Router {
    /// A router that knows only its seeds; [`Router::refresh`] reads the
    /// slot map.
    pub(crate) fn new(seeds: Vec<redis::ConnectionInfo>) -> Router {
        Router {
            shared: Arc::new(Shared {
                seeds,
                members: RwLock::default(),
                map: RwLock::new(SlotMap::default()),
                connections: Mutex::default(),
                refreshing: tokio::sync::Mutex::new(()),
                started: Instant::now(),
                refreshed_ms: AtomicU64::new(0),
                refresh_pending: AtomicBool::new(false),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The connection to `address` (`host:port`), made if needed with the
    /// seeds' settings (password, TLS); `waits` picks the node's second
    /// connection, for writes that wait for replicas.
    async fn connection(&self, address: &str, waits: bool) -> RedisResult<ConnectionManager> {
        let lane = if waits {
            format!("{address}{WAIT_LANE}")
        } else {
            address.to_owned()
        };
        let cell = self
            .shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(lane)
            .or_default()
            .clone();
        let connection = cell
            .get_or_try_init(|| async {
                let (host, port) = address.rsplit_once(':').ok_or_else(|| {
                    RedisError::from((ErrorKind::Client, "bad node address", address.to_owned()))
                })?;
                let port: u16 = port.parse().map_err(|_| {
                    RedisError::from((ErrorKind::Client, "bad node port", address.to_owned()))
                })?;
                let seed = self.shared.seeds.first().ok_or_else(|| {
                    RedisError::from((ErrorKind::Client, "no cluster node given"))
                })?;
                let info = seed.clone().set_addr(match seed.addr() {
                    redis::ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => redis::ConnectionAddr::TcpTls {
                        host: host.to_owned(),
                        port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => redis::ConnectionAddr::Tcp(host.to_owned(), port),
                });
                let client = redis::Client::open(info)?;
                // Each call is bounded by the store's own timeout (and
                // wait); this one only drops replies nobody awaits.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(DEFAULT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(client, config).await
            })
            .await?;
        Ok(connection.clone())
    }

    /// Reads the slot map from the known masters, or, when none of them
    /// gives one ([`Router::best_view`]), from the seeds. A map is taken
    /// only from a node of the cluster the store is connected to: one
    /// whose `CLUSTER NODES` shares a node id with the cluster as last
    /// seen (its membership changes by overlap: a node added or removed
    /// leaves the others' ids), so a node of another cluster that took
    /// over a seed's (or a master's) address is never followed. At
    /// `connect` nothing is known yet and any seed's map is taken. A
    /// cluster re-created with all-new node ids is not followed: every
    /// refresh is refused (with a `warn`) until the store is connected
    /// again.
    pub(crate) async fn refresh(&self) -> RedisResult<()> {
        let masters: Vec<String> = self
            .shared
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .masters
            .clone();
        let mut seeds: Vec<String> = Vec::new();
        for seed in &self.shared.seeds {
            if let redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } = seed.addr()
            {
                let address = format!("{host}:{port}");
                // Each node once (a master is usually a seed too).
                if !masters.contains(&address) && !seeds.contains(&address) {
                    seeds.push(address);
                }
            }
        }
        let mut last = RedisError::from((ErrorKind::Client, "no cluster node given"));
        let mut chosen = None;
        for candidates in [masters, seeds] {
            if candidates.is_empty() {
                continue;
            }
            match self.best_view(candidates).await {
                Ok(view) => {
                    chosen = Some(view);
                    break;
                }
                Err(error) => last = error,
            }
        }
        let Some(view) = chosen else {
            return Err(last);
        };
        let map = view.map;
        // Connections to nodes no longer masters go (a node that left,
        // moved or was demoted).
        self.shared
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|lane, _| {
                let address = lane.strip_suffix(WAIT_LANE).unwrap_or(lane);
                map.masters.iter().any(|master| master == address)
            });
        *self
            .shared
            .map
            .write()
            .unwrap_or_else(PoisonError::into_inner) = map;
        *self
            .shared
            .members
            .write()
            .unwrap_or_else(PoisonError::into_inner) = view.members;
        Ok(())
    }

    /// Asks every one of `candidates` for its view at once: a node that
    /// hangs does not hold up the others' answers, and a node whose own
    /// view is behind (a master restarted with an old `nodes.conf`, a node
    /// cut off from the others) does not win by answering first. Of the
    /// views that serve any slot (a node that has not joined the cluster,
    /// or was reset, serves none) and belong to this cluster (a node id in
    /// common with the cluster as last seen, when known), and that come in
    /// within [`ANSWER_GRACE`] of the first, the one whose node knows the
    /// highest config epoch, since every change of a slot's master (a
    /// failover, the end of a migration) gives that master a config epoch
    /// above all others (ties: the first answer).
    async fn best_view(&self, candidates: Vec<String>) -> RedisResult<View> {
        let members = self
            .shared
            .members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut asked = tokio::task::JoinSet::new();
        for address in candidates {
            let router = self.clone();
            asked.spawn(async move {
                let view = router.view_of(&address).await;
                (address, view)
            });
        }
        let mut last = RedisError::from((ErrorKind::Client, "no cluster node given"));
        let mut best: Option<View> = None;
        let mut until: Option<tokio::time::Instant> = None;
        loop {
            let answer = match until {
                None => asked.join_next().await,
                Some(until) => tokio::time::timeout_at(until, asked.join_next())
                    .await
                    .unwrap_or(None),
            };
            let Some(answer) = answer else { break };
            let Ok((address, view)) = answer else {
                continue;
            };
            match view {
                Ok(view) if !view.map.slots.iter().any(Option::is_some) => {
                    last = RedisError::from((
                        ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                        "a node answered with no slots",
                    ));
                }
                Ok(view) if !members.is_empty() && view.members.is_disjoint(&members) => {
                    tracing::warn!(
                        node = %address,
                        "a Redis Cluster node answered with the slot map of another cluster (no node id in common with the cluster this store is connected to); ignored. If the whole cluster was re-created, connect the store again"
                    );
                    last = RedisError::from((
                        ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                        "a node answered with the slot map of another cluster",
                        address,
                    ));
                }
                Ok(view) => {
                    if best.as_ref().is_none_or(|known| view.epoch > known.epoch) {
                        best = Some(view);
                    }
                    until.get_or_insert_with(|| tokio::time::Instant::now() + ANSWER_GRACE);
                }
                Err(error) => last = error,
            }
        }
        asked.abort_all();
        best.ok_or(last)
    }

    /// The view of the node at `address`: its `CLUSTER SLOTS` as a slot
    /// map, and from its `CLUSTER NODES` the highest config epoch and the
    /// node ids (0 and none if it does not give them, e.g. a service that
    /// disables the command).
    async fn view_of(&self, address: &str) -> RedisResult<View> {
        let mut connection = self.connection(address, false).await?;
        let mut asked = redis::pipe();
        asked.cmd("CLUSTER").arg("SLOTS");
        asked.cmd("CLUSTER").arg("NODES");
        let mut replies = tokio::time::timeout(
            DEFAULT_TIMEOUT,
            connection.req_packed_commands(&asked, 0, asked.len()),
        )
        .await
        .map_err(|_| RedisError::from((ErrorKind::Io, "CLUSTER SLOTS timed out")))??
        .into_iter();
        let ranges: Vec<Value> =
            redis::from_redis_value(replies.next().unwrap_or(Value::Nil).extract_error()?)?;
        let nodes = replies
            .next()
            .and_then(|nodes| redis::from_redis_value::<String>(nodes).ok())
            .unwrap_or_default();
        let epoch = highest_config_epoch(&nodes);
        let members = node_ids(&nodes);
        let asked_host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        let mut map = SlotMap {
            masters: Vec::new(),
            slots: vec![None; SLOTS],
        };
        for range in ranges {
            let (start, end, master): (usize, usize, Vec<Value>) = match range {
                Value::Array(fields) if fields.len() >= 3 => {
                    let mut fields = fields.into_iter();
                    let start = redis::from_redis_value(fields.next().unwrap_or(Value::Nil))?;
                    let end = redis::from_redis_value(fields.next().unwrap_or(Value::Nil))?;
                    let master = redis::from_redis_value(fields.next().unwrap_or(Value::Nil))?;
                    (start, end, master)
                }
                _ => continue,
            };
            let mut master = master.into_iter();
            // `cluster-preferred-endpoint-type unknown-endpoint` gives no
            // host (nil).
            let host: Option<String> =
                redis::from_redis_value(master.next().unwrap_or(Value::Nil))?;
            let port: u16 = redis::from_redis_value(master.next().unwrap_or(Value::Nil))?;
            // No host, an empty one or `?`: the node that answered.
            let host = match host {
                Some(host) if !host.is_empty() && host != "?" => host,
                _ => asked_host.to_owned(),
            };
            let address = format!("{host}:{port}");
            for slot in start..=end.min(SLOTS - 1) {
                map.set(slot, &address);
            }
        }
        Ok(View {
            map,
            epoch,
            members,
        })
    }

    /// Whether a refresh began in the last [`REFRESH_INTERVAL`] (the
    /// refresh at `connect` does not count).
    fn refreshed_recently(&self, now: u64) -> bool {
        let last = self.shared.refreshed_ms.load(Ordering::SeqCst);
        last != 0 && Duration::from_millis(now.saturating_sub(last)) < REFRESH_INTERVAL
    }

    /// Claims the next refresh: `false` when one began in the last
    /// [`REFRESH_INTERVAL`]. Called only with `refreshing` held, so the
    /// refresh it names has finished (its map is in place) or is this one.
    fn claim_refresh(&self) -> bool {
        let now = self.now_ms().max(1);
        if self.refreshed_recently(now) {
            return false;
        }
        self.shared.refreshed_ms.store(now, Ordering::SeqCst);
        true
    }

    /// A refresh in the background, unless one began in the last
    /// [`REFRESH_INTERVAL`] or one is already spawned. The task claims the
    /// refresh only once it holds the refresh lock: a call refused in the
    /// meantime ([`Router::other_master`]) finds no refresh claimed, runs
    /// one itself, and the task then finds it done and stops.
    fn refresh_soon(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.refreshed_recently(self.now_ms().max(1))
            || self.shared.refresh_pending.swap(true, Ordering::SeqCst)
        {
            return;
        }
        // Cleared once the task holds the lock, or if it never runs (its
        // runtime shut down).
        let pending = Pending(self.clone());
        runtime.spawn(async move {
            let router = pending.0.clone();
            let _refreshing = router.shared.refreshing.lock().await;
            drop(pending);
            if !router.claim_refresh() {
                return;
            }
            if let Err(error) = router.refresh().await {
                tracing::debug!(%error, "Redis Cluster slot map not refreshed");
            }
        });
    }

    /// After the master at `address` refused a call for `key` without
    /// running it (see [`refused`]), or could not be reached at all: the
    /// key's master in a newer map, if that is another node. The map is
    /// read again now, unless a refresh began in the last
    /// [`REFRESH_INTERVAL`] (one under way is waited for and its map
    /// used): a cluster that is down everywhere gets its error at once and
    /// at most one refresh per interval.
    async fn other_master(&self, key: Option<&[u8]>, address: &str) -> Option<String> {
        let elsewhere = || self.address_for(key).ok().filter(|to| to != address);
        if let Some(to) = elsewhere() {
            return Some(to);
        }
        let _refreshing = self.shared.refreshing.lock().await;
        if let Some(to) = elsewhere() {
            return Some(to);
        }
        if !self.claim_refresh() {
            return None;
        }
        if let Err(error) = self.refresh().await {
            tracing::debug!(%error, "Redis Cluster slot map not refreshed");
        }
        elsewhere()
    }

    /// The master for `key`'s slot, or any known node for no key.
    fn address_for(&self, key: Option<&[u8]>) -> RedisResult<String> {
        let map = self
            .shared
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let address = match key {
            Some(key) => map.master(slot(key)),
            None => map.masters.first().map(String::as_str),
        };
        address.map(str::to_owned).ok_or_else(|| {
            RedisError::from((
                ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                "no master serves this slot",
            ))
        })
    }

    /// Sends `call` to its master, following redirections; a call that
    /// a node refused without running it, or that could not be sent,
    /// goes once more to the master of a newer map ([`other_master`]).
    ///
    /// [`other_master`]: Router::other_master
    async fn route(&self, call: Call<'_>) -> RedisResult<Vec<Value>> {
        // Abandoned (the caller's timeout): the node may hang, look again.
        let watch = Watch {
            router: self,
            answered: false,
        };
        let key = call.key();
        let mut address = self.address_for(key)?;
        let mut asking = false;
        let mut replies = Vec::new();
        let waits = call.waits();
        // One retry after a refusal: never a loop of refreshes.
        let mut retried = false;
        for _ in 0..=REDIRECTIONS {
            let (result, sent) = match self.connection(&address, waits).await {
                Ok(mut connection) => (call.send(&mut connection, asking).await, true),
                Err(error) => (Err(error), false),
            };
            replies = match result {
                Ok(replies) => replies,
                Err(error) => {
                    // No connection could be made, or it was refused:
                    // nothing was sent, so the call may go elsewhere. An
                    // error once sent (a dropped connection, no answer)
                    // says nothing of whether it ran: the caller hears it.
                    let unsent = !sent || error.is_connection_refusal();
                    if unsent && !retried {
                        retried = true;
                        if let Some(to) = self.other_master(key, &address).await {
                            (address, asking) = (to, false);
                            continue;
                        }
                    }
                    // A node that refuses, drops or does not answer:
                    // the map may be out of date (a failover).
                    self.refresh_soon();
                    return watch.answered(Err(error));
                }
            };
            if refused(&replies) {
                if !retried {
                    retried = true;
                    if let Some(to) = self.other_master(key, &address).await {
                        (address, asking) = (to, false);
                        continue;
                    }
                }
                return watch.answered(Ok(replies));
            }
            // A redirection without a host (`:port`, with
            // `unknown-endpoint`): the host of the node that answered.
            let on_this_host = |to: String| match to.strip_prefix(':') {
                Some(port) => {
                    let host = address.rsplit_once(':').map_or("", |(host, _)| host);
                    format!("{host}:{port}")
                }
                None => to,
            };
            match redirect(&replies) {
                None => return watch.answered(Ok(replies)),
                Some(Redirect::Moved(slot, to)) => {
                    let to = on_this_host(to);
                    self.shared
                        .map
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .set(slot, &to);
                    self.refresh_soon();
                    (address, asking) = (to, false);
                }
                Some(Redirect::Ask(to)) => (address, asking) = (on_this_host(to), true),
            }
        }
        // Redirected too often: the last redirection is the answer (an
        // error). Never an empty answer, which would read as nil.
        if replies.is_empty() {
            return watch.answered(Err(RedisError::from((
                ErrorKind::Client,
                "no answer after redirections",
            ))));
        }
        watch.answered(Ok(replies))
    }
}

/// A background refresh spawned and not yet holding the refresh lock;
/// dropped, it no longer is.
struct Pending(Router);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.shared.refresh_pending.store(false, Ordering::SeqCst);
    }
}

/// Notes that a call was answered; dropped without an answer (its
/// timeout passed), asks for a refresh of the slot map.
struct Watch<'a> {
    router: &'a Router,
    answered: bool,
}

impl Watch<'_> {
    fn answered<T>(mut self, result: T) -> T {
        self.answered = true;
        result
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.router.refresh_soon();
        }
    }
}

impl ConnectionLike for Router {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut replies = self.route(Call::Command(cmd)).await?;
            Ok(replies.pop().unwrap_or(Value::Nil))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            // Plain pipelines only (no transactions): every reply.
            let replies = self.route(Call::Pipeline(pipeline)).await?;
            Ok(replies.into_iter().skip(offset).take(count).collect())
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::{highest_config_epoch, node_ids, slot};

    #[test]
    fn node_ids_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 11 connected 0-5460
";
        let ids = node_ids(nodes);
        assert_eq!(ids.len(), 2);
        assert!(ids.contains("07c3") && ids.contains("e7d1"));
        assert!(node_ids("").is_empty());
    }

    #[test]
    fn the_highest_config_epoch_is_read_from_cluster_nodes() {
        // Redis 7's format: id, address, flags, master, ping, pong, epoch.
        let nodes = "\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
e7d1 127.0.0.1:30001@31001 myself,master - 0 0 11 connected 0-5460
";
        assert_eq!(highest_config_epoch(nodes), 11);
        assert_eq!(highest_config_epoch(""), 0);
        assert_eq!(highest_config_epoch("garbage\n"), 0);
    }

    #[test]
    fn slots_are_redis_cluster_slots() {
        // CRC16/XMODEM's check value, and slots Redis computes
        // (`CLUSTER KEYSLOT`).
        assert_eq!(slot(b"123456789"), 0x31c3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_ne!(slot(b"foo{}{bar}"), slot(b"bar"), "an empty tag is no tag");
    }
}
