//! The `sealed-session` binary, run as a process for each subcommand and
//! each failure.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use http::HeaderMap;
use sealed_session::{Key, Keyring, ManualClock, MemoryStore, SessionConfig, Sessions};

/// Runs the binary with `args`, `SESSION_KEYS` set to `keys` (or unset).
fn cli(args: &[&str], keys: Option<&str>) -> Output {
    cli_with_input(args, keys, "")
}

/// [`cli`] with `input` on standard input.
fn cli_with_input<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    keys: Option<&str>,
    input: &str,
) -> Output {
    use std::io::Write as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_sealed-session"));
    command
        .args(args)
        .env_remove("SESSION_KEYS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(keys) = keys {
        command.env("SESSION_KEYS", keys);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The command may exit without reading: a closed pipe is fine.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().unwrap()
}

/// A file holding `text`, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(text: &str) -> TempFile {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "sealed-session-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Asserts that the command failed with exit status `code`, saying
/// `says` on stderr, printing nothing on stdout, and not by a panic.
fn assert_fails(output: &Output, code: i32, says: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert!(err.contains(says), "expected {says:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(stdout(output).is_empty(), "{}", stdout(output));
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A `Set-Cookie` line for a session holding `value`, sealed by a ring
/// parsed from `keys` at time `at`.
async fn set_cookie(keys: &str, config: SessionConfig, at: u64, value: Vec<u8>) -> String {
    let sessions = Sessions::new(
        keys.parse::<Keyring>().unwrap(),
        config.with_clock(ManualClock::new(at)),
    )
    .unwrap();
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(value)).await;
    set_cookies(&response).remove(0)
}

fn value_of(set_cookie: &str) -> String {
    client::pair(set_cookie)
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

#[test]
fn keygen_prints_a_key_that_parses() {
    let output = cli(&["keygen"], None);
    assert!(output.status.success());
    let key = stdout(&output);
    assert!(key.trim().parse::<Key>().is_ok(), "{key}");
}

#[test]
fn keyring_add_promote_retire_is_the_rotation_drill() {
    let a = Key::generate();
    let (a_text, a_id) = (a.to_base64url(), a.id().to_string());
    let added = cli(&["keyring", "add"], Some(&a_text));
    assert!(added.status.success(), "{}", stderr(&added));
    let ab = stdout(&added).trim().to_owned();
    let ring: Keyring = ab.parse().unwrap();
    assert_eq!(ring.primary_id().to_string(), a_id);
    let b_id = ring.stats()[1].id.to_string();
    assert!(stderr(&added).contains(&format!("primary {a_id}; older: {b_id}")));

    let promoted = cli(&["keyring", "promote", &b_id], Some(&ab));
    let ba = stdout(&promoted).trim().to_owned();
    assert_eq!(
        ba.parse::<Keyring>().unwrap().primary_id().to_string(),
        b_id
    );

    let refused = cli(&["keyring", "retire", &b_id], Some(&ba));
    assert_fails(&refused, 1, "is the primary");

    let retired = cli(&["keyring", "retire", &a_id], Some(&ba));
    let b_only = stdout(&retired).trim().to_owned();
    assert_eq!(b_only.parse::<Keyring>().unwrap().stats().len(), 1);
    assert!(!b_only.contains(&a_text));

    let listed = cli(&["keyring", "list"], Some(&ba));
    assert_eq!(
        stdout(&listed),
        format!("0 {b_id} primary\n1 {a_id} older\n")
    );
    assert!(!stdout(&listed).contains(&a_text), "list never prints keys");

    let unknown = cli(&["keyring", "promote", "00000000"], Some(&a_text));
    assert_fails(&unknown, 1, "no key with id 00000000");
}

/// The ring comes from `SESSION_KEYS`, `--keys-file` or `--keys-stdin`
/// (an option wins over the environment, and only one option at a time).
#[test]
fn the_ring_comes_from_the_environment_a_file_or_standard_input() {
    let (a, b) = (Key::generate(), Key::generate());
    let ring = format!("{},{}", a.to_base64url(), b.to_base64url());
    let listing = format!("0 {} primary\n1 {} older\n", a.id(), b.id());
    // A file or a pipe may end in a newline, or hold one key per line.
    let file = TempFile::new(&format!("{ring}\n"));
    let lines = TempFile::new(&format!("{},\n{}\n", a.to_base64url(), b.to_base64url()));
    let other = Key::generate().to_base64url();
    for (args, env, input) in [
        (vec!["keyring", "list"], Some(ring.as_str()), String::new()),
        (
            vec!["keyring", "list", "--keys-file", file.path()],
            None,
            String::new(),
        ),
        (
            vec!["keyring", "list", "--keys-file", lines.path()],
            None,
            String::new(),
        ),
        (
            vec!["keyring", "list", &format!("--keys-file={}", file.path())],
            Some(other.as_str()),
            String::new(),
        ),
        (
            vec!["keyring", "list", "--keys-stdin"],
            None,
            format!("{ring}\n"),
        ),
        (
            vec!["keyring", "list", "--keys-stdin"],
            Some(other.as_str()),
            ring.clone(),
        ),
    ] {
        let output = cli_with_input(&args, env, &input);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), listing, "{args:?}");
    }

    let empty = TempFile::new("\n");
    for (args, input, expected) in [
        (
            vec!["keyring", "list"],
            "",
            "no key ring: set SESSION_KEYS, or use --keys-file PATH or --keys-stdin",
        ),
        (
            vec!["keyring", "list", "--keys-stdin"],
            "",
            "--keys-stdin: empty",
        ),
        (
            vec!["keyring", "list", "--keys-file", empty.path()],
            "",
            "empty",
        ),
        (
            vec!["keyring", "list", "--keys-file", "/nonexistent/keys"],
            "",
            "--keys-file /nonexistent/keys: ",
        ),
        (
            vec![
                "keyring",
                "list",
                "--keys-file",
                file.path(),
                "--keys-stdin",
            ],
            ring.as_str(),
            "give --keys-file or --keys-stdin, not both",
        ),
        (
            vec!["keyring", "list", "--keys-stdin"],
            "short",
            "key ring: key 1",
        ),
    ] {
        assert_fails(&cli_with_input(&args, None, input), 2, expected);
    }
}

/// `keyring add` generates the new key, or reads it from a file or from
/// standard input; never from an argument.
#[test]
fn keyring_add_reads_a_given_key_from_a_file_or_standard_input() {
    let (a, b) = (Key::generate(), Key::generate());
    let (a_text, b_text) = (a.to_base64url(), b.to_base64url());
    let b_file = TempFile::new(&format!("{b_text}\n"));
    let a_file = TempFile::new(&a_text);
    let expected = format!("{a_text},{b_text}\n");
    let from_file = cli(
        &["keyring", "add", "--new-key-file", b_file.path()],
        Some(&a_text),
    );
    assert_eq!(stdout(&from_file), expected, "{}", stderr(&from_file));
    let from_stdin = cli_with_input(
        &["keyring", "add", "--new-key-stdin"],
        Some(&a_text),
        &b_text,
    );
    assert_eq!(stdout(&from_stdin), expected, "{}", stderr(&from_stdin));
    // The ring from a file and the new key from standard input.
    let both = cli_with_input(
        &[
            "keyring",
            "add",
            "--keys-file",
            a_file.path(),
            "--new-key-stdin",
        ],
        None,
        &b_text,
    );
    assert_eq!(stdout(&both), expected, "{}", stderr(&both));

    // A duplicate is refused; so are two readers of standard input.
    let duplicate = cli(
        &["keyring", "add", "--new-key-file", a_file.path()],
        Some(&a_text),
    );
    assert_fails(&duplicate, 1, "repeats an earlier key");
    let two = cli_with_input(
        &["keyring", "add", "--keys-stdin", "--new-key-stdin"],
        None,
        &a_text,
    );
    assert_fails(&two, 2, "only one thing can come from standard input");
    let bad = cli_with_input(
        &["keyring", "add", "--new-key-stdin"],
        Some(&a_text),
        "short",
    );
    assert_fails(&bad, 2, "new key: ");
}

/// Key material as an argument is refused before anything runs, with a
/// message that says where it goes and does not repeat it.
#[test]
fn a_key_on_the_command_line_is_refused_without_being_echoed() {
    let key = Key::generate().to_base64url();
    let other = Key::generate().to_base64url();
    let ring = format!("{key},{other}");
    let env_key = Key::generate().to_base64url();
    let assignment = format!("SESSION_KEYS={key}");
    let inline = format!("--keys={key}");
    // One character too many: not a key, still key material.
    let near_miss = format!("{key}A");
    for (args, says) in [
        (vec!["keyring", "list", "--keys", &key], "--keys is refused"),
        (vec!["keyring", "list", &inline], "--keys is refused"),
        (
            vec!["keyring", "list", "--keys", "short"],
            "--keys is refused",
        ),
        (vec!["keyring", "add", &key], "argument 3 looks like a key"),
        (
            vec!["keyring", "add", &near_miss],
            "keyring add: a key as an argument is refused",
        ),
        (
            vec!["keyring", "promote", &key],
            "argument 3 looks like a key",
        ),
        (vec!["inspect", &ring], "argument 2 looks like a key"),
        (
            vec!["inspect", "x", "--name", &key],
            "argument 4 looks like a key",
        ),
        (
            vec![&assignment, "keyring", "list"],
            "argument 1 looks like a key",
        ),
        (vec![&key], "argument 1 looks like a key"),
    ] {
        let output = cli(&args, Some(&env_key));
        assert_fails(&output, 2, says);
        let err = stderr(&output);
        assert!(err.contains("/proc/PID/cmdline") && err.contains("shell history"));
        let goes = if says.starts_with("keyring add") {
            "--new-key-file PATH or --new-key-stdin"
        } else {
            "set SESSION_KEYS or use --keys-file PATH or --keys-stdin"
        };
        assert!(err.contains(goes), "{err}");
        for secret in [&key, &other, &env_key, &near_miss] {
            assert!(!err.contains(secret.as_str()), "{err}");
        }
    }
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    for (args, keys) in [
        (&["frobnicate"][..], None),
        (&["keyring", "list"][..], None),
        (
            &["keyring", "list", "--keys-stdin", "--keys-file", "x"][..],
            None,
        ),
        (&["keyring", "list"][..], Some("short")),
        (
            &["keyring", "promote", "not-an-id"][..],
            Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
        ),
        (
            &["inspect"][..],
            Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
        ),
        (
            &["inspect", "x", "--idle", "soon"][..],
            Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
        ),
        (&["keygen", "--bogus"][..], None),
        (&["keygen", "extra"][..], None),
    ] {
        let output = cli(args, keys);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).is_empty());
    }
}

