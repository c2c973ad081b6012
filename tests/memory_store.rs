//! The store suite on `MemoryStore`, and its own bounds.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::START;
use common::suite::Fixture;
use sealed_session::{ManualClock, MemoryStore, SessionStore, StoreError, StoreKey};

fn memory() -> Fixture {
    let clock = ManualClock::new(START);
    let store = MemoryStore::new().with_clock(clock.clone());
    Fixture::new(clock, Arc::new(store), false)
}

store_suite!(memory_suite, super::memory());

#[tokio::test]
async fn a_full_store_refuses_instead_of_evicting_live_entries() {
    let clock = ManualClock::new(START);
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_max_entries(2)
        .with_max_bytes(100);
    let key = |b| StoreKey::from_bytes([b; 32]);
    let minute = Duration::from_secs(60);
    store.save(&key(1), b"one", minute).await.unwrap();
    store
        .save(&key(2), b"two", Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(
        store.save(&key(3), b"three", minute).await,
        Err(StoreError::Full)
    );
    assert_eq!(
        store.load(&key(1)).await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    // Replacing an entry is not growth.
    store.save(&key(1), b"uno", minute).await.unwrap();
    // Once an entry expires, its room is reused.
    clock.advance(Duration::from_secs(61));
    store.save(&key(3), b"three", minute).await.unwrap();
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
    assert_eq!(store.len(), 2);
    // The byte bound.
    assert_eq!(
        store.save(&key(4), &[0; 101], minute).await,
        Err(StoreError::Full)
    );
}
