//! A handler that asks for a `Session<T>` no layer provides (issue 17,
//! item 5): the `500`'s log line names the session type asked for and
//! tells "no layer at all" from "a layer of another type", naming every
//! layer's type; in debug builds (these tests) the body explains it too.
//!
//! Alone in its own test binary, and all in one test, for the reason given
//! in `rejection_event.rs` (`tracing` caches per call site whether anyone
//! listens).

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::capture::Capture;
use common::*;
use http::{Request, StatusCode};
use sealed_session::{ManualClock, Session, SessionLayer};
use tower::ServiceExt as _;

/// The app's one route asks for a `Session<u32>`.
fn app() -> Router {
    Router::new().route("/", get(|_session: Session<u32>| async { "unreachable" }))
}

/// Calls `app` once; returns the status, the body and the `error` lines
/// logged meanwhile.
async fn call(app: Router) -> (StatusCode, String, Option<String>, Vec<String>) {
    let (capture, _guard) = Capture::start(tracing::Level::ERROR);
    let request = Request::get("/").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let errors = capture.text().lines().map(str::to_owned).collect();
    (status, body, content_type, errors)
}

#[tokio::test]
async fn a_missing_or_mismatched_layer_is_named_in_the_log_and_the_debug_body() {
    let clock = ManualClock::new(START);

    // No layer at all.
    let (status, body, content_type, errors) = call(app()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = &errors[0];
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("Session<u32>"), "{line}");
    assert!(
        line.contains("no SessionLayer wraps this handler"),
        "{line}"
    );
    // Debug build: the explanation is the body, as text.
    assert!(body.contains("Session<u32>"), "{body}");
    assert!(
        body.contains("no SessionLayer wraps this handler"),
        "{body}"
    );
    assert!(
        content_type.is_some_and(|t| t.starts_with("text/plain")),
        "text/plain"
    );

    // A layer of another session type.
    let mismatched = app().layer(SessionLayer::<u64>::new(sessions(&[1], &clock)));
    let (status, body, _, errors) = call(mismatched).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = &errors[0];
    assert!(line.contains("Session<u32>"), "{line}");
    assert!(line.contains("SessionLayer<u64>"), "{line}");
    assert!(!line.contains("no SessionLayer wraps"), "{line}");
    assert!(body.contains("Session<u32>"), "{body}");
    assert!(body.contains("SessionLayer<u64>"), "{body}");

    // Several layers, none of the type asked for: all of them, each once.
    let several = app()
        .layer(SessionLayer::<String>::new(sessions(&[1], &clock)))
        .layer(SessionLayer::<u64>::new(sessions(&[1], &clock)))
        .layer(SessionLayer::<String>::new(sessions(&[1], &clock)));
    let (status, _, _, errors) = call(several).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = &errors[0];
    assert!(line.contains("Session<u32>"), "{line}");
    let string_layer = "SessionLayer<alloc::string::String>";
    assert_eq!(line.matches(string_layer).count(), 1, "{line}");
    assert_eq!(line.matches("SessionLayer<u64>").count(), 1, "{line}");

    // The layer of the type asked for, among others: no rejection.
    let matched = app()
        .layer(SessionLayer::<u32>::new(sessions(&[1], &clock)))
        .layer(SessionLayer::<u64>::new(sessions(&[1], &clock)));
    let (status, body, _, errors) = call(matched).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "unreachable");
    assert!(errors.is_empty(), "{errors:?}");
}
