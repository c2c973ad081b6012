//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod capture;
pub mod client;
pub mod express;
pub mod fail_load;
pub mod pgbouncer;
pub mod postgres_server;
pub mod ready;
pub mod redis_cluster;
pub mod redis_server;
pub mod sent;
#[macro_use]
pub mod sql_cases;
#[macro_use]
pub mod suite;

#[allow(unused_imports)] // not every test binary polls by hand
pub use ready::ready;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use sealed_session::{Key, Keyring, ManualClock, Session, SessionConfig, Sessions};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub const START: u64 = 1_700_000_000;

/// A key made of one repeated byte, so tests can name keys A, B, C.
pub fn key(byte: u8) -> Key {
    Key::from_bytes([byte; 32]).unwrap()
}

/// A ring from key bytes, primary first.
pub fn ring(bytes: &[u8]) -> Keyring {
    bytes[1..]
        .iter()
        .fold(Keyring::new(key(bytes[0])), |r, &b| {
            r.with_older(key(b)).unwrap()
        })
}

/// The default cookie name.
pub const DEFAULT_NAME: &str = "__Host-session";

/// Whole seconds.
pub fn secs(s: u64) -> std::time::Duration {
    std::time::Duration::from_secs(s)
}

/// Request headers carrying `value` under the default cookie name.
pub fn cookie_of(value: &str) -> HeaderMap {
    request(&[(DEFAULT_NAME, value)])
}

/// Sessions on key 1 and `clock`, with the default configuration changed
/// by `f`.
pub fn instance(clock: &ManualClock, f: impl FnOnce(SessionConfig) -> SessionConfig) -> Sessions {
    Sessions::new(ring(&[1]), f(config(clock))).unwrap()
}

/// The default configuration on a manual clock.
pub fn config(clock: &ManualClock) -> SessionConfig {
    SessionConfig::default().with_clock(clock.clone())
}

pub fn sessions(bytes: &[u8], clock: &ManualClock) -> Sessions {
    Sessions::new(ring(bytes), config(clock)).unwrap()
}

/// The `Set-Cookie` headers of a response, as strings.
pub fn set_cookies(response: &HeaderMap) -> Vec<String> {
    response
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The one `Set-Cookie` of a response, parsed.
pub fn the_cookie(response: &HeaderMap) -> cookie::Cookie<'static> {
    let all = set_cookies(response);
    assert_eq!(all.len(), 1, "expected exactly one Set-Cookie: {all:?}");
    cookie::Cookie::parse(all[0].clone()).unwrap()
}

/// Request headers carrying the given `name=value` pairs in one header.
pub fn request(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let text: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
    headers.insert(COOKIE, text.join("; ").parse().unwrap());
    headers
}

/// What a browser sends back after `response`.
pub fn request_after(response: &HeaderMap) -> HeaderMap {
    let cookie = the_cookie(response);
    request(&[(cookie.name(), cookie.value())])
}

/// Loads from `request`, runs `f`, saves; returns the session and response.
pub async fn round<T, R>(
    sessions: &Sessions,
    request: &HeaderMap,
    f: impl FnOnce(&Session<T>) -> R,
) -> (Session<T>, HeaderMap, R)
where
    T: Serialize + DeserializeOwned + Default + 'static,
{
    let session = sessions.load::<T>(request).await.unwrap();
    let out = f(&session);
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    (session, response, out)
}

/// A sealed value for a session holding `value`, straight from a new
/// session's first save.
pub async fn sealed<T>(sessions: &Sessions, value: T) -> String
where
    T: Serialize + DeserializeOwned + Default + 'static,
{
    let (_, response, ()) = round(sessions, &HeaderMap::new(), |s| s.set(value)).await;
    the_cookie(&response).value().to_owned()
}

pub fn decode(value: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(value).unwrap()
}

pub fn encode(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// Sessions for plain-HTTP tests (no `Secure`, cookie `session`) on a
/// fresh key.
pub fn plain_http(config: SessionConfig) -> Sessions {
    plain_http_with(Keyring::new(Key::generate()), config)
}

fn plain_http_with(ring: Keyring, config: SessionConfig) -> Sessions {
    let config = config.with_secure(false).with_cookie_name("session");
    Sessions::new(ring, config).unwrap()
}

/// Serves `app` on a free port of 127.0.0.1 until the test's runtime ends.
pub async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A payload size and a cookie-name length for which a `Vec<u8>` session
/// seals to exactly 4096 bytes of name plus value. `probe` must have a
/// one-character cookie name.
pub async fn exact_fit(probe: &Sessions) -> (usize, usize) {
    for payload in 2950..3100 {
        let value = sealed(probe, vec![7u8; payload]).await;
        if value.len() < 4096 && 4096 - value.len() <= 40 {
            return (payload, 4096 - value.len());
        }
    }
    unreachable!("some payload in range lands within 40 bytes of the limit");
}

/// Plain-HTTP sessions built from a `SESSION_KEYS` text, as a freshly
/// started process would.
pub fn sessions_from_keys(keys: &str) -> Sessions {
    let config = SessionConfig::default()
        .with_secure(false)
        .with_cookie_name("session");
    Sessions::new(keys.parse::<Keyring>().unwrap(), config).unwrap()
}

/// A server on loopback that can be stopped gracefully (requests in flight
/// finish, then the port is free) and started again on the same address.
pub struct Server {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `app` on `addr` (port 0 for any free port). Binding an address
    /// a server just left is retried for up to half a second.
    pub async fn start(addr: std::net::SocketAddr, app: axum::Router) -> Server {
        let mut listener = tokio::net::TcpListener::bind(addr).await;
        for _ in 0..50 {
            if listener.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            listener = tokio::net::TcpListener::bind(addr).await;
        }
        let listener = listener.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}

/// A GET of `path` carrying a forged value of the default cookie, as
/// behind a TLS-ending proxy (`X-Forwarded-Proto: https`).
pub fn forged_over_https(path: &str) -> http::Request<()> {
    let mut request = http::Request::get(path).body(()).unwrap();
    request
        .headers_mut()
        .insert(COOKIE, "__Host-session=forged".parse().unwrap());
    request
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    request
}

/// A load of `value` alone (the default cookie name): its refusal.
pub async fn refusal<T>(sessions: &Sessions, value: &str) -> Option<sealed_session::Rejection>
where
    T: serde::de::DeserializeOwned + Default + 'static,
{
    sessions
        .load::<T>(&cookie_of(value))
        .await
        .unwrap()
        .rejection()
}

/// The cookie value a response sets.
pub fn cookie_in(response: &HeaderMap) -> String {
    the_cookie(response).value().to_owned()
}
