//! Key rotation: old keys open while in the ring, cookies move to the
//! primary on their next response, removed keys are unknown.

mod common;

use common::*;
use sealed_session::{KeyStats, ManualClock, Rejection};

const NAME: &str = "__Host-session";
const A: u8 = 0xA;
const B: u8 = 0xB;

fn opens(stats: &[KeyStats], byte: u8) -> u64 {
    let id = key(byte).id();
    stats.iter().find(|s| s.id == id).unwrap().opens
}

#[tokio::test]
async fn a_secondary_key_opens_without_resealing() {
    let clock = ManualClock::new(START);
    let value = sealed(&sessions(&[A], &clock), 11u32).await;
    // Step 2 of the drill: B added as secondary, A still primary.
    let ring_ab = sessions(&[A, B], &clock);
    let (session, response, ()) =
        round::<u32, _>(&ring_ab, &request(&[(NAME, &value)]), |_| ()).await;
    assert_eq!(session.get(), 11);
    assert!(
        response.is_empty(),
        "opened under the primary: nothing to re-seal"
    );
}

#[tokio::test]
async fn an_old_key_opens_and_the_cookie_is_resealed_under_the_primary() {
    let clock = ManualClock::new(START);
    let value = sealed(&sessions(&[A], &clock), 11u32).await;
    // Step 3: B promoted, A secondary.
    let ring_ba = sessions(&[B, A], &clock);
    let (session, response, ()) =
        round::<u32, _>(&ring_ba, &request(&[(NAME, &value)]), |_| ()).await;
    assert!(!session.is_new());
    assert_eq!(session.get(), 11);
    let resealed = the_cookie(&response).value().to_owned();
    assert_eq!(&decode(&resealed)[1..5], key(B).id().as_bytes());
    assert_eq!(opens(&ring_ba.keyring().stats(), A), 1);

    // The re-sealed cookie opens under B and needs no further re-seal.
    let (again, next, ()) = round::<u32, _>(&ring_ba, &request(&[(NAME, &resealed)]), |_| ()).await;
    assert_eq!(again.get(), 11);
    assert_eq!(again.id(), session.id());
    assert!(next.is_empty());
    let stats = ring_ba.keyring().stats();
    assert_eq!((opens(&stats, A), opens(&stats, B)), (1, 1));
    assert!(stats[0].primary && stats[0].id == key(B).id());

    // Step 4: A removed. Its cookies are unknown, B's work.
    let ring_b = sessions(&[B], &clock);
    let old = ring_b
        .load::<u32>(&request(&[(NAME, &value)]))
        .await
        .unwrap();
    assert!(old.is_new());
    assert_eq!(old.rejection(), Some(Rejection::UnknownKey));
    let new = ring_b
        .load::<u32>(&request(&[(NAME, &resealed)]))
        .await
        .unwrap();
    assert_eq!(new.get(), 11);
}

#[tokio::test]
async fn resealing_keeps_created_so_rotation_does_not_extend_the_absolute_timeout() {
    let clock = ManualClock::new(START);
    let value = sealed(&sessions(&[A], &clock), 1u8).await;
    clock.advance(std::time::Duration::from_secs(3600));
    let ring_ba = sessions(&[B, A], &clock);
    let (_, response, ()) = round::<u8, _>(&ring_ba, &request(&[(NAME, &value)]), |_| ()).await;
    // Max-Age is the nearer deadline: idle (24 h) is nearer than absolute
    // (7 d - 1 h), so check absolute through expiry instead.
    let resealed = the_cookie(&response).value().to_owned();
    clock.advance(std::time::Duration::from_secs(7 * 24 * 3600 - 3600));
    let expired = ring_ba
        .load::<u8>(&request(&[(NAME, &resealed)]))
        .await
        .unwrap();
    assert_eq!(expired.rejection(), Some(Rejection::AbsoluteExpired));
}
