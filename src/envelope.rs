//! The plaintext inside a sealed cookie: id, timestamps, body.

use std::fmt;

use serde::{Deserialize, Serialize};

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
        SessionId(crate::rng::array())
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

/// The sealed plaintext: postcard of this struct.
///
/// postcard encodes the fields in order with no names: 16 id bytes, the two
/// timestamps as varints, then the body's variant index (varint) and
/// content. Changing a field's type or order changes the wire format: the
/// known-answer tests pin it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope<'a> {
    pub(crate) id: SessionId,
    /// When the session began (unix seconds); never extended.
    pub(crate) created: u64,
    /// When this cookie was sealed (unix seconds); the idle clock runs from
    /// here.
    pub(crate) issued: u64,
    #[serde(borrow)]
    pub(crate) body: Body<'a>,
}

/// Where the user's session value is.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Body<'a> {
    /// The postcard bytes of the user's value, in the cookie itself.
    /// Serialized as bytes (one copy), not as a sequence of `u8` (a call
    /// per byte); postcard writes both identically: varint length, bytes.
    Inline(#[serde(serialize_with = "as_bytes")] &'a [u8]),
    /// A reference to a server-store entry holding the sealed value.
    Stored(StoreRef),
}

/// The random 256-bit id of a server-store entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreRef {
    pub(crate) id: [u8; 32],
}

fn as_bytes<S: serde::Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

impl<'a> Envelope<'a> {
    /// Decodes an envelope; the whole input must be used.
    pub(crate) fn decode(bytes: &'a [u8]) -> Option<Envelope<'a>> {
        match postcard::take_from_bytes(bytes) {
            Ok((envelope, [])) => Some(envelope),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the envelope encoding byte for byte.
    #[test]
    fn envelope_encoding_is_pinned() {
        let envelope = Envelope {
            id: SessionId([0xab; 16]),
            created: 1_700_000_000,
            issued: 1_700_000_300,
            body: Body::Inline(&[1, 2, 3]),
        };
        let bytes = postcard::to_allocvec(&envelope).unwrap();
        let mut expected = vec![0xab; 16];
        expected.extend([0x80, 0xe2, 0xcf, 0xaa, 0x06]); // 1_700_000_000
        expected.extend([0xac, 0xe4, 0xcf, 0xaa, 0x06]); // 1_700_000_300
        expected.extend([0x00, 0x03, 1, 2, 3]); // Inline, length 3
        assert_eq!(bytes, expected);
        assert_eq!(Envelope::decode(&bytes), Some(envelope));

        let stored = Envelope {
            id: SessionId([0; 16]),
            created: 1,
            issued: 2,
            body: Body::Stored(StoreRef { id: [9; 32] }),
        };
        let bytes = postcard::to_allocvec(&stored).unwrap();
        assert_eq!(bytes.len(), 16 + 1 + 1 + 1 + 32);
        assert_eq!(bytes[18], 0x01);
        assert_eq!(Envelope::decode(&bytes), Some(stored));
    }

    #[test]
    fn decode_refuses_trailing_bytes_and_truncation() {
        let envelope = Envelope {
            id: SessionId([1; 16]),
            created: 5,
            issued: 6,
            body: Body::Inline(b"xy"),
        };
        let mut bytes = postcard::to_allocvec(&envelope).unwrap();
        assert!(Envelope::decode(&bytes[..bytes.len() - 1]).is_none());
        bytes.push(0);
        assert!(Envelope::decode(&bytes).is_none());
    }
}
