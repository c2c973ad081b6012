//! Review 15: an attack on the review-14 fix (`44903a6..8ecf253`): the
//! second marker read of a write that keeps a cookie-held id
//! (`Write::recheck_marker`, `Inner::ended_meanwhile`) and the layer's
//! `State::dead_removed`.
//!
//! Run with `cargo test --features axum --test review15_attacks`.
//!
//! Tests named `finding_*` reproduced a weakness and failed on 8ecf253;
//! it now checks the fix (every save that sends a cookie under the id
//! loaded reads the marker again, store-held copies included). Tests
//! named `holds_*` passed on 8ecf253.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::capture::global_warns;
use common::sent::Sent;
use common::*;
use http::header::CACHE_CONTROL;
use http::{HeaderMap, HeaderValue, Request, Response};
use sealed_session::{
    ManualClock, MemoryStore, SaveError, Session, SessionConfig, SessionLayer, SessionStore,
    Sessions, StoreFuture, StoreKey,
};
use tower::{Layer as _, ServiceExt as _, service_fn};

/// What the browser holds after the login's answer and then A's (A's
/// answer arrives last): A's cookie if it sent one, else the login's.
fn last_held(login: &HeaderMap, a: &HeaderMap, saved: &Result<(), SaveError>) -> String {
    match (saved, Sent::of(a)) {
        (Ok(()), Sent::Cookie) => the_cookie(a).value().to_owned(),
        (Ok(()), Sent::Removal) => panic!("request A removed the cookie"),
        _ => the_cookie(login).value().to_owned(),
    }
}

/// A `MemoryStore` that counts `create` calls.
#[derive(Debug)]
struct CountCreate {
    inner: MemoryStore,
    creates: AtomicUsize,
}

impl SessionStore for CountCreate {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.inner.load(key)
    }
    fn create<'a>(&'a self, k: &'a StoreKey, v: &'a [u8], t: Duration) -> StoreFuture<'a, bool> {
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.inner.create(k, v, t)
    }
    fn replace<'a>(&'a self, k: &'a StoreKey, v: &'a [u8], t: Duration) -> StoreFuture<'a, bool> {
        self.inner.replace(k, v, t)
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
}

fn revoking(clock: &ManualClock) -> Sessions {
    let clock2 = clock.clone();
    instance(clock, move |c| {
        c.with_store(MemoryStore::new().with_clock(clock2))
            .with_revocation(true)
    })
}

// ---------------------------------------------------------------------
// 1. Bypass: a store-held copy of the id, revoked through a cookie-held
//    copy.
// ---------------------------------------------------------------------

/// FINDING (medium: the review-14 outcome again, a user logged out just
/// after logging in, no error anywhere). One id X can be held by two
/// different cookies at once: the cookie-held copy C, and the pointer P a
/// request that grew the value into the store (entry E) sent. A browser
/// whose cookie changes from C to P between two requests in flight sends
/// the login L with C and request A with P. L renews X: being
/// cookie-held, its end writes X's marker and deletes no entry (it knows
/// none), so E stays. A is store-held (`origin.stored` is E), so
/// `recheck_marker` is false: (a) a value moving back into the cookie
/// finds E still there (`can_take`, `take_moved`) and sends a cookie of
/// X; (b) a rolling re-issue replaces E (still there) and sends a fresh
/// pointer of X. Either, answered after L, replaces the login's cookie
/// with a revoked copy: the next request is refused as `Revoked`.
#[tokio::test]
async fn finding_a_store_held_copy_in_flight_overwrites_a_login_made_from_the_cookie_held_copy() {
    let mut replaced = Vec::new();
    for moves_back in [true, false] {
        let clock = ManualClock::new(START);
        let sessions = revoking(&clock);
        let c = sealed(&sessions, vec![1u8; 8]).await;
        // A request Q grows X into the store: the browser now holds P.
        let (q, grown, ()) = round(&sessions, &cookie_of(&c), |s: &Session<Vec<u8>>| {
            s.set(vec![1u8; 6000])
        })
        .await;
        assert!(q.in_store());
        let p = the_cookie(&grown).value().to_owned();
        if !moves_back {
            clock.advance(secs(3 * 3600)); // past the rolling threshold
        }
        // A was sent with P, L (sent before Q's answer arrived) with C.
        let a = sessions.load::<Vec<u8>>(&cookie_of(&p)).await.unwrap();
        let l = sessions.load::<Vec<u8>>(&cookie_of(&c)).await.unwrap();
        assert_eq!((a.rejection(), l.rejection(), a.id()), (None, None, l.id()));
        l.renew();
        l.set(vec![2u8; 8]);
        let mut login = HeaderMap::new();
        sessions.save(&l, &mut login).await.unwrap();
        if moves_back {
            a.set(vec![3u8; 8]);
        }
        let mut answer = HeaderMap::new();
        let saved = sessions.save(&a, &mut answer).await;
        let last = last_held(&login, &answer, &saved);
        let after = sessions.load::<Vec<u8>>(&cookie_of(&last)).await.unwrap();
        if (after.rejection(), after.get()) != (None, vec![2u8; 8]) {
            replaced.push(format!(
                "moves_back={moves_back}: A answered {saved:?} with {:?}, \
                 the browser's next request is refused as {:?}",
                Sent::of(&answer),
                after.rejection()
            ));
        }
    }
    assert!(
        replaced.is_empty(),
        "the login's cookie was replaced by a copy of the id it revoked: {replaced:#?}"
    );
}

