//! The SQL the two stores send: what differs between PostgreSQL and
//! SQLite ([`Dialect`]), the text of every statement for one table
//! ([`Statements`]), the table name's check, and how a value is written
//! into a statement as a literal (PostgreSQL's default, see the parent
//! module's "How statements are sent").

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

use crate::error::ConfigError;

/// The longest table name: 63 bytes (PostgreSQL) less the index's
/// `_expires_at` suffix.
const MAX_TABLE_NAME: usize = 52;

/// What differs between the databases.
pub(crate) trait Dialect: Database {
    /// The database's current time in unix milliseconds, as SQL.
    const NOW_MILLIS: &'static str;
    /// The operators the statements use (`=`, `>`, `<=`, `+`), and `=`
    /// against each row of a subquery: on PostgreSQL, named in
    /// `pg_catalog`, so that no `search_path` (a schema others can create
    /// objects in, listed first) puts someone else's operator in their
    /// place.
    const EQ: &'static str;
    const GT: &'static str;
    const LE: &'static str;
    const ADD: &'static str;
    const IN_SUBQUERY: &'static str;
    /// The column type for bytes.
    const BYTES: &'static str;
    /// The column type for a 64-bit integer.
    const INTEGER: &'static str;
    /// Written after the column list of `CREATE TABLE`.
    const TABLE_OPTIONS: &'static str;
    /// The database takes one writer at a time (SQLite): the store's
    /// writes then queue in order in the process (see [`SqlTable::turn`])
    /// rather than in the database's busy handler.
    const ONE_WRITER: bool;

    /// Whether a database error code means "out of space".
    fn is_full(code: &str) -> bool;

    /// Whether a database error code means the statement gave up waiting
    /// (a lock, a busy database, a statement timeout): a [`StoreError::Timeout`].
    fn is_timeout(code: &str) -> bool;

    /// A query answering whether the table (`$1`) and its index (`$2`)
    /// both exist, from the catalog, without locking the table.
    const EXISTS: &'static str;

    /// How the catalog query names an object.
    fn catalog_name(name: &str) -> String;

    /// How many rows a statement changed.
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Whether statements go, by default, as SQL text with their values
    /// written in (the simple query protocol: no statement is prepared, so
    /// no state is left on a server connection that a pooling proxy may
    /// hand to another client) rather than prepared with bound parameters.
    const INLINE: bool;

    /// `bytes` as an SQL literal that means the same bytes whatever the
    /// connection's settings (`standard_conforming_strings` included):
    /// only hex digits between the quotes.
    fn bytes_literal(bytes: &[u8]) -> String;
}

/// A value for a statement's `$n`.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a> {
    Bytes(&'a [u8]),
    Int(i64),
    /// A name from [`checked_table`] as the catalog spells it: letters,
    /// digits, `_` and `"` only, so it needs no escaping in a literal.
    Name(&'a str),
}

impl Arg<'_> {
    /// The value as an SQL literal of `DB`.
    pub(crate) fn literal<DB: Dialect>(self) -> String {
        match self {
            Arg::Bytes(bytes) => DB::bytes_literal(bytes),
            // In parentheses: `- $1` must not become the comment `--5`.
            Arg::Int(n) => format!("({n})"),
            Arg::Name(name) => {
                debug_assert!(!name.contains(['\'', '\\']));
                format!("'{name}'")
            }
        }
    }

    /// Binds the value to `query`'s next parameter.
    pub(crate) fn bind<'q, DB: Dialect>(
        self,
        query: Query<'q, DB, DB::Arguments<'q>>,
    ) -> Query<'q, DB, DB::Arguments<'q>>
    where
        Self: 'q,
        for<'b> &'b [u8]: Encode<'b, DB> + Type<DB>,
        for<'b> i64: Encode<'b, DB> + Type<DB>,
        for<'b> String: Encode<'b, DB> + Type<DB>,
    {
        match self {
            Arg::Bytes(bytes) => query.bind(bytes),
            Arg::Int(n) => query.bind(n),
            Arg::Name(name) => query.bind(name.to_owned()),
        }
    }
}

/// Lowercase hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    // A table, not `write!` per byte: a session's value is kilobytes, and
    // the formatter's per-call cost showed in the store's CPU per request.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// `template` with each `$n` (1-based) replaced by `args[n - 1]` as a
