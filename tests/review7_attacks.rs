//! Review 7 (fresh eyes): attacks on the dead-cookie removal, the blank
//! new session, and the review-6 fixes (a newer-schema cookie beside the
//! one that opened, later candidates opened, `TimeoutTooLong`), with the
//! public API, written against main at d009d3c.
//!
//! Tests marked REPRODUCES fail on that code: each is a defect, with its
//! severity. Tests marked HOLDS probe a promise and pass. Every
//! REPRODUCES test passes since the fixes that followed (more values than
//! are looked at: nothing removed; expired only by a timeout the cookie
//! carries; a note that cannot be written fails the delete it guards; a
//! newer cookie sharing the session's id or entry is not ended; a store
//! failure on a later duplicate is not a load error; both timeouts off
//! refused with revocation). The last two tests were adjusted to the
//! fixed behaviour, as their comments say.

mod common;

use common::sent::{self, Sent};
use std::sync::Arc;

use common::fail_load::FailLoad;
use common::*;
use http::HeaderMap;
use sealed_session::{
    ManualClock, MemoryStore, Rejection, Schema, SessionConfig, SessionStore, Sessions, StoreError,
    StoreMode,
};
use serde::{Deserialize, Serialize};

const NAME: &str = "__Host-session";

/// Loads `request`, only reads, saves: the refusal and what the browser
/// is told.
async fn read_only(sessions: &Sessions, request: &HeaderMap) -> (Option<Rejection>, Sent) {
    sent::read_only::<u32>(sessions, request, Sent::of).await
}

fn with_store(clock: &ManualClock, store: Arc<dyn SessionStore>) -> SessionConfig {
    config(clock)
        .with_shared_store(store)
        .with_circuit_breaker(None)
}

// =====================================================================
// A. Removing a cookie that is live.
// =====================================================================

/// REPRODUCES (medium). "A cookie that another instance may still open is
/// never removed", but only the first `MAX_CANDIDATES` (4) values are
/// looked at, and `dead` is decided over those alone. A browser holding
/// four dead values of the name ahead of its live one (cookie tossing
/// from a sibling domain on longer paths, for any name without the
/// `__Host-` prefix; or values left by earlier configurations) sends
/// them first; the live fifth one is never opened, every refusal is
/// `Malformed`, and the response removes the cookie, which lands on the
/// live one (same name, our path and domain). Before the change such a
/// request only got a new session and the live cookie stayed.
///
/// Fix: in `Sessions::load` and `load_now` (src/sessions/mod.rs), after
/// the loop, if the iterator had more values than `MAX_CANDIDATES`
/// (`cookie_values(..).nth(MAX_CANDIDATES).is_some()`), set
/// `refusals.dead = Some(false)`: a value not looked at is not known dead.
#[tokio::test]
async fn a_live_cookie_behind_four_dead_ones_is_removed() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let live = sealed(&sessions, 7_u32).await;
    let headers = request(&[
        (NAME, "tossed1"),
        (NAME, "tossed2"),
        (NAME, "tossed3"),
        (NAME, "tossed4"),
        (NAME, &live),
    ]);
    let (rejection, sent) = read_only(&sessions, &headers).await;
    assert_eq!(rejection, Some(Rejection::Malformed));
    assert_eq!(
        sent,
        Sent::Nothing,
        "the fifth cookie was never looked at, yet the removal lands on it"
    );
}

