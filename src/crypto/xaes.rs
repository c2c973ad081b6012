//! XAES-256-GCM (C2SP) with derived-key reuse.
//!
//! XAES-256-GCM seals with a 192-bit nonce `N`: it derives a per-nonce
//! AES-256-GCM key `Kx` from the key and `N[..12]` (two AES-256 block
//! operations, NIST SP 800-108 counter mode with CMAC), then runs
//! AES-256-GCM under `Kx` with nonce `N[12..]`. The output is standard: the
//! C2SP vectors and RustCrypto's `xaes-256-gcm` crate (a dev-dependency,
//! checked against on random inputs) give the same bytes.
//!
//! Deriving `Kx` and setting up AES-256-GCM under it for every message
//! costs more than sealing a small session does (about 1,400 instructions
//! per message; over HTTP, 13-15% of the server's CPU per counter request:
//! SECURITY.md). So each thread draws a random 96-bit prefix `N[..12]`,
//! keeps its `Kx`, and seals up to [`SEALS_PER_PREFIX`] messages under it
//! with `N[12..]` a counter from a random start, so no two of those nonces
//! are equal. The opener keeps the `Kx` of recently seen prefixes, per
//! thread, and adds one only after it authenticated a message, so
//! forgeries cannot fill the cache. SECURITY.md gives the nonce bound this
//! keeps, and what the visible nonce reveals (the shared prefix, and the
//! counter between two cookies of one prefix).
//!
//! A thread's sealing state is tied to the process it was drawn in: after
//! `fork` the child's first seal draws a new prefix and counter start
//! (from a generator that reseeds in the child, [`crate::crypto::rng`]), so parent
//! and child never seal under the same nonce.
//!
//! Everything here is built from the `aes` block cipher and `aes-gcm`; no
//! primitive is written by hand.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::consts::U12;
use aes_gcm::aes::Aes256Enc;
use aes_gcm::aes::cipher::BlockCipherEncrypt as _;
use aes_gcm::{AeadInOut as _, AesGcm, KeyInit as _, Nonce, Tag};
use zeroize::Zeroizing;

/// A XAES-256-GCM nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// A tag.
pub(crate) const TAG_LEN: usize = 16;
const PREFIX_LEN: usize = 12;
/// Messages a thread seals under one derived key before it draws a new
/// prefix.
pub(crate) const SEALS_PER_PREFIX: u32 = 1 << 16;
/// Derived keys an opening thread keeps.
const OPEN_CACHE: usize = 8;
const LOW_96: u128 = (1 << 96) - 1;

/// AES-256-GCM on the encryption half of AES (GCM never decrypts a block).
type Gcm = AesGcm<Aes256Enc, U12>;
type Prefix = [u8; PREFIX_LEN];

/// Tells keys apart in the per-thread caches; never reused in a process.
static NEXT_UID: AtomicU64 = AtomicU64::new(0);

/// A XAES-256-GCM key, with the first steps of the derivation done once.
///
/// Boxed: moving it (a key ring's `Vec` growing) copies a pointer, and the
/// one copy of the key schedule and `K1` is zeroized when it drops.
pub(crate) struct XaesKey(Box<Expanded>);

struct Expanded {
    aes: Aes256Enc,
    k1: Zeroizing<[u8; 16]>,
    uid: u64,
}

struct Sealer {
    uid: u64,
    /// The process the prefix and counter were drawn in.
    pid: u32,
    prefix: Prefix,
    counter: u128,
    left: u32,
    cipher: Gcm,
}

struct Opener {
    uid: u64,
    prefix: Prefix,
    last_used: u64,
    cipher: Gcm,
}

thread_local! {
    static SEALERS: RefCell<Vec<Sealer>> = const { RefCell::new(Vec::new()) };
    static OPENERS: RefCell<(u64, Vec<Opener>)> = const { RefCell::new((0, Vec::new())) };
}

impl XaesKey {
    /// Steps 1-2 of the C2SP spec: `L = AES-256(K, 0^128)`, `K1 = dbl(L)`.
    pub(crate) fn new(key: &[u8; 32]) -> XaesKey {
        let mut expanded = Box::new(Expanded {
            aes: Aes256Enc::new(key.into()),
            k1: Zeroizing::new([0u8; 16]),
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
        });
        let Expanded { aes, k1, .. } = &mut *expanded;
        aes.encrypt_block((&mut **k1).into());
        // Doubling in GF(2^128), big-endian, without a branch on the secret
        // top bit.
        let carry = k1[0] >> 7;
        for i in 0..15 {
            k1[i] = (k1[i] << 1) | (k1[i + 1] >> 7);
        }
        k1[15] = (k1[15] << 1) ^ (carry * 0x87);
        XaesKey(expanded)
    }

