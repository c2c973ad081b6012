//! Attacks on wire format v2, `Schema<T>` (migrations, two-phase writes),
//! per-session lifetimes and trailing-field decoding, from an adversarial
//! review with a fresh context. Each test that is not `held_*` reproduced
//! a defect of the first version (it failed then) and now checks its fix;
//! each `held_*` test records an attack that the first version withstood.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::HeaderMap;
use sealed_session::{
    ManualClock, MemoryStore, Rejection, SaveError, Schema, SessionConfig, SessionLifetime,
    Sessions, StoreMode,
};
use serde::{Deserialize, Serialize};

const NAME: &str = "__Host-session";
const DAY: u64 = 24 * 3600;

// ---------------------------------------------------------------------
// Finding 1: a session loaded at a schema version between the write
// version and the current one is re-sealed with the *current* type's
// postcard bytes labelled with the *intermediate* version: misread later.
// ---------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct CountV1 {
    count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct CountV2 {
    count: u64,
    limit: u64,
}

/// Version 3 swaps the order of the two fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct CountV3 {
    limit: u64,
    count: u64,
}

fn c1_to_c2(old: CountV1) -> CountV2 {
    CountV2 {
        count: old.count,
        limit: 100,
    }
}

fn c2_to_c3(old: CountV2) -> CountV3 {
    CountV3 {
        limit: old.limit,
        count: old.count,
    }
}

#[tokio::test]
async fn write_as_never_labels_the_current_types_bytes_with_an_intermediate_version() {
    let clock = ManualClock::new(START);
    // A release at version 2 (phase 2 of 1 → 2) wrote this cookie.
    let v2 = instance(&clock, |c| {
        c.with_schema(Schema::<CountV2>::new(2).migrate(1, c1_to_c2))
    });
    let value = sealed(
        &v2,
        CountV2 {
            count: 5,
            limit: 100,
        },
    )
    .await;
    assert_eq!(v2.inspect(&value).unwrap().schema, Some(2));
    // A release at version 3 that still writes version 1 (phase 1 while
    // some instances only read 1): a legal configuration, `check` accepts it.
    let v3 = instance(&clock, |c| {
        c.with_schema(
            Schema::<CountV3>::new(3)
                .migrate(1, c1_to_c2)
                .migrate(2, c2_to_c3)
                .write_as(1, |v: &CountV3| CountV1 { count: v.count }),
        )
    });
    let (session, response, ()) =
        round::<CountV3, _>(&v3, &cookie_of(&value), |s| s.update(|v| v.count += 1)).await;
    assert_eq!(
        session.get(),
        CountV3 {
            limit: 100,
            count: 6
        }
    );
    let written = the_cookie(&response).value().to_owned();
    // Never written lower than loaded: schema 2. But the bytes must be a
    // CountV2, since that is what version 2 means.
    let again = v3.load::<CountV3>(&cookie_of(&written)).await.unwrap();
    assert_eq!(again.rejection(), None);
    assert_eq!(
        again.get(),
        CountV3 {
            limit: 100,
            count: 6
        },
        "the value written at schema {:?} is misread",
        v3.inspect(&written).unwrap().schema
    );
    // Only the write version and the current one can be encoded: a value
    // loaded at version 2 is written at 3 (never lower), which a version 2
    // instance refuses as newer rather than misread.
    assert_eq!(v3.inspect(&written).unwrap().schema, Some(3));
    let on_v2 = v2.load::<CountV2>(&cookie_of(&written)).await.unwrap();
    assert_eq!(on_v2.rejection(), Some(Rejection::NewerSchema(3)));
}

// (Finding 2, a field added at the end with no schema version during a
// rolling deploy, is a documented limit: README, "Changing the session
// type".)

