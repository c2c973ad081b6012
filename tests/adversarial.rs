//! Attacks from an adversarial review of the session lifecycle (stolen
//! copies, instances whose clocks differ by the allowed skew, a store that
//! fails at one chosen call or holds a call open, slow requests). Each
//! either reproduced a defect before its fix or held up; all stay as
//! regression tests.
//!
//! Run: `cargo test --all-features --test adversarial`
#![cfg(all(feature = "axum", feature = "redis"))]

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::redis_server::RedisServer;
use common::suite::Recording;
use common::{START, request_after, ring, round, the_cookie};
use http::HeaderMap;
use sealed_session::{
    ConfigError, ManualClock, MemoryStore, RedisStore, Rejection, SaveError, SessionConfig,
    SessionStore, Sessions, StoreError, StoreFuture, StoreKey, StoreMode,
};

const MINUTE: Duration = Duration::from_secs(60);

/// Sessions on key ring [1] with `clock` over `store`.
fn on(
    clock: &ManualClock,
    store: Arc<dyn SessionStore>,
    f: impl FnOnce(SessionConfig) -> SessionConfig,
) -> Sessions {
    let config = SessionConfig::default()
        .with_clock(clock.clone())
        .with_shared_store(store);
    Sessions::new(ring(&[1]), f(config)).unwrap()
}

/// A store wrapper that, once armed, holds its next `replace` until
/// released (a slow store), telling the test when the call has started.
#[derive(Debug)]
struct Gate {
    inner: Arc<dyn SessionStore>,
    armed: AtomicBool,
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl SessionStore for Gate {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.inner.load(key)
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.inner.create(key, value, ttl)
    }
    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            if self.armed.swap(false, Ordering::SeqCst) {
                self.entered.notify_one();
                self.release.notified().await;
            }
            self.inner.replace(key, value, ttl).await
        })
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
}

/// Instances C and B share keys and `store`, with revocation and an
/// absolute timeout of `absolute` seconds; B's clock is ahead of C's (and
/// of `real`, the store's) by exactly the allowed skew, 60 s.
fn skewed_pair(
    real: &ManualClock,
    store: Arc<dyn SessionStore>,
    absolute: u64,
) -> (ManualClock, Sessions, Sessions) {
    let ahead = ManualClock::new(sealed_session::Clock::now(real) + 60);
    let cfg = |c: SessionConfig| {
        c.with_revocation(true)
            .with_clock_skew(MINUTE)
            .with_absolute_timeout(Some(Duration::from_secs(absolute)))
    };
    let c = on(real, store.clone(), cfg);
    let b = on(&ahead, store, cfg);
    (ahead, c, b)
}

/// Near the absolute deadline B revokes the session. A marker timed
/// `created + absolute - now_B` would expire 60 s (in real time) before C
/// sees the deadline, and in that window the attacker's copy would open
/// again on C (it did, before the fix): the marker must outlive the
/// deadline as a lagging instance sees it.
#[tokio::test]
async fn a_revoked_copy_stays_refused_near_the_absolute_deadline_on_a_lagging_instance() {
    let real = ManualClock::new(START); // the store's clock, and instance C's
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(real.clone()));
    let (ahead, c, b) = skewed_pair(&real, store, 1000);

    let (_, first, ()) = round(&c, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
    let copy = request_after(&first); // the attacker's copy
    let pass = |s: u64| {
        real.advance(Duration::from_secs(s));
        ahead.advance(Duration::from_secs(s));
    };
    pass(900);
    // The victim logs out, served by B.
    let (gone, _, ()) = round::<Vec<u8>, _>(&b, &copy, |s| s.destroy()).await;
    assert!(!gone.is_new());
    let revoked = c.load::<Vec<u8>>(&copy).await.unwrap();
    assert_eq!(
        revoked.rejection(),
        Some(Rejection::Revoked),
        "revoked at once"
    );
    // 45 s later (real time): C's clock says START + 945, before the
    // absolute deadline START + 1000, so the copy is still valid there.
    pass(45);
    let reopened = c.load::<Vec<u8>>(&copy).await.unwrap();
    assert_eq!(
        reopened.rejection(),
        Some(Rejection::Revoked),
        "a copy of a destroyed session opened again on an instance within the allowed skew \
         (value {:?})",
        reopened.get()
    );
}

