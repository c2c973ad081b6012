//! Cookie sessions vs server-store sessions, measured side by side over
//! real HTTP on 127.0.0.1. Run it with `scripts/compare.sh` (builds, pins
//! the server and the load generator to different cores, runs everything).
//!
//! - `compare run [SECONDS] [RUNS]`: the whole comparison; prints the table.
//! - `compare against OTHER [SECONDS] [RUNS]`: cookie mode of another
//!   build of this program (an older commit's, built by
//!   `scripts/compare.sh --against REV`) beside this build's, in the same
//!   run.
//! - `compare serve MODE PORT [STORE]`: one server (single-threaded);
//!   `STORE` is the Redis or PostgreSQL URL, the Redis Cluster nodes' URLs
//!   separated by commas, or the SQLite file, of the modes that need one.
//! - `compare load PORT PATH SECONDS CONNECTIONS`: one load run.
//! - `compare drill [SECONDS] [STOP_AT] [OUTAGE] [CONNECTIONS] [ROUNDS]`:
//!   the circuit breaker drill (run it with `scripts/breaker-drill.sh`):
//!   PostgreSQL stopped at `STOP_AT` s for `OUTAGE` s under a load of
//!   `SECONDS` s, with the breaker off and on in turns.
//!
//! Modes: `none` (no session layer: the ceiling), `none_bytes` (no
//! session layer, but `/` answers with a fixed sealed cookie of cookie
//! mode's size, which the client sends back: what the header bytes alone
//! cost), `cookie`, `cookie_router` (cookie mode with the layer around the
//! whole `Router` instead of `Router::layer`), `server_STORE` (every
//! session in the store), `fallback_STORE` (cookie mode with a session of
//! 3,100 bytes of padding, just over the cookie limit, so in the store) for
//! STORE `memory`, `redis`, `postgres`, `postgres_prepared` (with
//! `with_prepared_statements`), `postgres_nobreaker` (with
//! `with_circuit_breaker(None)`) or `sqlite`, `server_redis_cluster`
//! (a local Redis Cluster of three masters with a replica each, which
//! `run` starts when `redis-server` and `redis-cli` are installed),
//! `server_redis_cluster_wait` (the same with `with_wait(1, 100 ms)`:
//! every write waits for the replica), `cookie_3kb` (a
//! session carrying 2,800 bytes besides the
//! count: a ~3.8 KB cookie). Every connection is one client with its own
//! session cookie; on `/` each request changes the session (the count rises
//! by one, checked), on `/peek` it only reads it (the count stays,
//! checked).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sealed_session::{
    Key, Keyring, MemoryStore, PostgresStore, RedisClusterStore, RedisStore, Session,
    SessionConfig, SessionLayer, Sessions, SqliteStore, StoreMode,
};
use serde::{Deserialize, Serialize};
use tower::Layer as _;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    count: u64,
    padding: Vec<u8>,
}

/// The counter app's routes: `/` counts a visit, `/peek` reads the count.
/// `padding` bytes ride along in the session.
fn counter(padding: usize) -> Router {
    Router::new()
        .route(
            "/",
            get(move |session: Session<Counter>| async move {
                let count = session.update(|c| {
                    c.count += 1;
                    c.padding.resize(padding, 7);
                    c.count
                });
                format!("Visits: {count}\n")
            }),
        )
        .route(
            "/peek",
            get(|session: Session<Counter>| async move {
                format!("Visits: {}\n", session.read(|c| c.count))
            }),
        )
}

// The test suite's Redis Cluster: six local servers, three masters with a
// replica each, killed on drop.
#[allow(dead_code)]
#[path = "../tests/common/redis_cluster.rs"]
mod redis_cluster;
#[allow(dead_code)]
#[path = "../tests/common/redis_server.rs"]
mod redis_server;

/// A throw-away PostgreSQL cluster, as the tests start it.
#[path = "../tests/common/postgres_server.rs"]
#[allow(dead_code)]
mod postgres_server;

/// The circuit breaker drill: PostgreSQL stopped under load.
#[path = "breaker_drill/mod.rs"]
mod breaker_drill;