// ---------------------------------------------------------------------
// Finding 3: a store-held session whose only change is its lifetime, and
// whose entry another request took meanwhile (moved back into its
// cookie): save returns Ok and writes nothing, so the lifetime the
// handler set is silently lost (e.g. "log me out when the browser closes").
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_lifetime_change_is_not_dropped_silently_when_the_entry_was_taken() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = Sessions::new(
        ring(&[1]),
        config(&clock)
            .with_shared_store(store.clone())
            .with_max_idle_timeout(Some(secs(30 * DAY))),
    )
    .unwrap();
    // Too large for the cookie: store-held.
    let big = "x".repeat(5000);
    let (_, response, ()) = round::<String, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(big.clone());
        s.set_lifetime(SessionLifetime::persistent().with_idle_timeout(secs(30 * DAY)));
    })
    .await;
    let value = the_cookie(&response).value().to_owned();
    let a = sessions.load::<String>(&cookie_of(&value)).await.unwrap();
    let b = sessions.load::<String>(&cookie_of(&value)).await.unwrap();
    assert!(a.in_store() && b.in_store());
    // B shrinks the value: it moves back into its cookie, taking the entry.
    b.set("small".into());
    sessions.save(&b, &mut HeaderMap::new()).await.unwrap();
    // A only shortens the lifetime.
    a.set_lifetime(SessionLifetime::browser_session().with_idle_timeout(secs(600)));
    let mut response = HeaderMap::new();
    let saved = sessions.save(&a, &mut response).await;
    assert!(
        !(saved.is_ok() && response.is_empty()),
        "save reported success but the new lifetime was never written"
    );
}

// ---------------------------------------------------------------------
// Finding 4: the newer-schema guard refuses a destroy outright, so the
// id the request did load is neither revoked nor its entry deleted.
// ---------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Two {
    a: u64,
    b: u64,
}

#[tokio::test]
async fn a_newer_schema_cookie_beside_does_not_block_the_logout_of_the_loaded_id() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let with_store = |c: SessionConfig| c.with_shared_store(store.clone()).with_revocation(true);
    let old = instance(&clock, |c| {
        with_store(c).with_schema(Schema::<CountV1>::new(1))
    });
    let new = instance(&clock, |c| {
        with_store(c)
            .with_schema(Schema::<Two>::new(2).migrate(1, |o: CountV1| Two { a: o.count, b: 0 }))
    });
    // The user's logged-in session, and another cookie of the same name
    // written by the newer release (another path or domain, or tossed).
    let logged_in = sealed(&old, CountV1 { count: 7 }).await;
    let newer = sealed(&new, Two { a: 1, b: 2 }).await;
    // Logout on an old instance: the newer cookie comes first.
    let both = request(&[(NAME, &newer), (NAME, &logged_in)]);
    let session = old.load::<CountV1>(&both).await.unwrap();
    assert_eq!(session.get(), CountV1 { count: 7 });
    session.destroy();
    let saved = old.save(&session, &mut HeaderMap::new()).await;
    // The removal cookie must not be sent, but the id the request loaded
    // must still end.
    let again = old.load::<CountV1>(&cookie_of(&logged_in)).await.unwrap();
    assert_eq!(
        again.rejection(),
        Some(Rejection::Revoked),
        "logout failed ({saved:?}) and the logged-in id still opens"
    );
}

// ---------------------------------------------------------------------
// Finding 5: after a rollback to a release that does not know the newer
// schema, a browser holding a newer-schema cookie can never log in (every
// save is `NewerSchema`, the cookie is never replaced) until that cookie
// expires: with "remember me", for up to the longest absolute timeout.
// ---------------------------------------------------------------------

