//! The store suite on `PostgresStore` against a real PostgreSQL cluster
//! (initdb + pg_ctl on a free loopback port, see
//! `common/postgres_server.rs`), plus its own cases. The tests share one
//! cluster; each uses a table of its own.

#[macro_use]
mod common;
#[path = "common/model.rs"]
mod model;
#[path = "common/pg_review.rs"]
mod pg_review;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::START;
use common::postgres_server::PostgresServer;
use common::sql_cases;
use common::suite::Fixture;
use sealed_session::{ManualClock, PostgresStore, SessionStore, StoreError, StoreKey};
use sqlx::{PgPool, Row};

const MINUTE: Duration = Duration::from_secs(60);

/// A store on the shared cluster in a fresh table of its own (created),
/// its pool, and the cluster's guard.
async fn store() -> (PostgresStore, PgPool, Arc<PostgresServer>) {
    static TABLE: AtomicU64 = AtomicU64::new(0);
    let server = PostgresServer::shared();
    let pool = PgPool::connect(&server.url()).await.unwrap();
    let table = format!("sessions_{}", TABLE.fetch_add(1, Ordering::Relaxed));
    let store = PostgresStore::new(pool.clone()).with_table(&table).unwrap();
    store.migrate().await.unwrap();
    (store, pool, server)
}

async fn postgres() -> Fixture {
    let (store, _, server) = store().await;
    let mut fixture = Fixture::new(ManualClock::new(START), Arc::new(store), true);
    fixture._guard = Some(Box::new(server));
    fixture
}

/// The suite again with `with_prepared_statements` (a direct connection,
/// where they are safe).
async fn postgres_prepared() -> Fixture {
    let (store, _, server) = store().await;
    let store = store.with_prepared_statements();
    let mut fixture = Fixture::new(ManualClock::new(START), Arc::new(store), true);
    fixture._guard = Some(Box::new(server));
    fixture
}

store_suite!(postgres_suite, super::postgres().await);
store_suite!(postgres_prepared_suite, super::postgres_prepared().await);

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query(&format!("SELECT count(*) FROM \"{table}\""))
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

fn table_of(store: &PostgresStore) -> String {
    let migration = store.migration();
    migration.split('"').nth(1).unwrap().to_owned()
}