/// The same on a real redis-server (TTLs in real time): absolute 62 s,
/// B 60 s ahead: a marker timed by B's clock alone would live 2 s while C
/// accepts the copy for about 62 s.
#[tokio::test]
async fn a_revoked_copy_stays_refused_near_the_absolute_deadline_on_redis() {
    let server = RedisServer::start();
    let store: Arc<dyn SessionStore> = Arc::new(
        RedisStore::connect(&server.url())
            .await
            .unwrap()
            .with_prefix("review:"),
    );
    let real = ManualClock::new(START);
    let (_ahead, c, b) = skewed_pair(&real, store, 62);
    let (_, first, ()) = round(&c, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
    let copy = request_after(&first);
    round::<Vec<u8>, _>(&b, &copy, |s| s.destroy()).await;
    assert_eq!(
        c.load::<Vec<u8>>(&copy).await.unwrap().rejection(),
        Some(Rejection::Revoked)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    real.advance(Duration::from_secs(3));
    let reopened = c.load::<Vec<u8>>(&copy).await.unwrap();
    assert_eq!(
        reopened.rejection(),
        Some(Rejection::Revoked),
        "revoked copy opened again 3 s after logout (C's clock START+3, deadline START+62)"
    );
}

#[tokio::test]
async fn the_layer_answers_409_for_a_session_ended_meanwhile() {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use sealed_session::{Session, SessionLayer};
    use tower::ServiceExt as _;

    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = on(&clock, store, |c| c);
    let slow_clock = clock.clone();
    // A handler that runs past the idle deadline it loaded under (the
    // simplest way to get Ended in one request).
    let app: Router = Router::new()
        .route(
            "/slow",
            get(move |session: Session<u32>| async move {
                slow_clock.advance(Duration::from_secs(24 * 3600));
                session.set(1);
                "done"
            }),
        )
        .layer(SessionLayer::<u32>::new(sessions));
    let response = app
        .oneshot(http::Request::get("/slow").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(response.headers().get(http::header::SET_COOKIE).is_none());
    assert_eq!(
        response.status(),
        http::StatusCode::CONFLICT,
        "SaveError::Ended: README, SECURITY.md, CHANGELOG and SaveError docs say 409"
    );
}

#[tokio::test]
async fn a_cutoff_set_to_now_does_not_break_new_sessions_on_a_lagging_instance() {
    let clock = ManualClock::new(START);
    // The operator sets the cut-off to "now" from a machine whose clock is
    // 30 s ahead of this instance's (within the 60 s skew allowed).
    let cutoff = time::OffsetDateTime::from_unix_timestamp((START + 30) as i64).unwrap();
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = on(&clock, store, |c| c.with_cutoff(Some(cutoff)));
    let login = sessions.load::<u32>(&HeaderMap::new()).await.unwrap();
    login.set(7);
    let mut response = HeaderMap::new();
    let saved = sessions.save(&login, &mut response).await;
    assert!(
        saved.is_ok(),
        "a brand-new session (a login after the breach) fails to save for up to the skew: \
         {saved:?}"
    );
}

#[tokio::test]
async fn a_destroy_during_a_save_is_saved_next_time() {
    let clock = ManualClock::new(START);
    let gate = Arc::new(Gate {
        inner: Arc::new(MemoryStore::new().with_clock(clock.clone())),
        armed: AtomicBool::new(false),
        entered: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let sessions = on(&clock, gate.clone(), |c| {
        c.with_store_mode(StoreMode::Server).with_revocation(true)
    });
    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
    let copy = request_after(&first);
    let session = sessions.load::<Vec<u8>>(&copy).await.unwrap();
    let other = session.clone(); // e.g. a task the handler spawned
    session.set(vec![6u8; 10]);
    gate.armed.store(true, Ordering::SeqCst);
    let mut response = HeaderMap::new();
    let (saved, ()) = tokio::join!(sessions.save(&session, &mut response), async {
        gate.entered.notified().await;
        other.destroy();
        gate.release.notify_one();
    });
    saved.unwrap();
    // The destroy must stick: the next save ends the id.
    let mut second = HeaderMap::new();
    sessions.save(&session, &mut second).await.unwrap();
    let reopened = sessions.load::<Vec<u8>>(&copy).await.unwrap();
    assert!(
        reopened.is_new(),
        "destroy() made during the save was dropped: second save wrote {:?}, \
         the old cookie still opens with {:?}",
        common::set_cookies(&second),
        reopened.get()
    );
}

#[tokio::test]
async fn a_read_only_request_is_not_failed_by_another_tab_shrinking_the_session() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = on(&clock, store, |c| c);
    let (_, big, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
    let cookie = request_after(&big);
    // Past the rolling threshold (10% of 24 h): any request re-issues.
    clock.advance(Duration::from_secs(9000));
    let tab_b = sessions.load::<Vec<u8>>(&cookie).await.unwrap(); // a page view
    let (_, _shrunk, ()) = round::<Vec<u8>, _>(&sessions, &cookie, |s| s.set(vec![2u8; 10])).await; // tab A: "empty cart"
    let _ = tab_b.read(Vec::len);
    let mut response = HeaderMap::new();
    let saved = sessions.save(&tab_b, &mut response).await;
    assert!(
        saved.is_ok(),
        "a read-only request of the same user, nothing ended: {saved:?} (the layer answers 500)"
    );
}

// ===========================================================================
// Attacks that held up (pass; kept as regression tests).
// ===========================================================================

/// The idle side of the marker TTL covers a copy re-issued (rolling) by an
/// instance 60 s ahead, just before the logout, checked every second on an
/// instance 0 s and 60 s behind until the copy's own deadline. (A save of
/// that slow request *after* the logout is `Ended` since review 14, and
/// writes no copy at all.)
#[tokio::test]
async fn the_marker_outlives_a_copy_reissued_by_an_instance_ahead() {
    let real = ManualClock::new(START);
    let ahead = ManualClock::new(START + 60);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(real.clone()));
    let cfg = |c: SessionConfig| {
        c.with_revocation(true)
            .with_clock_skew(MINUTE)
            .with_idle_timeout(Some(Duration::from_secs(100)))
            .with_rolling(0.0)
    };
    let normal = on(&real, store.clone(), cfg);
    let fast = on(&ahead, store.clone(), cfg);
    let (_, first, ()) = round(&normal, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
    real.advance(Duration::from_secs(10));
    ahead.advance(Duration::from_secs(10));
    // A request on the fast instance re-issues the cookie (issued on its
    // clock, 60 s ahead), then the victim logs out on the normal one with
    // the older copy, then a slow request of the fast instance that had
    // loaded before the logout saves: `Ended`, nothing sent.
    let slow = fast.load::<Vec<u8>>(&request_after(&first)).await.unwrap();
    let reissuing = fast.load::<Vec<u8>>(&request_after(&first)).await.unwrap();
    reissuing.set(vec![6u8; 10]);
    let mut reissued = HeaderMap::new();
    fast.save(&reissuing, &mut reissued).await.unwrap();
    round::<Vec<u8>, _>(&normal, &request_after(&first), |s| s.destroy()).await;
    slow.set(vec![7u8; 10]);
    let mut late = HeaderMap::new();
    assert_eq!(fast.save(&slow, &mut late).await, Err(SaveError::Ended));
    assert!(late.is_empty());
    let copy = request_after(&reissued);
    for _ in 0..200 {
        for instance in [&normal, &fast] {
            let s = instance.load::<Vec<u8>>(&copy).await.unwrap();
            assert!(s.is_new(), "{:?}", s.rejection());
        }
        real.advance(Duration::from_secs(1));
        ahead.advance(Duration::from_secs(1));
    }
}

/// A slow request that loaded before a renew-with-revocation and then
/// renews itself gets Ended; a slow one that grows a cookie-held session
/// into the store gets Ended too since review 14 (it wrote a pointer that
/// stayed revoked, and replaced the renew's cookie), and creates no
/// entry.
#[tokio::test]
async fn slow_requests_cannot_resurrect_after_renew() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = on(&clock, store, |c| c.with_revocation(true));
    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
    let copy = request_after(&first);
    let slow_renew = sessions.load::<Vec<u8>>(&copy).await.unwrap();
    let slow_grow = sessions.load::<Vec<u8>>(&copy).await.unwrap();
    round::<Vec<u8>, _>(&sessions, &copy, |s| s.renew()).await;
    slow_renew.renew();
    let mut r = HeaderMap::new();
    assert!(matches!(
        sessions.save(&slow_renew, &mut r).await,
        Err(SaveError::Ended)
    ));
    assert!(r.is_empty());
    slow_grow.set(vec![7u8; 6000]);
    let mut g = HeaderMap::new();
    assert_eq!(
        sessions.save(&slow_grow, &mut g).await,
        Err(SaveError::Ended)
    );
    assert!(g.is_empty());
    let s = sessions.load::<Vec<u8>>(&copy).await.unwrap();
    assert_eq!(s.rejection(), Some(Rejection::Revoked));
}

/// MemoryStore byte accounting through expiry, refused replace, sweep and
/// delete: the full byte budget is usable again afterwards.
#[tokio::test]
async fn memory_store_accounting_survives_expiry_refusals_and_sweeps() {
    let clock = ManualClock::new(START);
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_max_bytes(100)
        .with_max_entries(3);
    let key = |b| StoreKey::from_bytes([b; 32]);
    let sec = Duration::from_secs(1);
    assert!(store.create(&key(1), &[0; 60], sec).await.unwrap());
    assert_eq!(
        store.replace(&key(1), &[0; 101], sec).await,
        Err(StoreError::Full)
    );
    assert!(store.replace(&key(1), &[0; 100], sec).await.unwrap());
    clock.advance(Duration::from_secs(1));
    // Expired: replace refuses (and drops it), create of another fits.
    assert!(!store.replace(&key(1), &[0; 10], MINUTE).await.unwrap());
    assert!(store.create(&key(2), &[0; 100], sec).await.unwrap());
    clock.advance(Duration::from_secs(1));
    assert!(store.create(&key(3), &[0; 50], MINUTE).await.unwrap());
    assert!(store.create(&key(4), &[0; 50], MINUTE).await.unwrap());
    assert!(store.create(&key(5), &[], MINUTE).await.unwrap());
    assert_eq!(
        store.create(&key(6), &[], MINUTE).await,
        Err(StoreError::Full)
    );
    assert!(store.replace(&key(5), &[], MINUTE).await.unwrap());
    assert!(store.delete(&key(3)).await.unwrap());
    assert!(store.delete(&key(4)).await.unwrap());
    assert!(store.create(&key(6), &[0; 100], MINUTE).await.unwrap());
    assert!(format!("{store:?}").contains("bytes: 100"), "{store:?}");
}

/// Deployments with different contexts on one store: markers of one do
/// not revoke the other's sessions, even for the same session id bytes
/// (an attacker cannot choose ids, but the namespaces must be apart).
#[tokio::test]
async fn the_context_separates_markers_and_entries() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let prod = on(&clock, store.clone(), |c| {
        c.with_revocation(true).with_context("a")
    });
    let stage = on(&clock, store.clone(), |c| {
        c.with_revocation(true).with_context("b")
    });
    let (_, p, ()) = round(&prod, &HeaderMap::new(), |s| s.set(vec![5u8; 6000])).await;
    let s = stage.load::<Vec<u8>>(&request_after(&p)).await.unwrap();
    assert_eq!(s.rejection(), Some(Rejection::Forged));
    s.destroy();
    let mut r = HeaderMap::new();
    stage.save(&s, &mut r).await.unwrap();
    let (back, _, ()) = round::<Vec<u8>, _>(&prod, &request_after(&p), |_| ()).await;
    assert_eq!(back.get().len(), 6000);
    let _ = the_cookie(&p);
}

/// Timestamps are whole seconds: a sub-second timeout would end every
/// session at once (every save `Ended`), so it is a configuration error.
#[tokio::test]
async fn timeouts_under_a_second_are_refused() {
    let clock = ManualClock::new(START);
    for (idle, absolute) in [
        (Some(Duration::from_millis(500)), None),
        (None, Some(Duration::from_millis(999))),
    ] {
        let built = Sessions::new(
            ring(&[1]),
            SessionConfig::default()
                .with_clock(clock.clone())
                .with_idle_timeout(idle)
                .with_absolute_timeout(absolute),
        );
        assert_eq!(built.unwrap_err(), ConfigError::TimeoutTooShort);
    }
}

#[tokio::test]
async fn a_value_saved_after_the_removal_starts_its_own_lifetime() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = on(&clock, store, |c| c.with_revocation(true));
    let (old, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 10])).await;
    clock.advance(Duration::from_secs(3000));
    let s = sessions
        .load::<Vec<u8>>(&request_after(&first))
        .await
        .unwrap();
    s.destroy();
    let mut removal = HeaderMap::new();
    sessions.save(&s, &mut removal).await.unwrap();
    s.set(vec![2u8; 10]);
    let mut again = HeaderMap::new();
    sessions.save(&s, &mut again).await.unwrap();
    let new = sessions.inspect(the_cookie(&again).value()).unwrap();
    assert_ne!(new.session_id, old.id());
    assert_eq!(
        new.created,
        START + 3000,
        "a new session id sealed with the destroyed session's created time"
    );
}

