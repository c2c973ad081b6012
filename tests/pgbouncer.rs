//! `PostgresStore` behind PgBouncer in `pool_mode = transaction` without
//! prepared-statement support (see `common/pgbouncer.rs`): many client
//! connections on two server connections, each method's promise checked
//! at every step. With named prepared statements, a client's statement
//! can run on a server connection where its name belongs to another
//! client's statement (a `replace` ran as a `create` and brought a deleted
//! session back, a `load` ran as a `delete`, in review); a store that
//! keeps no statement on the server connection keeps every promise here.
//!
//! Errors are counted apart from wrong answers: an error such as
//! "prepared statement sqlx_s_1 does not exist" is a symptom, a wrong
//! answer or a wrong write the defect itself. A panic inside sqlx (it
//! indexes past the end of a row of another statement's shape, as when a
//! `load` ran as a `delete`) is counted as a failure of its call. All of
//! them fail the tests; PostgreSQL's own rows, read without PgBouncer,
//! are checked at the end too.

mod common;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use common::pgbouncer::PgBouncer;
use common::postgres_server::PostgresServer;
use sealed_session::{PostgresStore, SessionStore, StoreError, StoreKey};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};

/// Server connections PgBouncer may open: few, so they change hands.
const SERVER_CONNECTIONS: u32 = 2;
/// Client connections in the store's pool.
const CLIENT_CONNECTIONS: u32 = 16;
/// Concurrent tasks, each on keys of its own.
const TASKS: u8 = 16;
/// Rounds per task.
const ROUNDS: u16 = 200;
/// Far longer than any test: nothing expires during one.
const TTL: Duration = Duration::from_secs(3600);
/// Per call: well above any wait for one of the two server connections,
/// so that a timeout means something went wrong.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many violations of each step a failing test prints.
const SHOWN: usize = 3;

/// A promise a method broke: where, what it had to answer, what it did.
#[derive(Debug)]
struct Violation {
    task: u8,
    round: u16,
    step: &'static str,
    expected: String,
    got: String,
}

/// A stored value: compared as bytes, printed as text (the tests' values
/// are text).
#[derive(Clone, PartialEq)]
struct Bytes(Vec<u8>);

impl Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// How a call failed instead of answering.
#[derive(Debug)]
enum Fault {
    /// The store returned an error.
    Error(StoreError),
    /// The call panicked (sqlx does, decoding a row of another
    /// statement's shape): the message.
    Panic(String),
}

/// A call that failed: where, and how.
#[derive(Debug)]
struct Failure {
    task: u8,
    round: u16,
    step: &'static str,
    fault: Fault,
}

/// What the tasks saw.
#[derive(Default)]
struct Outcome {
    violations: Vec<Violation>,
    failures: Vec<Failure>,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.violations.extend(other.violations);
        self.failures.extend(other.failures);
    }

    /// Checks `got` against `expected` at `step`; `false` (and recorded)
    /// on a failure or a wrong answer.
    fn check<T: PartialEq + Debug>(
        &mut self,
        (task, round): (u8, u16),
        step: &'static str,
        got: Result<T, Fault>,
        expected: T,
    ) -> bool {
        match got {
            Ok(got) if got == expected => true,
            Ok(got) => {
                self.violations.push(Violation {
                    task,
                    round,
                    step,
                    expected: format!("{expected:?}"),
                    got: format!("{got:?}"),
                });
                false
            }
            Err(fault) => {
                self.failures.push(Failure {
                    task,
                    round,
                    step,
                    fault,
                });
                false
            }
        }
    }

    /// Prints counts (in all, per step, per kind of failure) and the
    /// first few violations of each step, then fails if there was any
    /// violation or failure.
    fn assert_none(&self, what: &str) {
        let panics = |f: &&Failure| matches!(f.fault, Fault::Panic(_));
        let panicked = self.failures.iter().filter(panics).count();
        println!(
            "{what}: {} violations (wrong answers or writes), {} errors, \
             {panicked} panics inside sqlx",
            self.violations.len(),
            self.failures.len() - panicked,
        );
        let mut steps: Vec<&str> = self
            .violations
            .iter()
            .map(|v| v.step)
            .chain(self.failures.iter().map(|f| f.step))
            .collect();
        steps.sort();
        steps.dedup();
        for step in steps {
            let wrong: Vec<_> = self.violations.iter().filter(|v| v.step == step).collect();
            let failed: Vec<_> = self.failures.iter().filter(|f| f.step == step).collect();
            let panicked = failed.iter().copied().filter(panics).count();
            println!(
                "  {step}: {} violations, {} errors, {panicked} panics",
                wrong.len(),
                failed.len() - panicked
            );
            for v in wrong.iter().take(SHOWN) {
                println!(
                    "    task {} round {}: expected {}, got {}",
                    v.task, v.round, v.expected, v.got
                );
            }
        }
        // Kinds of failure, statement numbers and counts written as N.
        let mut kinds: Vec<(String, usize)> = Vec::new();
        for failure in &self.failures {
            let text = match &failure.fault {
                Fault::Error(error) => format!("error: {error}"),
                Fault::Panic(message) => format!("panic: {message}"),
            };
            let mut kind = String::new();
            for c in text.chars() {
                if !c.is_ascii_digit() {
                    kind.push(c);
                } else if !kind.ends_with('N') {
                    kind.push('N');
                }
            }
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((kind, 1)),
            }
        }
        kinds.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        for (kind, n) in &kinds {
            println!("  {n} x {kind}");
        }
        assert!(
            self.violations.is_empty() && self.failures.is_empty(),
            "{what}: {} violations, {} errors and panics (counts and first ones printed above; \
             run with --nocapture)",
            self.violations.len(),
            self.failures.len()
        );
    }
}

