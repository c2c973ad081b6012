//! A real Redis Cluster for tests: six `redis-server --cluster-enabled
//! yes` on free loopback ports (client and bus), joined by `redis-cli
//! --cluster create … --cluster-replicas 1` into three masters with a
//! replica each; no persistence; every process killed and the directory
//! removed on drop. Needs `redis-server` and `redis-cli` on the PATH
//! (`.ci/run` installs them).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis_server::{free_port, temp_dir};

/// The cluster's node timeout: how long a master may be unreachable
/// before the others mark it failed and its replica takes over.
pub const NODE_TIMEOUT_MS: u64 = 1000;

pub struct Node {
    pub port: u16,
    bus_port: u16,
    child: Option<Child>,
}

impl Node {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn alive(&self) -> bool {
        self.child.is_some()
    }
}

/// One master as the cluster sees it.
#[derive(Clone, Debug)]
pub struct Master {
    pub port: u16,
    pub slots: Vec<(u16, u16)>,
    pub replicas: Vec<u16>,
}

impl Master {
    pub fn holds(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
    }
}

pub struct RedisCluster {
    pub nodes: Vec<Node>,
    dir: PathBuf,
    /// A command the servers run under (empty: none).
    wrapper: Vec<String>,
}

/// Polls `done` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl RedisCluster {
    /// Starts six nodes, creates the cluster, and waits (at most 30 s)
    /// until every node says `cluster_state:ok` and every replica is in
    /// sync with its master.
    pub fn start() -> RedisCluster {
        RedisCluster::start_with(&[])
    }

    /// [`RedisCluster::start`], each server run through `wrapper` (e.g.
    /// `taskset -c 0`).
    pub fn start_with(wrapper: &[&str]) -> RedisCluster {
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            dir: temp_dir("cluster"),
            wrapper: wrapper.iter().map(|w| w.to_string()).collect(),
        };
        for _ in 0..6 {
            let node = cluster.launch_answering();
            cluster.nodes.push(node);
        }
        let mut create = Command::new("redis-cli");
        create.args(["--cluster", "create"]);
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let status = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli not found: install it (apt-get install redis-tools); .ci/run does");
        assert!(status.success(), "redis-cli --cluster create failed");
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// A node on fresh free ports, answering `PING`. A port found free
    /// may be taken before the server binds it (by another test's server
    /// or outgoing connection): then the server exits, and it starts
    /// again on other ports (at most 5 times).
    fn launch_answering(&self) -> Node {
        for _ in 0..5 {
            let mut node = Node {
                port: free_port(),
                bus_port: free_port(),
                child: None,
            };
            self.launch(&mut node);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(5) {
                if self.query(node.port, &["PING"]).is_some() {
                    return node;
                }
                let exited = node
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some());
                if exited {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        panic!("redis-server did not start on free ports in 5 attempts");
    }

    fn launch(&self, node: &mut Node) {
        let config = self.dir.join(format!("nodes-{}.conf", node.port));
        let mut command = match self.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg("redis-server");
                command
            }
            None => Command::new("redis-server"),
        };
        let child = command
            .args(["--port", &node.port.to_string()])
            .args(["--cluster-port", &node.bus_port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(&config)
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // A master that fails stops its own slots only (the default,
            // `yes`, stops the whole cluster until a replica takes over).
            .args(["--cluster-require-full-coverage", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server not found: install it (apt-get install redis-server); .ci/run does",
            );
        node.child = Some(child);
    }

    /// The process ids of the live nodes.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes
            .iter()
            .filter_map(|node| node.child.as_ref().map(Child::id))
            .collect()
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// Runs one command on the node at `port`; `None` if it does not
    /// answer (within 2 s) or answers with an error.
    pub fn query(&self, port: u16, args: &[&str]) -> Option<redis::Value> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
        let mut connection = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .ok()?;
        connection
            .set_read_timeout(Some(Duration::from_secs(2)))
            .ok()?;
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query(&mut connection).ok()
    }

    /// A command's answer as text (bulk or verbatim string).
    pub fn text(&self, port: u16, args: &[&str]) -> Option<String> {
        redis::from_redis_value(self.query(port, args)?).ok()
    }

    /// The masters, as the first live node answering `CLUSTER NODES`
    /// sees them (failed ones left out).
    pub fn masters(&self) -> Vec<Master> {
        let text = self
            .nodes
            .iter()
            .filter(|node| node.alive())
            .find_map(|node| self.text(node.port, &["CLUSTER", "NODES"]))
            .expect("a live node answers CLUSTER NODES");
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        let port_of = |address: &str| -> u16 {
            let host_port = address.split('@').next().unwrap();
            host_port.rsplit(':').next().unwrap().parse().unwrap()
        };
        let mut masters = Vec::new();
        for fields in &lines {
            let flags = fields[2];
            if !flags.contains("master") || flags.contains("fail") {
                continue;
            }
            let slots = fields[8..]
                .iter()
                .filter(|range| !range.starts_with('['))
                .map(|range| match range.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (range.parse().unwrap(), range.parse().unwrap()),
                })
                .collect();
            let replicas = lines
                .iter()
                .filter(|other| other[3] == fields[0])
                .map(|other| port_of(other[1]))
                .collect();
            masters.push(Master {
                port: port_of(fields[1]),
                slots,
                replicas,
            });
        }
        masters.sort_by_key(|m| m.port);
        masters
    }

    /// The master serving `slot` now.
    pub fn master_of(&self, slot: u16) -> Master {
        self.masters()
            .into_iter()
            .find(|m| m.holds(slot))
            .unwrap_or_else(|| panic!("no master holds slot {slot}"))
    }

    /// The slot of a key, as the cluster computes it.
    pub fn slot(&self, key: &str) -> u16 {
        let port = self.nodes[0].port;
        let reply = self.query(port, &["CLUSTER", "KEYSLOT", key]).unwrap();
        redis::from_redis_value(reply).unwrap()
    }

    /// The keys matching `pattern` held by the node at `port` (its own
    /// slots only: `KEYS` does not cross nodes).
    pub fn keys_on(&self, port: u16, pattern: &str) -> Vec<String> {
        redis::from_redis_value(self.query(port, &["KEYS", pattern]).unwrap()).unwrap()
    }

    /// Starts a seventh (eighth…) node and adds it to the cluster as a
    /// master without slots (`redis-cli --cluster add-node`); waits (at
    /// most 10 s) until every live node knows it. Its port.
    pub fn add_master(&mut self) -> u16 {
        let node = self.launch_answering();
        let port = node.port;
        self.nodes.push(node);
        let existing = format!("127.0.0.1:{}", self.nodes[0].port);
        self.redis_cli(&["add-node", &format!("127.0.0.1:{port}"), &existing]);
        let id = self.id(port);
        wait_until(
            Duration::from_secs(10),
            "every node knows the new master",
            || {
                self.nodes.iter().filter(|n| n.alive()).all(|n| {
                    self.text(n.port, &["CLUSTER", "NODES"])
                        .is_some_and(|nodes| {
                            nodes.lines().filter(|l| !l.contains("handshake")).count()
                                == self.live()
                                && nodes.contains(&id)
                        })
                })
            },
        );
        // A node that starts takes 2 s (Redis's "writable delay") to
        // say `cluster_state:ok` and serve keys.
        wait_until(Duration::from_secs(10), "the new master is ok", || {
            self.text(port, &["CLUSTER", "INFO"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
        });
        port
    }

    /// How many nodes run.
    fn live(&self) -> usize {
        self.nodes.iter().filter(|n| n.alive()).count()
    }

    /// The node id of the node at `port` (`CLUSTER MYID`).
    pub fn id(&self, port: u16) -> String {
        self.text(port, &["CLUSTER", "MYID"]).expect("CLUSTER MYID")
    }

    /// Runs `redis-cli --cluster <args> --cluster-yes` and asserts it
    /// succeeded; its output.
    pub fn redis_cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .args(args)
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli not found");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "redis-cli --cluster {args:?}: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        text
    }

    /// The port of the master of `slot` in the node at `port`'s own view
    /// (`CLUSTER SLOTS`), if it has one for it.
    pub fn owner_seen_by(&self, port: u16, slot: u16) -> Option<u16> {
        let redis::Value::Array(ranges) = self.query(port, &["CLUSTER", "SLOTS"])? else {
            return None;
        };
        ranges.into_iter().find_map(|range| {
            let redis::Value::Array(fields) = range else {
                return None;
            };
            let start: u16 = redis::from_redis_value(fields.first()?.clone()).ok()?;
            let end: u16 = redis::from_redis_value(fields.get(1)?.clone()).ok()?;
            let redis::Value::Array(master) = fields.get(2)? else {
                return None;
            };
            let owner: u16 = redis::from_redis_value(master.get(1)?.clone()).ok()?;
            (start..=end).contains(&slot).then_some(owner)
        })
    }

    /// Waits (at most `limit`) until every live node but those in
    /// `except` sees the master at `owner` serve `slot`.
    pub fn wait_owner(&self, slot: u16, owner: u16, except: &[u16], limit: Duration) {
        wait_until(limit, &format!("slot {slot} on {owner} everywhere"), || {
            self.nodes
                .iter()
                .filter(|n| n.alive() && !except.contains(&n.port))
                .all(|n| self.owner_seen_by(n.port, slot) == Some(owner))
        });
    }

    /// Kills the node at `port` with SIGKILL (no persistence: its data is
    /// gone; its replica, if it was a master, takes over).
    pub fn kill(&mut self, port: u16) {
        let node = self.nodes.iter_mut().find(|n| n.port == port).unwrap();
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (SIGSTOP) or continues (SIGCONT) the node at `port`: a node
    /// that hangs without closing its connections.
    pub fn pause(&self, port: u16, paused: bool) {
        let node = self.nodes.iter().find(|n| n.port == port).unwrap();
        let pid = node.child.as_ref().unwrap().id();
        let signal = if paused { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Every live node says `cluster_state:ok`, three masters serve all
    /// 16384 slots, and each has a live replica in sync.
    pub fn healthy(&self) -> bool {
        let ok = self.nodes.iter().filter(|n| n.alive()).all(|node| {
            self.text(node.port, &["CLUSTER", "INFO"])
                .is_some_and(|info| info.contains("cluster_state:ok"))
        });
        if !ok {
            return false;
        }
        let masters = self.masters();
        let slots: u32 = masters
            .iter()
            .flat_map(|m| &m.slots)
            .map(|&(a, b)| u32::from(b - a) + 1)
            .sum();
        slots == 16384
            && masters.len() == 3
            && masters.iter().all(|m| {
                m.replicas.iter().any(|&replica| {
                    self.nodes.iter().any(|n| n.port == replica && n.alive())
                        && self
                            .text(replica, &["INFO", "replication"])
                            .is_some_and(|info| info.contains("master_link_status:up"))
                })
            })
    }

    pub fn wait_healthy(&self, limit: Duration) {
        wait_until(limit, "the cluster is healthy", || self.healthy());
    }

    /// Whether the replication offsets of `master` and its replicas agree
    /// (every write the master took is on its replicas).
    pub fn replicas_caught_up(&self, master: u16) -> bool {
        let Some(info) = self.text(master, &["INFO", "replication"]) else {
            return false;
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
                .map(str::to_owned)
        };
        let Some(offset) = field("master_repl_offset:") else {
            return false;
        };
        let replicas: Vec<String> = info
            .lines()
            .filter(|line| line.starts_with("slave") && line.contains("offset="))
            .map(str::to_owned)
            .collect();
        !replicas.is_empty()
            && replicas
                .iter()
                .all(|line| line.contains(&format!("offset={offset},")))
    }
}

/// The cluster slot of `key` (CRC16/XMODEM modulo 16384; no hash tag:
/// the store's keys carry none), computed here to search many keys fast.
pub fn key_slot(key: &[u8]) -> u16 {
    let crc = key.iter().fold(0u16, |crc, &byte| {
        (0..8).fold(crc ^ (u16::from(byte) << 8), |crc, _| {
            if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            }
        })
    });
    crc % 16384
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                // SIGKILL ends a stopped (paused) process too.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