/// The session configuration of `mode`; `store` is the Redis or
/// PostgreSQL URL, or the SQLite file, of a server mode that needs one.
async fn sessions(mode: &str, store: Option<&str>) -> Sessions {
    let mut config = SessionConfig::default()
        .with_secure(false)
        .with_cookie_name("session");
    if let Some((place, kind)) = store_kind(mode) {
        config = config.with_store_mode(place);
        let url = || store.unwrap_or_else(|| panic!("{mode} needs the store's URL or file"));
        config = match kind {
            "memory" => config.with_store(MemoryStore::new()),
            "redis" => config.with_store(RedisStore::connect(url()).await.unwrap()),
            "postgres" | "postgres_prepared" | "postgres_nobreaker" => {
                let mut store = PostgresStore::connect(url()).await.unwrap();
                if kind == "postgres_prepared" {
                    store = store.with_prepared_statements();
                }
                store.migrate().await.unwrap();
                let config = config.with_store(store);
                if kind == "postgres_nobreaker" {
                    config.with_circuit_breaker(None)
                } else {
                    config
                }
            }
            "sqlite" => {
                let store = SqliteStore::open(url()).await.unwrap();
                store.migrate().await.unwrap();
                config.with_store(store)
            }
            "redis_cluster" | "redis_cluster_wait" => {
                let mut store = RedisClusterStore::connect(url().split(',')).await.unwrap();
                if kind == "redis_cluster_wait" {
                    store = store.with_wait(1, Duration::from_millis(100));
                }
                config.with_store(store)
            }
            other => panic!("unknown store {other}"),
        };
    } else if !matches!(
        mode,
        "cookie" | "cookie_3kb" | "cookie_router" | "none_bytes"
    ) {
        panic!("unknown mode {mode}");
    }
    Sessions::new(Keyring::new(Key::generate()), config).unwrap()
}

/// Where a `server_STORE` or `fallback_STORE` mode keeps sessions, and in
/// which store; `None` for the other modes.
fn store_kind(mode: &str) -> Option<(StoreMode, &str)> {
    mode.strip_prefix("server_")
        .map(|kind| (StoreMode::Server, kind))
        .or_else(|| {
            mode.strip_prefix("fallback_")
                .map(|kind| (StoreMode::Cookie, kind))
        })
}

/// The server a store kind needs (`postgres_prepared` and
/// `postgres_nobreaker` are settings of the PostgreSQL client, on the same
/// server).
fn server_kind(kind: &str) -> &str {
    match kind {
        "postgres_prepared" | "postgres_nobreaker" => "postgres",
        other => other,
    }
}

/// A `Set-Cookie` value as cookie mode sends it for a count of 1.
async fn sample_set_cookie() -> HeaderValue {
    let sessions = sessions("none_bytes", None).await;
    let session = sessions.load::<Counter>(&HeaderMap::new()).await.unwrap();
    session.update(|c| c.count = 1);
    let mut headers = HeaderMap::new();
    sessions.save(&session, &mut headers).await.unwrap();
    headers.remove(SET_COOKIE).unwrap()
}

/// Serves the app of `mode` on `listener` until killed.
async fn serve(mode: &str, listener: tokio::net::TcpListener, store: Option<&str>) {
    match mode {
        // No session layer, a fixed answer of the same length: the ceiling.
        "none" => {
            let app = Router::new()
                .route("/", get(|| async { "Visits: 0\n" }))
                .route("/peek", get(|| async { "Visits: 0\n" }));
            axum::serve(listener, app).await.unwrap()
        }
        // No session layer, but the same header bytes as cookie mode: a
        // fixed sealed cookie on `/`, which the client then sends back.
        "none_bytes" => {
            let set_cookie = sample_set_cookie().await;
            let app = Router::new()
                .route(
                    "/",
                    get(move || async move { ([(SET_COOKIE, set_cookie)], "Visits: 0\n") }),
                )
                .route("/peek", get(|| async { "Visits: 0\n" }));
            axum::serve(listener, app).await.unwrap()
        }
        // The layer around the whole Router rather than added to each
        // route with `Router::layer`.
        "cookie_router" => {
            let service =
                SessionLayer::<Counter>::new(sessions(mode, store).await).layer(counter(0));
            let make_service = axum::ServiceExt::<Request<Body>>::into_make_service(service);
            axum::serve(listener, make_service).await.unwrap()
        }
        _ => {
            let padding = match mode {
                "cookie_3kb" => 2800,
                _ if mode.starts_with("fallback_") => 3100,
                _ => 0,
            };
            let app =
                counter(padding).layer(SessionLayer::<Counter>::new(sessions(mode, store).await));
            axum::serve(listener, app).await.unwrap()
        }
    }
}

