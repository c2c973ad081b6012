//! The plaintext inside a sealed cookie: id, timestamps, body.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifetime::session_lifetime::{Persistence, SessionLifetime};

/// A session's random 128-bit id.
///
/// The id is inside the sealed cookie, never in clear. It is new for every
/// new session and after [`Session::renew`](crate::Session::renew); it is
/// what a revocation list would record. `Display` is 32 lowercase hex
/// digits.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
/// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
/// assert_eq!(session.id().to_string().len(), 32);
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionId([u8; 16]);

impl SessionId {
    pub(crate) fn random() -> SessionId {
        SessionId(crate::crypto::rng::array())
    }

    #[cfg(test)]
    pub(crate) fn from_test_bytes(bytes: [u8; 16]) -> SessionId {
        SessionId(bytes)
    }

    /// The id's 16 bytes.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// assert_eq!(session.id().as_bytes().len(), 16);
    /// # }
    /// ```
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// The sealed plaintext, in postcard's format.
///
/// postcard encodes the fields in order with no names: 16 id bytes, the two
/// timestamps as varints, then the body's variant index (varint) and
/// content. Version 2 adds the session's own lifetime between the
/// timestamps and the body: its persistence code (0 configured, 1
/// persistent, 2 browser session) and its idle and absolute timeouts in
/// seconds (0: as configured), three varints. The format is written and read here by hand (it is short and
/// fixed, and serde's field-by-field calls cost more than the rest of
/// opening a cookie's envelope); the tests check both directions against
/// postcard itself, on fixed and on random input. Changing a field's type
/// or order changes the wire format: the known-answer tests pin it.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(crate) struct Envelope<'a> {
    pub(crate) id: SessionId,
    /// When the session began (unix seconds); never extended.
    pub(crate) created: u64,
    /// When this cookie was sealed (unix seconds); the idle clock runs from
    /// here.
    pub(crate) issued: u64,
    /// The session's own lifetime: `Some` in wire format version 2, `None`
    /// in version 1 (which has no such field).
    #[cfg_attr(test, serde(skip))]
    pub(crate) lifetime: Option<SessionLifetime>,
    #[cfg_attr(test, serde(borrow))]
    pub(crate) body: Body<'a>,
}

/// Where the user's session value is.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(crate) enum Body<'a> {
    /// The postcard bytes of the user's value, in the cookie itself: a
    /// varint length, then the bytes.
    Inline(#[cfg_attr(test, serde(serialize_with = "as_bytes"))] &'a [u8]),
    /// A reference to a server-store entry holding the sealed value.
    Stored(StoreRef),
}

/// The random 256-bit id of a server-store entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(test, derive(Serialize, Deserialize))]
pub(crate) struct StoreRef {
    pub(crate) id: [u8; 32],
}

#[cfg(test)]
fn as_bytes<S: serde::Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// postcard's variant indexes of [`Body`].
const INLINE: u64 = 0;
const STORED: u64 = 1;

/// The most bytes an envelope adds to its inline body: id, two 10-byte
/// varint timestamps, the lifetime (version 2: a 1-byte code and two
/// 10-byte varints), the variant and a 10-byte varint length.
pub(crate) const MAX_OVERHEAD: usize = 16 + 10 + 10 + 21 + 1 + 10;

