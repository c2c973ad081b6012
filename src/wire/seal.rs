//! Wire formats 1 and 2: the sealed cookie value.
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
//! The two versions differ only in the plaintext: version 2's envelope
//! carries the session's own lifetime, and its value bytes (inline, or in
//! a version 2 store entry) start with the schema version. The version
//! byte is bound into the associated data, so a value cannot be moved
//! from one version to the other. Version 1 is written whenever neither
//! is needed, so a release of this library that reads version 2 writes
//! exactly what the one before it wrote.
//!
//! This module knows bytes only; what the plaintext means is
//! [`envelope`](crate::wire::envelope)'s business.

use std::cell::Cell;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::keyring::{KeyId, Keyring, RingKey};
use crate::rejection::Rejection;

/// The first version byte: no lifetime of the session's own, no schema.
pub(crate) const V1: u8 = 1;
/// The second: the envelope carries the session's lifetime and the value
/// bytes start with the schema version.
pub(crate) const V2: u8 = 2;
/// The fixed context string that starts a cookie's associated data.
pub(crate) const CONTEXT: &[u8] = b"sealed-session cookie v1";
/// The fixed context string that starts a store entry's associated data.
pub(crate) const STORE_CONTEXT: &[u8] = b"sealed-session store v1";

use crate::crypto::xaes::{NONCE_LEN, TAG_LEN, XaesKey};
use crate::store::StoreKey;

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
/// key and version when a [`Sessions`](crate::Sessions) is built.
pub(crate) fn associated_data(version: u8, key_id: KeyId, binding: &[u8]) -> Vec<u8> {
    [CONTEXT, &[version], key_id.as_bytes(), binding].concat()
}

/// A key's associated data for versions 1 and 2, in that order.
pub(crate) type Aads = [Vec<u8>; 2];

/// Both versions' associated data for one key.
pub(crate) fn associated_data_both(key_id: KeyId, binding: &[u8]) -> Aads {
    [
        associated_data(V1, key_id, binding),
        associated_data(V2, key_id, binding),
    ]
}