#[tokio::test]
async fn after_a_rollback_the_operator_can_let_newer_cookies_go() {
    let clock = ManualClock::new(START);
    let new = instance(&clock, |c| {
        c.with_schema(Schema::<Two>::new(2).migrate(1, |o: CountV1| Two { a: o.count, b: 0 }))
    });
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    // The release is rolled back: no instance knows version 2 any more.
    let rolled_back = instance(&clock, |c| c.with_schema(Schema::<CountV1>::new(1)));
    clock.advance(secs(3600));
    let session = rolled_back
        .load::<CountV1>(&cookie_of(&value))
        .await
        .unwrap();
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(2)));
    // Login: refused by default (the cookie is kept for newer instances).
    let login = |session: &sealed_session::Session<CountV1>| {
        session.renew();
        session.set(CountV1 { count: 1 });
    };
    login(&session);
    let saved = rolled_back.save(&session, &mut HeaderMap::new()).await;
    assert_eq!(saved, Err(SaveError::NewerSchema { version: 2 }));
    // The operator of the rolled-back release lets such cookies go.
    let accepting = instance(&clock, |c| {
        c.with_schema(Schema::<CountV1>::new(1))
            .with_replace_newer_schemas(true)
    });
    let session = accepting.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(2)));
    login(&session);
    let mut response = HeaderMap::new();
    accepting.save(&session, &mut response).await.unwrap();
    let next = accepting
        .load::<CountV1>(&request_after(&response))
        .await
        .unwrap();
    assert_eq!(next.get(), CountV1 { count: 1 });
}

// ---------------------------------------------------------------------
// Finding 6: `SessionLifetime` docs say a chosen timeout is capped by the
// bounds "when it is set and again at every load"; it is sealed uncapped,
// so raising a bound later lengthens existing sessions, past the TTL of
// revocation markers written under the lower bound.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_chosen_timeout_is_sealed_capped_so_raising_a_bound_revives_no_revoked_copy() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let with = |max_idle: u64| {
        let store = store.clone();
        let clock = clock.clone();
        move || {
            Sessions::new(
                ring(&[1]),
                config(&clock)
                    .with_shared_store(store)
                    .with_revocation(true)
                    .with_max_idle_timeout(Some(secs(max_idle)))
                    .with_max_absolute_timeout(Some(secs(90 * DAY))),
            )
            .unwrap()
        }
    };
    // Bound: 1 day idle. A handler asks for 60 days (capped to 1 day).
    let strict = with(DAY)();
    let (_, response, ()) = round::<u32, _>(&strict, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(SessionLifetime::persistent().with_idle_timeout(secs(60 * DAY)));
    })
    .await;
    let copy = the_cookie(&response).value().to_owned();
    let sealed_idle = strict.inspect(&copy).unwrap().lifetime.idle_timeout();
    // The user logs out; the marker is sized for the 1-day bound.
    round::<u32, _>(&strict, &cookie_of(&copy), |s| s.destroy()).await;
    // Later the operator raises the bound to 60 days.
    let relaxed = with(60 * DAY)();
    clock.advance(secs(5 * DAY));
    let session = relaxed.load::<u32>(&cookie_of(&copy)).await.unwrap();
    // Refused either way once fixed: revoked, or idle-expired because the
    // sealed timeout was capped to the 1-day bound when it was set.
    assert!(
        session.rejection().is_some(),
        "a copy revoked under the 1-day bound opens again (sealed idle {sealed_idle:?}, \
         the bound in force when it was set: 1 day)"
    );
}

// ---------------------------------------------------------------------
// Finding 7: schema_stats counts no opens of a version above 65535.
// ---------------------------------------------------------------------

#[tokio::test]
async fn schema_stats_count_versions_above_65535() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c.with_schema(Schema::<u32>::new(70_000)));
    let value = sealed(&sessions, 5u32).await;
    let session = sessions.load::<u32>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.get(), 5);
    assert_eq!(sessions.schema_stats()[0].opens, vec![(70_000, 1)]);
}

// ---------------------------------------------------------------------
// What held.
// ---------------------------------------------------------------------

