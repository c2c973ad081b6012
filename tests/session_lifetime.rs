//! Per-session lifetime ("remember me"): browser-session or persistent
//! cookies, a session's own timeouts within the configured bounds, sealed
//! and enforced on the server, through renew, destroy, the store and
//! revocation.

mod common;

use std::sync::Arc;

use common::*;
use http::HeaderMap;
use sealed_session::{
    ManualClock, MemoryStore, Rejection, SessionConfig, SessionLifetime, Sessions, StoreMode,
};

const NAME: &str = "__Host-session";
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// Idle 1 day, absolute 7 days (the defaults); "remember me" may go to
/// 30 days idle and 90 days absolute.
fn remembering(clock: &ManualClock) -> SessionConfig {
    config(clock)
        .with_max_idle_timeout(Some(secs(30 * DAY)))
        .with_max_absolute_timeout(Some(secs(90 * DAY)))
}

fn remember_me() -> SessionLifetime {
    SessionLifetime::persistent()
        .with_idle_timeout(secs(30 * DAY))
        .with_absolute_timeout(secs(90 * DAY))
}

/// A new session holding 1 with `lifetime`; its cookie value.
async fn with_lifetime(sessions: &Sessions, lifetime: SessionLifetime) -> (String, HeaderMap) {
    let (_, response, ()) = round::<u32, _>(sessions, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(lifetime);
    })
    .await;
    (the_cookie(&response).value().to_owned(), response)
}

async fn load(sessions: &Sessions, value: &str) -> sealed_session::Session<u32> {
    sessions
        .load::<u32>(&request(&[(NAME, value)]))
        .await
        .unwrap()
}

#[tokio::test]
async fn browser_session_or_persistent_decides_max_age() {
    let clock = ManualClock::new(START);
    let sessions = Sessions::new(ring(&[1]), remembering(&clock)).unwrap();
    let (_, response) = with_lifetime(&sessions, SessionLifetime::browser_session()).await;
    assert_eq!(the_cookie(&response).max_age(), None);
    let (_, response) = with_lifetime(&sessions, remember_me()).await;
    assert_eq!(
        the_cookie(&response).max_age(),
        Some(time::Duration::seconds(30 * DAY as i64))
    );
    // Persistent overrides a configuration of browser-session cookies.
    let browser_config =
        Sessions::new(ring(&[1]), remembering(&clock).with_browser_session(true)).unwrap();
    let (_, response) = with_lifetime(&browser_config, SessionLifetime::persistent()).await;
    assert_eq!(
        the_cookie(&response).max_age(),
        Some(time::Duration::seconds(DAY as i64))
    );
    // Version 2 only when a lifetime is chosen.
    let plain = sealed(&sessions, 1u32).await;
    assert_eq!(sessions.inspect(&plain).unwrap().version, 1);
}

#[tokio::test]
async fn a_longer_lifetime_is_enforced_on_the_server_within_the_bounds() {
    let clock = ManualClock::new(START);
    let sessions = Sessions::new(ring(&[1]), remembering(&clock)).unwrap();
    let (remembered, _) = with_lifetime(&sessions, remember_me()).await;
    let plain = sealed(&sessions, 1u32).await;
    clock.advance(secs(2 * DAY));
    assert_eq!(
        load(&sessions, &plain).await.rejection(),
        Some(Rejection::IdleExpired)
    );
    let session = load(&sessions, &remembered).await;
    assert_eq!(session.rejection(), None);
    assert_eq!(session.lifetime(), remember_me());
    clock.advance(secs(28 * DAY));
    assert_eq!(
        load(&sessions, &remembered).await.rejection(),
        Some(Rejection::IdleExpired)
    );

    // Asking past the bound gets the bound.
    let clock = ManualClock::new(START);
    let sessions = Sessions::new(ring(&[1]), remembering(&clock)).unwrap();
    let (greedy, response) = with_lifetime(
        &sessions,
        SessionLifetime::persistent().with_idle_timeout(secs(365 * DAY)),
    )
    .await;
    assert_eq!(
        the_cookie(&response).max_age(),
        Some(time::Duration::seconds(7 * DAY as i64)),
        "the configured absolute timeout still applies"
    );
    clock.advance(secs(30 * DAY - 1));
    let inspection = sessions.inspect(&greedy).unwrap();
    assert_eq!(inspection.status, Err(Rejection::AbsoluteExpired));
    let session = load(&sessions, &greedy).await;
    assert_eq!(session.rejection(), Some(Rejection::AbsoluteExpired));
}