/// The associated data of a store entry.
pub(crate) fn store_associated_data(
    version: u8,
    key_id: KeyId,
    store_key: &StoreKey,
    binding: &[u8],
) -> Vec<u8> {
    [
        STORE_CONTEXT,
        &[version],
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

/// The largest buffer a thread keeps for its next cookie.
const SPARE_LIMIT: usize = 8 * 1024;

thread_local! {
    /// The buffer of the last cookie this thread sealed, reused for the
    /// next one (no allocation per cookie). It holds only that cookie's
    /// sealed bytes, which the browser was sent: never a plaintext.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A buffer to write the plaintext into: `HEADER_LEN` placeholder bytes,
/// with room for `plaintext_hint` more bytes and the tag.
pub(crate) fn buffer(plaintext_hint: usize) -> Vec<u8> {
    let mut buf = SPARE.take();
    buf.clear();
    buf.reserve(OVERHEAD + plaintext_hint);
    buf.resize(HEADER_LEN, 0);
    buf
}

/// Seals `buf` (from [`buffer`], plaintext appended) under `key` as
/// `version` and appends the base64url value to `out`. `aad` must be that
/// version's.
///
/// The value is encoded straight into `out`'s spare room (one pass of
/// the engine over a slice of its exact length), not through the crate's
/// chunked `String` writer.
pub(crate) fn seal_into(key: &RingKey, version: u8, aad: &[u8], buf: Vec<u8>, out: &mut Vec<u8>) {
    let sealed = seal_raw(key, Purpose::Cookie, version, aad, buf);
    key.count_seal();
    let start = out.len();
    out.resize(start + encoded_len(sealed.len()), 0);
    let written = URL_SAFE_NO_PAD
        .encode_slice(&sealed, &mut out[start..])
        .expect("room for exactly the encoded length");
    debug_assert_eq!(start + written, out.len());
    if sealed.capacity() <= SPARE_LIMIT {
        SPARE.set(sealed);
    }
}

/// Seals `buf` (from [`buffer`], plaintext appended) in place: header,
/// ciphertext, tag.
pub(crate) fn seal_raw(
    key: &RingKey,
    purpose: Purpose,
    version: u8,
    aad: &[u8],
    mut buf: Vec<u8>,
) -> Vec<u8> {
    let (nonce, tag) = purpose.cipher(key).seal(aad, &mut buf[HEADER_LEN..]);
    finish(key, version, &nonce, &tag, &mut buf);
    buf
}

/// Writes the header and appends the tag.
fn finish(
    key: &RingKey,
    version: u8,
    nonce: &[u8; NONCE_LEN],
    tag: &[u8; TAG_LEN],
    buf: &mut Vec<u8>,
) {
    buf[0] = version;
    buf[1..1 + KEY_ID_LEN].copy_from_slice(key.id.as_bytes());
    buf[1 + KEY_ID_LEN..HEADER_LEN].copy_from_slice(nonce);
    buf.extend_from_slice(tag);
}

/// A value that opened: the key's position in the ring, the version, and
/// where the plaintext lies in the buffer.
pub(crate) type OpenedRaw = (usize, u8, Range<usize>);

/// Opens a sealed cookie value. `aads[i]` holds the associated data of key
/// `i` of `keyring` (per version). On success returns the key's position
/// in the ring, the version and where the plaintext lies in `buf`.
///
/// The caller bounds `value`'s length before calling.
pub(crate) fn open(
    keyring: &Keyring,
    aads: &[Aads],
    value: &[u8],
    buf: &mut Vec<u8>,
) -> Result<OpenedRaw, Refused> {
    if value.len() < encoded_len(OVERHEAD) {
        return Err((Rejection::Malformed, None));
    }
    decode(value, buf).map_err(|()| (Rejection::Malformed, None))?;
    open_raw(keyring, Purpose::Cookie, buf, |position, _, version| {
        &aads[position][usize::from(version - 1)]
    })
}

/// Decodes base64url without padding into `buf`, replacing what it held.
///
/// Into a buffer of the decoded length, allocated once at that size: no
/// growth, and no over-estimate to fill and cut back.
fn decode(value: &[u8], buf: &mut Vec<u8>) -> Result<(), ()> {
    // Exact for every valid unpadded length; one that is not (4n + 1)
    // fails to decode whatever the room.
    let len = value.len() / 4 * 3 + (value.len() % 4).saturating_sub(1);
    buf.clear();
    buf.reserve_exact(len);
    buf.resize(len, 0);
    let written = URL_SAFE_NO_PAD.decode_slice(value, buf).map_err(drop)?;
    buf.truncate(written);
    Ok(())
}

/// Opens sealed bytes in place. `aad(position, key id, version)` gives the
/// associated data once the key and version are known.
pub(crate) fn open_raw<A: AsRef<[u8]>>(
    keyring: &Keyring,
    purpose: Purpose,
    buf: &mut [u8],
    aad: impl FnOnce(usize, KeyId, u8) -> A,
) -> Result<OpenedRaw, Refused> {
    if buf.len() < OVERHEAD {
        return Err((Rejection::Malformed, None));
    }
    let version = buf[0];
    if version != V1 && version != V2 {
        return Err((Rejection::UnknownVersion(version), None));
    }
    let id_bytes = &buf[1..1 + KEY_ID_LEN];
    let id = KeyId::from_bytes(id_bytes.try_into().expect("4 bytes"));
    let position = keyring
        .position(id_bytes)
        .ok_or((Rejection::UnknownKey, Some(id)))?;
    let aad = aad(position, id, version);
    let body_end = buf.len() - TAG_LEN;
    let (head, tag) = buf.split_at_mut(body_end);
    let (header, body) = head.split_at_mut(HEADER_LEN);
    let nonce = header[1 + KEY_ID_LEN..].try_into().expect("24 bytes");
    let tag = (&*tag).try_into().expect("16 bytes");
    purpose
        .cipher(&keyring.keys()[position])
        .open(nonce, aad.as_ref(), body, tag)
        .map_err(|()| (Rejection::Forged, Some(id)))?;
    Ok((position, version, HEADER_LEN..body_end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    /// The known-answer vectors of SECURITY.md: fixed key, nonce, name,
    /// application context and plaintext give exactly this cookie value, so
    /// the format cannot change by accident (nor the document drift from
    /// the code). `scripts/kat.py` computes them all independently.
    #[test]
    fn known_answer_vector() {
        check_vector(
            V1,
            b"",
            V1_PLAINTEXT,
            "Af1V70CgoaKjpKWmp6ipqqusra6vsLGys7S1trcY-M5ZSZ8JYdmacoltcTgxd9OFbiWWgFBkDkc0uZ4OcZZ5IQoJTPT_judL8YI",
        );
    }

    #[test]
    fn known_answer_vector_with_an_application_context() {
        check_vector(
            V1,
            b"shop production",
            V1_PLAINTEXT,
            "Af1V70CgoaKjpKWmp6ipqqusra6vsLGys7S1trcY-M5ZSZ8JYdmacoltcTgxd9OFbiWWgFBkDkc0ubdoBsmIPQqBs_V2ewW5kRY",
        );
    }

    #[test]
    fn known_answer_vector_of_version_2() {
        check_vector(V2, b"", V2_PLAINTEXT, V2_VALUE);
    }

    const V2_VALUE: &str = "Av1V70CgoaKjpKWmp6ipqqusra6vsLGys7S1trcY-M5ZSZ8JYdmacoltcTgxd9OFbiWWgFBkDka1CXgcz5JS8c7FGIeq7OA0cowMLii54CwZ";

    /// Envelope: id 16 x 0x11, created 1_700_000_000, issued 1_700_000_300,
    /// Inline(postcard of the u32 42 = [0x2a]).
    const V1_PLAINTEXT: &[u8] = &[
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x80, 0xe2, 0xcf, 0xaa, 0x06, 0xac, 0xe4, 0xcf, 0xaa, 0x06, 0x00, 0x01, 0x2a,
    ];

    /// Version 2: the same id and timestamps; lifetime persistent (1), idle
    /// 2_592_000 s (30 days), absolute as configured (0); Inline(schema 3,
    /// then postcard of the u32 42).
    const V2_PLAINTEXT: &[u8] = &[
        0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
        0x11, 0x80, 0xe2, 0xcf, 0xaa, 0x06, 0xac, 0xe4, 0xcf, 0xaa, 0x06, 0x01, 0x80, 0x9a, 0x9e,
        0x01, 0x00, 0x00, 0x02, 0x03, 0x2a,
    ];

    /// The plaintexts are what the envelope encoder writes.
    #[test]
    fn known_answer_plaintexts_are_the_envelope_encoding() {
        use crate::lifetime::session_lifetime::SessionLifetime;
        use crate::wire::envelope::{Body, Envelope, SessionId};
        let mut envelope = Envelope {
            id: SessionId::from_test_bytes([0x11; 16]),
            created: 1_700_000_000,
            issued: 1_700_000_300,
            lifetime: None,
            body: Body::Inline(&[0x2a]),
        };
        let mut out = Vec::new();
        envelope.encode_into(&mut out);
        assert_eq!(out, V1_PLAINTEXT);
        envelope.lifetime = Some(
            SessionLifetime::persistent()
                .with_idle_timeout(std::time::Duration::from_secs(2_592_000)),
        );
        envelope.body = Body::Inline(&[0x03, 0x2a]);
        out.clear();
        envelope.encode_into(&mut out);
        assert_eq!(out, V2_PLAINTEXT);
        assert_eq!(Envelope::decode(V2_PLAINTEXT, V2), Some(envelope));
    }

    /// The exact-size decoding agrees with the crate's own `decode` on
    /// every length, valid or not, and on bytes outside the alphabet.
    #[test]
    fn decoding_agrees_with_the_engine() {
        let mut buf = Vec::new();
        for len in 0..300usize {
            let raw: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let encoded = URL_SAFE_NO_PAD.encode(&raw);
            assert_eq!(decode(encoded.as_bytes(), &mut buf), Ok(()));
            assert_eq!(buf, raw);
            for bad in [
                format!("{encoded}A"),
                format!("{encoded}="),
                format!("*{encoded}"),
                format!("{encoded}/"),
            ] {
                let expected = URL_SAFE_NO_PAD.decode(&bad).map(drop).map_err(drop);
                assert_eq!(decode(bad.as_bytes(), &mut buf), expected, "{bad}");
            }
        }
    }

    fn check_vector(version: u8, context: &[u8], plaintext: &[u8], expected_value: &str) {
        let key = Key::from_bytes(core::array::from_fn(|i| i as u8)).unwrap();
        let ring = Keyring::new(key);
        let name = "__Host-session";
        let aads = associated_data_both(ring.primary_id(), &binding(name, context));
        let aad = &aads[usize::from(version - 1)];
        let nonce: [u8; NONCE_LEN] = core::array::from_fn(|i| 0xa0 + i as u8);
        let mut buf = buffer(plaintext.len());
        buf.extend_from_slice(plaintext);
        let key = ring.primary();
        let tag = key
            .cookie_cipher
            .seal_with_nonce(&nonce, aad, &mut buf[HEADER_LEN..]);
        finish(key, version, &nonce, &tag, &mut buf);
        let value = URL_SAFE_NO_PAD.encode(&buf);

        assert_eq!(ring.primary_id().to_string(), "fd55ef40");
        assert_eq!(value, expected_value);
        let security = include_str!("../../SECURITY.md");
        assert!(
            security.contains(expected_value),
            "SECURITY.md must show the vector"
        );

        let mut out = Vec::new();
        let (position, opened_version, range) = open(
            &ring,
            std::slice::from_ref(&aads),
            value.as_bytes(),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            (position, opened_version, &out[range]),
            (0, version, plaintext)
        );
        // The version byte is bound: the same bytes under the other version
        // do not open.
        let mut swapped = buf.clone();
        swapped[0] = if version == V1 { V2 } else { V1 };
        let swapped = URL_SAFE_NO_PAD.encode(&swapped);
        assert_eq!(
            open(&ring, &[aads], swapped.as_bytes(), &mut out),
            Err((Rejection::Forged, Some(ring.primary_id())))
        );
    }
}
