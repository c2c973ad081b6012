//! Load with a live key rotation: three counter instances behind a
//! round-robin client that, like a load balancer, moves on to the next
//! instance when one is restarting. Forty clients keep their own sessions
//! while the instances are restarted one by one with `A,B`, then `B,A`,
//! then `B`. No request fails, no session is lost, every count is exact.

mod common;

#[path = "../examples/horizontal.rs"]
mod horizontal;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Server, sessions_from_keys};
use sealed_session::Key;
use tokio::sync::Mutex;

const INSTANCES: usize = 3;
const CLIENTS: usize = 40;

/// One instance: a counter server with sessions from a key text.
async fn instance(addr: SocketAddr, keys: &str) -> Server {
    Server::start(addr, horizontal::counter_app(sessions_from_keys(keys))).await
}

/// Totals across clients.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    lost: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_is_lost_while_the_ring_rotates_under_load() {
    let (a, b) = (
        Key::generate().to_base64url(),
        Key::generate().to_base64url(),
    );
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(instance(SocketAddr::from(([127, 0, 0, 1], 0)), &a).await);
    }
    let addrs: Arc<Vec<SocketAddr>> = Arc::new(instances.iter().map(|i| i.addr).collect());
    let instances = Arc::new(Mutex::new(instances));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    // Requests each client started after B became primary everywhere.
    let since_promotion: Arc<Vec<AtomicU64>> =
        Arc::new((0..CLIENTS).map(|_| AtomicU64::new(0)).collect());
    let promoted = Arc::new(AtomicBool::new(false));

    let started = Instant::now();
    let mut clients = Vec::new();
    for id in 0..CLIENTS {
        let (addrs, stop, tally) = (addrs.clone(), stop.clone(), tally.clone());
        let (since_promotion, promoted) = (since_promotion.clone(), promoted.clone());
        clients.push(tokio::spawn(async move {
            let (mut cookie, mut expected, mut turn) = (None::<String>, 1u64, id);
            while !stop.load(Ordering::SeqCst) && expected <= 10_000 {
                let counted_after_promotion = promoted.load(Ordering::SeqCst);
                // A load balancer's retry: next instance on a refused connection.
                let mut answer = None;
                for _ in 0..(4 * INSTANCES) {
                    turn += 1;
                    match horizontal::visit(addrs[turn % INSTANCES], cookie.as_deref()).await {
                        Ok(reply) => {
                            answer = Some(reply);
                            break;
                        }
                        Err(_) => {
                            tally.retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                tally.requests.fetch_add(1, Ordering::Relaxed);
                match answer {
                    Some((200, count, next)) => {
                        if count != expected {
                            tally.lost.fetch_add(1, Ordering::Relaxed);
                        }
                        expected = count + 1;
                        cookie = next;
                        if counted_after_promotion {
                            since_promotion[id].fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    _ => {
                        tally.failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            expected - 1
        }));
    }

    let rolling = |keys: String| {
        let instances = instances.clone();
        async move {
            for i in 0..INSTANCES {
                tokio::time::sleep(Duration::from_millis(100)).await;
                // Graceful: requests in flight finish, then the port is free.
                let mut instances = instances.lock().await;
                let old = instances.remove(i);
                let addr = old.addr;
                old.stop().await;
                instances.insert(i, instance(addr, &keys).await);
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    rolling(format!("{a},{b}")).await;
    rolling(format!("{b},{a}")).await;
    promoted.store(true, Ordering::SeqCst);
    // Retire A only once every client has been served under B-primary.
    let deadline = Instant::now() + Duration::from_secs(20);
    while since_promotion.iter().any(|n| n.load(Ordering::SeqCst) < 2) {
        assert!(
            Instant::now() < deadline,
            "clients did not all come back within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rolling(b.clone()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);

    let mut total_visits = 0;
    for client in clients {
        total_visits += client.await.unwrap();
    }
    let elapsed = started.elapsed();
    let requests = tally.requests.load(Ordering::Relaxed);
    println!(
        "{requests} requests from {CLIENTS} clients in {:.2} s ({:.0} req/s), {} connection retries across 9 restarts, {} failed, {} sessions lost",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        tally.retries.load(Ordering::Relaxed),
        tally.failures.load(Ordering::Relaxed),
        tally.lost.load(Ordering::Relaxed),
    );
    assert_eq!(
        tally.failures.load(Ordering::Relaxed),
        0,
        "no request fails"
    );
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0, "no session is lost");
    assert_eq!(total_visits, requests, "every count is exact");
    assert!(requests >= 10 * CLIENTS as u64);
}