#[tokio::test]
async fn rows_hold_the_key_the_sealed_bytes_and_an_expiry_on_the_database_clock() {
    let (store, pool, _server) = store().await;
    let key = StoreKey::from_bytes([0xcd; 32]);
    assert!(
        store
            .create(&key, b"sealed", Duration::from_secs(90))
            .await
            .unwrap()
    );
    let row = sqlx::query(&format!(
        "SELECT key, value, expires_at - (extract(epoch from now()) * 1000)::bigint FROM \"{}\"",
        table_of(&store)
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(row.get::<Vec<u8>, _>(0), vec![0xcd; 32]);
    assert_eq!(row.get::<Vec<u8>, _>(1), b"sealed");
    let left: i64 = row.get(2);
    assert!((80_000..=90_000).contains(&left), "{left}");
}

#[tokio::test]
async fn expired_rows_are_never_returned_and_are_removed() {
    let (store, pool, _server) = store().await;
    let table = table_of(&store);
    sql_cases::expired_rows_are_never_returned_and_are_removed(
        Arc::new(store.clone()),
        || count(&pool, &table),
        || store.delete_expired(),
    )
    .await;
}

#[tokio::test]
async fn the_sweep_works_in_batches_past_a_thousand_rows() {
    let (store, pool, _server) = store().await;
    let table = table_of(&store);
    sqlx::query(&format!(
        "INSERT INTO \"{table}\" SELECT int8send(i), 'x', 0 FROM generate_series(1, 2500) AS i"
    ))
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 2500);
    assert_eq!(count(&pool, &table).await, 0);
}

sql_cases!({
    let (store, _, server) = super::store().await;
    (store, server)
});

#[tokio::test]
async fn a_missing_table_is_an_error_not_an_empty_store() {
    let server = PostgresServer::shared();
    let pool = PgPool::connect(&server.url()).await.unwrap();
    let store = PostgresStore::new(pool)
        .with_table("never_migrated")
        .unwrap();
    sql_cases::a_missing_table_is_an_error_not_an_empty_store(Arc::new(store)).await;
}

#[tokio::test]
async fn a_row_that_is_not_bytes_is_corrupt() {
    let server = PostgresServer::shared();
    let pool = PgPool::connect(&server.url()).await.unwrap();
    // A table made by hand with the wrong column type.
    sqlx::query(
        "CREATE TABLE hand_made (key BYTEA PRIMARY KEY, value TEXT NOT NULL, expires_at BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let key = StoreKey::from_bytes([0x44; 32]);
    sqlx::query("INSERT INTO hand_made VALUES ($1, 'not bytes', 9223372036854775000)")
        .bind(&key.as_bytes()[..])
        .execute(&pool)
        .await
        .unwrap();
    let store = PostgresStore::new(pool).with_table("hand_made").unwrap();
    assert!(matches!(
        store.load(&key).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn a_call_held_up_past_its_timeout_is_a_timeout() {
    let (store, pool, _server) = store().await;
    let store = store.with_timeout(Duration::from_millis(200));
    let key = StoreKey::from_bytes([0x55; 32]);
    assert!(store.create(&key, b"old", MINUTE).await.unwrap());
    // Another session holds the row's lock.
    let holder = pg_review::lock_row(&pool, &table_of(&store), &key).await;
    assert_eq!(
        store.replace(&key, b"new", MINUTE).await,
        Err(StoreError::Timeout)
    );
    assert_eq!(store.delete(&key).await, Err(StoreError::Timeout));
    holder.rollback().await.unwrap();
    // Reads never wait for the lock.
    assert!(store.load(&key).await.is_ok());
}

#[tokio::test]
async fn a_stopped_server_is_an_error_and_the_store_recovers_when_it_is_back() {
    let server = PostgresServer::start();
    let store = PostgresStore::connect(&server.url())
        .await
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    store.migrate().await.unwrap();
    let key = StoreKey::from_bytes([0x66; 32]);
    assert!(store.create(&key, b"kept", MINUTE).await.unwrap());
    server.stop();
    for result in [
        store.load(&key).await.map(|_| ()),
        store.replace(&key, b"lost", MINUTE).await.map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, StoreError::Unavailable(_) | StoreError::Timeout),
            "{err:?}"
        );
    }
    server.start_again();
    // The pool reconnects; bounded retries while it does.
    let mut loaded = store.load(&key).await;
    for _ in 0..20 {
        if loaded.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        loaded = store.load(&key).await;
    }
    assert_eq!(loaded.unwrap().as_deref(), Some(&b"kept"[..]));
}

#[tokio::test]
async fn connecting_to_nothing_is_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = PostgresStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout),
        "{err:?}"
    );
    let err = PostgresStore::connect("not a url").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn migrate_runs_twice_and_the_debug_output_holds_no_password() {
    let server = PostgresServer::shared();
    let store = PostgresStore::connect(&format!(
        "postgres://postgres:secret-pw@127.0.0.1:{}/postgres",
        server.port
    ))
    .await
    .unwrap()
    .with_table("twice")
    .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let debug = format!("{store:?}");
    assert!(
        debug.contains("twice") && !debug.contains("secret-pw"),
        "{debug}"
    );
}

/// A store on the shared cluster's table `table` whose connections start
/// with the settings `options` (each `(name, value)`).
async fn store_with_settings(table: &str, options: &[(&str, &str)]) -> PostgresStore {
    let server = PostgresServer::shared();
    let connect: sqlx::postgres::PgConnectOptions = server.url().parse().unwrap();
    let pool = PgPool::connect_with(connect.options(options.iter().copied()))
        .await
        .unwrap();
    PostgresStore::new(pool).with_table(table).unwrap()
}

/// Values go into the SQL text as literals (nothing is prepared, for
/// PgBouncer's transaction pooling): every byte value, quotes,
/// backslashes and `$1` included, comes back as written, also with
/// `standard_conforming_strings` off (backslashes in plain literals are
/// then escapes).
#[tokio::test]
async fn every_byte_value_comes_back_as_written_whatever_the_string_settings() {
    let (plain, _, _server) = store().await;
    let table = table_of(&plain);
    let mut value: Vec<u8> = (0..=255).collect();
    value.extend_from_slice(b"$1 $2 '; DELETE FROM x; -- \\x00 E'\\'");
    let mut key = [0x27; 32];
    key[..4].copy_from_slice(b"\\$1'");
    let key = StoreKey::from_bytes(key);
    for settings in [
        vec![
            ("standard_conforming_strings", "off"),
            ("escape_string_warning", "off"),
        ],
        vec![("standard_conforming_strings", "on")],
    ] {
        let store = store_with_settings(&table, &settings).await;
        assert_eq!(store.create(&key, &value, MINUTE).await, Ok(true));
        assert_eq!(
            store.load(&key).await,
            Ok(Some(value.clone())),
            "{settings:?}"
        );
        let reversed: Vec<u8> = value.iter().rev().copied().collect();
        assert_eq!(store.replace(&key, &reversed, MINUTE).await, Ok(true));
        // Read by the other pool too: what was stored is the bytes.
        assert_eq!(plain.load(&key).await, Ok(Some(reversed)), "{settings:?}");
        assert_eq!(store.delete(&key).await, Ok(true));
        assert_eq!(plain.load(&key).await, Ok(None));
    }
}

/// Statements prepared on the connection after one call of each method:
/// none by default (nothing a transaction-pooling proxy could hand to
/// another client), some with `with_prepared_statements`.
#[tokio::test]
async fn nothing_is_prepared_unless_asked() {
    let (plain, _, server) = store().await;
    let table = table_of(&plain);
    for prepared in [false, true] {
        // One connection, so the check below sees the store's session.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&server.url())
            .await
            .unwrap();
        let mut store = PostgresStore::new(pool.clone()).with_table(&table).unwrap();
        if prepared {
            store = store.with_prepared_statements();
        }
        let key = StoreKey::from_bytes([0x46 + u8::from(prepared); 32]);
        assert_eq!(store.create(&key, b"v", MINUTE).await, Ok(true));
        assert_eq!(store.replace(&key, b"w", MINUTE).await, Ok(true));
        assert_eq!(store.load(&key).await, Ok(Some(b"w".to_vec())));
        assert_eq!(store.delete(&key).await, Ok(true));
        // Sent as text itself, so that it prepares nothing either.
        let row = sqlx::raw_sql("SELECT count(*) FROM pg_prepared_statements")
            .fetch_one(&pool)
            .await
            .unwrap();
        let count: i64 = row.try_get(0).unwrap();
        assert_eq!(
            count > 0,
            prepared,
            "{count} prepared, with_prepared_statements: {prepared}"
        );
    }
}

/// Values come back as text (the simple query protocol), which sqlx
/// reads in PostgreSQL's default `bytea_output = hex`. A connection set
/// to `escape` gets `Corrupt` (a 503 for the request), and the row is
/// left as it was.
#[tokio::test]
async fn bytea_output_escape_is_an_error_and_the_row_is_kept() {
    let (plain, _, _server) = store().await;
    let key = StoreKey::from_bytes([0x45; 32]);
    assert_eq!(plain.create(&key, b"kept", MINUTE).await, Ok(true));
    let escape = store_with_settings(&table_of(&plain), &[("bytea_output", "escape")]).await;
    assert!(
        matches!(escape.load(&key).await, Err(StoreError::Corrupt(_))),
        "bytea_output = escape"
    );
    assert_eq!(plain.load(&key).await, Ok(Some(b"kept".to_vec())));
}

/// Polls (bounded: 5 s) until one statement on `table` waits for a row
/// lock (other tests share the cluster).
async fn wait_until_one_waits_for_a_lock(pool: &PgPool, table: &str) {
    let mut waiting = 0i64;
    for _ in 0..250 {
        waiting = sqlx::query(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0",
        )
        .bind(format!("\"{table}\""))
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(waiting, 1, "no statement waited for the row");
}

/// The server crashes while a write is in flight (waiting for a row
/// another session holds): the call answers with an error, never a wrong
/// "written" or "nothing there", and after the restart the row holds
/// what it held before.
#[tokio::test]
async fn a_server_crashing_mid_call_fails_the_call_and_keeps_the_row() {
    let server = PostgresServer::start();
    let pool = PgPool::connect(&server.url()).await.unwrap();
    let store = PostgresStore::new(pool.clone()).with_timeout(Duration::from_secs(20));
    store.migrate().await.unwrap();
    let key = StoreKey::from_bytes([0x88; 32]);
    assert!(store.create(&key, b"before", MINUTE).await.unwrap());
    let holder = pg_review::lock_row(&pool, "sealed_sessions", &key).await;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.replace(&key, b"in flight", MINUTE).await })
    };
    wait_until_one_waits_for_a_lock(&pool, "sealed_sessions").await;
    server.crash();
    let err = writer.await.unwrap().unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(_) | StoreError::Timeout),
        "{err:?}"
    );
    drop(holder);
    server.start_again();
    let fresh = PostgresStore::new(PgPool::connect(&server.url()).await.unwrap());
    assert_eq!(
        fresh.load(&key).await.unwrap().as_deref(),
        Some(&b"before"[..])
    );
}

