//! Second review of `PostgresStore` after the first review's fixes
//! (`OPERATOR(pg_catalog.x)`, `CURRENT_TIMESTAMP`, `pg_catalog.decode`,
//! `connect()`'s logging settings, the documented role setting), against
//! a real PostgreSQL. `finding_` tests failed on the code under review
//! and now check the fix (`pg_catalog.bytea` in the migration); the
//! documented role settings' finding became a check of the settings the
//! docs now give; `held_` tests are attacks that held, kept as
//! regression tests.
//!
//! Every test uses a database, role or table of its own on the shared
//! cluster.

mod common;
#[path = "common/pg_review.rs"]
mod pg_review;

use std::path::Path;
use std::time::Duration;

use common::postgres_server::PostgresServer;
use sealed_session::{PostgresStore, SessionStore, StoreError, StoreKey};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool, Row};

use pg_review::{
    MODES, capture_logs, fresh_database, hex, in_mode, lock_row, pool_with, server_log, unique,
    url_of,
};

const HOUR: Duration = Duration::from_secs(3600);

fn log_len(log: &Path) -> usize {
    std::fs::metadata(log)
        .map(|m| m.len() as usize)
        .unwrap_or(0)
}

fn log_since(log: &Path, from: usize) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    String::from_utf8_lossy(&text[from.min(text.len())..]).into_owned()
}

/// Every store method once: live load, expired load (and the clean-up
/// task it starts), create, replace, delete, the sweep.
async fn every_method(store: &PostgresStore, admin: &PgPool, table: &str, seed: u8) {
    let live = StoreKey::from_bytes([seed; 32]);
    let expired = StoreKey::from_bytes([seed.wrapping_add(1); 32]);
    assert_eq!(store.create(&live, b"v1", HOUR).await, Ok(true));
    assert_eq!(store.create(&expired, b"old", HOUR).await, Ok(true));
    sqlx::query(&format!(
        "UPDATE \"{table}\" SET expires_at = 0 WHERE key = $1"
    ))
    .bind(&expired.as_bytes()[..])
    .execute(admin)
    .await
    .unwrap();
    assert_eq!(store.load(&live).await, Ok(Some(b"v1".to_vec())));
    assert_eq!(store.load(&expired).await, Ok(None));
    // The clean-up task of the expired load (bounded wait).
    for _ in 0..50 {
        let left: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\" WHERE key = $1"))
                .bind(&expired.as_bytes()[..])
                .fetch_one(admin)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.replace(&live, b"v2", HOUR).await, Ok(true));
    assert_eq!(store.delete(&live).await, Ok(true));
    assert!(store.delete_expired().await.is_ok());
}

// ---------------------------------------------------------------------
// Plans: every statement keeps its index on a big table.
// ---------------------------------------------------------------------

