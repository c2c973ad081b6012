//! The circuit breaker drill (`compare drill`, run by
//! `scripts/breaker-drill.sh`): PostgreSQL stopped for a while under load,
//! with the breaker off (`server_postgres_nobreaker`) and on
//! (`server_postgres`, the default), the runs taking turns in one run of
//! the program. Every request of the load is for a store-held session.
//! Each request's status and latency are recorded with the time it
//! completed; the tables give, for each run, the answers per second (`200`
//! and `503` apart) during the outage and over the whole run, the p50 and
//! p99 latency of the requests that completed during the outage, and how
//! long after PostgreSQL accepted connections again the first `200` came.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use super::postgres_server::PostgresServer;
use super::{Killed, free_port, pinned, pinning, this_program, wait_for};

/// How the drill runs: the load's length, when PostgreSQL stops and for
/// how long, the clients, and how many rounds of (off, on).
pub struct Plan {
    pub seconds: u64,
    pub stop_at: u64,
    pub outage: u64,
    pub connections: usize,
    pub rounds: usize,
}

/// One answered (or failed) request: when it completed (since the load
/// started), how long it took, and its status (0: the connection failed).
#[derive(Clone, Copy)]
struct Sample {
    done: Duration,
    latency: Duration,
    status: u16,
}

/// When the outage happened, relative to the load's start.
#[derive(Clone, Copy, Default)]
struct Outage {
    /// `pg_ctl stop` called.
    stop: Duration,
    /// `pg_ctl stop` returned (the server is gone).
    stopped: Duration,
    /// `pg_ctl start` called.
    start: Duration,
    /// `pg_ctl start -w` returned (the server accepts connections).
    started: Duration,
}

/// One client on `path` until `deadline`: a keep-alive connection (made
/// again if it breaks) and its own session, made by a first request that
/// is not recorded.
async fn client(
    addr: SocketAddr,
    path: &'static str,
    began: Instant,
    deadline: Instant,
) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut cookie: Option<String> = None;
    let mut first = true;
    // Each pass is one connection; a broken one is replaced after 10 ms.
    while Instant::now() < deadline {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        stream.set_nodelay(true).unwrap();
        let Ok((mut sender, connection)) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
        else {
            continue;
        };
        tokio::spawn(connection);
        while first || Instant::now() < deadline {
            let target = if first { "/" } else { path };
            let mut request =
                http::Request::get(target).header(http::header::HOST, addr.to_string());
            if let Some(cookie) = &cookie {
                request = request.header(http::header::COOKIE, cookie.as_str());
            }
            let started = Instant::now();
            let status = match sender
                .send_request(request.body(Empty::<Bytes>::new()).unwrap())
                .await
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if let Some(set_cookie) = response.headers().get(http::header::SET_COOKIE) {
                        let text = set_cookie.to_str().unwrap_or_default();
                        cookie = text.split(';').next().map(str::to_owned);
                    }
                    match response.into_body().collect().await {
                        Ok(_) => status,
                        Err(_) => 0,
                    }
                }
                Err(_) => 0,
            };
            let now = Instant::now();
            if !first {
                samples.push(Sample {
                    done: now - began,
                    latency: now - started,
                    status,
                });
            }
            first = false;
            if status == 0 {
                break;
            }
        }
    }
    samples
}

/// What one run measured.
struct Run {
    breaker: bool,
    outage: Outage,
    samples: Vec<Sample>,
    seconds: f64,
}

/// Latency percentile `p` of `samples`, in milliseconds.
fn percentile_ms(samples: &[&Sample], p: f64) -> f64 {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort_unstable();
    let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
    latencies
        .get(i)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

impl Run {
    /// Samples that completed in `[from, to)`.
    fn within(&self, from: Duration, to: Duration) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.done >= from && s.done < to)
            .collect()
    }

    /// The outage window: from `pg_ctl stop` to PostgreSQL accepting
    /// connections again.
    fn outage_window(&self) -> Vec<&Sample> {
        self.within(self.outage.stop, self.outage.started)
    }

    /// Seconds from PostgreSQL accepting connections again to the first
    /// `200` completed after it.
    fn recovery(&self) -> Option<f64> {
        self.samples
            .iter()
            .filter(|s| s.status == 200 && s.done >= self.outage.started)
            .map(|s| s.done)
            .min()
            .map(|done| (done - self.outage.started).as_secs_f64())
    }
}

fn count(samples: &[&Sample], status: u16) -> usize {
    samples.iter().filter(|s| s.status == status).count()
}

