//! Review 6 (fresh eyes): attacks on the issue 17 item 6 fixes (newer-schema
//! replacement, same-name cookies, marker lifetimes, logins on old
//! sessions) and items 1-2 (a value that cannot load is never saved, loud
//! rejections), with the public API.
//!
//! Tests marked REPRODUCES fail on the code they were written against
//! (main at b131192): each is a defect, with its severity. Tests marked
//! HOLDS probe a promise and pass. Every REPRODUCES test passes since
//! the fixes that followed the review (a newer-schema cookie beside the
//! one that opened is protected and ended; timeouts a marker cannot
//! outlast are refused with revocation; a re-seal at another schema
//! version is checked; an unloadable import is given up); three were
//! adjusted to the fixed behaviour, as their comments say.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use http::HeaderMap;
use sealed_session::{
    ManualClock, MemoryStore, Rejection, SaveError, Schema, SessionConfig, SessionLifetime,
    SessionStore, Sessions, StoreError, StoreFuture, StoreKey, StoreMode,
};
use serde::{Deserialize, Deserializer, Serialize};

const NAME: &str = "__Host-session";
const DAY: u64 = 24 * 3600;
const YEAR: u64 = 365 * DAY;

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
    store: Arc<dyn SessionStore>,
    revocation: bool,
    replace: bool,
    mode: StoreMode,
) -> (Sessions, Sessions) {
    let with_store = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(revocation)
            .with_store_mode(mode)
            .with_circuit_breaker(None)
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

fn memory(clock: &ManualClock) -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new().with_clock(clock.clone()))
}

// =====================================================================
// A. Same-name cookies around a newer-schema cookie.
//
// `load` remembers a newer-schema cookie refused *before* the cookie that
// opens (`state.newer_schema = refusals.newer_schema`), because "its
// Set-Cookie may replace the newer one". But what it remembers of it is
// only the write ban: the newer cookie's id (`refusals.unreadable`) is
// dropped as soon as a later cookie opens, and a newer cookie *after* the
// one that opens is never looked at.
// =====================================================================

/// REPRODUCES (low). Replace mode + revocation; the browser sends the
/// victim's newer-schema cookie, then another valid cookie of the old
/// schema (another path, or planted). The old instance opens the second
/// one and writes over "its" cookie, which may be the newer one (the
/// write ban that protects it without replace mode says so), but the
/// newer id is never ended: a stolen copy still opens on newer instances.
#[tokio::test]
async fn replace_mode_newer_cookie_before_a_valid_one_is_written_over_without_ending_its_id() {
    let clock = ManualClock::new(START);
    let store = memory(&clock);
    let (new, old) = newer_and_older(&clock, store, true, true, StoreMode::Cookie);
    let victim = sealed(&new, Two { a: 1, b: 2 }).await;
    let other = sealed(&old, CountV1 { count: 5 }).await;
    let headers = request(&[(NAME, &victim), (NAME, &other)]);
    let session = old.load::<CountV1>(&headers).await.unwrap();
    assert_eq!(session.get(), CountV1 { count: 5 });
    session.set(CountV1 { count: 6 });
    let mut response = HeaderMap::new();
    old.save(&session, &mut response).await.unwrap();
    assert_eq!(
        set_cookies(&response).len(),
        1,
        "a cookie of that name is written"
    );
    // Without replace mode this very write is refused to protect the newer
    // cookie; with it, the newer id must end as every replacement's does.
    let copy = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
    assert_eq!(
        copy.rejection(),
        Some(Rejection::Revoked),
        "the replaced newer session still opens with {:?}",
        copy.get()
    );
}

/// REPRODUCES (low). Without replace mode, a logout on an old instance
/// when the newer cookie comes before a valid old-schema one: the valid
/// one is ended, the removal cookie may remove the newer one from the
/// browser, and the newer id is not ended, although "a logout ends that id
/// either way".
#[tokio::test]
async fn a_logout_over_a_newer_cookie_before_a_valid_one_leaves_the_newer_id_alive() {
    let clock = ManualClock::new(START);
    let store = memory(&clock);
    let (new, old) = newer_and_older(&clock, store, true, false, StoreMode::Cookie);
    let victim = sealed(&new, Two { a: 1, b: 2 }).await;
    let other = sealed(&old, CountV1 { count: 5 }).await;
    let headers = request(&[(NAME, &victim), (NAME, &other)]);
    let (_, response, ()) = round::<CountV1, _>(&old, &headers, |s| s.destroy()).await;
    assert_eq!(the_cookie(&response).value(), "", "logged out");
    let copy = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
    assert_eq!(
        copy.rejection(),
        Some(Rejection::Revoked),
        "the logged-out newer session still opens with {:?}",
        copy.get()
    );
}

