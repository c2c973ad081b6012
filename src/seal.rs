//! Wire format v1: the sealed cookie value.
//!
//! ```text
//! value = base64url_nopad( version:u8 | key_id:[u8;4] | nonce:[u8;24] | ciphertext | tag:[u8;16] )
//! AEAD  = XAES-256-GCM (C2SP), 192-bit random nonce, cookie-sealing subkey
//! AAD   = CONTEXT | version | key_id | binding
//! binding = cookie name                                   (no application context)
//!         | cookie name | 0x00 | application context      (with one)
//! ```
//!
//! Server-store entries use the same layout without base64, the store
//! subkey, and `AAD = STORE_CONTEXT | version | key_id | store key |
//! binding`, so an entry opens only under the key it was saved under.
//! A cookie name never contains `0x00`, so the binding is unambiguous, and
//! the empty context leaves version 1's associated data as it was.
//!
//! This module knows bytes only; what the plaintext means is
//! [`envelope`](crate::envelope)'s business.

use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::keyring::{KeyId, Keyring, RingKey};
use crate::rejection::Rejection;

/// The version byte of this format.
pub(crate) const VERSION: u8 = 1;
/// The fixed context string that starts a cookie's associated data.
pub(crate) const CONTEXT: &[u8] = b"sealed-session cookie v1";
/// The fixed context string that starts a store entry's associated data.
pub(crate) const STORE_CONTEXT: &[u8] = b"sealed-session store v1";

use crate::store::StoreKey;
use crate::xaes::{NONCE_LEN, TAG_LEN, XaesKey};

const KEY_ID_LEN: usize = 4;
/// version | key id | nonce.
pub(crate) const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Bytes a sealed value adds to its plaintext before base64.
pub(crate) const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// A refused value: why, and the key id when the value got that far.
pub(crate) type Refused = (Rejection, Option<KeyId>);

/// The length of `raw` bytes in base64 without padding.
pub(crate) const fn encoded_len(raw: usize) -> usize {
    (raw * 4).div_ceil(3)
}

/// What a sealed value is bound to besides its key: the cookie name and,
/// when not empty, the application context. Computed once when a
/// [`Sessions`](crate::Sessions) is built.
pub(crate) fn binding(cookie_name: &str, context: &[u8]) -> Vec<u8> {
    if context.is_empty() {
        return cookie_name.as_bytes().to_vec();
    }
    [cookie_name.as_bytes(), &[0], context].concat()
}

/// The associated data for one key and a [`binding`]. Computed once per
/// key when a [`Sessions`](crate::Sessions) is built.
pub(crate) fn associated_data(key_id: KeyId, binding: &[u8]) -> Vec<u8> {
    [CONTEXT, &[VERSION], key_id.as_bytes(), binding].concat()
}

/// The associated data of a store entry.
pub(crate) fn store_associated_data(
    key_id: KeyId,
    store_key: &StoreKey,
    binding: &[u8],
) -> Vec<u8> {
    [
        STORE_CONTEXT,
        &[VERSION],
        key_id.as_bytes(),
        store_key.as_bytes(),
        binding,
    ]
    .concat()
}

/// Which subkey of a ring key seals.
#[derive(Clone, Copy)]
pub(crate) enum Purpose {
    Cookie,
    Store,
}

impl Purpose {
    fn cipher(self, key: &RingKey) -> &XaesKey {
        match self {
            Purpose::Cookie => &key.cookie_cipher,
            Purpose::Store => &key.store_cipher,
        }
    }
}

/// A buffer to write the plaintext into: `HEADER_LEN` placeholder bytes,
/// with room for `plaintext_hint` more bytes and the tag.
pub(crate) fn buffer(plaintext_hint: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(OVERHEAD + plaintext_hint);
    buf.resize(HEADER_LEN, 0);
    buf
}

/// Seals `buf` (from [`buffer`], plaintext appended) under `key` and
/// appends the base64url value to `out`.
pub(crate) fn seal_into(key: &RingKey, aad: &[u8], buf: Vec<u8>, out: &mut String) {
    let sealed = seal_raw(key, Purpose::Cookie, aad, buf);
    key.count_seal();
    URL_SAFE_NO_PAD.encode_string(&sealed, out);
}

/// Seals `buf` (from [`buffer`], plaintext appended) in place: header,
/// ciphertext, tag.
pub(crate) fn seal_raw(key: &RingKey, purpose: Purpose, aad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
    let (nonce, tag) = purpose.cipher(key).seal(aad, &mut buf[HEADER_LEN..]);
    finish(key, &nonce, &tag, &mut buf);
    buf
}

/// Writes the header and appends the tag.
fn finish(key: &RingKey, nonce: &[u8; NONCE_LEN], tag: &[u8; TAG_LEN], buf: &mut Vec<u8>) {
    buf[0] = VERSION;
    buf[1..1 + KEY_ID_LEN].copy_from_slice(key.id.as_bytes());
    buf[1 + KEY_ID_LEN..HEADER_LEN].copy_from_slice(nonce);
    buf.extend_from_slice(tag);
}