impl<'a> Envelope<'a> {
    /// Appends the envelope's encoding to `out`.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        put_varint(out, self.created);
        put_varint(out, self.issued);
        if let Some(lifetime) = &self.lifetime {
            put_varint(out, lifetime.persistence as u64);
            put_varint(out, lifetime.idle);
            put_varint(out, lifetime.absolute);
        }
        match self.body {
            Body::Inline(bytes) => {
                put_varint(out, INLINE);
                put_varint(out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
            Body::Stored(store_ref) => {
                put_varint(out, STORED);
                out.extend_from_slice(&store_ref.id);
            }
        }
    }

    /// The wire format version this envelope is sealed under.
    pub(crate) fn version(&self) -> u8 {
        if self.lifetime.is_some() { 2 } else { 1 }
    }

    /// Decodes an envelope of wire format `version` (1 or 2); the whole
    /// input must be used. Version 1 accepts exactly what postcard
    /// accepts.
    pub(crate) fn decode(bytes: &'a [u8], version: u8) -> Option<Envelope<'a>> {
        let mut input = Input(bytes);
        let id = SessionId(input.array()?);
        let created = input.varint(U64)?;
        let issued = input.varint(U64)?;
        let lifetime = match version {
            1 => None,
            2 => {
                let persistence = Persistence::from_code(input.varint(U32)?)?;
                Some(SessionLifetime {
                    persistence,
                    idle: input.varint(U64)?,
                    absolute: input.varint(U64)?,
                })
            }
            _ => return None,
        };
        // postcard reads a variant index as a u32 varint.
        let body = match input.varint(U32)? {
            INLINE => {
                let len = usize::try_from(input.varint(USIZE)?).ok()?;
                Body::Inline(input.take(len)?)
            }
            STORED => Body::Stored(StoreRef { id: input.array()? }),
            _ => return None,
        };
        input.0.is_empty().then_some(Envelope {
            id,
            created,
            issued,
            lifetime,
            body,
        })
    }
}

/// Splits version 2 value bytes into their schema version (a varint of a
/// `u32`) and the postcard bytes of the value.
pub(crate) fn split_schema(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let mut input = Input(bytes);
    let schema = u32::try_from(input.varint(U32)?).ok()?;
    Some((schema, input.0))
}

/// Appends the schema version that starts version 2 value bytes.
pub(crate) fn put_schema(out: &mut Vec<u8>, schema: u32) {
    put_varint(out, u64::from(schema));
}

/// postcard's varint: 7 bits per byte, least significant first, high bit
/// set on every byte but the last.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// What is left to decode.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// A varint as postcard reads one of the integer type `width`: at
    /// most `width.bytes` bytes, the last one with no bits beyond the
    /// type's; non-minimal encodings are accepted.
    fn varint(&mut self, width: Width) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..width.bytes {
            let (&byte, rest) = self.0.split_first()?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return (i + 1 < width.bytes || byte <= width.last_max).then_some(value);
            }
        }
        None
    }
}

/// The varint limits of an integer type (postcard's `varint_max` and
/// `max_of_last_byte`).
#[derive(Clone, Copy)]
struct Width {
    bytes: u32,
    last_max: u8,
}

const U64: Width = Width {
    bytes: 10,
    last_max: 1,
};
const U32: Width = Width {
    bytes: 5,
    last_max: 0x0f,
};

