//! A `Secure` session cookie sent over plain HTTP to a host other than
//! localhost is dropped by browsers; the layer says so once per process
//! (issue 17, item 5), and says nothing over HTTPS (seen directly, or
//! through a proxy's `X-Forwarded-Proto` / `Forwarded` header), on
//! localhost, without `Secure`, or when no `Set-Cookie` is sent.
//!
//! Alone in its own test binary, and all in one test: the "once per
//! process" flag is process-wide, and `tracing` caches per call site
//! whether anyone listens (see `rejection_event.rs`).

mod common;

use std::convert::Infallible;

use common::capture::Capture;
use common::*;
use http::header::{HOST, SET_COOKIE};
use http::{Request, Response};
use sealed_session::{ManualClock, MemoryStore, Session, SessionLayer, Sessions};
use tower::{Layer as _, ServiceExt as _, service_fn};

/// Calls a layered service once with `request`: `/write` changes the
/// session, anything else leaves it alone. Returns whether the response
/// set a cookie and the `warn` lines logged meanwhile.
async fn call(sessions: &Sessions, request: Request<()>) -> (bool, Vec<String>) {
    let (capture, _guard) = Capture::start(tracing::Level::WARN);
    let service = SessionLayer::<u32>::new(sessions.clone()).layer(service_fn(
        |request: Request<()>| async move {
            if request.uri().path() == "/write" {
                let session = request.extensions().get::<Session<u32>>().unwrap();
                session.update(|n| *n += 1);
            }
            Ok::<_, Infallible>(Response::new(String::new()))
        },
    ));
    let response = service.oneshot(request).await.unwrap();
    let set_cookie = response.headers().contains_key(SET_COOKIE);
    let warns = capture.text().lines().map(str::to_owned).collect();
    (set_cookie, warns)
}

/// A request for `uri` with these headers, as hyper hands it to a server
/// (an HTTP/1 request's URI carries no scheme or host).
fn get(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    headers
        .iter()
        .fold(Request::get(uri), |request, (name, value)| {
            request.header(*name, *value)
        })
        .body(())
        .unwrap()
}

#[tokio::test]
async fn a_secure_cookie_over_plain_http_warns_once() {
    let clock = ManualClock::new(START);
    let cookie_only = sessions(&[1], &clock);
    let with_store = instance(&clock, |config| config.with_store(MemoryStore::new()));
    // Built before any capture: `Sessions::new` warns about no `Secure`.
    let not_secure = instance(&clock, |config| {
        config.with_secure(false).with_cookie_name("session")
    });

    // A cookie of the session's name: a browser sends `Secure` cookies
    // over HTTPS only, so this request did not come over plain HTTP from
    // one (or it is not a browser).
    let returning = format!("{DEFAULT_NAME}={}", sealed(&cookie_only, 1u32).await);

    let silent = [
        // HTTPS, seen by the application.
        get("https://example.com/write", &[]),
        // HTTPS ended at a proxy that says so.
        get(
            "/write",
            &[
                (HOST.as_str(), "example.com"),
                ("x-forwarded-proto", "https"),
            ],
        ),
        get(
            "/write",
            &[
                (HOST.as_str(), "example.com"),
                ("X-Forwarded-Proto", "HTTPS, http"),
            ],
        ),
        get(
            "/write",
            &[
                (HOST.as_str(), "example.com"),
                ("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43"),
            ],
        ),
        get(
            "/write",
            &[
                (HOST.as_str(), "example.com"),
                ("forwarded", "Proto=\"https\""),
            ],
        ),
        // Browsers keep `Secure` cookies from localhost over plain HTTP.
        get("/write", &[(HOST.as_str(), "localhost:3000")]),
        get("/write", &[(HOST.as_str(), "app.localhost")]),
        get("/write", &[(HOST.as_str(), "127.0.0.1:8080")]),
        get("/write", &[(HOST.as_str(), "[::1]:8080")]),
        get("http://localhost:3000/write", &[]),
        // No host: not a browser's request.
        get("/write", &[]),
        get(
            "/write",
            &[(HOST.as_str(), "example.com"), ("cookie", &returning)],
        ),
    ];
    for request in silent {
        let describe = format!("{request:?}");
        for sessions in [&cookie_only, &with_store] {
            let request = copy(&request);
            let (set_cookie, warns) = call(sessions, request).await;
            assert!(set_cookie, "{describe}");
            assert!(warns.is_empty(), "{describe}: {warns:?}");
        }
    }

    // Plain HTTP to another host, but no `Set-Cookie`: nothing dropped.
    let (set_cookie, warns) = call(
        &cookie_only,
        get("/read", &[(HOST.as_str(), "example.com")]),
    )
    .await;
    assert!(!set_cookie);
    assert!(warns.is_empty(), "{warns:?}");
    // A cookie without `Secure`: browsers keep it.
    let (set_cookie, warns) = call(
        &not_secure,
        get("/write", &[(HOST.as_str(), "example.com")]),
    )
    .await;
    assert!(set_cookie);
    assert!(warns.is_empty(), "{warns:?}");

    // The mistake: a `Secure` cookie over plain HTTP to example.com.
    let (set_cookie, warns) = call(
        &cookie_only,
        get("/write", &[(HOST.as_str(), "example.com")]),
    )
    .await;
    assert!(set_cookie);
    assert_eq!(warns.len(), 1, "{warns:?}");
    let warn = &warns[0];
    assert!(warn.contains("WARN"), "{warn}");
    assert!(warn.contains("Secure"), "{warn}");
    assert!(warn.contains("plain HTTP"), "{warn}");
    assert!(warn.contains("X-Forwarded-Proto"), "the proxy case: {warn}");
    assert!(
        warn.contains("with_secure(false)"),
        "local development: {warn}"
    );

    // Once per process.
    for request in [
        get("/write", &[(HOST.as_str(), "example.com")]),
        get("http://example.com/write", &[]),
        get(
            "/write",
            &[
                (HOST.as_str(), "example.com"),
                ("x-forwarded-proto", "http"),
            ],
        ),
    ] {
        let (set_cookie, warns) = call(&with_store, request).await;
        assert!(set_cookie);
        assert!(warns.is_empty(), "{warns:?}");
    }
}

/// A copy of a body-less request (`Request` is not `Clone`).
fn copy(request: &Request<()>) -> Request<()> {
    let mut copy = Request::new(());
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}
