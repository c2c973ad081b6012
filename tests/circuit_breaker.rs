//! The circuit breaker in front of the store, through `Sessions`: while
//! the store is down, requests for store-held sessions fail at once after
//! a few failures, without sending the store anything; cookie-held
//! sessions never notice; a store spread over independent nodes gets no
//! store-wide breaker.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{config, request_after};
use http::HeaderMap;
use sealed_session::{
    CircuitBreaker, LoadError, ManualClock, MemoryStore, SessionStore, Sessions, StoreError,
    StoreFuture, StoreKey, StoreMode,
};

/// A memory store that can be switched off (every call then times out)
/// and counts the calls it is sent.
#[derive(Debug, Default)]
struct Switch {
    inner: MemoryStore,
    down: AtomicBool,
    calls: AtomicUsize,
    spread: bool,
}

impl Switch {
    fn gate<'a, T: Send + 'a>(&'a self, call: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Box::pin(async { Err(StoreError::Timeout) })
        } else {
            call
        }
    }
}

impl SessionStore for Switch {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.gate(self.inner.load(key))
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.gate(self.inner.create(key, value, ttl))
    }
    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.gate(self.inner.replace(key, value, ttl))
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.gate(self.inner.delete(key))
    }
    fn fails_as_one(&self) -> bool {
        !self.spread
    }
}

fn sessions(store: &Arc<Switch>, breaker: Option<CircuitBreaker>) -> Sessions {
    let clock = ManualClock::new(common::START);
    let shared: Arc<dyn SessionStore> = Arc::clone(store) as Arc<dyn SessionStore>;
    Sessions::new(
        common::ring(&[1]),
        config(&clock)
            .with_shared_store(shared)
            .with_store_mode(StoreMode::Server)
            .with_circuit_breaker(breaker),
    )
    .unwrap()
}

/// A store-held session's cookie, saved while the store is up.
async fn store_held(sessions: &Sessions) -> HeaderMap {
    let session = sessions.load::<u32>(&HeaderMap::new()).await.unwrap();
    session.set(7);
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    request_after(&response)
}

/// Loads `request` `times` times with the store down; returns how many
/// calls reached the store.
async fn loads_while_down(
    store: &Switch,
    sessions: &Sessions,
    request: &HeaderMap,
    times: usize,
) -> usize {
    store.down.store(true, Ordering::SeqCst);
    let before = store.calls.load(Ordering::SeqCst);
    for _ in 0..times {
        let failed = sessions.load::<u32>(request).await;
        assert!(matches!(failed, Err(LoadError::Store(_))), "{failed:?}");
    }
    store.calls.load(Ordering::SeqCst) - before
}

#[tokio::test]
async fn by_default_a_down_store_is_asked_five_times_then_calls_fail_at_once() {
    let store = Arc::new(Switch::default());
    let sessions = sessions(&store, Some(CircuitBreaker::default()));
    let request = store_held(&sessions).await;
    assert_eq!(loads_while_down(&store, &sessions, &request, 50).await, 5);
    // Cookie-held sessions need no store and go on.
    let cookie_only = sessions.load::<u32>(&HeaderMap::new()).await.unwrap();
    assert!(cookie_only.is_new());
}

#[tokio::test]
async fn without_the_breaker_every_request_waits_for_the_store() {
    let store = Arc::new(Switch::default());
    let sessions = sessions(&store, None);
    let request = store_held(&sessions).await;
    assert_eq!(loads_while_down(&store, &sessions, &request, 50).await, 50);
}

#[tokio::test]
async fn a_store_spread_over_independent_nodes_gets_no_store_wide_breaker() {
    let store = Arc::new(Switch {
        spread: true,
        ..Switch::default()
    });
    let sessions = sessions(&store, Some(CircuitBreaker::default()));
    let request = store_held(&sessions).await;
    assert_eq!(loads_while_down(&store, &sessions, &request, 50).await, 50);
}

#[tokio::test]
async fn after_the_interval_one_probe_closes_it_and_the_session_is_back() {
    let store = Arc::new(Switch::default());
    let breaker = CircuitBreaker::default()
        .with_failures(2)
        .with_open_for(Duration::from_millis(20), Duration::from_millis(20));
    let sessions = sessions(&store, Some(breaker));
    let request = store_held(&sessions).await;
    assert_eq!(loads_while_down(&store, &sessions, &request, 10).await, 2);
    store.down.store(false, Ordering::SeqCst);
    // Bounded: the breaker lets a probe through once 20 ms have passed.
    let mut back = None;
    for _ in 0..200 {
        if let Ok(session) = sessions.load::<u32>(&request).await {
            back = Some(session.get());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(back, Some(7), "the store-held session is back, unchanged");
}
