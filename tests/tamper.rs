//! Hostile and broken cookies: each yields a new empty session with the
//! right reason, never a panic and never the sealed data.

mod common;

use common::*;
use sealed_session::{ManualClock, Rejection, Sessions};

const NAME: &str = "__Host-session";
const SECRET: u64 = 0x5EC2E7;

async fn fixture() -> (Sessions, String) {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = sealed(&sessions, SECRET).await;
    (sessions, value)
}

/// Loads `value` under `name` and returns the reason; asserts the session
/// is new and empty.
async fn rejection(sessions: &Sessions, name: &str, value: &str) -> Rejection {
    let session = sessions
        .load::<u64>(&request(&[(name, value)]))
        .await
        .unwrap();
    assert!(session.is_new(), "{value:?} was accepted");
    assert_eq!(session.get(), 0);
    session.rejection().expect("a rejected cookie has a reason")
}

#[tokio::test]
async fn the_fixture_opens() {
    let (sessions, value) = fixture().await;
    let session = sessions
        .load::<u64>(&request(&[(NAME, &value)]))
        .await
        .unwrap();
    assert_eq!(session.get(), SECRET);
}

#[tokio::test]
async fn every_single_bit_flip_is_rejected_with_its_reason() {
    let (sessions, value) = fixture().await;
    let raw = decode(&value);
    for byte in 0..raw.len() {
        for bit in 0..8 {
            let mut flipped = raw.clone();
            flipped[byte] ^= 1 << bit;
            let expected = match byte {
                0 => Rejection::UnknownVersion(flipped[0]),
                1..=4 => Rejection::UnknownKey,
                _ => Rejection::Forged,
            };
            assert_eq!(
                rejection(&sessions, NAME, &encode(&flipped)).await,
                expected,
                "byte {byte} bit {bit}"
            );
        }
    }
}

#[tokio::test]
async fn every_bit_flip_of_the_text_is_rejected() {
    let (sessions, value) = fixture().await;
    for i in 0..value.len() {
        for bit in 0..7 {
            let mut text = value.clone().into_bytes();
            text[i] ^= 1 << bit;
            // Flips that leave the cookie grammar (`;`, space, quote...)
            // change what the header means, not our value: skip them.
            let Ok(text) = String::from_utf8(text) else {
                continue;
            };
            if text.contains([';', ' ', '"', ',', '\\'])
                || text.bytes().any(|b| !b.is_ascii_graphic())
            {
                continue;
            }
            let reason = rejection(&sessions, NAME, &text).await;
            assert!(
                matches!(
                    reason,
                    Rejection::Malformed
                        | Rejection::UnknownVersion(_)
                        | Rejection::UnknownKey
                        | Rejection::Forged
                ),
                "char {i} bit {bit}: {reason:?}"
            );
        }
    }
}

#[tokio::test]
async fn truncations_are_rejected() {
    let (sessions, value) = fixture().await;
    let raw = decode(&value);
    for len in 0..raw.len() {
        let reason = rejection(&sessions, NAME, &encode(&raw[..len])).await;
        let expected = if len < 45 {
            Rejection::Malformed
        } else {
            Rejection::Forged
        };
        // An empty value is still a candidate named NAME.
        assert_eq!(reason, expected, "raw length {len}");
    }
    for len in 0..value.len() {
        let reason = rejection(&sessions, NAME, &value[..len]).await;
        assert!(
            matches!(reason, Rejection::Malformed | Rejection::Forged),
            "text length {len}"
        );
    }
}

#[tokio::test]
async fn appended_bytes_are_rejected() {
    let (sessions, value) = fixture().await;
    let mut raw = decode(&value);
    raw.push(0);
    assert_eq!(
        rejection(&sessions, NAME, &encode(&raw)).await,
        Rejection::Forged
    );
    for suffix in ["A", "AA", "AAA", "AAAA", "=", "=="] {
        let reason = rejection(&sessions, NAME, &format!("{value}{suffix}")).await;
        assert!(
            matches!(reason, Rejection::Malformed | Rejection::Forged),
            "{suffix}"
        );
    }
}

#[tokio::test]
async fn a_value_moved_to_another_cookie_name_does_not_open() {
    let clock = ManualClock::new(START);
    let a = Sessions::new(ring(&[1]), config(&clock).with_cookie_name("__Host-a")).unwrap();
    let b = Sessions::new(ring(&[1]), config(&clock).with_cookie_name("__Host-b")).unwrap();
    let value = sealed(&a, SECRET).await;
    assert_eq!(rejection(&b, "__Host-b", &value).await, Rejection::Forged);
    // Still fine under its own name.
    let session = a
        .load::<u64>(&request(&[("__Host-a", &value)]))
        .await
        .unwrap();
    assert_eq!(session.get(), SECRET);
}

#[tokio::test]
async fn a_value_sealed_under_a_key_not_in_the_ring_is_unknown() {
    let clock = ManualClock::new(START);
    let foreign = sessions(&[9], &clock);
    let value = sealed(&foreign, SECRET).await;
    let (ours, _) = fixture().await;
    assert_eq!(rejection(&ours, NAME, &value).await, Rejection::UnknownKey);
}

#[tokio::test]
async fn a_wrong_version_byte_is_refused_by_version() {
    let (sessions, value) = fixture().await;
    let mut raw = decode(&value);
    for version in [0u8, 3, 0xff] {
        raw[0] = version;
        assert_eq!(
            rejection(&sessions, NAME, &encode(&raw)).await,
            Rejection::UnknownVersion(version)
        );
    }
    // Version 2 exists, and the version byte is authenticated: a version
    // 1 value relabelled as 2 is a forgery, not a value of version 2.
    raw[0] = 2;
    assert_eq!(
        rejection(&sessions, NAME, &encode(&raw)).await,
        Rejection::Forged
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (sessions, _) = fixture().await;
    for garbage in [
        "",
        "x",
        "!!!!",
        "%00%01",
        "AAAA",
        "a+b/c=",
        &"A".repeat(61),
        &"_".repeat(200),
    ] {
        let reason = rejection(&sessions, NAME, garbage).await;
        assert!(
            matches!(reason, Rejection::Malformed | Rejection::UnknownVersion(_)),
            "{garbage:?}: {reason:?}"
        );
    }
}

#[tokio::test]
async fn an_oversized_value_is_refused_before_decoding() {
    let (sessions, _) = fixture().await;
    // Not even base64: refused for its size, not its content.
    let huge = "!".repeat(4096 - NAME.len() + 1);
    assert_eq!(rejection(&sessions, NAME, &huge).await, Rejection::TooLarge);
    let fits = "!".repeat(4096 - NAME.len());
    assert_eq!(
        rejection(&sessions, NAME, &fits).await,
        Rejection::Malformed
    );
}
