//! Adversarial review of `RedisClusterStore` (a helper with a fresh
//! context): each test reproduced a defect of the first version (it
//! failed then) and now checks its fix. Real clusters
//! from `tests/common/redis_cluster.rs`; run with `--test-threads=1` on a
//! small machine.

/// Only the cluster and server helpers (no `axum` feature needed), and
/// the few lifecycle helpers used here.
#[allow(dead_code)]
mod common {
    pub mod redis_cluster;
    pub mod redis_server;

    use http::HeaderMap;
    use http::header::{COOKIE, SET_COOKIE};
    use sealed_session::{Key, Keyring, ManualClock, Session, SessionConfig, Sessions};

    pub const START: u64 = 1_700_000_000;

    pub fn ring(bytes: &[u8]) -> Keyring {
        Keyring::new(Key::from_bytes([bytes[0]; 32]).unwrap())
    }

    pub fn config(clock: &ManualClock) -> SessionConfig {
        SessionConfig::default().with_clock(clock.clone())
    }

    /// What a browser sends back after `response` (its one cookie).
    pub fn request_after(response: &HeaderMap) -> HeaderMap {
        let all: Vec<_> = response.get_all(SET_COOKIE).iter().collect();
        assert_eq!(all.len(), 1, "one Set-Cookie: {all:?}");
        let pair = all[0]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, pair.parse().unwrap());
        headers
    }

    /// Loads from `request`, runs `f`, saves.
    pub async fn round<T, R>(
        sessions: &Sessions,
        request: &HeaderMap,
        f: impl FnOnce(&Session<T>) -> R,
    ) -> (Session<T>, HeaderMap, R)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Default + 'static,
    {
        let session = sessions.load::<T>(request).await.unwrap();
        let out = f(&session);
        let mut response = HeaderMap::new();
        sessions.save(&session, &mut response).await.unwrap();
        (session, response, out)
    }
}

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::redis_cluster::{RedisCluster, key_slot, wait_until};
use common::redis_server::{free_port, temp_dir};
use sealed_session::{RedisClusterStore, SessionStore, StoreError, StoreKey};

const MINUTE: Duration = Duration::from_secs(60);

/// The master (port) and its replica holding `key` under the default prefix.
fn master_and_replica(cluster: &RedisCluster, key: &StoreKey) -> (u16, u16) {
    let master = cluster.master_of(cluster.slot(&format!("sealed-session:{key}")));
    (master.port, master.replicas[0])
}

/// A key other than `than` held by the same master.
fn another_key_on(cluster: &RedisCluster, master: u16, than: &StoreKey) -> StoreKey {
    (0u8..=255)
        .map(|b| StoreKey::from_bytes([b; 32]))
        .find(|k| k != than && master_and_replica(cluster, k).0 == master)
        .expect("a key on that master")
}

/// `with_wait` sends `WAIT` on the one connection every call to that
/// master shares. Redis blocks the whole client while `WAIT` waits, so
/// while a replica lags, every read of its master queues behind the
/// pending `WAIT`s: the doc's "Reads do not wait" does not hold, and a
/// healthy master's reads time out (503s for every session on that shard,
/// sustained by anyone whose requests save).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_a_lagging_replica_does_not_stall_the_reads_of_its_master() {
    let cluster = RedisCluster::start();
    let store = RedisClusterStore::connect(cluster.urls())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(300))
        .with_wait(1, Duration::from_millis(900));
    let written = StoreKey::from_bytes([0x11; 32]);
    let (master, replica) = master_and_replica(&cluster, &written);
    let read = another_key_on(&cluster, master, &written);
    assert!(store.create(&read, b"kept", MINUTE).await.unwrap());
    assert_eq!(store.load(&read).await, Ok(Some(b"kept".to_vec())));

    cluster.pause(replica, true);
    let writer = tokio::spawn({
        let store = store.clone();
        async move { store.create(&written, b"w", MINUTE).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let loaded = store.load(&read).await;
    let took = started.elapsed();
    let _ = writer.await;
    cluster.pause(replica, false);
    assert_eq!(
        loaded,
        Ok(Some(b"kept".to_vec())),
        "a read of a healthy master (replica lagging) took {took:?}: it queued behind another request's WAIT"
    );
}

/// `with_wait(n, timeout)` with a timeout under 1 ms sends `WAIT n 0`,
/// which Redis reads as "wait forever". With the replica gone (the state
/// right after any failover, which the doc names), the first write blocks
/// the shared connection to that master for good: the store's own
/// timeout abandons the call but not the blocked client, and every later
/// call to that master (reads included) times out, with no recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_a_zero_timeout_does_not_block_a_master_connection() {
    let mut cluster = RedisCluster::start();
    let plain = RedisClusterStore::connect(cluster.urls())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let store = RedisClusterStore::connect(cluster.urls())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(300))
        .with_wait(1, Duration::ZERO);
    let written = StoreKey::from_bytes([0x22; 32]);
    let (master, replica) = master_and_replica(&cluster, &written);
    let read = another_key_on(&cluster, master, &written);
    // Seeded without WAIT: a 1 ms WAIT can time out on a loaded machine
    // even with the replica up (it failed a CI run that way).
    assert!(plain.create(&read, b"kept", MINUTE).await.unwrap());
    cluster.kill(replica);

    // The write itself may fail (no replica confirms it): documented.
    assert_eq!(
        store.create(&written, b"w", MINUTE).await,
        Err(StoreError::Timeout)
    );
    // The master is healthy: another store instance reads it at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(plain.load(&read).await, Ok(Some(b"kept".to_vec())));
    // This one's reads of that master never answer again.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(store.load(&read).await);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(
        seen.iter().any(|r| r == &Ok(Some(b"kept".to_vec()))),
        "reads of a healthy master, after one write with with_wait(1, 0) and no replica: {seen:?}"
    );
    // Writes wait on a lane of their own, so the reads above would pass
    // even with that lane blocked; a delete (reported done once it ran,
    // confirmed or not) shows the lane itself still answers.
    assert_eq!(store.delete(&written).await, Ok(true));
}

/// A cluster-enabled node that has not joined (a replacement node, a node
/// restarted without its nodes.conf) answers `CLUSTER SLOTS` with an
/// empty list. The router takes any answer as the slot map: listed first
/// among the seeds, such a node makes `connect` succeed with no slot
/// served, and every later refresh asks it again first (no master is
/// known), so every call fails, forever, though the next seed is a
/// healthy cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_slot_map_from_one_seed_gives_way_to_a_healthy_seed() {
    let cluster = RedisCluster::start();
    let lone = LoneNode::start();
    let mut seeds = vec![lone.url()];
    seeds.extend(cluster.urls());
    let store = match RedisClusterStore::connect(&seeds).await {
        Ok(store) => store,
        // Refusing to connect would be acceptable too; hanging on is not.
        Err(error) => panic!("connect: {error:?}"),
    };
    let key = StoreKey::from_bytes([0x33; 32]);
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(store.create(&key, b"v", MINUTE).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        seen.iter().any(|r| r.is_ok()),
        "with a healthy cluster behind the second seed: {seen:?}"
    );
}