/// The store, each call in a task of its own, so that a panic inside sqlx
/// is a [`Fault::Panic`] of that call rather than the end of the test.
#[derive(Clone)]
struct Calls(Arc<PostgresStore>);

impl Calls {
    async fn load(&self, key: StoreKey) -> Result<Option<Bytes>, Fault> {
        let store = self.0.clone();
        spawned(async move { Ok(store.load(&key).await?.map(Bytes)) }).await
    }

    async fn create(&self, key: StoreKey, value: &Bytes) -> Result<bool, Fault> {
        let (store, value) = (self.0.clone(), value.0.clone());
        spawned(async move { store.create(&key, &value, TTL).await }).await
    }

    async fn replace(&self, key: StoreKey, value: &Bytes) -> Result<bool, Fault> {
        let (store, value) = (self.0.clone(), value.0.clone());
        spawned(async move { store.replace(&key, &value, TTL).await }).await
    }

    async fn delete(&self, key: StoreKey) -> Result<bool, Fault> {
        let store = self.0.clone();
        spawned(async move { store.delete(&key).await }).await
    }
}

/// Runs `call` in a task of its own: its answer, its error, or its panic.
async fn spawned<T: Send + 'static>(
    call: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, Fault> {
    match tokio::spawn(call).await {
        Ok(answer) => answer.map_err(Fault::Error),
        Err(join) => {
            let panic = join.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Fault::Panic(message))
        }
    }
}

/// Leaves out the default report of panics inside sqlx (each one is
/// counted as a [`Fault::Panic`] and printed with the others); every
/// other panic is reported as usual.
fn quiet_sqlx_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let usual = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|at| at.file().contains("sqlx")) {
                usual(info);
            }
        }));
    });
}

/// PostgreSQL, PgBouncer in front of it, a store through PgBouncer on a
/// pool of many connections, and a pool straight to PostgreSQL (where the
/// table was made, and the rows are checked).
struct Setup {
    store: Calls,
    direct: PgPool,
    table: String,
    // Dropped in this order: PgBouncer before the server behind it.
    _bouncer: PgBouncer,
    _server: PostgresServer,
}

async fn setup() -> Setup {
    quiet_sqlx_panics();
    let server = PostgresServer::start();
    let bouncer = PgBouncer::start(&server, SERVER_CONNECTIONS);
    let table = "sessions".to_owned();
    let direct = PgPool::connect(&server.url()).await.unwrap();
    PostgresStore::new(direct.clone())
        .with_table(&table)
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(CLIENT_CONNECTIONS)
        .connect(&bouncer.url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no connection through pgbouncer ({e}): see {}",
                bouncer.log().display()
            )
        });
    let store = PostgresStore::new(pool)
        .with_table(&table)
        .unwrap()
        .with_timeout(CALL_TIMEOUT);
    Setup {
        store: Calls(Arc::new(store)),
        direct,
        table,
        _bouncer: bouncer,
        _server: server,
    }
}

/// A key no other task or round uses: task, round, `kind`, then a random
/// tail.
fn key_of(task: u8, round: u16, kind: u8) -> StoreKey {
    let mut bytes: [u8; 32] = rand::random();
    bytes[0] = task;
    bytes[1..3].copy_from_slice(&round.to_be_bytes());
    bytes[3] = kind;
    StoreKey::from_bytes(bytes)
}

/// Where a key came from: (task, round), as [`key_of`] wrote them.
fn origin(key: &[u8]) -> (u8, u16) {
    (key[0], u16::from_be_bytes([key[1], key[2]]))
}

fn value(task: u8, round: u16, what: &str) -> Bytes {
    Bytes(format!("task {task} round {round} {what}").into_bytes())
}

/// Runs `task` for every task index at once, on the multi-threaded
/// runtime, and gathers what they saw.
async fn all_tasks<F, Fut>(task: F) -> Outcome
where
    F: Fn(u8) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let handles: Vec<_> = (0..TASKS).map(|t| tokio::spawn(task(t))).collect();
    let mut outcome = Outcome::default();
    for handle in handles {
        outcome.merge(handle.await.unwrap());
    }
    outcome
}

/// The rows of `table` as (key, value), straight from PostgreSQL.
async fn rows(direct: &PgPool, table: &str) -> Vec<(Vec<u8>, Bytes)> {
    sqlx::query(&format!("SELECT key, value FROM \"{table}\""))
        .fetch_all(direct)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.get(0), Bytes(row.get(1))))
        .collect()
}

