//! A second adversarial review, of the fixes the first one led to
//! (`tests/schema_lifetime_attacks.rs`): logouts over cookies of a newer
//! schema, lifetimes that end a session, mixed bounds, extreme timeouts.
//! Each test that is not `held_*` reproduced a defect of those fixes (it
//! failed then) and now checks its fix; each `held_*` test records an
//! attack that they withstood. Limits found and documented rather than
//! fixed (README, "Changing the session type" and "Per-session
//! lifetime"; in full in docs/session-type.md): a logout ends only the first of two cookies of one name, a
//! newer-schema cookie is protected only when it comes before the one that
//! opens, and instances must share their lifetime bounds.

mod common;

use std::sync::Arc;

use common::*;
use http::HeaderMap;
use sealed_session::{
    ManualClock, MemoryStore, Rejection, SaveError, Schema, SessionConfig, SessionLifetime,
    Sessions, StoreMode,
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Login {
    user: String,
    flash: Option<String>,
}

fn newer_and_older(
    clock: &ManualClock,
    store: &Arc<MemoryStore>,
    replace: bool,
    mode: StoreMode,
) -> (Sessions, Sessions) {
    let with_store = |c: SessionConfig| {
        c.with_shared_store(store.clone())
            .with_revocation(true)
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
// R1: `with_replace_newer_schemas(true)` turns the logout of a newer
// schema's session into a removal cookie only: the id is neither revoked
// nor its store entry deleted, so a copy of the cookie (stolen, or on
// another device) stays logged in on every newer instance. Its docs say
// "A logout works either way".
// ---------------------------------------------------------------------

#[tokio::test]
async fn replacing_newer_schemas_still_revokes_on_logout() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, true, StoreMode::Cookie);
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    // Logout on the rolled-back instance.
    let session = old.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(2)));
    session.destroy();
    let mut response = HeaderMap::new();
    old.save(&session, &mut response).await.unwrap();
    assert_eq!(the_cookie(&response).value(), "", "the removal cookie");
    // A copy of the logged-out cookie reaches a newer instance.
    clock.advance(secs(60));
    let again = new.load::<Two>(&cookie_of(&value)).await.unwrap();
    assert_eq!(
        again.rejection(),
        Some(Rejection::Revoked),
        "the logged-out session is still alive with {:?}",
        again.get()
    );
}

#[tokio::test]
async fn replacing_newer_schemas_still_deletes_the_entry_on_logout() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, true, StoreMode::Server);
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    let key = new.inspect(&value).unwrap().store_key.unwrap();
    let session = old.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    session.destroy();
    old.save(&session, &mut HeaderMap::new()).await.unwrap();
    use sealed_session::SessionStore;
    assert!(
        store.load(&key).await.unwrap().is_none(),
        "the logged-out session's store entry was left behind"
    );
}

// ---------------------------------------------------------------------
// R2: the rule "a lifetime shortened below the session's age ends the
// session as destroy does" sets the flags of destroy in `plan` but keeps
// the id and the value. After the save that sent the removal cookie the
// session still holds the logged-in value, and a value set afterwards
// (a "you are logged out" flash, a second save, or a clone's change that
// arrived during the store I/O) is written under the *ended* id with the
// old value: without revocation, the ended session carries on; with it,
// the new cookie is born revoked.
// ---------------------------------------------------------------------

async fn ended_by_lifetime(
    sessions: &Sessions,
    clock: &ManualClock,
) -> (String, sealed_session::Session<Login>) {
    let value = sealed(
        sessions,
        Login {
            user: "ann".into(),
            flash: None,
        },
    )
    .await;
    clock.advance(secs(2 * 3600));
    let session = sessions.load::<Login>(&cookie_of(&value)).await.unwrap();
    session.set_lifetime(SessionLifetime::configured().with_absolute_timeout(secs(3600)));
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    assert_eq!(
        the_cookie(&response).value(),
        "",
        "ended: the removal cookie"
    );
    (value, session)
}

