//! Seal + open of a session payload, side by side in one run:
//!
//! - `sealed_session`: `Sessions::save` of a changed session (postcard,
//!   XAES-256-GCM, base64url, `Set-Cookie` rendering) then `Sessions::load`
//!   from the `Cookie` header a browser would send back (parsing, base64,
//!   open, lifetime checks, postcard);
//! - `private_jar`: the `cookie` crate's PrivateJar `add` then `get`
//!   (AES-256-GCM with a 96-bit nonce, base64);
//! - `raw_aes_gcm_base64`: `aes-gcm` 0.11 encrypt + base64 encode, then
//!   decode + decrypt, with a cipher built once: the floor.
//!
//! Run: `cargo bench --bench seal`

use std::hint::black_box;

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use rand::Rng as _;
use sealed_session::{Key, Keyring, SessionConfig, Sessions};

#[path = "../tests/common/ready.rs"]
mod ready;
use ready::ready;

fn sealed_session_round_trip(sessions: &Sessions, payload: &str) -> usize {
    let session = ready(sessions.load::<String>(&HeaderMap::new())).unwrap();
    session.set(payload.to_owned());
    let mut response = HeaderMap::new();
    ready(sessions.save(&session, &mut response)).unwrap();
    // What the browser sends back: the `name=value` before the first `;`.
    let set_cookie = std::str::from_utf8(response[SET_COOKIE].as_bytes()).unwrap();
    let (pair, _attributes) = set_cookie.split_once(';').unwrap();
    let mut request = HeaderMap::new();
    request.insert(COOKIE, http::HeaderValue::from_str(pair).unwrap());
    let opened = ready(sessions.load::<String>(&request)).unwrap();
    opened.read(|s| s.len())
}

fn private_jar_round_trip(key: &cookie::Key, payload: &str) -> usize {
    let mut jar = cookie::CookieJar::new();
    jar.private_mut(key)
        .add(cookie::Cookie::new("session", payload.to_owned()));
    let sealed = jar.get("session").unwrap().value().to_owned();
    let mut incoming = cookie::CookieJar::new();
    incoming.add_original(cookie::Cookie::new("session", sealed));
    incoming.private(key).get("session").unwrap().value().len()
}

fn raw_round_trip(cipher: &Aes256Gcm, payload: &str) -> usize {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let mut sealed = nonce.to_vec();
    sealed.extend(
        cipher
            .encrypt(&Nonce::from(nonce), payload.as_bytes())
            .unwrap(),
    );
    let text = URL_SAFE_NO_PAD.encode(&sealed);
    let raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
    let nonce = Nonce::try_from(&raw[..12]).unwrap();
    cipher.decrypt(&nonce, &raw[12..]).unwrap().len()
}

fn bench(c: &mut Criterion) {
    // A 3 KiB session does not fit a 4096-byte cookie once sealed and
    // encoded (that is what the size limit is for); the limit is raised
    // here so all three sizes measure the same work.
    let config = SessionConfig::default().with_size_limit(8192);
    let sessions = Sessions::new(Keyring::new(Key::generate()), config).unwrap();
    let jar_key = cookie::Key::generate();
    let mut raw_key = [0u8; 32];
    rand::rng().fill_bytes(&mut raw_key);
    let raw_cipher = Aes256Gcm::new(&raw_key.into());

    let mut group = c.benchmark_group("seal_open");
    for size in [64usize, 1024, 3072] {
        let payload = "x".repeat(size);
        assert_eq!(sealed_session_round_trip(&sessions, &payload), size);
        assert_eq!(private_jar_round_trip(&jar_key, &payload), size);
        assert_eq!(raw_round_trip(&raw_cipher, &payload), size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("sealed_session", size),
            &payload,
            |b, p| b.iter(|| sealed_session_round_trip(&sessions, black_box(p))),
        );
        group.bench_with_input(BenchmarkId::new("private_jar", size), &payload, |b, p| {
            b.iter(|| private_jar_round_trip(&jar_key, black_box(p)))
        });
        group.bench_with_input(
            BenchmarkId::new("raw_aes_gcm_base64", size),
            &payload,
            |b, p| b.iter(|| raw_round_trip(&raw_cipher, black_box(p))),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
