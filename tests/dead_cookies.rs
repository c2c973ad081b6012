//! Issue 17 item 4: what the browser is told when nothing of value is left.
//!
//! - A new session still holding `T::default()` gets no cookie (as the
//!   peers do: an empty session is no session).
//! - A cookie that can never open again is removed; one another instance
//!   may still open is kept; one that died because of another request a
//!   moment ago is kept until it has been dead for a minute plus the skew
//!   (that request's new cookie may be on its way). The table is in
//!   `src/sessions/load.rs`.

mod common;

use common::sent::{self, Sent};
use std::sync::Arc;

use common::{
    START, config, cookie_of, instance, request, request_after, round, sealed, secs, the_cookie,
};
use http::HeaderMap;
use sealed_session::{
    Key, Keyring, ManualClock, MemoryStore, Rejection, SessionConfig, SessionLifetime,
    SessionStore, Sessions, StoreMode,
};
use time::OffsetDateTime;

const DAY: u64 = 24 * 3600;

/// Loads `request`, only reads, saves: the refusal and what the browser
/// is told.
async fn read_only(sessions: &Sessions, request: &HeaderMap) -> (Option<Rejection>, Sent) {
    sent::read_only::<u32>(sessions, request, Sent::of).await
}

fn clock() -> ManualClock {
    ManualClock::new(START)
}

fn with_store(clock: &ManualClock, store: &Arc<dyn SessionStore>) -> SessionConfig {
    config(clock)
        .with_shared_store(store.clone())
        .with_circuit_breaker(None)
}

fn memory(clock: &ManualClock) -> Arc<dyn SessionStore> {
    Arc::new(MemoryStore::new().with_clock(clock.clone()))
}

// ---- a new session at T::default() -----------------------------------

/// What a handler does.
type Act = fn(&sealed_session::Session<u32>);

#[tokio::test]
async fn a_new_session_left_at_its_default_sends_no_cookie() {
    let clock = clock();
    let sessions = instance(&clock, |c| c);
    let cases: [(&str, Act); 5] = [
        ("a no-op update", |s| s.update(|_| ())),
        ("set to the default", |s| s.set(0)),
        ("set, then set back", |s| {
            s.set(5);
            s.set(0)
        }),
        ("renew of nothing", |s| s.renew()),
        ("destroy of nothing, then set the default", |s| {
            s.destroy();
            s.set(0)
        }),
    ];
    for (what, act) in cases {
        let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), act).await;
        let sent = Sent::of(&response);
        // A destroy with no cookie loaded still sends its removal (as
        // before: the browser may hold a cookie that did not open).
        let want = if what.starts_with("destroy") {
            Sent::Removal
        } else {
            Sent::Nothing
        };
        assert_eq!(sent, want, "{what}");
    }
    // A value that is not the default is written, and so is a new session
    // that chose a lifetime of its own (a "remember me" before the value).
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| s.set(1)).await;
    assert_eq!(Sent::of(&response), Sent::Cookie);
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set_lifetime(SessionLifetime::configured().with_idle_timeout(secs(3600)))
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Cookie);
}

#[tokio::test]
async fn destroy_then_setting_the_default_is_a_logout() {
    // The value set after destroy is no value: the browser's cookie is
    // removed (not replaced by a cookie holding nothing), and with
    // revocation the old id is ended all the same.
    let clock = clock();
    let store = memory(&clock);
    let sessions = Sessions::new(
        common::ring(&[1]),
        with_store(&clock, &store).with_revocation(true),
    )
    .unwrap();
    let value = sealed(&sessions, 7_u32).await;
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&value), |s| {
        s.destroy();
        s.update(|_| ())
    })
    .await;
    assert_eq!(Sent::of(&response), Sent::Removal);
    let (rejection, _) = read_only(&sessions, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::Revoked));
}

