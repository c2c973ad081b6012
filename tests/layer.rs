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

/// An inner service that must be polled ready before each call (like a
/// concurrency or rate limit); a clone starts not ready. Answers `Err` on
/// `/fail`, and counts the session on other paths.
#[derive(Default)]
struct MustBeReady {
    ready: bool,
}

impl Clone for MustBeReady {
    fn clone(&self) -> Self {
        MustBeReady { ready: false }
    }
}

impl tower::Service<Request<()>> for MustBeReady {
    type Response = http::Response<String>;
    type Error = &'static str;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.ready = true;
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let was_ready = std::mem::take(&mut self.ready);
        std::future::ready(if !was_ready {
            Err("called without poll_ready")
        } else if request.uri().path() == "/fail" {
            Err("inner failure")
        } else {
            let session = request.extensions().get::<Session<u32>>().unwrap();
            let count = session.update(|n| {
                *n += 1;
                *n
            });
            Ok(http::Response::new(count.to_string()))
        })
    }
}

/// Without a store the layer runs inline, with one it runs a boxed future:
/// both must call the inner service that was polled ready, pass its errors
/// through untouched (no cookie written), and keep the session going.
#[tokio::test]
async fn readiness_and_inner_errors_with_and_without_a_store() {
    use sealed_session::{MemoryStore, Sessions};
    use tower::Service as _;

    let clock = ManualClock::new(START);
    let configs = [
        ("no store", config(&clock)),
        ("store", config(&clock).with_store(MemoryStore::new())),
    ];
    for (label, config) in configs {
        let sessions = Sessions::new(ring(&[1]), config).unwrap();
        let mut service = tower::ServiceBuilder::new()
            .layer(SessionLayer::<u32>::new(sessions))
            .service(MustBeReady::default());
        let mut cookie: Option<String> = None;
        for expected in 1..=3u32 {
            let mut request = Request::get("/").body(()).unwrap();
            if let Some(cookie) = &cookie {
                request
                    .headers_mut()
                    .insert(http::header::COOKIE, cookie.parse().unwrap());
            }
            let response = service.ready().await.unwrap().call(request).await;
            let response = response.unwrap_or_else(|e| panic!("{label}: {e}"));
            assert_eq!(response.body(), &expected.to_string(), "{label}");
            let set_cookie = response.headers()[http::header::SET_COOKIE]
                .to_str()
                .unwrap();
            cookie = Some(common::client::pair(set_cookie));

            let mut failing = Request::get("/fail").body(()).unwrap();
            failing.headers_mut().insert(
                http::header::COOKIE,
                cookie.as_deref().unwrap().parse().unwrap(),
            );
            let failed = service.ready().await.unwrap().call(failing).await;
            assert_eq!(failed.unwrap_err(), "inner failure", "{label}");
        }
    }
}