/// What one load run measured.
#[derive(Debug, Default)]
struct Measured {
    requests: u64,
    seconds: f64,
    latencies_us: Vec<u32>,
    header_bytes: u64,
    errors: u64,
    broken_sessions: u64,
}

impl Measured {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
    fn percentile(&mut self, p: f64) -> f64 {
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us.get(i).copied().unwrap_or(0) as f64
    }
}

/// One client: a keep-alive connection and its own session.
async fn client(
    addr: SocketAddr,
    path: &'static str,
    deadline: Instant,
    checked: bool,
) -> Measured {
    let mut measured = Measured::default();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut cookie: Option<String> = None;
    let mut count = 0u64;
    // The first request creates the session (not measured).
    let mut first = true;
    while first || Instant::now() < deadline {
        let target = if first { "/" } else { path };
        let mut request = http::Request::get(target).header(http::header::HOST, addr.to_string());
        if let Some(cookie) = &cookie {
            request = request.header(http::header::COOKIE, cookie.as_str());
        }
        let started = Instant::now();
        let response = match sender
            .send_request(request.body(Empty::<Bytes>::new()).unwrap())
            .await
        {
            Ok(response) => response,
            Err(_) => {
                measured.errors += 1;
                break;
            }
        };
        let status = response.status();
        let mut bytes = cookie.as_ref().map_or(0, |c| "Cookie: ".len() + c.len()) as u64;
        if let Some(set_cookie) = response.headers().get(http::header::SET_COOKIE) {
            bytes += ("Set-Cookie: ".len() + set_cookie.len()) as u64;
            let text = set_cookie.to_str().unwrap();
            cookie = Some(text.split(';').next().unwrap().to_owned());
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let elapsed = started.elapsed();
        let seen: u64 = std::str::from_utf8(&body)
            .ok()
            .and_then(|t| t.trim().strip_prefix("Visits: "))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX);
        if !status.is_success() {
            measured.errors += 1;
        } else if checked {
            let expected = if first || path == "/" {
                count + 1
            } else {
                count
            };
            if seen != expected {
                measured.broken_sessions += 1;
            }
            count = seen;
        }
        if !first {
            measured.requests += 1;
            measured.header_bytes += bytes;
            measured
                .latencies_us
                .push(elapsed.as_micros().min(u128::from(u32::MAX)) as u32);
        }
        first = false;
    }
    measured
}

async fn load(
    addr: SocketAddr,
    path: &'static str,
    seconds: u64,
    connections: usize,
    checked: bool,
) -> Measured {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(client(addr, path, deadline, checked)))
        .collect();
    let mut total = Measured::default();
    for task in tasks {
        let m = task.await.unwrap();
        total.requests += m.requests;
        total.header_bytes += m.header_bytes;
        total.errors += m.errors;
        total.broken_sessions += m.broken_sessions;
        total.latencies_us.extend(m.latencies_us);
    }
    total.seconds = started.elapsed().as_secs_f64();
    total
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `scripts/compare.sh` pinned this process to core 1 and wants
/// the servers on core 0 (it checks for two cores and `taskset`).
fn pinning() -> bool {
    std::env::var("COMPARE_PIN").as_deref() == Ok("1")
}

