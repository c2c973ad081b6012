//! The cryptography: master keys, the key ring, XAES-256-GCM and the
//! random numbers everything else draws.
//!
//! - `key`: one master key (32 random bytes, zeroized on drop, never in
//!   `Debug`), its text form and its HKDF subkeys.
//! - `keyring`: the primary key and the older ones, looked up by key id,
//!   with open counts per key.
//! - `xaes`: XAES-256-GCM (C2SP) on RustCrypto's AES-GCM.
//! - `rng`: the operating system's generator, per thread, fork-safe.
//!
//! Uses only the shared error types ([`KeyError`](crate::KeyError)).
//! Used by [`wire`](crate::wire) (sealing and opening), the stores (random
//! keys) and [`Sessions`](crate::Sessions) (the key ring it is built on).

pub(crate) mod key;
pub(crate) mod keyring;
pub(crate) mod rng;
pub(crate) mod xaes;
