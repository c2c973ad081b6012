//! Review 14: an attack on the review-13 fixes (`576c964..44903a6`): the
//! skipped re-issue of a revoked id (then `Write::reissue_only`,
//! `Inner::reissue_ended`) and the new log limiters (`Warnings`).
//!
//! Run with `cargo test --features axum --test review14_attacks`.
//!
//! Tests named `finding_*` reproduced a weakness and failed on 44903a6;
//! they now check the fixes (with revocation, every write that keeps a
//! cookie-held id reads its marker again, `Inner::ended_meanwhile`: a
//! changed value whose id was revoked meanwhile is `Ended`; a removal of
//! a client's dead cookie no longer uses up the shared-cache `warn`).
//! Tests named `holds_*` passed on 44903a6; the two about a failed marker
//! read now expect a store error for a changed value where 44903a6 wrote
//! it without a read, as their comments say.
//!
//! This binary reads logs through the one global capture
//! (`common::capture::global`); each test filters the lines by a text
//! only it produces.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use common::capture::global_warns;
use common::fail_load::FailLoad;
use common::sent::Sent;
use common::*;
use http::header::{CACHE_CONTROL, COOKIE};
use http::{HeaderMap, HeaderValue, Request, Response};
use sealed_session::{
    Import, Imported, ManualClock, MemoryStore, REJECTION_WARN_INTERVAL, Session, SessionConfig,
    SessionLayer, SessionStore,
};
use tower::{Layer as _, ServiceExt as _, service_fn};

fn capture() {
    common::capture::global();
}

/// What the browser holds after the login's answer and then A's (A's
/// answer arrives last): A's cookie if it sent one, else the login's.
fn last_held(login: &HeaderMap, a: &HeaderMap) -> String {
    match Sent::of(a) {
        Sent::Cookie => cookie_in(a),
        Sent::Nothing => cookie_in(login),
        Sent::Removal => panic!("request A removed the cookie"),
    }
}

fn cookie_in(response: &HeaderMap) -> String {
    the_cookie(response).value().to_owned()
}

fn revoking(clock: &ManualClock) -> impl FnOnce(SessionConfig) -> SessionConfig {
    let clock = clock.clone();
    move |c| {
        c.with_store(MemoryStore::new().with_clock(clock))
            .with_revocation(true)
    }
}

// ---------------------------------------------------------------------
// 1. The race review 13 fixed, with a write that is not a pure re-issue.
// ---------------------------------------------------------------------

/// FINDING (medium: a user logged out, no error anywhere). The review-13
/// race (request A loads cookie-held session X; request B, the login,
/// renews X, revoking it; B's answer arrives first, then A's) is closed
/// only when A's save is a pure re-issue (`reissue_only`: nothing
/// changed). A handler that changes the value (a "last page seen", a
/// cart line, a counter: most handlers of a logged-in site) sends a
/// cookie of the revoked id X just the same: the login's cookie is
/// replaced, the next request is refused as `Revoked`, and A's own change
/// is lost with it. A store-held session in the same race gets
/// `SaveError::Ended` (its replace finds the entry gone); the cookie-held
/// write checks nothing. The second case: A's change makes the value too
/// large for the cookie, so it moves into the store under a fresh entry,
/// still under id X: the same outcome.
#[tokio::test]
async fn finding_a_changed_value_in_flight_overwrites_a_parallel_login_with_a_revoked_copy() {
    let mut replaced = Vec::new();
    for grows_into_store in [false, true] {
        let clock = ManualClock::new(START);
        let sessions = instance(&clock, revoking(&clock));
        let first = sealed(&sessions, vec![1u8; 8]).await;
        let a = sessions.load::<Vec<u8>>(&cookie_of(&first)).await.unwrap();
        let b = sessions.load::<Vec<u8>>(&cookie_of(&first)).await.unwrap();
        b.renew();
        b.set(vec![2u8; 8]);
        let mut login = HeaderMap::new();
        sessions.save(&b, &mut login).await.unwrap();
        // A changes the value (no renew, no destroy).
        a.set(vec![3u8; if grows_into_store { 6000 } else { 9 }]);
        let mut answer = HeaderMap::new();
        let saved = sessions.save(&a, &mut answer).await;
        let last = if saved.is_err() {
            cookie_in(&login)
        } else {
            last_held(&login, &answer)
        };
        let after = sessions.load::<Vec<u8>>(&cookie_of(&last)).await.unwrap();
        if (after.rejection(), after.get()) != (None, vec![2u8; 8]) {
            replaced.push(format!(
                "grows_into_store={grows_into_store}: A answered {saved:?} with {:?}, \
                 the browser's next request is refused as {:?}",
                Sent::of(&answer),
                after.rejection()
            ));
        }
    }
    assert!(
        replaced.is_empty(),
        "the login's cookie was replaced by a changed copy of the id it revoked: {replaced:#?}"
    );
}

