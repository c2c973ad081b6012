//! What a random XAES-256-GCM nonce per seal costs, beside a seal under a
//! cached key and RustCrypto's crate, side by side in one run.
//! `src/crypto/xaes.rs` and `src/crypto/rng.rs` are compiled into this
//! bench as they stand, so the `ours_*` rows measure the library's own
//! code.
//!
//! `seal_32_bytes` seals a 32-byte plaintext (about a counter session's
//! envelope) with the cookie's 43 bytes of associated data:
//!
//! - `cached_kx`: AES-256-GCM under a key built once, the nonce a counter:
//!   the bare cost of a seal under a thread's cached derived key `Kx`;
//! - `ours_fixed_nonce`: `XaesKey::seal_with_nonce`: derive `Kx` (two
//!   AES-256 block operations), set up AES-256-GCM under it over the
//!   thread's slot, seal: what every seal and every open costs;
//! - `ours`: `XaesKey::seal`, what the library runs per cookie: a fresh
//!   random nonce (with the fork check) and all of the above;
//! - `rustcrypto_xaes`: RustCrypto's `xaes-256-gcm`, which derives per
//!   message and builds and drops AES-256-GCM each time.
//!
//! `draw_24_bytes`: a random draw (a nonce, a session id):
//!
//! - `thread_rng`: `rand`'s `ThreadRng`;
//! - `ours`: `rng::fill`: one `getrandom` system call (`SysRng`);
//! - `process_id`: `std::process::id()` alone: the system call the
//!   releases before this one made per draw to notice a fork, before
//!   drawing from a per-thread `StdRng`.
//!
//! Run: `cargo bench --bench nonce`; medians are in
//! `target/criterion/<group>/<row>/new/estimates.json`.

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{Criterion, criterion_group, criterion_main};
use rand::Rng as _;
use xaes_256_gcm::Xaes256Gcm;

#[allow(dead_code, unused_imports)]
#[path = "../src/crypto/rng.rs"]
mod rng;
#[allow(dead_code, unused_imports)]
#[path = "../src/crypto/xaes.rs"]
mod xaes;

/// The associated data of a cookie named `__Host-session`.
const AAD: &[u8; 43] = b"sealed-session cookie v1\x01\xfd\x55\xef\x40__Host-session";

fn seal(c: &mut Criterion) {
    let key: [u8; 32] = rng::array();
    let cached = Aes256Gcm::new(&key.into());
    let ours = xaes::XaesKey::new(&key);
    let theirs = Xaes256Gcm::new(&key.into());
    let nonce: [u8; 24] = rng::array();
    let mut buf = [0x11u8; 32];
    let mut counter = 0u128;

    let mut group = c.benchmark_group("seal_32_bytes");
    group.bench_function("cached_kx", |b| {
        b.iter(|| {
            counter = counter.wrapping_add(1);
            let suffix = Nonce::try_from(&counter.to_be_bytes()[4..]).unwrap();
            cached
                .encrypt_inout_detached(&suffix, AAD, black_box(&mut buf[..]).into())
                .unwrap()
        })
    });
    group.bench_function("ours_fixed_nonce", |b| {
        b.iter(|| ours.seal_with_nonce(black_box(&nonce), AAD, black_box(&mut buf)))
    });
    group.bench_function("ours", |b| b.iter(|| ours.seal(AAD, black_box(&mut buf))));
    group.bench_function("rustcrypto_xaes", |b| {
        let nonce = nonce.into();
        b.iter(|| {
            theirs
                .encrypt_inout_detached(black_box(&nonce), AAD, black_box(&mut buf[..]).into())
                .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("draw_24_bytes");
    group.bench_function("thread_rng", |b| {
        b.iter(|| {
            let mut nonce = [0u8; 24];
            rand::rng().fill_bytes(&mut nonce);
            nonce
        })
    });
    group.bench_function("ours", |b| b.iter(rng::array::<24>));
    group.bench_function("process_id", |b| b.iter(std::process::id));
    group.finish();
}

criterion_group!(benches, seal);
criterion_main!(benches);
