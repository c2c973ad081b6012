//! XAES-256-GCM (C2SP), a fresh random nonce per message.
//!
//! XAES-256-GCM seals with a 192-bit nonce `N`: it derives a per-nonce
//! AES-256-GCM key `Kx` from the key and `N[..12]` (two AES-256 block
//! operations, NIST SP 800-108 counter mode with CMAC), then runs
//! AES-256-GCM under `Kx` with nonce `N[12..]`. The output is standard: the
//! C2SP vectors and RustCrypto's `xaes-256-gcm` crate (a dev-dependency,
//! checked against on random inputs) give the same bytes.
//!
//! Every seal draws all 24 nonce bytes at random ([`crate::crypto::rng`]), so the
//! visible nonce is exactly what a random 192-bit nonce shows: no counter,
//! and nothing that links two cookies. Consequently `Kx` is derived afresh
//! for every message, sealed or opened: no derived key is reused, so none
//! is cached.
//!
//! Deriving `Kx` and setting up AES-256-GCM under it adds about 130 ns to
//! a message; building and dropping AES-256-GCM per message, as RustCrypto's
//! crate does, about 230 ns, the difference being the drop, which zeroizes
//! the whole cipher state (1,104 bytes, sized for the software AES
//! fallback) byte by byte (`cargo bench --bench nonce`). So each thread
//! keeps one slot for the AES-256-GCM state of its current message, and the
//! next message's state is written over it instead: the state of the last
//! message a thread sealed or opened stays in that thread's memory until
//! its next message replaces it, and is zeroized when the thread exits.
//! SECURITY.md gives the nonce bound this keeps.
//!
//! Everything here is built from the `aes` block cipher and `aes-gcm`; no
//! primitive is written by hand.

use std::cell::RefCell;
use std::mem::ManuallyDrop;

use aes_gcm::aead::consts::U12;
use aes_gcm::aes::Aes256Enc;
use aes_gcm::aes::cipher::BlockCipherEncrypt as _;
use aes_gcm::{AeadInOut as _, AesGcm, Key, KeyInit as _, Nonce, Tag};
use zeroize::Zeroizing;

/// A XAES-256-GCM nonce.
pub(crate) const NONCE_LEN: usize = 24;
/// A tag.
pub(crate) const TAG_LEN: usize = 16;
const PREFIX_LEN: usize = 12;

/// AES-256-GCM on the encryption half of AES (GCM never decrypts a block).
type Gcm = AesGcm<Aes256Enc, U12>;
type Prefix = [u8; PREFIX_LEN];

/// A XAES-256-GCM key, with the first steps of the derivation done once.
///
/// Boxed: moving it (a key ring's `Vec` growing) copies a pointer, and the
/// one copy of the key schedule and `K1` is zeroized when it drops.
pub(crate) struct XaesKey(Box<Expanded>);

struct Expanded {
    aes: Aes256Enc,
    k1: Zeroizing<[u8; 16]>,
}

/// A thread's AES-256-GCM state for the message it seals or opens.
///
/// `ManuallyDrop`: assigning a new state writes over the old one without
/// dropping it; a drop would zeroize it first, which costs about as much
/// as building it. When the thread exits, the last state is replaced by one
/// under the all-zero key and dropped, which zeroizes it.
struct Scratch {
    gcm: ManuallyDrop<Gcm>,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            gcm: ManuallyDrop::new(Gcm::new(&Key::<Gcm>::default())),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop(std::mem::replace(
            &mut *self.gcm,
            Gcm::new(&Key::<Gcm>::default()),
        ));
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::new());
}