/// REPRODUCES (medium). Expired cookies are judged by "the lifetime sealed
/// in it", but a cookie that chose no lifetime (version 1, or version 2
/// with "as configured") seals none: this instance's configured timeouts
/// stand in for it. During a rollout that lengthens the idle (or
/// absolute) timeout, an old instance removes cookies that the new
/// instances still open: the user is logged out for good, where before
/// the change the old instance only refused them for that one request.
/// (Sealing instance's `Max-Age` already makes the browser drop a cookie
/// at that instance's deadline, so removing expired cookies buys little.)
///
/// Fix: in `Inner::open_cookie` (src/sessions/load.rs), do not mark
/// `IdleExpired`/`AbsoluteExpired` dead for a timeout the cookie does not
/// carry (only for `Some(chosen)` fields), or drop these rows from the
/// removal table.
#[tokio::test]
async fn a_timeout_lengthened_in_a_rollout_gets_live_cookies_removed() {
    let clock = ManualClock::new(START);
    let old = instance(&clock, |c| c.with_idle_timeout(Some(secs(3600))));
    let new = instance(&clock, |c| c.with_idle_timeout(Some(secs(4 * 3600))));
    let value = sealed(&new, 7_u32).await;
    clock.advance(secs(2 * 3600));
    // The new instances open it: the user is signed in.
    let (rejection, _) = read_only(&new, &cookie_of(&value)).await;
    assert_eq!(rejection, None);
    // A request that reaches an old instance removes it.
    let (rejection, sent) = read_only(&old, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::IdleExpired));
    assert_eq!(
        sent,
        Sent::Nothing,
        "removed a cookie that the other instances still open"
    );
}

// =====================================================================
// B. The removal racing a login (renew): the note is best effort.
// =====================================================================

