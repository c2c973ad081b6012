//! `sealed-session`: keys, key rings and cookies from the command line.
//!
//! ```text
//! sealed-session keygen
//! sealed-session keyring list                  [RING]
//! sealed-session keyring add                   [RING] [--new-key-file PATH | --new-key-stdin]
//! sealed-session keyring promote KEY_ID        [RING]
//! sealed-session keyring retire KEY_ID         [RING]
//! sealed-session inspect VALUE|SET-COOKIE|-    [RING] [--name N] [--context TEXT] [--idle SECS] [--absolute SECS] [--payload-hex]
//! ```
//!
//! The key ring (`RING`) comes from `SESSION_KEYS` in the environment, or,
//! when one of them is given, from `--keys-file PATH` or `--keys-stdin`:
//! the same text in each (primary first, comma-separated, white space and
//! newlines around each key ignored). Key material is never taken as an
//! argument: every user of the machine can read a process's arguments
//! (`/proc/PID/cmdline`, `ps`) and the shell keeps them in its history. So
//! `--keys` and `keyring add KEY` are refused, and so is any argument that
//! looks like a key (a run of 43 base64url characters, alone or within
//! other text), with a message that says where to put it and does not
//! repeat it.
//!
//! `keyring` commands print the new `SESSION_KEYS` string on stdout (that
//! is key material: put it where secrets go) and a summary of key ids on
//! stderr. `inspect` never prints key material; its cookie may come on
//! standard input too (`-`), since a session cookie is a credential. Exit
//! status: 0 done, 1 the cookie does not open or a refused change, 2 usage
//! or configuration error (a key on the command line included).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use sealed_session::{ConfigError, Key, KeyId, Keyring, SessionConfig, Sessions, SystemClock};

const USAGE: &str = "usage:
  sealed-session keygen
  sealed-session keyring list                  [RING]
  sealed-session keyring add                   [RING] [--new-key-file PATH | --new-key-stdin]
  sealed-session keyring promote KEY_ID        [RING]
  sealed-session keyring retire KEY_ID         [RING]
  sealed-session inspect VALUE|SET-COOKIE|-    [RING] [--name N] [--context TEXT] [--idle SECS] [--absolute SECS] [--payload-hex]
RING, the key ring (primary first, comma-separated), comes from one of:
  SESSION_KEYS        the environment (used when neither option is given)
  --keys-file PATH    a file holding the same text
  --keys-stdin        standard input
keyring add generates the new key, or reads it from --new-key-file PATH or
--new-key-stdin. inspect reads the cookie from standard input when given `-`.
Keys are refused as arguments: other users see a process's arguments
(/proc/PID/cmdline) and the shell keeps them in its history.";

/// Why keys are refused as arguments, and where they go instead.
const ARGUMENTS_ARE_SEEN: &str =
    "arguments are visible to other users (/proc/PID/cmdline) and stay in shell history";
const RING_GOES: &str =
    "for the key ring, set SESSION_KEYS or use --keys-file PATH or --keys-stdin";
const NEW_KEY_GOES: &str = "for the key keyring add adds, use --new-key-file PATH or \
    --new-key-stdin (or none, to generate one)";

/// The most a key ring, a key or a cookie may take on standard input or in
/// a file.
const INPUT_LIMIT: u64 = 64 * 1024;

/// A failure: message and exit status.
struct Failure(String, u8);

fn usage(message: impl Into<String>) -> Failure {
    Failure(format!("{}\n{USAGE}", message.into()), 2)
}

/// Whether `text` holds something shaped like a key: a run of exactly 43
/// base64url characters (what 32 bytes encode to) between other
/// characters or the ends.
fn holds_a_key(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .any(|run| run.len() == 43)
}