#[tokio::test]
async fn inspect_describes_a_cookie_without_printing_keys() {
    let keys = format!(
        "{},{}",
        Key::generate().to_base64url(),
        Key::generate().to_base64url()
    );
    let line = set_cookie(
        &keys,
        SessionConfig::default(),
        now() - 90,
        vec![0xab, 0xcd],
    )
    .await;
    for input in [
        line.clone(),
        format!("Set-Cookie: {line}"),
        client::pair(&line),
    ] {
        let output = cli(&["inspect", &input, "--payload-hex"], Some(&keys));
        assert!(output.status.success(), "{}", stderr(&output));
        let text = stdout(&output);
        let primary = keys.parse::<Keyring>().unwrap().primary_id().to_string();
        assert!(
            text.contains(&format!(
                "key:        {primary} (position 0 in the ring, primary)"
            )),
            "{text}"
        );
        assert!(text.contains("status:     valid now"), "{text}");
        // Sealed 90 s before the test's start; the command runs a moment
        // later (a second or two on a loaded machine).
        assert!(
            ["(1m 30s ago)", "(1m 31s ago)", "(1m 32s ago)"]
                .iter()
                .any(|age| text.contains(age)),
            "{text}"
        );
        assert!(
            text.contains("body:       inline, 3 bytes of payload"),
            "{text}"
        );
        assert!(text.contains("payload:    02abcd"), "{text}");
        for key in keys.split(',') {
            assert!(!text.contains(key) && !stderr(&output).contains(key));
        }
    }
    // A bare value needs the cookie's name when it is not the default.
    let value = value_of(&line);
    assert!(cli(&["inspect", &value], Some(&keys)).status.success());
    let wrong_name = cli(&["inspect", &value, "--name", "other"], Some(&keys));
    assert_eq!(wrong_name.status.code(), Some(1));
    assert!(
        stderr(&wrong_name).contains("forged"),
        "{}",
        stderr(&wrong_name)
    );
}

