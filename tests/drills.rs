//! The operations drills as tests: key rotation and a schema change in
//! process, and several instances with one key ring over real HTTP on
//! loopback.

mod common;

#[path = "../examples/horizontal.rs"]
mod horizontal;
#[path = "../examples/key_rotation.rs"]
mod key_rotation;
#[path = "../examples/schema_change.rs"]
mod schema_change;

use std::net::SocketAddr;

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