/// The sweep picks expired rows, then deletes them: a `create` that
/// renews one of them in between (here: a transaction holding the row
/// while the sweep waits for it) must win, as PostgreSQL rechecks only the
/// outer condition on the renewed row.
#[tokio::test]
async fn the_sweep_never_deletes_a_row_renewed_under_it() {
    let (store, pool, _server) = store().await;
    let table = table_of(&store);
    let key = StoreKey::from_bytes([0x77; 32]);
    assert!(
        store
            .create(&key, b"old", Duration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut renewal = pool.begin().await.unwrap();
    sqlx::query(&format!(
        "UPDATE \"{table}\" SET value = 'renewed', \
         expires_at = (extract(epoch from now()) * 1000)::bigint + 60000 WHERE key = $1"
    ))
    .bind(&key.as_bytes()[..])
    .execute(&mut *renewal)
    .await
    .unwrap();
    let sweeper = {
        let store = store.clone().with_timeout(Duration::from_secs(30));
        tokio::spawn(async move { store.delete_expired().await })
    };
    wait_until_one_waits_for_a_lock(&pool, &table).await;
    renewal.commit().await.unwrap();
    assert_eq!(sweeper.await.unwrap().unwrap(), 0);
    assert_eq!(
        store.load(&key).await.unwrap().as_deref(),
        Some(&b"renewed"[..])
    );
}

/// The model-based lifecycle test (`tests/common/model.rs`) on the real
/// cluster: one pool, a table of its own per case.
#[test]
fn the_lifecycle_keeps_its_promises_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = PostgresServer::shared();
    let pool = runtime.block_on(PgPool::connect(&server.url())).unwrap();
    sql_model_test!(&runtime, |n| PostgresStore::new(pool.clone())
        .with_table(&format!("model_{n}"))
        .unwrap());
}