/// A `redis-server --cluster-enabled yes` that never joins a cluster.
struct LoneNode {
    port: u16,
    child: Child,
    dir: std::path::PathBuf,
}

impl LoneNode {
    fn start() -> LoneNode {
        let port = free_port();
        let dir = temp_dir("lone");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--cluster-enabled", "yes"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = LoneNode { port, child, dir };
        common::redis_cluster::wait_until(Duration::from_secs(5), "lone node up", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        node
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for LoneNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// "Any reachable nodes; the store learns the others from them": a first
/// seed that accepts connections but does not answer (a hung node,
/// SIGSTOP) uses up `connect`'s whole budget (2 s), so `connect` fails
/// with `Timeout` though every other seed answers at once. The seeds are
/// tried one after the other, each with the full default timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_first_seed_does_not_fail_connect_when_the_others_answer() {
    let cluster = RedisCluster::start();
    // A replica: pausing it fails over nothing.
    let hung = cluster.masters()[0].replicas[0];
    let mut seeds = vec![format!("redis://127.0.0.1:{hung}")];
    seeds.extend(
        cluster
            .urls()
            .into_iter()
            .filter(|url| !url.ends_with(&format!(":{hung}"))),
    );
    cluster.pause(hung, true);
    let started = Instant::now();
    let connected = RedisClusterStore::connect(&seeds).await;
    let took = started.elapsed();
    cluster.pause(hung, false);
    assert!(
        connected.is_ok(),
        "connect with one hung seed among five healthy ones: {:?} after {took:?}",
        connected.err()
    );
}

/// With `cluster-preferred-endpoint-type unknown-endpoint` (a documented
/// Redis setting for clusters whose nodes are reached by a name the
/// nodes do not know), `CLUSTER SLOTS` gives each host as NULL and
/// `MOVED` names `:port` with an empty host, meaning "the node you
/// asked". The router handles a host `""` or `"?"` but not NULL: parsing
/// the slot map fails, so `connect` fails, and with `Corrupt` (not even
/// transient). And a store connected before the setting follows `MOVED`
/// to host "", which fails: after a resharding or failover, calls for the
/// moved slots are `Unavailable` (503s), and the refresh that should
/// repair the map fails on the NULL hosts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_unknown_endpoints_is_usable() {
    let cluster = RedisCluster::start();
    // Connected while the nodes still give their IPs.
    let early = RedisClusterStore::connect(cluster.urls()).await.unwrap();
    let key = StoreKey::from_bytes([0x44; 32]);
    assert_eq!(early.load(&key).await, Ok(None));
    for node in &cluster.nodes {
        cluster
            .query(
                node.port,
                &[
                    "CONFIG",
                    "SET",
                    "cluster-preferred-endpoint-type",
                    "unknown-endpoint",
                ],
            )
            .unwrap();
    }
    let mut failures = Vec::new();
    let late = RedisClusterStore::connect(cluster.urls()).await;
    if let Err(error) = &late {
        failures.push(format!("connect: {error:?}"));
    }
    // The key's slot moves to another master.
    let slot = cluster.slot(&format!("sealed-session:{key}")).to_string();
    let masters = cluster.masters();
    let from = masters
        .iter()
        .find(|m| m.holds(slot.parse().unwrap()))
        .unwrap()
        .port;
    let to = masters.iter().find(|m| m.port != from).unwrap().port;
    let to_id = cluster.text(to, &["CLUSTER", "MYID"]).unwrap();
    for master in &masters {
        cluster
            .query(master.port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id])
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(early.create(&key, b"v", MINUTE).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if seen.first() != Some(&Ok(true)) {
        failures.push(format!(
            "after the slot moved to 127.0.0.1:{to}, creates (300 ms apart): {seen:?}"
        ));
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `with_wait(1, 3 s)` with `with_timeout(5 s)` promises to wait up to
/// 3 s for the replica, but every node connection is built with a fixed
/// 1 s response timeout (`DEFAULT_TIMEOUT`), whatever the store's
/// timeouts: a replica that confirms after 1.5 s (well within the asked
/// 3 s) still makes the write `Timeout`. The same cap silently shortens
/// any `with_timeout` above 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_waits_as_long_as_asked() {
    let cluster = RedisCluster::start();
    let store = RedisClusterStore::connect(cluster.urls())
        .await
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .with_wait(1, Duration::from_secs(3));
    let key = StoreKey::from_bytes([0x55; 32]);
    let (_, replica) = master_and_replica(&cluster, &key);
    assert!(store.create(&key, b"one", MINUTE).await.unwrap());
    cluster.pause(replica, true);
    let resume = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(1500)));
    let write = tokio::spawn({
        let store = store.clone();
        async move {
            let started = Instant::now();
            (store.replace(&key, b"two", MINUTE).await, started.elapsed())
        }
    });
    resume.join().unwrap();
    cluster.pause(replica, false);
    let (replaced, took) = write.await.unwrap();
    assert_eq!(
        replaced,
        Ok(true),
        "replica confirmed after ~1.5 s, within the 3 s asked; the call gave up after {took:?}"
    );
}

/// The lifecycle on top of `with_wait`: a session that shrinks back into
/// its cookie takes its store entry (`DEL`). With a replica slow to
/// confirm, the `DEL` runs on the master but is reported `Timeout`, so
/// the save fails and, as documented, "the browser keeps its previous
/// cookie": a pointer to the entry that is now gone. The next request
/// finds no session: one slow replica logs the user out (or empties the
/// cart), where the store without `with_wait` would have kept it. A
/// `DEL` that ran is not undone by reporting it failed; the same holds
/// for `replace` (the browser then sees the new value anyway).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_an_unconfirmed_delete_is_reported_done_so_the_session_moves_into_its_cookie() {
    let cluster = RedisCluster::start();
    let plain = RedisClusterStore::connect(cluster.urls()).await.unwrap();
    let store = plain
        .clone()
        .with_timeout(Duration::from_millis(300))
        .with_wait(1, Duration::from_millis(200));
    let clock = sealed_session::ManualClock::new(common::START);
    let sessions =
        sealed_session::Sessions::new(common::ring(&[1]), common::config(&clock).with_store(store))
            .unwrap();
    // The sessions are created without `WAIT`: on a loaded machine a
    // replica may take longer than 200 ms to confirm, and that is not
    // what this test is about.
    let setup =
        sealed_session::Sessions::new(common::ring(&[1]), common::config(&clock).with_store(plain))
            .unwrap();
    let mut seen: Vec<String> = Vec::new();
    let big = vec![6u8; 6000];
    // A session whose entry and whose note (written when the entry is
    // deleted) live on the same master: the case where the note's write
    // met the paused replica too, and failed the save. About one session
    // in three; at most 64 tries.
    let (cookie, master, entry) = 'found: {
        let masters = cluster.masters();
        for _ in 0..64 {
            let (_, first, ()) =
                common::round(&setup, &http::HeaderMap::new(), |s| s.set(big.clone())).await;
            let fresh: Vec<String> = masters
                .iter()
                .flat_map(|m| cluster.keys_on(m.port, "sealed-session:*"))
                .filter(|k| !seen.contains(k))
                .collect();
            assert_eq!(fresh.len(), 1, "one new entry: {fresh:?}");
            let entry = fresh[0].clone();
            seen.push(entry.clone());
            let slot = cluster.slot(&entry);
            let note = cluster.slot(&format!("sealed-session:{}", moved_note(&entry)));
            let master = masters.iter().find(|m| m.holds(slot)).unwrap();
            if master.holds(note) {
                break 'found (common::request_after(&first), master.clone(), entry);
            }
        }
        panic!("no session of 64 had its note on its entry's master");
    };
    let replica = master.replicas[0];

    cluster.pause(replica, true);
    let session = sessions.load::<Vec<u8>>(&cookie).await.unwrap();
    assert_eq!(session.get(), big);
    session.set(vec![6u8; 10]); // small again: back into the cookie
    let mut response = http::HeaderMap::new();
    let saved = sessions.save(&session, &mut response).await;
    cluster.pause(replica, false);
    // The delete ran on the master: it is reported done (with a warning),
    // so the browser gets the cookie that now holds the session. The
    // note left before it (a hint, written without `WAIT`) does not fail
    // the save either, whichever master its slot is on: before, it
    // failed this save whenever it landed on the paused replica's master.
    assert_eq!(saved, Ok(()));
    let next = sessions
        .load::<Vec<u8>>(&common::request_after(&response))
        .await
        .unwrap();
    assert_eq!((next.rejection(), next.get().len()), (None, 10));
    let on_master = cluster.keys_on(master.port, "sealed-session:*");
    assert!(!on_master.contains(&entry), "the entry was deleted");
    let note = format!("sealed-session:{}", moved_note(&entry));
    assert!(
        on_master.contains(&note),
        "the note was left: {on_master:?}"
    );
}

