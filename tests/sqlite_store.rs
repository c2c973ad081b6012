//! The store suite on `SqliteStore`, each test on a file of its own in a
//! temporary directory, plus its own cases: a restart keeps the sessions,
//! expired rows, a full database, rows that are not bytes.

#[macro_use]
mod common;
#[path = "common/model.rs"]
mod model;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::START;
use common::sql_cases;
use common::suite::Fixture;
use http::HeaderMap;
use sealed_session::{
    ManualClock, SessionConfig, SessionStore, Sessions, SqliteStore, StoreError, StoreKey,
    StoreMode,
};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

const MINUTE: Duration = Duration::from_secs(60);

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "sealed-session-sqlite-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("sessions.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store on a new file, its table created.
async fn store() -> (SqliteStore, TempDir) {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.file()).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

async fn sqlite() -> Fixture {
    let (store, dir) = store().await;
    let mut fixture = Fixture::new(ManualClock::new(START), Arc::new(store), true);
    fixture._guard = Some(Box::new(dir));
    fixture
}

store_suite!(sqlite_suite, super::sqlite().await);

async fn raw(dir: &TempDir) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(dir.file()))
        .await
        .unwrap()
}

async fn count(pool: &SqlitePool) -> i64 {
    sqlx::query("SELECT count(*) FROM sealed_sessions")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn sessions_survive_a_restart_of_the_store() {
    let dir = TempDir::new();
    let config = |store: SqliteStore| {
        SessionConfig::default()
            .with_store(store)
            .with_store_mode(StoreMode::Server)
    };
    let store = SqliteStore::open(dir.file()).await.unwrap();
    store.migrate().await.unwrap();
    let sessions = Sessions::new(common::ring(&[1]), config(store)).unwrap();
    let session = sessions.load::<Vec<u8>>(&HeaderMap::new()).await.unwrap();
    session.set(vec![42; 10_000]);
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    let request = common::request_after(&response);
    // Store, pool and sessions dropped: only the file is left.
    drop(sessions);

    let store = SqliteStore::open(dir.file()).await.unwrap();
    store.migrate().await.unwrap();
    let sessions = Sessions::new(common::ring(&[1]), config(store)).unwrap();
    let back = sessions.load::<Vec<u8>>(&request).await.unwrap();
    assert!(!back.is_new());
    assert_eq!(back.get(), vec![42; 10_000]);
}

#[tokio::test]
async fn expired_rows_are_never_returned_and_are_removed() {
    let (store, dir) = store().await;
    let pool = raw(&dir).await;
    sql_cases::expired_rows_are_never_returned_and_are_removed(
        Arc::new(store.clone()),
        || count(&pool),
        || store.delete_expired(),
    )
    .await;
}

#[tokio::test]
async fn expiry_is_unix_milliseconds_on_the_machine_clock() {
    let (store, dir) = store().await;
    let key = StoreKey::from_bytes([0xcd; 32]);
    assert!(
        store
            .create(&key, b"sealed", Duration::from_secs(90))
            .await
            .unwrap()
    );
    let row = sqlx::query("SELECT key, value, expires_at FROM sealed_sessions")
        .fetch_one(&raw(&dir).await)
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert_eq!(row.get::<Vec<u8>, _>(0), vec![0xcd; 32]);
    assert_eq!(row.get::<Vec<u8>, _>(1), b"sealed");
    let left = row.get::<i64, _>(2) - now;
    assert!((80_000..=90_000).contains(&left), "{left}");
}

#[tokio::test]
async fn a_full_database_refuses_the_write_and_keeps_the_old_value() {
    let dir = TempDir::new();
    // One connection, so the page limit set below is the store's.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(dir.file())
                .create_if_missing(true),
        )
        .await
        .unwrap();
    let store = SqliteStore::new(pool.clone());
    store.migrate().await.unwrap();
    let key = StoreKey::from_bytes([3; 32]);
    assert!(store.create(&key, b"old", MINUTE).await.unwrap());
    let pages: i64 = sqlx::query("PRAGMA page_count")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
        .execute(&pool)
        .await
        .unwrap();
    let big = vec![7u8; 64 * 1024];
    assert_eq!(
        store.replace(&key, &big, MINUTE).await,
        Err(StoreError::Full)
    );
    let other = StoreKey::from_bytes([4; 32]);
    assert_eq!(
        store.create(&other, &big, MINUTE).await,
        Err(StoreError::Full)
    );
    assert_eq!(
        store.load(&key).await.unwrap().as_deref(),
        Some(&b"old"[..])
    );
    assert_eq!(store.load(&other).await.unwrap(), None);
}