#[tokio::test]
async fn a_lifetime_end_clears_the_value_as_destroy_does() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let (_, session) = ended_by_lifetime(&sessions, &clock).await;
    assert_eq!(
        session.get(),
        Login::default(),
        "the ended session still holds the logged-in value"
    );
}

#[tokio::test]
async fn a_value_set_after_a_lifetime_end_is_a_new_session() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let (value, session) = ended_by_lifetime(&sessions, &clock).await;
    let old_id = sessions.inspect(&value).unwrap().session_id;
    session.update(|v| v.flash = Some("you are logged out".into()));
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    let written = the_cookie(&response).value().to_owned();
    let next = sessions.load::<Login>(&cookie_of(&written)).await.unwrap();
    assert_ne!(
        sessions.inspect(&written).unwrap().session_id,
        old_id,
        "written under the ended id"
    );
    assert_eq!(
        next.get().user,
        "",
        "the ended login carries on: {:?}",
        next.get()
    );
}

#[tokio::test]
async fn a_value_set_after_a_lifetime_end_is_not_born_revoked() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = instance(&clock, |c| c.with_shared_store(store).with_revocation(true));
    let (_, session) = ended_by_lifetime(&sessions, &clock).await;
    session.update(|v| v.flash = Some("you are logged out".into()));
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    let next = sessions
        .load::<Login>(&request_after(&response))
        .await
        .unwrap();
    assert_eq!(next.rejection(), None, "the flash session is refused");
    assert_eq!(next.get().flash.as_deref(), Some("you are logged out"));
}

// ---------------------------------------------------------------------
// R3: the marker TTL covers the loaded cookie's own sealed lifetime, but
// not that of other copies of the id. A lower-bound instance re-issues
// any remembered cookie it sees, capped (even on a read-only request);
// a logout then loads the capped copy and sizes the marker for it, and
// a copy sealed earlier by a higher-bound instance (stolen, another tab's
// older cookie) opens again there once the marker expires.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_logout_after_a_reissue_on_a_lower_bound_instance_outlasts_the_remembered_copy() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let with_store = |c: SessionConfig| c.with_shared_store(store.clone()).with_revocation(true);
    let high = instance(&clock, |c| {
        with_store(c)
            .with_max_idle_timeout(Some(secs(30 * DAY)))
            .with_max_absolute_timeout(Some(secs(90 * DAY)))
    });
    let low = instance(&clock, with_store);
    let (_, response, ()) = round::<u32, _>(&high, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(
            SessionLifetime::persistent()
                .with_idle_timeout(secs(30 * DAY))
                .with_absolute_timeout(secs(90 * DAY)),
        );
    })
    .await;
    let remembered = the_cookie(&response).value().to_owned();
    // A request on the low instance past its rolling threshold re-issues
    // the cookie: with the lifetime as sealed, not capped by the low
    // instance's bounds (they are applied where it is used).
    clock.advance(secs(3 * 3600));
    let (_, response, ()) = round::<u32, _>(&low, &cookie_of(&remembered), |_| ()).await;
    let reissued = the_cookie(&response).value().to_owned();
    assert_eq!(
        low.inspect(&reissued).unwrap().lifetime.idle_timeout(),
        Some(secs(30 * DAY))
    );
    // The logout, on the low instance, with the browser's cookie.
    round::<u32, _>(&low, &cookie_of(&reissued), |s| s.destroy()).await;
    clock.advance(secs(3 * DAY));
    let again = high.load::<u32>(&cookie_of(&remembered)).await.unwrap();
    assert_eq!(
        again.rejection(),
        Some(Rejection::Revoked),
        "the logged-out remembered copy opens again on the high instance"
    );
}

// ---------------------------------------------------------------------
// Held attacks.
// ---------------------------------------------------------------------