/// REPRODUCES (low). Without replace mode, a newer-schema cookie *after* a
/// valid old-schema one is never looked at (the first that opens wins), so
/// the old instance writes over the cookie of that name, unprotected:
/// the mirror image of finding 2 ("newer after a refused one").
#[tokio::test]
async fn a_newer_cookie_after_a_valid_one_is_not_protected() {
    let clock = ManualClock::new(START);
    let store = memory(&clock);
    let (new, old) = newer_and_older(&clock, store, false, false, StoreMode::Cookie);
    let victim = sealed(&new, Two { a: 1, b: 2 }).await;
    let other = sealed(&old, CountV1 { count: 5 }).await;
    let headers = request(&[(NAME, &other), (NAME, &victim)]);
    let session = old.load::<CountV1>(&headers).await.unwrap();
    session.set(CountV1 { count: 6 });
    let mut response = HeaderMap::new();
    let saved = old.save(&session, &mut response).await;
    assert_eq!(
        saved,
        Err(SaveError::NewerSchema { version: 2 }),
        "written over a newer cookie: {:?}",
        set_cookies(&response)
    );
}

/// HOLDS. Three cookies: forged, expired, then the newer one; without
/// replace mode, no write goes over it; a logout ends it.
#[tokio::test]
async fn a_newer_cookie_behind_a_forged_and_an_expired_one_is_protected_and_logged_out() {
    let clock = ManualClock::new(START);
    let store = memory(&clock);
    let (new, old) = newer_and_older(&clock, store, true, false, StoreMode::Cookie);
    let expired = sealed(&old, CountV1 { count: 1 }).await;
    clock.advance(secs(2 * DAY));
    let victim = sealed(&new, Two { a: 1, b: 2 }).await;
    let forged = {
        let mut raw = decode(&victim);
        let last = raw.len() - 1;
        raw[last] ^= 1;
        encode(&raw)
    };
    let headers = request(&[(NAME, &forged), (NAME, &expired), (NAME, &victim)]);
    let session = old.load::<CountV1>(&headers).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::Forged));
    session.set(CountV1 { count: 9 });
    let mut response = HeaderMap::new();
    assert_eq!(
        old.save(&session, &mut response).await,
        Err(SaveError::NewerSchema { version: 2 })
    );
    assert!(response.is_empty());
    let (_, response, ()) = round::<CountV1, _>(&old, &headers, |s| s.destroy()).await;
    assert_eq!(the_cookie(&response).value(), "");
    let copy = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
    assert_eq!(copy.rejection(), Some(Rejection::Revoked));
}

// =====================================================================
// A. Replacement under store faults (server mode).
// =====================================================================

/// A memory store whose calls fail while `down` (or, for `delete` only,
/// while `deletes_down`).
#[derive(Debug)]
struct Faulty {
    inner: MemoryStore,
    down: AtomicBool,
    deletes_down: AtomicBool,
}

impl Faulty {
    /// Fails without calling the inner store at all (`MemoryStore` does
    /// its work when called, not when polled).
    fn gate<'a, T: Send + 'a>(
        &'a self,
        delete: bool,
        call: impl FnOnce() -> StoreFuture<'a, T>,
    ) -> StoreFuture<'a, T> {
        let down = self.down.load(Ordering::SeqCst)
            || (delete && self.deletes_down.load(Ordering::SeqCst));
        if down {
            Box::pin(async { Err(StoreError::Timeout) })
        } else {
            call()
        }
    }
}

impl SessionStore for Faulty {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.gate(false, || self.inner.load(key))
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.gate(false, || self.inner.create(key, value, ttl))
    }
    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.gate(false, || self.inner.replace(key, value, ttl))
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.gate(true, || self.inner.delete(key))
    }
}