    /// Steps 3-5: the AES-256-GCM key for a nonce prefix.
    fn derive(&self, prefix: &Prefix) -> Gcm {
        let mut kx = Zeroizing::new([0u8; 32]);
        for (half, counter) in kx.chunks_exact_mut(16).zip([1u8, 2]) {
            half[..4].copy_from_slice(&[0, counter, b'X', 0]);
            half[4..].copy_from_slice(prefix);
            for (b, k) in half.iter_mut().zip(self.0.k1.iter()) {
                *b ^= k;
            }
            self.0
                .aes
                .encrypt_block(half.try_into().expect("a 16-byte half"));
        }
        Gcm::new((&*kx).into())
    }

    /// Seals `buf` in place under an explicit nonce, deriving afresh.
    #[cfg(test)]
    pub(crate) fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let (prefix, suffix) = split(nonce);
        encrypt(&self.derive(prefix), suffix, aad, buf)
    }

    /// Seals `buf` in place; returns the nonce it chose and the tag.
    pub(crate) fn seal(&self, aad: &[u8], buf: &mut [u8]) -> ([u8; NONCE_LEN], [u8; TAG_LEN]) {
        // One `getpid` per seal: a fork between two checks would go unseen.
        let pid = super::rng::process_id();
        SEALERS.with_borrow_mut(|sealers| {
            let position = match sealers.iter().position(|s| s.uid == self.0.uid) {
                Some(p) => p,
                None => {
                    // One sealer per key; a thread seals under few keys
                    // (the primaries of the rings it serves).
                    if sealers.len() >= OPEN_CACHE {
                        sealers.remove(0);
                    }
                    sealers.push(self.new_sealer(pid));
                    sealers.len() - 1
                }
            };
            let sealer = &mut sealers[position];
            if sealer.left == 0 || sealer.pid != pid {
                *sealer = self.new_sealer(pid);
            }
            sealer.left -= 1;
            let mut nonce = [0u8; NONCE_LEN];
            nonce[..PREFIX_LEN].copy_from_slice(&sealer.prefix);
            nonce[PREFIX_LEN..].copy_from_slice(&sealer.counter.to_be_bytes()[4..]);
            sealer.counter = sealer.counter.wrapping_add(1) & LOW_96;
            let (_, suffix) = split(&nonce);
            (nonce, encrypt(&sealer.cipher, suffix, aad, buf))
        })
    }

    fn new_sealer(&self, pid: u32) -> Sealer {
        let prefix: Prefix = super::rng::array();
        let counter = u128::from_be_bytes(super::rng::array()) & LOW_96;
        Sealer {
            uid: self.0.uid,
            pid,
            cipher: self.derive(&prefix),
            prefix,
            counter,
            left: SEALS_PER_PREFIX,
        }
    }

    /// Opens `buf` in place. `Err` means it did not authenticate.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), ()> {
        let (prefix, suffix) = split(nonce);
        let uid = self.0.uid;
        OPENERS.with_borrow_mut(|(tick, openers)| {
            *tick += 1;
            if let Some(hit) = openers
                .iter_mut()
                .find(|o| o.uid == uid && o.prefix == *prefix)
            {
                hit.last_used = *tick;
                return decrypt(&hit.cipher, suffix, aad, buf, tag);
            }
            let cipher = self.derive(prefix);
            decrypt(&cipher, suffix, aad, buf, tag)?;
            let entry = Opener {
                uid,
                prefix: *prefix,
                last_used: *tick,
                cipher,
            };
            if openers.len() < OPEN_CACHE {
                openers.push(entry);
            } else if let Some(oldest) = openers.iter_mut().min_by_key(|o| o.last_used) {
                *oldest = entry;
            }
            Ok(())
        })
    }
}

fn split(nonce: &[u8; NONCE_LEN]) -> (&Prefix, &[u8; 12]) {
    let (prefix, suffix) = nonce.split_at(PREFIX_LEN);
    (
        prefix.try_into().expect("12 bytes"),
        suffix.try_into().expect("12 bytes"),
    )
}

fn encrypt(cipher: &Gcm, suffix: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    cipher
        .encrypt_inout_detached(&Nonce::from(*suffix), aad, buf.into())
        .expect("a cookie-sized message is far below AES-GCM's limits")
        .into()
}

