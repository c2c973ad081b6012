//! Properties over generated inputs (proptest): round trips, tamper
//! evidence, size accounting, monotone timeouts.

mod common;

use std::time::Duration;

use common::*;
use http::HeaderMap;
use proptest::prelude::*;
use sealed_session::{ManualClock, SaveError, SessionConfig, Sessions};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Value {
    text: String,
    bytes: Vec<u8>,
    number: Option<i64>,
    pairs: Vec<(String, u32)>,
    flag: bool,
}

fn value() -> impl Strategy<Value = Value> {
    (
        ".{0,40}",
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<Option<i64>>(),
        proptest::collection::vec(("[a-z]{0,8}", any::<u32>()), 0..8),
        any::<bool>(),
    )
        .prop_map(|(text, bytes, number, pairs, flag)| Value {
            text,
            bytes,
            number,
            pairs,
            flag,
        })
        // A new session at its default gets no cookie at all.
        .prop_filter("not the default", |v| *v != Value::default())
}

/// RFC 6265 token characters; prefixes are fine with the default
/// attributes (Secure, Path=/, no Domain).
fn cookie_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,24}"
}

fn sessions_named(
    name: &str,
    clock: &ManualClock,
    f: impl FnOnce(SessionConfig) -> SessionConfig,
) -> Sessions {
    Sessions::new(ring(&[1]), f(config(clock).with_cookie_name(name))).unwrap()
}

/// A sealed value for `value` under `sessions`, and its cookie name.
fn seal(sessions: &Sessions, value: Value) -> String {
    ready(sealed(sessions, value))
}

fn load(sessions: &Sessions, name: &str, value: &str) -> sealed_session::Session<Value> {
    ready(sessions.load::<Value>(&request(&[(name, value)]))).unwrap()
}

proptest! {
    #[test]
    fn any_value_round_trips_under_any_name(v in value(), name in cookie_name()) {
        let clock = ManualClock::new(START);
        let sessions = sessions_named(&name, &clock, |c| c);
        let sealed = seal(&sessions, v.clone());
        let session = load(&sessions, &name, &sealed);
        prop_assert!(!session.is_new());
        prop_assert_eq!(session.get(), v);
    }

    #[test]
    fn any_change_to_the_sealed_bytes_fails_to_open(
        v in value(),
        position in any::<prop::sample::Index>(),
        change in 1u8..=255,
        edit in 0u8..3,
    ) {
        let clock = ManualClock::new(START);
        let sessions = sessions_named("s", &clock, |c| c);
        let sealed = seal(&sessions, v);
        let mut raw = decode(&sealed);
        let i = position.index(raw.len());
        match edit {
            0 => raw[i] ^= change,
            1 => raw.insert(i, change),
            _ => { raw.remove(i); }
        }
        let session = load(&sessions, "s", &encode(&raw));
        prop_assert!(session.is_new());
        prop_assert!(session.rejection().is_some());
        prop_assert_eq!(session.get(), Value::default());
    }

    #[test]
    fn any_change_to_the_text_fails_to_open(
        v in value(),
        position in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_-]",
    ) {
        let clock = ManualClock::new(START);
        let sessions = sessions_named("s", &clock, |c| c);
        let sealed = seal(&sessions, v);
        let i = position.index(sealed.len());
        let mut text = sealed.clone();
        text.replace_range(i..i + 1, &replacement);
        prop_assume!(text != sealed);
        let session = load(&sessions, "s", &text);
        prop_assert!(session.is_new());
    }

    #[test]
    fn the_size_limit_counts_exactly_the_rendered_name_and_value(
        payload in proptest::collection::vec(any::<u8>(), 0..3500),
        name in cookie_name(),
    ) {
        let clock = ManualClock::new(START);
        let unlimited = sessions_named(&name, &clock, |c| c.with_size_limit(1 << 20));
        let rendered = name.len() + seal(&unlimited, Value { bytes: payload.clone(), flag: true, ..Value::default() }).len();
        for (limit, fits) in [(rendered, true), (rendered - 1, false)] {
            let Ok(limited) = Sessions::new(ring(&[1]), config(&clock).with_cookie_name(name.as_str()).with_size_limit(limit)) else {
                continue; // a limit below any session's size is refused up front
            };
            let session = ready(limited.load::<Value>(&HeaderMap::new())).unwrap();
            session.set(Value { bytes: payload.clone(), flag: true, ..Value::default() });
            let mut response = HeaderMap::new();
            match ready(limited.save(&session, &mut response)) {
                Ok(()) => {
                    prop_assert!(fits);
                    let cookie = the_cookie(&response);
                    prop_assert_eq!(cookie.name().len() + cookie.value().len(), rendered);
                }
                Err(SaveError::TooLarge { size, limit: l }) => {
                    prop_assert!(!fits);
                    prop_assert_eq!((size, l), (rendered, limit));
                    prop_assert!(response.is_empty());
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }

    #[test]
    fn a_session_is_never_valid_again_after_a_deadline(
        idle in proptest::option::of(1u64..10_000),
        absolute in proptest::option::of(1u64..50_000),
        mut offsets in proptest::collection::vec(0u64..60_000, 1..12),
    ) {
        let clock = ManualClock::new(START);
        let sessions = sessions_named("s", &clock, |c| {
            c.with_idle_timeout(idle.map(Duration::from_secs))
                .with_absolute_timeout(absolute.map(Duration::from_secs))
        });
        let sealed = seal(&sessions, Value { flag: true, ..Value::default() });
        let deadline = [idle, absolute].into_iter().flatten().min();
        offsets.sort_unstable();
        let mut expired = false;
        for offset in offsets {
            clock.set(START + offset);
            let refused = load(&sessions, "s", &sealed).is_new();
            prop_assert!(!expired || refused, "valid again at +{offset} after expiring");
            prop_assert_eq!(refused, deadline.is_some_and(|d| offset >= d), "at +{}", offset);
            expired |= refused;
        }
    }
}
