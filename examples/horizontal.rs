//! Several instances, one key ring, no shared database: starts N instances
//! (default 3, `INSTANCES`) of the counter app on consecutive ports from
//! `PORT` (default 3000) on 127.0.0.1, all with the same `SESSION_KEYS`,
//! then a client that sends each request to the next instance in turn and
//! shows the count rising across them. Exits 1 if it does not.
//!
//! ```sh
//! cargo run --example horizontal --features axum
//! ```

#[path = "counter.rs"]
mod counter;

use std::net::SocketAddr;
use std::process::ExitCode;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sealed_session::{Key, Keyring, SessionConfig, Sessions};

/// The counter app, for code that runs its own instances.
pub fn counter_app(sessions: Sessions) -> axum::Router {
    counter::app(sessions)
}

/// The instances' configuration: plain HTTP on loopback.
pub fn config() -> SessionConfig {
    SessionConfig::default()
        .with_secure(false)
        .with_cookie_name("session")
}

/// Serves `app` on `addr` until the process ends; returns the bound
/// address.
pub async fn serve(addr: SocketAddr, app: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(bound)
}

/// Starts one counter instance per address with its own `Sessions` built
/// from the shared `SESSION_KEYS` text, as separate processes would.
pub async fn start(keys: &str, addrs: &[SocketAddr]) -> std::io::Result<Vec<SocketAddr>> {
    let mut bound = Vec::new();
    for addr in addrs {
        let ring: Keyring = keys.parse().map_err(std::io::Error::other)?;
        let sessions = Sessions::new(ring, config()).map_err(std::io::Error::other)?;
        bound.push(serve(*addr, counter_app(sessions)).await?);
    }
    Ok(bound)
}

/// `GET /` with an optional cookie; returns the status, the body and the
/// cookie to send next.
pub async fn request(
    addr: SocketAddr,
    cookie: Option<&str>,
) -> Result<(u16, String, Option<String>), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = http::Request::get("/").header(http::header::HOST, addr.to_string());
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let next = match response.headers().get(http::header::SET_COOKIE) {
        Some(set_cookie) => Some(
            set_cookie
                .to_str()
                .map_err(|e| e.to_string())?
                .split(';')
                .next()
                .unwrap_or("")
                .to_owned(),
        ),
        None => cookie.map(str::to_owned),
    };
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned(), next))
}

/// `GET /` with an optional cookie; returns the status, the count in the
/// body and the cookie to send next.
pub async fn visit(
    addr: SocketAddr,
    cookie: Option<&str>,
) -> Result<(u16, u64, Option<String>), String> {
    let (status, body, next) = request(addr, cookie).await?;
    let count = body
        .trim()
        .strip_prefix("Visits: ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{status} with unexpected body {body:?}"))?;
    Ok((status, count, next))
}

/// Sends `requests` requests, each to the next instance in turn, carrying
/// the cookie along; returns the counts seen.
pub async fn round_robin(addrs: &[SocketAddr], requests: usize) -> Result<Vec<u64>, String> {
    round_robin_from(addrs, requests, &mut None).await
}

/// [`round_robin`] from the cookie a browser already has (`None`: none);
/// leaves the last one in `cookie`.
pub async fn round_robin_from(
    addrs: &[SocketAddr],
    requests: usize,
    cookie: &mut Option<String>,
) -> Result<Vec<u64>, String> {
    let mut counts = Vec::new();
    for i in 0..requests {
        let addr = addrs[i % addrs.len()];
        let (status, count, next) = visit(addr, cookie.as_deref()).await?;
        println!("GET http://{addr}/ -> {status} Visits: {count}");
        if status != 200 {
            return Err(format!("{addr} answered {status}"));
        }
        counts.push(count);
        *cookie = next;
    }
    Ok(counts)
}

/// Success (printing `success`) when the counts are 1, 2, 3...
pub fn verdict(counts: Result<Vec<u64>, String>, success: &str) -> ExitCode {
    match counts {
        Ok(counts) if counts.iter().copied().eq(1..=counts.len() as u64) => {
            println!("{success}");
            ExitCode::SUCCESS
        }
        Ok(counts) => {
            println!("FAILED: counts {counts:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> ExitCode {
    let instances: u16 = std::env::var("INSTANCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let keys = std::env::var("SESSION_KEYS").unwrap_or_else(|_| Key::generate().to_base64url());
    let addrs: Vec<SocketAddr> = (0..instances)
        .map(|i| SocketAddr::from(([127, 0, 0, 1], port + i)))
        .collect();
    let addrs = match start(&keys, &addrs).await {
        Ok(addrs) => addrs,
        Err(e) => {
            eprintln!("error: cannot start the instances: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{} instances share one key ring and nothing else",
        addrs.len()
    );
    verdict(
        round_robin(&addrs, 3 * addrs.len()).await,
        "the count rose by one on every request, whichever instance served it",
    )
}
