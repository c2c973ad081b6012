//! What the tower layer adds to one request, without the network: the
//! counter app of `examples/compare.rs` (a `u64` count in the session) as
//! a tower service, called with a `Request` that carries the session
//! cookie, side by side with the same service without the layer.
//!
//! - `none`: the inner service alone (what the layer is measured against);
//! - `read`: the layer loads the session, the handler reads it, nothing is
//!   written back (the `/peek` route);
//! - `update`: the handler changes the count, the layer seals a new cookie
//!   (the `/` route); the next request carries it.
//!
//! Run: `cargo bench --bench layer --features tower`

use std::convert::Infallible;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderValue, Request, Response};
use sealed_session::{Key, Keyring, Session, SessionConfig, SessionLayer, Sessions};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service, service_fn};

#[path = "../tests/common/ready.rs"]
mod ready;
use ready::ready;

#[derive(Default, Serialize, Deserialize)]
struct Counter {
    count: u64,
    padding: Vec<u8>,
}

/// The handler: bumps the count on `/`, reads it on `/peek`; without the
/// layer (no session in the extensions) it answers a fixed body.
async fn handler(request: Request<()>) -> Result<Response<String>, Infallible> {
    let count = match request.extensions().get::<Session<Counter>>() {
        Some(session) if request.uri().path() == "/" => session.update(|c| {
            c.count += 1;
            c.count
        }),
        Some(session) => session.read(|c| c.count),
        None => 0,
    };
    Ok(Response::new(format!("Visits: {count}\n")))
}

/// One request with `cookie` to `path`; returns the response.
fn call<S>(service: &mut S, path: &str, cookie: &HeaderValue) -> Response<String>
where
    S: Service<Request<()>, Response = Response<String>, Error = Infallible>,
{
    let mut request = Request::get(path).body(()).unwrap();
    request.headers_mut().insert(COOKIE, cookie.clone());
    ready(service.call(request)).unwrap()
}

/// The `name=value` pair a browser sends back for a `Set-Cookie`.
fn pair(response: &Response<String>) -> Option<HeaderValue> {
    let set_cookie = response.headers().get(SET_COOKIE)?;
    let (pair, _) = set_cookie.to_str().ok()?.split_once(';')?;
    HeaderValue::from_str(pair).ok()
}

fn bench(c: &mut Criterion) {
    let config = SessionConfig::default()
        .with_secure(false)
        .with_cookie_name("session");
    let sessions = Sessions::new(Keyring::new(Key::generate()), config).unwrap();
    let mut bare = service_fn(handler);
    let mut layered = SessionLayer::<Counter>::new(sessions).layer(service_fn(handler));
    let first = call(&mut layered, "/", &HeaderValue::from_static("theme=dark"));
    let mut cookie = pair(&first).expect("the first request sets the cookie");

    let mut group = c.benchmark_group("layer");
    group.bench_function("none", |b| b.iter(|| call(&mut bare, "/", &cookie)));
    group.bench_function("read", |b| {
        b.iter(|| {
            let response = call(&mut layered, "/peek", &cookie);
            assert!(!response.headers().contains_key(SET_COOKIE));
            response
        })
    });
    let mut updates = 0;
    group.bench_function("update", |b| {
        b.iter(|| {
            let response = call(&mut layered, "/", &cookie);
            cookie = pair(&response).expect("every update writes the cookie");
            updates += 1;
            response
        })
    });
    group.finish();
    // The session really continued through every iteration: one count per
    // update, after the first request's.
    let last = call(&mut layered, "/peek", &cookie);
    assert_eq!(last.body().as_str(), format!("Visits: {}\n", 1 + updates));
}

criterion_group!(benches, bench);
criterion_main!(benches);