#[tokio::test]
async fn a_loaded_session_set_to_its_default_is_still_written() {
    // Only a brand-new session is "nothing": a user's session set back to
    // the default keeps its id and is written (the change must reach the
    // browser, or the old value would come back).
    let clock = clock();
    let sessions = instance(&clock, |c| c);
    let value = sealed(&sessions, 7_u32).await;
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of(&value), |s| s.set(0)).await;
    assert_eq!(Sent::of(&response), Sent::Cookie);
    let (session, _, ()) = round::<u32, _>(&sessions, &request_after(&response), |_| ()).await;
    assert_eq!((session.is_new(), session.get()), (false, 0));
}

// ---- cookies that can never open again: removed -----------------------

#[tokio::test]
async fn garbage_and_forged_cookies_are_removed_at_once() {
    let clock = clock();
    let sessions = instance(&clock, |c| c);
    let value = sealed(&sessions, 7_u32).await;
    // One character changed in the middle: the key id still names key 1.
    let mut forged = value.clone().into_bytes();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for (cookie, reason) in [
        ("not-a-sealed-value!", Rejection::Malformed),
        ("AAAA", Rejection::Malformed),
        (forged.as_str(), Rejection::Forged),
    ] {
        let (rejection, sent) = read_only(&sessions, &cookie_of(cookie)).await;
        assert_eq!(rejection, Some(reason), "{cookie}");
        assert_eq!(sent, Sent::Removal, "{reason}");
    }
}

/// Only the exact spelling `__Host-` counts for removal: browsers from
/// before RFC 6265bis made the prefixes case-insensitive take `__host-`
/// as an ordinary name, which a sibling subdomain may set, so a removal
/// might not reach the cookie sent. Configuration checks `__host-` as a
/// prefix all the same (tests/config.rs).
#[tokio::test]
async fn under_a_lowercase_host_prefix_nothing_is_removed() {
    let clock = clock();
    for (name, removed) in [
        ("__host-session", Sent::Nothing),
        ("__Host-session", Sent::Removal),
    ] {
        let sessions = instance(&clock, |c| c.with_cookie_name(name));
        let session = sessions
            .load::<u32>(&request(&[(name, "garbage")]))
            .await
            .unwrap();
        assert_eq!(session.rejection(), Some(Rejection::Malformed), "{name}");
        let mut response = HeaderMap::new();
        sessions.save(&session, &mut response).await.unwrap();
        assert_eq!(Sent::of_any(&response), removed, "{name}");
    }
}

#[tokio::test]
async fn a_handler_that_writes_replaces_a_dead_cookie_with_one_set_cookie() {
    let clock = clock();
    let sessions = instance(&clock, |c| c);
    let (_, response, ()) = round::<u32, _>(&sessions, &cookie_of("garbage"), |s| s.set(3)).await;
    assert_eq!(Sent::of(&response), Sent::Cookie);
}

#[tokio::test]
async fn a_cookie_before_the_cutoff_is_removed() {
    let clock = clock();
    let sessions = instance(&clock, |c| c);
    let value = sealed(&sessions, 7_u32).await;
    clock.advance(secs(10));
    let cutoff = OffsetDateTime::from_unix_timestamp((START + 5) as i64).unwrap();
    let after = instance(&clock, |c| c.with_cutoff(Some(cutoff)));
    let (rejection, sent) = read_only(&after, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::BeforeCutoff));
    assert_eq!(sent, Sent::Removal);
}

