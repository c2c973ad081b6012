//! [`PostgresStore`]: sessions in a PostgreSQL table (feature `postgres`).

use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
// sqlx takes `log`'s level; it turns on `tracing`'s `log` re-export itself.
use tracing::log::LevelFilter;

use crate::store::StoreError;
use crate::store::sql::{
    DEFAULT_TIMEOUT, Dialect, SqlTable, bounded, hex, sql_session_store, store_error,
};

impl Dialect for sqlx::Postgres {
    /// `CURRENT_TIMESTAMP` and `extract` are syntax (no lookup), and the
    /// operator is named: no `search_path` changes what time it is.
    const NOW_MILLIS: &'static str =
        "(extract(epoch from CURRENT_TIMESTAMP) OPERATOR(pg_catalog.*) 1000)::bigint";
    const EQ: &'static str = "OPERATOR(pg_catalog.=)";
    const GT: &'static str = "OPERATOR(pg_catalog.>)";
    const LE: &'static str = "OPERATOR(pg_catalog.<=)";
    const ADD: &'static str = "OPERATOR(pg_catalog.+)";
    const IN_SUBQUERY: &'static str = "OPERATOR(pg_catalog.=) ANY";
    /// Named in `pg_catalog`: `BYTEA` is looked up on the `search_path`
    /// (a `public.bytea` domain would run its checks on every write);
    /// `BIGINT` is a keyword.
    const BYTES: &'static str = "pg_catalog.bytea";
    const INTEGER: &'static str = "BIGINT";
    const TABLE_OPTIONS: &'static str = "";
    const ONE_WRITER: bool = false;

    /// `disk_full`.
    // 57014 query_canceled (a statement timeout), 55P03
    // lock_not_available (a lock timeout).
    fn is_timeout(code: &str) -> bool {
        matches!(code, "57014" | "55P03")
    }

    const EXISTS: &'static str =
        "SELECT pg_catalog.to_regclass($1) IS NOT NULL AND pg_catalog.to_regclass($2) IS NOT NULL";

    fn catalog_name(name: &str) -> String {
        format!("\"{name}\"")
    }

