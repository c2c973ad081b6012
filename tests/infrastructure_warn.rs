//! Authentic cookies refused because our own infrastructure disagrees
//! with itself are loud, like the schema refusals of `rejection_warn.rs`:
//! each logs a `warn` at most once per interval with a count.
//!
//! - A store that lost sessions: a cookie pointing at a store entry that
//!   is gone, with no note of this library deleting it (a Redis restart
//!   without persistence, eviction, a `MemoryStore` on several
//!   instances). An entry this library deleted a moment ago (a renew, a
//!   session moving back into its cookie) is the ordinary race of
//!   parallel requests and stays at `debug`.
//! - An instance without the store the others have: a pointer cookie it
//!   cannot follow (through `Sessions::load` and through the layer, which
//!   takes another path without a store).
//! - Clocks further apart than the allowed skew: a cookie issued in this
//!   instance's future.
//!
//! Alone in its own test binary, for the reason given in
//! `rejection_event.rs` (`tracing` caches per call site whether anyone
//! listens), and all in one test for the same reason.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::capture::{Capture, lines_at};
use common::*;
use http::Request;
use sealed_session::{
    Clock, ManualClock, MemoryStore, REJECTION_WARN_INTERVAL, Rejection, Session, SessionLayer,
    SessionStore, Sessions, StoreFuture, StoreKey, StoreMode,
};
use tower::ServiceExt as _;

/// Sessions in server mode on `store` (no breaker: every call reaches it).
fn on(store: &Arc<dyn SessionStore>, clock: &ManualClock) -> Sessions {
    let config = config(clock)
        .with_shared_store(store.clone())
        .with_store_mode(StoreMode::Server)
        .with_circuit_breaker(None);
    Sessions::new(ring(&[1]), config).unwrap()
}

/// A store whose entries, once `garble` is set, read back as bytes that
/// do not authenticate (changed in the store).
#[derive(Debug)]
struct Garbling {
    inner: MemoryStore,
    garble: AtomicBool,
}

impl SessionStore for Garbling {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let found = self.inner.load(key).await?;
            let garble = self.garble.load(Ordering::SeqCst);
            Ok(found.map(|bytes| if garble { vec![7; bytes.len()] } else { bytes }))
        })
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.inner.create(key, value, ttl)
    }
    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.inner.replace(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
}

/// A clock ahead of another by a fixed number of seconds.
#[derive(Debug)]
struct Ahead(ManualClock, u64);

impl Clock for Ahead {
    fn now(&self) -> u64 {
        self.0.now() + self.1
    }
}

/// The `warn` lines logged so far that contain `text`.
fn warns_with(capture: &Capture, text: &str) -> Vec<String> {
    lines_at(&capture.text(), "WARN")
        .into_iter()
        .filter(|line| line.contains(text))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn authentic_cookies_our_own_instances_disagree_on_warn_once_per_interval() {
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

    // An instance without the store: the pointer cookie it cannot follow,
    // through `load` and through the layer.
    let no_store = common::sessions(&[1], &clock);
    for _ in 0..2 {
        assert_eq!(
            load(&no_store, &other).await,
            Some(Rejection::StoreNotConfigured)
        );
    }
    let warned = warns_with(&capture, "this instance has no store configured");
    assert_eq!(warned.len(), 1, "{}", capture.text());
    assert!(warned[0].contains("unlogged=0"), "{}", warned[0]);
    let layered = common::sessions(&[1], &clock);
    let app = Router::new()
        .route(
            "/",
            get(|session: Session<u32>| async move { format!("{:?}", session.rejection()) }),
        )
        .layer(SessionLayer::<u32>::new(layered));
    let request = Request::get("/")
        .header(http::header::COOKIE, format!("__Host-session={other}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"Some(StoreNotConfigured)");
    let warned = warns_with(&capture, "this instance has no store configured");
    assert_eq!(
        warned.len(),
        2,
        "another Sessions, its own limiter: {}",
        capture.text()
    );

    // Clocks further apart than the skew (60 s by default): a cookie
    // sealed by an instance 100 s ahead.
    let ahead = Sessions::new(
        ring(&[1]),
        sealed_session::SessionConfig::default().with_clock(Ahead(clock.clone(), 100)),
    )
    .unwrap();
    let future = sealed(&ahead, 5_u32).await;
    let here = common::sessions(&[1], &clock);
    for _ in 0..3 {
        assert_eq!(load(&here, &future).await, Some(Rejection::FromFuture));
    }
    let warned = warns_with(&capture, "clock ahead of this one's");
    assert_eq!(warned.len(), 1, "{}", capture.text());
    assert!(warned[0].contains("ahead_secs=100"), "{}", warned[0]);
    assert!(warned[0].contains("skew_secs=60"), "{}", warned[0]);
    // Within the skew: it opens, nothing logged.
    let near = Sessions::new(
        ring(&[1]),
        sealed_session::SessionConfig::default().with_clock(Ahead(clock.clone(), 60)),
    )
    .unwrap();
    let near_future = sealed(&near, 6_u32).await;
    assert_eq!(load(&here, &near_future).await, None);
    assert_eq!(warns_with(&capture, "clock ahead of this one's").len(), 1);
    // A store entry changed in the store: one warn for three, without
    // the entry's key.
    let garbling = Arc::new(Garbling {
        inner: MemoryStore::new().with_clock(clock.clone()),
        garble: AtomicBool::new(false),
    });
    let shared: Arc<dyn SessionStore> = garbling.clone();
    let on_garbling = on(&shared, &clock);
    let changed = sealed(&on_garbling, 11_u32).await;
    garbling.garble.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(
            load(&on_garbling, &changed).await,
            Some(Rejection::StoreEntryInvalid)
        );
    }
    let warned = warns_with(&capture, "store entry did not authenticate");
    assert_eq!(warned.len(), 1, "{}", capture.text());
    assert!(warned[0].contains("unlogged=0"), "{}", warned[0]);
    assert!(!warned[0].contains("store_key"), "{}", warned[0]);

    // Forged and garbage cookies stay at debug throughout.
    assert_eq!(load(&here, "garbage").await, Some(Rejection::Malformed));
    let log = capture.text();
    assert!(
        lines_at(&log, "WARN")
            .iter()
            .all(|l| !l.contains("malformed")),
        "{log}"
    );
}