#[tokio::test]
async fn an_expired_cookie_is_removed_only_a_minute_past_its_deadline() {
    // Idle timeout 1 hour, skew 60 s: dead for good 2 minutes after the
    // deadline. Just past it, another request may have re-issued it (it
    // loaded in time) and its new cookie may be on the way.
    let clock = clock();
    let sessions = instance(&clock, |c| {
        c.with_idle_timeout(Some(secs(3600)))
            .with_clock_skew(secs(60))
    });
    // A lifetime of its own: the deadline travels in the cookie.
    let (_, response, ()) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| {
        s.set(7);
        s.set_lifetime(SessionLifetime::configured().with_idle_timeout(secs(3600)));
    })
    .await;
    let value = the_cookie(&response).value().to_owned();
    // Following the configured timeouts: never removed here (an instance
    // configured with longer ones may open it; its Max-Age ends it).
    let follows = sealed(&sessions, 7_u32).await;
    for (after, want) in [
        (3600, Sent::Nothing),
        (3600 + 60, Sent::Nothing),
        (3600 + 119, Sent::Nothing),
        // The deadline (3600 s after issue, itself expired) 120 s ago.
        (3600 + 120, Sent::Removal),
        (30 * DAY, Sent::Removal),
    ] {
        let at = ManualClock::new(START + after);
        let later = instance(&at, |c| {
            c.with_idle_timeout(Some(secs(3600)))
                .with_clock_skew(secs(60))
        });
        let (rejection, sent) = read_only(&later, &cookie_of(&value)).await;
        assert!(
            matches!(
                rejection,
                Some(Rejection::IdleExpired | Rejection::AbsoluteExpired)
            ),
            "{after}: {rejection:?}"
        );
        assert_eq!(sent, want, "{after} s after the cookie was issued");
        let (_, sent) = read_only(&later, &cookie_of(&follows)).await;
        assert_eq!(sent, Sent::Nothing, "{after}: configured timeouts");
    }
}

#[tokio::test]
async fn a_cookie_expired_only_under_this_instances_lower_bounds_is_kept() {
    // Instance A allows a 30-day "remember me"; instance B, with a lower
    // bound, refuses it after a day. A still opens it: B must not remove it.
    let clock = clock();
    let a = instance(&clock, |c| c.with_max_idle_timeout(Some(secs(30 * DAY))));
    let (_, response, ()) = round::<u32, _>(&a, &HeaderMap::new(), |s| {
        s.set(7);
        s.set_lifetime(SessionLifetime::configured().with_idle_timeout(secs(30 * DAY)));
    })
    .await;
    let value = the_cookie(&response).value().to_owned();
    clock.advance(secs(3 * DAY));
    let b = instance(&clock, |c| c);
    let (rejection, sent) = read_only(&b, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::IdleExpired));
    assert_eq!(sent, Sent::Nothing);
    let (rejection, _) = read_only(&a, &cookie_of(&value)).await;
    assert_eq!(rejection, None, "A still opens it");
}

// ---- cookies another instance may open: kept --------------------------

#[tokio::test]
async fn cookies_another_instance_may_open_are_kept() {
    let clock = clock();
    let sessions = instance(&clock, |c| c);
    // Under a key this instance does not hold (a rotation under way).
    let other = Sessions::new(Keyring::new(Key::generate()), config(&clock)).unwrap();
    let unknown_key = sealed(&other, 7_u32).await;
    // Authentic but not a `bool` (a release with another type wrote it).
    let not_a_bool = sealed(&sessions, 5_u8).await;
    // Issued in the future beyond the skew (this clock is behind).
    let ahead = ManualClock::new(START + 3600);
    let from_future = sealed(&instance(&ahead, |c| c), 7_u32).await;
    // Over this instance's size limit (an instance with a higher one).
    let big = instance(&clock, |c| c.with_size_limit(8192));
    let too_large = sealed(&big, vec![7_u8; 5000]).await;
    let cases: [(&str, &str, Rejection); 4] = [
        ("unknown key", &unknown_key, Rejection::UnknownKey),
        ("from the future", &from_future, Rejection::FromFuture),
        ("too large", &too_large, Rejection::TooLarge),
        (
            "unknown version",
            "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            Rejection::UnknownVersion(0),
        ),
    ];
    for (what, cookie, reason) in cases {
        let (rejection, sent) = read_only(&sessions, &cookie_of(cookie)).await;
        match (rejection, reason) {
            (Some(Rejection::UnknownVersion(_)), Rejection::UnknownVersion(_)) => {}
            _ => assert_eq!(rejection, Some(reason), "{what}"),
        }
        assert_eq!(sent, Sent::Nothing, "{what}");
    }
    let session = sessions
        .load::<bool>(&cookie_of(&not_a_bool))
        .await
        .unwrap();
    assert_eq!(session.rejection(), Some(Rejection::Incompatible));
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    assert_eq!(Sent::of(&response), Sent::Nothing, "incompatible");
}

