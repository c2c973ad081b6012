//! Cookie sessions vs server-store sessions, measured side by side over
//! real HTTP on 127.0.0.1. Run it with `scripts/compare.sh` (builds, pins
//! the server and the load generator to different cores, runs everything).
//!
//! - `compare run [SECONDS] [RUNS]`: the whole comparison; prints the table.
//! - `compare serve MODE PORT [REDIS_URL]`: one server (single-threaded).
//! - `compare load PORT PATH SECONDS CONNECTIONS`: one load run.
//!
//! Modes: `none` (no session layer: the ceiling), `cookie`,
//! `server_memory`, `server_redis`, `cookie_3kb` (a session carrying
//! 2,800 bytes besides the count: a ~3.8 KB cookie). Every connection is
//! one client with its own session cookie; on `/` each request changes the
//! session (the count rises by one, checked), on `/peek` it only reads it
//! (the count stays, checked).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sealed_session::{
    Key, Keyring, MemoryStore, RedisStore, Session, SessionConfig, SessionLayer, Sessions,
    StoreMode,
};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    count: u64,
    padding: Vec<u8>,
}

async fn app(mode: &str, redis: Option<&str>) -> Router {
    if mode == "none" {
        return Router::new()
            .route("/", get(|| async { "Visits: 0\n" }))
            .route("/peek", get(|| async { "Visits: 0\n" }));
    }
    let mut config = SessionConfig::default()
        .with_secure(false)
        .with_cookie_name("session");
    match mode {
        "server_memory" => {
            config = config
                .with_store(MemoryStore::new())
                .with_store_mode(StoreMode::Server)
        }
        "server_redis" => {
            let store = RedisStore::connect(redis.expect("server_redis needs a Redis URL"))
                .await
                .unwrap();
            config = config.with_store(store).with_store_mode(StoreMode::Server);
        }
        "cookie" | "cookie_3kb" => {}
        other => panic!("unknown mode {other}"),
    }
    let padding = if mode == "cookie_3kb" { 2800 } else { 0 };
    let sessions = Sessions::new(Keyring::new(Key::generate()), config).unwrap();
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
        .layer(SessionLayer::<Counter>::new(sessions))
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

async fn run(seconds: u64, runs: usize) {
    let me = std::env::current_exe().unwrap().display().to_string();
    let redis = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok()
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
    println!(
        "{} connections per run, {seconds} s per run, median of {runs} runs; server pinned to core 0, load generator to core 1: {}",
        CONNECTIONS,
        if pinning() { "yes" } else { "no" }
    );
    let cases: [(&str, &str, &'static str); 7] = [
        ("no session (ceiling)", "none", "/"),
        ("cookie", "cookie", "/"),
        ("cookie, read-only", "cookie", "/peek"),
        ("server, MemoryStore", "server_memory", "/"),
        ("server, Redis", "server_redis", "/"),
        ("cookie, ~3.8 KB session", "cookie_3kb", "/"),
        ("server, Redis, read-only", "server_redis", "/peek"),
    ];
    println!(
        "| mode | requests/s | p50 (us) | p99 (us) | ratio to ceiling | Cookie + Set-Cookie bytes/request | errors | broken sessions |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut ceiling = None;
    for (label, mode, path) in cases {
        if mode == "server_redis" && redis.is_none() {
            println!("| {label} | skipped: redis-server not installed | | | | | | |");
            continue;
        }
        let (mut rps, mut p50, mut p99, mut bytes) = (vec![], vec![], vec![], vec![]);
        let (mut errors, mut broken) = (0, 0);
        for _ in 0..runs {
            let port = free_port();
            let mut args = vec!["serve".to_owned(), mode.to_owned(), port.to_string()];
            if let Some((_, redis_port)) = &redis {
                args.push(format!("redis://127.0.0.1:{redis_port}"));
            }
            let _server = Killed(pinned("0", &me, &args).spawn().unwrap());
            wait_for(port).await;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut m = load(addr, path, seconds, CONNECTIONS, mode != "none").await;
            rps.push(m.rps());
            p50.push(m.percentile(0.50));
            p99.push(m.percentile(0.99));
            bytes.push(m.header_bytes as f64 / m.requests.max(1) as f64);
            errors += m.errors;
            broken += m.broken_sessions;
        }
        let rps = median(&mut rps);
        let ratio = *ceiling.get_or_insert(rps);
        println!(
            "| {label} | {rps:.0} | {:.0} | {:.0} | {:.2} | {:.0} | {errors} | {broken} |",
            median(&mut p50),
            median(&mut p99),
            rps / ratio,
            median(&mut bytes)
        );
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
            let app = app(mode, arg(3)).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            axum::serve(listener, app).await.unwrap();
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
            run(seconds, runs).await;
        }
        Some(other) => {
            eprintln!(
                "usage: compare [run [SECONDS] [RUNS] | serve MODE PORT [REDIS_URL] | load PORT PATH SECONDS CONNECTIONS] (got {other})"
            );
            std::process::exit(2);
        }
    }
}
