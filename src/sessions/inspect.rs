//! [`Sessions::inspect`]: what a cookie value is, for operators.

use std::fmt;

use crate::crypto::keyring::KeyId;
use crate::lifetime::session_lifetime::SessionLifetime;
use crate::rejection::Rejection;
use crate::sessions::{OpenedBody, Sessions};
use crate::store::StoreKey;
use crate::wire::envelope::{self, SessionId};
use crate::wire::seal;

/// What [`Sessions::inspect`] found in a cookie value that opened.
///
/// `Debug` leaves the payload out; read it from [`Inspection::payload`].
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
/// session.set(7);
/// let mut response = http::HeaderMap::new();
/// sessions.save(&session, &mut response).await.unwrap();
/// let set_cookie = response[http::header::SET_COOKIE].to_str().unwrap();
/// let value = set_cookie.split(';').next().unwrap().split_once('=').unwrap().1;
///
/// let found = sessions.inspect(value).unwrap();
/// assert_eq!(found.key_id, sessions.keyring().primary_id());
/// assert_eq!(found.key_position, 0);
/// assert_eq!(found.status, Ok(()));
/// assert_eq!(found.payload, [7]); // postcard of 7u32
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inspection {
    /// The wire format version byte (1, or 2 for a session with a schema
    /// version or a lifetime of its own).
    pub version: u8,
    /// The schema version of the value in the cookie (0 in wire format
    /// version 1); `None` when the value is in the store (its entry holds
    /// the version).
    pub schema: Option<u32>,
    /// The session's own lifetime ([`SessionLifetime::configured`] when it
    /// chose none); `status` and `remaining` apply it.
    pub lifetime: SessionLifetime,
    /// The id of the key that sealed it.
    pub key_id: KeyId,
    /// That key's position in the ring (0: the primary).
    pub key_position: usize,
    /// The session's id.
    pub session_id: SessionId,
    /// When the session began (unix seconds).
    pub created: u64,
    /// When this cookie was sealed (unix seconds).
    pub issued: u64,
    /// Whether it would be accepted now under this configuration: `Ok`, or
    /// the lifetime reason it would be refused (expired, before cut-off,
    /// from the future). Revocation and the store are not consulted.
    pub status: Result<(), Rejection>,
    /// Seconds until the nearer deadline, `None` when no timeout is set.
    pub remaining: Option<u64>,
    /// The store entry holding the value, for a store-held session.
    pub store_key: Option<StoreKey>,
    /// Bytes of cookie value (base64url text).
    pub value_len: usize,
    /// Bytes of sealed data (after base64 decoding).
    pub sealed_len: usize,
    /// The postcard bytes of the application's value, without the schema
    /// version (empty when store-held).
    pub payload: Vec<u8>,
}

impl fmt::Debug for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspection")
            .field("version", &self.version)
            .field("schema", &self.schema)
            .field("lifetime", &self.lifetime)
            .field("key_id", &self.key_id)
            .field("key_position", &self.key_position)
            .field("session_id", &self.session_id)
            .field("created", &self.created)
            .field("issued", &self.issued)
            .field("status", &self.status)
            .field("remaining", &self.remaining)
            .field("store_key", &self.store_key)
            .field("value_len", &self.value_len)
            .field("sealed_len", &self.sealed_len)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Why a cookie value did not open, with the key id when it got that far.