/// The key of the note the lifecycle leaves when it deletes the entry
/// under the Redis key `entry` (`StoreKey::moved`: SHA-256 of a
/// namespace and the entry's 32 bytes), in hex.
fn moved_note(entry: &str) -> String {
    use sha2::{Digest, Sha256};
    let hex = entry.trim_start_matches("sealed-session:");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let digest = Sha256::new()
        .chain_update(b"sealed-session v1 moved\0")
        .chain_update(&bytes)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fourth master added (`redis-cli --cluster add-node`), given a few
/// slots (`reshard` of 8 slots from the first master), and a key of the
/// store's in one of them, written through `store` (which follows the
/// `MOVED` and learns the new master). The new master's port and the key.
async fn a_key_on_an_added_master(
    cluster: &mut RedisCluster,
    store: &RedisClusterStore,
) -> (u16, StoreKey) {
    let added = tokio::task::block_in_place(|| {
        let added = cluster.add_master();
        // A master that has slots (the new one may sort first).
        let from = cluster
            .masters()
            .into_iter()
            .find(|m| m.port != added && !m.slots.is_empty())
            .unwrap()
            .port;
        cluster.redis_cli(&[
            "reshard",
            &format!("127.0.0.1:{from}"),
            "--cluster-from",
            &cluster.id(from),
            "--cluster-to",
            &cluster.id(added),
            "--cluster-slots",
            "8",
        ]);
        added
    });
    let master = cluster
        .masters()
        .into_iter()
        .find(|m| m.port == added)
        .unwrap();
    let key = (0u32..)
        .map(|n| {
            let mut bytes = [0x19; 32];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            StoreKey::from_bytes(bytes)
        })
        .find(|key| master.holds(key_slot(format!("sealed-session:{key}").as_bytes())))
        .unwrap();
    let slot = key_slot(format!("sealed-session:{key}").as_bytes());
    tokio::task::block_in_place(|| cluster.wait_owner(slot, added, &[], Duration::from_secs(10)));
    assert_eq!(store.create(&key, b"one", MINUTE).await, Ok(true));
    assert_eq!(
        cluster.keys_on(added, "sealed-session:*"),
        vec![format!("sealed-session:{key}")]
    );
    // The store's background refresh after the `MOVED` has run.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (added, key)
}

/// Drains the master at `added` (`redis-cli --cluster reshard` of its 8
/// slots, keys included, back to the first master: what `rebalance
/// --cluster-weight <id>=0` does for it, without the rounding moves among
/// the other masters that rebalance adds) and removes it (`redis-cli
/// --cluster del-node`: every other node forgets it, and it gets `CLUSTER
/// RESET SOFT`, left running). Waits until `slot` is on another master in
/// every remaining node's view. That master's port.
fn drain_and_remove(cluster: &RedisCluster, added: u16, slot: u16) -> u16 {
    let id = cluster.id(added);
    let to = cluster
        .masters()
        .into_iter()
        .find(|m| m.port != added)
        .unwrap()
        .port;
    let first = format!("127.0.0.1:{}", cluster.nodes[0].port);
    cluster.redis_cli(&[
        "reshard",
        &first,
        "--cluster-from",
        &id,
        "--cluster-to",
        &cluster.id(to),
        "--cluster-slots",
        "8",
    ]);
    let mut owner = added;
    wait_until(
        Duration::from_secs(10),
        "the slot leaves the drained master",
        || {
            owner = cluster
                .owner_seen_by(cluster.nodes[0].port, slot)
                .unwrap_or(added);
            owner != added
        },
    );
    cluster.redis_cli(&["del-node", &first, &id]);
    cluster.wait_owner(slot, owner, &[added], Duration::from_secs(10));
    wait_until(Duration::from_secs(10), "the removed node is reset", || {
        cluster.owner_seen_by(added, slot).is_none()
            && cluster
                .text(added, &["CLUSTER", "NODES"])
                .is_some_and(|n| n.lines().count() == 1)
    });
    owner
}

/// Issue 19. A master added, given slots, drained and removed (`del-node`)
/// while the application made no call for its slots. `del-node` leaves
/// the node running after `CLUSTER RESET SOFT`, and a reset node answers
/// `CLUSTERDOWN Hash slot not served` for every key, never `MOVED`. The
/// store still sent those slots to it (its map from before the drain),
/// and only `MOVED`, a connection error or a timeout made it read the map
/// again: every call for them was `Unavailable` (503), for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_drained_and_removed_while_idle_is_left_for_the_new_owner() {
    let mut cluster = RedisCluster::start();
    let store = RedisClusterStore::connect(cluster.urls())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let (added, key) = a_key_on_an_added_master(&mut cluster, &store).await;
    let name = format!("sealed-session:{key}");
    let slot = key_slot(name.as_bytes());
    // No call for the slot from here on, until the node is gone.
    let owner = tokio::task::block_in_place(|| drain_and_remove(&cluster, added, slot));
    assert!(cluster.query(added, &["PING"]).is_some(), "left running");
    assert!(
        cluster.query(added, &["GET", &name]).is_none(),
        "the reset node refuses the key"
    );

    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(store.load(&key).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen.iter().all(|r| r == &Ok(Some(b"one".to_vec()))),
        "loads (200 ms apart) of a key whose slot moved from the removed, reset node at {added} to {owner}: {seen:?}"
    );
    // Writes too, each applied once, on the new owner.
    assert_eq!(store.replace(&key, b"two", MINUTE).await, Ok(true));
    assert_eq!(store.create(&key, b"three", MINUTE).await, Ok(false));
    assert_eq!(store.load(&key).await, Ok(Some(b"two".to_vec())));
    assert_eq!(store.delete(&key).await, Ok(true));
    assert_eq!(store.create(&key, b"four", MINUTE).await, Ok(true));
    assert_eq!(cluster.keys_on(owner, &name), vec![name.clone()]);
}

