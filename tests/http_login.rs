//! End to end over real HTTP on loopback: the `login` example's form,
//! posted as a browser posts it, and its "keep me signed in" choice, on a
//! manual clock.

mod common;

#[path = "../examples/login.rs"]
mod login;

use std::net::SocketAddr;
use std::time::Duration;

use common::START;
use common::client::{get, pair, post_form};
use sealed_session::{ManualClock, SessionLifetime, Sessions};

const HOUR: Duration = Duration::from_secs(3600);

/// The login app on a free port, with the example's configuration on a
/// manual clock; returns its address and its `Sessions` (to inspect
/// cookies).
async fn start(clock: &ManualClock) -> (SocketAddr, Sessions) {
    let sessions = common::plain_http(login::config(common::config(clock)));
    (common::serve(login::app(sessions.clone())).await, sessions)
}

/// Posts the login form with `form` (URL-encoded fields); returns the one
/// `Set-Cookie`, parsed.
async fn log_in(addr: SocketAddr, form: &str) -> cookie::Cookie<'static> {
    let reply = post_form(addr, "/set-session", None, form).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.set_cookies.len(), 1, "{:?}", reply.set_cookies);
    cookie::Cookie::parse(reply.set_cookies[0].clone()).unwrap()
}

/// `GET /get-session` with `cookie`: the body.
async fn who(addr: SocketAddr, cookie: &cookie::Cookie<'_>) -> String {
    let reply = get(addr, "/get-session", Some(&pair(&cookie.to_string()))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn the_form_offers_to_keep_the_user_signed_in() {
    let (addr, _) = start(&ManualClock::new(START)).await;
    let reply = get(addr, "/", None).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .body
            .contains(r#"<form action="/set-session" method="post">"#),
        "{}",
        reply.body
    );
    assert!(
        reply
            .body
            .contains(r#"type="checkbox" name="remember" value="1""#)
    );
    assert!(reply.set_cookies.is_empty(), "the form starts no session");
}

#[tokio::test]
async fn a_remembered_login_gets_max_age_and_outlasts_the_configured_idle_timeout() {
    let clock = ManualClock::new(START);
    let (addr, sessions) = start(&clock).await;
    let cookie = log_in(addr, "name=Ann&remember=1").await;

    // Max-Age counts to the nearer deadline: the 30 days this session may
    // idle, before its own 90-day absolute timeout (the configured one is
    // 7 days).
    let max_age = cookie
        .max_age()
        .expect("a persistent cookie")
        .whole_seconds();
    let idle = login::REMEMBER_IDLE.as_secs();
    assert!((idle - 1..=idle).contains(&(max_age as u64)), "{max_age}");
    let sealed = sessions.inspect(cookie.value()).unwrap();
    assert_eq!(sealed.lifetime, login::remember_me());
    assert_eq!(who(addr, &cookie).await, "Name: Ann, Role: admin\n");

    // A day without a request: past the configured 24-hour idle timeout,
    // within this session's own 30 days.
    clock.advance(25 * HOUR);
    assert_eq!(who(addr, &cookie).await, "Name: Ann, Role: admin\n");
}

#[tokio::test]
async fn a_login_not_remembered_gets_a_browser_session_cookie_with_the_configured_idle_timeout() {
    let clock = ManualClock::new(START);
    let (addr, sessions) = start(&clock).await;
    let cookie = log_in(addr, "").await;
    assert_eq!(cookie.max_age(), None);
    assert_eq!(cookie.expires(), None);
    assert_eq!(
        sessions.inspect(cookie.value()).unwrap().lifetime,
        SessionLifetime::browser_session()
    );
    assert_eq!(who(addr, &cookie).await, "Name: Juan, Role: admin\n");

    // A browser that keeps the cookie past the idle timeout gets nothing
    // for it: the server ends the session.
    clock.advance(25 * HOUR);
    assert_eq!(who(addr, &cookie).await, "No active session\n");
}

#[tokio::test]
async fn the_client_cannot_change_the_sealed_lifetime() {
    let (addr, _) = start(&ManualClock::new(START)).await;
    let cookie = log_in(addr, "").await;
    assert_eq!(who(addr, &cookie).await, "Name: Juan, Role: admin\n");

    // Any byte changed (where the lifetime is sealed, or anywhere) and the
    // cookie is refused: a new, empty session.
    let value = cookie.value();
    for at in [0, value.len() / 2, value.len() - 1] {
        let flipped = if &value[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &value[..at], &value[at + 1..]);
        let tampered = cookie::Cookie::new(cookie.name().to_owned(), tampered);
        assert_eq!(who(addr, &tampered).await, "No active session\n", "at {at}");
    }
}

#[tokio::test]
async fn the_posted_name_is_decoded_as_a_browser_encodes_it() {
    let (addr, _) = start(&ManualClock::new(START)).await;
    let cookie = log_in(addr, "name=Ana+Mar%C3%ADa&remember=1").await;
    assert_eq!(who(addr, &cookie).await, "Name: Ana María, Role: admin\n");
}

#[tokio::test]
async fn a_get_does_not_log_in() {
    // A link or an image on another site must not start a session: only
    // the form's POST does.
    let (addr, _) = start(&ManualClock::new(START)).await;
    let reply = get(addr, "/set-session?name=Mallory&remember=1", None).await;
    assert_eq!(reply.status, 405, "{}", reply.body);
    assert!(reply.set_cookies.is_empty(), "{:?}", reply.set_cookies);
}
