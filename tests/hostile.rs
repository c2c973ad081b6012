//! Hostile `Cookie` input over real HTTP against the counter and cart apps
//! on loopback. Every answer is a 2xx with a fresh session, or the 4xx
//! hyper itself gives for a header it will not parse; never a 5xx.
// Both examples bring their own copy of examples/common: they are
// self-contained programs, included here side by side.
#![allow(clippy::duplicate_mod)]

mod common;

#[path = "../examples/cart.rs"]
mod cart;
#[path = "../examples/counter.rs"]
mod counter;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use common::client::Jar;
use common::{decode, plain_http, serve};
use http::Method;
use sealed_session::{MemoryStore, SessionConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw request bytes (with `Connection: close`); returns the status
/// and the body, status 0 when the server closed without answering (it may
/// refuse an oversize header before reading all of it). Bounded: 10 s.
async fn raw(addr: SocketAddr, head: &[u8]) -> (u16, String) {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        // The server may stop reading (and close) mid-request: not a failure.
        let _ = stream.write_all(head).await;
        let mut response = Vec::new();
        // The server may close while we still write a huge header: read
        // what it answered either way.
        let _ = stream.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    })
    .await
    .expect("answered within 10 s")
}

/// `GET path` carrying `cookie_lines` as raw `Cookie` headers.
async fn get_with(addr: SocketAddr, path: &str, cookie_lines: &[Vec<u8>]) -> (u16, String) {
    let mut head =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
    for line in cookie_lines {
        head.extend_from_slice(b"Cookie: ");
        head.extend_from_slice(line);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    raw(addr, &head).await
}

/// Asserts a fresh counter session (`Visits: 1`), or a 4xx from hyper.
async fn fresh_or_refused(addr: SocketAddr, lines: &[Vec<u8>], what: &str) -> u16 {
    let (status, body) = get_with(addr, "/", lines).await;
    assert!(status < 500 && status != 0, "{what}: status {status}");
    check(status, &body, what);
    status
}

/// Like `fresh_or_refused`, for requests past hyper's limits: hyper may
/// also close the connection without an answer (status 0).
async fn refused_or_closed(addr: SocketAddr, lines: &[Vec<u8>], what: &str) {
    let (status, body) = get_with(addr, "/", lines).await;
    assert!(
        status == 0 || (400..500).contains(&status),
        "{what}: status {status}"
    );
    check(status, &body, what);
}

fn check(status: u16, body: &str, what: &str) {
    if status == 200 {
        assert_eq!(body.trim(), "Visits: 1", "{what}");
    } else if status != 0 {
        assert!((400..500).contains(&status), "{what}: {status}");
    }
}

fn line(text: impl AsRef<[u8]>) -> Vec<u8> {
    text.as_ref().to_vec()
}

async fn counter_app() -> SocketAddr {
    serve(counter::app(plain_http(SessionConfig::default()))).await
}

/// A real cookie value from the counter app at `addr`.
async fn real_value(addr: SocketAddr) -> String {
    let mut jar = Jar::default();
    jar.send(addr, Method::GET, "/").await;
    jar.pair.unwrap().split_once('=').unwrap().1.to_owned()
}

#[tokio::test]
async fn empty_and_degenerate_cookie_headers() {
    let addr = counter_app().await;
    for text in [
        "",
        "session=",
        "session",
        "=",
        ";;;",
        " ; session = ; ",
        "session=\"\"",
        "session==",
        "session=;session=",
    ] {
        let status = fresh_or_refused(addr, &[line(text)], text).await;
        assert_eq!(status, 200, "{text:?}");
    }
}

#[tokio::test]
async fn invalid_utf8_and_control_bytes() {
    let addr = counter_app().await;
    let value = real_value(addr).await;
    let cases: Vec<Vec<u8>> = vec![
        b"session=\xff\xfe\xfd".to_vec(),
        [b"x=\xc3\x28; session=".as_slice(), value.as_bytes()].concat(),
        b"session=\x00abc".to_vec(),
        b"session=ab\x01\x02\x7f".to_vec(),
        b"session=a\tb".to_vec(),
        b"session=\x1b[31m".to_vec(),
    ];
    for (i, case) in cases.iter().enumerate().filter(|(i, _)| *i != 1) {
        fresh_or_refused(
            addr,
            std::slice::from_ref(case),
            &format!("case {i}: {case:?}"),
        )
        .await;
    }
    // A non-UTF-8 neighbour does not hide a valid session cookie.
    let (status, body) = get_with(addr, "/", &cases[1..2]).await;
    assert_eq!((status, body.trim()), (200, "Visits: 2"));
}

#[tokio::test]
async fn huge_headers_and_thousands_of_cookies() {
    let addr = counter_app().await;
    let thousands = (0..5000)
        .map(|i| format!("c{i}=v{i}"))
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(
        fresh_or_refused(addr, &[line(&thousands)], "5000 cookies").await,
        200
    );
    let many_ours = vec!["session=AAAA"; 3000].join("; ");
    assert_eq!(
        fresh_or_refused(addr, &[line(&many_ours)], "3000 values of ours").await,
        200
    );
    let big_value = format!("session={}", "A".repeat(60_000));
    assert_eq!(
        fresh_or_refused(addr, &[line(&big_value)], "60 KB value").await,
        200
    );
    let many_headers: Vec<Vec<u8>> = (0..90).map(|i| line(format!("h{i}=1"))).collect();
    assert_eq!(
        fresh_or_refused(addr, &many_headers, "90 Cookie headers").await,
        200
    );
    // Past hyper's limits: its own 4xx (431 or 400), not a crash or a 5xx.
    let past_limit = format!("session={}", "A".repeat(1 << 20));
    refused_or_closed(addr, &[line(&past_limit)], "1 MiB header").await;
    let too_many: Vec<Vec<u8>> = (0..200).map(|i| line(format!("h{i}=1"))).collect();
    refused_or_closed(addr, &too_many, "200 Cookie headers").await;
    // The server is still up and sessions still work.
    let value = real_value(addr).await;
    let (_, body) = get_with(addr, "/", &[line(format!("session={value}"))]).await;
    assert_eq!(body.trim(), "Visits: 2");
}

#[tokio::test]
async fn re_encodings_truncations_and_foreign_rings() {
    let addr = counter_app().await;
    let value = real_value(addr).await;
    let raw_bytes = decode(&value);
    let standard = base64::engine::general_purpose::STANDARD.encode(&raw_bytes);
    let url_padded = base64::engine::general_purpose::URL_SAFE.encode(&raw_bytes);
    for (what, text) in [
        ("standard base64", standard),
        ("padded base64url", url_padded),
    ] {
        if text != value {
            fresh_or_refused(addr, &[line(format!("session={text}"))], what).await;
        }
    }
    for len in 0..value.len() {
        let cut = line(format!("session={}", &value[..len]));
        assert_eq!(
            fresh_or_refused(addr, &[cut], "truncation").await,
            200,
            "length {len}"
        );
    }
    let other = counter_app().await;
    let foreign = real_value(other).await;
    assert_eq!(
        fresh_or_refused(addr, &[line(format!("session={foreign}"))], "another ring").await,
        200
    );
}

#[tokio::test]
async fn a_replayed_destroyed_cookie_is_refused_only_with_revocation() {
    for revocation in [false, true] {
        let config = SessionConfig::default()
            .with_store(MemoryStore::new())
            .with_revocation(revocation);
        let addr = serve(cart::app(plain_http(config))).await;
        let mut jar = Jar::default();
        jar.send(addr, Method::POST, "/cart/add?item=pen&bytes=10")
            .await;
        let copy = jar.pair.clone().unwrap();
        assert_eq!(jar.send(addr, Method::GET, "/logout").await.status, 200);
        let (status, body) = get_with(addr, "/cart", &[line(&copy)]).await;
        assert_eq!(status, 200);
        let expected = if revocation { "0 items" } else { "1 items" };
        assert!(
            body.starts_with(expected),
            "revocation {revocation}: {body}"
        );
    }
}