/// Parsed arguments: positionals and `--flag [value]` options.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(raw: impl Iterator<Item = OsString>) -> Result<Args, Failure> {
        const WITH_VALUE: [&str; 6] = [
            "--keys-file",
            "--new-key-file",
            "--name",
            "--context",
            "--idle",
            "--absolute",
        ];
        const FLAGS: [&str; 4] = ["--keys-stdin", "--new-key-stdin", "--payload-hex", "--help"];
        // Every argument is checked before any is used or repeated.
        let raw = raw
            .enumerate()
            .map(|(i, arg)| {
                let arg = arg
                    .into_string()
                    .map_err(|_| usage(format!("argument {} is not valid UTF-8", i + 1)))?;
                if arg == "--keys" || arg.starts_with("--keys=") {
                    return Err(Failure(
                        format!("--keys is refused: {ARGUMENTS_ARE_SEEN}; {RING_GOES}"),
                        2,
                    ));
                }
                if holds_a_key(&arg) {
                    return Err(Failure(
                        format!(
                            "argument {} looks like a key and is refused: {ARGUMENTS_ARE_SEEN}; \
                             {RING_GOES}; {NEW_KEY_GOES}",
                            i + 1
                        ),
                        2,
                    ));
                }
                Ok(arg)
            })
            .collect::<Result<Vec<String>, Failure>>()?;
        let mut args = Args {
            positional: Vec::new(),
            options: Vec::new(),
        };
        let mut raw = raw.into_iter();
        while let Some(arg) = raw.next() {
            let (name, inline_value) = match arg.split_once('=') {
                Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
                _ if arg == "-h" => ("--help", None),
                _ => (arg.as_str(), None),
            };
            if WITH_VALUE.contains(&name) {
                let value = match inline_value {
                    Some(value) => value,
                    None => raw
                        .next()
                        .ok_or_else(|| usage(format!("{name} needs a value")))?,
                };
                args.options.push((name.to_owned(), Some(value)));
            } else if FLAGS.contains(&name) && inline_value.is_none() {
                args.options.push((name.to_owned(), None));
            } else if name.starts_with("--") {
                return Err(usage(format!("unknown option {}", name.escape_debug())));
            } else {
                args.positional.push(arg);
            }
        }
        Ok(args)
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| n == name)
    }

    /// The key ring's text: `--keys-file`, `--keys-stdin` or
    /// `SESSION_KEYS`.
    fn keys_text(&self) -> Result<String, Failure> {
        match (self.option("--keys-file"), self.flag("--keys-stdin")) {
            (Some(_), true) => Err(usage("give --keys-file or --keys-stdin, not both")),
            (Some(path), false) => read_file(path, "--keys-file"),
            (None, true) => read_input(std::io::stdin().lock(), "--keys-stdin"),
            (None, false) => std::env::var("SESSION_KEYS").map_err(|error| match error {
                std::env::VarError::NotPresent => Failure(
                    "no key ring: set SESSION_KEYS, or use --keys-file PATH or --keys-stdin".into(),
                    2,
                ),
                std::env::VarError::NotUnicode(_) => {
                    Failure("SESSION_KEYS is not valid UTF-8".into(), 2)
                }
            }),
        }
    }

    fn seconds(&self, name: &str) -> Result<Option<Option<Duration>>, Failure> {
        self.option(name)
            .map(|v| {
                let secs: u64 = v.parse().map_err(|_| {
                    usage(format!(
                        "{name} {}: not a number of seconds",
                        v.escape_debug()
                    ))
                })?;
                Ok((secs > 0).then(|| Duration::from_secs(secs)))
            })
            .transpose()
    }
}

/// At most [`INPUT_LIMIT`] bytes of UTF-8 from `reader`, trimmed; `what`
/// names the source in errors.
fn read_input(reader: impl Read, what: &str) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    reader
        .take(INPUT_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure(format!("{what}: {e}"), 2))?;
    if bytes.len() as u64 > INPUT_LIMIT {
        return Err(Failure(format!("{what}: more than {INPUT_LIMIT} bytes"), 2));
    }
    let text = String::from_utf8(bytes).map_err(|_| Failure(format!("{what}: not UTF-8"), 2))?;
    match text.trim() {
        "" => Err(Failure(format!("{what}: empty"), 2)),
        trimmed => Ok(trimmed.to_owned()),
    }
}

fn read_file(path: &str, option: &str) -> Result<String, Failure> {
    let what = format!("{option} {}", path.escape_debug());
    let file = std::fs::File::open(path).map_err(|e| Failure(format!("{what}: {e}"), 2))?;
    read_input(file, &what)
}

/// Writes `text` on stdout; a closed stdout is a failure, not a panic.
fn emit(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure(format!("standard output: {e}"), 1))
}

