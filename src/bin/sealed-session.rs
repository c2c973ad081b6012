//! `sealed-session`: keys, key rings and cookies from the command line.
//!
//! ```text
//! sealed-session keygen
//! sealed-session keyring list                [--keys S]
//! sealed-session keyring add [KEY]           [--keys S]   new or given key, as an older key
//! sealed-session keyring promote KEY_ID      [--keys S]   make it the primary
//! sealed-session keyring retire KEY_ID       [--keys S]   remove it (never the primary)
//! sealed-session inspect VALUE|SET-COOKIE    [--keys S] [--name N] [--idle SECS] [--absolute SECS] [--payload-hex]
//! ```
//!
//! The key ring comes from `--keys` or `SESSION_KEYS`. `keyring` commands
//! print the new `SESSION_KEYS` string on stdout (that is key material: put
//! it where secrets go) and a summary of key ids on stderr. `inspect` never
//! prints key material. Exit status: 0 done, 1 the cookie does not open or a
//! refused change, 2 usage or configuration error.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use sealed_session::{ConfigError, Key, KeyId, Keyring, SessionConfig, Sessions, SystemClock};

const USAGE: &str = "usage:
  sealed-session keygen
  sealed-session keyring list                [--keys S]
  sealed-session keyring add [KEY]           [--keys S]
  sealed-session keyring promote KEY_ID      [--keys S]
  sealed-session keyring retire KEY_ID       [--keys S]
  sealed-session inspect VALUE|SET-COOKIE    [--keys S] [--name N] [--idle SECS] [--absolute SECS] [--payload-hex]
The key ring is --keys or SESSION_KEYS (primary first, comma-separated).";

/// A failure: message and exit status.
struct Failure(String, u8);

fn usage(message: impl Into<String>) -> Failure {
    Failure(format!("{}\n{USAGE}", message.into()), 2)
}

/// Parsed arguments: positionals and `--flag [value]` options.
struct Args {
    positional: Vec<String>,
    options: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(raw: impl Iterator<Item = std::ffi::OsString>) -> Result<Args, Failure> {
        const WITH_VALUE: [&str; 4] = ["--keys", "--name", "--idle", "--absolute"];
        const FLAGS: [&str; 1] = ["--payload-hex"];
        let mut args = Args {
            positional: Vec::new(),
            options: Vec::new(),
        };
        // Arguments that are not UTF-8 are refused, not a panic.
        let raw = raw
            .enumerate()
            .map(|(i, arg)| {
                arg.into_string()
                    .map_err(|_| usage(format!("argument {} is not valid UTF-8", i + 1)))
            })
            .collect::<Result<Vec<String>, Failure>>()?;
        let mut raw = raw.into_iter();
        while let Some(arg) = raw.next() {
            if WITH_VALUE.contains(&arg.as_str()) {
                let value = raw
                    .next()
                    .ok_or_else(|| usage(format!("{arg} needs a value")))?;
                args.options.push((arg, Some(value)));
            } else if FLAGS.contains(&arg.as_str()) {
                args.options.push((arg, None));
            } else if arg.starts_with("--") {
                return Err(usage(format!("unknown option {arg}")));
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

    fn keys_text(&self) -> Result<String, Failure> {
        match self.option("--keys") {
            Some(text) => Ok(text.to_owned()),
            None => std::env::var("SESSION_KEYS")
                .map_err(|_| Failure("no key ring: pass --keys or set SESSION_KEYS".into(), 2)),
        }
    }

    fn seconds(&self, name: &str) -> Result<Option<Option<Duration>>, Failure> {
        self.option(name)
            .map(|v| {
                let secs: u64 = v
                    .parse()
                    .map_err(|_| usage(format!("{name} {v}: not a number of seconds")))?;
                Ok((secs > 0).then(|| Duration::from_secs(secs)))
            })
            .transpose()
    }
}

/// A ring's keys as texts, each with its id, primary first.
fn ring_entries(text: &str) -> Result<Vec<(String, KeyId)>, Failure> {
    // Validate the whole ring first (duplicates, id collisions).
    Keyring::from_str(text).map_err(|e| Failure(format!("key ring: {e}"), 2))?;
    Ok(text
        .split(',')
        .map(|part| {
            let part = part.trim().to_owned();
            let id = Key::from_str(&part).expect("validated above").id();
            (part, id)
        })
        .collect())
}

fn find(entries: &[(String, KeyId)], id: &str) -> Result<usize, Failure> {
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
    println!("{text}");
    eprintln!("{}", summary(entries));
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

fn keyring(args: &Args) -> Result<(), Failure> {
    let command = args.positional.get(1).map(String::as_str);
    let mut entries = ring_entries(&args.keys_text()?)?;
    match (command, args.positional.get(2)) {
        (Some("list"), None) => {
            for (position, (_, id)) in entries.iter().enumerate() {
                let role = if position == 0 { "primary" } else { "older" };
                println!("{position} {id} {role}");
            }
            Ok(())
        }
        (Some("add"), key) => {
            let key = match key {
                Some(text) => Key::from_str(text).map_err(|e| Failure(format!("key: {e}"), 2))?,
                None => Key::generate(),
            };
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
        _ => Err(usage(
            "keyring: list, add [KEY], promote KEY_ID or retire KEY_ID",
        )),
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
            "does not authenticate: tampered, or sealed for another cookie name (try --name)"
        }
        R::Incompatible => "authentic, but not a session envelope",
        _ => "refused",
    }
}

fn inspect(args: &Args) -> Result<(), Failure> {
    let input = args
        .positional
        .get(1)
        .ok_or_else(|| usage("inspect: give a cookie value or a Set-Cookie line"))?;
    let ring =
        Keyring::from_str(&args.keys_text()?).map_err(|e| Failure(format!("key ring: {e}"), 2))?;
    let (pasted_name, value) = pasted(input);
    let name = pasted_name
        .or(args.option("--name"))
        .unwrap_or("__Host-session");
    let mut config = SessionConfig::default()
        .with_cookie_name(name)
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
    println!(
        "cookie:     {name} ({} bytes of name + value, {} sealed bytes)",
        name.len() + found.value_len,
        found.sealed_len
    );
    println!("version:    {}", found.version);
    println!(
        "key:        {} (position {} in the ring, {role})",
        found.key_id, found.key_position
    );
    println!("session id: {}", found.session_id);
    println!("created:    {}", when(found.created, now));
    println!("issued:     {}", when(found.issued, now));
    match found.status {
        Ok(()) => println!("status:     valid now"),
        Err(reason) => println!("status:     refused now: {reason}"),
    }
    match found.remaining {
        Some(seconds) => println!("remaining:  {}", span(seconds)),
        None => println!("remaining:  no timeout set"),
    }
    match found.store_key {
        Some(key) => println!("body:       store-held, entry {key}"),
        None => println!(
            "body:       inline, {} bytes of payload",
            found.payload.len()
        ),
    }
    if args.flag("--payload-hex") {
        let hex: String = found.payload.iter().map(|b| format!("{b:02x}")).collect();
        println!("payload:    {hex}");
    }
    Ok(())
}

fn run() -> Result<(), Failure> {
    let args = Args::parse(std::env::args_os().skip(1))?;
    match args.positional.first().map(String::as_str) {
        Some("keygen") if args.positional.len() == 1 => {
            println!("{}", Key::generate().to_base64url());
            Ok(())
        }
        Some("keyring") => keyring(&args),
        Some("inspect") => inspect(&args),
        Some("help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(usage(format!("unknown command {other}"))),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            eprintln!("sealed-session: {message}");
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
    }
}
