//! The tower layer and the axum extractor, driven in-process.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::{Request, StatusCode};
use sealed_session::{ManualClock, Session, SessionLayer};
use tower::ServiceExt as _;

fn app(clock: &ManualClock) -> Router {
    Router::new()
        .route(
            "/grow",
            get(|session: Session<Vec<u8>>| async move {
                session.update(|v| v.extend([0u8; 2000]));
                "grew"
            }),
        )
        .route(
            "/len",
            get(|session: Session<Vec<u8>>| async move { session.read(|v| v.len()).to_string() }),
        )
        .layer(SessionLayer::<Vec<u8>>::new(sessions(&[1], clock)))
}

async fn call(app: &Router, path: &str, cookie: Option<&str>) -> http::Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_save_error_is_a_500_without_set_cookie_and_the_old_cookie_still_works() {
    let clock = ManualClock::new(START);
    let app = app(&clock);
    let first = call(&app, "/grow", None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = client_pair(&first);

    // 4000 bytes cannot fit in 4096 once sealed and encoded.
    let second = call(&app, "/grow", Some(&cookie)).await;
    assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(second.headers().get(http::header::SET_COOKIE).is_none());

    let len = call(&app, "/len", Some(&cookie)).await;
    let body = axum::body::to_bytes(len.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"2000");
}

#[tokio::test]
async fn the_extractor_without_its_layer_is_a_500() {
    let app: Router =
        Router::new().route("/", get(|_session: Session<u32>| async { "unreachable" }));
    let response = call(&app, "/", None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn the_layer_wraps_a_plain_tower_service() {
    let clock = ManualClock::new(START);
    let service = tower::service_fn(|request: Request<()>| async move {
        let session = request.extensions().get::<Session<u32>>().unwrap().clone();
        session.update(|n| *n += 1);
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let service = tower::ServiceBuilder::new()
        .layer(SessionLayer::<u32>::new(sessions(&[1], &clock)))
        .service(service);
    let response = service.clone().oneshot(Request::new(())).await.unwrap();
    assert_eq!(
        response
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .count(),
        1
    );
}

fn client_pair(response: &http::Response<Body>) -> String {
    let set_cookie = response.headers()[http::header::SET_COOKIE]
        .to_str()
        .unwrap();
    common::client::pair(set_cookie)
}