#[tokio::test]
async fn inspect_opens_a_cookie_of_an_application_context_only_with_it() {
    let keys = Key::generate().to_base64url();
    let config = SessionConfig::default().with_context("shop production");
    let value = value_of(&set_cookie(&keys, config, now(), vec![1, 2, 3]).await);
    let without = cli(&["inspect", &value], Some(&keys));
    assert_fails(&without, 1, "--context");
    let other = cli(
        &["inspect", &value, "--context", "shop staging"],
        Some(&keys),
    );
    assert_eq!(other.status.code(), Some(1));
    let with = cli(
        &["inspect", &value, "--context", "shop production"],
        Some(&keys),
    );
    assert!(with.status.success(), "{}", stderr(&with));
}

#[tokio::test]
async fn inspect_reports_age_expiry_older_keys_and_store_held_sessions() {
    let old = Key::generate().to_base64url();
    let new = Key::generate().to_base64url();
    let line = set_cookie(&old, SessionConfig::default(), now() - 2 * 86400, vec![1]).await;
    let rotated = format!("{new},{old}");
    let output = cli(&["inspect", &line], Some(&rotated));
    let text = stdout(&output);
    assert!(output.status.success());
    assert!(text.contains("position 1 in the ring, older key"), "{text}");
    assert!(
        text.contains("status:     refused now: idle_expired"),
        "{text}"
    );
    // Under a longer idle timeout it is still valid.
    let lenient = cli(&["inspect", &line, "--idle", "259200"], Some(&rotated));
    assert!(stdout(&lenient).contains("status:     valid now"));

    let store = MemoryStore::new();
    let config = SessionConfig::default().with_store(store);
    let big = set_cookie(&new, config, now(), vec![5; 6000]).await;
    let text = stdout(&cli(&["inspect", &big], Some(&new)));
    assert!(text.contains("body:       store-held, entry "), "{text}");
}

