//! Idle and absolute timeouts, Max-Age, rolling re-issue, skew and
//! cut-off, all on a manual clock.

mod common;

use std::time::Duration;

use common::*;
use http::HeaderMap;
use sealed_session::{ManualClock, Rejection, SessionConfig, Sessions};

const NAME: &str = "__Host-session";
const MIN: u64 = 60;
const HOUR: u64 = 3600;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn with(clock: &ManualClock, f: impl FnOnce(SessionConfig) -> SessionConfig) -> Sessions {
    Sessions::new(ring(&[1]), f(config(clock))).unwrap()
}

async fn reason(sessions: &Sessions, value: &str) -> Option<Rejection> {
    let session = sessions
        .load::<u32>(&request(&[(NAME, value)]))
        .await
        .unwrap();
    assert_eq!(session.is_new(), session.rejection().is_some());
    session.rejection()
}

#[tokio::test]
async fn idle_timeout_runs_from_issued() {
    let clock = ManualClock::new(START);
    let sessions = with(&clock, |c| c.with_idle_timeout(Some(secs(30 * MIN))));
    let value = sealed(&sessions, 1u32).await;
    clock.advance(secs(30 * MIN - 1));
    assert_eq!(reason(&sessions, &value).await, None);
    clock.advance(secs(1));
    assert_eq!(
        reason(&sessions, &value).await,
        Some(Rejection::IdleExpired)
    );
}

#[tokio::test]
async fn reissue_extends_idle_but_not_absolute() {
    let clock = ManualClock::new(START);
    let sessions = with(&clock, |c| {
        c.with_idle_timeout(Some(secs(HOUR)))
            .with_absolute_timeout(Some(secs(3 * HOUR)))
            .with_rolling(0.0)
    });
    let mut value = sealed(&sessions, 1u32).await;
    // Active every 50 minutes: idle never passes, absolute does.
    for _ in 0..3 {
        clock.advance(secs(50 * MIN));
        let (session, response, ()) =
            round::<u32, _>(&sessions, &request(&[(NAME, &value)]), |_| ()).await;
        assert!(!session.is_new());
        value = the_cookie(&response).value().to_owned();
    }
    clock.advance(secs(30 * MIN)); // 180 minutes since created
    assert_eq!(
        reason(&sessions, &value).await,
        Some(Rejection::AbsoluteExpired)
    );
}

#[tokio::test]
async fn max_age_follows_the_nearer_deadline() {
    let clock = ManualClock::new(START);
    let sessions = with(&clock, |c| {
        c.with_idle_timeout(Some(secs(HOUR)))
            .with_absolute_timeout(Some(secs(2 * HOUR)))
            .with_rolling(0.0)
    });
    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(1u32)).await;
    assert_eq!(
        the_cookie(&first).max_age(),
        Some(time::Duration::seconds(HOUR as i64))
    );
    clock.advance(secs(50 * MIN));
    let (_, second, ()) = round::<u32, _>(&sessions, &request_after(&first), |_| ()).await;
    assert_eq!(
        the_cookie(&second).max_age(),
        Some(time::Duration::seconds(HOUR as i64))
    );
    clock.advance(secs(50 * MIN));
    let (_, third, ()) = round::<u32, _>(&sessions, &request_after(&second), |_| ()).await;
    // 20 minutes of absolute lifetime left, nearer than a fresh idle hour.
    assert_eq!(
        the_cookie(&third).max_age(),
        Some(time::Duration::seconds(20 * MIN as i64))
    );
}

#[tokio::test]
async fn max_age_is_absent_for_browser_session_cookies_and_without_timeouts() {
    let clock = ManualClock::new(START);
    let browser = with(&clock, |c| c.with_browser_session(true));
    let (_, response, ()) = round(&browser, &HeaderMap::new(), |s| s.set(1u32)).await;
    assert_eq!(the_cookie(&response).max_age(), None);

    let endless = with(&clock, |c| {
        c.with_idle_timeout(None).with_absolute_timeout(None)
    });
    let (_, response, ()) = round(&endless, &HeaderMap::new(), |s| s.set(1u32)).await;
    assert_eq!(the_cookie(&response).max_age(), None);
    clock.advance(secs(10 * 365 * 24 * HOUR));
    assert_eq!(reason(&endless, the_cookie(&response).value()).await, None);
}

#[tokio::test]
async fn the_server_enforces_timeouts_even_for_browser_session_cookies() {
    let clock = ManualClock::new(START);
    let sessions = with(&clock, |c| {
        c.with_browser_session(true)
            .with_idle_timeout(Some(secs(MIN)))
    });
    let value = sealed(&sessions, 1u32).await;
    clock.advance(secs(MIN));
    assert_eq!(
        reason(&sessions, &value).await,
        Some(Rejection::IdleExpired)
    );
}