#[tokio::test]
async fn a_row_that_is_not_bytes_is_corrupt() {
    let dir = TempDir::new();
    let hand_made = SqliteStore::open(dir.file()).await.unwrap();
    // A table made by hand, not STRICT, holding an integer as the value.
    let pool = raw(&dir).await;
    sqlx::query(
        "CREATE TABLE sealed_sessions (key BLOB PRIMARY KEY, value BLOB, expires_at INTEGER)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let key = StoreKey::from_bytes([0x44; 32]);
    sqlx::query("INSERT INTO sealed_sessions VALUES ($1, 12345, 9223372036854775000)")
        .bind(&key.as_bytes()[..])
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        hand_made.load(&key).await,
        Err(StoreError::Corrupt(_))
    ));
    // The STRICT table `migrate` makes refuses such a row in the first place.
    let (_strict, strict_dir) = store().await;
    let refused = sqlx::query("INSERT INTO sealed_sessions VALUES (x'00', 12345, 1)")
        .execute(&raw(&strict_dir).await)
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn two_pools_on_one_file_see_each_others_writes() {
    let (first, dir) = store().await;
    let second = SqliteStore::open(dir.file()).await.unwrap();
    let key = StoreKey::from_bytes([5; 32]);
    assert!(first.create(&key, b"one", MINUTE).await.unwrap());
    assert!(!second.create(&key, b"two", MINUTE).await.unwrap());
    assert!(second.replace(&key, b"two", MINUTE).await.unwrap());
    assert_eq!(
        first.load(&key).await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert!(first.delete(&key).await.unwrap());
    assert_eq!(second.load(&key).await.unwrap(), None);
}

#[tokio::test]
async fn in_memory_databases_are_refused() {
    for path in ["", ":memory:", "file::memory:?cache=shared"] {
        let err = SqliteStore::open(path).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{path}: {err:?}");
    }
}

sql_cases!(super::store().await);

#[tokio::test]
async fn a_missing_table_is_an_error_not_an_empty_store() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.file()).await.unwrap();
    sql_cases::a_missing_table_is_an_error_not_an_empty_store(Arc::new(store)).await;
}

#[tokio::test]
async fn a_write_locked_out_past_its_timeout_is_a_timeout_and_reads_go_on() {
    let (store, dir) = store().await;
    let store = store.with_timeout(Duration::from_millis(200));
    let key = StoreKey::from_bytes([0x55; 32]);
    assert!(store.create(&key, b"old", MINUTE).await.unwrap());
    // Another connection holds the write lock.
    let pool = raw(&dir).await;
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("UPDATE sealed_sessions SET value = value")
        .execute(&mut *holder)
        .await
        .unwrap();
    assert_eq!(
        store.replace(&key, b"new", MINUTE).await,
        Err(StoreError::Timeout)
    );
    // WAL: readers do not wait for the writer.
    assert_eq!(
        store.load(&key).await.unwrap().as_deref(),
        Some(&b"old"[..])
    );
    holder.rollback().await.unwrap();
}

/// The model-based lifecycle test (`tests/common/model.rs`) on one file,
/// a table of its own per case.
#[test]
fn the_lifecycle_keeps_its_promises_on_sqlite() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = TempDir::new();
    let first = runtime.block_on(SqliteStore::open(dir.file())).unwrap();
    sql_model_test!(&runtime, |n| first
        .clone()
        .with_table(&format!("model_{n}"))
        .unwrap());
}
