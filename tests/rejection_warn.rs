//! Rejections that mean our own deploy is broken are loud (issue 17,
//! item 2): an authentic cookie that does not decode as the session type,
//! of a newer schema, or of an older one that cannot be brought up to
//! date (review 6), is logged at `warn` at most once per interval
//! with a count; forged cookies stay at `debug`; every rejection is
//! counted in `Sessions::rejection_stats`.
//!
//! Alone in its own test binary, for the reason given in
//! `rejection_event.rs` (`tracing` caches per call site whether anyone
//! listens), and all in one test for the same reason.

mod common;

use common::capture::{Capture, lines_at};
use common::*;
use sealed_session::{ManualClock, REJECTION_WARN_INTERVAL, Rejection, Schema};

#[tokio::test]
async fn authentic_cookies_that_do_not_load_warn_once_per_interval_and_forged_ones_do_not() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    // Written by an instance whose session type was a string; read as a
    // number, with no schema version for the change.
    let other_type = sealed(&sessions, "a string".to_owned()).await;
    let mut raw = decode(&other_type);
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let forged = encode(&raw);
    // Written by a newer release, at schema version 2.
    let newer = instance(&clock, |config| config.with_schema(Schema::<u64>::new(2)));
    let newer_cookie = sealed(&newer, 5u64).await;

    let (capture, _guard) = Capture::start(tracing::Level::DEBUG);

    let load = |value: String| {
        let sessions = sessions.clone();
        async move {
            sessions
                .load::<u64>(&cookie_of(&value))
                .await
                .unwrap()
                .rejection()
        }
    };
    for _ in 0..3 {
        assert_eq!(
            load(other_type.clone()).await,
            Some(Rejection::Incompatible)
        );
        assert_eq!(load(forged.clone()).await, Some(Rejection::Forged));
    }
    let log = capture.text();
    let warns = lines_at(&log, "WARN");
    assert_eq!(warns.len(), 1, "one warn per interval: {log}");
    let warn = warns[0];
    assert!(
        warn.contains("does not decode as the session type"),
        "{warn}"
    );
    assert!(
        warn.contains("session_type=\"u64\"") || warn.contains("session_type=u64"),
        "{warn}"
    );
    assert!(warn.contains("schema=0"), "{warn}");
    assert!(warn.contains("left over"), "the serde problem: {warn}");
    assert!(warn.contains("unlogged=0"), "{warn}");
    assert!(
        !warn.contains(&other_type[10..40]),
        "no cookie bytes: {warn}"
    );
    // Forged cookies: debug only, every time.
    let debug = lines_at(&log, "DEBUG");
    assert_eq!(
        debug.iter().filter(|l| l.contains("reason=forged")).count(),
        3,
        "{log}"
    );
    assert!(warns.iter().all(|l| !l.contains("forged")), "{log}");

    // One interval later: the next one is logged, with the two left out.
    clock.advance(secs(REJECTION_WARN_INTERVAL));
    assert_eq!(
        load(other_type.clone()).await,
        Some(Rejection::Incompatible)
    );
    let log = capture.text();
    let warns = lines_at(&log, "WARN");
    assert_eq!(warns.len(), 2, "{log}");
    assert!(warns[1].contains("unlogged=2"), "{}", warns[1]);

    // A newer schema: its own limiter, naming the version.
    for _ in 0..2 {
        assert_eq!(
            load(newer_cookie.clone()).await,
            Some(Rejection::NewerSchema(2))
        );
    }
    let log = capture.text();
    let warns = lines_at(&log, "WARN");
    assert_eq!(warns.len(), 3, "{log}");
    assert!(
        warns[2].contains("newer than this instance knows"),
        "{}",
        warns[2]
    );
    assert!(warns[2].contains("schema=2"), "{}", warns[2]);

    // An older schema that cannot be brought up to date: no migration
    // from it, or one that fails. One limiter for both, naming the reason.
    let at_1 = sealed(
        &instance(&clock, |c| c.with_schema(Schema::<u64>::new(1))),
        7u64,
    )
    .await;
    let at_2 = sealed(
        &instance(&clock, |c| c.with_schema(Schema::<u64>::new(2))),
        7u64,
    )
    .await;
    let current = instance(&clock, |c| {
        c.with_schema(
            Schema::<u64>::new(3).try_migrate(2, |_: u64| Err::<u64, _>("a bug in the migration")),
        )
    });
    for _ in 0..2 {
        let session = current.load::<u64>(&cookie_of(&at_1)).await.unwrap();
        assert_eq!(session.rejection(), Some(Rejection::OldSchema(1)));
        let session = current.load::<u64>(&cookie_of(&at_2)).await.unwrap();
        assert_eq!(session.rejection(), Some(Rejection::MigrationFailed(2)));
    }
    let log = capture.text();
    let warns = lines_at(&log, "WARN");
    assert_eq!(warns.len(), 4, "{log}");
    assert!(warns[3].contains("older schema version"), "{}", warns[3]);
    assert!(warns[3].contains("old_schema(1)"), "{}", warns[3]);
    clock.advance(secs(REJECTION_WARN_INTERVAL));
    let session = current.load::<u64>(&cookie_of(&at_2)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::MigrationFailed(2)));
    let log = capture.text();
    let warns = lines_at(&log, "WARN");
    assert_eq!(warns.len(), 5, "{log}");
    assert!(warns[4].contains("migration_failed(2)"), "{}", warns[4]);
    assert!(warns[4].contains("unlogged=3"), "{}", warns[4]);

    let stats = sessions.rejection_stats();
    assert_eq!(stats.count(Rejection::Incompatible), 4);
    assert_eq!(stats.count(Rejection::Forged), 3);
    assert_eq!(stats.count(Rejection::NewerSchema(7)), 2);
    assert_eq!(stats.total(), 9);
    assert!(
        stats
            .iter()
            .any(|(reason, count)| reason == "incompatible" && count == 4)
    );
}
