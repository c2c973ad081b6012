use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use sealed_session::{Key, Keyring, SessionConfig, Sessions};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(o) => o,
        Poll::Pending => unreachable!(),
    }
}
fn main() {
    let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    let payload = "x".repeat(64);
    let mut total = 0;
    for _ in 0..20000 {
        let session = ready(sessions.load::<String>(&HeaderMap::new())).unwrap();
        session.set(payload.clone());
        let mut response = HeaderMap::new();
        ready(sessions.save(&session, &mut response)).unwrap();
        let set_cookie = response[SET_COOKIE].as_bytes();
        let pair = &set_cookie[..set_cookie.iter().position(|&b| b == b';').unwrap()];
        let mut request = HeaderMap::new();
        request.insert(COOKIE, http::HeaderValue::from_bytes(pair).unwrap());
        let opened = ready(sessions.load::<String>(&request)).unwrap();
        total += opened.read(|s| s.len());
    }
    println!("{total}");
}