fn decrypt(
    cipher: &Gcm,
    suffix: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), ()> {
    cipher
        .decrypt_inout_detached(&Nonce::from(*suffix), aad, buf.into(), &Tag::from(*tag))
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xaes_256_gcm::Xaes256Gcm;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The two vectors of the C2SP XAES-256-GCM specification.
    #[test]
    fn matches_c2sp_vectors() {
        let cases: [(u8, &[u8], &str); 2] = [
            (
                0x01,
                b"",
                "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
            ),
            (
                0x03,
                b"c2sp.org/XAES-256-GCM",
                "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
            ),
        ];
        for (key_byte, aad, expected) in cases {
            let key = XaesKey::new(&[key_byte; 32]);
            let mut buf = *b"XAES-256-GCM";
            let tag = key.seal_with_nonce(b"ABCDEFGHIJKLMNOPQRSTUVWX", aad, &mut buf);
            assert_eq!(format!("{}{}", hex(&buf), hex(&tag)), expected);
            key.open(b"ABCDEFGHIJKLMNOPQRSTUVWX", aad, &mut buf, &tag)
                .unwrap();
            assert_eq!(&buf, b"XAES-256-GCM");
        }
    }

    /// Ours and RustCrypto's `xaes-256-gcm` agree on random keys, nonces and
    /// lengths, including nonces chosen by the caching sealer.
    #[test]
    fn agrees_with_rustcrypto_xaes() {
        for round in 0..200usize {
            let key_bytes: [u8; 32] = crate::crypto::rng::array();
            let ours = XaesKey::new(&key_bytes);
            let theirs = Xaes256Gcm::new(&key_bytes.into());
            let aad: [u8; 7] = crate::crypto::rng::array();
            let message: Vec<u8> = (0..round * 7).map(|i| i as u8).collect();

            let mut sealed = message.clone();
            let (nonce, tag) = ours.seal(&aad, &mut sealed);
            let mut reference = message.clone();
            let their_tag = theirs
                .encrypt_inout_detached(&nonce.into(), &aad, reference.as_mut_slice().into())
                .unwrap();
            assert_eq!(
                (sealed.as_slice(), tag.as_slice()),
                (reference.as_slice(), their_tag.as_slice())
            );

            ours.open(&nonce, &aad, &mut sealed, &tag).unwrap();
            assert_eq!(sealed, message);
        }
    }

    #[test]
    fn a_thread_reuses_its_prefix_with_distinct_nonces_and_renews_it() {
        let key = XaesKey::new(&[5; 32]);
        let (first, _) = key.seal(b"", &mut []);
        let (second, _) = key.seal(b"", &mut []);
        assert_eq!(first[..PREFIX_LEN], second[..PREFIX_LEN]);
        assert_ne!(first, second);
        for _ in 2..SEALS_PER_PREFIX {
            key.seal(b"", &mut []);
        }
        let (renewed, _) = key.seal(b"", &mut []);
        assert_ne!(renewed[..PREFIX_LEN], first[..PREFIX_LEN]);
    }

    #[test]
    fn forgeries_are_refused_and_not_cached() {
        let key = XaesKey::new(&[6; 32]);
        let mut buf = *b"payload";
        let (nonce, mut tag) = key.seal(b"aad", &mut buf);
        tag[0] ^= 1;
        let mut forged = buf;
        assert!(key.open(&nonce, b"aad", &mut forged, &tag).is_err());
        let cached = OPENERS.with_borrow(|(_, o)| o.iter().any(|o| o.uid == key.0.uid));
        assert!(!cached);
        tag[0] ^= 1;
        key.open(&nonce, b"aad", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"payload");
        assert!(OPENERS.with_borrow(|(_, o)| o.iter().any(|o| o.uid == key.0.uid)));
    }

    /// A forked child holds a copy of its parent's sealing state; with the
    /// fork seen (the process id changed) its next seal draws a new prefix
    /// and counter start, from a generator reseeded in the child, instead
    /// of continuing the parent's sequence.
    #[test]
    fn a_forked_child_does_not_continue_its_parents_nonces() {
        use crate::crypto::rng::testing::{fork, install};
        let key = XaesKey::new(&[11; 32]);
        install([3; 32]);
        let (first, _) = key.seal(b"", &mut []);
        // What the parent seals next, from this state.
        let (parent_next, _) = key.seal(b"", &mut []);
        assert_eq!(first[..PREFIX_LEN], parent_next[..PREFIX_LEN]);
        // Replay that state in a "child": same sealer, same generator.
        let key_again = XaesKey::new(&[11; 32]);
        install([3; 32]);
        key_again.seal(b"", &mut []);
        fork();
        let (child_next, _) = key_again.seal(b"", &mut []);
        assert_ne!(child_next[..PREFIX_LEN], parent_next[..PREFIX_LEN]);
        assert_ne!(child_next[PREFIX_LEN..], parent_next[PREFIX_LEN..]);
    }

    /// Moving a key copies no key material (a ring's `Vec` moves its keys
    /// when it grows, and frees the old buffer without wiping it).
    #[test]
    fn keys_hold_their_material_behind_a_pointer() {
        assert_eq!(size_of::<XaesKey>(), size_of::<usize>());
    }
}