/// A key rotation re-issue (the cookie loaded under an older key) racing
/// a login: skipped, the login stands (the fix covers rotation as well as
/// rolling).
#[tokio::test]
async fn holds_a_key_rotation_reissue_in_flight_leaves_a_parallel_login_alone() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let shared = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(true)
    };
    let old = sealed(
        &sealed_session::Sessions::new(ring(&[1]), shared(config(&clock))).unwrap(),
        7u32,
    )
    .await;
    let rotated = sealed_session::Sessions::new(ring(&[2, 1]), shared(config(&clock))).unwrap();
    let a = rotated.load::<u32>(&cookie_of(&old)).await.unwrap();
    let b = rotated.load::<u32>(&cookie_of(&old)).await.unwrap();
    b.renew();
    b.set(8);
    let mut login = HeaderMap::new();
    rotated.save(&b, &mut login).await.unwrap();
    let mut answer = HeaderMap::new();
    rotated.save(&a, &mut answer).await.unwrap();
    assert_eq!(Sent::of(&answer), Sent::Nothing);
    let after = rotated
        .load::<u32>(&cookie_of(&last_held(&login, &answer)))
        .await
        .unwrap();
    assert_eq!((after.rejection(), after.get()), (None, 8));
}

// ---------------------------------------------------------------------
// 2. The marker read failing.
// ---------------------------------------------------------------------

/// Revocation on a store whose loads can be made to fail (no breaker, so
/// each failure is one call).
fn flaky_revoking(clock: &ManualClock) -> (Arc<FailLoad>, sealed_session::Sessions) {
    let flaky = Arc::new(FailLoad::new(clock));
    let store: Arc<dyn SessionStore> = flaky.clone();
    let sessions = instance(clock, |c| {
        c.with_shared_store(store)
            .with_revocation(true)
            .with_circuit_breaker(None)
    });
    (flaky, sessions)
}

/// A rolling re-issue whose marker read fails sends nothing and reports
/// `Ok`; the session's state is left as loaded, so a second save of the
/// same `Session` (store back) re-issues, and a changed value (not a
/// re-issue) is never skipped on that failure. On 44903a6 it was written
/// with no store read; since the fix of the finding above, it reads the
/// marker too, and a failed read is a store error (`503`, nothing sent),
/// so a save retried once the store is back writes it.
#[tokio::test]
async fn holds_a_failed_marker_read_skips_only_the_pure_reissue_and_a_retry_sends_it() {
    let clock = ManualClock::new(START);
    let (flaky, sessions) = flaky_revoking(&clock);
    let first = sealed(&sessions, 1u32).await;
    clock.advance(secs(3 * 3600)); // past the rolling threshold
    let a = sessions.load::<u32>(&cookie_of(&first)).await.unwrap();
    flaky.fail_load(1);
    let mut skipped = HeaderMap::new();
    sessions.save(&a, &mut skipped).await.unwrap();
    assert_eq!(
        flaky.failures(),
        1,
        "the marker read was the one that failed"
    );
    assert_eq!(Sent::of(&skipped), Sent::Nothing);
    flaky.heal();
    let mut retried = HeaderMap::new();
    sessions.save(&a, &mut retried).await.unwrap();
    assert_eq!(Sent::of(&retried), Sent::Cookie, "a second save re-issues");
    let reissued = sessions
        .load::<u32>(&request_after(&retried))
        .await
        .unwrap();
    assert_eq!((reissued.rejection(), reissued.get()), (None, 1));
    // A changed value with the marker store failing at save: a store
    // error, nothing sent; written once the store answers.
    let c = sessions.load::<u32>(&cookie_of(&first)).await.unwrap();
    c.set(2);
    flaky.fail_load(1);
    let mut changed = HeaderMap::new();
    let saved = sessions.save(&c, &mut changed).await;
    flaky.heal();
    assert!(
        matches!(saved, Err(sealed_session::SaveError::Store(_))),
        "{saved:?}"
    );
    assert_eq!(Sent::of(&changed), Sent::Nothing);
    assert_eq!(flaky.failures(), 2, "the changed write read the marker");
    let mut changed = HeaderMap::new();
    sessions.save(&c, &mut changed).await.unwrap();
    assert_eq!(Sent::of(&changed), Sent::Cookie);
    let after = sessions
        .load::<u32>(&request_after(&changed))
        .await
        .unwrap();
    assert_eq!((after.rejection(), after.get()), (None, 2));
}