/// REPRODUCES (medium). Server mode, no revocation: a renew (login)
/// leaves a note before deleting the old entry, so that a parallel
/// request still carrying the old pointer keeps it instead of removing
/// the login's new cookie. The note is best effort: when the store
/// refuses it (here a `MemoryStore` at its entry bound; equally a Redis
/// Cluster shard of the note's slot failing, or a `volatile-ttl` Redis
/// evicting the shortest-lived keys, which notes are), the entry is
/// deleted all the same, the parallel request finds no note, and its
/// answer removes the cookie; if it arrives after the login's answer, the
/// user is logged out silently.
///
/// Fix: in `Inner::end` and `Inner::write` (src/sessions/save.rs), make
/// `leave_note` return its error and, when there is no revocation marker
/// protecting the id, fail the save with `SaveError::Store` before the
/// delete (fail fast: nothing is deleted and the browser keeps its
/// cookie); or, for `MissingStoreEntry`, treat "no note" as kept unless
/// the cookie was issued longer ago than the note lives.
#[tokio::test]
async fn a_note_the_store_refuses_lets_a_parallel_request_remove_the_login() {
    let clock = ManualClock::new(START);
    // Room for the session and its renewed entry, not for the note.
    let store: Arc<dyn SessionStore> = Arc::new(
        MemoryStore::new()
            .with_clock(clock.clone())
            .with_max_entries(2),
    );
    let sessions = Sessions::new(
        ring(&[1]),
        with_store(&clock, store).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let value = sealed(&sessions, 7_u32).await;
    // The login: fixed, it fails fast when the note cannot be written
    // (no marker protects the id), deleting nothing and sending nothing...
    let login = sessions.load::<u32>(&cookie_of(&value)).await.unwrap();
    login.renew();
    let mut response = HeaderMap::new();
    let saved = sessions.save(&login, &mut response).await;
    assert_eq!(
        saved,
        Err(sealed_session::SaveError::Store(StoreError::Full))
    );
    assert!(response.is_empty(), "{response:?}");
    // ...so the old pointer still opens, and nothing removes it.
    let (rejection, sent) = read_only(&sessions, &cookie_of(&value)).await;
    assert_eq!(rejection, None);
    assert_eq!(
        sent,
        Sent::Nothing,
        "a removal answered after the login deletes the login's cookie"
    );
}

// =====================================================================
// C. The newer-schema cookie beside the one that opened.
// =====================================================================

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct CountV1 {
    count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Two {
    a: u64,
    b: u64,
}

/// REPRODUCES (medium, during a rollback). A newer release migrates a
/// session without renewing it, so its newer-schema cookie carries the
/// *same id* as the older one. When the two sit in different cookie slots
/// (the newer release changed `Path` or `Domain`, or a sibling set one),
/// the browser sends both. An old instance in replace mode opens the old
/// one and records the newer one in `newer_too`; its next write (here a
/// change; a rolling re-issue on a read-only request does the same) ends
/// "the newer id", which is the id it just wrote: the revocation marker
/// kills the cookie sent on this very response. The user is logged out
/// silently on their next request. (In server mode without revocation
/// the same happens through the entry: both cookies point at one entry,
/// which `also` deletes after this write replaced it.)
///
/// Fix: in `Inner::plan` (src/sessions/save.rs), do not set `plan.also`
/// when `newer.id` is the id being written or the id `end` ends
/// (`state.id`, or `state.origin`'s id), nor delete an entry the write
/// continues; better, in replace mode make such a write a restart (new id,
/// `end_origin`), as for a replaced unreadable cookie.
#[tokio::test]
async fn replace_mode_ends_the_id_it_just_wrote_when_the_newer_copy_shares_it() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let shared = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(true)
            .with_circuit_breaker(None)
    };
    let new = instance(&clock, |c| {
        shared(c)
            .with_schema(Schema::<Two>::new(2).migrate(1, |o: CountV1| Two { a: o.count, b: 0 }))
    });
    let old = instance(&clock, |c| {
        shared(c)
            .with_schema(Schema::<CountV1>::new(1))
            .with_replace_newer_schemas(true)
    });
    let v1 = sealed(&old, CountV1 { count: 5 }).await;
    // The newer release migrates it (same id) into its own slot.
    let (migrated, response, ()) = round::<Two, _>(&new, &cookie_of(&v1), |_| ()).await;
    assert_eq!(migrated.get(), Two { a: 5, b: 0 });
    let v2 = the_cookie(&response).value().to_owned();
    // Rolled back: the old instance sees both.
    let (_, response, ()) = round::<CountV1, _>(&old, &request(&[(NAME, &v1), (NAME, &v2)]), |s| {
        s.set(CountV1 { count: 6 })
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Cookie);
    let (next, _, ()) = round::<CountV1, _>(&old, &request_after(&response), |_| ()).await;
    assert_eq!(
        (next.rejection(), next.get()),
        (None, CountV1 { count: 6 }),
        "the cookie written on the last response no longer opens"
    );
}

/// HOLDS. Without replace mode, a newer cookie beside the one that opened
/// stops writes, a read-only request ends nothing, and a logout followed
/// by `set(default)` is a logout that ends both ids.
#[tokio::test]
async fn a_newer_cookie_beside_one_that_opened_read_only_and_logout() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let shared = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(true)
            .with_circuit_breaker(None)
            .with_rolling(0.0)
    };
    let new = instance(&clock, |c| {
        shared(c)
            .with_schema(Schema::<Two>::new(2).migrate(1, |o: CountV1| Two { a: o.count, b: 0 }))
    });
    let old = instance(&clock, |c| shared(c).with_schema(Schema::<CountV1>::new(1)));
    let mine = sealed(&old, CountV1 { count: 5 }).await;
    let newer = sealed(&new, Two { a: 1, b: 2 }).await;
    let both = request(&[(NAME, &mine), (NAME, &newer)]);
    clock.advance(secs(10));
    // Read-only, rolling due: nothing written, nothing ended.
    let (_, response, ()) = round::<CountV1, _>(&old, &both, |s| {
        s.get();
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Nothing);
    let (still, _, ()) = round::<Two, _>(&new, &cookie_of(&newer), |_| ()).await;
    assert_eq!(still.rejection(), None);
    // Logout, then the handler stores the default: a removal, both ended.
    let (_, response, ()) = round::<CountV1, _>(&old, &both, |s| {
        s.destroy();
        s.set(CountV1::default())
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Removal);
    let copy = new.load::<Two>(&cookie_of(&newer)).await.unwrap();
    assert_eq!(copy.rejection(), Some(Rejection::Revoked));
    let copy = old.load::<CountV1>(&cookie_of(&mine)).await.unwrap();
    assert_eq!(copy.rejection(), Some(Rejection::Revoked));
}

// =====================================================================
// D. Opening the later candidates: store reads and failures.
// =====================================================================

/// REPRODUCES (low). The cookies after the one that opens are now
/// resolved too, store reads included, and a store error on any of them
/// fails the whole load (`LoadError::Store`, a 503). A browser holding a
/// second pointer cookie of the name (another slot, or one tossed in by
/// a sibling domain: an attacker's own valid pointer), whose entry lives
/// on a Redis Cluster shard that is down, can no longer use the site,
/// although its own session's shard is up; before the change the first
/// cookie that opened won and the others were never read.
///
/// Fix: in `Sessions::load` (src/sessions/mod.rs), a store error on a
/// later candidate should not fail the request: treat that candidate as
/// possibly newer (refuse writes over it, as `newer_schema` does, with
/// `SaveError::Store` on a write) rather than fail reads; or resolve later
/// candidates only up to the envelope (a newer schema needs the entry
/// only for store-held values).
#[tokio::test]
async fn a_store_failure_on_a_later_duplicate_fails_a_good_request() {
    let clock = ManualClock::new(START);
    let store = Arc::new(FailLoad::new(&clock));
    let sessions = Sessions::new(
        ring(&[1]),
        with_store(&clock, store.clone()).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let mine = sealed(&sessions, 7_u32).await;
    let other = sealed(&sessions, 8_u32).await;
    // Load 1: the first cookie's entry; load 2: the second's.
    store.fail_load(2);
    let loaded = sessions
        .load::<u32>(&request(&[(NAME, &mine), (NAME, &other)]))
        .await;
    assert!(
        loaded.as_ref().is_ok_and(|s| s.get() == 7),
        "the session that opened is lost to a failure on another cookie: {:?}",
        loaded.map(|s| s.get())
    );
}

/// HOLDS (bounded). Four copies of one valid pointer cost four entry
/// reads (before the change: one); the first that opens still wins.
#[tokio::test]
async fn duplicates_cost_at_most_one_read_each_and_the_first_still_wins() {
    let clock = ManualClock::new(START);
    let store = Arc::new(FailLoad::new(&clock));
    let sessions = Sessions::new(
        ring(&[1]),
        with_store(&clock, store.clone()).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let first = sealed(&sessions, 1_u32).await;
    let second = sealed(&sessions, 2_u32).await;
    store.reset_loads();
    let pairs: Vec<(&str, &str)> = std::iter::once((NAME, first.as_str()))
        .chain(std::iter::repeat_n((NAME, second.as_str()), 9))
        .collect();
    let session = sessions.load::<u32>(&request(&pairs)).await.unwrap();
    assert_eq!(session.get(), 1);
    assert_eq!(store.loads(), 4);
}

// =====================================================================
// E. Time arithmetic and the blank rule: no panic, no loss.
// =====================================================================

/// HOLDS. Cookies and markers written by instances whose clocks are at
/// the ends of the range (0 and near `u64::MAX`), read by a sane one and
/// the reverse, with revocation and server mode: typed refusals, no
/// panic, and a cookie from the far future is kept.
#[tokio::test]
async fn extreme_clocks_neither_panic_nor_remove_what_may_open() {
    let store: Arc<dyn SessionStore> =
        Arc::new(MemoryStore::new().with_clock(ManualClock::new(START)));
    let at = |t: u64, mode: StoreMode| {
        let clock = ManualClock::new(t);
        Sessions::new(
            ring(&[1]),
            with_store(&clock, Arc::clone(&store))
                .with_revocation(true)
                .with_store_mode(mode)
                // (Both off is refused with revocation since this review.)
                .with_idle_timeout(Some(secs(9 * 365 * 24 * 3600)))
                .with_absolute_timeout(None),
        )
        .unwrap()
    };
    for mode in [StoreMode::Cookie, StoreMode::Server] {
        let sane = at(START, mode);
        // (Eight years ahead, within the nine-year idle timeout: with both
        // timeouts off refused, u64::MAX - 1 would see every cookie
        // expired. The far end is still read below.)
        let far = at(START + 8 * 365 * 24 * 3600, mode);
        let farthest = at(u64::MAX - 1, mode);
        let zero = at(0, mode);
        let future = sealed(&far, 7_u32).await;
        let (rejection, sent) = read_only(&sane, &cookie_of(&future)).await;
        assert_eq!(rejection, Some(Rejection::FromFuture));
        assert_eq!(sent, Sent::Nothing, "another clock may be ahead");
        // Revoked by the far-future instance: the marker's time is in the
        // future, so the copy is kept, and no arithmetic overflows.
        let value = sealed(&sane, 7_u32).await;
        let (_, _, ()) = round::<u32, _>(&far, &cookie_of(&value), |s| s.destroy()).await;
        let (rejection, sent) = read_only(&sane, &cookie_of(&value)).await;
        assert_eq!(rejection, Some(Rejection::Revoked));
        assert_eq!(sent, Sent::Nothing);
        // Sealed at 0, read at both ends.
        let ancient = sealed(&zero, 7_u32).await;
        let _ = read_only(&far, &cookie_of(&ancient)).await;
        let _ = read_only(&farthest, &cookie_of(&ancient)).await;
        let _ = read_only(&farthest, &cookie_of(&value)).await;
        let _ = read_only(&sane, &cookie_of(&sealed(&farthest, 7_u32).await)).await;
        let _ = read_only(&sane, &cookie_of(&ancient)).await;
    }
}

/// HOLDS. The blank rule loses nothing that was in the browser: a loaded
/// session at its default that is renewed is written; a new session
/// that chose a lifetime and holds the default is written; only a new
/// session that holds nothing is not.
#[tokio::test]
async fn the_blank_rule_drops_only_new_sessions_that_hold_nothing() {
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let zero = {
        let value = sealed(&sessions, 3_u32).await;
        let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&value), |s| s.set(0)).await;
        the_cookie(&response).value().to_owned()
    };
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&zero), |s| s.renew()).await;
    assert_eq!(Sent::of(&response), Sent::Cookie, "a renewed session");
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set_lifetime(sealed_session::SessionLifetime::configured().with_idle_timeout(secs(600)));
        s.set(0);
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Cookie, "a chosen lifetime");
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(9);
        s.renew();
        s.set(0);
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Nothing, "nothing held");
}