#[tokio::test]
async fn held_extreme_schema_versions_neither_panic_nor_loop() {
    let clock = ManualClock::new(START);
    let max = instance(&clock, |c| c.with_schema(Schema::<u32>::new(u32::MAX)));
    let value = sealed(&max, 5u32).await;
    assert_eq!(max.inspect(&value).unwrap().schema, Some(u32::MAX));
    assert_eq!(max.load::<u32>(&cookie_of(&value)).await.unwrap().get(), 5);
    // A version-1 instance meets u32::MAX: newer, refused, nothing saved.
    let one = instance(&clock, |c| {
        c.with_schema(Schema::<u32>::new(1).migrate(0, |v: u32| v))
    });
    let s = one.load::<u32>(&cookie_of(&value)).await.unwrap();
    assert_eq!(s.rejection(), Some(Rejection::NewerSchema(u32::MAX)));
    s.set(1);
    assert!(matches!(
        one.save(&s, &mut HeaderMap::new()).await,
        Err(SaveError::NewerSchema { version: u32::MAX })
    ));
    // An instance at u32::MAX meets version 0 without migration: OldSchema
    // at once (the upgrade loop stops at the first missing step).
    let v0 = sealed(&sessions(&[1], &clock), 5u32).await;
    let s = max.load::<u32>(&cookie_of(&v0)).await.unwrap();
    assert_eq!(s.rejection(), Some(Rejection::OldSchema(0)));
}

#[tokio::test]
async fn held_huge_timeouts_do_not_overflow() {
    let clock = ManualClock::new(u64::MAX - 10);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = Sessions::new(
        ring(&[1]),
        config(&clock)
            .with_shared_store(store)
            .with_store_mode(StoreMode::Server)
            .with_revocation(true)
            .with_max_idle_timeout(None)
            .with_max_absolute_timeout(None),
    )
    .unwrap();
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(
            SessionLifetime::persistent()
                .with_idle_timeout(Duration::MAX)
                .with_absolute_timeout(Duration::MAX),
        );
    })
    .await;
    let value = the_cookie(&response).value().to_owned();
    clock.advance(secs(5));
    let (s, _, ()) = round::<u32, _>(&sessions, &cookie_of(&value), |s| s.renew()).await;
    assert_eq!(s.get(), 1);
}

#[tokio::test]
async fn held_destroy_resets_and_renew_keeps_the_lifetime() {
    let clock = ManualClock::new(START);
    let sessions = Sessions::new(
        ring(&[1]),
        config(&clock).with_max_idle_timeout(Some(secs(30 * DAY))),
    )
    .unwrap();
    let long = SessionLifetime::persistent().with_idle_timeout(secs(30 * DAY));
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(long);
    })
    .await;
    let value = the_cookie(&response).value().to_owned();
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&value), |s| s.renew()).await;
    let renewed = the_cookie(&response).value().to_owned();
    assert_eq!(sessions.inspect(&renewed).unwrap().lifetime, long);
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&renewed), |s| {
        s.destroy();
        s.set(2);
    })
    .await;
    let fresh = the_cookie(&response).value().to_owned();
    let inspected = sessions.inspect(&fresh).unwrap();
    assert!(inspected.lifetime.is_configured());
    assert_eq!(inspected.version, 1, "wire v1 again once nothing needs v2");
}

// ---------------------------------------------------------------------
// Finding 8: a handler that shortens a session's lifetime below the
// session's age (an absolute timeout shorter than it has lived) gets
// `SaveError::Ended` and no `Set-Cookie`: the browser keeps its previous
// cookie, which still opens under its old, longer lifetime. Shortening
// fails open.
// ---------------------------------------------------------------------

#[tokio::test]
async fn shortening_the_lifetime_below_the_sessions_age_ends_it() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = Sessions::new(
        ring(&[1]),
        config(&clock)
            .with_shared_store(store)
            .with_revocation(true),
    )
    .unwrap();
    let value = sealed(&sessions, 1u32).await;
    clock.advance(secs(2 * 3600));
    // After a sensitive change, the handler limits the session to one
    // hour from its creation: it is already over.
    let session = sessions.load::<u32>(&cookie_of(&value)).await.unwrap();
    session.set_lifetime(SessionLifetime::configured().with_absolute_timeout(secs(3600)));
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    // Ended as destroy ends a session: the removal cookie, and copies of
    // the old cookie refused.
    assert_eq!(the_cookie(&response).value(), "");
    let copy = sessions.load::<u32>(&cookie_of(&value)).await.unwrap();
    assert_eq!(copy.rejection(), Some(Rejection::Revoked));
}

