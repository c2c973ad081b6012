//! Review 12: attacks on the reordered move back (3199907: a value moving
//! back from its store entry into its cookie takes the entry last, after
//! every id the save ends is ended).
//!
//! Run with `cargo test --features axum --test review12_attacks`.
//!
//! Tests named `finding_*` reproduce a weakness of 3199907; the fix on
//! this branch makes them pass and they failed before it. Tests named
//! `holds_*` probe a promise and passed on 3199907.

mod common;

use std::sync::Arc;

use common::suite::Recording;
use common::*;
use http::HeaderMap;
use sealed_session::{
    ManualClock, MemoryStore, Rejection, SaveError, Schema, SessionConfig, SessionStore, Sessions,
    StoreMode,
};

/// A value too large for the cookie: it lives in the store.
const LARGE: usize = 6000;
/// A value that fits the cookie again.
const SMALL: usize = 10;

/// Two releases side by side on one recorded store: `newer` at schema 2,
/// `older` at schema 1 (replacing newer-schema cookies when `replace`).
struct World {
    clock: ManualClock,
    recording: Arc<Recording>,
    newer: Sessions,
    older: Sessions,
}

fn world(revocation: bool, replace: bool) -> World {
    let clock = ManualClock::new(START);
    let recording = Arc::new(Recording::new(Arc::new(
        MemoryStore::new().with_clock(clock.clone()),
    )));
    let store: Arc<dyn SessionStore> = recording.clone();
    let with_store = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(revocation)
            .with_circuit_breaker(None)
    };
    let newer = instance(&clock, |c| {
        with_store(c).with_schema(Schema::<Vec<u8>>::new(2).migrate(1, |v: Vec<u8>| v))
    });
    let older = instance(&clock, |c| {
        with_store(c)
            .with_schema(Schema::<Vec<u8>>::new(1))
            .with_replace_newer_schemas(replace)
    });
    World {
        clock,
        recording,
        newer,
        older,
    }
}

/// What a load of `request` by `sessions` gives: its refusal and the
/// value's length.
async fn opens(sessions: &Sessions, request: &HeaderMap) -> (Option<Rejection>, usize) {
    let session = sessions.load::<Vec<u8>>(request).await.unwrap();
    (session.rejection(), session.get().len())
}

/// The newer-schema cookie beside the one moving back.
#[derive(Clone, Copy, Debug)]
enum Newer {
    None,
    Inline,
    Stored,
}

/// Every store call of a move-back save failing in turn, with and
/// without revocation and a newer-schema copy beside it (replace mode
/// on): a failed save sends nothing and the browser's cookies still open
/// the value they held; a save that succeeds sends the small value, the
/// old pointer no longer opens, and the newer copy is ended whenever
/// ending it writes to the store.
#[tokio::test]
async fn holds_each_failing_call_of_a_move_back_leaves_the_browser_whole() {
    for revocation in [false, true] {
        for newer_copy in [Newer::None, Newer::Inline, Newer::Stored] {
            let mut succeeded = false;
            // Bounded: a move back makes at most a handful of calls.
            for n in 1..=16 {
                let w = world(revocation, true);
                let case = format!("revocation {revocation}, newer {newer_copy:?}, call {n}");
                let victim = match newer_copy {
                    Newer::None => None,
                    Newer::Inline => Some(sealed(&w.newer, vec![2u8; SMALL]).await),
                    Newer::Stored => Some(sealed(&w.newer, vec![2u8; LARGE]).await),
                };
                let own = sealed(&w.older, vec![1u8; LARGE]).await;
                assert!(w.older.inspect(&own).unwrap().store_key.is_some(), "{case}");
                let mut pairs = Vec::new();
                if let Some(victim) = &victim {
                    pairs.push((DEFAULT_NAME, victim.as_str()));
                }
                pairs.push((DEFAULT_NAME, own.as_str()));
                let browser = request(&pairs);

                let session = w.older.load::<Vec<u8>>(&browser).await.unwrap();
                assert_eq!(session.get().len(), LARGE, "{case}");
                session.set(vec![1u8; SMALL]);
                w.recording.fail_call(n);
                let mut response = HeaderMap::new();
                let saved = w.older.save(&session, &mut response).await;
                let calls = w.recording.calls();
                // No failure left pending for the checks below.
                w.recording.fail_call(0);
                let case = format!("{case}: {saved:?} after {calls:?}");

                match saved {
                    Err(_) => {
                        assert!(response.is_empty(), "{case}: {response:?}");
                        // The browser's own cookie, alone and beside the
                        // newer one, still opens the value it held.
                        assert_eq!(
                            opens(&w.older, &cookie_of(&own)).await,
                            (None, LARGE),
                            "{case}"
                        );
                        assert_eq!(opens(&w.older, &browser).await.1, LARGE, "{case}");
                    }
                    Ok(()) => {
                        let sent = the_cookie(&response).value().to_owned();
                        assert_eq!(
                            opens(&w.older, &cookie_of(&sent)).await,
                            (None, SMALL),
                            "{case}"
                        );
                        // The pointer's entry is taken.
                        let old = opens(&w.older, &cookie_of(&own)).await;
                        assert!(old.0.is_some() && old.1 == 0, "{case}: {old:?}");
                        // The newer copy is ended when that writes at all.
                        if let (Some(victim), true) =
                            (&victim, revocation || matches!(newer_copy, Newer::Stored))
                        {
                            let left = opens(&w.newer, &cookie_of(victim)).await;
                            assert!(left.0.is_some() && left.1 == 0, "{case}: {left:?}");
                        }
                        // The browser with the response applied opens the
                        // small value (the newer cookie is refused).
                        let after = opens(&w.older, &request_after(&response)).await;
                        assert_eq!(after, (None, SMALL), "{case}");
                    }
                }
                drop(w.clock);
                if calls.len() < n as usize {
                    succeeded = true;
                    break;
                }
            }
            assert!(
                succeeded,
                "revocation {revocation}, newer {newer_copy:?}: never got past the failures"
            );
        }
    }
}

