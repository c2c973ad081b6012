//! The behaviour every store must have, as one macro: `store_suite!(name,
//! async fixture expression)` expands to a module of tests run against that
//! store. A new store is tested by one line.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sealed_session::{
    ManualClock, SessionConfig, SessionStore, Sessions, StoreError, StoreFuture, StoreKey,
};

/// Wraps a real store: remembers the keys written through it (so a test
/// can ask the real store which are still live) and the calls made since
/// [`Recording::fail_call`], and can play "down", "full", or fail one
/// chosen call.
#[derive(Debug)]
pub struct Recording {
    pub inner: Arc<dyn SessionStore>,
    keys: Mutex<HashSet<StoreKey>>,
    down: AtomicBool,
    full: AtomicBool,
    /// Calls left until the one that fails (0: none planned).
    countdown: AtomicI64,
    calls: Mutex<Vec<&'static str>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn SessionStore>) -> Recording {
        Recording {
            inner,
            keys: Mutex::default(),
            down: AtomicBool::new(false),
            full: AtomicBool::new(false),
            countdown: AtomicI64::new(0),
            calls: Mutex::default(),
        }
    }

    /// Makes the `n`-th call from now (any method) fail as unavailable,
    /// and starts the list of calls afresh.
    pub fn fail_call(&self, n: i64) {
        self.calls.lock().unwrap().clear();
        self.countdown.store(n, Ordering::SeqCst);
    }

    /// The methods called since the last [`Recording::fail_call`].
    pub fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Refuse writes (`create`, `replace`) as a full store does.
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    fn check_write(&self, what: &'static str) -> Result<(), StoreError> {
        self.check(what)?;
        if self.full.load(Ordering::SeqCst) {
            Err(StoreError::Full)
        } else {
            Ok(())
        }
    }

    fn check(&self, what: &'static str) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(what);
        if self.countdown.fetch_sub(1, Ordering::SeqCst) == 1 {
            return Err(StoreError::Unavailable(format!(
                "{what} failed by the test"
            )));
        }
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off by the test".into()))
        } else {
            Ok(())
        }
    }
}

impl SessionStore for Recording {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            self.check("load")?;
            self.inner.load(key).await
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check_write("create")?;
            self.keys.lock().unwrap().insert(*key);
            self.inner.create(key, value, ttl).await
        })
    }

    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check_write("replace")?;
            self.inner.replace(key, value, ttl).await
        })
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check("delete")?;
            self.inner.delete(key).await
        })
    }
}

/// A store under test, with the clock the sessions use.
pub struct Fixture {
    pub clock: ManualClock,
    pub store: Arc<Recording>,
    /// The store times entries out in real time (Redis): passing time
    /// must also sleep.
    pub real_ttl: bool,
    /// Keeps whatever the store needs alive (a server process).
    pub _guard: Option<Box<dyn std::any::Any + Send>>,
}

impl Fixture {
    pub fn new(clock: ManualClock, store: Arc<dyn SessionStore>, real_ttl: bool) -> Fixture {
        Fixture {
            clock,
            store: Arc::new(Recording::new(store)),
            real_ttl,
            _guard: None,
        }
    }

    /// Sessions on key ring [1] over this store, configured by `f`.
    pub fn sessions(&self, f: impl FnOnce(SessionConfig) -> SessionConfig) -> Sessions {
        let config = super::config(&self.clock)
            .with_shared_store(self.store.clone())
            .with_circuit_breaker(None);
        Sessions::new(super::ring(&[1]), f(config)).unwrap()
    }

    /// Entries written through the store that it still holds, with their
    /// bytes; revocation markers and the notes left where an entry was
    /// deleted apart (their values are 8 bytes, a time, or empty from
    /// earlier releases; a sealed entry is longer than its nonce).
    pub async fn live(&self) -> Vec<(StoreKey, Vec<u8>)> {
        let keys: Vec<StoreKey> = self.store.keys.lock().unwrap().iter().copied().collect();
        let mut live = Vec::new();
        for key in keys {
            if let Some(value) = self.store.inner.load(&key).await.unwrap() {
                if value.len() > 8 {
                    live.push((key, value));
                }
            }
        }
        live
    }

    /// Lets `seconds` pass for the sessions and for the store.
    pub async fn pass(&self, seconds: u64) {
        self.clock.advance(Duration::from_secs(seconds));
        if self.real_ttl {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
        }
    }
}