/// HOLDS. Replace mode, server mode: the store dies between the load and
/// the save, or only its deletes fail (the new entry is written, the old
/// one cannot be deleted). Either way the save fails with no Set-Cookie,
/// the newer session keeps its value, and the new entry is not left
/// holding a session the browser never got. Once the store is back, the
/// replacement ends the newer id's entry.
#[tokio::test]
async fn a_replacement_with_the_store_failing_writes_nothing_and_loses_nothing() {
    let clock = ManualClock::new(START);
    let faulty = Arc::new(Faulty {
        inner: MemoryStore::new().with_clock(clock.clone()),
        down: AtomicBool::new(false),
        deletes_down: AtomicBool::new(false),
    });
    let store: Arc<dyn SessionStore> = faulty.clone();
    let (new, old) = newer_and_older(&clock, store, false, true, StoreMode::Server);
    let victim = sealed(&new, Two { a: 1, b: 2 }).await;
    let entry = new.inspect(&victim).unwrap().store_key.unwrap();
    for (down, deletes_down) in [(true, false), (false, true)] {
        let session = old.load::<CountV1>(&cookie_of(&victim)).await.unwrap();
        assert_eq!(session.rejection(), Some(Rejection::NewerSchema(2)));
        faulty.down.store(down, Ordering::SeqCst);
        faulty.deletes_down.store(deletes_down, Ordering::SeqCst);
        let mut response = HeaderMap::new();
        let saved = old.save(&session, &mut response).await;
        faulty.down.store(false, Ordering::SeqCst);
        faulty.deletes_down.store(false, Ordering::SeqCst);
        assert!(matches!(saved, Err(SaveError::Store(_))), "{saved:?}");
        assert!(response.is_empty(), "{response:?}");
        let kept = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
        assert_eq!(
            (kept.rejection(), kept.get()),
            (None, Two { a: 1, b: 2 }),
            "down {down}, deletes down {deletes_down}"
        );
    }
    // With the store back, the replacement ends the newer id's entry.
    let written = {
        let (_, response, _) = round::<CountV1, _>(&old, &cookie_of(&victim), |s| s.get()).await;
        the_cookie(&response).value().to_owned()
    };
    assert_ne!(old.inspect(&written).unwrap().store_key, Some(entry));
    assert!(faulty.inner.load(&entry).await.unwrap().is_none());
    let copy = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
    assert_eq!(copy.rejection(), Some(Rejection::MissingStoreEntry));
}

/// HOLDS. Replace mode, server mode: a stolen copy of the newer pointer
/// writes through a newer instance while the old instance replaces the
/// same cookie (both loaded first). Whatever the order of the saves, the
/// copy ends up with no session, and never reads or writes the
/// replacement.
#[tokio::test]
async fn a_stolen_newer_pointer_racing_its_replacement_never_reaches_the_new_session() {
    for copy_first in [true, false] {
        let clock = ManualClock::new(START);
        let store: Arc<dyn SessionStore> = memory(&clock);
        let (new, old) =
            newer_and_older(&clock, Arc::clone(&store), false, true, StoreMode::Server);
        let victim = sealed(&new, Two { a: 1, b: 2 }).await;
        let replacing = old.load::<CountV1>(&cookie_of(&victim)).await.unwrap();
        let attacker = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
        attacker.set(Two { a: 666, b: 666 });
        let mut attacker_response = HeaderMap::new();
        let mut response = HeaderMap::new();
        let (attacker_saved, saved) = if copy_first {
            let a = new.save(&attacker, &mut attacker_response).await;
            (a, old.save(&replacing, &mut response).await)
        } else {
            let r = old.save(&replacing, &mut response).await;
            (new.save(&attacker, &mut attacker_response).await, r)
        };
        assert_eq!(saved, Ok(()), "copy_first={copy_first}");
        if !copy_first {
            assert_eq!(attacker_saved, Err(SaveError::Ended));
        }
        let written = the_cookie(&response).value().to_owned();
        let mine = old.load::<CountV1>(&cookie_of(&written)).await.unwrap();
        assert_eq!((mine.rejection(), mine.get()), (None, CountV1::default()));
        let copy = new.load::<Two>(&cookie_of(&victim)).await.unwrap();
        assert_eq!(copy.rejection(), Some(Rejection::MissingStoreEntry));
    }
}

