//! The application context: deployments sharing keys and cookie name by
//! mistake refuse each other's cookies.

mod common;

use common::{START, config, request, ring, sealed};
use sealed_session::{ManualClock, Rejection, SessionConfig, Sessions};

fn with_context(clock: &ManualClock, context: &str) -> Sessions {
    Sessions::new(ring(&[1]), config(clock).with_context(context)).unwrap()
}

#[tokio::test]
async fn another_context_refuses_the_cookie_as_not_authentic() {
    let clock = ManualClock::new(START);
    let production = with_context(&clock, "shop production");
    let staging = with_context(&clock, "shop staging");
    let none = Sessions::new(ring(&[1]), config(&clock)).unwrap();
    let name = production.config().cookie_name().to_owned();
    for (from, to) in [
        (&production, &staging),
        (&staging, &production),
        (&production, &none),
        (&none, &production),
    ] {
        let value = sealed(from, 42u32).await;
        let own = from
            .load::<u32>(&request(&[(&name, &value)]))
            .await
            .unwrap();
        assert_eq!(own.get(), 42, "opens where it was sealed");
        let other = to.load::<u32>(&request(&[(&name, &value)])).await.unwrap();
        assert!(other.is_new());
        assert_eq!(other.rejection(), Some(Rejection::Forged));
    }
}

#[tokio::test]
async fn the_context_is_bytes_and_a_prefix_is_not_enough() {
    let clock = ManualClock::new(START);
    let a = with_context(&clock, "app");
    let value = sealed(&a, 1u32).await;
    let name = a.config().cookie_name().to_owned();
    for other in ["ap", "app ", "APP", "app\0"] {
        let sessions = with_context(&clock, other);
        let session = sessions
            .load::<u32>(&request(&[(&name, &value)]))
            .await
            .unwrap();
        assert_eq!(session.rejection(), Some(Rejection::Forged), "{other:?}");
    }
    // The default is empty, and an explicit empty context is the default.
    let empty = Sessions::new(ring(&[1]), config(&clock).with_context("")).unwrap();
    let plain = sealed(&Sessions::new(ring(&[1]), config(&clock)).unwrap(), 3u32).await;
    let session = empty
        .load::<u32>(&request(&[(&name, &plain)]))
        .await
        .unwrap();
    assert_eq!(session.get(), 3);
    assert!(SessionConfig::default().context().is_empty());
}