///
/// # Example
///
/// ```
/// use sealed_session::{Key, Keyring, Rejection, SessionConfig, Sessions};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
/// let refused = sessions.inspect("garbage").unwrap_err();
/// assert_eq!(refused.reason, Rejection::Malformed);
/// assert_eq!(refused.key_id, None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: Rejection,
    /// The key id written in the value, once it could be read.
    pub key_id: Option<KeyId>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key_id {
            Some(id) => write!(f, "{} (key id {id})", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

impl std::error::Error for Refusal {}

impl Sessions {
    /// Opens a cookie value (the text after `name=`) and describes it,
    /// without using it: the key ring's counters do not move, the store is
    /// not asked, and lifetime problems are reported in
    /// [`Inspection::status`] rather than refused. For operators and tools
    /// (the `sealed-session inspect` command).
    ///
    /// # Errors
    ///
    /// A [`Refusal`] when the value does not open for this cookie name and
    /// key ring: [`Rejection::TooLarge`], [`Rejection::Malformed`],
    /// [`Rejection::UnknownVersion`], [`Rejection::UnknownKey`] (with the key
    /// id), [`Rejection::Forged`] (tampered, or sealed for another cookie
    /// name), [`Rejection::Incompatible`] (opened, but no envelope inside).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, Rejection, SessionConfig, Sessions};
    ///
    /// let old = Key::generate();
    /// let old_id = old.id();
    /// let a = Sessions::new(Keyring::new(old), SessionConfig::default()).unwrap();
    /// let b = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// # let value = {
    /// #     let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// #     rt.block_on(async {
    /// #         let s = a.load::<u8>(&http::HeaderMap::new()).await.unwrap();
    /// #         s.set(1);
    /// #         let mut h = http::HeaderMap::new();
    /// #         a.save(&s, &mut h).await.unwrap();
    /// #         h[http::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
    /// #     })
    /// # };
    /// // `value` was sealed by `a`:
    /// let refused = b.inspect(&value).unwrap_err();
    /// assert_eq!((refused.reason, refused.key_id), (Rejection::UnknownKey, Some(old_id)));
    /// ```
    pub fn inspect(&self, value: &str) -> Result<Inspection, Refusal> {
        let opened = self
            .unseal(value.as_bytes())
            .map_err(|(reason, key_id)| Refusal { reason, key_id })?;
        let config = self.config();
        let now = config.clock.now();
        let chosen = opened.lifetime.unwrap_or_default();
        let lifetime = config.lifetime.of(&chosen);
        let (store_key, schema, payload) = match opened.body {
            OpenedBody::Inline(range) => {
                let bytes = &opened.buf[range];
                let (schema, payload) = match opened.version {
                    seal::V1 => (0, bytes),
                    _ => envelope::split_schema(bytes).ok_or(Refusal {
                        reason: Rejection::Incompatible,
                        key_id: Some(opened.key_id),
                    })?,
                };
                (None, Some(schema), payload.to_vec())
            }
            OpenedBody::Stored(key) => (Some(key), None, Vec::new()),
        };
        Ok(Inspection {
            version: opened.version,
            schema,
            lifetime: chosen,
            key_id: opened.key_id,
            key_position: opened.key_position,
            session_id: opened.id,
            created: opened.created,
            issued: opened.issued,
            status: lifetime.check(opened.created, opened.issued, now),
            remaining: lifetime.remaining_from(opened.created, opened.issued, now),
            store_key,
            value_len: value.len(),
            sealed_len: opened.buf.len(),
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::{Key, Keyring, SessionConfig, Sessions};

    fn sessions() -> Sessions {
        let ring = Keyring::new(Key::from_bytes([7; 32]).unwrap());
        Sessions::new(ring, SessionConfig::default()).unwrap()
    }

    /// A sealed value for `sessions` (ASCII: base64url).
    fn sealed(sessions: &Sessions) -> String {
        let session = sessions.load_now::<u8>(&http::HeaderMap::new());
        session.set(1);
        let mut headers = http::HeaderMap::new();
        sessions.save_now(&session, &mut headers).unwrap();
        let set_cookie = headers[http::header::SET_COOKIE].to_str().unwrap();
        let pair = set_cookie.split(';').next().unwrap();
        pair.split_once('=').unwrap().1.to_owned()
    }

    proptest! {
        /// Any text, multi-byte characters anywhere included, is refused
        /// with a reason: never opened, never a panic.
        #[test]
        fn any_text_is_refused(
            text in "(?s).{0,200}|[A-Za-z0-9_é€😀-]{0,200}",
        ) {
            prop_assert!(sessions().inspect(&text).is_err());
        }

        /// A sealed value opens; with any character put in anywhere, it
        /// does not.
        #[test]
        fn a_sealed_value_with_a_character_put_in_is_refused(
            at in any::<prop::sample::Index>(),
            put in any::<char>(),
        ) {
            let sessions = sessions();
            let mut value = sealed(&sessions);
            prop_assert!(sessions.inspect(&value).is_ok());
            value.insert(at.index(value.len() + 1), put);
            prop_assert!(sessions.inspect(&value).is_err(), "{value}");
        }
    }
}
