//! Errors: bad keys, bad configuration, failed loads and saves.
//!
//! A bad *cookie* is not an error: it yields a new empty session and a
//! [`Rejection`](crate::Rejection) reason.

use std::fmt;

use crate::store::StoreError;

/// A key or key ring that cannot be used.
///
/// # Example
///
/// ```
/// use sealed_session::{Key, KeyError};
///
/// let err = "c2hvcnQ".parse::<Key>().unwrap_err();
/// assert_eq!(err, KeyError::Length { actual: 5 });
/// assert!(err.to_string().contains("32 bytes"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// No key at all: an empty string or an empty key ring.
    Empty,
    /// The text is not base64url without padding.
    NotBase64url,
    /// The key does not decode to exactly 32 bytes.
    Length {
        /// The decoded length.
        actual: usize,
    },
    /// The all-zero key.
    AllZero,
    /// The same key appears twice in a ring (1-based position of the second).
    Duplicate {
        /// 1-based position in the ring.
        position: usize,
    },
    /// Two different keys in a ring share a key id (1-based position of the
    /// second). This happens about once in four billion key pairs.
    IdCollision {
        /// 1-based position in the ring.
        position: usize,
    },
    /// A key of a ring's text form is invalid.
    Entry {
        /// 1-based position in the ring.
        position: usize,
        /// What is wrong with it.
        cause: Box<KeyError>,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => {
                f.write_str("no key given: set at least one key (generate one with Key::generate)")
            }
            KeyError::NotBase64url => {
                f.write_str("key is not base64url without padding (alphabet A-Z a-z 0-9 - _)")
            }
            KeyError::Length { actual } => write!(
                f,
                "key must be 32 bytes (43 base64url characters), got {actual} bytes"
            ),
            KeyError::AllZero => f.write_str("the all-zero key is refused: generate a random key"),
            KeyError::Duplicate { position } => write!(
                f,
                "key {position} of the ring repeats an earlier key: remove it"
            ),
            KeyError::IdCollision { position } => write!(
                f,
                "key {position} of the ring has the same key id as an earlier key: generate a new key"
            ),
            KeyError::Entry { position, cause } => write!(f, "key {position} of the ring: {cause}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A configuration that would produce cookies a browser drops or that are
/// less safe than they look. Returned by
/// [`Sessions::new`](crate::Sessions::new).
///
/// # Example
///
/// ```
/// use sealed_session::{ConfigError, Key, Keyring, SessionConfig, Sessions};
///
/// let config = SessionConfig::default().with_cookie_name("__Host-id").with_secure(false);
/// let err = Sessions::new(Keyring::new(Key::generate()), config).unwrap_err();
/// assert_eq!(err, ConfigError::HostPrefixNeedsSecure);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The cookie name is empty or has a character not allowed in a cookie
    /// name (controls, spaces, separators such as `;` `=` `,`).
    InvalidName,
    /// Path or domain has a control character or `;`.
    InvalidAttribute {
        /// `"path"` or `"domain"`.
        attribute: &'static str,
    },
    /// A `__Host-` name without `Secure`.
    HostPrefixNeedsSecure,
    /// A `__Host-` name with a `Domain`.
    HostPrefixWithDomain,
    /// A `__Host-` name with a `Path` other than `/`.
    HostPrefixNeedsRootPath,
    /// A `__Secure-` name without `Secure`.
    SecurePrefixNeedsSecure,
    /// `SameSite=None` without `Secure`.
    SameSiteNoneNeedsSecure,
    /// `Partitioned` without `Secure`.
    PartitionedNeedsSecure,
    /// The rolling fraction is not a number from 0 to 1.
    InvalidRolling,
    /// An idle or absolute timeout shorter than one second (timestamps
    /// are whole seconds: it would end every session at once).
    TimeoutTooShort,
    /// With revocation on, an idle or absolute timeout longer than a
    /// revocation marker can live (ten years less the clock skew), or both
    /// turned off: a logged-out copy would open again once its marker
    /// expired. Use a shorter timeout.
    TimeoutTooLong {
        /// The longest timeout allowed, in seconds.
        max_secs: u64,
    },
    /// Server mode or revocation without a store.
    StoreRequired {
        /// `"server mode"` or `"revocation"`.
        feature: &'static str,
    },
    /// The size limit leaves no room for even an empty sealed session.
    SizeLimitTooSmall {
        /// The smallest limit that works with this cookie name.
        minimum: usize,
    },
    /// A registered [`Schema`](crate::Schema) cannot work: version 0, a
    /// migration that does not reach the current version, or a write
    /// version this instance could not read back.
    Schema {
        /// The session type.
        type_name: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A SQL store's table name is not 1 to 63 ASCII letters, digits or
    /// `_` (not starting with a digit); it is written into SQL text, so
    /// nothing else is allowed.
    InvalidTableName,
    /// A registered [`Import`](crate::Import) cannot work: its old cookie
    /// has an invalid name, path or domain, or the session cookie's own
    /// name.
    Import {
        /// The old cookie's name.
        cookie: String,
        /// What is wrong.
        problem: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::TimeoutTooShort => f.write_str("idle and absolute timeouts must be at least one second (or None to turn one off)"),
            ConfigError::TimeoutTooLong { max_secs } => write!(f, "with revocation, idle and absolute timeouts must be at most {max_secs} s (ten years less the clock skew: a revocation marker lives no longer); use a shorter timeout, and not both None"),
            ConfigError::InvalidName => f.write_str("invalid cookie name: use letters, digits and !#$%&'*+-.^_`|~"),
            ConfigError::InvalidAttribute { attribute } => write!(f, "invalid cookie {attribute}: no control characters or ';'"),
            ConfigError::HostPrefixNeedsSecure => f.write_str("a __Host- cookie needs Secure (for plain-HTTP testing use a name without the prefix)"),
            ConfigError::HostPrefixWithDomain => f.write_str("a __Host- cookie must not have a Domain"),
            ConfigError::HostPrefixNeedsRootPath => f.write_str("a __Host- cookie needs Path=/"),
            ConfigError::SecurePrefixNeedsSecure => f.write_str("a __Secure- cookie needs Secure"),
            ConfigError::SameSiteNoneNeedsSecure => f.write_str("SameSite=None needs Secure"),
            ConfigError::PartitionedNeedsSecure => f.write_str("Partitioned needs Secure"),
            ConfigError::InvalidRolling => f.write_str("the rolling fraction must be a number from 0 to 1"),
            ConfigError::StoreRequired { feature } => {
                write!(f, "{feature} needs a server store: configure one with with_store")
            }
            ConfigError::SizeLimitTooSmall { minimum } => write!(f, "size limit too small: at least {minimum} bytes are needed"),
            ConfigError::Schema { type_name, problem } => write!(f, "schema of session type {type_name}: {problem}"),
            ConfigError::InvalidTableName => f.write_str("invalid table name: use 1 to 63 ASCII letters, digits or '_', not starting with a digit"),
            ConfigError::Import { cookie, problem } => write!(f, "import from cookie {cookie:?}: {problem}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A session could not be loaded.
///
/// A bad cookie is *not* a load error (it yields a new session with a
/// [`Rejection`](crate::Rejection)). This error is for failures that must not
/// be mistaken for "no session", such as a server store that is down: going
/// on with an empty session would overwrite the user's data on save. With no
/// store configured, loading cannot fail; with one, it fails only when the
/// store must be asked (a store-held session, or revocation on) and cannot
/// answer. The tower layer answers `503` without calling the handler.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
/// match sessions.load::<u32>(&http::HeaderMap::new()).await {
///     Ok(session) => assert!(session.is_new()),
///     Err(e) => eprintln!("session store unavailable: {e}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadError {
    /// The server store failed.
    Store(StoreError),
    /// The request carried another session system's cookie and its
    /// [`Import`](crate::Import) could not read the old store: going on
    /// with a new session could make the handler write a sealed cookie
    /// that hides the old session for good.
    Import(crate::ImportError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Store(e) => write!(f, "session could not be loaded: {e}"),
            LoadError::Import(e) => write!(f, "old session could not be imported: {e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A session could not be saved. No `Set-Cookie` was written, so the
/// browser keeps the cookie it had.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use sealed_session::{Key, Keyring, SaveError, SessionConfig, Sessions};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
/// let session = sessions.load::<Vec<u8>>(&http::HeaderMap::new()).await.unwrap();
/// session.set(vec![0; 5000]);
/// let mut headers = http::HeaderMap::new();
/// let err = sessions.save(&session, &mut headers).await.unwrap_err();
/// assert!(matches!(err, SaveError::TooLarge { limit: 4096, .. }));
/// assert!(headers.is_empty());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveError {
    /// The sealed cookie's name plus value would exceed the size limit that
    /// browsers enforce; a browser would silently drop it.
    TooLarge {
        /// Bytes of name plus value after sealing and encoding.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The session value could not be encoded with postcard (for example a
    /// `Serialize` impl that returned an error, or a sequence of unknown
    /// length).
    Encode(String),
    /// The server store failed; the store entry and cookie are as they
    /// were.
    Store(StoreError),
    /// The session this request loaded was ended while it ran, and this
    /// save would have brought it back: another request destroyed or
    /// renewed it (its store entry was gone when this save went to replace
    /// or take it, or its id was already revoked when a renew went to
    /// carry the value on), or the request ran past the session's idle or
    /// absolute deadline. Nothing was written; the tower layer answers
    /// `409 Conflict` without `Set-Cookie`.
    Ended,
    /// The request's cookie holds a session of a schema version newer
    /// than this instance knows ([`Rejection::NewerSchema`](crate::Rejection::NewerSchema)):
    /// a newer release wrote it during a rolling deploy. This save would
    /// have replaced it (with a value set on the new, empty session, or a
    /// removal), losing the user's session; nothing was written and the
    /// browser keeps its cookie. The tower layer answers `503 Service
    /// Unavailable`: an instance of the newer release can serve the
    /// request.
    NewerSchema {
        /// The schema version of the cookie.
        version: u32,
    },
    /// The session was imported from another session system on this
    /// request and the import's [`Imported::on_saved`](crate::Imported::on_saved)
    /// (deleting the old record) failed: nothing was sent, so the browser
    /// keeps the old cookie and the next request imports again. The tower
    /// layer answers `503 Service Unavailable`.
    Import(crate::ImportError),
    /// The value encoded, but its bytes do not decode back as the session
    /// type, so every later load would refuse the cookie
    /// ([`Rejection::Incompatible`](crate::Rejection::Incompatible)) and
    /// log the user out. postcard writes no field names or types, so a
    /// type whose `Deserialize` needs them (a `serde_json::Value`,
    /// `#[serde(tag = ...)]`, `#[serde(untagged)]`, `#[serde(flatten)]`)
    /// or whose `Serialize` leaves fields out
    /// (`#[serde(skip_serializing_if)]`) cannot be stored: see the README's
    /// "Session types postcard supports". Every value written is checked
    /// by decoding exactly as a load does; nothing was written and the
    /// browser keeps its cookie. The tower layer logs it at `error` and
    /// answers `500 Internal Server Error`: the session type must change.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::collections::HashMap;
    /// use sealed_session::{Key, Keyring, SaveError, SessionConfig, Sessions};
    ///
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions
    ///     .load::<HashMap<String, serde_json::Value>>(&http::HeaderMap::new())
    ///     .await
    ///     .unwrap();
    /// session.update(|map| map.insert("user".into(), "ann".into()));
    /// let mut headers = http::HeaderMap::new();
    /// let err = sessions.save(&session, &mut headers).await.unwrap_err();
    /// assert!(matches!(err, SaveError::Unloadable { .. }));
    /// assert!(err.to_string().contains("deserialize_any"));
    /// assert!(headers.is_empty());
    /// # }
    /// ```
    Unloadable {
        /// The session type (`std::any::type_name`).
        type_name: &'static str,
        /// Why its bytes do not decode: postcard's error, the schema
        /// version decoded at, and the usual cause.
        problem: String,
    },
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaveError::TooLarge { size, limit } => write!(
                f,
                "sealed session cookie is {size} bytes (name + value), over the {limit}-byte limit browsers enforce: keep less in the session or configure a server store"
            ),
            SaveError::Encode(msg) => write!(f, "session value could not be encoded: {msg}"),
            SaveError::Store(e) => write!(f, "session could not be saved: {e}"),
            SaveError::Ended => f.write_str(
                "session was ended by another request while this one ran; nothing was saved",
            ),
            SaveError::NewerSchema { version } => write!(
                f,
                "the request's session cookie has schema version {version}, newer than this instance knows; it was not overwritten"
            ),
            SaveError::Import(e) => write!(
                f,
                "imported session not saved, the old record could not be deleted: {e}"
            ),
            SaveError::Unloadable { type_name, problem } => write!(
                f,
                "session value of type {type_name} not saved, it would not load back: it {problem} (see \"Session types postcard supports\" in the sealed-session README)"
            ),
        }
    }
}

impl std::error::Error for SaveError {}
