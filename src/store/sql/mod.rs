//! What [`PostgresStore`](crate::PostgresStore) and
//! [`SqliteStore`](crate::SqliteStore) share: the table, its statements,
//! the per-call timeout and the mapping of `sqlx` errors.
//!
//! **The table.** One row per entry: `key` (the 32-byte [`StoreKey`],
//! primary key), `value` (the sealed bytes) and `expires_at` (unix
//! milliseconds, a 64-bit integer, on the database's clock). An entry is
//! live while `now < expires_at`; a row past it counts as absent for every
//! method (never returned, overwritten by `create`, left alone by
//! `replace`, and a `delete` of it answers "nothing was there").
//!
//! **Whose clock.** Expiry is computed and compared by the database
//! (`now + ttl` when written, `expires_at > now` when read), never from
//! the application's clock: the time to live is a duration measured on
//! one clock, so an offset between the application's clocks and the
//! database's cancels out, and instances with skewed clocks agree on what
//! is live. Only a step of the database's clock between a write and a
//! read moves an expiry (forward: rows end early and read as missing;
//! back: rows stay longer). The session's own lifetime is checked by the
//! library from the sealed timestamps on the application's clock, so a
//! row that outlives it still opens nothing.
//!
//! **Atomic writes.** Each method is one SQL statement: `create` is an
//! upsert that overwrites only an expired row, `replace` an `UPDATE` of a
//! live row, `delete` a `DELETE … RETURNING` that says whether the row was
//! live. A statement that fails leaves the row as it was.
//!
//! **How statements are sent.** SQLite's are prepared once per connection
//! and cached. PostgreSQL's go by default with the simple query protocol,
//! values written into the SQL text as literals ([`Dialect::INLINE`]):
//! nothing of a statement outlives its one message on the server
//! connection, so a transaction-pooling proxy (PgBouncer) that hands that
//! connection to another client between statements cannot make it run
//! ours, or us run its. Only bytes, integers and validated names are ever
//! written in. `PostgresStore::with_prepared_statements` turns that off
//! (`SqlTable::inline`) where the connection is known to keep them.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
mod statements;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use crate::error::ConfigError;
use crate::store::{StoreError, StoreKey};

use statements::{Arg, inline};
pub(crate) use statements::{Dialect, Statements, checked_table, hex};

/// The default table name of both SQL stores.
pub(crate) const DEFAULT_TABLE: &str = "sealed_sessions";

/// The default per-call timeout of both SQL stores.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest time to live written (about 35,000 years): `now + ttl`
/// stays far inside a 64-bit integer on both databases.
const MAX_TTL_MILLIS: i64 = 1 << 50;

/// Expired rows deleted per statement by `delete_expired`, so a large
/// backlog never holds one long write lock.
const CLEANUP_BATCH: i64 = 1000;

/// A time to live in milliseconds, at least 1 and at most
/// [`MAX_TTL_MILLIS`].
fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis())
        .unwrap_or(i64::MAX)
        .clamp(1, MAX_TTL_MILLIS)
}

/// Runs a database call within `timeout`, mapping its errors. A call that
/// timed out may still complete on the server.
pub(crate) async fn bounded<DB: Dialect, T>(
    timeout: Duration,
    call: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map_err(store_error::<DB>),
        Err(_elapsed) => Err(StoreError::Timeout),
    }
}

/// The [`StoreError`] for a `sqlx` error.
pub(crate) fn store_error<DB: Dialect>(error: sqlx::Error) -> StoreError {
    use sqlx::Error;
    match &error {
        Error::PoolTimedOut => StoreError::Timeout,
        Error::Database(db) if db.code().is_some_and(|code| DB::is_full(&code)) => StoreError::Full,
        Error::Database(db) if db.code().is_some_and(|code| DB::is_timeout(&code)) => {
            StoreError::Timeout
        }
        Error::ColumnDecode { .. }
        | Error::Decode(_)
        | Error::ColumnNotFound(_)
        | Error::ColumnIndexOutOfBounds { .. }
        | Error::TypeNotFound { .. } => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Unavailable(error.to_string()),
    }
}

