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
    let added = cli(&["keyring", "add", "--keys", &a_text], None);
    assert!(added.status.success(), "{}", stderr(&added));
    let ab = stdout(&added).trim().to_owned();
    let ring: Keyring = ab.parse().unwrap();
    assert_eq!(ring.primary_id().to_string(), a_id);
    let b_id = ring.stats()[1].id.to_string();
    assert!(stderr(&added).contains(&format!("primary {a_id}; older: {b_id}")));

    // SESSION_KEYS from the environment works too.
    let promoted = cli(&["keyring", "promote", &b_id], Some(&ab));
    let ba = stdout(&promoted).trim().to_owned();
    assert_eq!(
        ba.parse::<Keyring>().unwrap().primary_id().to_string(),
        b_id
    );

    let refused = cli(&["keyring", "retire", &b_id, "--keys", &ba], None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("is the primary"));
    assert!(stdout(&refused).is_empty());

    let retired = cli(&["keyring", "retire", &a_id, "--keys", &ba], None);
    let b_only = stdout(&retired).trim().to_owned();
    assert_eq!(b_only.parse::<Keyring>().unwrap().stats().len(), 1);
    assert!(!b_only.contains(&a_text));

    let listed = cli(&["keyring", "list", "--keys", &ba], None);
    assert_eq!(
        stdout(&listed),
        format!("0 {b_id} primary\n1 {a_id} older\n")
    );
    assert!(!stdout(&listed).contains(&a_text), "list never prints keys");

    // A given key is added as is; a duplicate is refused.
    let given = cli(&["keyring", "add", &a_text, "--keys", &a_text], None);
    assert_eq!(given.status.code(), Some(1));
    assert!(stderr(&given).contains("repeats an earlier key"));
    let unknown = cli(&["keyring", "promote", "00000000", "--keys", &a_text], None);
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    for (args, keys) in [
        (&["frobnicate"][..], None),
        (&["keyring", "list"][..], None),
        (&["keyring", "list", "--keys", "short"][..], None),
        (
            &["inspect"][..],
            Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
        ),
        (
            &["inspect", "x", "--idle", "soon"][..],
            Some("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"),
        ),
        (&["keygen", "--bogus"][..], None),
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
        assert!(text.contains("(1m 30s ago)"), "{text}");
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
        let output = cli(&["inspect", &input], Some(&ring));
        assert_eq!(output.status.code(), Some(1), "{input}");
        assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
        assert!(stdout(&output).is_empty());
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
