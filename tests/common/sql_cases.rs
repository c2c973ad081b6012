//! Cases both SQL stores must pass beyond the shared suite: races between
//! writers on one key, large values, a store that is not set up. Each
//! takes the store under test (fresh, with its table created).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sealed_session::{SessionStore, StoreError, StoreKey};

const MINUTE: Duration = Duration::from_secs(60);

/// Many `create`s of one key at once: exactly one wins, and the stored
/// bytes are the winner's.
pub async fn concurrent_creates_have_one_winner(store: Arc<dyn SessionStore>) {
    let key = StoreKey::from_bytes([0x11; 32]);
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { (i, store.create(&key, &[i; 64], MINUTE).await.unwrap()) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, won) = task.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(store.load(&key).await.unwrap(), Some(vec![winners[0]; 64]));
}

/// `replace`s racing a `delete` of the same key: once the delete has
/// answered, no replace brings the entry back, whatever the order the
/// database ran them in.
pub async fn replaces_racing_a_delete_never_bring_it_back(store: Arc<dyn SessionStore>) {
    for round in 0..8u8 {
        let key = StoreKey::from_bytes([round; 32]);
        assert!(store.create(&key, b"v0", MINUTE).await.unwrap());
        let replaces: Vec<_> = (1..=8u8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.replace(&key, &[i], MINUTE).await.unwrap() })
            })
            .collect();
        let deleted = store.delete(&key).await.unwrap();
        for replace in replaces {
            replace.await.unwrap();
        }
        assert!(deleted, "the entry was live when deleted");
        assert_eq!(store.load(&key).await.unwrap(), None, "round {round}");
        assert!(!store.replace(&key, b"late", MINUTE).await.unwrap());
    }
}

/// A value of several megabytes goes in and comes back byte for byte; an
/// absurd time to live is clamped, not an overflow error.
pub async fn large_values_and_long_ttls_round_trip(store: Arc<dyn SessionStore>) {
    let key = StoreKey::from_bytes([0x22; 32]);
    let big: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert!(store.create(&key, &big, MINUTE).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap().as_deref(), Some(&big[..]));
    assert!(store.replace(&key, b"small", Duration::MAX).await.unwrap());
    assert_eq!(
        store.load(&key).await.unwrap().as_deref(),
        Some(&b"small"[..])
    );
    assert!(store.replace(&key, b"zero", Duration::ZERO).await.unwrap());
    assert!(store.delete(&key).await.is_ok());
}

/// Without its table, every call is an error (never "no entry").
pub async fn a_missing_table_is_an_error_not_an_empty_store(store: Arc<dyn SessionStore>) {
    let key = StoreKey::from_bytes([0x33; 32]);
    let errors = [
        store.load(&key).await.map(|_| ()),
        store.create(&key, b"x", MINUTE).await.map(|_| ()),
        store.replace(&key, b"x", MINUTE).await.map(|_| ()),
        store.delete(&key).await.map(|_| ()),
    ];
    for error in errors {
        assert!(
            matches!(error, Err(StoreError::Unavailable(_))),
            "{error:?}"
        );
    }
}

/// Expired rows: never returned, removed by a `load` or a `delete` that
/// comes across them (which answers "nothing was there"), and by the
/// sweep, which counts them and leaves live rows alone. `rows` counts the
/// table's rows behind the store's back; `sweep` is `delete_expired`.
pub async fn expired_rows_are_never_returned_and_are_removed<R, RF, S, SF>(
    store: Arc<dyn SessionStore>,
    rows: R,
    sweep: S,
) where
    R: Fn() -> RF,
    RF: Future<Output = i64>,
    S: Fn() -> SF,
    SF: Future<Output = Result<u64, StoreError>>,
{
    let key = |b| StoreKey::from_bytes([b; 32]);
    for b in 1..=4 {
        let short = Duration::from_millis(300);
        assert!(store.create(&key(b), b"short", short).await.unwrap());
    }
    assert!(store.create(&key(9), b"long", MINUTE).await.unwrap());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rows().await, 5, "expired rows are still there");
    assert_eq!(store.load(&key(1)).await.unwrap(), None);
    // The load answers at once and removes the row in a task of its own.
    let mut left = rows().await;
    for _ in 0..100 {
        if left == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = rows().await;
    }
    assert_eq!(left, 4, "the load removed the row it came across");
    assert!(!store.delete(&key(2)).await.unwrap());
    assert_eq!(rows().await, 3);
    assert!(!store.replace(&key(3), b"again", MINUTE).await.unwrap());
    assert_eq!(sweep().await.unwrap(), 2);
    assert_eq!(sweep().await.unwrap(), 0);
    assert_eq!(rows().await, 1);
    assert_eq!(
        store.load(&key(9)).await.unwrap().as_deref(),
        Some(&b"long"[..])
    );
}

/// The cases above that need only a fresh store, as tests:
/// `sql_cases!(async expression giving (store, guard))`.
#[macro_export]
macro_rules! sql_cases {
    ($store:expr) => {
        mod sql_store_cases {
            #[allow(unused_imports)]
            use super::*;
            use std::sync::Arc;

            #[tokio::test]
            async fn concurrent_creates_have_one_winner() {
                let (store, _guard) = $store;
                $crate::common::sql_cases::concurrent_creates_have_one_winner(Arc::new(store))
                    .await;
            }

            #[tokio::test]
            async fn replaces_racing_a_delete_never_bring_it_back() {
                let (store, _guard) = $store;
                $crate::common::sql_cases::replaces_racing_a_delete_never_bring_it_back(Arc::new(
                    store,
                ))
                .await;
            }

            #[tokio::test]
            async fn large_values_and_long_ttls_round_trip() {
                let (store, _guard) = $store;
                $crate::common::sql_cases::large_values_and_long_ttls_round_trip(Arc::new(store))
                    .await;
            }
        }
    };
}

/// How many random sequences the model-based lifecycle test runs on a SQL
/// store: `MODEL_CASES`, default 48 (as on Redis).
pub fn model_cases() -> proptest::test_runner::Config {
    let cases = std::env::var("MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    }
}

/// The model-based lifecycle test (`tests/common/model.rs`, which the test
/// file includes as `model`) on a SQL store: `sql_model_test!(runtime,
/// |n| store for case n)`; each case's store is migrated first.
#[macro_export]
macro_rules! sql_model_test {
    ($runtime:expr, |$n:ident| $store:expr) => {{
        let runtime: &tokio::runtime::Runtime = $runtime;
        let case = std::sync::atomic::AtomicU64::new(0);
        let config = $crate::common::sql_cases::model_cases();
        let mut runner = proptest::test_runner::TestRunner::new(config);
        let result = runner.run(&(model::setups(), model::ops()), |(setup, ops)| {
            let $n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let store = $store;
            runtime.block_on(async {
                store.migrate().await.unwrap();
                let clock = sealed_session::ManualClock::new($crate::common::START);
                model::run(setup, &ops, clock, std::sync::Arc::new(store), true).await;
            });
            Ok(())
        });
        result.unwrap();
    }};
}