/// The mirror case holds: L sent with P (store-held: it deletes E and
/// writes the marker), A with C (cookie-held: its change reads the marker
/// again): A is `Ended`, nothing sent, the login stands.
#[tokio::test]
async fn holds_a_cookie_held_copy_in_flight_after_a_login_from_the_store_held_copy() {
    let clock = ManualClock::new(START);
    let sessions = revoking(&clock);
    let c = sealed(&sessions, vec![1u8; 8]).await;
    let (_, grown, ()) = round(&sessions, &cookie_of(&c), |s: &Session<Vec<u8>>| {
        s.set(vec![1u8; 6000])
    })
    .await;
    let p = the_cookie(&grown).value().to_owned();
    let a = sessions.load::<Vec<u8>>(&cookie_of(&c)).await.unwrap();
    let l = sessions.load::<Vec<u8>>(&cookie_of(&p)).await.unwrap();
    l.renew();
    l.set(vec![2u8; 8]);
    let mut login = HeaderMap::new();
    sessions.save(&l, &mut login).await.unwrap();
    a.set(vec![3u8; 9]);
    let mut answer = HeaderMap::new();
    let saved = sessions.save(&a, &mut answer).await;
    assert!(matches!(saved, Err(SaveError::Ended)), "{saved:?}");
    assert_eq!(Sent::of(&answer), Sent::Nothing);
    let after = sessions
        .load::<Vec<u8>>(&request_after(&login))
        .await
        .unwrap();
    assert_eq!((after.rejection(), after.get()), (None, vec![2u8; 8]));
}

// ---------------------------------------------------------------------
// 2. Legitimate writes that must not be refused by the second read.
// ---------------------------------------------------------------------

/// Each of these requests, with no parallel request at all, saves `Ok`
/// and its last cookie opens with the value it wrote: destroy then set,
/// renew then set, a value growing into the store, one moving back, two
/// saves of one `Session` (also after a renew and after a logout in the
/// same request, whose own marker must not be read as a parallel one),
/// and the same id saved on two instances sharing the store.
#[tokio::test]
async fn holds_legitimate_writes_keeping_or_leaving_the_id_are_not_refused() {
    type Step = fn(&Session<Vec<u8>>);
    #[rustfmt::skip]
    let cases: [(&str, bool, &[Step]); 8] = [
        ("destroy+set", false, &[|s| { s.destroy(); s.set(vec![5; 8]) }]),
        ("renew+set", false, &[|s| { s.renew(); s.set(vec![5; 8]) }]),
        ("grow", false, &[|s| s.set(vec![5; 6000])]),
        ("move back", true, &[|s| s.set(vec![5; 8])]),
        ("set,save,set", false, &[|s| s.set(vec![4; 8]), |s| s.set(vec![5; 8])]),
        ("renew,save,set", false, &[|s| s.renew(), |s| s.set(vec![5; 8])]),
        ("destroy,save,set", false, &[|s| s.destroy(), |s| s.set(vec![5; 8])]),
        ("grow,save,shrink", false, &[|s| s.set(vec![4; 6000]), |s| s.set(vec![5; 8])]),
    ];
    for (name, from_store, steps) in cases {
        let clock = ManualClock::new(START);
        let sessions = revoking(&clock);
        let first = sealed(&sessions, vec![1u8; if from_store { 6000 } else { 8 }]).await;
        let s = sessions.load::<Vec<u8>>(&cookie_of(&first)).await.unwrap();
        let mut last = first.clone();
        for (i, step) in steps.iter().enumerate() {
            step(&s);
            let mut response = HeaderMap::new();
            let saved = sessions.save(&s, &mut response).await;
            assert!(saved.is_ok(), "{name}: save {i} answered {saved:?}");
            match Sent::of(&response) {
                Sent::Cookie => last = the_cookie(&response).value().to_owned(),
                Sent::Removal => last = String::new(),
                Sent::Nothing => {}
            }
        }
        let after = sessions.load::<Vec<u8>>(&cookie_of(&last)).await.unwrap();
        let want = if name == "grow" {
            vec![5u8; 6000]
        } else {
            vec![5u8; 8]
        };
        assert_eq!((after.rejection(), after.get()), (None, want), "{name}");
    }
    // Two instances (same key, shared store) saving the same id in turn.
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let shared = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(true)
    };
    let one = instance(&clock, shared);
    let two = instance(&clock, shared);
    let first = sealed(&one, 1u32).await;
    let (_, r1, ()) = round(&one, &cookie_of(&first), |s: &Session<u32>| s.set(2)).await;
    let (_, r2, ()) = round(&two, &request_after(&r1), |s: &Session<u32>| s.set(3)).await;
    let after = one.load::<u32>(&request_after(&r2)).await.unwrap();
    assert_eq!((after.rejection(), after.get()), (None, 3));
}