/// With revocation on, a store that is down makes loading an inline cookie
/// an error (the marker cannot be checked), never an empty session; a
/// request without a valid cookie still loads.
#[tokio::test]
async fn a_store_down_with_revocation_is_an_error_not_an_empty_session() {
    let clock = ManualClock::new(START);
    let fail = Arc::new(Recording::new(Arc::new(
        MemoryStore::new().with_clock(clock.clone()),
    )));
    let sessions = on(&clock, fail.clone(), |c| c.with_revocation(true));
    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 10])).await;
    fail.fail_call(1);
    assert!(
        sessions
            .load::<Vec<u8>>(&request_after(&first))
            .await
            .is_err()
    );
    fail.fail_call(1);
    let garbage = common::request(&[("__Host-session", "AAAA"), ("__Host-session", "")]);
    assert!(sessions.load::<Vec<u8>>(&garbage).await.unwrap().is_new());
}

/// Revocation on, a store-held session renewed (login): the store fails
/// the delete of the old entry, after the marker was written. Every copy
/// of the old cookie is already refused, so the renew completes (the old
/// entry expires with its time to live) instead of losing the session.
#[tokio::test]
async fn a_renew_whose_old_entry_delete_fails_after_the_marker_still_completes() {
    let clock = ManualClock::new(START);
    let fail = Arc::new(Recording::new(Arc::new(
        MemoryStore::new().with_clock(clock.clone()),
    )));
    let sessions = on(&clock, fail.clone(), |c| c.with_revocation(true));
    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 6000])).await;
    let cookie = request_after(&first);
    let login = sessions.load::<Vec<u8>>(&cookie).await.unwrap();
    login.renew();
    // New entry, check of the old one, marker, the note left where the
    // old entry was (`load.rs`: which refused cookies are removed), delete.
    fail.fail_call(5);
    let mut response = HeaderMap::new();
    let saved = sessions.save(&login, &mut response).await;
    let calls = fail.calls();
    assert_eq!(calls, ["create", "load", "create", "create", "delete"]);
    assert_eq!(saved, Ok(()));
    let old = sessions.load::<Vec<u8>>(&cookie).await.unwrap();
    assert_eq!(old.rejection(), Some(Rejection::Revoked));
    let new = sessions
        .load::<Vec<u8>>(&request_after(&response))
        .await
        .unwrap();
    assert_eq!(new.get(), vec![5u8; 6000]);
}