/// A ring's keys as texts, each with its id, primary first.
fn ring_entries(text: &str) -> Result<Vec<(String, KeyId)>, Failure> {
    // Validate the whole ring first (duplicates, id collisions).
    Keyring::from_str(text).map_err(|e| Failure(format!("key ring: {e}"), 2))?;
    text.split(',')
        .map(|part| {
            let part = part.trim().to_owned();
            let key = Key::from_str(&part).map_err(|e| Failure(format!("key ring: {e}"), 2))?;
            Ok((part, key.id()))
        })
        .collect()
}

fn find(entries: &[(String, KeyId)], id: &str) -> Result<usize, Failure> {
    if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(usage(
            "KEY_ID is the 8 hex digits `sealed-session keyring list` shows",
        ));
    }
    entries
        .iter()
        .position(|(_, key_id)| key_id.to_string() == id.to_ascii_lowercase())
        .ok_or_else(|| Failure(format!("no key with id {id} in the ring"), 1))
}

fn print_ring(entries: &[(String, KeyId)]) -> Result<(), Failure> {
    let text: Vec<&str> = entries.iter().map(|(t, _)| t.as_str()).collect();
    let text = text.join(",");
    // The result must still be a valid ring.
    Keyring::from_str(&text).map_err(|e| Failure(format!("key ring: {e}"), 1))?;
    emit(&format!("{text}\n"))?;
    let _ = writeln!(std::io::stderr(), "{}", summary(entries));
    Ok(())
}

fn summary(entries: &[(String, KeyId)]) -> String {
    let older: Vec<String> = entries[1..].iter().map(|(_, id)| id.to_string()).collect();
    format!(
        "primary {}; older: {}",
        entries[0].1,
        if older.is_empty() {
            "none".into()
        } else {
            older.join(", ")
        }
    )
}

/// The key `keyring add` adds: from `--new-key-file`, `--new-key-stdin`,
/// or a new one.
fn new_key(args: &Args) -> Result<Key, Failure> {
    let text = match (args.option("--new-key-file"), args.flag("--new-key-stdin")) {
        (Some(_), true) => return Err(usage("give --new-key-file or --new-key-stdin, not both")),
        (Some(path), false) => read_file(path, "--new-key-file")?,
        (None, true) => read_input(std::io::stdin().lock(), "--new-key-stdin")?,
        (None, false) => return Ok(Key::generate()),
    };
    Key::from_str(&text).map_err(|e| Failure(format!("new key: {e}"), 2))
}

fn keyring(args: &Args) -> Result<(), Failure> {
    let command = args.positional.get(1).map(String::as_str);
    let operand = args.positional.get(2);
    if command == Some("add") && operand.is_some() {
        return Err(Failure(
            format!(
                "keyring add: a key as an argument is refused: {ARGUMENTS_ARE_SEEN}; \
                 {NEW_KEY_GOES}"
            ),
            2,
        ));
    }
    if command != Some("add")
        && (args.flag("--new-key-stdin") || args.option("--new-key-file").is_some())
    {
        return Err(usage(
            "--new-key-file and --new-key-stdin are for keyring add",
        ));
    }
    if args.positional.len() > 3 {
        return Err(usage("keyring: too many arguments"));
    }
    let mut entries = ring_entries(&args.keys_text()?)?;
    match (command, operand) {
        (Some("list"), None) => {
            let lines: String = entries
                .iter()
                .enumerate()
                .map(|(position, (_, id))| {
                    let role = if position == 0 { "primary" } else { "older" };
                    format!("{position} {id} {role}\n")
                })
                .collect();
            emit(&lines)
        }
        (Some("add"), None) => {
            let key = new_key(args)?;
            let id = key.id();
            entries.push((key.to_base64url(), id));
            print_ring(&entries)
        }
        (Some("promote"), Some(id)) => {
            let position = find(&entries, id)?;
            let entry = entries.remove(position);
            entries.insert(0, entry);
            print_ring(&entries)
        }
        (Some("retire"), Some(id)) => {
            let position = find(&entries, id)?;
            if position == 0 {
                return Err(Failure(
                    format!("{id} is the primary: promote another key first, then retire it"),
                    1,
                ));
            }
            entries.remove(position);
            print_ring(&entries)
        }
        _ => Err(usage("keyring: list, add, promote KEY_ID or retire KEY_ID")),
    }
}