#[tokio::test]
async fn a_dead_cookie_next_to_one_that_may_open_elsewhere_is_not_removed() {
    // The removal would hit both (same name, path and domain): it is sent
    // only when every cookie refused is dead for good.
    let clock = clock();
    let sessions = instance(&clock, |c| c);
    let other = Sessions::new(Keyring::new(Key::generate()), config(&clock)).unwrap();
    let unknown_key = sealed(&other, 7_u32).await;
    for pairs in [
        [
            ("__Host-session", "garbage"),
            ("__Host-session", unknown_key.as_str()),
        ],
        [
            ("__Host-session", unknown_key.as_str()),
            ("__Host-session", "garbage"),
        ],
    ] {
        let (_, sent) = read_only(&sessions, &request(&pairs)).await;
        assert_eq!(sent, Sent::Nothing, "{pairs:?}");
    }
    // A dead cookie next to one that opens: the session is that one's,
    // and nothing is removed.
    let live = sealed(&sessions, 9_u32).await;
    let (session, response, ()) = round::<u32, _>(
        &sessions,
        &request(&[("__Host-session", "garbage"), ("__Host-session", &live)]),
        |_| (),
    )
    .await;
    assert_eq!(session.get(), 9);
    assert_eq!(Sent::of(&response), Sent::Nothing);
}

// ---- ended by another request: kept for a minute, then removed -------

#[tokio::test]
async fn a_revoked_copy_is_removed_only_a_minute_after_the_logout() {
    let clock = clock();
    let store = memory(&clock);
    let sessions = Sessions::new(
        common::ring(&[1]),
        with_store(&clock, &store).with_revocation(true),
    )
    .unwrap();
    let value = sealed(&sessions, 7_u32).await;
    // A login (renew) in one request; a parallel request still carries
    // the old cookie.
    let (_, login, ()) = round::<u32, _>(&sessions, &cookie_of(&value), |s| s.renew()).await;
    assert_eq!(Sent::of(&login), Sent::Cookie);
    let (rejection, sent) = read_only(&sessions, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::Revoked));
    assert_eq!(
        sent,
        Sent::Nothing,
        "the login's new cookie may be on its way"
    );
    clock.advance(secs(120));
    let (_, sent) = read_only(&sessions, &cookie_of(&value)).await;
    assert_eq!(sent, Sent::Nothing, "60 s plus the 60 s skew: not yet");
    clock.advance(secs(1));
    let (rejection, sent) = read_only(&sessions, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::Revoked));
    assert_eq!(sent, Sent::Removal);
}

#[tokio::test]
async fn a_pointer_to_an_entry_that_moved_a_moment_ago_is_kept() {
    // Server mode, no revocation: a renew deletes the old entry. A request
    // with the old pointer, in flight meanwhile, must not remove the
    // cookie the renew is sending; later it does.
    let clock = clock();
    let store = memory(&clock);
    let sessions = Sessions::new(
        common::ring(&[1]),
        with_store(&clock, &store).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let value = sealed(&sessions, 7_u32).await;
    let (_, renewed, ()) = round::<u32, _>(&sessions, &cookie_of(&value), |s| s.renew()).await;
    assert_eq!(Sent::of(&renewed), Sent::Cookie);
    let (rejection, sent) = read_only(&sessions, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::MissingStoreEntry));
    assert_eq!(sent, Sent::Nothing);
    clock.advance(secs(121));
    let (rejection, sent) = read_only(&sessions, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::MissingStoreEntry));
    assert_eq!(sent, Sent::Removal);
}