// ---------------------------------------------------------------------
// Finding 9: `Sessions::new` promises the size limit fits at least a
// minimal cookie, but ignores the lifetime a session may seal (version 2,
// up to 21 bytes): at the minimum limit, in server mode, any session with
// a lifetime of its own cannot be saved at all.
// ---------------------------------------------------------------------

#[tokio::test]
async fn the_minimum_size_limit_leaves_room_for_a_per_session_lifetime() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let base = || {
        config(&clock)
            .with_shared_store(store.clone())
            .with_store_mode(StoreMode::Server)
            .with_max_idle_timeout(Some(secs(30 * DAY)))
    };
    let minimum = match Sessions::new(ring(&[1]), base().with_size_limit(1)) {
        Err(sealed_session::ConfigError::SizeLimitTooSmall { minimum }) => minimum,
        other => panic!("{other:?}"),
    };
    let sessions = Sessions::new(ring(&[1]), base().with_size_limit(minimum)).unwrap();
    let session = sessions.load::<u32>(&HeaderMap::new()).await.unwrap();
    session.set(1);
    session.set_lifetime(SessionLifetime::persistent().with_idle_timeout(secs(30 * DAY)));
    let saved = sessions.save(&session, &mut HeaderMap::new()).await;
    assert!(saved.is_ok(), "{saved:?} at the accepted minimum {minimum}");
}

// ---------------------------------------------------------------------
// Finding 10 (compatibility): a struct that already ends with a
// zero-sized field cannot gain a defaulted field at its end: the second
// decoding attempt stops at the zero-sized field (input used up) and
// serde has no default for it.
// ---------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Marked {
    user: String,
    marker: std::marker::PhantomData<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct MarkedWithTheme {
    user: String,
    marker: std::marker::PhantomData<u8>,
    #[serde(default)]
    theme: Option<String>,
}

#[tokio::test]
async fn a_trailing_default_after_a_zero_sized_field_decodes() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = sealed(
        &sessions,
        Marked {
            user: "ann".into(),
            marker: std::marker::PhantomData,
        },
    )
    .await;
    let session = sessions
        .load::<MarkedWithTheme>(&cookie_of(&value))
        .await
        .unwrap();
    assert_eq!(session.rejection(), None);
    assert_eq!(session.get().user, "ann");
}

