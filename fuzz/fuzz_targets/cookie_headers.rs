//! Arbitrary sets of `Cookie` headers (split on 0x00): parsing and loading
//! never panic and never yield a session.
#![no_main]

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

use common::{ready, sessions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = http::HeaderMap::new();
    for part in data.split(|&b| b == 0).take(64) {
        if let Ok(value) = http::HeaderValue::from_bytes(part) {
            headers.append(http::header::COOKIE, value);
        }
    }
    let session = ready(sessions().load::<String>(&headers)).unwrap();
    assert!(session.is_new());
});