/// Opens a sealed cookie value. `aads[i]` is the associated data of key
/// `i` of `keyring`. On success returns the key's position in the ring and
/// where the plaintext lies in `buf`.
///
/// The caller bounds `value`'s length before calling.
pub(crate) fn open(
    keyring: &Keyring,
    aads: &[Vec<u8>],
    value: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(usize, Range<usize>), Refused> {
    if value.len() < encoded_len(OVERHEAD) {
        return Err((Rejection::Malformed, None));
    }
    buf.clear();
    URL_SAFE_NO_PAD
        .decode_vec(value, buf)
        .map_err(|_| (Rejection::Malformed, None))?;
    open_raw(keyring, Purpose::Cookie, buf, |position, _| &aads[position])
}

/// Opens sealed bytes in place. `aad(position, key id)` gives the
/// associated data once the key is known.
pub(crate) fn open_raw<A: AsRef<[u8]>>(
    keyring: &Keyring,
    purpose: Purpose,
    buf: &mut [u8],
    aad: impl FnOnce(usize, KeyId) -> A,
) -> Result<(usize, Range<usize>), Refused> {
    if buf.len() < OVERHEAD {
        return Err((Rejection::Malformed, None));
    }
    if buf[0] != VERSION {
        return Err((Rejection::UnknownVersion(buf[0]), None));
    }
    let id_bytes = &buf[1..1 + KEY_ID_LEN];
    let id = KeyId::from_bytes(id_bytes.try_into().expect("4 bytes"));
    let position = keyring
        .position(id_bytes)
        .ok_or((Rejection::UnknownKey, Some(id)))?;
    let aad = aad(position, id);
    let body_end = buf.len() - TAG_LEN;
    let (head, tag) = buf.split_at_mut(body_end);
    let (header, body) = head.split_at_mut(HEADER_LEN);
    let nonce = header[1 + KEY_ID_LEN..].try_into().expect("24 bytes");
    let tag = (&*tag).try_into().expect("16 bytes");
    purpose
        .cipher(&keyring.keys()[position])
        .open(nonce, aad.as_ref(), body, tag)
        .map_err(|()| (Rejection::Forged, Some(id)))?;
    Ok((position, HEADER_LEN..body_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    /// The known-answer vectors of SECURITY.md: fixed key, nonce, name,
    /// application context and plaintext give exactly this cookie value, so
    /// the format cannot change by accident (nor the document drift from
    /// the code). `scripts/kat.py` computes both independently.
    #[test]
    fn known_answer_vector() {
        check_vector(
            b"",
            "Af1V70CgoaKjpKWmp6ipqqusra6vsLGys7S1trcY-M5ZSZ8JYdmacoltcTgxd9OFbiWWgFBkDkc0uZ4OcZZ5IQoJTPT_judL8YI",
        );
    }

    #[test]
    fn known_answer_vector_with_an_application_context() {
        check_vector(
            b"shop production",
            "Af1V70CgoaKjpKWmp6ipqqusra6vsLGys7S1trcY-M5ZSZ8JYdmacoltcTgxd9OFbiWWgFBkDkc0ubdoBsmIPQqBs_V2ewW5kRY",
        );
    }

    fn check_vector(context: &[u8], expected_value: &str) {
        let key = Key::from_bytes(core::array::from_fn(|i| i as u8)).unwrap();
        let ring = Keyring::new(key);
        let name = "__Host-session";
        let aad = associated_data(ring.primary_id(), &binding(name, context));
        let nonce: [u8; NONCE_LEN] = core::array::from_fn(|i| 0xa0 + i as u8);
        // Envelope: id 16 x 0x11, created 1_700_000_000, issued 1_700_000_300,
        // Inline(postcard of the u32 42 = [0x2a]).
        let plaintext: &[u8] = &[
            0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
            0x11, 0x11, 0x80, 0xe2, 0xcf, 0xaa, 0x06, 0xac, 0xe4, 0xcf, 0xaa, 0x06, 0x00, 0x01,
            0x2a,
        ];
        let mut buf = buffer(plaintext.len());
        buf.extend_from_slice(plaintext);
        let key = ring.primary();
        let tag = key
            .cookie_cipher
            .seal_with_nonce(&nonce, &aad, &mut buf[HEADER_LEN..]);
        finish(key, &nonce, &tag, &mut buf);
        let value = URL_SAFE_NO_PAD.encode(&buf);

        assert_eq!(ring.primary_id().to_string(), "fd55ef40");
        assert_eq!(value, expected_value);
        let security = include_str!("../SECURITY.md");
        assert!(
            security.contains(expected_value),
            "SECURITY.md must show the vector"
        );

        let mut out = Vec::new();
        let (position, range) = open(&ring, &[aad], value.as_bytes(), &mut out).unwrap();
        assert_eq!((position, &out[range]), (0, plaintext));
    }
}