#[macro_export]
macro_rules! store_suite {
    ($name:ident, $fixture:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use http::HeaderMap;
            use sealed_session::{Rejection, SaveError, StoreMode};
            use $crate::common::*;

            fn cookie_len(response: &HeaderMap) -> usize {
                let cookie = the_cookie(response);
                cookie.name().len() + cookie.value().len()
            }

            #[tokio::test]
            async fn writes_are_conditional_and_deletes_say_what_was_there() {
                let fx = $fixture;
                let store = &fx.store.inner;
                let key = sealed_session::StoreKey::from_bytes([0x5a; 32]);
                let other = sealed_session::StoreKey::from_bytes([0xa5; 32]);
                let ttl = std::time::Duration::from_secs(60);
                assert!(!store.replace(&key, b"one", ttl).await.unwrap(), "nothing to replace");
                assert_eq!(store.load(&key).await.unwrap(), None, "replace created nothing");
                assert!(store.create(&key, b"one", ttl).await.unwrap());
                assert!(!store.create(&key, b"two", ttl).await.unwrap(), "already there");
                assert_eq!(store.load(&key).await.unwrap().as_deref(), Some(&b"one"[..]));
                assert!(store.replace(&key, b"three", ttl).await.unwrap());
                assert_eq!(store.load(&key).await.unwrap().as_deref(), Some(&b"three"[..]));
                assert!(store.delete(&key).await.unwrap());
                assert!(!store.delete(&key).await.unwrap(), "deleted already");
                assert!(!store.replace(&key, b"four", ttl).await.unwrap(), "gone stays gone");
                assert_eq!(store.load(&key).await.unwrap(), None);
                // An entry past its time to live is absent for every method.
                assert!(store.create(&other, b"short", std::time::Duration::from_secs(1)).await.unwrap());
                fx.pass(2).await;
                assert_eq!(store.load(&other).await.unwrap(), None);
                assert!(!store.replace(&other, b"again", ttl).await.unwrap());
                assert!(store.create(&other, b"anew", ttl).await.unwrap());
                assert!(store.delete(&other).await.unwrap());
                assert!(store.create(&other, b"short", std::time::Duration::from_secs(1)).await.unwrap());
                fx.pass(2).await;
                assert!(!store.delete(&other).await.unwrap());
            }

            #[tokio::test]
            async fn fallback_starts_exactly_past_the_limit() {
                let fx = $fixture;
                let probe = fx.sessions(|c| c.with_cookie_name("p"));
                let (payload, name_len) = exact_fit(&probe).await;
                let name = format!("p{}", "x".repeat(name_len - 1));
                let sessions = fx.sessions(|c| c.with_cookie_name(name.clone()));

                let (_, fits, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![7u8; payload])).await;
                assert_eq!(cookie_len(&fits), 4096);
                assert!(fx.live().await.is_empty(), "4096 bytes stay in the cookie");

                let (_, over, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![7u8; payload + 1])).await;
                assert!(cookie_len(&over) < 300, "the cookie holds a pointer");
                assert_eq!(fx.live().await.len(), 1);
                let (back, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&over), |_| ()).await;
                assert!(!back.is_new());
                assert_eq!(back.get(), vec![7u8; payload + 1]);
            }

            #[tokio::test]
            async fn a_session_that_shrinks_moves_back_and_its_entry_is_deleted() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c);
                let (_, big, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
                assert_eq!(fx.live().await.len(), 1);
                // Growing further keeps the same entry and the same cookie.
                let (_, bigger, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&big), |s| s.update(|v| v.push(2))).await;
                assert!(bigger.is_empty(), "cookie unchanged: {bigger:?}");
                assert_eq!(fx.live().await.len(), 1);
                let (_, small, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&big), |s| s.set(vec![3u8; 10])).await;
                assert!(cookie_len(&small) < 300);
                assert!(fx.live().await.is_empty(), "entry deleted");
                let (back, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&small), |_| ()).await;
                assert_eq!(back.get(), vec![3u8; 10]);
            }

            #[tokio::test]
            async fn a_cookie_written_on_the_way_back_is_issued_now() {
                let fx = $fixture;
                let idle = std::time::Duration::from_secs(3600);
                let sessions = fx.sessions(|c| c.with_idle_timeout(Some(idle)));
                let (_, big, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
                // Within the rolling threshold: a change alone keeps the cookie.
                fx.clock.advance(std::time::Duration::from_secs(300));
                let (_, small, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&big), |s| s.set(vec![2u8; 10])).await;
                // The new inline cookie's idle window starts now, as its
                // Max-Age says.
                assert_eq!(the_cookie(&small).max_age(), Some(time::Duration::seconds(3600)));
                fx.clock.advance(std::time::Duration::from_secs(3600 - 1));
                let (alive, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&small), |_| ()).await;
                assert_eq!(alive.rejection(), None);
                assert_eq!(alive.get(), vec![2u8; 10]);
            }

            #[tokio::test]
            async fn renew_moves_to_a_new_entry_and_destroy_deletes_it() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c);
                let (_, big, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
                let before = fx.live().await;
                let (_, renewed, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&big), |s| s.renew()).await;
                let after = fx.live().await;
                assert_eq!((before.len(), after.len()), (1, 1));
                assert_ne!(before[0].0, after[0].0, "a new entry");
                let (old, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&big), |_| ()).await;
                assert_eq!(old.rejection(), Some(Rejection::MissingStoreEntry));

                let (_, removal, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&renewed), |s| s.destroy()).await;
                assert_eq!(the_cookie(&removal).value(), "");
                assert!(fx.live().await.is_empty());
            }

            #[tokio::test]
            async fn entries_expire_with_the_session() {
                let fx = $fixture;
                // An entry lives as long as any copy of its cookie could
                // open: idle + allowed skew (+ 1 s for rounding).
                let sessions = fx.sessions(|c| {
                    c.with_idle_timeout(Some(std::time::Duration::from_secs(2)))
                        .with_clock_skew(std::time::Duration::from_secs(1))
                });
                let (_, big, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
                assert_eq!(fx.live().await.len(), 1);
                fx.pass(3).await;
                assert_eq!(fx.live().await.len(), 1, "a copy issued 1 s ahead could still open");
                fx.pass(1).await;
                assert!(fx.live().await.is_empty(), "the store dropped it by its TTL");
                let gone = sessions.load::<Vec<u8>>(&request_after(&big)).await.unwrap();
                assert!(gone.is_new());
            }

            #[tokio::test]
            async fn a_missing_entry_gives_a_new_session() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c);
                let (_, big, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
                for (key, _) in fx.live().await {
                    fx.store.inner.delete(&key).await.unwrap();
                }
                let session = sessions.load::<Vec<u8>>(&request_after(&big)).await.unwrap();
                assert!(session.is_new());
                assert_eq!(session.rejection(), Some(Rejection::MissingStoreEntry));
            }

            #[tokio::test]
            async fn entries_are_sealed_at_rest_and_bound_to_their_key() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c);
                let marker = b"PLAINTEXT-MARKER".repeat(400);
                let (_, a, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(marker.clone())).await;
                let (_, b, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![9u8; 6000])).await;
                let live = fx.live().await;
                assert_eq!(live.len(), 2);
                for (_, bytes) in &live {
                    assert!(!bytes.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
                    assert!(!bytes.windows(64).any(|w| w.iter().all(|&x| x == 9)));
                }
                // Copy each entry under the other's key: neither opens.
                let ttl = std::time::Duration::from_secs(600);
                assert!(fx.store.inner.replace(&live[0].0, &live[1].1, ttl).await.unwrap());
                assert!(fx.store.inner.replace(&live[1].0, &live[0].1, ttl).await.unwrap());
                for response in [&a, &b] {
                    let session = sessions.load::<Vec<u8>>(&request_after(response)).await.unwrap();
                    assert_eq!(session.rejection(), Some(Rejection::StoreEntryInvalid));
                }
                // A flipped bit does not open either.
                let mut tampered = live[0].1.clone();
                let last = tampered.len() - 1;
                tampered[last] ^= 1;
                assert!(fx.store.inner.replace(&live[0].0, &tampered, ttl).await.unwrap());
                assert!(fx.store.inner.replace(&live[1].0, &live[1].1, ttl).await.unwrap());
                let reasons = [
                    sessions.load::<Vec<u8>>(&request_after(&a)).await.unwrap().rejection(),
                    sessions.load::<Vec<u8>>(&request_after(&b)).await.unwrap().rejection(),
                ];
                assert!(reasons.contains(&Some(Rejection::StoreEntryInvalid)));
                assert!(reasons.contains(&None), "{reasons:?}");
            }

            #[tokio::test]
            async fn revocation_ends_copies_of_a_destroyed_session() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c.with_revocation(true));
                for size in [10usize, 6000] {
                    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; size])).await;
                    let copy = request_after(&response);
                    let (alive, _, ()) = round::<Vec<u8>, _>(&sessions, &copy, |_| ()).await;
                    assert!(!alive.is_new());
                    round::<Vec<u8>, _>(&sessions, &copy, |s| s.destroy()).await;
                    let revoked = sessions.load::<Vec<u8>>(&copy).await.unwrap();
                    assert!(revoked.is_new(), "size {size}");
                    assert_eq!(revoked.rejection(), Some(Rejection::Revoked));
                }
                // Without revocation a copy of a destroyed cookie-held
                // session stays valid until it expires.
                let plain = fx.sessions(|c| c);
                let (_, response, ()) = round(&plain, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
                round::<Vec<u8>, _>(&plain, &request_after(&response), |s| s.destroy()).await;
                let copy = plain.load::<Vec<u8>>(&request_after(&response)).await.unwrap();
                assert!(!copy.is_new());
            }

            #[tokio::test]
            async fn a_revocation_outlives_copies_reissued_before_it() {
                // The attacker's copy was re-issued (rolling) after the
                // victim's cookie; the victim logs out with the older one.
                let fx = $fixture;
                let sessions = fx.sessions(|c| {
                    c.with_revocation(true)
                        .with_idle_timeout(Some(std::time::Duration::from_secs(4)))
                        .with_rolling(0.25)
                });
                let (_, victim, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
                fx.pass(2).await;
                let (_, attacker, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&victim), |_| ()).await;
                assert!(!attacker.is_empty(), "re-issued past the rolling threshold");
                fx.pass(1).await;
                round::<Vec<u8>, _>(&sessions, &request_after(&victim), |s| s.destroy()).await;
                // Past the victim cookie's idle deadline, within the
                // attacker copy's.
                fx.pass(2).await;
                let copy = sessions.load::<Vec<u8>>(&request_after(&attacker)).await.unwrap();
                assert_eq!(copy.rejection(), Some(Rejection::Revoked));
            }

            #[tokio::test]
            async fn destroy_sticks_whatever_the_handler_does_after_it() {
                let fx = $fixture;
                for mode in [StoreMode::Cookie, StoreMode::Server] {
                    for revocation in [true, false] {
                        let sessions = fx.sessions(|c| c.with_revocation(revocation).with_store_mode(mode));
                        let after: [fn(&sealed_session::Session<Vec<u8>>); 2] =
                            [|s| s.set(vec![9u8; 3]), |s| s.update(|_| ())];
                        for (case, then) in after.into_iter().enumerate() {
                            let what = format!("{mode:?}, revocation {revocation}, case {case}");
                            let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; 10])).await;
                            let copy = request_after(&first);
                            let (ended, next, old_id) = round::<Vec<u8>, _>(&sessions, &copy, |s| {
                                let id = s.id();
                                s.destroy();
                                then(s);
                                id
                            })
                            .await;
                            assert_ne!(ended.id(), old_id, "{what}: a new id");
                            let reopened = sessions.load::<Vec<u8>>(&copy).await.unwrap();
                            if revocation || mode == StoreMode::Server {
                                assert!(reopened.is_new(), "{what}: the old copy is dead");
                            }
                            if !the_cookie(&next).value().is_empty() {
                                let (new, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&next), |_| ()).await;
                                assert!(!new.is_new(), "{what}");
                                assert_ne!(new.id(), old_id, "{what}");
                                assert_eq!(new.get(), ended.get(), "{what}");
                            }
                        }
                    }
                }
            }

            #[tokio::test]
            async fn renew_with_revocation_ends_the_old_id() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c.with_revocation(true));
                for size in [10usize, 6000] {
                    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; size])).await;
                    let copy = request_after(&first);
                    let (_, renewed, ()) = round::<Vec<u8>, _>(&sessions, &copy, |s| s.renew()).await;
                    let old = sessions.load::<Vec<u8>>(&copy).await.unwrap();
                    assert!(old.is_new(), "size {size}: {:?}", old.rejection());
                    let (new, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&renewed), |_| ()).await;
                    assert_eq!(new.get(), vec![5u8; size]);
                }
            }

            #[tokio::test]
            async fn a_save_that_raced_a_destroy_does_not_bring_the_session_back() {
                let fx = $fixture;
                // Each case: a store-held session, loaded by a slow request
                // before a fast one destroys it; then the slow one saves.
                let cases: [(StoreMode, usize, fn(&sealed_session::Session<Vec<u8>>)); 4] = [
                    (StoreMode::Server, 10, |s| s.set(vec![6u8; 10])),
                    (StoreMode::Cookie, 6000, |s| s.set(vec![6u8; 6000])),
                    (StoreMode::Cookie, 6000, |s| s.set(vec![6u8; 10])), // moves back into the cookie
                    (StoreMode::Server, 10, |s| s.renew()),
                ];
                for (case, (mode, size, slow_change)) in cases.into_iter().enumerate() {
                    let sessions = fx.sessions(|c| c.with_store_mode(mode));
                    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![5u8; size])).await;
                    let copy = request_after(&first);
                    let slow = sessions.load::<Vec<u8>>(&copy).await.unwrap();
                    assert!(slow.in_store());
                    round::<Vec<u8>, _>(&sessions, &copy, |s| s.destroy()).await;
                    slow_change(&slow);
                    let mut response = HeaderMap::new();
                    let saved = sessions.save(&slow, &mut response).await;
                    assert!(saved.is_err(), "case {case}: {saved:?}");
                    assert!(response.is_empty(), "case {case}: no cookie");
                    assert!(fx.live().await.is_empty(), "case {case}: nothing written back");
                    let again = sessions.load::<Vec<u8>>(&copy).await.unwrap();
                    assert!(again.is_new(), "case {case}");
                }
            }

            #[tokio::test]
            async fn server_mode_keeps_every_session_in_the_store() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c.with_store_mode(StoreMode::Server));
                let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 4])).await;
                assert_eq!(fx.live().await.len(), 1);
                // A change goes to the store; the cookie stays as it was.
                let (_, second, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&first), |s| s.set(vec![2u8; 4])).await;
                assert!(second.is_empty());
                let (now, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&first), |_| ()).await;
                assert_eq!(now.get(), vec![2u8; 4]);
                // Destroy deletes the record: every copy of the cookie dies.
                round::<Vec<u8>, _>(&sessions, &request_after(&first), |s| s.destroy()).await;
                assert!(fx.live().await.is_empty());
                let copy = sessions.load::<Vec<u8>>(&request_after(&first)).await.unwrap();
                assert_eq!(copy.rejection(), Some(Rejection::MissingStoreEntry));
            }

            #[tokio::test]
            async fn a_store_that_is_down_fails_loudly_and_overwrites_nothing() {
                let fx = $fixture;
                let sessions = fx.sessions(|c| c);
                let (_, big, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 6000])).await;
                let (_, small, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![2u8; 10])).await;
                fx.store.set_down(true);
                // Store-held: an error, not an empty session.
                assert!(sessions.load::<Vec<u8>>(&request_after(&big)).await.is_err());
                // Cookie-held: works, and saves while small.
                let (small_session, resaved, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&small), |s| s.update(|v| v.push(3))).await;
                assert_eq!(small_session.get(), vec![2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3]);
                // Growing past the limit fails to save: no Set-Cookie.
                let grow = sessions.load::<Vec<u8>>(&request_after(&resaved)).await.unwrap();
                grow.set(vec![4u8; 6000]);
                let mut response = HeaderMap::new();
                let err = sessions.save(&grow, &mut response).await.unwrap_err();
                assert!(matches!(err, SaveError::Store(_)), "{err:?}");
                assert!(response.is_empty());
                // Destroying a store-held session must delete its entry:
                // with the store down that is an error, and no removal.
                let big_request = request_after(&big);
                assert!(sessions.load::<Vec<u8>>(&big_request).await.is_err(), "cannot even load it");
                fx.store.set_down(false);
                let doomed = sessions.load::<Vec<u8>>(&request_after(&big)).await.unwrap();
                fx.store.set_down(true);
                doomed.destroy();
                let mut response = HeaderMap::new();
                let err = sessions.save(&doomed, &mut response).await.unwrap_err();
                assert!(matches!(err, SaveError::Store(_)), "{err:?}");
                assert!(response.is_empty(), "no removal cookie when the entry was not deleted");
                fx.store.set_down(false);
                // Everything is as it was.
                let (back, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&big), |_| ()).await;
                assert_eq!(back.get(), vec![1u8; 6000]);
                let (kept, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&resaved), |_| ()).await;
                assert_eq!(kept.get().len(), 11);
            }
        }
    };
}