/// Without revocation the delete is what ends the old id (or takes the
/// entry back into the cookie): a store failing it fails the save, and
/// everything stays as it was.
#[tokio::test]
async fn without_revocation_a_failed_delete_fails_the_save_and_keeps_the_entry() {
    for shrink in [true, false] {
        let clock = ManualClock::new(START);
        let fail = Arc::new(Recording::new(Arc::new(
            MemoryStore::new().with_clock(clock.clone()),
        )));
        let sessions = on(&clock, fail.clone(), |c| c);
        let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 6000])).await;
        let cookie = request_after(&first);
        let s = sessions.load::<Vec<u8>>(&cookie).await.unwrap();
        if shrink {
            s.set(vec![6u8; 10]); // moves back into the cookie
        } else {
            s.renew();
        }
        // After the note (and create, load on renew).
        let delete = if shrink { 2 } else { 4 };
        fail.fail_call(delete);
        let mut response = HeaderMap::new();
        let saved = sessions.save(&s, &mut response).await;
        assert_eq!(
            fail.calls()[delete as usize - 1],
            "delete",
            "shrink {shrink}"
        );
        assert!(matches!(saved, Err(SaveError::Store(_))), "{saved:?}");
        assert!(response.is_empty());
        let kept = sessions.load::<Vec<u8>>(&cookie).await.unwrap();
        assert_eq!(kept.get(), vec![5u8; 6000], "shrink {shrink}");
    }
}