/// postcard reads a length as a varint of the platform's `usize`.
const USIZE: Width = if usize::BITS == 64 { U64 } else { U32 };

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(envelope: &Envelope<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        envelope.encode_into(&mut out);
        out
    }

    /// What postcard itself makes of `bytes` as a whole envelope.
    fn postcard_decode(bytes: &[u8]) -> Option<Envelope<'_>> {
        match postcard::take_from_bytes(bytes) {
            Ok((envelope, [])) => Some(envelope),
            _ => None,
        }
    }

    /// Pins the envelope encoding byte for byte.
    #[test]
    fn envelope_encoding_is_pinned() {
        let envelope = Envelope {
            id: SessionId([0xab; 16]),
            created: 1_700_000_000,
            issued: 1_700_000_300,
            lifetime: None,
            body: Body::Inline(&[1, 2, 3]),
        };
        let bytes = encode(&envelope);
        let mut expected = vec![0xab; 16];
        expected.extend([0x80, 0xe2, 0xcf, 0xaa, 0x06]); // 1_700_000_000
        expected.extend([0xac, 0xe4, 0xcf, 0xaa, 0x06]); // 1_700_000_300
        expected.extend([0x00, 0x03, 1, 2, 3]); // Inline, length 3
        assert_eq!(bytes, expected);
        assert_eq!(postcard::to_allocvec(&envelope).unwrap(), expected);
        assert_eq!(Envelope::decode(&bytes, 1), Some(envelope));

        let stored = Envelope {
            id: SessionId([0; 16]),
            created: 1,
            issued: 2,
            lifetime: None,
            body: Body::Stored(StoreRef { id: [9; 32] }),
        };
        let bytes = encode(&stored);
        assert_eq!(bytes.len(), 16 + 1 + 1 + 1 + 32);
        assert_eq!(bytes[18], 0x01);
        assert_eq!(bytes, postcard::to_allocvec(&stored).unwrap());
        assert_eq!(Envelope::decode(&bytes, 1), Some(stored));
    }

    #[test]
    fn decode_refuses_trailing_bytes_and_truncation() {
        let envelope = Envelope {
            id: SessionId([1; 16]),
            created: 5,
            issued: 6,
            lifetime: None,
            body: Body::Inline(b"xy"),
        };
        let mut bytes = encode(&envelope);
        for end in 0..bytes.len() {
            assert!(Envelope::decode(&bytes[..end], 1).is_none(), "{end} bytes");
        }
        bytes.push(0);
        assert!(Envelope::decode(&bytes, 1).is_none());
    }

    /// The varint edge cases postcard decides on: longest forms, bits
    /// beyond the type, non-minimal forms, unknown variants, lengths.
    #[test]
    fn varint_edges_are_decided_as_postcard_decides_them() {
        const MAX: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        const BIT_65: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        const ELEVEN: &[u8] = &[
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0,
        ];
        let stored = [3u8; 32];
        // created, issued, variant, what follows, whether it decodes.
        type Case<'a> = (&'a [u8], &'a [u8], &'a [u8], &'a [u8], bool);
        let cases: &[Case<'_>] = &[
            (MAX, &[0], &[1], &stored, true),
            (BIT_65, &[0], &[1], &stored, false),
            (ELEVEN, &[0], &[1], &stored, false),
            (&[0x80, 0x00], &[0x81, 0x80, 0x00], &[1], &stored, true),
            // variant 1 in 5 bytes (allowed), in 6 (too long for a u32),
            // with a 33rd bit; variant 2.
            (&[0], &[0], &[0x81, 0x80, 0x80, 0x80, 0x00], &stored, true),
            (
                &[0],
                &[0],
                &[0x81, 0x80, 0x80, 0x80, 0x80, 0x00],
                &stored,
                false,
            ),
            (&[0], &[0], &[0x81, 0x80, 0x80, 0x80, 0x10], &stored, false),
            (&[0], &[0], &[2], &stored, false),
            // Inline: length 2, a length beyond the end, one in 11 bytes.
            (&[0], &[0], &[0], &[2, 1, 2], true),
            (&[0], &[0], &[0], &[5, 1, 2], false),
            (&[0], &[0], &[0], ELEVEN, false),
        ];
        for (i, (created, issued, variant, rest, decodes)) in cases.iter().enumerate() {
            let bytes = [&[7u8; 16][..], created, issued, variant, rest].concat();
            let decoded = Envelope::decode(&bytes, 1);
            assert_eq!(decoded, postcard_decode(&bytes), "case {i}");
            assert_eq!(decoded.is_some(), *decodes, "case {i}");
        }
    }

    fn envelope_parts() -> impl Strategy<Value = ([u8; 16], u64, u64, Option<Vec<u8>>, [u8; 32])> {
        (
            any::<[u8; 16]>(),
            any::<u64>(),
            prop_oneof![any::<u64>(), 0..300u64],
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            any::<[u8; 32]>(),
        )
    }

    /// An inline envelope when `inline` holds a body, else a stored one.
    fn assemble(
        id: [u8; 16],
        created: u64,
        issued: u64,
        inline: &Option<Vec<u8>>,
        store: [u8; 32],
    ) -> Envelope<'_> {
        Envelope {
            id: SessionId(id),
            created,
            issued,
            lifetime: None,
            body: match inline {
                Some(bytes) => Body::Inline(bytes),
                None => Body::Stored(StoreRef { id: store }),
            },
        }
    }

    proptest! {
        /// Random envelopes: the hand encoding is postcard's and decodes
        /// back to the same envelope.
        #[test]
        fn encoding_matches_postcard((id, created, issued, inline, store) in envelope_parts()) {
            let envelope = assemble(id, created, issued, &inline, store);
            let bytes = encode(&envelope);
            prop_assert_eq!(&bytes, &postcard::to_allocvec(&envelope).unwrap());
            prop_assert_eq!(Envelope::decode(&bytes, 1), Some(envelope));
        }

        /// Random and mutated bytes: the hand decoder accepts exactly what
        /// postcard accepts, with the same result.
        #[test]
        fn decoding_matches_postcard(
            (id, created, issued, inline, store) in envelope_parts(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            random in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let envelope = assemble(id, created, issued, &inline, store);
            let mut bytes = encode(&envelope);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            prop_assert_eq!(Envelope::decode(&bytes, 1), postcard_decode(&bytes));
            let cut = &bytes[..cut.index(bytes.len() + 1)];
            prop_assert_eq!(Envelope::decode(cut, 1), postcard_decode(cut));
            prop_assert_eq!(Envelope::decode(&random, 1), postcard_decode(&random));
        }
    }
}
