//! Issue 17, item 6: the findings of a review of newer-schema
//! replacement, same-name cookies, unbounded lifetime bounds and logins on
//! old sessions, each reproduced with the public API. Every test here
//! failed on the code before its fix.

mod common;

use std::sync::Arc;

use common::*;
use http::HeaderMap;
use sealed_session::{
    ManualClock, MemoryStore, Rejection, SaveError, Schema, SessionConfig, SessionLifetime,
    SessionStore, Sessions, StoreMode,
};
use serde::{Deserialize, Serialize};

const NAME: &str = "__Host-session";
const DAY: u64 = 24 * 3600;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct CountV1 {
    count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Two {
    a: u64,
    b: u64,
}

/// A newer instance (schema 2) and an older one (schema 1) on one store.
fn newer_and_older(
    clock: &ManualClock,
    store: &Arc<MemoryStore>,
    revocation: bool,
    replace: bool,
    mode: StoreMode,
) -> (Sessions, Sessions) {
    let with_store = |c: SessionConfig| {
        c.with_shared_store(store.clone())
            .with_revocation(revocation)
            .with_store_mode(mode)
    };
    let new = instance(clock, |c| {
        with_store(c)
            .with_schema(Schema::<Two>::new(2).migrate(1, |o: CountV1| Two { a: o.count, b: 0 }))
    });
    let old = instance(clock, |c| {
        with_store(c)
            .with_schema(Schema::<CountV1>::new(1))
            .with_replace_newer_schemas(replace)
    });
    (new, old)
}

// ---------------------------------------------------------------------
// Finding 1 (medium): with `with_replace_newer_schemas(true)`, a request
// whose handler changes nothing still replaces a newer-schema cookie (the
// fresh session has no schema, so the plan writes), but did not end that
// id.
// ---------------------------------------------------------------------

/// A request on the old instance over the newer cookie `value` that only
/// reads; returns the cookie it wrote.
async fn untouched_request(old: &Sessions, value: &str) -> String {
    let (_, response, read) = round::<CountV1, _>(old, &cookie_of(value), |s| {
        assert_eq!(s.rejection(), Some(Rejection::NewerSchema(2)));
        s.get()
    })
    .await;
    assert_eq!(read, CountV1::default());
    let written = the_cookie(&response).value().to_owned();
    assert!(!written.is_empty(), "the newer cookie is replaced");
    written
}

#[tokio::test]
async fn an_untouched_replacement_revokes_the_newer_id() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, true, true, StoreMode::Cookie);
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    let written = untouched_request(&old, &value).await;
    assert_ne!(
        old.inspect(&written).unwrap().session_id,
        new.inspect(&value).unwrap().session_id
    );
    // A copy of the replaced cookie reaches a newer instance.
    let copy = new.load::<Two>(&cookie_of(&value)).await.unwrap();
    assert_eq!(
        copy.rejection(),
        Some(Rejection::Revoked),
        "the replaced session still opens with {:?}",
        copy.get()
    );
}

#[tokio::test]
async fn an_untouched_replacement_does_not_continue_the_newer_entry() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, false, true, StoreMode::Server);
    // The victim's cookie, of which an attacker holds a copy.
    let stolen = sealed(&new, Two { a: 1, b: 2 }).await;
    let old_key = new.inspect(&stolen).unwrap().store_key.unwrap();
    let written = untouched_request(&old, &stolen).await;
    assert_ne!(
        old.inspect(&written).unwrap().store_key,
        Some(old_key),
        "the replacement continues the replaced session's entry"
    );
    assert!(
        store.load(&old_key).await.unwrap().is_none(),
        "the replaced session's entry was left behind"
    );
    // The victim logs in on the new cookie.
    let (_, response, ()) =
        round::<CountV1, _>(&old, &cookie_of(&written), |s| s.set(CountV1 { count: 42 })).await;
    assert!(set_cookies(&response).is_empty(), "the entry was replaced");
    // The stolen copy must not read (nor write) the victim's new session.
    let copy = old.load::<CountV1>(&cookie_of(&stolen)).await.unwrap();
    assert_eq!(
        copy.rejection(),
        Some(Rejection::MissingStoreEntry),
        "the stolen copy reads {:?}",
        copy.get()
    );
}

