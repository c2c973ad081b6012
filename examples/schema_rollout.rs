//! The schema change over real HTTP: the counter's next release changes
//! its session type (`count` renamed `visits`, a `theme` added), so it
//! registers a `Schema` (version 1, a migration from version 0) and goes
//! out in two phases beside the running release. Instances on free ports
//! of 127.0.0.1, all with the same `SESSION_KEYS`, behind a round-robin
//! client with one cookie: release 1 beside phase 1 (which still writes
//! version 0), then phase 1 beside phase 2 (which writes version 1), then
//! phase 2 alone. Exits 1 if a count does not continue.
//!
//! ```sh
//! cargo run --example schema_rollout --features axum
//! ```

#[path = "horizontal.rs"]
pub mod horizontal;

use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::routing::get;
use sealed_session::{Key, Keyring, Schema, Session, SessionLayer, Sessions};
use serde::{Deserialize, Serialize};

/// Release 1's session type (the `counter` example's `Visits`), as the
/// next release keeps it to convert from: version 0, no schema.
#[derive(Serialize, Deserialize)]
struct VisitsV1 {
    count: u64,
}

/// The next release's session type, schema version 1.
#[derive(Default, Serialize, Deserialize)]
pub struct Visits {
    visits: u64,
    theme: Option<String>,
}

/// Which release an instance runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The `counter` example: `VisitsV1`, no schema.
    One,
    /// The next release, phase 1: reads versions 0 and 1, writes 0.
    Phase1,
    /// The next release, phase 2: writes version 1.
    Phase2,
}

/// The next release's schema, in its phase 1 or 2.
pub fn schema(phase_1: bool) -> Schema<Visits> {
    let schema = Schema::new(1).migrate(0, |old: VisitsV1| Visits {
        visits: old.count,
        theme: None,
    });
    if phase_1 {
        schema.write_as(0, |new: &Visits| VisitsV1 { count: new.visits })
    } else {
        schema
    }
}

/// The next release's counter app (same page as release 1's).
pub fn next_app(sessions: Sessions) -> Router {
    Router::new()
        .route("/", get(count))
        .layer(SessionLayer::<Visits>::new(sessions))
}

async fn count(session: Session<Visits>) -> String {
    let count = session.update(|visits| {
        visits.visits += 1;
        visits.visits
    });
    format!("Visits: {count}\n")
}

/// Starts one instance of `release` on a free port of 127.0.0.1 with
/// `Sessions` from the shared `SESSION_KEYS` text.
pub async fn start(keys: &str, release: Release) -> std::io::Result<SocketAddr> {
    let ring: Keyring = keys.parse().map_err(std::io::Error::other)?;
    let config = horizontal::config();
    let app = match release {
        Release::One => {
            let sessions = Sessions::new(ring, config).map_err(std::io::Error::other)?;
            horizontal::counter_app(sessions)
        }
        Release::Phase1 | Release::Phase2 => {
            let config = config.with_schema(schema(release == Release::Phase1));
            next_app(Sessions::new(ring, config).map_err(std::io::Error::other)?)
        }
    };
    horizontal::serve(SocketAddr::from(([127, 0, 0, 1], 0)), app).await
}

/// The rollout: for each stage, starts its instances and sends
/// `requests` requests round robin across them with one cookie that goes
/// on from stage to stage. Returns the counts seen in each stage.
pub async fn rollout(
    keys: &str,
    stages: &[&[Release]],
    requests: usize,
) -> Result<Vec<Vec<u64>>, String> {
    let mut cookie = None;
    let mut counts = Vec::new();
    for releases in stages {
        println!("instances: {releases:?}");
        let mut addrs = Vec::new();
        for release in *releases {
            addrs.push(start(keys, *release).await.map_err(|e| e.to_string())?);
        }
        counts.push(horizontal::round_robin_from(&addrs, requests, &mut cookie).await?);
    }
    Ok(counts)
}

/// The two phases, then phase 2 alone.
pub const STAGES: [&[Release]; 3] = [
    &[Release::One, Release::Phase1],
    &[Release::Phase1, Release::Phase2],
    &[Release::Phase2],
];

#[allow(dead_code)]
#[tokio::main]
async fn main() -> ExitCode {
    let keys = std::env::var("SESSION_KEYS").unwrap_or_else(|_| Key::generate().to_base64url());
    let counts = rollout(&keys, &STAGES, 4).await;
    horizontal::verdict(
        counts.map(|stages| stages.concat()),
        "the count went on across both releases, in every phase",
    )
}