/// Splits what was pasted into (cookie name if it has one, value): a bare
/// value, a `name=value` pair, or a whole `Set-Cookie:`/`Cookie:` line.
/// Any text is fine: nothing is sliced but at ASCII characters it found.
fn pasted(input: &str) -> (Option<&str>, &str) {
    let mut text = input.trim();
    for prefix in ["set-cookie:", "cookie:"] {
        let starts = text
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
        if starts {
            text = text[prefix.len()..].trim_start();
        }
    }
    let pair = text.split(';').next().unwrap_or("").trim();
    match pair.split_once('=') {
        Some((name, value)) => (Some(name.trim()), value.trim().trim_matches('"')),
        None => (None, pair),
    }
}

fn when(unix: u64, now: u64) -> String {
    let date = i64::try_from(unix)
        .ok()
        .and_then(|unix| time::OffsetDateTime::from_unix_timestamp(unix).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("unix {unix}"));
    if unix <= now {
        format!("{date} ({} ago)", span(now - unix))
    } else {
        format!("{date} (in {})", span(unix - now))
    }
}

fn span(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn explain(reason: sealed_session::Rejection) -> &'static str {
    use sealed_session::Rejection as R;
    match reason {
        R::TooLarge => "over the size limit",
        R::Malformed => "not a sealed value: bad base64url or too short",
        R::UnknownVersion(_) => "a format version this build does not open",
        R::UnknownKey => "sealed under a key that is not in this ring",
        R::Forged => {
            "does not authenticate: tampered, or sealed for another cookie name or application context (try --name, --context)"
        }
        R::Incompatible => "authentic, but not a session envelope",
        R::NewerSchema(_) | R::OldSchema(_) | R::MigrationFailed(_) => {
            "authentic; its session schema is decided when the application loads it"
        }
        _ => "refused",
    }
}

fn inspect(args: &Args) -> Result<(), Failure> {
    let input = match args.positional.get(1).map(String::as_str) {
        None => return Err(usage("inspect: give a cookie value or a Set-Cookie line")),
        Some(_) if args.positional.len() > 2 => return Err(usage("inspect: one cookie at a time")),
        Some("-") => read_input(std::io::stdin().lock(), "the cookie on standard input")?,
        Some(input) => input.to_owned(),
    };
    let ring =
        Keyring::from_str(&args.keys_text()?).map_err(|e| Failure(format!("key ring: {e}"), 2))?;
    let (pasted_name, value) = pasted(&input);
    let name = pasted_name
        .or(args.option("--name"))
        .unwrap_or("__Host-session");
    let mut config = SessionConfig::default()
        .with_cookie_name(name)
        .with_context(args.option("--context").unwrap_or(""))
        .with_size_limit(usize::MAX / 2);
    if let Some(idle) = args.seconds("--idle")? {
        config = config.with_idle_timeout(idle);
    }
    if let Some(absolute) = args.seconds("--absolute")? {
        config = config.with_absolute_timeout(absolute);
    }
    // Prefix rules are for browsers; inspecting any name is fine.
    let config = config.with_secure(true);
    let sessions = Sessions::new(ring, config).map_err(|e| match e {
        // A name that came with the cookie and cannot be a cookie name:
        // the cookie is not one of ours.
        ConfigError::InvalidName if pasted_name.is_some() => Failure(
            format!(
                "\"{}\" is not a cookie name: not a session cookie",
                name.escape_debug()
            ),
            1,
        ),
        e => Failure(format!("configuration: {e}"), 2),
    })?;
    // From here on `name` is a valid cookie name: safe to print as is.
    let found = sessions.inspect(value).map_err(|refusal| {
        Failure(
            format!(
                "{name}: does not open: {refusal}: {}",
                explain(refusal.reason)
            ),
            1,
        )
    })?;
    let now = sealed_session::Clock::now(&SystemClock);
    let role = if found.key_position == 0 {
        "primary"
    } else {
        "older key"
    };
    let mut lines = vec![
        format!(
            "cookie:     {name} ({} bytes of name + value, {} sealed bytes)",
            name.len() + found.value_len,
            found.sealed_len
        ),
        format!("version:    {} (wire format)", found.version),
        match found.schema {
            Some(schema) => format!("schema:     {schema}"),
            None => "schema:     in the store entry".to_owned(),
        },
        format!("lifetime:   {}", lifetime(&found.lifetime)),
        format!(
            "key:        {} (position {} in the ring, {role})",
            found.key_id, found.key_position
        ),
        format!("session id: {}", found.session_id),
        format!("created:    {}", when(found.created, now)),
        format!("issued:     {}", when(found.issued, now)),
        match found.status {
            Ok(()) => "status:     valid now".to_owned(),
            Err(reason) => format!("status:     refused now: {reason}"),
        },
        match found.remaining {
            Some(seconds) => format!("remaining:  {}", span(seconds)),
            None => "remaining:  no timeout set".to_owned(),
        },
        match found.store_key {
            Some(key) => format!("body:       store-held, entry {key}"),
            None => format!(
                "body:       inline, {} bytes of payload",
                found.payload.len()
            ),
        },
    ];
    if args.flag("--payload-hex") {
        let hex: String = found.payload.iter().map(|b| format!("{b:02x}")).collect();
        lines.push(format!("payload:    {hex}"));
    }
    lines.push(String::new());
    emit(&lines.join("\n"))
}