    fn is_full(code: &str) -> bool {
        code == "53100"
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    /// Nothing prepared: safe behind PgBouncer's transaction pooling.
    const INLINE: bool = true;

    fn bytes_literal(bytes: &[u8]) -> String {
        format!("pg_catalog.decode('{}', 'hex')", hex(bytes))
    }
}

/// A store in a PostgreSQL table, shared by every instance, on a
/// [`sqlx::PgPool`](https://docs.rs/sqlx/0.8/sqlx/type.PgPool.html) (sqlx 0.8, tokio): the pool your application already
/// has, or one from [`connect`](PostgresStore::connect).
///
/// **The table** (default name `sealed_sessions`, see
/// [`with_table`](PostgresStore::with_table)) is created by
/// [`migrate`](PostgresStore::migrate), or by hand (or in your own
/// migrations) with exactly this:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "sealed_sessions" (
///     key pg_catalog.bytea PRIMARY KEY NOT NULL,
///     value pg_catalog.bytea NOT NULL,
///     expires_at BIGINT NOT NULL
/// );
/// CREATE INDEX IF NOT EXISTS "sealed_sessions_expires_at" ON "sealed_sessions" (expires_at);
/// ```
///
/// `key` is the 32-byte store key, `value` the sealed entry (a dump of
/// the table reveals and forges nothing), `expires_at` the end of the
/// entry's time to live in unix milliseconds **on the database's clock**
/// (`CURRENT_TIMESTAMP` when the statement runs, plus the ttl when
/// written): the time to live is measured on one clock, so an offset
/// between the application's clocks and the server's cancels out and
/// every instance agrees on what is live. Only a step of the server's clock between a
/// write and a read moves an expiry (the session's own timestamps, checked
/// by the library on the application's clock, still end it on time).
///
/// **Each method is one statement**, so a write that fails leaves the
/// row as it was: `create` is `INSERT … ON CONFLICT (key) DO UPDATE …
/// WHERE` the existing row has expired (an expired row counts as absent),
/// `replace` an `UPDATE … WHERE key = $1 AND expires_at > now`, `delete`
/// a `DELETE … RETURNING` whether the row was still live. Expired rows
/// are never returned; [`load`](crate::SessionStore::load) deletes one it
/// comes across, `create` overwrites one, and
/// [`delete_expired`](PostgresStore::delete_expired) sweeps the rest on a
/// schedule of yours.
///
/// **Every call is bounded by a timeout** (default 1 s,
/// [`with_timeout`](PostgresStore::with_timeout)): a call that fails or
/// times out is a [`StoreError`], never an empty answer. A server that is
/// down or refuses connections is [`StoreError::Timeout`] (the pool keeps
/// trying to connect until the timeout) or [`StoreError::Unavailable`];
/// `disk_full` is [`StoreError::Full`]; a row whose columns do not decode
/// as bytes is [`StoreError::Corrupt`]; a statement or lock timeout of
/// the server is [`StoreError::Timeout`]. A call that timed out may still
/// complete on the server (as with any client) unless the server gives up
/// first: the pool of [`connect`](PostgresStore::connect) sets
/// `statement_timeout` and `lock_timeout` to the default timeout; **on a
/// pool of yours, set them** (on the pool's connect options, or
/// `ALTER ROLE … SET statement_timeout`) to at most the store's timeout,
/// or a write that timed out may commit later and hold its connection
/// until it does.
///
/// **What the pool must give** (the application's pool is used as it is):
///
/// - `READ COMMITTED` isolation, PostgreSQL's default: under `REPEATABLE
///   READ` or `SERIALIZABLE`, two writes racing on one key fail with a
///   serialization error ([`StoreError::Unavailable`], a 503) instead of
///   answering.
/// - `synchronous_commit` on (the default), and a synchronous standby if a
///   failover must not lose acknowledged writes: with it off, a
///   revocation marker acknowledged just before a crash is gone after it,
///   and the revoked copy opens again.
/// - `bytea_output = hex` (the default since PostgreSQL 9.0): values come
///   back as text (below), and a connection set to `escape` reads every
///   entry as [`StoreError::Corrupt`] (the row is left as it was).
///
/// **Behind PgBouncer in transaction pooling** (`pool_mode =
/// transaction`), also before 1.21 or with `max_prepared_statements = 0`
/// (tested on 1.18): supported. Nothing is prepared: each call is one
/// message of the simple query protocol with its values written into the
/// SQL text as literals (`pg_catalog.decode('<hex>', 'hex')` and integers
/// in parentheses, the same bytes whatever `standard_conforming_strings`
/// says), so no statement state lives on a server connection that
/// PgBouncer hands to another client between calls. (With sqlx's prepared statements, which
/// are named per client connection, one client's statement ran under
/// another's name there: a `replace` ran as a `create` and brought a
/// deleted session back, a `load` ran as a `delete`.) It costs PostgreSQL
/// a parse and plan per call; where no such proxy stands in between,
/// [`with_prepared_statements`](PostgresStore::with_prepared_statements)
/// saves it. A value travels as hex text, twice its size: PgBouncer's
/// `max_packet_size` must allow that (the call fails cleanly otherwise).
/// The pool of [`connect`](PostgresStore::connect) sets its timeouts in
/// the startup packet's `options`, which PgBouncer refuses or drops
/// depending on its version and settings (`ignore_startup_parameters`,
/// `track_extra_parameters`): behind PgBouncer, pass your own pool to
/// [`new`](PostgresStore::new) and set `statement_timeout` and
/// `lock_timeout` with `ALTER ROLE`.
///
/// **The statement texts hold keys and sealed values** (in hex; sealed,
/// so they reveal and forge nothing, but as large as the session) in the
/// default mode, wherever a statement's text goes:
///
/// - sqlx logs each statement's text (target `sqlx::query`) at DEBUG,
///   and slow ones (1 s by default) at WARN. The pool of
///   [`connect`](PostgresStore::connect) turns both off; on a pool of
///   yours, set `.log_statements(LevelFilter::Off)` and
///   `.log_slow_statements(LevelFilter::Off, Duration::ZERO)` on its
///   `PgConnectOptions` (or give the store a pool of its own), or filter
///   `sqlx::query` out of your logs.
/// - PostgreSQL logs the text of a statement that fails
///   (`log_min_error_statement`, default `error`: a read-only server
///   during a failover, a timeout, a full disk), of slow statements
///   (`log_min_duration_statement`) and of writes (`log_statement =
///   mod`), with their parameters in the prepared mode
///   (`log_parameter_max_length`), and shows a statement's first kilobyte
///   in `pg_stat_activity`. To keep keys and values out of the server's
///   log, in either mode, a superuser sets on the store's role (a role's
///   setting wins over the server's and the database's):
///
///   ```sql
///   ALTER ROLE sessions SET log_min_error_statement = panic;
///   ALTER ROLE sessions SET log_min_duration_statement = -1;
///   ALTER ROLE sessions SET log_statement = none;
///   ALTER ROLE sessions SET log_parameter_max_length = 0;
///   ALTER ROLE sessions SET log_parameter_max_length_on_error = 0;
///   ```
///
/// **No `search_path` changes what the statements do**: the functions
/// and operators they use are named in `pg_catalog`
/// (`pg_catalog.decode`, `OPERATOR(pg_catalog.=)`, …) or are syntax
/// (`CURRENT_TIMESTAMP`, `extract`), so a role that can create objects in
/// a schema on the path (`public`, before PostgreSQL 15) cannot move the
/// store's clock or its keys. The table's own name is looked up on the
/// path, as any unqualified table is.
///
/// # Example
///
/// With the pool your application already has:
///
/// ```no_run
/// # async fn run(pool: sqlx::PgPool) -> Result<(), sealed_session::StoreError> {
/// use sealed_session::{PostgresStore, SessionConfig};
///
/// let store = PostgresStore::new(pool.clone());
/// store.migrate().await?; // CREATE TABLE IF NOT EXISTS, once at start-up
/// let config = SessionConfig::default().with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    table: SqlTable<sqlx::Postgres>,
}