/// With a store, the smallest size limit leaves room for a pointer cookie,
/// and a pointer is sealed before its entry is written: no save leaves an
/// entry behind.
#[tokio::test]
async fn the_size_limit_leaves_room_for_a_pointer_when_a_store_is_configured() {
    let clock = ManualClock::new(START);
    let memory = MemoryStore::new().with_clock(clock.clone());
    let store: Arc<dyn SessionStore> = Arc::new(memory.clone());
    let config = || {
        SessionConfig::default()
            .with_clock(clock.clone())
            .with_shared_store(store.clone())
    };
    let Err(ConfigError::SizeLimitTooSmall { minimum }) =
        Sessions::new(ring(&[1]), config().with_size_limit(120))
    else {
        panic!("a limit with no room for a pointer cookie must be refused");
    };
    let sessions = Sessions::new(ring(&[1]), config().with_size_limit(minimum)).unwrap();
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 100])).await;
    assert_eq!(memory.len(), 1);
    let back = sessions
        .load::<Vec<u8>>(&request_after(&response))
        .await
        .unwrap();
    assert!(back.in_store());
    assert_eq!(back.get(), vec![1u8; 100]);
}

/// Destroy, then a value set, in server mode with revocation: the store
/// fails the first or second write; nothing changes and a retry completes.
/// A failure of the last call (the old entry's delete) comes after the
/// marker: the save completes and the copy is refused.
#[tokio::test]
async fn destroy_then_set_failing_at_any_store_call() {
    for n in 1..=4usize {
        let clock = ManualClock::new(START);
        let memory = MemoryStore::new().with_clock(clock.clone());
        let fail = Arc::new(Recording::new(Arc::new(memory.clone())));
        let sessions = on(&clock, fail.clone(), |c| {
            c.with_revocation(true).with_store_mode(StoreMode::Server)
        });
        let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
        let copy = request_after(&first);
        let s = sessions.load::<Vec<u8>>(&copy).await.unwrap();
        s.destroy();
        s.set(vec![9u8; 10]);
        fail.fail_call(n as i64);
        let mut response = HeaderMap::new();
        let saved = sessions.save(&s, &mut response).await;
        let calls = fail.calls();
        // New entry, marker, note, delete (then the undo of a created
        // entry, on failure). The note is best effort: its failure (3)
        // fails nothing.
        assert_eq!(
            calls[..n],
            ["create", "create", "create", "delete"][..n],
            "{n}"
        );
        if n < 3 {
            assert!(saved.is_err(), "{n}");
            assert!(response.is_empty());
            let old = sessions.load::<Vec<u8>>(&copy).await.unwrap();
            assert_eq!(old.get(), vec![5u8; 10], "{n}: nothing changed");
            sessions.save(&s, &mut response).await.unwrap();
        } else {
            assert_eq!(saved, Ok(()));
        }
        let new = sessions
            .load::<Vec<u8>>(&request_after(&response))
            .await
            .unwrap();
        assert_eq!(new.get(), vec![9u8; 10]);
        let old = sessions.load::<Vec<u8>>(&copy).await.unwrap();
        assert_eq!(old.rejection(), Some(Rejection::Revoked), "{n}");
    }
}