/// Rows left of keys of `kind` whose round went through without a
/// violation or failure, where none should be left: violations at `step`.
async fn rows_left(setup: &Setup, kind: u8, step: &'static str, outcome: &mut Outcome) {
    let failed: Vec<(u8, u16)> = outcome
        .violations
        .iter()
        .map(|v| (v.task, v.round))
        .chain(outcome.failures.iter().map(|f| (f.task, f.round)))
        .collect();
    for (key, left) in rows(&setup.direct, &setup.table).await {
        let (task, round) = origin(&key);
        if key[3] == kind && !failed.contains(&(task, round)) {
            outcome.violations.push(Violation {
                task,
                round,
                step,
                expected: "no row".into(),
                got: format!("a row holding {left:?}"),
            });
        }
    }
}

/// One key's whole life, by one task, checked at every step: created,
/// read, replaced, read, deleted, read, replaced after the delete (which
/// must write nothing), read. A step that fails or answers wrong ends the
/// round (the next round takes a new key).
async fn lifecycle(store: &Calls, task: u8, round: u16, out: &mut Outcome) {
    let at = (task, round);
    let key = key_of(task, round, 0);
    let first = value(task, round, "created");
    let second = value(task, round, "replaced");
    let after = value(task, round, "replaced after delete");
    let _ = out.check(
        at,
        "create (new key)",
        store.create(key, &first).await,
        true,
    ) && out.check(
        at,
        "load (after create)",
        store.load(key).await,
        Some(first),
    ) && out.check(
        at,
        "replace (live)",
        store.replace(key, &second).await,
        true,
    ) && out.check(
        at,
        "load (after replace)",
        store.load(key).await,
        Some(second),
    ) && out.check(at, "delete (live)", store.delete(key).await, true)
        && out.check(at, "load (after delete)", store.load(key).await, None)
        && out.check(
            at,
            "replace (after delete)",
            store.replace(key, &after).await,
            false,
        )
        && out.check(
            at,
            "load (after replace after delete)",
            store.load(key).await,
            None,
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_step_of_concurrent_lifecycles_keeps_its_promise_through_pgbouncer() {
    let setup = setup().await;
    let store = setup.store.clone();
    let mut outcome = all_tasks(|task| {
        let store = store.clone();
        async move {
            let mut out = Outcome::default();
            for round in 0..ROUNDS {
                lifecycle(&store, task, round, &mut out).await;
            }
            out
        }
    })
    .await;
    // Every key was deleted and none written again: no row is left, as
    // PostgreSQL itself shows (not through PgBouncer).
    let step = "table after the run (deleted, then replaced after delete)";
    rows_left(&setup, 0, step, &mut outcome).await;
    outcome.assert_none("lifecycles through pgbouncer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_through_pgbouncer_never_removes_another_key() {
    /// Keys each task keeps to the end.
    const KEPT: u16 = 8;
    let setup = setup().await;
    let store = setup.store.clone();
    let mut outcome = all_tasks(|task| {
        let store = store.clone();
        async move {
            let mut out = Outcome::default();
            for round in 0..KEPT {
                let (key, kept) = (key_of(task, round, 1), value(task, round, "kept"));
                let created = store.create(key, &kept).await;
                out.check((task, round), "create (kept key)", created, true);
            }
            out
        }
    })
    .await;
    let kept = rows(&setup.direct, &setup.table).await;
    // Then, all at once: each task creates and deletes keys of its own,
    // and reads one of its kept keys after every delete.
    outcome.merge(
        all_tasks(|task| {
            let store = store.clone();
            let kept = kept.clone();
            async move {
                let mut out = Outcome::default();
                let mine: Vec<_> = kept.iter().filter(|(key, _)| key[0] == task).collect();
                for round in 0..ROUNDS {
                    let at = (task, round);
                    let (key, brief) = (key_of(task, round, 2), value(task, round, "brief"));
                    let _ = out.check(
                        at,
                        "create (brief key)",
                        store.create(key, &brief).await,
                        true,
                    ) && out.check(at, "delete (brief key)", store.delete(key).await, true);
                    // None made: already a violation.
                    if let Some((other, value)) = mine.get(usize::from(round) % mine.len().max(1)) {
                        let other = StoreKey::from_bytes(other[..].try_into().unwrap());
                        let loaded = store.load(other).await;
                        out.check(at, "load (kept key)", loaded, Some(value.clone()));
                    }
                }
                out
            }
        })
        .await,
    );
    // Every kept key is still there with its value, and no brief key is
    // left, as PostgreSQL itself shows (not through PgBouncer).
    let after = rows(&setup.direct, &setup.table).await;
    for (key, value) in &kept {
        let now = after.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        if now != Some(value) {
            let (task, round) = origin(key);
            outcome.violations.push(Violation {
                task,
                round,
                step: "table after the run (kept key)",
                expected: format!("a row holding {value:?}"),
                got: now.map_or("no row".into(), |now| format!("a row holding {now:?}")),
            });
        }
    }
    rows_left(&setup, 2, "table after the run (brief key)", &mut outcome).await;
    outcome.assert_none("deletes through pgbouncer");
}
