//! `RedisStore::connect` warns about a server that would lose sessions:
//! one that persists nothing (a restart loses every store-held session and
//! revocation marker). Alone in its own test binary, for the reason given
//! in `rejection_event.rs` (tracing's per-call-site interest cache).

mod common;

use common::capture::Capture;
use common::redis_server::RedisServer;
use sealed_session::RedisStore;

/// The `warn` lines logged while connecting to `server`.
async fn warnings(server: &RedisServer) -> Vec<String> {
    let (capture, _guard) = Capture::start(tracing::Level::WARN);
    RedisStore::connect(&server.url()).await.unwrap();
    capture.text().lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_without_persistence_is_named_and_a_persistent_one_is_not() {
    let volatile = RedisServer::start();
    let lines = warnings(&volatile).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("WARN") && lines[0].contains("no persistence"));

    let persistent = RedisServer::start_persistent();
    let lines = warnings(&persistent).await;
    assert!(lines.is_empty(), "{lines:?}");
}