#[tokio::test]
async fn inspect_says_why_a_cookie_does_not_open() {
    let keys = Key::generate().to_base64url();
    let line = set_cookie(&keys, SessionConfig::default(), now(), vec![1]).await;
    let value = value_of(&line);
    let mut raw = decode(&value);
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let other = Key::generate().to_base64url();
    let key_id = keys.parse::<Key>().unwrap().id().to_string();
    for (input, ring, expected) in [
        ("garbage!".to_owned(), keys.clone(), "malformed".to_owned()),
        (encode(&raw), keys.clone(), "forged".to_owned()),
        (
            value.clone(),
            other,
            format!("unknown_key (key id {key_id})"),
        ),
    ] {
        assert_fails(&cli(&["inspect", &input], Some(&ring)), 1, &expected);
    }
}

/// Text that is not a cookie, multi-byte characters anywhere in it
/// included, is a cookie that does not open: status 1 and the reason,
/// never a panic.
#[test]
fn inspect_refuses_any_text_with_a_reason_never_a_panic() {
    let keys = Key::generate().to_base64url();
    let mut inputs: Vec<(String, &str)> = vec![
        ("abcdefghij€x".into(), "malformed"),
        ("€".into(), "malformed"),
        (
            "Set-Cookie: __Host-session=ab€cd; Path=/".into(),
            "malformed",
        ),
        ("Set-Cookie: __Host-session=\"é\"".into(), "malformed"),
        ("Cookie: sé=abc".into(), "\"sé\" is not a cookie name"),
        ("=abc".into(), "\"\" is not a cookie name"),
        (
            "Set-Cookie: \u{1b}[31m=x".into(),
            "\"\\u{1b}[31m\" is not a cookie name",
        ),
    ];
    // A multi-byte character at every position, across each prefix the
    // command recognises and a value.
    for text in ["Set-Cookie: x", "cookie:x", "abcdefghijkl"] {
        for (at, _) in text.char_indices().chain([(text.len(), ' ')]) {
            for wide in ["é", "€", "😀"] {
                inputs.push((format!("{}{wide}{}", &text[..at], &text[at..]), "malformed"));
            }
        }
    }
    for (input, says) in &inputs {
        assert_fails(&cli(&["inspect", input], Some(&keys)), 1, says);
    }
    // The same from standard input.
    let output = cli_with_input(&["inspect", "-"], Some(&keys), "abcdefghij€x\n");
    assert_fails(&output, 1, "malformed");
}