/// Replace mode off: a move back beside a newer-schema cookie is refused
/// before any store call, and both cookies stay as they were.
#[tokio::test]
async fn holds_a_move_back_beside_a_newer_cookie_without_replace_mode_writes_nothing() {
    let w = world(true, false);
    let victim = sealed(&w.newer, vec![2u8; SMALL]).await;
    let own = sealed(&w.older, vec![1u8; LARGE]).await;
    let browser = request(&[(DEFAULT_NAME, &victim), (DEFAULT_NAME, &own)]);
    let session = w.older.load::<Vec<u8>>(&browser).await.unwrap();
    session.set(vec![1u8; SMALL]);
    w.recording.fail_call(0);
    let mut response = HeaderMap::new();
    let saved = w.older.save(&session, &mut response).await;
    assert!(
        matches!(saved, Err(SaveError::NewerSchema { .. })),
        "{saved:?}"
    );
    assert!(response.is_empty());
    assert_eq!(w.recording.calls(), Vec::<&str>::new());
    assert_eq!(opens(&w.older, &cookie_of(&own)).await, (None, LARGE));
    assert_eq!(opens(&w.newer, &cookie_of(&victim)).await, (None, SMALL));
}

/// Two requests loaded the same store-held session and both shrink it:
/// the first to save takes the entry, the second is `Ended` and sends
/// nothing; the first's cookie opens its value, the old pointer nothing.
#[tokio::test]
async fn holds_parallel_move_backs_one_wins() {
    let w = world(true, false);
    let own = sealed(&w.older, vec![1u8; LARGE]).await;
    let first = w.older.load::<Vec<u8>>(&cookie_of(&own)).await.unwrap();
    let second = w.older.load::<Vec<u8>>(&cookie_of(&own)).await.unwrap();
    first.set(vec![3u8; SMALL]);
    second.set(vec![4u8; SMALL]);
    let mut response = HeaderMap::new();
    w.older.save(&first, &mut response).await.unwrap();
    let mut lost = HeaderMap::new();
    let saved = w.older.save(&second, &mut lost).await;
    assert!(matches!(saved, Err(SaveError::Ended)), "{saved:?}");
    assert!(lost.is_empty(), "{lost:?}");
    let won = w
        .older
        .load::<Vec<u8>>(&request_after(&response))
        .await
        .unwrap();
    assert_eq!(won.get(), vec![3u8; SMALL]);
    let old = opens(&w.older, &cookie_of(&own)).await;
    assert!(old.0.is_some() && old.1 == 0, "{old:?}");
}

