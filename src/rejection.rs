//! Why an incoming session cookie was not accepted.

use std::fmt;

/// Why the request's session cookie was not used.
///
/// A rejected cookie is never an error: the request gets a new empty
/// session, [`Session::rejection`](crate::Session::rejection) says why, and
/// a `tracing` event at `debug` level records the reason (and the key id
/// when known, never key or payload bytes).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use sealed_session::{Key, Keyring, Rejection, SessionConfig, Sessions};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::COOKIE, "__Host-session=not-a-sealed-value".parse().unwrap());
/// let session = sessions.load::<u32>(&headers).await.unwrap();
/// assert!(session.is_new());
/// assert_eq!(session.rejection(), Some(Rejection::Malformed));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// The name plus value is over the size limit; rejected before any
    /// decoding.
    TooLarge,
    /// Not base64url without padding, or shorter than the smallest sealed
    /// value.
    Malformed,
    /// The version byte is not one this library opens.
    UnknownVersion(u8),
    /// The key id is not in the ring (sealed under a removed or foreign
    /// key).
    UnknownKey,
    /// Authentication failed: bits were changed, the value was forged, or it
    /// was sealed for another cookie name. The cookie name is bound into the
    /// AEAD's associated data, so these cannot be told apart without trying
    /// other names; they are one reason on purpose.
    Forged,
    /// Authentic, but the content does not decode as the session type of
    /// its schema version (typically: the application changed its session
    /// type without a new [`Schema`](crate::Schema) version and
    /// migration).
    Incompatible,
    /// Authentic, of a schema version newer than this instance's (a newer
    /// release wrote it during a rolling deploy). The session is new and
    /// empty, and saving anything over the cookie is refused
    /// ([`SaveError::NewerSchema`](crate::SaveError::NewerSchema)), so the
    /// user's session survives for the instances that know it.
    NewerSchema(u32),
    /// Authentic, of an older schema version with no migration registered
    /// from it (the migration was removed, or never written).
    OldSchema(u32),
    /// Authentic, of an older schema version whose migration returned an
    /// error (from this version).
    MigrationFailed(u32),
    /// `created` or `issued` lies further in the future than the allowed
    /// clock skew: the instance that sealed it has a clock that far ahead,
    /// or a cut-off is set in the future (sessions are sealed as created
    /// at the cut-off; logged at `warn`, rate-limited).
    FromFuture,
    /// Created before the configured cut-off time.
    BeforeCutoff,
    /// The absolute timeout (from `created`) has passed.
    AbsoluteExpired,
    /// The idle timeout (from `issued`) has passed.
    IdleExpired,
    /// The cookie points at a server-store entry but no store is
    /// configured: another instance has one (logged at `warn`,
    /// rate-limited).
    StoreNotConfigured,
    /// The cookie points at a server-store entry that is gone (deleted,
    /// expired, or the store was emptied; logged at `warn`, rate-limited,
    /// when no note says this library deleted it: the store lost it).
    MissingStoreEntry,
    /// The server-store entry did not authenticate (tampered, or moved
    /// from another key; logged at `warn`, rate-limited).
    StoreEntryInvalid,
    /// The session was destroyed with revocation on.
    Revoked,
}

impl Rejection {
    /// A short stable name, used in `tracing` events and metrics.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(sealed_session::Rejection::IdleExpired.as_str(), "idle_expired");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::Malformed => "malformed",
            Rejection::UnknownVersion(_) => "unknown_version",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Forged => "forged",
            Rejection::Incompatible => "incompatible",
            Rejection::NewerSchema(_) => "newer_schema",
            Rejection::OldSchema(_) => "old_schema",
            Rejection::MigrationFailed(_) => "migration_failed",
            Rejection::FromFuture => "from_future",
            Rejection::BeforeCutoff => "before_cutoff",
            Rejection::AbsoluteExpired => "absolute_expired",
            Rejection::IdleExpired => "idle_expired",
            Rejection::StoreNotConfigured => "store_not_configured",
            Rejection::MissingStoreEntry => "missing_store_entry",
            Rejection::StoreEntryInvalid => "store_entry_invalid",
            Rejection::Revoked => "revoked",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnknownVersion(v) => write!(f, "unknown_version({v})"),
            Rejection::NewerSchema(v) | Rejection::OldSchema(v) | Rejection::MigrationFailed(v) => {
                write!(f, "{}({v})", self.as_str())
            }
            other => f.write_str(other.as_str()),
        }
    }
}