/// A session's own lifetime, as `inspect` prints it.
fn lifetime(chosen: &sealed_session::SessionLifetime) -> String {
    if chosen.is_configured() {
        return "as configured".to_owned();
    }
    let cookie = match chosen.persistent_cookie() {
        None => "cookie as configured",
        Some(true) => "persistent cookie",
        Some(false) => "browser-session cookie",
    };
    let timeout = |what: &str, t: Option<std::time::Duration>| match t {
        Some(t) => format!(", {what} {}", span(t.as_secs())),
        None => String::new(),
    };
    format!(
        "{cookie}{}{} (its own, within the configured bounds)",
        timeout("idle", chosen.idle_timeout()),
        timeout("absolute", chosen.absolute_timeout())
    )
}

fn run() -> Result<(), Failure> {
    let args = Args::parse(std::env::args_os().skip(1))?;
    let stdin_readers = [
        args.flag("--keys-stdin"),
        args.flag("--new-key-stdin"),
        args.positional.first().map(String::as_str) == Some("inspect")
            && args.positional.get(1).map(String::as_str) == Some("-"),
    ];
    if stdin_readers.into_iter().filter(|&reads| reads).count() > 1 {
        return Err(usage(
            "only one thing can come from standard input: the key ring, the new key or the cookie",
        ));
    }
    match args.positional.first().map(String::as_str) {
        _ if args.flag("--help") => emit(&format!("{USAGE}\n")),
        Some("keygen") if args.positional.len() == 1 => {
            emit(&format!("{}\n", Key::generate().to_base64url()))
        }
        Some("keygen") => Err(usage("keygen takes no arguments")),
        Some("keyring") => keyring(&args),
        Some("inspect") => inspect(&args),
        Some("help") | None => emit(&format!("{USAGE}\n")),
        Some(_) => Err(usage("unknown command (keygen, keyring or inspect)")),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            let _ = writeln!(std::io::stderr(), "sealed-session: {message}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever is pasted, after whichever prefix, splits without a
        /// panic into pieces of the input.
        #[test]
        fn any_pasted_text_splits_into_pieces_of_it(
            prefix in prop::sample::select(vec!["", "Set-Cookie:", "cookie: ", "set-cookie: n="]),
            text in any::<String>(),
        ) {
            let input = format!("{prefix}{text}");
            let (name, value) = pasted(&input);
            prop_assert!(input.contains(value));
            prop_assert!(name.is_none_or(|name| input.contains(name)));
        }

        /// A key is found in any argument that holds one, whatever
        /// surrounds it.
        #[test]
        fn an_argument_holding_a_key_is_caught(
            before in "(.{0,8}[^A-Za-z0-9_-])?",
            after in "([^A-Za-z0-9_-].{0,8})?",
        ) {
            let argument = format!("{before}{}{after}", Key::generate().to_base64url());
            prop_assert!(holds_a_key(&argument), "{argument}");
        }
    }

    #[test]
    fn short_and_long_tokens_are_not_keys() {
        let key = Key::generate().to_base64url();
        assert!(holds_a_key(&key));
        assert!(!holds_a_key(&key[1..]));
        assert!(!holds_a_key(&format!("{key}A")));
        assert!(!holds_a_key("__Host-session"));
        assert!(!holds_a_key("0a1b2c3d"));
    }
}