/// A write that must not be skipped is never taken for a re-issue: a
/// `set_lifetime` on an otherwise unchanged value is not dropped when the
/// marker read fails at that moment (on 44903a6 it was sent without a
/// read; since the fix above it is a store error, and sent on the retry),
/// and a value moving out of the store back into its cookie (smaller now)
/// is sent.
#[tokio::test]
async fn holds_lifetime_changes_and_moves_are_not_taken_for_reissues() {
    let clock = ManualClock::new(START);
    let (flaky, sessions) = flaky_revoking(&clock);
    let first = sealed(&sessions, vec![1u8; 8]).await;
    let s = sessions.load::<Vec<u8>>(&cookie_of(&first)).await.unwrap();
    s.set_lifetime(sealed_session::SessionLifetime::configured().with_idle_timeout(secs(600)));
    flaky.fail_load(1);
    let mut response = HeaderMap::new();
    let saved = sessions.save(&s, &mut response).await;
    flaky.heal();
    assert!(
        matches!(saved, Err(sealed_session::SaveError::Store(_))),
        "the lifetime change was dropped: {saved:?}"
    );
    assert_eq!(Sent::of(&response), Sent::Nothing);
    let mut response = HeaderMap::new();
    sessions.save(&s, &mut response).await.unwrap();
    assert_eq!(
        Sent::of(&response),
        Sent::Cookie,
        "the lifetime change was skipped"
    );
    // Into the store and back out.
    let big = sealed(&sessions, vec![1u8; 6000]).await;
    let s = sessions.load::<Vec<u8>>(&cookie_of(&big)).await.unwrap();
    assert!(s.in_store());
    s.set(vec![1u8; 8]);
    let mut response = HeaderMap::new();
    sessions.save(&s, &mut response).await.unwrap();
    assert_eq!(Sent::of(&response), Sent::Cookie);
    assert!(
        !sessions
            .load::<Vec<u8>>(&request_after(&response))
            .await
            .unwrap()
            .in_store()
    );
}

// ---------------------------------------------------------------------
// 3. The limiters.
// ---------------------------------------------------------------------