#[tokio::test]
async fn held_destroy_then_set_on_an_unreadable_session_carries_nothing() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, false, StoreMode::Server);
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    let info = new.inspect(&value).unwrap();
    clock.advance(secs(3600));
    let session = old.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    assert!(session.is_new());
    assert!(!session.in_store());
    assert_ne!(session.id(), info.session_id);
    assert!(!format!("{session:?}").contains(&format!("{}", info.session_id)));
    // Renew and set stay refused; nothing is ended.
    session.renew();
    assert!(matches!(
        old.save(&session, &mut HeaderMap::new()).await,
        Err(SaveError::NewerSchema { version: 2 })
    ));
    let session = old.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    session.set(CountV1 { count: 9 });
    session.set_lifetime(SessionLifetime::browser_session());
    let mut response = HeaderMap::new();
    assert!(old.save(&session, &mut response).await.is_err());
    assert!(response.is_empty());
    let still = new.load::<Two>(&cookie_of(&value)).await.unwrap();
    assert_eq!(still.rejection(), None);
    // Logout with a flash: a brand-new session.
    let session = old.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    session.destroy();
    session.set(CountV1 { count: 3 });
    let mut response = HeaderMap::new();
    old.save(&session, &mut response).await.unwrap();
    let written = the_cookie(&response).value().to_owned();
    let seen = old.inspect(&written).unwrap();
    assert_ne!(seen.session_id, info.session_id);
    assert_ne!(seen.store_key, info.store_key);
    assert!(seen.created >= START + 3600);
    let revoked = new.load::<Two>(&cookie_of(&value)).await.unwrap();
    assert_eq!(revoked.rejection(), Some(Rejection::Revoked));
    let next = old.load::<CountV1>(&cookie_of(&written)).await.unwrap();
    assert_eq!(next.get(), CountV1 { count: 3 });
}

#[tokio::test]
async fn held_an_unreadable_session_without_revocation_deletes_only_its_own_entry() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, false, StoreMode::Server);
    let victim = sealed(&new, Two { a: 5, b: 5 }).await;
    let attacker = sealed(&new, Two { a: 6, b: 6 }).await;
    // The attacker logs out on an old instance, with the victim's cookie
    // placed after theirs: only the first newer cookie is ended.
    let both = request(&[(NAME, &attacker), (NAME, &victim)]);
    let session = old.load::<CountV1>(&both).await.unwrap();
    session.destroy();
    old.save(&session, &mut HeaderMap::new()).await.unwrap();
    let v = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
    assert_eq!(v.get(), Two { a: 5, b: 5 });
}

// ---------------------------------------------------------------------
// R5 (low): store TTLs are clamped at ten years, but a chosen timeout is
// not: with a bound of "none" a session may seal a 20-year idle timeout,
// and after a logout its copies open again once the 10-year marker is
// gone. (Clamp the sealed timeouts too, or refuse bounds above MAX_TTL.)
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_marker_outlasts_a_chosen_timeout_above_ten_years() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = instance(&clock, |c| {
        c.with_shared_store(store)
            .with_revocation(true)
            .with_absolute_timeout(None)
            .with_max_idle_timeout(None)
    });
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(SessionLifetime::persistent().with_idle_timeout(secs(20 * 365 * DAY)));
    })
    .await;
    let copy = the_cookie(&response).value().to_owned();
    round::<u32, _>(&sessions, &cookie_of(&copy), |s| s.destroy()).await;
    clock.advance(secs(11 * 365 * DAY));
    let again = sessions.load::<u32>(&cookie_of(&copy)).await.unwrap();
    // Sealed timeouts are capped within what a marker can outlast (ten
    // years): the copy is refused, revoked or expired.
    assert!(
        matches!(
            again.rejection(),
            Some(Rejection::Revoked | Rejection::IdleExpired)
        ),
        "the logged-out copy opens again after ten years: {:?}",
        again.rejection()
    );
}