/// Found by the model-based test (948,333 cases in): a request loads a
/// session, another renews it (revoking the old id), and the slow one
/// renews it too after the old session's absolute deadline, when the
/// marker is gone. A renewed value keeps its session's absolute deadline:
/// the slow renew is `Ended`, and carries nothing into a new id.
#[tokio::test]
async fn a_slow_renew_after_the_absolute_deadline_carries_nothing_on() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let sessions = on(&clock, store, |c| {
        c.with_revocation(true)
            .with_idle_timeout(Some(Duration::from_secs(1000)))
            .with_absolute_timeout(Some(Duration::from_secs(1500)))
    });
    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
    clock.advance(Duration::from_secs(939));
    let copy = request_after(&first);
    let slow = sessions.load::<Vec<u8>>(&copy).await.unwrap();
    assert_eq!(slow.get(), vec![5u8; 10]);
    round::<Vec<u8>, _>(&sessions, &copy, |s| s.renew()).await;
    // Past the old session's absolute deadline (and its marker's life),
    // within the slow request's idle window.
    clock.advance(Duration::from_secs(999));
    slow.renew();
    let mut response = HeaderMap::new();
    let saved = sessions.save(&slow, &mut response).await;
    assert_eq!(saved, Err(SaveError::Ended));
    assert!(response.is_empty());
}
