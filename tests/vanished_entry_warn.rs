//! A store that lost sessions is loud: an authentic cookie pointing at a
//! store entry that is gone, with no note of this library deleting it
//! (a Redis restart without persistence, eviction, a `MemoryStore` on
//! several instances), logs a `warn` at most once per interval with a
//! count. An entry this library deleted a moment ago (a renew, a session
//! moving back into its cookie) is the ordinary race of parallel
//! requests and stays at `debug`.
//!
//! Alone in its own test binary, for the reason given in
//! `rejection_event.rs` (`tracing` caches per call site whether anyone
//! listens), and all in one test for the same reason.

mod common;

use std::sync::Arc;

use common::capture::{Capture, lines_at};
use common::*;
use sealed_session::{
    ManualClock, MemoryStore, REJECTION_WARN_INTERVAL, Rejection, SessionStore, Sessions, StoreMode,
};

/// Sessions in server mode on `store` (no breaker: every call reaches it).
fn on(store: &Arc<dyn SessionStore>, clock: &ManualClock) -> Sessions {
    let config = config(clock)
        .with_shared_store(store.clone())
        .with_store_mode(StoreMode::Server)
        .with_circuit_breaker(None);
    Sessions::new(ring(&[1]), config).unwrap()
}

#[tokio::test]
async fn a_pointer_to_an_entry_the_store_lost_warns_once_per_interval() {
    let clock = ManualClock::new(START);
    let before: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = on(&before, &clock);
    let lost = sealed(&sessions, 7_u32).await;
    let other = sealed(&sessions, 8_u32).await;
    // A session renewed by a parallel request: its old entry deleted, with
    // a note.
    let renewed = sealed(&sessions, 9_u32).await;
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&renewed), |s| s.renew()).await;
    assert_eq!(set_cookies(&response).len(), 1);
    // The store restarted empty.
    let emptied: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let restarted = on(&emptied, &clock);

    let (capture, _guard) = Capture::start(tracing::Level::DEBUG);

    let load = |sessions: &Sessions, value: &str| {
        let sessions = sessions.clone();
        let request = cookie_of(value);
        async move { sessions.load::<u32>(&request).await.unwrap().rejection() }
    };

    // The ordinary race: the old pointer of the renewed session, within
    // the note's two minutes. Debug only.
    assert_eq!(
        load(&sessions, &renewed).await,
        Some(Rejection::MissingStoreEntry)
    );
    let log = capture.text();
    assert!(lines_at(&log, "WARN").is_empty(), "{log}");
    assert_eq!(lines_at(&log, "DEBUG").len(), 1, "{log}");

    // The store lost them: one warn for three.
    for value in [&lost, &other, &lost] {
        assert_eq!(
            load(&restarted, value).await,
            Some(Rejection::MissingStoreEntry)
        );
    }
    let log = capture.text();
    let warns = lines_at(&log, "WARN");
    assert_eq!(warns.len(), 1, "one warn per interval: {log}");
    assert!(
        warns[0].contains("store entry that is gone"),
        "{}",
        warns[0]
    );
    assert!(warns[0].contains("unlogged=0"), "{}", warns[0]);
    assert!(
        warns[0].contains("session_type=\"u32\"") || warns[0].contains("session_type=u32"),
        "{}",
        warns[0]
    );
    assert!(
        !warns[0].contains(&lost[10..40]),
        "no cookie bytes: {}",
        warns[0]
    );

    // One interval later: the next one, with the two left out.
    clock.advance(secs(REJECTION_WARN_INTERVAL));
    assert_eq!(
        load(&restarted, &other).await,
        Some(Rejection::MissingStoreEntry)
    );
    let log = capture.text();
    let warns = lines_at(&log, "WARN");
    assert_eq!(warns.len(), 2, "{log}");
    assert!(warns[1].contains("unlogged=2"), "{}", warns[1]);
    assert_eq!(
        restarted
            .rejection_stats()
            .count(Rejection::MissingStoreEntry),
        4
    );
}