/// The statement texts of `table` the server logged (`log_statement =
/// all`): `(text, prepared)`.
fn logged_statements(log: &str, table: &str) -> Vec<(String, bool)> {
    let quoted = format!("\"{table}\"");
    let mut out = Vec::new();
    for line in log.lines() {
        if !line.contains(&quoted) {
            continue;
        }
        if let Some(at) = line.find("LOG:  statement: ") {
            out.push((line[at + "LOG:  statement: ".len()..].to_owned(), false));
        } else if let Some(at) = line.find("LOG:  execute ") {
            let rest = &line[at + "LOG:  execute ".len()..];
            if let Some(colon) = rest.find(": ") {
                out.push((rest[colon + 2..].to_owned(), true));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The statement as it was written before the fix (`now()`, bare
/// operators, `IN`, bare `decode`).
fn as_before(sql: &str) -> String {
    let mut sql = sql.replace("OPERATOR(pg_catalog.=) ANY", "IN");
    for op in ["=", ">", "<=", "+", "*"] {
        sql = sql.replace(&format!("OPERATOR(pg_catalog.{op})"), op);
    }
    sql.replace("CURRENT_TIMESTAMP", "now()")
        .replace("pg_catalog.decode", "decode")
}

/// The plan of `sql` (a prepared one as a generic plan, the worst case:
/// PostgreSQL switches to it after five calls when it costs no more).
async fn plan(conn: &mut sqlx::PgConnection, sql: &str, prepared: bool) -> String {
    let rows = if prepared {
        let types = if sql.contains("$3") {
            "(pg_catalog.bytea, pg_catalog.bytea, pg_catalog.int8)"
        } else if sql.contains("LIMIT $1") {
            "(pg_catalog.int8)"
        } else {
            "(pg_catalog.bytea)"
        };
        let args = if sql.contains("$3") {
            "('\\x01', '\\x02', 1000)"
        } else if sql.contains("LIMIT $1") {
            "(1000)"
        } else {
            "('\\x01')"
        };
        conn.execute("DEALLOCATE ALL; SET plan_cache_mode = force_generic_plan")
            .await
            .unwrap();
        conn.execute(format!("PREPARE review_p {types} AS {sql}").as_str())
            .await
            .unwrap();
        sqlx::raw_sql(&format!("EXPLAIN EXECUTE review_p {args}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    } else {
        sqlx::raw_sql(&format!("EXPLAIN {sql}"))
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    };
    let lines: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    lines.join("\n")
}

/// Shape of a plan: node names only (costs and row estimates dropped).
fn shape(plan: &str) -> String {
    plan.lines()
        .map(|l| {
            l.split("  (cost=")
                .next()
                .unwrap_or(l)
                .trim_end()
                .to_owned()
        })
        .filter(|l| {
            !l.trim_start().starts_with("Filter:")
                && !l.trim_start().starts_with("Index Cond:")
                && !l.trim_start().starts_with("Recheck Cond:")
                && !l.trim_start().starts_with("Conflict Filter:")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// On a table of 200,000 rows, every statement the store sends (taken
/// from the server's own statement log, in both modes) uses the primary
/// key or the `expires_at` index: no sequential scan, so a load never
/// reads the whole table; and the plan has the same shape as the same
/// statement written as before the fix (bare operators, `IN`, `now()`).
#[tokio::test]
async fn held_every_statement_keeps_its_index_on_a_big_table() {
    let server = PostgresServer::shared();
    let database = fresh_database(&server).await;
    let url = url_of(&server, "postgres", &database);
    let admin = pool_with(&url, 2, &[]).await;
    let log = server_log(&admin).await;
    let table = unique("big");
    let store = PostgresStore::new(pool_with(&url, 2, &[("log_statement", "all")]).await)
        .with_table(&table)
        .unwrap();
    store.migrate().await.unwrap();
    admin
        .execute(
            format!(
                "INSERT INTO \"{table}\" SELECT sha256(i::text::bytea), '\\x00', \
                 CASE WHEN i % 2000 = 0 THEN 0 ELSE 9000000000000000 END \
                 FROM generate_series(1, 200000) AS i; ANALYZE \"{table}\""
            )
            .as_str(),
        )
        .await
        .unwrap();
    let from = log_len(&log);
    for (_, prepared) in MODES {
        every_method(
            &in_mode(store.clone(), prepared),
            &admin,
            &table,
            0x10 + 2 * u8::from(prepared),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let statements = logged_statements(&log_since(&log, from), &table);
    // load, remove_expired_one, create, replace, delete, sweep; two modes.
    assert!(statements.len() >= 12, "{statements:#?}");

    let mut conn = admin.acquire().await.unwrap();
    let mut problems = Vec::new();
    for (sql, prepared) in &statements {
        let now = plan(&mut conn, sql, *prepared).await;
        let before = plan(&mut conn, &as_before(sql), *prepared).await;
        eprintln!(
            "{} {}\n{}\n",
            if *prepared { "prepared" } else { "inline" },
            &sql[..sql.len().min(90)],
            shape(&now)
        );
        if now.contains("Seq Scan") {
            problems.push(format!("sequential scan:\n{sql}\n{now}"));
        }
        if shape(&now) != shape(&before) {
            problems.push(format!(
                "plan differs from before:\n{sql}\n{now}\n-- before --\n{before}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

// ---------------------------------------------------------------------
// search_path: the migration's column type.
// ---------------------------------------------------------------------

/// The docs say "No `search_path` changes what the statements do", and
/// the first review's `decode` finding was fixed for a path listing
/// pg_catalog after a writable schema (`public, pg_catalog`). On that
/// path, `migrate()`'s `CREATE TABLE … (key BYTEA …, value BYTEA …)`
/// still takes `bytea` from the path (`BYTEA` is a type name, not a
/// keyword, unlike `BIGINT`): a role with CREATE on `public` defines a
/// domain `public.bytea` whose CHECK calls its function, and from then
/// on every write of the store runs that function **as the store's
/// role**, with each key and sealed value in hand. Nothing looks wrong
/// to the store: rows read back as bytea (PostgreSQL describes a domain
/// column by its base type).
///
/// Fix: `pg_catalog.bytea` in the migration (and the documented SQL).
#[tokio::test]
async fn finding_migrate_takes_bytea_from_a_hostile_search_path() {
    let server = PostgresServer::shared();
    let database = fresh_database(&server).await;
    let admin = pool_with(&url_of(&server, "postgres", &database), 1, &[]).await;
    let attacker = unique("attacker");
    let app = unique("app");
    admin
        .execute(
            format!(
                "CREATE ROLE {attacker} LOGIN; CREATE ROLE {app} LOGIN;\
                 GRANT CREATE ON SCHEMA public TO {attacker}, {app};\
                 ALTER ROLE {app} IN DATABASE {database} SET search_path = public, pg_catalog;"
            )
            .as_str(),
        )
        .await
        .unwrap();
    let hostile = pool_with(&url_of(&server, &attacker, &database), 1, &[]).await;
    hostile
        .execute(
            "CREATE TABLE public.loot (who pg_catalog.text, what pg_catalog.bytea);\
             GRANT INSERT ON public.loot TO PUBLIC;\
             CREATE FUNCTION public.spy(v pg_catalog.bytea) RETURNS pg_catalog.bool \
               LANGUAGE sql AS $$ INSERT INTO public.loot VALUES \
               (pg_catalog.current_user(), v) RETURNING true $$;\
             CREATE DOMAIN public.bytea AS pg_catalog.bytea CHECK (public.spy(VALUE));",
        )
        .await
        .unwrap();

    let mut stolen = Vec::new();
    for (mode, prepared) in MODES {
        let table = unique("sessions");
        let store = in_mode(
            PostgresStore::new(pool_with(&url_of(&server, &app, &database), 1, &[]).await)
                .with_table(&table)
                .unwrap(),
            prepared,
        );
        store.migrate().await.unwrap();
        let key = StoreKey::from_bytes([0x40 + u8::from(prepared); 32]);
        let value = format!("sealed bytes of {mode}").into_bytes();
        assert_eq!(store.create(&key, &value, HOUR).await, Ok(true));
        assert_eq!(store.load(&key).await, Ok(Some(value.clone())));
        let column: String = sqlx::query_scalar(&format!(
            "SELECT atttypid::regtype::text FROM pg_attribute \
             WHERE attrelid = 'public.\"{table}\"'::regclass AND attname = 'key'"
        ))
        .fetch_one(&admin)
        .await
        .unwrap();
        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT who, what FROM public.loot")
            .fetch_all(&admin)
            .await
            .unwrap();
        for (who, what) in rows {
            if what == key.as_bytes() || what == value {
                stolen.push(format!(
                    "{mode}: column type {column}; the attacker's function ran as {who} \
                     and kept {}",
                    if what == value {
                        "the sealed value"
                    } else {
                        "the key"
                    }
                ));
            }
        }
        admin.execute("TRUNCATE public.loot").await.unwrap();
    }
    assert!(stolen.is_empty(), "{stolen:#?}");
}

// ---------------------------------------------------------------------
// The server's log beyond failed statements.
// ---------------------------------------------------------------------

/// Second review: with only `log_min_error_statement = panic` on the
/// store's role (what the docs first said), PostgreSQL still wrote keys
/// and sealed values into its log through its other statement logs,
/// which production servers commonly turn on: `log_min_duration_statement`
/// (any write slower than it; 0 here to be deterministic) and
/// `log_statement = mod` (audit setups). Inline, the text holds them;
/// prepared, the `DETAIL: parameters:` line does
/// (`log_parameter_max_length` is unlimited by default). The docs now give
/// five role settings; with the audit setting on the database, the
/// owner's writes are logged (the check sees them) and the store role's
/// are not, in both modes.
#[tokio::test]
async fn the_documented_role_settings_keep_keys_out_of_the_slow_and_mod_logs() {
    let server = PostgresServer::shared();
    let admin = pool_with(&server.url(), 1, &[]).await;
    let log = server_log(&admin).await;
    let table = unique("slowlog");
    let mut leaked = Vec::new();
    for (setting, n) in [
        ("log_min_duration_statement = 0", 0u8),
        ("log_statement = mod", 1),
    ] {
        // The audit setting for the whole database (as an operator's
        // postgresql.conf would have it), the documented settings on the
        // store's role, which win over it.
        let database = fresh_database(&server).await;
        let url = url_of(&server, "postgres", &database);
        let role = unique("sessions_app");
        admin
            .execute(
                format!(
                    "ALTER DATABASE {database} SET {setting};\
                     CREATE ROLE {role} LOGIN;\
                     ALTER ROLE {role} SET log_min_error_statement = panic;\
                     ALTER ROLE {role} SET log_min_duration_statement = -1;\
                     ALTER ROLE {role} SET log_statement = none;\
                     ALTER ROLE {role} SET log_parameter_max_length = 0;\
                     ALTER ROLE {role} SET log_parameter_max_length_on_error = 0;"
                )
                .as_str(),
            )
            .await
            .unwrap();
        let owner = pool_with(&url, 1, &[]).await;
        PostgresStore::new(owner.clone())
            .with_table(&table)
            .unwrap()
            .migrate()
            .await
            .unwrap();
        owner
            .execute(format!("GRANT ALL ON \"{table}\" TO {role}").as_str())
            .await
            .unwrap();
        let role_url = url_of(&server, &role, &database);
        for (mode, prepared) in MODES {
            let key = StoreKey::from_bytes([0x50 + 2 * n + u8::from(prepared); 32]);
            // The audit setting logs the owner's writes: the check sees them.
            let owners = in_mode(
                PostgresStore::new(owner.clone())
                    .with_table(&table)
                    .unwrap(),
                prepared,
            );
            let seen = StoreKey::from_bytes([0x60 + 2 * n + u8::from(prepared); 32]);
            let from = log_len(&log);
            assert_eq!(owners.create(&seen, b"sealed", HOUR).await, Ok(true));
            let store = in_mode(
                PostgresStore::new(pool_with(&role_url, 1, &[]).await)
                    .with_table(&table)
                    .unwrap(),
                prepared,
            );
            assert_eq!(store.create(&key, b"sealed", HOUR).await, Ok(true));
            assert_eq!(store.replace(&key, b"sealed 2", HOUR).await, Ok(true));
            // Bounded wait for the owner's line, written by now anyway.
            let mut logged = String::new();
            for _ in 0..20 {
                logged = log_since(&log, from);
                if logged.contains(&hex(seen.as_bytes())) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                logged.contains(&hex(seen.as_bytes())),
                "{setting}, {mode}: the audit setting logged nothing"
            );
            if logged.contains(&hex(key.as_bytes())) {
                leaked.push(format!("{setting}, {mode}: the key is in the server log"));
            }
        }
    }
    assert!(leaked.is_empty(), "{leaked:#?}");
}

// ---------------------------------------------------------------------
// Errors and the application's log when statements fail.
// ---------------------------------------------------------------------

/// Failed calls in both modes, on the pool of `connect` with everything
/// logged at TRACE: a read-only role (every write, the expired-row
/// clean-up task, the sweep), a missing table, a CHECK constraint
/// refusing the value, a statement timeout, `bytea_output = escape`
/// (Corrupt). No error's Display or Debug, and no log line of any
/// target, holds the key or the value in hex.
#[tokio::test]
async fn held_failed_calls_keep_keys_and_values_out_of_errors_and_logs() {
    let (capture, _guard) = capture_logs(tracing::Level::TRACE);
    let server = PostgresServer::shared();
    // The test's own statements stay out of the capture.
    let quiet: PgConnectOptions = server.url().parse().unwrap();
    let admin = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(quiet.log_statements(tracing::log::LevelFilter::Off))
        .await
        .unwrap();
    let table = unique("failing");
    PostgresStore::new(admin.clone())
        .with_table(&table)
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let readonly = unique("ro");
    let escape = unique("esc");
    admin
        .execute(
            format!(
                "CREATE ROLE {readonly} LOGIN; CREATE ROLE {escape} LOGIN;\
                 GRANT ALL ON \"{table}\" TO {readonly}, {escape};\
                 ALTER ROLE {readonly} SET default_transaction_read_only = on;\
                 ALTER ROLE {escape} SET bytea_output = escape;"
            )
            .as_str(),
        )
        .await
        .unwrap();
    let at = |role: &str| format!("postgres://{role}@127.0.0.1:{}/postgres", server.port);
    let mut seen = Vec::new();
    let mut leaked = Vec::new();
    let mut check = |what: String, got: String, key: &StoreKey, value: &[u8]| {
        for (name, bytes) in [("key", key.as_bytes().as_slice()), ("value", value)] {
            for line in got.lines().filter(|l| l.contains(&hex(bytes))) {
                leaked.push(format!(
                    "{what}: the {name} in {}",
                    &line[..line.len().min(300)]
                ));
            }
        }
        seen.push(format!("{what}: {got}"));
    };
    for (mode, prepared) in MODES {
        let p = u8::from(prepared);
        let key = StoreKey::from_bytes([0x60 + p; 32]);
        let value = vec![0x7e; 300];
        // An expired row of `key` (admin), and a live one of `live`.
        let base = PostgresStore::new(admin.clone())
            .with_table(&table)
            .unwrap();
        assert_eq!(base.create(&key, &value, HOUR).await, Ok(true));
        let live = StoreKey::from_bytes([0x68 + p; 32]);
        assert_eq!(base.create(&live, &value, HOUR).await, Ok(true));
        sqlx::query(&format!(
            "UPDATE \"{table}\" SET expires_at = 0 WHERE key = $1"
        ))
        .bind(&key.as_bytes()[..])
        .execute(&admin)
        .await
        .unwrap();

        let ro = in_mode(
            PostgresStore::connect(&at(&readonly))
                .await
                .unwrap()
                .with_table(&table)
                .unwrap(),
            prepared,
        );
        let got = ro.create(&key, &value, HOUR).await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        check(
            format!("{mode} read-only create"),
            format!("{got:?} {}", got.clone().unwrap_err()),
            &key,
            &value,
        );
        let got = ro.replace(&live, &value, HOUR).await;
        assert!(got.is_err(), "{got:?}");
        check(
            format!("{mode} read-only replace"),
            format!("{got:?}"),
            &live,
            &value,
        );
        let got = ro.delete(&live).await;
        assert!(got.is_err(), "{got:?}");
        check(
            format!("{mode} read-only delete"),
            format!("{got:?}"),
            &live,
            &value,
        );
        assert_eq!(ro.load(&key).await, Ok(None)); // clean-up task fails
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got = ro.delete_expired().await;
        assert!(got.is_err(), "{got:?}");

        let missing = in_mode(
            PostgresStore::connect(&server.url())
                .await
                .unwrap()
                .with_table(&unique("nope"))
                .unwrap(),
            prepared,
        );
        let got = missing.create(&key, &value, HOUR).await;
        assert!(got.is_err(), "{got:?}");
        check(
            format!("{mode} missing table"),
            format!("{got:?}"),
            &key,
            &value,
        );

        let esc = in_mode(
            PostgresStore::connect(&at(&escape))
                .await
                .unwrap()
                .with_table(&table)
                .unwrap(),
            prepared,
        );
        let got = esc.load(&live).await;
        check(
            format!("{mode} bytea_output=escape load"),
            format!("{got:?}"),
            &live,
            &value,
        );
        if !prepared {
            assert!(matches!(got, Err(StoreError::Corrupt(_))), "{got:?}");
        }

        let slow = in_mode(
            PostgresStore::connect(&server.url())
                .await
                .unwrap()
                .with_table(&table)
                .unwrap()
                .with_timeout(Duration::from_secs(3)),
            prepared,
        );
        let holder = lock_row(&admin, &table, &live).await;
        let got = slow.replace(&live, &value, HOUR).await;
        holder.rollback().await.unwrap();
        assert_eq!(got, Err(StoreError::Timeout));
        sqlx::query(&format!(
            "DELETE FROM \"{table}\" WHERE key = $1 OR key = $2"
        ))
        .bind(&key.as_bytes()[..])
        .bind(&live.as_bytes()[..])
        .execute(&admin)
        .await
        .unwrap();
        let log = capture.text();
        check(format!("{mode} application log"), log, &key, &value);
        let log = capture.text();
        check(format!("{mode} application log (live)"), log, &live, &value);
    }
    // A CHECK constraint refusing big values (inline and prepared).
    admin
        .execute(
            format!(
                "ALTER TABLE \"{table}\" ADD CONSTRAINT small CHECK (pg_catalog.length(value) < 100)"
            )
            .as_str(),
        )
        .await
        .unwrap();
    for (mode, prepared) in MODES {
        let store = in_mode(
            PostgresStore::connect(&server.url())
                .await
                .unwrap()
                .with_table(&table)
                .unwrap(),
            prepared,
        );
        let key = StoreKey::from_bytes([0x70 + u8::from(prepared); 32]);
        let value = vec![0x3c; 200];
        let got = store.create(&key, &value, HOUR).await;
        assert!(got.is_err(), "{got:?}");
        check(
            format!("{mode} check constraint"),
            format!("{got:?}"),
            &key,
            &value,
        );
    }
    assert!(leaked.is_empty(), "{leaked:#?}");
    eprintln!(
        "{}",
        seen.iter()
            .filter(|s| !s.contains("application log"))
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