/// A child process, on core `core` when pinning.
fn pinned(core: &str, program: &str, args: &[String]) -> Command {
    let mut command = if pinning() {
        let mut c = Command::new("taskset");
        c.args(["-c", core, program]);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(port: u16) {
    for _ in 0..400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listened on port {port} within 10 s");
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// One row of the table: a label, the program that serves, its mode and
/// the path the clients ask for.
struct Case {
    label: String,
    server: String,
    mode: &'static str,
    path: &'static str,
}

impl Case {
    fn new(label: &str, server: &str, mode: &'static str, path: &'static str) -> Case {
        Case {
            label: label.to_owned(),
            server: server.to_owned(),
            mode,
            path,
        }
    }
}

/// The path of this program, which also serves every mode.
fn this_program() -> String {
    std::env::current_exe().unwrap().display().to_string()
}

/// The comparison: every mode of this build.
fn comparison() -> Vec<Case> {
    let me = this_program();
    [
        ("no session (ceiling)", "none", "/"),
        ("no session, cookie mode's header bytes", "none_bytes", "/"),
        (
            "no session, cookie mode's header bytes, read-only",
            "none_bytes",
            "/peek",
        ),
        ("cookie", "cookie", "/"),
        ("cookie, read-only", "cookie", "/peek"),
        ("cookie, layer around the Router", "cookie_router", "/"),
        (
            "cookie, layer around the Router, read-only",
            "cookie_router",
            "/peek",
        ),
        ("server, MemoryStore", "server_memory", "/"),
        ("server, Redis", "server_redis", "/"),
        ("cookie, ~3.8 KB session", "cookie_3kb", "/"),
        ("server, Redis, read-only", "server_redis", "/peek"),
        ("server, PostgreSQL", "server_postgres", "/"),
        ("server, PostgreSQL, read-only", "server_postgres", "/peek"),
        ("server, SQLite", "server_sqlite", "/"),
        ("server, SQLite, read-only", "server_sqlite", "/peek"),
        ("server, Redis Cluster", "server_redis_cluster", "/"),
        (
            "server, Redis Cluster, read-only",
            "server_redis_cluster",
            "/peek",
        ),
        (
            "server, Redis Cluster, with_wait(1, 100 ms)",
            "server_redis_cluster_wait",
            "/",
        ),
        (
            "cookie, session just over the limit, MemoryStore",
            "fallback_memory",
            "/",
        ),
        (
            "cookie, session just over the limit, Redis",
            "fallback_redis",
            "/",
        ),
        (
            "cookie, session just over the limit, PostgreSQL",
            "fallback_postgres",
            "/",
        ),
        (
            "cookie, session just over the limit, SQLite",
            "fallback_sqlite",
            "/",
        ),
    ]
    .into_iter()
    .map(|(label, mode, path)| Case::new(label, &me, mode, path))
    .collect()
}

/// Before and after: the modes named in `COMPARE_AGAINST_MODES` (comma
/// separated, default `cookie`) of another build (`other`, e.g. an older
/// commit's `compare`) and of this one, writes then reads, against this
/// build's ceiling. A mode ending in `:this` runs on this build only (a
/// mode the other build does not have).
fn against(other: &str) -> Vec<Case> {
    let me = this_program();
    let name = std::path::Path::new(other)
        .file_name()
        .map_or(other.into(), |name| name.to_string_lossy());
    // Read once per run of the program: leaking it gives the `'static`
    // modes the cases hold.
    let modes: &'static str = std::env::var("COMPARE_AGAINST_MODES")
        .unwrap_or_else(|_| "cookie".into())
        .leak();
    let mut cases = vec![Case::new("no session (ceiling)", &me, "none", "/")];
    for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        let (mode, only_this) = match mode.strip_suffix(":this") {
            Some(mode) => (mode, true),
            None => (mode, false),
        };
        for (path, kind) in [("/", ""), ("/peek", ", read-only")] {
            if !only_this {
                cases.push(Case::new(
                    &format!("{mode}{kind}, {name}"),
                    other,
                    mode,
                    path,
                ));
            }
            cases.push(Case::new(
                &format!("{mode}{kind}, this build"),
                &me,
                mode,
                path,
            ));
        }
    }
    cases
}

async fn run(cases: &[Case], seconds: u64, runs: usize) {
    let wants = |kind: &str| {
        cases
            .iter()
            .any(|case| store_kind(case.mode).is_some_and(|(_, k)| server_kind(k) == kind))
    };
    let wants_redis = wants("redis");
    let redis = (wants_redis
        && Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok())
    .then(|| {
        let port = free_port();
        let child = pinned(
            "0",
            "redis-server",
            &[
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ],
        )
        .spawn()
        .unwrap();
        (Killed(child), port)
    });
    if let Some((_, port)) = &redis {
        wait_for(*port).await;
    }
    // PostgreSQL with its durable defaults (fsync on), its processes on
    // the server's core.
    let postgres = wants("postgres")
        .then(|| std::panic::catch_unwind(postgres_server::PostgresServer::start_durable).ok())
        .flatten();
    if let (Some(postgres), true) = (&postgres, pinning()) {
        let pid = postgres.pid().expect("postmaster.pid").to_string();
        let _ = Command::new("taskset")
            .args(["-a", "-c", "-p", "0", &pid])
            .output();
    }
    // The Redis Cluster, its servers on the server's core.
    let installed = |program: &str| Command::new(program).arg("--version").output().is_ok();
    let cluster = ((wants("redis_cluster") || wants("redis_cluster_wait"))
        && installed("redis-server")
        && installed("redis-cli"))
    .then(|| {
        let wrapper: &[&str] = if pinning() {
            &["taskset", "-c", "0"]
        } else {
            &[]
        };
        redis_cluster::RedisCluster::start_with(wrapper)
    });
    // A fresh SQLite file for each server, in a directory removed at the end.
    let sqlite_dir =
        std::env::temp_dir().join(format!("sealed-session-compare-{}", std::process::id()));
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    let _sqlite_dir = RemovedDir(sqlite_dir.clone());
    println!(
        "{} connections per run, {seconds} s per run, median of {runs} runs (the rows take turns); server pinned to core 0, load generator to core 1: {}",
        CONNECTIONS,
        if pinning() { "yes" } else { "no" }
    );
    let kind = |case: &Case| store_kind(case.mode).map_or("", |(_, kind)| server_kind(kind));
    let skipped = |case: &Case| match kind(case) {
        "redis" => redis.is_none().then_some("redis-server not installed"),
        "postgres" => postgres
            .is_none()
            .then_some("PostgreSQL (initdb) not installed"),
        "redis_cluster" | "redis_cluster_wait" => cluster
            .is_none()
            .then_some("redis-server and redis-cli not installed"),
        _ => None,
    };
    // Rounds of every case in turn, so that a slow spell of the machine
    // falls on all the rows alike rather than on the runs of one row.
    let mut rows: Vec<Row> = cases.iter().map(|_| Row::default()).collect();
    for _ in 0..runs {
        for (case, row) in cases.iter().zip(&mut rows) {
            if skipped(case).is_some() {
                continue;
            }
            let port = free_port();
            let mut args = vec!["serve".to_owned(), case.mode.to_owned(), port.to_string()];
            match kind(case) {
                "redis" => args.extend(
                    redis
                        .as_ref()
                        .map(|(_, redis_port)| format!("redis://127.0.0.1:{redis_port}")),
                ),
                "postgres" => args.extend(postgres.as_ref().map(|pg| pg.url())),
                "redis_cluster" | "redis_cluster_wait" => {
                    args.extend(cluster.as_ref().map(|c| c.urls().join(",")))
                }
                "sqlite" => args.push(
                    sqlite_dir
                        .join(format!("sessions-{port}.db"))
                        .display()
                        .to_string(),
                ),
                _ => {}
            }
            let server = Killed(pinned("0", &case.server, &args).spawn().unwrap());
            wait_for(port).await;
            // CPU time of the server process, and of the store's server
            // processes when it uses one, over the measured run.
            let store_pids = || -> Vec<u32> {
                match kind(case) {
                    "redis" => redis.iter().map(|(child, _)| child.0.id()).collect(),
                    "postgres" => postgres
                        .iter()
                        .filter_map(|pg| pg.pid())
                        .flat_map(with_children)
                        .collect(),
                    "redis_cluster" | "redis_cluster_wait" => {
                        cluster.iter().flat_map(|c| c.pids()).collect()
                    }
                    _ => Vec::new(),
                }
            };
            let mut pids = vec![server.0.id()];
            pids.extend(store_pids());
            let cpu_before = cpu_ns(&pids);
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let checked = !case.mode.starts_with("none");
            let mut m = load(addr, case.path, seconds, CONNECTIONS, checked).await;
            // PostgreSQL's backends started during the run count from zero.
            pids.extend(store_pids());
            pids.sort_unstable();
            pids.dedup();
            let cpu = cpu_ns(&pids)
                .zip(cpu_before)
                .map(|(after, before)| after - before);
            row.rps.push(m.rps());
            row.p50.push(m.percentile(0.50));
            row.p99.push(m.percentile(0.99));
            row.bytes
                .push(m.header_bytes as f64 / m.requests.max(1) as f64);
            if let Some(cpu) = cpu {
                row.cpu_us
                    .push(cpu as f64 / 1000.0 / m.requests.max(1) as f64);
            }
            row.errors += m.errors;
            row.broken += m.broken_sessions;
        }
    }
    println!(
        "| mode | requests/s | p50 (us) | p99 (us) | ratio to ceiling | server CPU per request (us) | CPU ratio | Cookie + Set-Cookie bytes/request | errors | broken sessions |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut ceiling: Option<(f64, Option<f64>)> = None;
    for (case, mut row) in cases.iter().zip(rows) {
        let label = &case.label;
        if let Some(why) = skipped(case) {
            println!("| {label} | skipped: {why} | | | | | | | | |");
            continue;
        }
        let rps = median(&mut row.rps);
        let cpu = (!row.cpu_us.is_empty()).then(|| median(&mut row.cpu_us));
        let (ceiling_rps, ceiling_cpu) = *ceiling.get_or_insert((rps, cpu));
        let show =
            |v: Option<f64>, digits: usize| v.map_or("n/a".to_owned(), |v| format!("{v:.digits$}"));
        println!(
            "| {label} | {rps:.0} | {:.0} | {:.0} | {:.2} | {} | {} | {:.0} | {} | {} |",
            median(&mut row.p50),
            median(&mut row.p99),
            rps / ceiling_rps,
            show(cpu, 2),
            show(cpu.zip(ceiling_cpu).map(|(cpu, ceiling)| ceiling / cpu), 2),
            median(&mut row.bytes),
            row.errors,
            row.broken
        );
    }
}

/// One row's runs.
#[derive(Default)]
struct Row {
    rps: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    bytes: Vec<f64>,
    cpu_us: Vec<f64>,
    errors: u64,
    broken: u64,
}

/// Nanoseconds the processes' threads have run on a CPU (Linux
/// `/proc/PID/task/*/schedstat`: the async work is on the main thread,
/// SQLite's on sqlx's worker threads), or `None` where that cannot be
/// read. A process gone since counts zero.
fn cpu_ns(pids: &[u32]) -> Option<u64> {
    pids.iter()
        .map(|pid| {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return Some(0);
            };
            tasks
                .flatten()
                .map(|task| {
                    let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
                    text.split_whitespace().next()?.parse::<u64>().ok()
                })
                .sum::<Option<u64>>()
        })
        .sum()
}

/// `pid` and its child processes (PostgreSQL's backends).
fn with_children(pid: u32) -> Vec<u32> {
    let children = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let child: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces.
            let parent: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (parent == pid).then_some(child)
        });
    std::iter::once(pid).chain(children).collect()
}