#[tokio::test]
async fn lowering_a_bound_shortens_existing_sessions_at_once() {
    let clock = ManualClock::new(START);
    let sessions = Sessions::new(ring(&[1]), remembering(&clock)).unwrap();
    let (remembered, _) = with_lifetime(&sessions, remember_me()).await;
    clock.advance(secs(3 * DAY));
    assert_eq!(load(&sessions, &remembered).await.rejection(), None);
    // The operator lowers the bound to 2 days (after a breach, say).
    let stricter = Sessions::new(
        ring(&[1]),
        remembering(&clock).with_max_idle_timeout(Some(secs(2 * DAY))),
    )
    .unwrap();
    assert_eq!(
        load(&stricter, &remembered).await.rejection(),
        Some(Rejection::IdleExpired)
    );
}

#[tokio::test]
async fn a_shorter_lifetime_needs_no_bound() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (short, response) = with_lifetime(
        &sessions,
        SessionLifetime::configured().with_idle_timeout(secs(15 * 60)),
    )
    .await;
    assert_eq!(
        the_cookie(&response).max_age(),
        Some(time::Duration::seconds(15 * 60))
    );
    clock.advance(secs(15 * 60));
    assert_eq!(
        load(&sessions, &short).await.rejection(),
        Some(Rejection::IdleExpired)
    );
}

#[tokio::test]
async fn the_lifetime_survives_renew_and_rolling_and_destroy_resets_it() {
    let clock = ManualClock::new(START);
    let sessions = Sessions::new(ring(&[1]), remembering(&clock)).unwrap();
    let (value, _) = with_lifetime(&sessions, remember_me()).await;
    let (session, response, ()) =
        round::<u32, _>(&sessions, &request(&[(NAME, &value)]), |s| s.renew()).await;
    assert_eq!(session.lifetime(), remember_me());
    let renewed = the_cookie(&response).value().to_owned();
    assert_eq!(sessions.inspect(&renewed).unwrap().lifetime, remember_me());
    // A rolling re-issue (past a tenth of the 30-day window) keeps it.
    clock.advance(secs(4 * DAY));
    let (_, response, ()) = round::<u32, _>(&sessions, &request(&[(NAME, &renewed)]), |_| ()).await;
    let rolled = the_cookie(&response);
    assert_eq!(
        rolled.max_age(),
        Some(time::Duration::seconds(30 * DAY as i64))
    );
    assert_eq!(
        sessions.inspect(rolled.value()).unwrap().lifetime,
        remember_me()
    );
    // Logout, then a value set afterwards: a new session with the
    // configured lifetime.
    let (session, response, ()) =
        round::<u32, _>(&sessions, &request(&[(NAME, rolled.value())]), |s| {
            s.destroy();
            s.set(9);
        })
        .await;
    assert!(session.lifetime().is_configured());
    let after = the_cookie(&response);
    assert_eq!(sessions.inspect(after.value()).unwrap().version, 1);
    assert_eq!(after.max_age(), Some(time::Duration::seconds(DAY as i64)));
}

#[tokio::test]
async fn changing_only_the_lifetime_reissues_the_cookie_even_in_the_store() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = Sessions::new(
        ring(&[1]),
        remembering(&clock)
            .with_shared_store(store.clone())
            .with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let value = sealed(&sessions, 5u32).await;
    let (session, response, ()) = round::<u32, _>(&sessions, &request(&[(NAME, &value)]), |s| {
        s.set_lifetime(remember_me())
    })
    .await;
    assert!(session.in_store());
    let cookie = the_cookie(&response);
    assert_eq!(
        cookie.max_age(),
        Some(time::Duration::seconds(30 * DAY as i64))
    );
    // The entry lives as long as the remembered session can.
    clock.advance(secs(3 * DAY));
    let session = load(&sessions, cookie.value()).await;
    assert_eq!((session.rejection(), session.get()), (None, 5));
}

#[tokio::test]
async fn a_revocation_outlives_remembered_copies() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = Sessions::new(
        ring(&[1]),
        remembering(&clock)
            .with_shared_store(store.clone())
            .with_revocation(true),
    )
    .unwrap();
    let (copy, _) = with_lifetime(&sessions, remember_me()).await;
    // The user logs out from a request whose session carries the
    // configured lifetime (the choice was reset elsewhere, say): the
    // marker must still outlast the remembered copy.
    let (_, _, ()) = round::<u32, _>(&sessions, &request(&[(NAME, &copy)]), |s| {
        s.set_lifetime(SessionLifetime::configured());
        s.destroy();
    })
    .await;
    for days in [2, 10, 29] {
        clock.set(START + days * DAY);
        assert_eq!(
            load(&sessions, &copy).await.rejection(),
            Some(Rejection::Revoked),
            "day {days}"
        );
    }
}