/// A table of entries in a pool, with the per-call timeout: the four
/// store methods, the cleanup and the migration, for any [`Dialect`].
pub(crate) struct SqlTable<DB: Database> {
    pub(crate) pool: Pool<DB>,
    pub(crate) statements: Statements,
    pub(crate) timeout: Duration,
    /// Statements as SQL text with their values written in, rather than
    /// prepared ([`Dialect::INLINE`] unless changed).
    pub(crate) inline: bool,
    /// The queue of writers, shared by clones ([`Dialect::ONE_WRITER`]).
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl<DB: Database> Clone for SqlTable<DB> {
    fn clone(&self) -> SqlTable<DB> {
        SqlTable {
            pool: self.pool.clone(),
            statements: self.statements.clone(),
            timeout: self.timeout,
            inline: self.inline,
            writer: self.writer.clone(),
        }
    }
}

impl<DB: Dialect> SqlTable<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    pub(crate) fn new(pool: Pool<DB>) -> SqlTable<DB> {
        SqlTable {
            pool,
            statements: Statements::new::<DB>(DEFAULT_TABLE.to_owned()),
            timeout: DEFAULT_TIMEOUT,
            inline: DB::INLINE,
            writer: DB::ONE_WRITER.then(Arc::default),
        }
    }

    /// Runs `sql` with `args` (see [`SqlTable::inline`]); its first row.
    async fn fetch_optional(
        &self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<DB::Row>, sqlx::Error> {
        if self.inline {
            let sql = inline::<DB>(sql, args);
            // Not `RawSql::fetch_optional`: in sqlx 0.8.6 it is
            // `fetch_one` (no row is an error).
            self.pool.fetch_optional(sqlx::raw_sql(&sql)).await
        } else {
            let query = args.iter().fold(sqlx::query(sql), |q, arg| arg.bind(q));
            query.fetch_optional(&self.pool).await
        }
    }

    /// Runs `sql` with `args` (see [`SqlTable::inline`]); what it changed.
    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<DB::QueryResult, sqlx::Error> {
        if self.inline {
            let sql = inline::<DB>(sql, args);
            self.pool.execute(sqlx::raw_sql(&sql)).await
        } else {
            let query = args.iter().fold(sqlx::query(sql), |q, arg| arg.bind(q));
            query.execute(&self.pool).await
        }
    }

    /// Waits for this store's turn to write where the database takes one
    /// writer at a time: first come, first served, and inside the call's
    /// timeout, so a call that timed out while waiting never started its
    /// statement. (Left to SQLite's busy handler, waiting writers poll
    /// with growing sleeps: some starve past the timeout, and the
    /// statement of a call that already failed may still run.)
    async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }

    pub(crate) fn with_table(self, table: &str) -> Result<SqlTable<DB>, ConfigError> {
        Ok(SqlTable {
            statements: Statements::new::<DB>(checked_table(table)?),
            ..self
        })
    }