/// A directory removed on drop.
struct RemovedDir(std::path::PathBuf);

impl Drop for RemovedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const CONNECTIONS: usize = 32;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("serve") => {
            let (mode, port) = (arg(1).unwrap(), arg(2).unwrap().parse::<u16>().unwrap());
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            serve(mode, listener, arg(3)).await;
        }
        Some("load") => {
            let port: u16 = arg(1).unwrap().parse().unwrap();
            let path: &'static str = if arg(2) == Some("/peek") {
                "/peek"
            } else {
                "/"
            };
            let seconds = arg(3).map_or(5, |s| s.parse().unwrap());
            let connections = arg(4).map_or(CONNECTIONS, |s| s.parse().unwrap());
            let mut m = load(
                SocketAddr::from(([127, 0, 0, 1], port)),
                path,
                seconds,
                connections,
                true,
            )
            .await;
            println!(
                "{:.0} req/s, p50 {:.0} us, p99 {:.0} us, errors {}, broken sessions {}",
                m.rps(),
                m.percentile(0.5),
                m.percentile(0.99),
                m.errors,
                m.broken_sessions
            );
        }
        Some("run") | None => {
            let seconds = arg(1).map_or(5, |s| s.parse().unwrap());
            let runs = arg(2).map_or(3, |s| s.parse().unwrap());
            run(&comparison(), seconds, runs).await;
        }
        Some("against") => {
            let other = arg(1).expect("against needs the other build's compare binary");
            let seconds = arg(2).map_or(5, |s| s.parse().unwrap());
            let runs = arg(3).map_or(5, |s| s.parse().unwrap());
            run(&against(other), seconds, runs).await;
        }
        Some("drill") => {
            let number = |i: usize, default: u64| arg(i).map_or(default, |s| s.parse().unwrap());
            breaker_drill::drill(breaker_drill::Plan {
                seconds: number(1, 30),
                stop_at: number(2, 10),
                outage: number(3, 10),
                connections: number(4, 64) as usize,
                rounds: number(5, 2) as usize,
            })
            .await;
        }
        Some(other) => {
            eprintln!(
                "usage: compare [run [SECONDS] [RUNS] | against OTHER_COMPARE [SECONDS] [RUNS] | serve MODE PORT [STORE] | load PORT PATH SECONDS CONNECTIONS | drill [SECONDS] [STOP_AT] [OUTAGE] [CONNECTIONS] [ROUNDS]] (got {other})"
            );
            std::process::exit(2);
        }
    }
}
