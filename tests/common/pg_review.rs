//! What the PostgreSQL test files share (`postgres_store`,
//! `sql_store_attacks`, `pg_protocol_attacks`, `pg_second_review`): both
//! ways of sending statements, unique names on the shared cluster, pools
//! with chosen settings, a held row lock, the server's log and a capture
//! of the application's. Included by those files with `#[path]` (it needs
//! the `postgres` feature, which other test binaries lack); not every
//! file uses every helper.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sealed_session::{PostgresStore, StoreKey};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool, Row};

use crate::common::capture::Capture;
use crate::common::postgres_server::PostgresServer;

/// Both ways of sending statements: the default (text, values written
/// in) and `with_prepared_statements`.
pub const MODES: [(&str, bool); 2] = [("inline", false), ("prepared", true)];

/// `store` sending its statements as `prepared` says.
pub fn in_mode(store: PostgresStore, prepared: bool) -> PostgresStore {
    if prepared {
        store.with_prepared_statements()
    } else {
        store
    }
}

/// `prefix` made unique in this process and among processes.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Lowercase hex, as the statements and the logs write bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A pool of at most `max` connections to `url`, each started with the
/// settings `options`.
pub async fn pool_with(url: &str, max: u32, options: &[(&str, &str)]) -> PgPool {
    let connect: PgConnectOptions = url.parse().unwrap();
    PgPoolOptions::new()
        .max_connections(max)
        .connect_with(connect.options(options.iter().copied()))
        .await
        .unwrap()
}

/// A new database on `server`; its name.
pub async fn fresh_database(server: &PostgresServer) -> String {
    let admin = PgPool::connect(&server.url()).await.unwrap();
    let name = unique("db");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    admin.close().await;
    name
}

/// The URL of `database` on `server` as `user`.
pub fn url_of(server: &PostgresServer, user: &str, database: &str) -> String {
    format!("postgres://{user}@127.0.0.1:{}/{database}", server.port)
}

/// The server's log file (`postgres_server.rs` starts the server with
/// `-l <dir>/log`).
pub async fn server_log(admin: &PgPool) -> PathBuf {
    let data: String = sqlx::raw_sql("SHOW data_directory")
        .fetch_one(admin)
        .await
        .unwrap()
        .get(0);
    Path::new(&data).parent().unwrap().join("log")
}

/// A subscriber at `level` writing into the returned capture, for the
/// current thread (the tests run on the current-thread runtime).
pub fn capture_logs(level: tracing::Level) -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(level)
        .with_ansi(false)
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

/// Takes the row lock of `key` in `table` in a transaction on `pool`, and
/// holds it until the returned transaction ends.
pub async fn lock_row(
    pool: &PgPool,
    table: &str,
    key: &StoreKey,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut holder = pool.begin().await.unwrap();
    sqlx::query(&format!(
        "SELECT 1 FROM \"{table}\" WHERE key = $1 FOR UPDATE"
    ))
    .bind(&key.as_bytes()[..])
    .execute(&mut *holder)
    .await
    .unwrap();
    holder
}