    /// Creates the table and its index unless the catalog shows both
    /// (`CREATE … IF NOT EXISTS` would still queue for a lock on the
    /// table, and every write behind it); an object another instance
    /// created at the same moment counts as created.
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let table = &self.statements.table;
        let names = [
            DB::catalog_name(table),
            DB::catalog_name(&format!("{table}_expires_at")),
        ];
        let args = [Arg::Name(&names[0]), Arg::Name(&names[1])];
        let row = bounded::<DB, _>(self.timeout, self.fetch_optional(DB::EXISTS, &args)).await?;
        let row =
            row.ok_or_else(|| StoreError::Unavailable("the catalog query returned no row".into()))?;
        if row.try_get::<bool, _>(0).map_err(store_error::<DB>)? {
            return Ok(());
        }
        for statement in &self.statements.migration {
            let run = bounded::<DB, _>(self.timeout, self.pool.execute(statement.as_str())).await;
            match run {
                Ok(_) => {}
                // Created meanwhile by another instance (a unique
                // violation in the catalog): run it again, to see it
                // there; any other error comes back.
                Err(_) => {
                    bounded::<DB, _>(self.timeout, self.pool.execute(statement.as_str())).await?;
                }
            }
        }
        Ok(())
    }

    /// The live value; an expired row is `None` at once, and deleted in a
    /// task of its own (unless a write renewed it meanwhile), so that the
    /// answer never waits for a writer or a lock. A failed clean-up only
    /// logs: the sweep or the next `create` removes the row.
    pub(crate) async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError>
    where
        Self: Send + Sync + 'static,
        Pool<DB>: Send + Sync,
    {
        let key = *key;
        let live = bounded::<DB, _>(self.timeout, async {
            let Some(row) = self
                .fetch_optional(&self.statements.load, &[Arg::Bytes(key.as_bytes())])
                .await?
            else {
                return Ok(None);
            };
            if row.try_get::<bool, _>(0)? {
                return Ok(Some(Some(row.try_get::<Vec<u8>, _>(1)?)));
            }
            Ok(Some(None))
        })
        .await?;
        match live {
            Some(Some(value)) => Ok(Some(value)),
            Some(None) => {
                self.remove_soon(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Deletes `key`'s row if it is still expired, in a task of its own
    /// (none without a tokio runtime: the sweep gets it).
    fn remove_soon(&self, key: StoreKey)
    where
        Self: Send + Sync + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let table = self.clone();
        runtime.spawn(async move {
            let removed = bounded::<DB, _>(table.timeout, async {
                let _turn = table.turn().await;
                let sql = &table.statements.remove_expired_one;
                table.execute(sql, &[Arg::Bytes(key.as_bytes())]).await
            })
            .await;
            if let Err(error) = removed {
                tracing::debug!(%error, "expired session store row not removed");
            }
        });
    }

    /// A write (`create` or `replace`) whose statement returns a row when
    /// it wrote.
    async fn write(
        &self,
        sql: &str,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let written = async {
            let _turn = self.turn().await;
            let args = [
                Arg::Bytes(key.as_bytes()),
                Arg::Bytes(value),
                Arg::Int(ttl_millis(ttl)),
            ];
            self.fetch_optional(sql, &args).await
        };
        Ok(bounded::<DB, _>(self.timeout, written).await?.is_some())
    }

    pub(crate) async fn create(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.write(&self.statements.create, key, value, ttl).await
    }

    pub(crate) async fn replace(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.write(&self.statements.replace, key, value, ttl).await
    }

    pub(crate) async fn delete(&self, key: &StoreKey) -> Result<bool, StoreError> {
        bounded::<DB, _>(self.timeout, async {
            let _turn = self.turn().await;
            let row = self
                .fetch_optional(&self.statements.delete, &[Arg::Bytes(key.as_bytes())])
                .await?;
            row.map_or(Ok(false), |row| row.try_get::<bool, _>(0))
        })
        .await
    }

    /// Deletes every expired row, in batches (each within the timeout);
    /// returns how many.
    pub(crate) async fn delete_expired(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let batch = async {
                let _turn = self.turn().await;
                self.execute(&self.statements.delete_expired, &[Arg::Int(CLEANUP_BATCH)])
                    .await
            };
            let deleted = DB::rows_affected(&bounded::<DB, _>(self.timeout, batch).await?);
            total += deleted;
            if deleted < CLEANUP_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }
}

/// For a store type with a `table: SqlTable<_>` field: its configuration,
/// migration and cleanup methods, `SessionStore`, and `Debug` (table and
/// timeout; never the pool's connection options, which may hold a
/// password).
macro_rules! sql_session_store {
    ($store:ident) => {
        impl $store {
            /// Uses table `name` instead of `sealed_sessions` (its index is
            /// `<name>_expires_at`). The name goes into SQL text, quoted, so
            /// it must be a plain identifier (on PostgreSQL, set the pool's
            /// `search_path` to use another schema).
            ///
            /// # Errors
            ///
            /// [`ConfigError::InvalidTableName`](crate::ConfigError::InvalidTableName)
            /// unless `name` is 1 to 52 ASCII letters, digits or `_` (so
            /// that `<name>_expires_at` fits PostgreSQL's 63), not
            /// starting with a digit nor with `sqlite_` in any case.
            ///
            /// # Example
            ///
            /// ```no_run
            #[doc = concat!("# fn run(store: sealed_session::", stringify!($store), ") {")]
            /// let bad = store.clone().with_table("x\"; DROP TABLE users; --");
            /// assert_eq!(bad.unwrap_err(), sealed_session::ConfigError::InvalidTableName);
            /// let store = store.with_table("shop_sessions").unwrap();
            /// # }
            /// ```
            pub fn with_table(self, name: &str) -> Result<$store, $crate::error::ConfigError> {
                Ok($store {
                    table: self.table.with_table(name)?,
                })
            }

            /// The longest one call may take before it fails with
            /// [`StoreError::Timeout`](crate::StoreError::Timeout). Default 1 s.
            ///
            /// # Example
            ///
            /// ```no_run
            #[doc = concat!("# fn run(store: sealed_session::", stringify!($store), ") {")]
            /// let store = store.with_timeout(std::time::Duration::from_millis(300));
            /// # }
            /// ```
            pub fn with_timeout(mut self, timeout: std::time::Duration) -> $store {
                self.table.timeout = timeout;
                self
            }

            /// Creates the table and its index if they do not exist (the SQL
            #[doc = concat!("in [`migration`](", stringify!($store), "::migration)); safe")]
            /// to run at every start. Needs the right to create tables;
            /// without it, run that SQL by hand once.
            ///
            /// # Errors
            ///
            /// A [`StoreError`](crate::StoreError) when the database refuses
            /// or cannot be reached.
            ///
            /// # Example
            ///
            /// ```no_run
            #[doc = concat!("# async fn run(store: sealed_session::", stringify!($store), ") -> Result<(), sealed_session::StoreError> {")]
            /// store.migrate().await?;
            /// # Ok(())
            /// # }
            /// ```
            pub async fn migrate(&self) -> Result<(), $crate::store::StoreError> {
                self.table.migrate().await
            }

            #[doc = concat!("The SQL [`migrate`](", stringify!($store), "::migrate) runs, for")]
            /// this store's table name: to run by hand or put in your own
            /// migrations.
            ///
            /// # Example
            ///
            /// ```no_run
            #[doc = concat!("# fn run(store: sealed_session::", stringify!($store), ") {")]
            /// assert!(store.migration().starts_with("CREATE TABLE IF NOT EXISTS \"sealed_sessions\""));
            /// # }
            /// ```
            pub fn migration(&self) -> String {
                self.table.statements.migration_script()
            }

            /// Deletes every expired row; returns how many. Batches of
            /// 1,000 rows, each within the timeout, so a large backlog never
            /// holds one long lock. Expired rows are already invisible; this
            /// only reclaims space.
            ///
            /// # Errors
            ///
            /// A [`StoreError`](crate::StoreError) when a batch fails (the
            /// batches before it stay deleted).
            ///
            /// # Example
            ///
            /// Every ten minutes, from a task of the application (several
            /// instances doing it at once is harmless):
            ///
            /// ```no_run
            #[doc = concat!("# fn run(store: sealed_session::", stringify!($store), ") {")]
            /// use std::time::Duration;
            ///
            /// let cleaner = store.clone();
            /// tokio::spawn(async move {
            ///     let mut every = tokio::time::interval(Duration::from_secs(600));
            ///     loop {
            ///         every.tick().await;
            ///         if let Err(error) = cleaner.delete_expired().await {
            ///             eprintln!("session cleanup failed: {error}");
            ///         }
            ///     }
            /// });
            /// # }
            /// ```
            pub async fn delete_expired(&self) -> Result<u64, $crate::store::StoreError> {
                self.table.delete_expired().await
            }
        }

        $crate::store::delegate_session_store!($store, table);

        impl std::fmt::Debug for $store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("table", &self.table.statements.table)
                    .field("timeout", &self.table.timeout)
                    .field("inline", &self.table.inline)
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use sql_session_store;
