//! [`SqliteStore`]: sessions in a SQLite file (feature `sqlite`).

use std::path::Path;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use crate::store::StoreError;
use crate::store::sql::{DEFAULT_TIMEOUT, Dialect, SqlTable, bounded, hex, sql_session_store};

/// How long a write waits for another process's lock on the file.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

impl Dialect for sqlx::Sqlite {
    /// `julianday` rather than `unixepoch('subsec')`: any SQLite 3 has it.
    const NOW_MILLIS: &'static str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
    const EQ: &'static str = "=";
    const GT: &'static str = ">";
    const LE: &'static str = "<=";
    const ADD: &'static str = "+";
    const IN_SUBQUERY: &'static str = "IN";
    const BYTES: &'static str = "BLOB";
    const INTEGER: &'static str = "INTEGER";
    const TABLE_OPTIONS: &'static str = " STRICT";
    const ONE_WRITER: bool = true;

    /// `SQLITE_FULL`, with any extended code.
    // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with extended codes.
    fn is_timeout(code: &str) -> bool {
        code.parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
    }

    const EXISTS: &'static str = "SELECT count(*) = 2 FROM sqlite_master WHERE name IN ($1, $2)";

    fn catalog_name(name: &str) -> String {
        name.to_owned()
    }

    fn is_full(code: &str) -> bool {
        code.parse::<i32>().is_ok_and(|code| code & 0xff == 13)
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// In process, no proxy: statements are prepared once per connection.
    const INLINE: bool = false;

    fn bytes_literal(bytes: &[u8]) -> String {
        format!("X'{}'", hex(bytes))
    }
}

/// A store in a SQLite file: the embedded store for a single instance
/// whose sessions must survive a restart, on a [`sqlx::SqlitePool`](https://docs.rs/sqlx/0.8/sqlx/type.SqlitePool.html)
/// (sqlx 0.8, tokio, SQLite compiled in: nothing to install).
///
/// **The table** (default name `sealed_sessions`, see
/// [`with_table`](SqliteStore::with_table)) is created by
/// [`migrate`](SqliteStore::migrate), or by hand with exactly this (a
/// `STRICT` table, SQLite 3.37 or later, so a value of another type is
/// refused instead of stored):
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "sealed_sessions" (
///     key BLOB PRIMARY KEY NOT NULL,
///     value BLOB NOT NULL,
///     expires_at INTEGER NOT NULL
/// ) STRICT;
/// CREATE INDEX IF NOT EXISTS "sealed_sessions_expires_at" ON "sealed_sessions" (expires_at);
/// ```
///
/// The rows, statements and guarantees are those of
/// [`PostgresStore`](crate::PostgresStore) when both features are on: one
/// statement per method (an upsert that overwrites only an expired row, an
/// `UPDATE` of a live row, a `DELETE … RETURNING`), expiry in unix
/// milliseconds from SQLite's own `now` (the machine's clock: the
/// application's), expired rows never returned, deleted when
/// [`load`](crate::SessionStore::load) comes across one or
/// [`delete_expired`](SqliteStore::delete_expired) sweeps, and every call
/// bounded by a timeout (default 1 s). `SQLITE_FULL` (disk full, or
/// `max_page_count` reached) is [`StoreError::Full`]; a row whose columns
/// do not decode as bytes is [`StoreError::Corrupt`].
///
/// **The pool [`open`](SqliteStore::open) makes**: WAL journal mode, so
/// readers never wait for the writer and the pool's connections read in
/// parallel (writes still take turns); `synchronous = FULL`, so a write
/// the store acknowledged (a logout's delete included) is on disk and
/// survives a power cut, at one `fsync` per write; a `busy_timeout` of
/// 100 ms (this store's own writes queue in the process, so it only waits
/// for another process or pool on the file): a write locked out longer is
/// a [`StoreError::Timeout`] before the call's timeout abandons it, so it
/// never commits after the call failed, nor holds its thread for sqlx's
/// default 5 s. A pool of your own with `synchronous = NORMAL` in WAL mode
/// writes faster but may lose the last writes (a logout may come undone)
/// on a power cut.
///
/// **Writes queue in the process.** SQLite takes one writer at a time; a
/// store and its clones hand out turns first come, first served, inside
/// each call's timeout, instead of leaving writers to SQLite's busy
/// handler, which polls with growing sleeps: under the 32 clients of
/// `scripts/compare.sh` some writers starved past the timeout there (503s),
/// and the statement of a call that had already timed out could still run
/// afterwards. Other processes on the same file still meet the busy
/// handler.
///
/// # Example
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::StoreError> {
/// use sealed_session::{SessionConfig, SqliteStore};
///
/// let store = SqliteStore::open("/var/lib/myapp/sessions.db").await?;
/// store.migrate().await?;
/// let config = SessionConfig::default().with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    table: SqlTable<sqlx::Sqlite>,
}

sql_session_store!(SqliteStore);

impl SqliteStore {
    /// A store on `pool`, in table `sealed_sessions`, with a 1 s timeout.
    /// The pool must be on a file: each connection of a pool on
    /// `sqlite::memory:` has a database of its own.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = sqlx::SqlitePool::connect("sqlite:///var/lib/myapp/app.db").await?;
    /// let store = sealed_session::SqliteStore::new(pool);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(pool: SqlitePool) -> SqliteStore {
        SqliteStore {
            table: SqlTable::new(pool),
        }
    }

    /// Opens (creating it if missing) the database file at `path`, with a
    /// pool in WAL mode, `synchronous = FULL` and a 100 ms `busy_timeout`
    /// (why: see the type's docs).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the file cannot be opened or
    /// created, or `path` is empty, `:memory:` or a `file:` URI (an
    /// in-memory database would not be shared by the pool's connections
    /// nor survive a restart); [`StoreError::Timeout`] when the file stays
    /// locked past the timeout.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::StoreError> {
    /// let store = sealed_session::SqliteStore::open("sessions.db").await?;
    /// store.migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        let text = path.to_string_lossy();
        if text.is_empty() || text == ":memory:" || text.starts_with("file:") {
            return Err(StoreError::Unavailable(format!(
                "SqliteStore::open needs the path of a file, not {text:?}"
            )));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Well under the store's timeout: a write kept waiting by
            // another process gives up (a `Timeout`) before the store's
            // timeout abandons it, so it never commits after the call
            // failed. (This store's own writes queue in the process.)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .acquire_timeout(DEFAULT_TIMEOUT)
            .connect_with(options);
        let pool = bounded::<sqlx::Sqlite, _>(2 * DEFAULT_TIMEOUT, pool).await?;
        Ok(SqliteStore::new(pool))
    }
}

#[cfg(test)]
mod tests {
    /// The SQL printed in the type's docs is what `migrate` runs.
    #[test]
    fn the_documented_migration_is_the_one_that_runs() {
        let statements = crate::store::sql::Statements::new::<sqlx::Sqlite>(
            crate::store::sql::DEFAULT_TABLE.to_owned(),
        );
        let documented = r#"CREATE TABLE IF NOT EXISTS "sealed_sessions" (
    key BLOB PRIMARY KEY NOT NULL,
    value BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS "sealed_sessions_expires_at" ON "sealed_sessions" (expires_at);
"#;
        assert_eq!(statements.migration_script(), documented);
    }

    #[test]
    fn sqlite_full_is_recognised_with_extended_codes() {
        use super::Dialect;
        assert!(sqlx::Sqlite::is_full("13"));
        assert!(!sqlx::Sqlite::is_full("5"));
        assert!(!sqlx::Sqlite::is_full("x"));
    }
}