// =====================================================================
// A. Marker lifetimes at the configuration's edges.
// =====================================================================

/// REPRODUCES (low; SECURITY.md says "at most ten years in any case", but
/// nothing refuses or warns about the configuration). A configured idle
/// timeout longer than ten years (say "never idle out" written as 20
/// years) with no absolute timeout: the copy of a logged-out session
/// lives 20 years, its revocation marker ten (`copies_ttl` clamps at
/// `MAX_TTL`), so the copy opens again after ten years. Finding 3's fix
/// is "markers outlive every copy the configuration allows, or the config
/// is refused": this configuration is neither.
#[tokio::test]
async fn a_configured_idle_timeout_over_ten_years_outlives_its_marker() {
    let clock = ManualClock::new(START);
    let store = memory(&clock);
    let sessions = Sessions::new(
        ring(&[1]),
        config(&clock)
            .with_shared_store(store)
            .with_revocation(true)
            .with_idle_timeout(Some(secs(20 * YEAR)))
            .with_absolute_timeout(None),
    );
    // Refusing this configuration would be a fix too.
    let Ok(sessions) = sessions else { return };
    let stolen = sealed(&sessions, 1u32).await;
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&stolen), |s| s.destroy()).await;
    assert_eq!(the_cookie(&response).value(), "", "logged out");
    clock.advance(secs(10 * YEAR + DAY));
    let copy = sessions.load::<u32>(&cookie_of(&stolen)).await.unwrap();
    assert_eq!(
        copy.rejection(),
        Some(Rejection::Revoked),
        "a logged-out copy opens again with {}",
        copy.get()
    );
}

/// HOLDS. Edge values: a lifetime of `Duration::MAX`, the bounds off, a
/// skew of `u64::MAX` seconds: saving, renewing and logging out neither
/// panic nor give a marker shorter than the copy's life on this clock.
#[tokio::test]
async fn edge_lifetimes_neither_panic_nor_shorten_markers() {
    // A skew that leaves no room for any timeout under a marker's ten
    // years is refused with revocation on (after this review).
    let clock = ManualClock::new(START);
    let refused = Sessions::new(
        common::ring(&[1]),
        common::config(&clock)
            .with_shared_store(memory(&clock))
            .with_revocation(true)
            .with_clock_skew(secs(u64::MAX)),
    );
    assert!(matches!(
        refused,
        Err(sealed_session::ConfigError::TimeoutTooLong { .. })
    ));
    for skew in [0, 60, 3600] {
        let clock = ManualClock::new(START);
        let store = memory(&clock);
        let sessions = instance(&clock, |c| {
            c.with_shared_store(store.clone())
                .with_revocation(true)
                .with_max_idle_timeout(None)
                .with_max_absolute_timeout(None)
                .with_clock_skew(secs(skew))
        });
        let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
            s.set(1);
            s.set_lifetime(
                SessionLifetime::persistent()
                    .with_idle_timeout(Duration::MAX)
                    .with_absolute_timeout(Duration::MAX),
            );
        })
        .await;
        let stolen = the_cookie(&response).value().to_owned();
        let (_, response, ()) =
            round::<u32, _>(&sessions, &cookie_of(&stolen), |s| s.renew()).await;
        let renewed = the_cookie(&response).value().to_owned();
        let (_, response, ()) =
            round::<u32, _>(&sessions, &cookie_of(&renewed), |s| s.destroy()).await;
        assert_eq!(the_cookie(&response).value(), "");
        // Well within the longest lifetime a session may choose.
        clock.advance(secs(9 * YEAR));
        for value in [&stolen, &renewed] {
            let copy = sessions.load::<u32>(&cookie_of(value)).await.unwrap();
            assert_ne!(
                copy.rejection(),
                None,
                "skew {skew}: a copy opens with {}",
                copy.get()
            );
        }
    }
}

