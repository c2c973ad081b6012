//! What every example shares: configuration from the environment.
//!
//! - `PORT` (default 3000): the server listens on `127.0.0.1:$PORT`.
//! - `SESSION_KEYS=primary,older,...`: the key ring. When absent, a fresh
//!   random key and a warning: sessions will not survive a restart.
//! - `SESSION_SECURE=0`: plain-HTTP local testing (no `Secure`, and the
//!   cookie is named `session` since `__Host-` requires `Secure`).
//! - `SESSION_IDLE_SECS`, `SESSION_ABSOLUTE_SECS`: the timeouts in seconds;
//!   `0` turns one off.
#![allow(dead_code)]

use std::time::Duration;

use sealed_session::{Key, Keyring, SessionConfig, Sessions};

/// Prints `message` and exits with status 2: a configuration mistake.
fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The listening port from `PORT`, default 3000.
pub fn port() -> u16 {
    var("PORT").map_or(3000, |p| {
        p.trim()
            .parse()
            .unwrap_or_else(|_| fail(format!("PORT={p} is not a port number")))
    })
}

/// The key ring from `SESSION_KEYS`, or a fresh key with a warning.
pub fn keyring() -> Keyring {
    match var("SESSION_KEYS") {
        Some(text) => text
            .parse()
            .unwrap_or_else(|e| fail(format!("SESSION_KEYS: {e}"))),
        None => {
            eprintln!(
                "warning: SESSION_KEYS is not set; using a fresh random key. \
                 Sessions will not survive a restart. To keep them: \
                 export SESSION_KEYS=$(cargo run -q --example keygen)"
            );
            Keyring::new(Key::generate())
        }
    }
}

fn timeout(name: &str) -> Option<Option<Duration>> {
    var(name).map(|v| {
        let secs: u64 = v
            .trim()
            .parse()
            .unwrap_or_else(|_| fail(format!("{name}={v} is not a number of seconds")));
        (secs > 0).then(|| Duration::from_secs(secs))
    })
}

/// The configuration from `SESSION_SECURE`, `SESSION_IDLE_SECS` and
/// `SESSION_ABSOLUTE_SECS`.
pub fn config() -> SessionConfig {
    let mut config = SessionConfig::default();
    if var("SESSION_SECURE").as_deref() == Some("0") {
        config = config.with_secure(false).with_cookie_name("session");
    }
    if let Some(idle) = timeout("SESSION_IDLE_SECS") {
        config = config.with_idle_timeout(idle);
    }
    if let Some(absolute) = timeout("SESSION_ABSOLUTE_SECS") {
        config = config.with_absolute_timeout(absolute);
    }
    config
}

/// `Sessions` from the environment.
pub fn sessions() -> Sessions {
    sessions_with(config())
}

/// `Sessions` with the key ring from the environment and `config` (built
/// on [`config`]).
pub fn sessions_with(config: SessionConfig) -> Sessions {
    Sessions::new(keyring(), config).unwrap_or_else(|e| fail(e))
}

/// Logs to stderr: `RUST_LOG`-free, `info` and up.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();
}

/// Binds `127.0.0.1:$PORT` and serves `app` until the process ends.
#[cfg(feature = "axum")]
pub async fn serve(name: &str, app: axum::Router) {
    let port = port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on 127.0.0.1:{port}: {e}")));
    println!("{name} listening on http://127.0.0.1:{port}");
    axum::serve(listener, app).await.unwrap_or_else(|e| fail(e));
}