#[tokio::test]
async fn rolling_reissues_only_after_its_fraction_of_the_idle_window() {
    let clock = ManualClock::new(START);
    let sessions = with(&clock, |c| {
        c.with_idle_timeout(Some(secs(100 * MIN)))
            .with_rolling(0.25)
    });
    let value = sealed(&sessions, 1u32).await;
    clock.advance(secs(25 * MIN - 1));
    let (_, quiet, ()) = round::<u32, _>(&sessions, &request(&[(NAME, &value)]), |_| ()).await;
    assert!(quiet.is_empty());
    clock.advance(secs(1));
    let (_, reissued, ()) = round::<u32, _>(&sessions, &request(&[(NAME, &value)]), |_| ()).await;
    let renewed_value = the_cookie(&reissued).value().to_owned();
    // The old cookie expires at 100 minutes; the re-issued one later.
    clock.advance(secs(75 * MIN));
    assert_eq!(
        reason(&sessions, &value).await,
        Some(Rejection::IdleExpired)
    );
    assert_eq!(reason(&sessions, &renewed_value).await, None);
}

#[tokio::test]
async fn shortening_a_timeout_applies_to_existing_cookies() {
    let clock = ManualClock::new(START);
    let value = sealed(&with(&clock, |c| c), 1u32).await;
    clock.advance(secs(20 * MIN));
    let stricter = with(&clock, |c| c.with_idle_timeout(Some(secs(15 * MIN))));
    assert_eq!(
        reason(&stricter, &value).await,
        Some(Rejection::IdleExpired)
    );
    let absolute = with(&clock, |c| c.with_absolute_timeout(Some(secs(10 * MIN))));
    assert_eq!(
        reason(&absolute, &value).await,
        Some(Rejection::AbsoluteExpired)
    );
}

#[tokio::test]
async fn sessions_created_before_the_cutoff_are_invalid() {
    let clock = ManualClock::new(START);
    let before = sealed(&with(&clock, |c| c), 1u32).await;
    clock.advance(secs(10));
    let cutoff = time::OffsetDateTime::from_unix_timestamp((START + 5) as i64).unwrap();
    let sessions = with(&clock, |c| c.with_cutoff(Some(cutoff)));
    assert_eq!(
        reason(&sessions, &before).await,
        Some(Rejection::BeforeCutoff)
    );
    let after = sealed(&sessions, 1u32).await;
    assert_eq!(reason(&sessions, &after).await, None);
}

#[tokio::test]
async fn timestamps_in_the_future_beyond_the_skew_are_rejected() {
    let ahead = ManualClock::new(START + 60);
    let far_ahead = ManualClock::new(START + 61);
    let value_60 = sealed(&with(&ahead, |c| c), 1u32).await;
    let value_61 = sealed(&with(&far_ahead, |c| c), 1u32).await;
    let clock = ManualClock::new(START);
    let sessions = with(&clock, |c| c.with_clock_skew(secs(60)));
    assert_eq!(reason(&sessions, &value_60).await, None);
    assert_eq!(
        reason(&sessions, &value_61).await,
        Some(Rejection::FromFuture)
    );
}

/// `with_rolling`'s documented edges: `0.0` re-issues on every request
/// (with an idle timeout), `1.0` never re-issues an unchanged cookie, and
/// without an idle timeout nothing rolls, `0.0` included.
#[tokio::test]
async fn rolling_edges_are_as_documented() {
    async fn reissued(sessions: &Sessions, clock: &ManualClock, after: u64) -> Vec<bool> {
        let value = sealed(sessions, 1u32).await;
        let mut out = Vec::new();
        for _ in 0..3 {
            clock.advance(secs(after));
            let (session, response, ()) =
                round::<u32, _>(sessions, &request(&[(NAME, &value)]), |_| ()).await;
            assert!(!session.is_new());
            out.push(!response.is_empty());
        }
        out
    }
    let clock = ManualClock::new(START);
    let every = with(&clock, |c| {
        c.with_idle_timeout(Some(secs(HOUR))).with_rolling(0.0)
    });
    assert_eq!(reissued(&every, &clock, 0).await, [true, true, true]);
    let never = with(&clock, |c| {
        c.with_idle_timeout(Some(secs(HOUR))).with_rolling(1.0)
    });
    // Up to a second before the idle deadline: never re-issued.
    assert_eq!(
        reissued(&never, &clock, 19 * MIN).await,
        [false, false, false]
    );
    let no_idle = with(&clock, |c| c.with_idle_timeout(None).with_rolling(0.0));
    assert_eq!(
        reissued(&no_idle, &clock, HOUR).await,
        [false, false, false]
    );
}