/// Issue 19, with the removed node stopped instead of left running. The
/// store's open connection to it fails the first call ("broken pipe": the
/// `redis` crate says the same whether or not the command had gone out,
/// so that call is not sent again and its error stands); the store
/// reads the map again, and the next calls go to the new master. A call
/// that finds no connection and is refused one goes to the new master at
/// once (nothing was sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_drained_removed_and_stopped_while_idle_is_left_for_the_new_owner() {
    let mut cluster = RedisCluster::start();
    let store = RedisClusterStore::connect(cluster.urls())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let (added, key) = a_key_on_an_added_master(&mut cluster, &store).await;
    let slot = key_slot(format!("sealed-session:{key}").as_bytes());
    tokio::task::block_in_place(|| drain_and_remove(&cluster, added, slot));
    cluster.kill(added);
    // Still idle a moment: the store's connection notices the close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(store.load(&key).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("loads: {seen:?}");
    assert!(
        at_most_the_first_failed(&seen, b"one"),
        "loads (200 ms apart) of a key whose slot moved from the removed, stopped node: {seen:?}"
    );
    assert_eq!(store.replace(&key, b"two", MINUTE).await, Ok(true));
}

/// Every load after the first gave `value`; the first did too, or was
/// `Unavailable` (the store's open connection to a node that died).
fn at_most_the_first_failed(seen: &[Result<Option<Vec<u8>>, StoreError>], value: &[u8]) -> bool {
    let good =
        |r: &Result<Option<Vec<u8>>, StoreError>| r.as_ref().ok() == Some(&Some(value.to_vec()));
    seen[1..].iter().all(good)
        && (good(&seen[0]) || matches!(seen[0], Err(StoreError::Unavailable(_))))
}