impl XaesKey {
    /// Steps 1-2 of the C2SP spec: `L = AES-256(K, 0^128)`, `K1 = dbl(L)`.
    pub(crate) fn new(key: &[u8; 32]) -> XaesKey {
        let mut expanded = Box::new(Expanded {
            aes: Aes256Enc::new(key.into()),
            k1: Zeroizing::new([0u8; 16]),
        });
        let Expanded { aes, k1 } = &mut *expanded;
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

    /// Steps 3-5: derives `Kx` for a nonce prefix, writes AES-256-GCM under
    /// it into this thread's slot, and runs `f` with it.
    fn with_derived<R>(&self, prefix: &Prefix, f: impl FnOnce(&Gcm) -> R) -> R {
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
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.gcm = ManuallyDrop::new(Gcm::new((&*kx).into()));
            f(&scratch.gcm)
        })
    }

    /// Seals `buf` in place under a fresh random nonce; returns the nonce
    /// and the tag.
    pub(crate) fn seal(&self, aad: &[u8], buf: &mut [u8]) -> ([u8; NONCE_LEN], [u8; TAG_LEN]) {
        let nonce: [u8; NONCE_LEN] = super::rng::array();
        (nonce, self.seal_with_nonce(&nonce, aad, buf))
    }

    /// Seals `buf` in place under `nonce`; returns the tag. Only [`seal`]
    /// and tests choose the nonce.
    ///
    /// [`seal`]: XaesKey::seal
    pub(crate) fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let (prefix, suffix) = split(nonce);
        self.with_derived(prefix, |gcm| {
            gcm.encrypt_inout_detached(&Nonce::from(*suffix), aad, buf.into())
                .expect("a cookie-sized message is far below AES-GCM's limits")
                .into()
        })
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
        self.with_derived(prefix, |gcm| {
            gcm.decrypt_inout_detached(&Nonce::from(*suffix), aad, buf.into(), &Tag::from(*tag))
                .map_err(|_| ())
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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
    /// lengths, the nonces chosen by the sealer.
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

    /// Two seals in a row share no part of their nonces: neither the
    /// prefix (which selects `Kx`) nor a counter.
    #[test]
    fn consecutive_seals_share_no_prefix() {
        let key = XaesKey::new(&[5; 32]);
        let (first, _) = key.seal(b"", &mut []);
        let (second, _) = key.seal(b"", &mut []);
        assert_ne!(first[..PREFIX_LEN], second[..PREFIX_LEN]);
        assert_ne!(first[PREFIX_LEN..], second[PREFIX_LEN..]);
    }

    fn many_nonces(count: usize) -> Vec<[u8; NONCE_LEN]> {
        let key = XaesKey::new(&[5; 32]);
        (0..count).map(|_| key.seal(b"", &mut []).0).collect()
    }

    #[test]
    fn nonces_of_many_seals_are_distinct_in_both_halves() {
        let nonces = many_nonces(4096);
        let prefixes: HashSet<_> = nonces.iter().map(|n| &n[..PREFIX_LEN]).collect();
        let suffixes: HashSet<_> = nonces.iter().map(|n| &n[PREFIX_LEN..]).collect();
        assert_eq!(prefixes.len(), nonces.len());
        assert_eq!(suffixes.len(), nonces.len());
    }

    /// A crude check that nonces are neither sequential nor structured: in
    /// both halves, consecutive nonces read as integers are at least 2^32
    /// apart (a random pair fails with probability 2^-63), and each of the
    /// 192 bits is set in 2048 +- 192 (6 standard deviations) of 4096
    /// nonces.
    #[test]
    fn nonce_bits_look_random() {
        let nonces = many_nonces(4096);
        let half = |n: &[u8]| {
            let mut wide = [0u8; 16];
            wide[4..].copy_from_slice(n);
            u128::from_be_bytes(wide)
        };
        for pair in nonces.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            for (x, y) in [
                (&a[..PREFIX_LEN], &b[..PREFIX_LEN]),
                (&a[PREFIX_LEN..], &b[PREFIX_LEN..]),
            ] {
                assert!(half(x).abs_diff(half(y)) >= 1 << 32, "{a:02x?} {b:02x?}");
            }
        }
        for bit in 0..NONCE_LEN * 8 {
            let set = nonces
                .iter()
                .filter(|n| n[bit / 8] >> (bit % 8) & 1 == 1)
                .count();
            assert!((2048 - 192..=2048 + 192).contains(&set), "bit {bit}: {set}");
        }
    }

    #[test]
    fn forgeries_are_refused() {
        let key = XaesKey::new(&[6; 32]);
        let mut buf = *b"payload";
        let (nonce, tag) = key.seal(b"aad", &mut buf);
        let mut flipped_tag = tag;
        flipped_tag[0] ^= 1;
        let mut flipped_nonce = nonce;
        flipped_nonce[0] ^= 1;
        let other = XaesKey::new(&[7; 32]);
        let attempts = [
            (&key, nonce, &b"aad"[..], flipped_tag),
            (&key, flipped_nonce, b"aad", tag),
            (&key, nonce, b"aae", tag),
            (&other, nonce, b"aad", tag),
        ];
        for (k, n, aad, t) in attempts {
            let mut forged = buf;
            assert!(k.open(&n, aad, &mut forged, &t).is_err());
        }
        key.open(&nonce, b"aad", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"payload");
    }

    /// One slot serves every key a thread uses: messages of two keys, sealed
    /// and opened interleaved, each open under their own key only.
    #[test]
    fn keys_sharing_a_thread_do_not_mix() {
        let (a, b) = (XaesKey::new(&[8; 32]), XaesKey::new(&[9; 32]));
        let (mut for_a, mut for_b) = (*b"message a", *b"message b");
        let (nonce_a, tag_a) = a.seal(b"", &mut for_a);
        let (nonce_b, tag_b) = b.seal(b"", &mut for_b);
        let mut copy = for_a;
        assert!(b.open(&nonce_a, b"", &mut copy, &tag_a).is_err());
        a.open(&nonce_a, b"", &mut for_a, &tag_a).unwrap();
        b.open(&nonce_b, b"", &mut for_b, &tag_b).unwrap();
        assert_eq!((&for_a, &for_b), (b"message a", b"message b"));
    }

    /// Moving a key copies no key material (a ring's `Vec` moves its keys
    /// when it grows, and frees the old buffer without wiping it).
    #[test]
    fn keys_hold_their_material_behind_a_pointer() {
        assert_eq!(size_of::<XaesKey>(), size_of::<usize>());
    }

    /// A thread that sealed exits cleanly (its slot is wiped on the way).
    #[test]
    fn a_sealing_thread_exits_cleanly() {
        let opened = std::thread::spawn(|| {
            let key = XaesKey::new(&[10; 32]);
            let mut buf = *b"in a thread";
            let (nonce, tag) = key.seal(b"", &mut buf);
            key.open(&nonce, b"", &mut buf, &tag).map(|()| buf)
        })
        .join()
        .unwrap();
        assert_eq!(opened, Ok(*b"in a thread"));
    }
}