// ---------------------------------------------------------------------
// Finding 2 (low): a newer-schema cookie after another refused cookie of
// the same name was not protected (only the first refusal counted): an
// old instance overwrote it.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_newer_cookie_after_a_refused_one_is_still_protected() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, true, false, StoreMode::Cookie);
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    // Another cookie of that name (another path, or planted) comes first.
    let headers = request(&[(NAME, "not-a-session"), (NAME, &value)]);
    let session = old.load::<CountV1>(&headers).await.unwrap();
    assert_ne!(session.rejection(), None);
    session.set(CountV1 { count: 7 });
    let mut response = HeaderMap::new();
    let saved = old.save(&session, &mut response).await;
    assert_eq!(
        saved,
        Err(SaveError::NewerSchema { version: 2 }),
        "the newer cookie was overwritten: {:?}",
        set_cookies(&response)
    );
    assert!(set_cookies(&response).is_empty());
}

// ---------------------------------------------------------------------
// Finding 3 (low): with the bounds turned off, a revocation marker lived
// 400 days, while a remembered copy can live about ten years.
// ---------------------------------------------------------------------

#[tokio::test]
async fn markers_outlive_remembered_copies_when_the_bounds_are_off() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = instance(&clock, |c| {
        c.with_shared_store(store.clone())
            .with_revocation(true)
            .with_max_idle_timeout(None)
            .with_max_absolute_timeout(None)
    });
    let five_years = secs(5 * 365 * DAY);
    // Login with "remember me" for five years: the attacker copies it.
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(
            SessionLifetime::persistent()
                .with_idle_timeout(five_years)
                .with_absolute_timeout(five_years),
        );
    })
    .await;
    let stolen = the_cookie(&response).value().to_owned();
    // The user turns "remember me" off (same id), then logs out.
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&stolen), |s| {
        s.set_lifetime(SessionLifetime::configured())
    })
    .await;
    let current = the_cookie(&response).value().to_owned();
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&current), |s| s.destroy()).await;
    assert_eq!(the_cookie(&response).value(), "", "logged out");
    // More than 400 days later, well within the copy's five years.
    clock.advance(secs(401 * DAY));
    let copy = sessions.load::<u32>(&cookie_of(&stolen)).await.unwrap();
    assert_eq!(
        copy.rejection(),
        Some(Rejection::Revoked),
        "a logged-out copy opens again with {}",
        copy.get()
    );
}

// ---------------------------------------------------------------------
// Finding 4 (low, availability): a login (`renew` + a short absolute
// timeout) on an anonymous session older than that timeout failed with
// `Ended` on every try: the new lifetime was checked against the old
// session's `created`.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_login_with_a_short_lifetime_on_an_old_session_succeeds() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let anonymous = sealed(&sessions, 1u32).await;
    clock.advance(secs(2 * 3600));
    let session = sessions.load::<u32>(&cookie_of(&anonymous)).await.unwrap();
    assert_eq!(session.rejection(), None);
    session.renew();
    session.set_lifetime(SessionLifetime::browser_session().with_absolute_timeout(secs(3600)));
    let mut response = HeaderMap::new();
    let saved = sessions.save(&session, &mut response).await;
    assert_eq!(saved, Ok(()), "the login fails");
    let written = the_cookie(&response).value().to_owned();
    let found = sessions.inspect(&written).unwrap();
    assert_eq!(found.created, START + 2 * 3600, "runs from the renewal");
    let next = sessions.load::<u32>(&cookie_of(&written)).await.unwrap();
    assert_eq!((next.rejection(), next.get()), (None, 1));
    // ...and ends an hour after it.
    clock.advance(secs(3600));
    let late = sessions.load::<u32>(&cookie_of(&written)).await.unwrap();
    assert_eq!(late.rejection(), Some(Rejection::AbsoluteExpired));
}

// ---------------------------------------------------------------------
// Also checked: `Lifetime::cap` added `skew + 1` without saturating, so
// saving a chosen lifetime under a huge configured skew panicked.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_huge_skew_does_not_overflow_the_lifetime_cap() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c.with_clock_skew(secs(u64::MAX)));
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(SessionLifetime::persistent().with_idle_timeout(secs(3600)));
    })
    .await;
    assert_eq!(set_cookies(&response).len(), 1);
}
