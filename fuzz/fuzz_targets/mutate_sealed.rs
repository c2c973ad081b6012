//! Edits of a valid sealed value (the input is a list of edits: position,
//! operation, byte): the result opens if and only if it is unchanged.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use common::{NAME, ready, sessions};
use libfuzzer_sys::fuzz_target;

/// A valid cookie value holding a small session, in wire format version 2
/// (a lifetime of its own), which carries the most sealed fields.
fn valid() -> &'static str {
    static VALUE: OnceLock<String> = OnceLock::new();
    VALUE.get_or_init(|| {
        let sessions = sessions();
        let session = ready(sessions.load::<Vec<u8>>(&http::HeaderMap::new())).unwrap();
        session.set(b"fuzz".to_vec());
        session.set_lifetime(
            sealed_session::SessionLifetime::browser_session()
                .with_idle_timeout(std::time::Duration::from_secs(600)),
        );
        let mut response = http::HeaderMap::new();
        ready(sessions.save(&session, &mut response)).unwrap();
        let set_cookie = response[http::header::SET_COOKIE].to_str().unwrap();
        set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
    })
}

fuzz_target!(|data: &[u8]| {
    let original = valid().as_bytes();
    let mut value = original.to_vec();
    for edit in data.chunks_exact(3).take(16) {
        let at = usize::from(edit[0]) * value.len().max(1) / 256;
        match edit[1] % 3 {
            0 if at < value.len() => value[at] = edit[2],
            1 => value.insert(at.min(value.len()), edit[2]),
            2 if at < value.len() => {
                value.remove(at);
            }
            _ => {}
        }
    }
    let unchanged = value == original;
    let mut header = format!("{NAME}=").into_bytes();
    header.extend_from_slice(&value);
    let Ok(header) = http::HeaderValue::from_bytes(&header) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::COOKIE, header);
    let session = ready(sessions().load::<Vec<u8>>(&headers)).unwrap();
    if unchanged {
        assert_eq!(session.get(), b"fuzz");
    } else {
        // A header value is split on ';' and trimmed: an edit that only
        // adds such framing leaves the same value in place.
        let text = String::from_utf8_lossy(&value);
        let framed = text.split(';').next().unwrap_or("").trim().trim_matches('"');
        assert!(session.is_new() || framed == valid(), "an edited value opened: {text:?}");
    }
});