/// literal. The templates are this module's own statements; a `$n` with
/// no argument is left as it is (the server then refuses the statement).
pub(crate) fn inline<DB: Dialect>(template: &str, args: &[Arg<'_>]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let arg = after[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|n| args.get(n.checked_sub(1)?));
        match arg {
            Some(arg) => out.push_str(&arg.literal::<DB>()),
            None => out.push_str(&rest[at..at + 1 + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// A table name: letters, digits and `_`, not starting with a digit, at
/// most 52 bytes (so that its index, `<name>_expires_at`, stays within
/// PostgreSQL's 63), not starting with `sqlite_` in any case (SQLite
/// reserves it). It is written into SQL text (quoted), so nothing else
/// may get in.
///
/// Returns the name back, or [`ConfigError::InvalidTableName`].
pub(crate) fn checked_table(name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_TABLE_NAME
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name
            .get(..7)
            .is_some_and(|start| start.eq_ignore_ascii_case("sqlite_"))
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ConfigError::InvalidTableName)
    }
}

/// The SQL text of every statement, for one table.
#[derive(Clone, Debug)]
pub(crate) struct Statements {
    pub(crate) table: String,
    pub(crate) load: String,
    pub(crate) remove_expired_one: String,
    pub(crate) create: String,
    pub(crate) replace: String,
    pub(crate) delete: String,
    pub(crate) delete_expired: String,
    pub(crate) migration: [String; 2],
}

impl Statements {
    pub(crate) fn new<DB: Dialect>(table: String) -> Statements {
        let now = DB::NOW_MILLIS;
        let (eq, gt, le, add, in_) = (DB::EQ, DB::GT, DB::LE, DB::ADD, DB::IN_SUBQUERY);
        let t = format!("\"{table}\"");
        Statements {
            load: format!("SELECT expires_at {gt} {now}, value FROM {t} WHERE key {eq} $1"),
            remove_expired_one: format!(
                "DELETE FROM {t} WHERE key {eq} $1 AND expires_at {le} {now}"
            ),
            create: format!(
                "INSERT INTO {t} (key, value, expires_at) VALUES ($1, $2, {now} {add} $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
                 WHERE {t}.expires_at {le} {now} RETURNING 1"
            ),
            replace: format!(
                "UPDATE {t} SET value = $2, expires_at = {now} {add} $3 \
                 WHERE key {eq} $1 AND expires_at {gt} {now} RETURNING 1"
            ),
            delete: format!("DELETE FROM {t} WHERE key {eq} $1 RETURNING expires_at {gt} {now}"),
            // The outer condition again: PostgreSQL rechecks it (not the
            // subquery) on a row a concurrent `create` just renewed.
            delete_expired: format!(
                "DELETE FROM {t} WHERE key {in_} \
                 (SELECT key FROM {t} WHERE expires_at {le} {now} LIMIT $1) \
                 AND expires_at {le} {now}"
            ),
            migration: [
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (\n    \
                     key {bytes} PRIMARY KEY NOT NULL,\n    \
                     value {bytes} NOT NULL,\n    \
                     expires_at {int} NOT NULL\n){options}",
                    bytes = DB::BYTES,
                    int = DB::INTEGER,
                    options = DB::TABLE_OPTIONS,
                ),
                format!("CREATE INDEX IF NOT EXISTS \"{table}_expires_at\" ON {t} (expires_at)"),
            ],
            table,
        }
    }

    /// The migration as one script, statements ended by `;`.
    pub(crate) fn migration_script(&self) -> String {
        self.migration
            .iter()
            .map(|statement| format!("{statement};\n"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::checked_table;

    #[cfg(feature = "postgres")]
    #[test]
    fn values_are_written_in_as_literals_of_hex_digits_and_integers() {
        use super::{Arg, inline};
        let sql = inline::<sqlx::Postgres>(
            "UPDATE t SET value = $2, expires_at = now + $3 WHERE key = $1 AND $3 > 0",
            &[
                Arg::Bytes(&[0x00, 0x27, 0x5c, 0xff]),
                Arg::Bytes(b"$1'; --"),
                Arg::Int(-5),
            ],
        );
        assert_eq!(
            sql,
            "UPDATE t SET value = pg_catalog.decode('2431273b202d2d', 'hex'), expires_at = now + (-5) \
             WHERE key = pg_catalog.decode('00275cff', 'hex') AND (-5) > 0"
        );
        let unknown = inline::<sqlx::Postgres>("SELECT $1, $10, $, $0", &[Arg::Bytes(&[0xab])]);
        assert_eq!(
            unknown, "SELECT pg_catalog.decode('ab', 'hex'), $10, $, $0",
            "unknown $n stay as they are"
        );
        let name = inline::<sqlx::Postgres>("SELECT to_regclass($1)", &[Arg::Name("\"t_1\"")]);
        assert_eq!(name, "SELECT to_regclass('\"t_1\"')");
    }

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(super::hex(&all), expected);
        assert_eq!(super::hex(&[]), "");
    }

    #[test]
    fn table_names_are_plain_identifiers() {
        for good in ["sealed_sessions", "S1", "_x", "sqlitex", &"a".repeat(52)] {
            assert_eq!(checked_table(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "a\"b",
            "a;drop table x",
            "schema.table",
            "é",
            &"a".repeat(53),
            "sqlite_sessions",
            "SQLite_x",
        ] {
            assert!(checked_table(bad).is_err(), "{bad:?}");
        }
    }
}