// ---------------------------------------------------------------------
// Held: the trailing-field decoder stays with postcard everywhere but at
// the end of the outermost struct.
// ---------------------------------------------------------------------

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Inner1 {
    a: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Inner2 {
    a: u8,
    #[serde(default)]
    b: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Outer<I> {
    head: u8,
    inner: I,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
enum E<I> {
    #[default]
    None,
    S(I),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct ContainerDefault {
    a: u8,
    b: u8,
    c: String,
}

impl Default for ContainerDefault {
    fn default() -> Self {
        ContainerDefault {
            a: 1,
            b: 2,
            c: "three".into(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct JustA {
    a: u8,
}

#[tokio::test]
async fn held_the_trailing_decoder_is_postcard_except_at_the_outermost_end() {
    let clock = ManualClock::new(START);
    let s = sessions(&[1], &clock);
    async fn rejection_of<T>(s: &Sessions, value: &str) -> (Option<Rejection>, T)
    where
        T: Serialize + serde::de::DeserializeOwned + Default + Clone + 'static,
    {
        let session = s.load::<T>(&cookie_of(value)).await.unwrap();
        (session.rejection(), session.get())
    }
    // A nested struct one field short: strict, refused.
    let v = sealed(
        &s,
        Outer {
            head: 1,
            inner: Inner1 { a: 2 },
        },
    )
    .await;
    assert_eq!(
        rejection_of::<Outer<Inner2>>(&s, &v).await.0,
        Some(Rejection::Incompatible)
    );
    // An enum's struct payload, a tuple, an Option: strict.
    let v = sealed(&s, E::S(Inner1 { a: 2 })).await;
    assert_eq!(
        rejection_of::<E<Inner2>>(&s, &v).await.0,
        Some(Rejection::Incompatible)
    );
    let v = sealed(&s, (1u8, Inner1 { a: 2 })).await;
    assert_eq!(
        rejection_of::<(u8, Inner2)>(&s, &v).await.0,
        Some(Rejection::Incompatible)
    );
    let v = sealed(&s, Some(Inner1 { a: 2 })).await;
    assert_eq!(
        rejection_of::<Option<Inner2>>(&s, &v).await.0,
        Some(Rejection::Incompatible)
    );
    // A longer value never loses its tail.
    let v = sealed(&s, Inner2 { a: 1, b: 2 }).await;
    assert_eq!(
        rejection_of::<Inner1>(&s, &v).await.0,
        Some(Rejection::Incompatible)
    );
    // Container default: the missing fields come from `Default`, in place.
    let v = sealed(&s, JustA { a: 9 }).await;
    assert_eq!(
        rejection_of::<ContainerDefault>(&s, &v).await,
        (
            None,
            ContainerDefault {
                a: 9,
                b: 2,
                c: "three".into()
            }
        )
    );
}

// ---------------------------------------------------------------------
// Finding 5b: logout on an instance that does not know the cookie's
// schema (rolling deploy, or a rollback) neither removes nor revokes it,
// although the envelope opened and its id is known: once an instance of
// the newer release serves the browser again, the session the user
// logged out of is alive.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_logout_on_an_older_instance_revokes_the_newer_session() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let with_store = |c: SessionConfig| c.with_shared_store(store.clone()).with_revocation(true);
    let new = instance(&clock, |c| {
        with_store(c)
            .with_schema(Schema::<Two>::new(2).migrate(1, |o: CountV1| Two { a: o.count, b: 0 }))
    });
    let old = instance(&clock, |c| {
        with_store(c).with_schema(Schema::<CountV1>::new(1))
    });
    let value = sealed(&new, Two { a: 1, b: 2 }).await;
    // Logout reaches an old instance.
    let session = old.load::<CountV1>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(2)));
    session.destroy();
    let saved = old.save(&session, &mut HeaderMap::new()).await;
    // The next request of the (stolen, or not removed) cookie reaches a
    // new instance.
    clock.advance(secs(60));
    let again = new.load::<Two>(&cookie_of(&value)).await.unwrap();
    assert_eq!(
        again.rejection(),
        Some(Rejection::Revoked),
        "logout gave {saved:?}; the session is still alive with {:?}",
        again.get()
    );
}

// ---------------------------------------------------------------------
// Finding 6b: the same, in a rolling deploy that introduces "remember
// me" (raises the bounds): a logout served by an instance still on the
// old bounds writes a marker sized for them, and the remembered copy
// opens again on a new instance once that marker expires.
// ---------------------------------------------------------------------

#[tokio::test]
async fn a_logout_on_an_instance_with_lower_bounds_outlasts_remembered_copies() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let with_store = |c: SessionConfig| c.with_shared_store(store.clone()).with_revocation(true);
    // The new release: remember me, up to 30 days idle and 90 absolute.
    let new = instance(&clock, |c| {
        with_store(c)
            .with_max_idle_timeout(Some(secs(30 * DAY)))
            .with_max_absolute_timeout(Some(secs(90 * DAY)))
    });
    // An instance not yet upgraded: the default bounds (1 day, 7 days).
    let old = instance(&clock, with_store);
    let (_, response, ()) = round::<u32, _>(&new, &HeaderMap::new(), |s| {
        s.set(1);
        s.set_lifetime(
            SessionLifetime::persistent()
                .with_idle_timeout(secs(30 * DAY))
                .with_absolute_timeout(secs(90 * DAY)),
        );
    })
    .await;
    let copy = the_cookie(&response).value().to_owned();
    // Logout, served by the old instance.
    round::<u32, _>(&old, &cookie_of(&copy), |s| s.destroy()).await;
    clock.advance(secs(3 * DAY));
    let again = new.load::<u32>(&cookie_of(&copy)).await.unwrap();
    assert_eq!(
        again.rejection(),
        Some(Rejection::Revoked),
        "the logged-out copy opens again on a new instance"
    );
}