/// HOLDS. `renew()` then `destroy()` in one request: the old id ends, no
/// new session is written; a renew of a session loaded one second before
/// its absolute deadline and saved at it is `Ended` and ends nothing.
#[tokio::test]
async fn renew_then_destroy_and_renew_at_the_deadline() {
    let clock = ManualClock::new(START);
    let store = memory(&clock);
    let sessions = instance(&clock, |c| {
        c.with_shared_store(store.clone())
            .with_revocation(true)
            .with_absolute_timeout(Some(secs(2 * 3600)))
    });
    let stolen = sealed(&sessions, 3u32).await;
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&stolen), |s| {
        s.renew();
        s.destroy();
    })
    .await;
    assert_eq!(the_cookie(&response).value(), "");
    let copy = sessions.load::<u32>(&cookie_of(&stolen)).await.unwrap();
    assert_eq!(copy.rejection(), Some(Rejection::Revoked));

    let value = sealed(&sessions, 4u32).await;
    clock.advance(secs(2 * 3600 - 1));
    let late = sessions.load::<u32>(&cookie_of(&value)).await.unwrap();
    assert_eq!(late.rejection(), None);
    late.renew();
    clock.advance(secs(1));
    let mut response = HeaderMap::new();
    assert_eq!(
        sessions.save(&late, &mut response).await,
        Err(SaveError::Ended)
    );
    assert!(response.is_empty());
}

// =====================================================================
// B. The save check: does every write that may not load run it?
//
// `plan` runs `check_loads` only when `changed`, i.e. when the new value
// bytes differ from `origin.body()`. But the origin's bytes are not
// always bytes that loaded *as these bytes*: an unreadable (newer-schema)
// origin has an empty body it never decoded, and a re-seal at another
// schema version compares bytes that mean something else under the new
// version number.
// =====================================================================

/// A session type whose empty value encodes to no bytes at all (its only
/// field left out by `skip_serializing_if`) and does not decode from
/// none: the README's trap 3.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Cart {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<u32>,
}

/// REPRODUCES (low-medium). Replace mode; the newer release registered a
/// schema for a session type the old one has none for. The old instance
/// replaces the newer cookie with its `T::default()` even though the
/// handler changed nothing; those bytes (empty) equal the unreadable
/// origin's empty body, so `changed` is false and the check is skipped:
/// a cookie that never loads is written (every later request of that
/// browser is `Incompatible`, logged at WARN).
#[tokio::test]
async fn an_untouched_replacement_writes_a_default_that_does_not_load() {
    let clock = ManualClock::new(START);
    let new = instance(&clock, |c| c.with_schema(Schema::<Cart>::new(1)));
    let old = instance(&clock, |c| c.with_replace_newer_schemas(true));
    // The same value set on a brand-new session is no value (issue 17
    // item 4): nothing is written, so nothing fails to load.
    let fresh = old.load::<Cart>(&HeaderMap::new()).await.unwrap();
    fresh.set(Cart::default());
    let mut response = HeaderMap::new();
    assert_eq!(old.save(&fresh, &mut response).await, Ok(()));
    assert!(response.is_empty(), "{response:?}");
    let victim = sealed(&new, Cart { items: vec![7] }).await;
    let session = old.load::<Cart>(&cookie_of(&victim)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(1)));
    let mut response = HeaderMap::new();
    let saved = old.save(&session, &mut response).await;
    if matches!(saved, Err(SaveError::Unloadable { .. })) {
        return;
    }
    assert_eq!(saved, Ok(()));
    let written = the_cookie(&response).value().to_owned();
    let next = old.load::<Cart>(&cookie_of(&written)).await.unwrap();
    assert_eq!(
        next.rejection(),
        None,
        "saved a cookie that does not load back"
    );
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Legacy {
    a: u8,
    b: u8,
}

fn zero_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    Ok(Option::<u8>::deserialize(d)?.filter(|&v| v != 0))
}

/// Normalises `Some(0)` to `None` when decoding, leaves `None` out when
/// encoding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Normalised {
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "zero_is_none"
    )]
    x: Option<u8>,
    y: u8,
}