#[tokio::test]
async fn a_pointer_left_behind_by_a_session_moving_back_into_its_cookie_is_kept() {
    // A store-held session shrinks: its value moves back into the cookie
    // and the entry is deleted. A parallel request with the old pointer
    // must not remove the new cookie-held one.
    let clock = clock();
    let store = memory(&clock);
    let sessions = Sessions::new(common::ring(&[1]), with_store(&clock, &store)).unwrap();
    let (_, big, ()) =
        round::<Vec<u8>, _>(&sessions, &HeaderMap::new(), |s| s.set(vec![7; 6000])).await;
    let pointer = the_cookie(&big).value().to_owned();
    let (_, small, ()) =
        round::<Vec<u8>, _>(&sessions, &cookie_of(&pointer), |s| s.set(vec![1])).await;
    assert_eq!(Sent::of(&small), Sent::Cookie);
    let session = sessions
        .load::<Vec<u8>>(&cookie_of(&pointer))
        .await
        .unwrap();
    assert_eq!(session.rejection(), Some(Rejection::MissingStoreEntry));
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    assert_eq!(Sent::of(&response), Sent::Nothing);
}

#[tokio::test]
async fn a_pointer_whose_entry_vanished_without_a_note_is_removed() {
    // The store was emptied (a restart without persistence): no request of
    // ours deleted the entry, so no new cookie can be on its way.
    let clock = clock();
    let before = memory(&clock);
    let sessions = Sessions::new(
        common::ring(&[1]),
        with_store(&clock, &before).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let value = sealed(&sessions, 7_u32).await;
    let emptied = memory(&clock);
    let restarted = Sessions::new(
        common::ring(&[1]),
        with_store(&clock, &emptied).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let (rejection, sent) = read_only(&restarted, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::MissingStoreEntry));
    assert_eq!(sent, Sent::Removal);
}

#[tokio::test]
async fn a_note_that_cannot_be_read_keeps_the_cookie() {
    // The entry is gone and the store fails when asked for the note: not
    // knowing when the entry went, the cookie is kept.
    let clock = clock();
    let before = memory(&clock);
    let sessions = Sessions::new(
        common::ring(&[1]),
        with_store(&clock, &before).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let value = sealed(&sessions, 7_u32).await;
    // Load 1: the entry (gone), load 2: the note (fails).
    let failing = common::fail_load::FailLoad::new(&clock);
    failing.fail_load(2);
    let flaky: Arc<dyn SessionStore> = Arc::new(failing);
    let restarted = Sessions::new(
        common::ring(&[1]),
        with_store(&clock, &flaky).with_store_mode(StoreMode::Server),
    )
    .unwrap();
    let (rejection, sent) = read_only(&restarted, &cookie_of(&value)).await;
    assert_eq!(rejection, Some(Rejection::MissingStoreEntry));
    assert_eq!(sent, Sent::Nothing);
    // Asked again with the store answering: removed.
    let (_, sent) = read_only(&restarted, &cookie_of(&value)).await;
    assert_eq!(sent, Sent::Removal);
}

// ---- duplicates ---------------------------------------------------------

#[tokio::test]
async fn duplicates_opened_to_look_for_a_newer_schema_do_not_count_as_opens() {
    // A request with two valid cookies of the name: one session, one open
    // counted for its key (the count says how many sessions a key still
    // serves, the signal for retiring it).
    let clock = clock();
    for store in [false, true] {
        let sessions = if store {
            let store = memory(&clock);
            Sessions::new(common::ring(&[1]), with_store(&clock, &store)).unwrap()
        } else {
            instance(&clock, |c| c)
        };
        let a = sealed(&sessions, 1_u32).await;
        let b = sealed(&sessions, 2_u32).await;
        let before = sessions.keyring().stats()[0].opens;
        let (session, _, ()) = round::<u32, _>(
            &sessions,
            &request(&[("__Host-session", &a), ("__Host-session", &b)]),
            |_| (),
        )
        .await;
        assert_eq!(session.get(), 1, "the first that opens wins");
        assert_eq!(
            sessions.keyring().stats()[0].opens - before,
            1,
            "store {store}"
        );
    }
}