/// A copy of the browser's old pointer (an attacker's, or a request
/// without the newer cookie) moves the session back first. The
/// browser's own request, carrying a newer-schema cookie beside the
/// pointer (replace mode), then finds the entry taken: its save is
/// `Ended` and sends nothing. Rule 3: a save that finds its session
/// ended meanwhile "revokes nothing"; rule 4: a failed save changes
/// nothing the browser sees. On 3199907 the newer id was already ended
/// (its marker written) before the take found the entry gone: the
/// browser lost its newer-schema session to a save that failed. Failed
/// before the fix.
#[tokio::test]
async fn finding_a_move_back_that_finds_its_entry_taken_ends_no_newer_copy() {
    let w = world(true, true);
    let victim = sealed(&w.newer, vec![2u8; SMALL]).await;
    let own = sealed(&w.older, vec![1u8; LARGE]).await;
    let browser = request(&[(DEFAULT_NAME, &victim), (DEFAULT_NAME, &own)]);
    let session = w.older.load::<Vec<u8>>(&browser).await.unwrap();
    session.set(vec![1u8; SMALL]);

    // The copy, meanwhile.
    let copy = w.older.load::<Vec<u8>>(&cookie_of(&own)).await.unwrap();
    copy.set(vec![9u8; SMALL]);
    w.older.save(&copy, &mut HeaderMap::new()).await.unwrap();

    let mut response = HeaderMap::new();
    let saved = w.older.save(&session, &mut response).await;
    assert!(matches!(saved, Err(SaveError::Ended)), "{saved:?}");
    assert!(response.is_empty(), "{response:?}");
    assert_eq!(
        opens(&w.newer, &cookie_of(&victim)).await,
        (None, SMALL),
        "the newer-schema session was ended by a save that failed"
    );
}

/// As above, for a save that only re-issues (a rotated key) a value that
/// fits the cookie but was held in the store (written by a server-mode
/// instance): finding the entry taken, it sends nothing and reports
/// success. On 3199907 it had ended the newer id first, so a request that
/// "saved nothing" logged the browser out of its newer-schema session.
/// Failed before the fix.
#[tokio::test]
async fn finding_an_unchanged_move_back_that_finds_its_entry_taken_ends_no_newer_copy() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let with_store = |c: SessionConfig| {
        c.with_shared_store(Arc::clone(&store))
            .with_revocation(true)
            .with_circuit_breaker(None)
    };
    let newer = instance(&clock, |c| {
        with_store(c).with_schema(Schema::<Vec<u8>>::new(2).migrate(1, |v: Vec<u8>| v))
    });
    let server = instance(&clock, |c| {
        with_store(c)
            .with_schema(Schema::<Vec<u8>>::new(1))
            .with_store_mode(StoreMode::Server)
    });
    // Cookie mode, a new primary key: the value loaded is re-sealed.
    let rotated = Sessions::new(
        ring(&[2, 1]),
        with_store(config(&clock))
            .with_schema(Schema::<Vec<u8>>::new(1))
            .with_replace_newer_schemas(true),
    )
    .unwrap();
    let victim = sealed(&newer, vec![2u8; SMALL]).await;
    let own = sealed(&server, vec![1u8; SMALL]).await;
    assert!(server.inspect(&own).unwrap().store_key.is_some());
    let browser = request(&[(DEFAULT_NAME, &victim), (DEFAULT_NAME, &own)]);
    let session = rotated.load::<Vec<u8>>(&browser).await.unwrap();
    assert_eq!(session.get().len(), SMALL);

    // A copy of the pointer alone, re-sealed meanwhile: it takes the entry.
    let copy = rotated.load::<Vec<u8>>(&cookie_of(&own)).await.unwrap();
    let mut moved = HeaderMap::new();
    rotated.save(&copy, &mut moved).await.unwrap();
    assert!(!moved.is_empty(), "the copy moved back into its cookie");

    let mut response = HeaderMap::new();
    rotated.save(&session, &mut response).await.unwrap();
    assert!(response.is_empty(), "{response:?}");
    assert_eq!(
        opens(&newer, &cookie_of(&victim)).await,
        (None, SMALL),
        "the newer-schema session was ended by a save that sent nothing"
    );
}
