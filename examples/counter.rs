//! The visit counter: `GET /` counts your visits in a sealed cookie.
//!
//! ```sh
//! SESSION_SECURE=0 cargo run --example counter --features axum
//! curl -c jar -b jar http://127.0.0.1:3000/   # Visits: 1
//! curl -c jar -b jar http://127.0.0.1:3000/   # Visits: 2
//! ```

#[path = "common/mod.rs"]
mod common;

use axum::Router;
use axum::routing::get;
use sealed_session::{Session, SessionLayer, Sessions};
use serde::{Deserialize, Serialize};

/// What the session holds.
#[derive(Default, Serialize, Deserialize)]
pub struct Visits {
    count: u64,
}

/// The counter app; tests serve it too.
pub fn app(sessions: Sessions) -> Router {
    Router::new()
        .route("/", get(count))
        .layer(SessionLayer::<Visits>::new(sessions))
}

async fn count(session: Session<Visits>) -> String {
    let count = session.update(|visits| {
        visits.count += 1;
        visits.count
    });
    format!("Visits: {count}\n")
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    common::init_logging();
    common::serve("counter", app(common::sessions())).await;
}