/// One run: a server of `mode` on PostgreSQL, the load, and the outage at
/// `plan.stop_at`.
async fn run_one(postgres: &Arc<PostgresServer>, plan: &Plan, breaker: bool) -> Run {
    let mode = if breaker {
        "server_postgres"
    } else {
        "server_postgres_nobreaker"
    };
    let port = free_port();
    let args = vec![
        "serve".to_owned(),
        mode.to_owned(),
        port.to_string(),
        postgres.url(),
    ];
    let server = Killed(pinned("0", &this_program(), &args).spawn().unwrap());
    wait_for(port).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let began = Instant::now();
    let deadline = began + Duration::from_secs(plan.seconds);
    let clients: Vec<_> = (0..plan.connections)
        .map(|_| tokio::spawn(client(addr, "/", began, deadline)))
        .collect();
    // The outage, on a thread of its own (pg_ctl blocks).
    let stop_at = began + Duration::from_secs(plan.stop_at);
    let start_at = stop_at + Duration::from_secs(plan.outage);
    let pg = Arc::clone(postgres);
    let outage = tokio::task::spawn_blocking(move || {
        std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
        let stop = began.elapsed();
        pg.stop();
        let stopped = began.elapsed();
        std::thread::sleep(start_at.saturating_duration_since(Instant::now()));
        let start = began.elapsed();
        pg.start_again();
        let started = began.elapsed();
        pin_postgres(&pg);
        Outage {
            stop,
            stopped,
            start,
            started,
        }
    });
    let mut samples = Vec::new();
    for task in clients {
        samples.extend(task.await.unwrap());
    }
    let seconds = began.elapsed().as_secs_f64();
    let outage = outage.await.unwrap();
    drop(server);
    Run {
        breaker,
        outage,
        samples,
        seconds,
    }
}

/// PostgreSQL's processes on the server's core, when pinning.
fn pin_postgres(postgres: &PostgresServer) {
    if let (Some(pid), true) = (postgres.pid(), pinning()) {
        let _ = std::process::Command::new("taskset")
            .args(["-a", "-c", "-p", "0", &pid.to_string()])
            .output();
    }
}

/// The drill: rounds of (breaker off, breaker on); prints the tables.
pub async fn drill(plan: Plan) {
    assert!(
        plan.stop_at + plan.outage < plan.seconds,
        "the outage must end before the load does"
    );
    let postgres = Arc::new(PostgresServer::start_durable());
    pin_postgres(&postgres);
    println!(
        "{} connections on `/` (every request loads and saves a store-held session), {} s per run; PostgreSQL (fsync on) stopped with `pg_ctl stop -m fast` at {} s and started again {} s later; {} rounds of (breaker off, on); server and PostgreSQL pinned to core 0, load generator to core 1: {}",
        plan.connections,
        plan.seconds,
        plan.stop_at,
        plan.outage,
        plan.rounds,
        if pinning() { "yes" } else { "no" }
    );
    let mut runs = Vec::new();
    for _ in 0..plan.rounds {
        for breaker in [false, true] {
            runs.push(run_one(&postgres, &plan, breaker).await);
        }
    }
    println!();
    println!(
        "| run | breaker | 200/s overall | 503/s overall | other | 200/s outage | 503/s outage | p50 outage (ms) | p99 outage (ms) | p99 overall (ms) | outage window (s) | first 200 after restart (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, run) in runs.iter().enumerate() {
        let all: Vec<&Sample> = run.samples.iter().collect();
        let outage = run.outage_window();
        let window = (run.outage.started - run.outage.stop).as_secs_f64();
        let other = all.len() - count(&all, 200) - count(&all, 503);
        println!(
            "| {} | {} | {:.0} | {:.0} | {other} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} to {:.2} | {} |",
            i + 1,
            if run.breaker { "on" } else { "off" },
            count(&all, 200) as f64 / run.seconds,
            count(&all, 503) as f64 / run.seconds,
            count(&outage, 200) as f64 / window,
            count(&outage, 503) as f64 / window,
            percentile_ms(&outage, 0.50),
            percentile_ms(&outage, 0.99),
            percentile_ms(&all, 0.99),
            run.outage.stop.as_secs_f64(),
            run.outage.started.as_secs_f64(),
            run.recovery()
                .map_or("none".to_owned(), |s| format!("{s:.2}")),
        );
    }
    for run in &runs {
        let o = run.outage;
        println!(
            "breaker {}: pg_ctl stop took {:.2} s, pg_ctl start -w took {:.2} s",
            if run.breaker { "on" } else { "off" },
            (o.stopped - o.stop).as_secs_f64(),
            (o.started - o.start).as_secs_f64()
        );
    }
    // Per second: 200s / 503s (and other answers, if any) of each run.
    println!();
    let header: Vec<String> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            format!(
                "run {} ({}) 200/503",
                i + 1,
                if run.breaker { "on" } else { "off" }
            )
        })
        .collect();
    println!("| second | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(runs.len()));
    for second in 0..plan.seconds {
        let from = Duration::from_secs(second);
        let cells: Vec<String> = runs
            .iter()
            .map(|run| {
                let bucket = run.within(from, from + Duration::from_secs(1));
                let (ok, unavailable) = (count(&bucket, 200), count(&bucket, 503));
                let other = bucket.len() - ok - unavailable;
                if other > 0 {
                    format!("{ok} / {unavailable} (+{other} other)")
                } else {
                    format!("{ok} / {unavailable}")
                }
            })
            .collect();
        println!("| {second}-{} | {} |", second + 1, cells.join(" | "));
    }
}
