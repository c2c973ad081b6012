//! The operations drills as tests: key rotation and a schema change in
//! process, several instances with one key ring over real HTTP on
//! loopback, and a schema change rolled out across such instances.

mod common;

#[path = "../examples/key_rotation.rs"]
mod key_rotation;
#[path = "../examples/schema_change.rs"]
mod schema_change;
#[path = "../examples/schema_rollout.rs"]
mod schema_rollout;

use std::net::SocketAddr;

use schema_rollout::{Release, horizontal};
use sealed_session::Key;

fn free() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test]
async fn the_key_rotation_drill_passes() {
    assert!(key_rotation::drill().await);
}

#[tokio::test]
async fn the_schema_change_drill_passes() {
    assert!(schema_change::drill().await);
}

#[tokio::test]
async fn instances_sharing_a_key_ring_continue_each_others_sessions() {
    let keys = Key::generate().to_base64url();
    let addrs = horizontal::start(&keys, &[free(), free(), free()])
        .await
        .unwrap();
    let counts = horizontal::round_robin(&addrs, 9).await.unwrap();
    assert_eq!(counts, (1..=9).collect::<Vec<u64>>());

    // An instance with another key ring: the cookie is refused, quietly.
    let (_, count, cookie) = horizontal::visit(addrs[0], None).await.unwrap();
    assert_eq!(count, 1);
    let stranger = horizontal::start(&Key::generate().to_base64url(), &[free()])
        .await
        .unwrap();
    let (status, count, _) = horizontal::visit(stranger[0], cookie.as_deref())
        .await
        .unwrap();
    assert_eq!((status, count), (200, 1), "a fresh session, not an error");
    // Back on the ring's instances the session goes on.
    let (_, count, _) = horizontal::visit(addrs[1], cookie.as_deref())
        .await
        .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test]
async fn a_schema_change_rolls_out_in_two_phases_without_resetting_a_count() {
    let keys = Key::generate().to_base64url();
    let counts = schema_rollout::rollout(&keys, &schema_rollout::STAGES, 6)
        .await
        .unwrap();
    // Every request answered 200 (round_robin fails otherwise), and the
    // one cookie's count went on from stage to stage.
    assert_eq!(
        counts,
        [
            (1..=6).collect::<Vec<u64>>(),
            (7..=12).collect(),
            (13..=18).collect()
        ]
    );
}

#[tokio::test]
async fn an_instance_without_the_schema_keeps_its_hands_off_a_newer_cookie() {
    let keys = Key::generate().to_base64url();
    let phase_2 = schema_rollout::start(&keys, Release::Phase2).await.unwrap();
    let (_, count, cookie) = horizontal::visit(phase_2, None).await.unwrap();
    assert_eq!(count, 1);
    let cookie = cookie.unwrap();

    // Phase 1 skipped: a release 1 instance gets the version 1 cookie on
    // a request that changes the session.
    let release_1 = schema_rollout::start(&keys, Release::One).await.unwrap();
    let (status, body, next) = horizontal::request(release_1, Some(&cookie)).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(next.as_deref(), Some(&*cookie), "no Set-Cookie");

    // The session is intact for an instance that knows its schema.
    let other = schema_rollout::start(&keys, Release::Phase2).await.unwrap();
    let (status, count, _) = horizontal::visit(other, Some(&cookie)).await.unwrap();
    assert_eq!((status, count), (200, 2));
}
