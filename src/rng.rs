//! Random bytes for nonces and ids.
//!
//! Nonces and session ids come from `rand`'s `ThreadRng`: a ChaCha12 stream
//! per thread, seeded from the operating system and reseeded from it every
//! 64 KiB of output. A `getrandom` system call per seal costs about 250 ns
//! on our machine, more than sealing a small session; the user-space stream
//! costs a few ns. Keys come from the operating system directly
//! ([`Key::generate`](crate::Key::generate)).
//!
//! `ThreadRng` is not reseeded on `fork`: a process that forks after sealing
//! must not seal in both parent and child (async servers do not fork).

use rand::Rng as _;

/// Fills `buf` from the per-thread CSPRNG.
pub(crate) fn fill(buf: &mut [u8]) {
    rand::rng().fill_bytes(buf);
}

/// An array of random bytes from the per-thread CSPRNG.
pub(crate) fn array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}