/// REPRODUCES (low, contrived bytes; same root cause as above). A legacy
/// (schema 0, wire v1) cookie holding bytes `[1, 5]` is migrated to
/// schema 1 and re-sealed on load. The new body is the schema version `1`
/// then the value's bytes `[5]`: `[1, 5]`, byte for byte the legacy body,
/// so the check is skipped, though under schema 1 those bytes mean
/// something else and `[5]` does not decode as the type.
#[tokio::test]
async fn a_migration_reseal_equal_to_the_loaded_bytes_skips_the_check() {
    let clock = ManualClock::new(START);
    let legacy = instance(&clock, |c| c);
    let upgraded = instance(&clock, |c| {
        c.with_schema(Schema::<Normalised>::new(1).migrate(0, |o: Legacy| (Some(0u8), o.b)))
    });
    let value = sealed(&legacy, Legacy { a: 1, b: 5 }).await;
    let session = upgraded
        .load::<Normalised>(&cookie_of(&value))
        .await
        .unwrap();
    assert_eq!(
        (session.rejection(), session.get()),
        (None, Normalised { x: None, y: 5 })
    );
    let mut response = HeaderMap::new();
    let saved = upgraded.save(&session, &mut response).await;
    if matches!(saved, Err(SaveError::Unloadable { .. })) {
        return;
    }
    assert_eq!(saved, Ok(()));
    let written = the_cookie(&response).value().to_owned();
    let next = upgraded
        .load::<Normalised>(&cookie_of(&written))
        .await
        .unwrap();
    assert_eq!(
        next.rejection(),
        None,
        "the migration re-seal saved a cookie that does not load back"
    );
}

/// HOLDS. The check runs on the store path too (a value too large for
/// the cookie moves to the store) and on a value changed on a renew.
#[tokio::test]
async fn the_check_runs_on_the_store_path_and_on_renew() {
    let clock = ManualClock::new(START);
    let store = memory(&clock);
    let sessions = instance(&clock, |c| c.with_shared_store(store.clone()));
    let before = store.len();
    // Too large for a cookie: 2,000 items, then the trap's empty cart is
    // never saved, whichever path.
    let big = sealed(
        &sessions,
        Cart {
            items: (0..2000).collect(),
        },
    )
    .await;
    assert!(sessions.inspect(&big).unwrap().store_key.is_some());
    for renew in [false, true] {
        let session = sessions.load::<Cart>(&cookie_of(&big)).await.unwrap();
        if renew {
            session.renew();
        }
        session.set(Cart::default());
        let mut response = HeaderMap::new();
        let saved = sessions.save(&session, &mut response).await;
        assert!(
            matches!(saved, Err(SaveError::Unloadable { .. })),
            "{saved:?}"
        );
        assert!(response.is_empty());
    }
    assert_eq!(store.len(), before + 1, "no entry left behind");
    let kept = sessions.load::<Cart>(&cookie_of(&big)).await.unwrap();
    assert_eq!(kept.get().items.len(), 2000);
}

/// REPRODUCES (low, availability). An imported value that the save check
/// refuses (here an empty cart, the trap's value) fails the save; the
/// browser keeps only the old cookie, so *every* request imports it again
/// and fails again (`500` from the layer on every page) until the old
/// record goes away. An imported value too large for the cookie is given
/// up after one try for exactly this reason ("a large old session cannot
/// lock its browser out"); an unloadable one is not.
#[tokio::test]
async fn an_unloadable_import_fails_every_request_of_its_browser() {
    use sealed_session::{Import, Imported};
    let clock = ManualClock::new(START);
    let import = Import::new("connect.sid", |_old: String| async {
        Ok(Some(Imported::new(Cart { items: vec![] })))
    });
    let sessions = instance(&clock, |c| c.with_import(import));
    let browser = request(&[("connect.sid", "s:old-session")]);
    let mut results = Vec::new();
    for _ in 0..3 {
        let session = sessions.load::<Cart>(&browser).await.unwrap();
        let mut response = HeaderMap::new();
        let saved = sessions.save(&session, &mut response).await;
        assert!(set_cookies(&response).len() <= 2, "{response:?}");
        results.push(saved);
    }
    // Fixed: the import is given up at once (`import.rs`, rule 6), at
    // ERROR; the empty cart does not load either, so no cookie of ours is
    // written and each request gives it up again, without failing.
    assert!(
        results.iter().all(Result::is_ok),
        "every request of that browser fails: {results:?}"
    );
}
