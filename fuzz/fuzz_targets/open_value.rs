//! Arbitrary bytes as the session cookie's value: never a panic, never an
//! opened session (no input can be a valid seal without the key).
#![no_main]

#[path = "common.rs"]
mod common;

use common::{NAME, ready, sessions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sessions = sessions();
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(sessions.inspect(text).is_err(), "random bytes opened");
    }
    let mut header = format!("{NAME}=").into_bytes();
    header.extend_from_slice(data);
    if let Ok(value) = http::HeaderValue::from_bytes(&header) {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, value);
        let session = ready(sessions.load::<Vec<u8>>(&headers)).unwrap();
        assert!(session.is_new());
    }
});