sql_session_store!(PostgresStore);

impl PostgresStore {
    /// A store on `pool`, in table `sealed_sessions`, with a 1 s timeout.
    /// Nothing is sent to the server until the first call.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = sqlx::PgPool::connect("postgres://app@localhost/app").await?;
    /// let store = sealed_session::PostgresStore::new(pool);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(pool: PgPool) -> PostgresStore {
        PostgresStore {
            table: SqlTable::new(pool),
        }
    }

    /// Prepares each statement once per connection (sqlx's cached named
    /// statements, values bound as parameters) instead of sending it as
    /// text with its values written in. PostgreSQL then parses and plans
    /// a statement once per connection rather than on every call. In
    /// `scripts/compare.sh` (docs/performance.md), the default costs 1.54 times the CPU
    /// of this per session write and 1.34 times per read (the app and
    /// PostgreSQL together), sessions just over the cookie limit (about
    /// 3.8 KB) get about half the requests a second, and values of
    /// megabytes take 5 to 8 times as long (in hex, twice their size, both
    /// ways). Statement texts then hold
    /// `$1` instead of keys and values, though PostgreSQL may still log
    /// the parameters (see the type's docs for the role settings).
    ///
    /// **Only where each client connection keeps its server connection**:
    /// directly to PostgreSQL, PgBouncer in `pool_mode = session`, or, by
    /// PgBouncer's documentation (not tested here), PgBouncer 1.21 or
    /// later in transaction pooling with `max_prepared_statements` above
    /// zero (it then tracks prepared statements itself). Behind
    /// transaction pooling without that, one client's statement runs under
    /// another's name: a deleted session comes back, a load deletes
    /// another user's row.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::PgPool) {
    /// // The pool connects straight to PostgreSQL.
    /// let store = sealed_session::PostgresStore::new(pool).with_prepared_statements();
    /// # }
    /// ```
    pub fn with_prepared_statements(mut self) -> PostgresStore {
        self.table.inline = false;
        self
    }

    /// Connects a new pool to the server at `url`
    /// (`postgres://user:password@host:port/database`), waiting at most
    /// 2 s for the first connection; the pool waits at most 1 s for a
    /// connection on each call.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] for a bad URL, a refused connection or
    /// failed authentication; [`StoreError::Timeout`] when the server does
    /// not answer in time.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sealed_session::StoreError> {
    /// let store = sealed_session::PostgresStore::connect("postgres://app@127.0.0.1/app").await?;
    /// store.migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(store_error::<sqlx::Postgres>)?;
        // The server gives up a statement, or a wait for a lock, at the
        // store's default timeout too, so that a call that timed out does
        // not commit later nor hold its connection.
        let limit = DEFAULT_TIMEOUT.as_millis().to_string();
        let options = options
            .options([
                ("statement_timeout", limit.as_str()),
                ("lock_timeout", limit.as_str()),
            ])
            // The statements' text holds keys and sealed values (see the
            // type's docs): not in the application's logs.
            .log_statements(LevelFilter::Off)
            .log_slow_statements(LevelFilter::Off, Duration::ZERO);
        let pool = PgPoolOptions::new()
            .acquire_timeout(DEFAULT_TIMEOUT)
            .connect_with(options);
        let pool = bounded::<sqlx::Postgres, _>(2 * DEFAULT_TIMEOUT, pool).await?;
        Ok(PostgresStore::new(pool))
    }
}

#[cfg(test)]
mod tests {
    /// The SQL printed in the type's docs is what `migrate` runs.
    #[test]
    fn the_documented_migration_is_the_one_that_runs() {
        let statements = crate::store::sql::Statements::new::<sqlx::Postgres>(
            crate::store::sql::DEFAULT_TABLE.to_owned(),
        );
        let documented = r#"CREATE TABLE IF NOT EXISTS "sealed_sessions" (
    key pg_catalog.bytea PRIMARY KEY NOT NULL,
    value pg_catalog.bytea NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS "sealed_sessions_expires_at" ON "sealed_sessions" (expires_at);
"#;
        assert_eq!(statements.migration_script(), documented);
    }
}