/// A master replaced by its replica, whose address the seeds do not list
/// (only the three masters were given to `connect`): the store learns it
/// from the nodes it knows. As with any failed master, the first call
/// over the store's open connection to it fails ("broken pipe", a
/// possibly sent command: not sent again), the next ones go to the
/// replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_replaced_by_a_replica_that_is_no_seed_is_followed() {
    let mut cluster = RedisCluster::start();
    let masters = cluster.masters();
    let seeds: Vec<String> = masters
        .iter()
        .map(|m| format!("redis://127.0.0.1:{}", m.port))
        .collect();
    let store = RedisClusterStore::connect(&seeds)
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let key = StoreKey::from_bytes([0x66; 32]);
    let (master, replica) = master_and_replica(&cluster, &key);
    assert!(!seeds.iter().any(|s| s.ends_with(&format!(":{replica}"))));
    assert_eq!(store.create(&key, b"one", MINUTE).await, Ok(true));
    tokio::task::block_in_place(|| {
        wait_until(Duration::from_secs(10), "the replica has the key", || {
            cluster.replicas_caught_up(master)
        });
        cluster.kill(master);
        wait_until(Duration::from_secs(30), "the replica is promoted", || {
            cluster.masters().iter().any(|m| m.port == replica)
        });
    });
    let slot = key_slot(format!("sealed-session:{key}").as_bytes());
    tokio::task::block_in_place(|| cluster.wait_owner(slot, replica, &[], Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(store.load(&key).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("loads: {seen:?}");
    assert!(
        at_most_the_first_failed(&seen, b"one"),
        "loads (200 ms apart) after {master} failed and {replica} (no seed) took over: {seen:?}"
    );
    assert_eq!(store.replace(&key, b"two", MINUTE).await, Ok(true));
    assert_eq!(
        cluster.keys_on(replica, "sealed-session:*"),
        vec![format!("sealed-session:{key}")]
    );
}

/// The bound on the refresh after a refusal: a cluster that is down on
/// every node (`cluster-require-full-coverage yes` and a slot nobody
/// serves) answers `CLUSTERDOWN The cluster is down` for every key; each
/// call gets that error at once, the map still names the same master, and
/// the store reads the map at most once per 100 ms however many calls
/// fail. (Before the fix the errors came at once too, but the store never
/// read the map again after a `CLUSTERDOWN`: 0 refreshes, which fails the
/// `>= 1` check.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_down_everywhere_is_an_error_at_once_and_not_hammered() {
    let cluster = RedisCluster::start();
    let store = RedisClusterStore::connect(cluster.urls())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let key = StoreKey::from_bytes([0x77; 32]);
    assert_eq!(store.create(&key, b"one", MINUTE).await, Ok(true));
    let slot = key_slot(format!("sealed-session:{key}").as_bytes());
    let unserved = ((slot + 8192) % 16384).to_string();
    tokio::task::block_in_place(|| {
        for node in &cluster.nodes {
            let port = node.port;
            cluster
                .query(
                    port,
                    &["CONFIG", "SET", "cluster-require-full-coverage", "yes"],
                )
                .unwrap();
            cluster
                .query(port, &["CLUSTER", "DELSLOTS", &unserved])
                .unwrap();
        }
        wait_until(
            Duration::from_secs(10),
            "every node says the cluster is down",
            || {
                cluster.nodes.iter().all(|n| {
                    cluster
                        .text(n.port, &["CLUSTER", "INFO"])
                        .is_some_and(|info| info.contains("cluster_state:fail"))
                })
            },
        );
        for node in &cluster.nodes {
            cluster.query(node.port, &["CONFIG", "RESETSTAT"]).unwrap();
        }
    });
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..40 {
        let call = Instant::now();
        let loaded = store.load(&key).await;
        slowest = slowest.max(call.elapsed());
        assert!(
            matches!(&loaded, Err(StoreError::Unavailable(why)) if why.contains("CLUSTERDOWN") || why.contains("ClusterDown")),
            "{loaded:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    // Background refreshes still under way end within a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refreshes = tokio::task::block_in_place(|| {
        cluster
            .nodes
            .iter()
            .map(|n| {
                let stats = cluster.text(n.port, &["INFO", "commandstats"]).unwrap();
                stats
                    .lines()
                    .find_map(|l| l.strip_prefix("cmdstat_cluster|slots:calls="))
                    .map_or(0, |rest| {
                        rest.split(',').next().unwrap().parse::<u128>().unwrap()
                    })
            })
            .max()
            .unwrap()
    });
    let bound = took.as_millis() / 100 + 2;
    println!(
        "40 refused calls in {took:?} (slowest {slowest:?}): {refreshes} refreshes, bound {bound}"
    );
    assert!(
        slowest < Duration::from_millis(300),
        "slowest call {slowest:?}"
    );
    assert!(refreshes >= 1, "the refusal made the store look again");
    assert!(refreshes <= bound, "{refreshes} refreshes in {took:?}");
}

/// A stand-in for a cluster node whose own view is behind: it answers
/// `CLUSTER SLOTS` and `CLUSTER NODES` with what a real node answered
/// when [`StaleNode::capture`] last ran, `PING` and `CLIENT …` (the
/// connection's setup) as a node would, anything else with an error.
struct StaleNode {
    port: u16,
    view: std::sync::Arc<std::sync::Mutex<(Vec<u8>, Vec<u8>)>>,
    task: tokio::task::JoinHandle<()>,
}

impl StaleNode {
    async fn start(cluster: &RedisCluster, from: u16) -> StaleNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let view = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), Vec::new())));
        let node_view = view.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_stale(socket, node_view.clone()));
            }
        });
        let node = StaleNode { port, view, task };
        node.capture(cluster, from);
        node
    }

    /// Takes the node at `from`'s current answers as this node's view.
    fn capture(&self, cluster: &RedisCluster, from: u16) {
        let mut slots = Vec::new();
        resp(
            &cluster.query(from, &["CLUSTER", "SLOTS"]).unwrap(),
            &mut slots,
        );
        let mut nodes = Vec::new();
        resp(
            &cluster.query(from, &["CLUSTER", "NODES"]).unwrap(),
            &mut nodes,
        );
        *self.view.lock().unwrap() = (slots, nodes);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for StaleNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `value` in RESP2.
fn resp(value: &redis::Value, out: &mut Vec<u8>) {
    use redis::Value;
    match value {
        Value::Array(items) => {
            out.extend(format!("*{}\r\n", items.len()).bytes());
            for item in items {
                resp(item, out);
            }
        }
        Value::Int(n) => out.extend(format!(":{n}\r\n").bytes()),
        Value::BulkString(bytes) => {
            out.extend(format!("${}\r\n", bytes.len()).bytes());
            out.extend(bytes);
            out.extend(b"\r\n");
        }
        Value::SimpleString(text) => out.extend(format!("+{text}\r\n").bytes()),
        Value::Okay => out.extend(b"+OK\r\n"),
        Value::Nil => out.extend(b"$-1\r\n"),
        other => panic!("not in a CLUSTER SLOTS answer: {other:?}"),
    }
}

/// One connection to a [`StaleNode`]: RESP2 commands in, answers out.
async fn serve_stale(
    mut socket: tokio::net::TcpStream,
    view: std::sync::Arc<std::sync::Mutex<(Vec<u8>, Vec<u8>)>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = Vec::new();
    loop {
        while let Some((command, used)) = parse_command(&buffer) {
            buffer.drain(..used);
            let words: Vec<String> = command
                .iter()
                .map(|w| String::from_utf8_lossy(w).to_ascii_uppercase())
                .collect();
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let answer = match words.as_slice() {
                ["CLUSTER", "SLOTS"] => view.lock().unwrap().0.clone(),
                ["CLUSTER", "NODES"] => view.lock().unwrap().1.clone(),
                ["PING", ..] => b"+PONG\r\n".to_vec(),
                ["CLIENT", ..] => b"+OK\r\n".to_vec(),
                _ => b"-ERR not a real node\r\n".to_vec(),
            };
            if socket.write_all(&answer).await.is_err() {
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The first whole command (`*n` then `n` bulk strings) in `buffer`, and
/// the bytes it takes.
fn parse_command(buffer: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let line = |at: usize| -> Option<(&[u8], usize)> {
        let end = buffer[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((&buffer[at..end], end + 2))
    };
    let (head, mut at) = line(0)?;
    let count: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut words = Vec::new();
    for _ in 0..count {
        let (head, next) = line(at)?;
        let length: usize = std::str::from_utf8(head.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        if buffer.len() < next + length + 2 {
            return None;
        }
        words.push(buffer[next..next + length].to_vec());
        at = next + length + 2;
    }
    Some((words, at))
}

/// Issue 19, with a stale view among the nodes the refresh asks: a seed
/// that still gives the map from when the added master held its slots
/// (and that era's config epochs). After the removed node's `CLUSTERDOWN`
/// the store reads the map again; taking the first answer, it could take
/// that stale map and send the call back to the removed node. It takes
/// the map of the node that knows the highest config epoch: the drain's
/// migration gave the slots' new master an epoch above all others. (It
/// fails on the code before issue 19's fix, which did not refresh after
/// `CLUSTERDOWN` at all; it does not reproduce the stale-view risk on its
/// own: with the fix but the first-answer rule put back it passed 3 runs
/// out of 3, the stand-in, asked over a new connection each refresh,
/// answering after the real masters. It checks that a stale seed does not
/// win. Since review 2's B1, the seeds are asked only when no known master
/// gives a map, so here the stale seed is not asked at all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_prefers_the_newest_view_to_a_stale_one() {
    let mut cluster = RedisCluster::start();
    let stale = StaleNode::start(&cluster, cluster.nodes[0].port).await;
    let mut seeds = vec![stale.url()];
    seeds.extend(cluster.urls());
    let store = RedisClusterStore::connect(&seeds)
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let (added, key) = a_key_on_an_added_master(&mut cluster, &store).await;
    let slot = key_slot(format!("sealed-session:{key}").as_bytes());
    // The stand-in's view stops here: the slot on the added master.
    tokio::task::block_in_place(|| stale.capture(&cluster, cluster.nodes[0].port));
    assert_eq!(cluster.owner_seen_by(stale.port, slot), Some(added));
    let owner = tokio::task::block_in_place(|| drain_and_remove(&cluster, added, slot));
    assert_eq!(cluster.owner_seen_by(stale.port, slot), Some(added));
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(store.load(&key).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen.iter().all(|r| r == &Ok(Some(b"one".to_vec()))),
        "loads after the slot moved from the removed node at {added} to {owner}, with a seed that still sees it at {added}: {seen:?}"
    );
}

/// The highest config epoch any node of `cluster` knows.
fn highest_epoch(cluster: &RedisCluster) -> u64 {
    cluster
        .text(cluster.nodes[0].port, &["CLUSTER", "NODES"])
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(6)?.parse().ok())
        .max()
        .unwrap()
}

/// A node of ANOTHER Redis Cluster (another application's, in the same
/// network) that took over an address the seeds list: it serves every
/// slot itself and knows config epoch `epoch`. It acknowledges writes
/// (`SET` -> `OK`), holds nothing (`GET` -> nil, `DEL` -> 0), and counts
/// the `SET`s it got.
struct ForeignNode {
    sets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ForeignNode {
    async fn start(port: u16, epoch: u64) -> ForeignNode {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let sets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sets.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_foreign(socket, port, epoch, seen.clone()));
            }
        });
        ForeignNode { sets, task }
    }
}

impl Drop for ForeignNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection to a [`ForeignNode`].
async fn serve_foreign(
    mut socket: tokio::net::TcpStream,
    port: u16,
    epoch: u64,
    sets: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let id = "f".repeat(40);
    let slots = format!(
        "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:{port}\r\n${}\r\n{id}\r\n",
        id.len()
    );
    let nodes_text = format!(
        "{id} 127.0.0.1:{port}@{} myself,master - 0 0 {epoch} connected 0-16383\n",
        u32::from(port) + 10000
    );
    let nodes = format!("${}\r\n{nodes_text}\r\n", nodes_text.len());
    let mut buffer = Vec::new();
    loop {
        while let Some((command, used)) = parse_command(&buffer) {
            buffer.drain(..used);
            let words: Vec<String> = command
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
            let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
            let answer: Vec<u8> = match upper.as_slice() {
                ["CLUSTER", "SLOTS"] => slots.clone().into_bytes(),
                ["CLUSTER", "NODES"] => nodes.clone().into_bytes(),
                ["PING", ..] => b"+PONG\r\n".to_vec(),
                ["CLIENT", ..] => b"+OK\r\n".to_vec(),
                ["SET", ..] => {
                    sets.lock().unwrap().push(words[1].clone());
                    b"+OK\r\n".to_vec()
                }
                ["GET", ..] => b"$-1\r\n".to_vec(),
                ["DEL", ..] => b":0\r\n".to_vec(),
                ["WAIT", ..] => b":1\r\n".to_vec(),
                ["CONFIG", ..] => b"*0\r\n".to_vec(),
                _ => b"-ERR unknown command\r\n".to_vec(),
            };
            if socket.write_all(&answer).await.is_err() {
                return;
            }
        }
        let mut chunk = [0u8; 4096];
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Review 2, finding B1 (it failed before the fix). The refresh asked the
/// seeds on every refresh and took the map of whichever node knew the
/// highest config epoch, with nothing that tied that node to the cluster
/// the store is connected to. A seed address later taken by a node of
/// another Redis Cluster (pod/VM addresses are recycled; a stale seed
/// list) whose epochs are higher won every refresh from then on: the
/// store moved, at run time, to the other cluster. Sessions read as
/// absent, writes were acknowledged by the other cluster, and revocation
/// markers were no longer found.
///
/// Here: a seed whose node is gone when the store connects; later a
/// foreign node (epoch = ours + 1) answers on that address; an ordinary
/// event makes the store refresh (Redis closed its idle connections,
/// `CLIENT KILL TYPE normal`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_node_on_a_seed_address_does_not_take_the_store_over() {
    let cluster = RedisCluster::start();
    let reused = free_port();
    let mut seeds = cluster.urls();
    seeds.push(format!("redis://127.0.0.1:{reused}"));
    let store = RedisClusterStore::connect(&seeds)
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let key = StoreKey::from_bytes([0x21; 32]);
    assert_eq!(store.create(&key, b"one", MINUTE).await, Ok(true));

    let epoch = tokio::task::block_in_place(|| highest_epoch(&cluster)) + 1;
    let foreign = ForeignNode::start(reused, epoch).await;
    tokio::task::block_in_place(|| {
        for node in &cluster.nodes {
            cluster.query(node.port, &["CLIENT", "KILL", "TYPE", "normal"]);
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The first call over a killed connection may fail; it starts a
    // refresh of the slot map.
    let first = store.load(&key).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut loads = Vec::new();
    for _ in 0..3 {
        loads.push(store.load(&key).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let other = StoreKey::from_bytes([0x22; 32]);
    let created = store.create(&other, b"two", MINUTE).await;
    let on_foreign = foreign.sets.lock().unwrap().clone();
    println!(
        "foreign epoch {epoch}; first {first:?}; loads {loads:?}; create {created:?}; SETs the foreign node got: {on_foreign:?}"
    );
    assert!(
        on_foreign.is_empty(),
        "writes went to a node of another cluster: {on_foreign:?}"
    );
    assert!(
        loads.iter().all(|l| l == &Ok(Some(b"one".to_vec()))),
        "the session in our cluster is no longer found: {loads:?}"
    );
}

/// Adds a fourth master, gives it 8 slots (`reshard` from a master that
/// has some), drains them back and removes it (`del-node`: forgotten by
/// the others, `CLUSTER RESET SOFT`, left running). `before_drain` runs
/// while the slots are still on it. The removed node's port, its slots.
fn added_then_removed(
    cluster: &mut RedisCluster,
    before_drain: impl FnOnce(&RedisCluster, u16),
) -> (u16, Vec<u16>) {
    let added = cluster.add_master();
    let from = cluster
        .masters()
        .into_iter()
        .find(|m| m.port != added && !m.slots.is_empty())
        .unwrap()
        .port;
    cluster.redis_cli(&[
        "reshard",
        &format!("127.0.0.1:{from}"),
        "--cluster-from",
        &cluster.id(from),
        "--cluster-to",
        &cluster.id(added),
        "--cluster-slots",
        "8",
    ]);
    let master = cluster
        .masters()
        .into_iter()
        .find(|m| m.port == added)
        .unwrap();
    let slots: Vec<u16> = master.slots.iter().flat_map(|&(a, b)| a..=b).collect();
    for &slot in &slots {
        cluster.wait_owner(slot, added, &[], Duration::from_secs(10));
    }
    before_drain(cluster, added);
    let first = format!("127.0.0.1:{}", cluster.nodes[0].port);
    cluster.redis_cli(&[
        "reshard",
        &first,
        "--cluster-from",
        &cluster.id(added),
        "--cluster-to",
        &cluster.id(from),
        "--cluster-slots",
        "8",
    ]);
    let id = cluster.id(added);
    cluster.redis_cli(&["del-node", &first, &id]);
    for &slot in &slots {
        cluster.wait_owner(slot, from, &[added], Duration::from_secs(10));
    }
    wait_until(Duration::from_secs(10), "the removed node is reset", || {
        cluster
            .text(added, &["CLUSTER", "NODES"])
            .is_some_and(|n| n.lines().count() == 1)
    });
    (added, slots)
}

/// `n` store keys (default prefix) whose slots are in `slots`.
fn keys_in(slots: &[u16], n: usize, tag: u8) -> Vec<StoreKey> {
    (0u32..)
        .map(|i| {
            let mut bytes = [tag; 32];
            bytes[..4].copy_from_slice(&i.to_be_bytes());
            StoreKey::from_bytes(bytes)
        })
        .filter(|k| slots.contains(&key_slot(format!("sealed-session:{k}").as_bytes())))
        .take(n)
        .collect()
}

/// Review 2, finding B2 (it failed before the fix). With `with_wait`, a
/// write went as the pipeline `SET …; WAIT n t` over the node's wait-lane
/// connection. The removed (reset) node refuses the `SET` (`CLUSTERDOWN
/// Hash slot not served`) but still ran the `WAIT`, and having no replica
/// it blocked for the whole `t` before the refusal came back and the store
/// retried on the new owner. Redis blocks the whole connection while
/// `WAIT` waits, so the writes in flight to that node queued behind each
/// other: the k-th answer came after k * t, and past the call's bound
/// (timeout + t) the write was `Timeout` (503) although it never ran
/// anywhere and the new owner is healthy. Here: timeout 500 ms, wait
/// 300 ms, 5 concurrent creates for keys in the removed node's former
/// slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_writes_to_a_removed_node_do_not_queue_behind_its_waits() {
    let mut cluster = RedisCluster::start();
    let urls = cluster.urls();
    // Connected while the fourth master holds its 8 slots, then idle (no
    // call for those slots) until the node is removed.
    let store = std::sync::Arc::new(std::sync::Mutex::new(None));
    let handle = tokio::runtime::Handle::current();
    let (removed, slots) = tokio::task::block_in_place(|| {
        added_then_removed(&mut cluster, |_, _| {
            let connected = handle.block_on(async {
                RedisClusterStore::connect(&urls)
                    .await
                    .unwrap()
                    .with_timeout(Duration::from_millis(500))
                    .with_wait(1, Duration::from_millis(300))
            });
            *store.lock().unwrap() = Some(connected);
        })
    });
    let store = store.lock().unwrap().take().unwrap();
    let started = Instant::now();
    let calls: Vec<_> = keys_in(&slots, 5, 0x31)
        .into_iter()
        .map(|key| {
            let store = store.clone();
            tokio::spawn(async move {
                let result = store.create(&key, b"v", MINUTE).await;
                (result, started.elapsed())
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    println!("removed node {removed}; creates: {results:?}");
    assert!(
        results.iter().all(|(r, _)| r == &Ok(true)),
        "creates for the removed node's former slots (the new owner and its replica are healthy): {results:?}"
    );
}

type Handler = std::sync::Arc<dyn Fn(&[String]) -> Vec<u8> + Send + Sync>;

/// A scripted cluster node on `port`: `handler` answers each command. An
/// answer whose first byte is 0 is held until another such answer comes
/// (both go out together).
async fn fake_node(port: u16, handler: Handler) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buffer = Vec::new();
                let mut out = Vec::new();
                let mut held = 0;
                loop {
                    while let Some((command, used)) = parse_command(&buffer) {
                        buffer.drain(..used);
                        let words: Vec<String> = command
                            .iter()
                            .map(|w| String::from_utf8_lossy(w).into_owned())
                            .collect();
                        let answer = handler(&words);
                        if answer.first() == Some(&0) {
                            out.extend(&answer[1..]);
                            held += 1;
                        } else {
                            out.extend(answer);
                        }
                    }
                    if held != 1 && !out.is_empty() {
                        if socket.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                        held = 0;
                    }
                    let mut chunk = [0u8; 4096];
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    })
}

/// `CLUSTER SLOTS`: every slot on the node at `port`.
fn slots_on(port: u16) -> Vec<u8> {
    format!("*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n$9\r\n127.0.0.1\r\n:{port}\r\n").into_bytes()
}

/// `CLUSTER NODES` of a one-node cluster at `port` (node id `a…a`).
fn nodes_with_epoch(port: u16, epoch: u64) -> Vec<u8> {
    let text = format!(
        "{} 127.0.0.1:{port}@1 myself,master - 0 0 {epoch} connected 0-16383\n",
        "a".repeat(40)
    );
    format!("${}\r\n{text}\r\n", text.len()).into_bytes()
}

/// Review 2, finding B3 (it failed before the fix). `refresh_soon`
/// claimed the refresh (stamped its time) and only then spawned the task
/// that takes the refresh lock. A call refused (`CLUSTERDOWN`) in between
/// took the lock first, found the refresh already claimed (< 100 ms), and
/// gave up: its `CLUSTERDOWN` went to the caller, although a refresh was
/// under way and the doc says one under way is waited for and the call is
/// sent once to the slot's new master.
///
/// Scripted nodes: F1 served every slot; then every slot moved to F2 (F2
/// knows the higher epoch). Two calls at once: one for a key F1 answers
/// with `MOVED` (a background refresh), one for a key F1 answers with
/// `CLUSTERDOWN Hash slot not served` (a reset node); F1 sends both
/// answers together.
#[tokio::test(flavor = "current_thread")]
async fn a_refusal_racing_a_background_refresh_is_retried() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (p1, p2) = (free_port(), free_port());
    let moved = Arc::new(AtomicBool::new(false));
    let key_a = StoreKey::from_bytes([0x41; 32]);
    let key_b = StoreKey::from_bytes([0x42; 32]);
    let name_a = format!("sealed-session:{key_a}");
    let slot_a = key_slot(name_a.as_bytes());
    let f1_moved = moved.clone();
    let f1: Handler = Arc::new(move |words| {
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        let gone = f1_moved.load(Ordering::SeqCst);
        match upper.as_slice() {
            ["CLUSTER", "SLOTS"] if gone => slots_on(p2),
            ["CLUSTER", "SLOTS"] => slots_on(p1),
            ["CLUSTER", "NODES"] => nodes_with_epoch(p1, 1),
            ["GET", ..] if gone && words[1] == name_a => {
                format!("\0-MOVED {slot_a} 127.0.0.1:{p2}\r\n").into_bytes()
            }
            ["GET", ..] if gone => b"\0-CLUSTERDOWN Hash slot not served\r\n".to_vec(),
            ["GET", ..] => b"$-1\r\n".to_vec(),
            ["CONFIG", ..] => b"*0\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        }
    });
    let f2: Handler = Arc::new(move |words| {
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        match upper.as_slice() {
            ["CLUSTER", "SLOTS"] => slots_on(p2),
            ["CLUSTER", "NODES"] => nodes_with_epoch(p2, 2),
            ["GET", ..] => b"$3\r\nabc\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        }
    });
    let _f1 = fake_node(p1, f1).await;
    let _f2 = fake_node(p2, f2).await;
    let store = RedisClusterStore::connect([format!("redis://127.0.0.1:{p1}")])
        .await
        .unwrap();
    assert_eq!(store.load(&key_b).await, Ok(None));
    // Every slot moves to F2.
    moved.store(true, Ordering::SeqCst);
    // Both polled in this order every time (`tokio::join!` rotates).
    let (mut fa, mut fb) = (Box::pin(store.load(&key_a)), Box::pin(store.load(&key_b)));
    let (mut a, mut b) = (None, None);
    std::future::poll_fn(|cx| {
        use std::task::Poll;
        if a.is_none() {
            if let Poll::Ready(r) = fa.as_mut().poll(cx) {
                a = Some(r);
            }
        }
        if b.is_none() {
            if let Poll::Ready(r) = fb.as_mut().poll(cx) {
                b = Some(r);
            }
        }
        if a.is_some() && b.is_some() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    let (a, b) = (a.unwrap(), b.unwrap());
    println!("moved key: {a:?}; refused key: {b:?}");
    assert_eq!(a, Ok(Some(b"abc".to_vec())));
    assert_eq!(
        b,
        Ok(Some(b"abc".to_vec())),
        "the refused call is not sent to the new master: the refresh claimed by the MOVED had not taken the lock yet"
    );
}

/// Review 2, finding B1, where the seeds are asked: when no known master
/// gives a map, the refresh asks the seeds, and takes a map only from a
/// node that knows a node id of the cluster the store is connected to.
/// Scripted nodes: F1 (id `a…`) served every slot, then was reset (no
/// slots, `CLUSTERDOWN` for every key); a foreign node on a seed's
/// address knows a higher epoch but none of the cluster's ids: it is not
/// followed (the calls fail, nothing reaches it). Then F2 comes up on
/// another seed's address, serving every slot and knowing F1's id (the
/// same cluster, its membership changed): it is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_seeds_are_asked_only_a_node_of_the_same_cluster_is_followed() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let (p1, p2, reused) = (free_port(), free_port(), free_port());
    let reset = Arc::new(AtomicBool::new(false));
    let f1_reset = reset.clone();
    let f1: Handler = Arc::new(move |words| {
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        let gone = f1_reset.load(Ordering::SeqCst);
        match upper.as_slice() {
            ["CLUSTER", "SLOTS"] if gone => b"*0\r\n".to_vec(),
            ["CLUSTER", "SLOTS"] => slots_on(p1),
            ["CLUSTER", "NODES"] => nodes_with_epoch(p1, 1),
            ["GET" | "SET" | "DEL", ..] if gone => {
                b"-CLUSTERDOWN Hash slot not served\r\n".to_vec()
            }
            ["GET", ..] => b"$-1\r\n".to_vec(),
            ["CONFIG", ..] => b"*0\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        }
    });
    let f2: Handler = Arc::new(move |words| {
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        match upper.as_slice() {
            ["CLUSTER", "SLOTS"] => slots_on(p2),
            ["CLUSTER", "NODES"] => {
                let text = format!(
                    "{b} 127.0.0.1:{p2}@1 myself,master - 0 0 2 connected 0-16383\n{a} 127.0.0.1:{p1}@1 master - 0 0 1 connected\n",
                    a = "a".repeat(40),
                    b = "b".repeat(40)
                );
                format!("${}\r\n{text}\r\n", text.len()).into_bytes()
            }
            ["GET", ..] => b"$3\r\nabc\r\n".to_vec(),
            _ => b"+OK\r\n".to_vec(),
        }
    });
    let _f1 = fake_node(p1, f1).await;
    let store = RedisClusterStore::connect([
        format!("redis://127.0.0.1:{p1}"),
        format!("redis://127.0.0.1:{reused}"),
        format!("redis://127.0.0.1:{p2}"),
    ])
    .await
    .unwrap()
    .with_timeout(Duration::from_millis(500));
    let key = StoreKey::from_bytes([0x51; 32]);
    assert_eq!(store.load(&key).await, Ok(None));

    // F1 reset; only the foreign node answers on a seed's address.
    let foreign = ForeignNode::start(reused, 100).await;
    reset.store(true, Ordering::SeqCst);
    let loaded = store.load(&key).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let created = store
        .create(&StoreKey::from_bytes([0x52; 32]), b"v", MINUTE)
        .await;
    let on_foreign = foreign.sets.lock().unwrap().clone();
    println!(
        "F1 reset: load {loaded:?}; create {created:?}; SETs the foreign node got: {on_foreign:?}"
    );
    assert!(on_foreign.is_empty(), "writes went to another cluster");
    assert!(
        matches!(loaded, Err(StoreError::Unavailable(_))),
        "no node of this cluster serves the slot: {loaded:?}"
    );
    assert!(
        matches!(created, Err(StoreError::Unavailable(_))),
        "{created:?}"
    );

    // F2, of the same cluster, comes up on a seed's address.
    let _f2 = fake_node(p2, f2).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let loaded = store.load(&key).await;
    let created = store
        .create(&StoreKey::from_bytes([0x53; 32]), b"v", MINUTE)
        .await;
    println!("F2 up: load {loaded:?}; create {created:?}");
    assert_eq!(loaded, Ok(Some(b"abc".to_vec())), "F2, of the same cluster");
    assert_eq!(created, Ok(true));
    assert!(foreign.sets.lock().unwrap().is_empty());
}