/// FINDING (low: an operator's only signal of a real bug suppressed by a
/// client). The layer's shared-cache `warn` has one limiter per
/// `Sessions` for two different events: (a) a public page the handler
/// never touched, made to carry the removal of a client's forged cookie
/// (client-raisable, nothing wrong with the page), and (b) a handler that
/// wrote the session and marked its own response `public` (a real bug the
/// warn exists to report: left to a cache without the layer, it would
/// hand the session to the next user). A client that sends a forged
/// cookie to a public page once per `REJECTION_WARN_INTERVAL`, ahead of
/// the rest, takes every admitted `warn`: (b) is never logged, only
/// counted in `unlogged` on a line that names the public page's
/// `Cache-Control`.
#[tokio::test]
async fn finding_a_forged_cookie_on_a_public_page_hides_a_handlers_own_shared_cache_bug() {
    capture();
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let service = SessionLayer::<u32>::new(sessions).layer(service_fn(
        move |request: Request<()>| async move {
            let mut response = Response::new(String::new());
            let cache = if request.uri().path() == "/login" {
                let session = request.extensions().get::<Session<u32>>().unwrap();
                session.set(42);
                "public, max-age=141402" // the handler's bug
            } else {
                "public, max-age=141401" // a static page
            };
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static(cache));
            Ok::<_, Infallible>(response)
        },
    ));
    let call = |path: &'static str, cookie: Option<&'static str>| {
        let service = service.clone();
        async move {
            let mut request = Request::get(path).body(()).unwrap();
            if let Some(cookie) = cookie {
                request
                    .headers_mut()
                    .insert(COOKIE, cookie.parse().unwrap());
            }
            request
                .headers_mut()
                .insert("x-forwarded-proto", "https".parse().unwrap());
            service.oneshot(request).await.unwrap()
        }
    };
    for _ in 0..3 {
        // The client first, then real logins during the interval.
        let forged = call("/static", Some("__Host-session=forged")).await;
        assert_eq!(Sent::of(forged.headers()), Sent::Removal);
        for _ in 0..2 {
            let login = call("/login", None).await;
            assert_eq!(Sent::of(login.headers()), Sent::Cookie);
            assert!(
                login.headers()[CACHE_CONTROL]
                    .to_str()
                    .unwrap()
                    .contains("private")
            );
        }
        clock.advance(secs(REJECTION_WARN_INTERVAL));
    }
    let bug = global_warns(&["public and s-maxage dropped", "max-age=141402"]);
    let noise = global_warns(&["public and s-maxage dropped", "max-age=141401"]);
    assert!(
        bug >= 1,
        "a handler that set the session and marked its response public was never logged \
         over 3 intervals ({noise} warns for the client's forged cookie on a static page)"
    );
}

/// The limiters are per reason: a client replaying an old cookie (the
/// import give-up `warn`, rate-limited) does not silence the layer's
/// shared-cache `warn` of the same `Sessions`, and the first event of
/// each is logged. A clock that went back by less than an interval
/// keeps the limit; after the interval the next one is logged.
#[tokio::test]
async fn holds_each_reason_logs_its_first_event_and_the_clock_going_back_does_not_mute_it() {
    capture();
    let clock = ManualClock::new(START);
    let import = Import::new("r14old", |_value: String| async {
        Ok(Some(Imported::new(vec![7u8; 6000])))
    });
    let sessions = instance(&clock, |c| c.with_import(import));
    let replay = |sessions: &sealed_session::Sessions| {
        let sessions = sessions.clone();
        async move {
            let session = sessions
                .load::<Vec<u8>>(&request(&[("r14old", "x")]))
                .await
                .unwrap();
            let mut response = HeaderMap::new();
            sessions.save(&session, &mut response).await.unwrap();
        }
    };
    replay(&sessions).await;
    replay(&sessions).await;
    assert_eq!(global_warns(&["imported session too large", "r14old"]), 1);
    clock.set(START - 10); // back by less than an interval
    replay(&sessions).await;
    assert_eq!(global_warns(&["imported session too large", "r14old"]), 1);
    clock.set(START + REJECTION_WARN_INTERVAL);
    replay(&sessions).await;
    assert_eq!(
        global_warns(&["imported session too large", "r14old", "unlogged=2"]),
        1
    );
    // The shared-cache warn of the same Sessions: its first event logged.
    let service = SessionLayer::<u32>::new(sessions.clone()).layer(service_fn(
        |request: Request<()>| async move {
            request.extensions().get::<Session<u32>>().unwrap().set(1);
            let mut response = Response::new(String::new());
            response.headers_mut().insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=141403"),
            );
            Ok::<_, Infallible>(response)
        },
    ));
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(Sent::of(response.headers()), Sent::Cookie);
    assert_eq!(
        global_warns(&["public and s-maxage dropped", "max-age=141403"]),
        1
    );
}
