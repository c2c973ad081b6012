//! The `tracing` event of a rejected cookie.
//!
//! Alone in its own test binary on purpose: `tracing` caches per call site
//! whether anyone listens, and another test thread hitting the same call
//! site while this one installs its thread-local subscriber can leave that
//! cache stale (seen as a flaky empty capture when this test shared a
//! binary with others).

mod common;

use common::*;
use sealed_session::{ManualClock, Rejection};

const NAME: &str = "__Host-session";

#[tokio::test]
async fn a_rejection_emits_a_tracing_event_without_secrets() {
    use common::capture::Capture;

    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = sealed(&sessions, 7u64).await;
    let mut raw = decode(&value);
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let forged = encode(&raw);
    let (capture, _guard) = Capture::start(tracing::Level::DEBUG);
    let session = sessions
        .load::<u64>(&request(&[(NAME, &forged)]))
        .await
        .unwrap();
    assert_eq!(session.rejection(), Some(Rejection::Forged));

    let log = capture.text();
    let key_id = sessions.keyring().primary_id().to_string();
    assert!(log.contains("session cookie rejected"), "{log}");
    assert!(log.contains("reason=forged"), "{log}");
    assert!(log.contains(&format!("key_id={key_id}")), "{log}");
    assert!(
        !log.contains(&forged[10..40]),
        "the value must not be logged: {log}"
    );
}
