//! The store suite on `RedisStore` against a real `redis-server`.

#[macro_use]
mod common;
#[path = "common/model.rs"]
mod model;

use std::sync::Arc;

use common::START;
use common::redis_server::RedisServer;
use common::suite::Fixture;
use sealed_session::{ManualClock, RedisStore, SessionStore, StoreError, StoreKey};

async fn redis() -> Fixture {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_prefix("test:");
    let mut fixture = Fixture::new(ManualClock::new(START), Arc::new(store), true);
    fixture._guard = Some(Box::new(server));
    fixture
}

store_suite!(redis_suite, super::redis().await);

#[tokio::test]
async fn keys_carry_the_prefix_and_a_ttl() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .with_prefix("shop:");
    let key = StoreKey::from_bytes([0xcd; 32]);
    assert!(
        store
            .create(&key, b"sealed", std::time::Duration::from_secs(90))
            .await
            .unwrap()
    );
    // Read it back through a second, raw client.
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let name = format!("shop:{}", "cd".repeat(32));
    let value: Vec<u8> = redis::cmd("GET")
        .arg(&name)
        .query_async(&mut raw)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(value, b"sealed");
    assert!((89_000..=90_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn a_dead_server_is_an_error_and_a_restarted_one_is_used_again() {
    let mut server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let key = StoreKey::from_bytes([1; 32]);
    let minute = std::time::Duration::from_secs(60);
    assert!(store.create(&key, b"x", minute).await.unwrap());
    server.kill();
    let err = store.load(&key).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout),
        "{err:?}"
    );
    server.restart();
    // The manager reconnects; bounded retries while it does.
    let again = StoreKey::from_bytes([2; 32]);
    let mut result = store.create(&again, b"y", minute).await;
    for _ in 0..20 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        result = store.create(&again, b"y", minute).await;
    }
    assert!(result.unwrap());
    assert_eq!(
        store.load(&again).await.unwrap().as_deref(),
        Some(&b"y"[..])
    );
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast() {
    common::redis_server::connecting_to_nothing_fails_fast(async |url: String| {
        RedisStore::connect(&url).await
    })
    .await;
}

#[tokio::test]
async fn a_server_out_of_memory_is_full_and_keeps_the_old_value() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let key = StoreKey::from_bytes([3; 32]);
    let minute = std::time::Duration::from_secs(60);
    assert!(store.create(&key, b"old", minute).await.unwrap());
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let set_max = |bytes: u64| {
        let mut command = redis::cmd("CONFIG");
        command.arg("SET").arg("maxmemory").arg(bytes);
        command
    };
    // The default policy is noeviction: past maxmemory, writes get OOM.
    let () = set_max(1).query_async(&mut raw).await.unwrap();
    let refused = store.replace(&key, &[7; 4096], minute).await;
    assert_eq!(refused, Err(StoreError::Full));
    let () = set_max(0).query_async(&mut raw).await.unwrap();
    assert_eq!(
        store.load(&key).await.unwrap().as_deref(),
        Some(&b"old"[..])
    );
}

/// The model-based lifecycle test (`tests/common/model.rs`) on a real
/// server: one server, one connection, a key prefix of its own per case.
/// Entries' real-time TTLs outlast the manual clock's jumps; the model
/// does not depend on that, since a copy past its deadline is refused
/// before the store is asked. `MODEL_CASES` sets the count (default 48).
mod model_on_redis {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};
    use sealed_session::{ManualClock, RedisStore};

    use super::common::START;
    use super::common::redis_server::RedisServer;
    use super::model::{ops, run, setups};

    fn cases() -> u32 {
        std::env::var("MODEL_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(48)
    }

    /// One server for every case, stopped when the test ends (a case that
    /// fails is caught by the runner, so the server is dropped then too);
    /// failing cases are kept in `redis_store.proptest-regressions`.
    #[test]
    fn the_lifecycle_keeps_its_promises_on_redis() {
        let server = RedisServer::start();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let store = runtime
            .block_on(RedisStore::connect(&server.url()))
            .unwrap();
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            source_file: Some(file!()),
            failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
                "proptest-regressions",
            ))),
            ..Config::default()
        });
        let case = AtomicU64::new(0);
        let result = runner.run(&(setups(), ops()), |(setup, ops)| {
            let n = case.fetch_add(1, Ordering::Relaxed);
            let store = store.clone().with_prefix(format!("model{n}:"));
            runtime.block_on(run(
                setup,
                &ops,
                ManualClock::new(START),
                Arc::new(store),
                true,
            ));
            Ok(())
        });
        drop(server);
        result.unwrap();
    }
}