/// An argument that is not UTF-8 is a usage error, not a panic.
#[test]
#[cfg(unix)]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt as _;
    let keys = Key::generate().to_base64url();
    let args = [
        std::ffi::OsStr::new("inspect"),
        std::ffi::OsStr::from_bytes(b"abc\xffdef"),
    ];
    let output = cli_with_input(&args, Some(&keys), "");
    assert_fails(&output, 2, "argument 2 is not valid UTF-8");
}

#[tokio::test]
async fn inspect_reads_the_cookie_from_standard_input() {
    let keys = Key::generate().to_base64url();
    let line = set_cookie(&keys, SessionConfig::default(), now(), vec![9]).await;
    let output = cli_with_input(&["inspect", "-", "--payload-hex"], Some(&keys), &line);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("payload:    0109"),
        "{}",
        stdout(&output)
    );
    let two = cli_with_input(&["inspect", "-", "--keys-stdin"], None, &line);
    assert_fails(&two, 2, "only one thing can come from standard input");
}

#[tokio::test]
async fn inspect_shows_the_schema_version_and_the_sessions_own_lifetime() {
    let keys = Key::generate().to_base64url();
    let plain = set_cookie(&keys, SessionConfig::default(), now(), vec![1]).await;
    let text = stdout(&cli(&["inspect", &plain], Some(&keys)));
    assert!(text.contains("version:    1 (wire format)"), "{text}");
    assert!(text.contains("schema:     0"), "{text}");
    assert!(text.contains("lifetime:   as configured"), "{text}");

    let config = SessionConfig::default()
        .with_schema(sealed_session::Schema::<Vec<u8>>::new(3))
        .with_max_idle_timeout(Some(std::time::Duration::from_secs(30 * 86_400)))
        .with_clock(ManualClock::new(now()));
    let sessions = Sessions::new(keys.parse::<Keyring>().unwrap(), config).unwrap();
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| {
        s.set(vec![1u8]);
        s.set_lifetime(
            sealed_session::SessionLifetime::persistent()
                .with_idle_timeout(std::time::Duration::from_secs(30 * 86_400)),
        );
    })
    .await;
    let line = set_cookies(&response).remove(0);
    let output = cli(&["inspect", &line, "--payload-hex"], Some(&keys));
    let text = stdout(&output);
    assert!(text.contains("version:    2 (wire format)"), "{text}");
    assert!(text.contains("schema:     3"), "{text}");
    assert!(
        text.contains("lifetime:   persistent cookie, idle 30d"),
        "{text}"
    );
    // The payload is the value's postcard bytes, without the schema.
    assert!(text.contains("payload:    0101"), "{text}");
}