// ---------------------------------------------------------------------
// Held: trailing defaults after zero-sized fields never mis-assign.
// ---------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct UnitS;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct EmptyTuple();

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ZOld {
    a: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ZNew {
    a: u8,
    u: (),
    s: UnitS,
    t: EmptyTuple,
    arr: [u8; 0],
    #[serde(skip)]
    skipped: u8,
    #[serde(default)]
    o: Option<u8>,
    #[serde(default)]
    v: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ZRequired {
    a: u8,
    u: (),
    o: Option<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ZOptBeforeUnit {
    a: u8,
    #[serde(default)]
    o: Option<u8>,
    #[serde(default)]
    u: (),
    #[serde(default = "nine")]
    n: u8,
}

fn nine() -> u8 {
    9
}

#[tokio::test]
async fn held_trailing_zero_sized_fields_decode_without_mis_assignment() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let old = sealed(&sessions, ZOld { a: 5 }).await;
    let s = sessions.load::<ZNew>(&cookie_of(&old)).await.unwrap();
    assert_eq!(s.rejection(), None);
    assert_eq!(
        s.get(),
        ZNew {
            a: 5,
            ..ZNew::default()
        }
    );
    let s = sessions.load::<ZRequired>(&cookie_of(&old)).await.unwrap();
    assert_eq!(s.rejection(), Some(Rejection::Incompatible));
    let s = sessions
        .load::<ZOptBeforeUnit>(&cookie_of(&old))
        .await
        .unwrap();
    assert_eq!(s.rejection(), None);
    assert_eq!(
        s.get(),
        ZOptBeforeUnit {
            a: 5,
            o: None,
            u: (),
            n: 9
        }
    );
    // A value with the optional field present: strict, never shortened.
    let full = sealed(
        &sessions,
        ZOptBeforeUnit {
            a: 1,
            o: Some(2),
            u: (),
            n: 3,
        },
    )
    .await;
    let s = sessions
        .load::<ZOptBeforeUnit>(&cookie_of(&full))
        .await
        .unwrap();
    assert_eq!(s.get().n, 3);
    // Cut after `o`: `n` defaults, `o` kept.
    let mid = sealed(&sessions, (1u8, Some(2u8))).await;
    let s = sessions
        .load::<ZOptBeforeUnit>(&cookie_of(&mid))
        .await
        .unwrap();
    assert_eq!(
        s.get(),
        ZOptBeforeUnit {
            a: 1,
            o: Some(2),
            u: (),
            n: 9
        }
    );
}

// ---------------------------------------------------------------------
// R6 (low): `in_store()` answers false for any session with a newer
// cookie beside it, also when the session that loaded (the valid cookie
// `protect` kept) does live in the store.
// ---------------------------------------------------------------------

#[tokio::test]
async fn in_store_is_true_for_a_protected_store_held_session() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, false, StoreMode::Server);
    let logged_in = sealed(&old, CountV1 { count: 7 }).await;
    let newer = sealed(&new, Two { a: 1, b: 2 }).await;
    let alone = old.load::<CountV1>(&cookie_of(&logged_in)).await.unwrap();
    assert!(alone.in_store());
    let both = request(&[(NAME, &newer), (NAME, &logged_in)]);
    let session = old.load::<CountV1>(&both).await.unwrap();
    assert_eq!(session.get(), CountV1 { count: 7 });
    assert!(
        session.in_store(),
        "the loaded session's value is in the store"
    );
}

// ---------------------------------------------------------------------
// R7 (low): after the logout of an unreadable session has been saved
// (the removal cookie sent, the id ended), the session still refuses
// every write as `NewerSchema`: a value set afterwards in the same
// request (a second save) fails, though no newer cookie is left to
// protect. `destroy()` + `set()` before the save works.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_value_set_after_an_unreadable_logout_was_saved_is_written() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let (new, old) = newer_and_older(&clock, &store, false, StoreMode::Cookie);
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    let session = old.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    session.destroy();
    let mut response = HeaderMap::new();
    old.save(&session, &mut response).await.unwrap();
    assert_eq!(the_cookie(&response).value(), "");
    session.set(CountV1 { count: 1 });
    let mut response = HeaderMap::new();
    let saved = old.save(&session, &mut response).await;
    assert!(saved.is_ok(), "{saved:?}");
}