/// REPRODUCES (medium, same defect as above, without any write by the
/// handler). With rolling re-issue due, a read-only request on the old
/// instance re-seals the opened cookie and `also` revokes its own id.
#[tokio::test]
async fn replace_mode_a_rolling_reissue_revokes_its_own_cookie() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let shared = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(true)
            .with_circuit_breaker(None)
            .with_rolling(0.0)
    };
    let new = instance(&clock, |c| {
        shared(c)
            .with_schema(Schema::<Two>::new(2).migrate(1, |o: CountV1| Two { a: o.count, b: 0 }))
    });
    let old = instance(&clock, |c| {
        shared(c)
            .with_schema(Schema::<CountV1>::new(1))
            .with_replace_newer_schemas(true)
    });
    let v1 = sealed(&old, CountV1 { count: 5 }).await;
    let (_, response, ()) = round::<Two, _>(&new, &cookie_of(&v1), |_| ()).await;
    let v2 = the_cookie(&response).value().to_owned();
    clock.advance(secs(1));
    let (_, response, ()) = round::<CountV1, _>(&old, &request(&[(NAME, &v1), (NAME, &v2)]), |s| {
        s.get();
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Cookie, "re-issued");
    let (next, _, ()) = round::<CountV1, _>(&old, &request_after(&response), |_| ()).await;
    assert_eq!(
        (next.rejection(), next.get()),
        (None, CountV1 { count: 5 }),
        "a read-only request logged the user out"
    );
}

/// REPRODUCES (low; older than this change, but `TimeoutTooLong` now
/// advises it). With revocation, `ConfigError::TimeoutTooLong` says "use
/// None to turn one off"; with both timeouts off, a marker lives 400 days
/// while the cookie opens forever, so a logged-out copy opens again after
/// 400 days: the very thing the error exists to prevent, only sooner
/// (only a `warn` at start-up).
///
/// Fix: in `Sessions::new` (src/sessions/mod.rs), with revocation refuse
/// idle and absolute both `None` too (or give markers `MAX_TTL` and refuse
/// it as unbounded), and reword the error: "use a shorter timeout".
#[tokio::test]
async fn with_both_timeouts_off_a_revoked_copy_opens_again() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    // Fixed: refused up front, so no logged-out copy can outlive its
    // marker.
    let refused = Sessions::new(
        ring(&[1]),
        with_store(&clock, store)
            .with_revocation(true)
            .with_idle_timeout(None)
            .with_absolute_timeout(None),
    );
    assert!(
        matches!(
            refused,
            Err(sealed_session::ConfigError::TimeoutTooLong { .. })
        ),
        "{refused:?}"
    );
}
