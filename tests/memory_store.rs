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
    assert!(store.create(&key(1), b"one", minute).await.unwrap());
    assert!(
        store
            .create(&key(2), b"two", Duration::from_secs(600))
            .await
            .unwrap()
    );
    assert_eq!(
        store.create(&key(3), b"three", minute).await,
        Err(StoreError::Full)
    );
    assert_eq!(
        store.load(&key(1)).await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    // Replacing an entry is not growth.
    assert!(store.replace(&key(1), b"uno", minute).await.unwrap());
    // Once an entry expires, its room is reused.
    clock.advance(Duration::from_secs(61));
    assert!(store.create(&key(3), b"three", minute).await.unwrap());
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
    assert_eq!(store.len(), 2);
    // The byte bound.
    assert_eq!(
        store.create(&key(4), &[0; 101], minute).await,
        Err(StoreError::Full)
    );
}

#[tokio::test]
async fn a_replace_that_does_not_fit_leaves_the_old_entry() {
    let clock = ManualClock::new(START);
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_max_bytes(100);
    let key = |b| StoreKey::from_bytes([b; 32]);
    let minute = Duration::from_secs(60);
    assert!(store.create(&key(1), &[1; 50], minute).await.unwrap());
    assert!(store.create(&key(2), &[2; 40], minute).await.unwrap());
    // Growing 50 -> 60 bytes fits exactly (the old 50 are accounted for).
    assert!(store.replace(&key(1), &[3; 60], minute).await.unwrap());
    // 60 -> 61 does not: refused, and the 60 bytes stay.
    assert_eq!(
        store.replace(&key(1), &[4; 61], minute).await,
        Err(StoreError::Full)
    );
    assert_eq!(store.load(&key(1)).await.unwrap(), Some(vec![3; 60]));
    assert_eq!(store.load(&key(2)).await.unwrap(), Some(vec![2; 40]));
}

#[tokio::test]
async fn a_growing_write_to_a_full_store_keeps_the_stored_session() {
    use http::HeaderMap;
    let clock = ManualClock::new(START);
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_max_bytes(20_000);
    let fx = Fixture::new(clock, Arc::new(store), false);
    let sessions = fx.sessions(|c| c);
    let (_, mine, ()) =
        common::round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
    // Someone else fills the store.
    common::round(&sessions, &HeaderMap::new(), |s| s.set(vec![2u8; 9000])).await;
    let grow = sessions
        .load::<Vec<u8>>(&common::request_after(&mine))
        .await
        .unwrap();
    grow.update(|v| v.extend([3u8; 6000]));
    let mut response = HeaderMap::new();
    let refused = sessions.save(&grow, &mut response).await;
    assert!(
        matches!(
            refused,
            Err(sealed_session::SaveError::Store(StoreError::Full))
        ),
        "{refused:?}"
    );
    assert!(response.is_empty());
    let kept = sessions
        .load::<Vec<u8>>(&common::request_after(&mine))
        .await
        .unwrap();
    assert_eq!(kept.rejection(), None);
    assert_eq!(kept.get(), vec![1u8; 6000]);
}
