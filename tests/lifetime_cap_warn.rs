//! `Session::set_lifetime` asking for more than the configured bounds
//! allow is capped, and says so once per process and bound (issue 17,
//! item 5): a `warn` naming the bound, the timeout asked for, the bound
//! and the setting that raises it.
//!
//! Alone in its own test binary, and all in one test: the "once per
//! process" flags are process-wide, and `tracing` caches per call site
//! whether anyone listens (see `rejection_event.rs`).

mod common;

use std::time::Duration;

use common::capture::Capture;
use common::*;
use http::HeaderMap;
use sealed_session::{ManualClock, SessionLifetime, Sessions};

const DAY: u64 = 24 * 3600;

/// Saves a new session with `lifetime`; returns the `warn` lines logged.
async fn save_with(sessions: &Sessions, lifetime: SessionLifetime) -> Vec<String> {
    let (capture, _guard) = Capture::start(tracing::Level::WARN);
    round(sessions, &HeaderMap::new(), |s| {
        s.set(1u32);
        s.set_lifetime(lifetime);
    })
    .await;
    capture.text().lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_capped_lifetime_warns_once_per_bound() {
    let clock = ManualClock::new(START);
    // Default bounds: the configured timeouts (24 hours, 7 days).
    let defaults = sessions(&[1], &clock);
    let idle = |days| SessionLifetime::persistent().with_idle_timeout(secs(days * DAY));
    let absolute = |days| SessionLifetime::persistent().with_absolute_timeout(secs(days * DAY));

    // Within the bounds: nothing to say.
    assert!(save_with(&defaults, idle(1)).await.is_empty());
    assert!(save_with(&defaults, absolute(7)).await.is_empty());

    // Over the idle bound: capped, and one warn.
    let warns = save_with(&defaults, idle(30)).await;
    assert_eq!(warns.len(), 1, "{warns:?}");
    let warn = &warns[0];
    assert!(warn.contains("WARN"), "{warn}");
    assert!(warn.contains("idle timeout"), "{warn}");
    assert!(warn.contains(&(30 * DAY).to_string()), "asked: {warn}");
    assert!(warn.contains(&DAY.to_string()), "bound: {warn}");
    assert!(
        warn.contains("SessionConfig::with_max_idle_timeout"),
        "{warn}"
    );
    assert!(!warn.contains("with_max_absolute_timeout"), "{warn}");

    // Again, and on another instance with an explicit bound: not twice.
    assert!(save_with(&defaults, idle(30)).await.is_empty());
    let bounded = instance(&clock, |config| {
        config
            .with_max_idle_timeout(Some(secs(10 * DAY)))
            .with_max_absolute_timeout(Some(secs(20 * DAY)))
    });
    assert!(save_with(&bounded, idle(11)).await.is_empty());

    // The absolute bound has its own flag.
    let warns = save_with(&bounded, absolute(90)).await;
    assert_eq!(warns.len(), 1, "{warns:?}");
    let warn = &warns[0];
    assert!(warn.contains("absolute timeout"), "{warn}");
    assert!(warn.contains(&(90 * DAY).to_string()), "asked: {warn}");
    assert!(warn.contains(&(20 * DAY).to_string()), "bound: {warn}");
    assert!(
        warn.contains("SessionConfig::with_max_absolute_timeout"),
        "{warn}"
    );
    assert!(save_with(&bounded, absolute(90)).await.is_empty());
    assert!(save_with(&defaults, absolute(8)).await.is_empty());

    // What was sealed is the bound all the same.
    let (session, _, ()) = round(&bounded, &HeaderMap::new(), |s| {
        s.set(1u32);
        s.set_lifetime(absolute(90));
    })
    .await;
    assert_eq!(
        session.lifetime().absolute_timeout(),
        Some(Duration::from_secs(20 * DAY))
    );
}
