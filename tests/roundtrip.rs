//! Round trips of several session types, and when `save` writes a cookie.

mod common;

use std::collections::BTreeMap;

use common::*;
use http::HeaderMap;
use sealed_session::{ManualClock, Rejection, SameSite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    role: Role,
    tags: Vec<String>,
    prefs: BTreeMap<String, u64>,
    last_seen: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
enum Role {
    #[default]
    Guest,
    Admin {
        level: u8,
    },
}

async fn assert_round_trip<T>(value: T)
where
    T: Serialize + DeserializeOwned + Default + Clone + PartialEq + std::fmt::Debug + 'static,
{
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (first, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(value.clone())).await;
    let (again, next, ()) = round::<T, _>(&sessions, &request_after(&response), |_| ()).await;
    assert!(!again.is_new());
    assert_eq!(again.rejection(), None);
    assert_eq!(again.get(), value);
    assert_eq!(again.id(), first.id());
    assert!(
        set_cookies(&next).is_empty(),
        "an unchanged session sends no cookie"
    );
}

#[tokio::test]
async fn several_types_round_trip() {
    assert_round_trip(42u32).await;
    assert_round_trip(u64::MAX).await;
    assert_round_trip(String::from("héllo; \"world\"=,")).await;
    assert_round_trip(vec![0u8, 255, 7]).await;
    assert_round_trip((true, -5i16, Some(1.5f64))).await;
    assert_round_trip(User {
        name: "Juan".into(),
        role: Role::Admin { level: 3 },
        tags: vec!["a".into(), "b".into()],
        prefs: [("theme".into(), 2)].into(),
        last_seen: Some(-1),
    })
    .await;
}

#[tokio::test]
async fn untouched_new_session_sends_nothing() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (session, response, n) = round::<u32, _>(&sessions, &HeaderMap::new(), |s| s.get()).await;
    assert_eq!(n, 0);
    assert!(session.is_new());
    assert!(response.is_empty());
}

#[tokio::test]
async fn a_write_that_changes_nothing_sends_nothing() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(5u32)).await;
    let (_, next, ()) = round(&sessions, &request_after(&response), |s| s.set(5u32)).await;
    assert!(next.is_empty());
    let (_, changed, ()) = round(&sessions, &request_after(&response), |s| s.set(6u32)).await;
    assert_eq!(set_cookies(&changed).len(), 1);
}

#[tokio::test]
async fn set_cookie_carries_the_default_attributes() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(1u8)).await;
    let cookie = the_cookie(&response);
    assert_eq!(cookie.name(), "__Host-session");
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Lax));
    assert_eq!(cookie.max_age(), Some(time::Duration::hours(24)));
}

#[tokio::test]
async fn configured_attributes_are_rendered() {
    let clock = ManualClock::new(START);
    let config = config(&clock)
        .with_cookie_name("__Secure-app")
        .with_path("/app")
        .with_domain(Some("example.com".into()))
        .with_same_site(SameSite::None)
        .with_partitioned(true)
        .with_http_only(false);
    let sessions = sealed_session::Sessions::new(ring(&[1]), config).unwrap();
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(1u8)).await;
    let cookie = the_cookie(&response);
    assert_eq!(cookie.name(), "__Secure-app");
    assert_eq!(cookie.path(), Some("/app"));
    assert_eq!(cookie.domain(), Some("example.com"));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::None));
    assert_eq!(cookie.partitioned(), Some(true));
    assert_eq!(cookie.http_only(), None);
}

#[tokio::test]
async fn destroy_sends_a_removal_with_the_same_name_path_and_domain() {
    let clock = ManualClock::new(START);
    let config = config(&clock)
        .with_cookie_name("__Secure-app")
        .with_path("/app")
        .with_domain(Some("example.com".into()));
    let sessions = sealed_session::Sessions::new(ring(&[1]), config).unwrap();
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(9u8)).await;
    let (_, removal, ()) =
        round::<u8, _>(&sessions, &request_after(&response), |s| s.destroy()).await;
    let cookie = the_cookie(&removal);
    assert_eq!(cookie.name(), "__Secure-app");
    assert_eq!(cookie.value(), "");
    assert_eq!(cookie.path(), Some("/app"));
    assert_eq!(cookie.domain(), Some("example.com"));
    assert_eq!(cookie.max_age(), Some(time::Duration::ZERO));
}

#[tokio::test]
async fn saving_again_after_a_destroy_writes_nothing_more() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (_, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(9u8)).await;
    let (session, removal, ()) =
        round::<u8, _>(&sessions, &request_after(&response), |s| s.destroy()).await;
    assert_eq!(the_cookie(&removal).value(), "");
    let mut again = HeaderMap::new();
    sessions.save(&session, &mut again).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_value_set_after_destroy_starts_a_new_session() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (old, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(9u8)).await;
    clock.advance(std::time::Duration::from_secs(100));
    let (_, next, ()) = round::<u8, _>(&sessions, &request_after(&response), |s| {
        s.destroy();
        s.set(1);
    })
    .await;
    let (fresh, _, ()) = round::<u8, _>(&sessions, &request_after(&next), |_| ()).await;
    assert_eq!(fresh.get(), 1);
    assert_ne!(fresh.id(), old.id());
}

#[tokio::test]
async fn renew_keeps_the_value_under_a_new_id() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (old, response, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(3u8)).await;
    let (_, renewed, ()) =
        round::<u8, _>(&sessions, &request_after(&response), |s| s.renew()).await;
    let (after, _, ()) = round::<u8, _>(&sessions, &request_after(&renewed), |_| ()).await;
    assert_eq!(after.get(), 3);
    assert_ne!(after.id(), old.id());
}

#[tokio::test]
async fn a_changed_session_type_is_incompatible() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = sealed(&sessions, String::from("not a user")).await;
    let session = sessions
        .load::<User>(&request(&[("__Host-session", &value)]))
        .await
        .unwrap();
    assert!(session.is_new());
    assert_eq!(session.rejection(), Some(Rejection::Incompatible));
    assert_eq!(session.get(), User::default());
}

#[tokio::test]
async fn first_value_that_opens_wins_across_headers_and_duplicates() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let one = sealed(&sessions, 1u32).await;
    let two = sealed(&sessions, 2u32).await;
    let mut headers = request(&[("other", "x"), ("__Host-session", "garbage")]);
    headers.append(
        http::header::COOKIE,
        format!("__Host-session={two}; __Host-session={one}")
            .parse()
            .unwrap(),
    );
    let session = sessions.load::<u32>(&headers).await.unwrap();
    assert_eq!(session.get(), 2);
    assert_eq!(session.rejection(), None);
}

#[tokio::test]
async fn candidates_beyond_the_cap_are_not_tried() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let valid = sealed(&sessions, 7u32).await;
    let mut pairs = vec![("__Host-session", "bad"); sealed_session::MAX_CANDIDATES];
    pairs.push(("__Host-session", &valid));
    let session = sessions.load::<u32>(&request(&pairs)).await.unwrap();
    assert!(session.is_new());
    assert_eq!(session.rejection(), Some(Rejection::Malformed));
    pairs.remove(0);
    let session = sessions.load::<u32>(&request(&pairs)).await.unwrap();
    assert_eq!(session.get(), 7);
}

#[tokio::test]
async fn debug_output_never_shows_the_value() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let session = sessions.load::<String>(&HeaderMap::new()).await.unwrap();
    session.set("secret-payload".into());
    assert!(!format!("{session:?}").contains("secret-payload"));
}