/// The `409`: a cookie-held value growing into the store, whose id a
/// parallel logout revoked, is `Ended` before any store entry is created,
/// sends nothing, and leaves the logout's removal in place (the old
/// cookie stays refused).
#[tokio::test]
async fn holds_an_ended_grow_creates_no_entry_and_sends_nothing() {
    let clock = ManualClock::new(START);
    let store = Arc::new(CountCreate {
        inner: MemoryStore::new().with_clock(clock.clone()),
        creates: AtomicUsize::new(0),
    });
    let dyn_store: Arc<dyn SessionStore> = store.clone();
    let sessions = instance(&clock, |c| {
        c.with_shared_store(dyn_store).with_revocation(true)
    });
    let c = sealed(&sessions, vec![1u8; 8]).await;
    let a = sessions.load::<Vec<u8>>(&cookie_of(&c)).await.unwrap();
    let (_, logout, ()) = round(&sessions, &cookie_of(&c), |s: &Session<Vec<u8>>| {
        s.destroy()
    })
    .await;
    assert_eq!(Sent::of(&logout), Sent::Removal);
    let before = store.creates.load(Ordering::SeqCst);
    a.set(vec![3u8; 6000]);
    let mut answer = HeaderMap::new();
    let saved = sessions.save(&a, &mut answer).await;
    assert!(matches!(saved, Err(SaveError::Ended)), "{saved:?}");
    assert_eq!(Sent::of(&answer), Sent::Nothing);
    assert_eq!(
        store.creates.load(Ordering::SeqCst),
        before,
        "an entry was created"
    );
    let old = sessions.load::<Vec<u8>>(&cookie_of(&c)).await.unwrap();
    assert!(
        old.rejection().is_some(),
        "the logged-out cookie opened again"
    );
}

// ---------------------------------------------------------------------
// 3. dead_removed.
// ---------------------------------------------------------------------

/// `dead_removed` is set by every plan, so it is never stale: a handler
/// that first saves the session itself (the dead cookie's removal: the
/// flag set) and then writes it on a `public` response is still warned
/// about at the layer's save; and a handler that writes the session on a
/// request that also carried a dead (forged) cookie is warned about. A
/// page that only carries the forged cookie's removal is made `private`
/// with no warn.
#[tokio::test]
async fn holds_dead_removed_does_not_hide_a_handler_write_beside_a_dead_cookie() {
    common::capture::global();
    let clock = ManualClock::new(START);
    let sessions = instance(&clock, |c| c);
    let inner = sessions.clone();
    let service =
        SessionLayer::<u32>::new(sessions).layer(service_fn(move |request: Request<()>| {
            let inner = inner.clone();
            async move {
                let session = request.extensions().get::<Session<u32>>().unwrap().clone();
                let cache = match request.uri().path() {
                    "/write" => {
                        session.set(1);
                        "public, max-age=151501"
                    }
                    "/save-then-write" => {
                        let mut scratch = HeaderMap::new();
                        inner.save(&session, &mut scratch).await.unwrap();
                        assert_eq!(Sent::of(&scratch), Sent::Removal);
                        session.set(2);
                        "public, max-age=151502"
                    }
                    _ => "public, max-age=151503",
                };
                let mut response = Response::new(String::new());
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static(cache));
                Ok::<_, Infallible>(response)
            }
        }));
    for (path, warns) in [("/write", 1), ("/save-then-write", 1), ("/static", 0)] {
        let response = service
            .clone()
            .oneshot(forged_over_https(path))
            .await
            .unwrap();
        let cache = response.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            cache.contains("private") && !cache.contains("public"),
            "{path}: {cache}"
        );
        let tag = cache
            .split("max-age=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let logged = global_warns(&["public and s-maxage dropped", &format!("max-age={tag}")]);
        assert_eq!(logged, warns, "{path}");
        clock.advance(secs(sealed_session::REJECTION_WARN_INTERVAL));
    }
}
