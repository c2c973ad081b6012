//! Rejections counted per reason, and the ones that mean our own deploy
//! is broken logged loudly, at most once per interval.
//!
//! Clients send forged, tampered, expired and foreign cookies all the
//! time: those stay at `debug`. An *authentic* cookie (it opened under our
//! key) that does not decode as the session type can only have been
//! written by one of our own instances, with another session type and no
//! schema version for the change; one of a schema version newer than this
//! instance knows means a rolling deploy out of order; one of an older
//! version with no migration from it, or whose migration failed, a
//! migration removed too early or one with a bug. A pointer to a store
//! entry that is gone, with no note of this library deleting it (a note
//! lives as long as any copy of a cookie pointing at the entry could
//! open), means the store lost data or instances use different stores;
//! a store entry that does not authenticate, that it was changed in the
//! store; a pointer on an instance without a store, that instances are
//! configured differently; a cookie issued further in the future than the
//! clock skew allows, that the instances' clocks disagree (or a cut-off
//! is set in the future). All log out users, so all are logged at `warn`:
//! at most once per
//! [`REJECTION_WARN_INTERVAL`] per reason and [`Sessions`], with the
//! number of the same rejections left unlogged since the last one, the
//! session type, the schema version and (for a value that does not decode)
//! postcard's error. Every rejection is counted, whatever its reason, for
//! [`Sessions::rejection_stats`].
//!
//! The cost: a relaxed atomic increment per rejected cookie, and for the
//! loud reasons one atomic load (a compare-and-swap when the interval
//! has passed). Nothing at all per cookie that opens.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;

use crate::rejection::Rejection;
use crate::schema::versions::Schemas;
use crate::sessions::Sessions;
use crate::sessions::limiter::Limiter;

/// The shortest time, in seconds, between two `warn` events of the same
/// rejection reason (the refusals of authentic cookies only our own
/// instances cause: see [`Rejection`]) from one [`Sessions`]. The
/// rejections in between are counted, and the next event says how many.
///
/// # Example
///
/// ```
/// assert_eq!(sealed_session::REJECTION_WARN_INTERVAL, 60);
/// ```
pub const REJECTION_WARN_INTERVAL: u64 = 60;

/// Each reason once, in the order of [`RejectionStats`] (the versions
/// some carry are not part of the reason).
const REASONS: [Rejection; 17] = [
    Rejection::TooLarge,
    Rejection::Malformed,
    Rejection::UnknownVersion(0),
    Rejection::UnknownKey,
    Rejection::Forged,
    Rejection::Incompatible,
    Rejection::NewerSchema(0),
    Rejection::OldSchema(0),
    Rejection::MigrationFailed(0),
    Rejection::FromFuture,
    Rejection::BeforeCutoff,
    Rejection::AbsoluteExpired,
    Rejection::IdleExpired,
    Rejection::StoreNotConfigured,
    Rejection::MissingStoreEntry,
    Rejection::StoreEntryInvalid,
    Rejection::Revoked,
];

/// The position of `reason` in [`REASONS`].
fn index(reason: Rejection) -> usize {
    match reason {
        Rejection::TooLarge => 0,
        Rejection::Malformed => 1,
        Rejection::UnknownVersion(_) => 2,
        Rejection::UnknownKey => 3,
        Rejection::Forged => 4,
        Rejection::Incompatible => 5,
        Rejection::NewerSchema(_) => 6,
        Rejection::OldSchema(_) => 7,
        Rejection::MigrationFailed(_) => 8,
        Rejection::FromFuture => 9,
        Rejection::BeforeCutoff => 10,
        Rejection::AbsoluteExpired => 11,
        Rejection::IdleExpired => 12,
        Rejection::StoreNotConfigured => 13,
        Rejection::MissingStoreEntry => 14,
        Rejection::StoreEntryInvalid => 15,
        Rejection::Revoked => 16,
    }
}

/// The counters and limiters of one [`Sessions`].
#[derive(Default)]
pub(crate) struct RejectionLog {
    counts: [AtomicU64; REASONS.len()],
    undecodable: Limiter,
    newer_schema: Limiter,
    old_schema: Limiter,
    vanished: Limiter,
    invalid_entry: Limiter,
    issued_ahead: Limiter,
    no_store: Limiter,
}

impl RejectionLog {
    /// Counts a rejected cookie.
    #[inline]
    pub(crate) fn count(&self, reason: Rejection) {
        self.counts[index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// An authentic value of schema version `schema` that did not decode
    /// as `T`: a `warn`, unless one was logged less than an interval ago.
    /// Why it did not decode is worked out again only when it is logged.
    pub(crate) fn undecodable<T: DeserializeOwned + 'static>(
        &self,
        schemas: &Schemas,
        now: u64,
        schema: u32,
        value: &[u8],
    ) {
        let Some(unlogged) = self.undecodable.admit(now) else {
            return;
        };
        let problem = match schemas.verify::<T>(schema, value) {
            Err(unread) => unread.to_string(),
            Ok(()) => "decodes now".to_owned(),
        };
        tracing::warn!(
            session_type = std::any::type_name::<T>(),
            schema,
            %problem,
            unlogged,
            interval_secs = REJECTION_WARN_INTERVAL,
            "authentic session cookie does not decode as the session type: an instance of ours wrote it with another type and no schema version for the change (see \"Changing the session type\"); its users are logged out"
        );
    }

    /// An authentic value of an older schema version that cannot be
    /// brought up to date (`OldSchema`: no migration registered from it;
    /// `MigrationFailed`: the migration returned an error): a `warn`,
    /// unless one was logged less than an interval ago.
    pub(crate) fn old_schema<T: 'static>(&self, now: u64, reason: Rejection) {
        let Some(unlogged) = self.old_schema.admit(now) else {
            return;
        };
        tracing::warn!(
            session_type = std::any::type_name::<T>(),
            %reason,
            unlogged,
            interval_secs = REJECTION_WARN_INTERVAL,
            "authentic session cookie of an older schema version that this instance cannot bring up to date (no migration registered from it, or the migration returned an error); its users are logged out"
        );
    }

    /// An authentic value of a schema version newer than this instance
    /// knows: a `warn`, unless one was logged less than an interval ago.
    pub(crate) fn newer_schema<T: 'static>(&self, now: u64, schema: u32) {
        let Some(unlogged) = self.newer_schema.admit(now) else {
            return;
        };
        tracing::warn!(
            session_type = std::any::type_name::<T>(),
            schema,
            unlogged,
            interval_secs = REJECTION_WARN_INTERVAL,
            "authentic session cookie of a schema version newer than this instance knows: a newer release wrote it (a rolling deploy out of order, or a rollback); this instance serves those users a new session and refuses to save over it"
        );
    }

    /// An authentic cookie pointing at a store entry that is gone with no
    /// note of this library deleting it: the store lost it, or this
    /// instance reads another store than the one that wrote it. A `warn`,
    /// unless one was logged less than an interval ago.
    pub(crate) fn vanished_entry<T: 'static>(&self, now: u64) {
        let Some(unlogged) = self.vanished.admit(now) else {
            return;
        };
        tracing::warn!(
            session_type = std::any::type_name::<T>(),
            unlogged,
            interval_secs = REJECTION_WARN_INTERVAL,
            "authentic session cookie points at a store entry that is gone, and no note says this library deleted it (each delete leaves one for as long as a cookie pointing at the entry could open): the store lost it (a restart without persistence, eviction, a flush, a failover that lost writes), this instance uses another store than the one that wrote it (a MemoryStore on several instances, a store moved by halves), or instances run with different timeouts (a rollout), or the session shortened its own lifetime with set_lifetime without renew while its old cookies carry the longer one; its user is logged out"
        );
    }

    /// A store entry an authentic pointer cookie points at that does not
    /// authenticate (tampered in the store, or written under another key
    /// or application context): a `warn`, unless one was logged less
    /// than an interval ago. The entry's key is not logged.
    pub(crate) fn invalid_entry<T: 'static>(&self, now: u64) {
        let Some(unlogged) = self.invalid_entry.admit(now) else {
            return;
        };
        tracing::warn!(
            session_type = std::any::type_name::<T>(),
            unlogged,
            interval_secs = REJECTION_WARN_INTERVAL,
            "session store entry did not authenticate: it was changed in the store, or written by an application with other keys or another application context under the same key prefix; its user is logged out"
        );
    }

    /// An authentic cookie issued `ahead` seconds later than this
    /// instance's clock, more than the allowed `skew`: the instances'
    /// clocks disagree by more than the skew, or (`at_cutoff`: created at
    /// the configured cut-off) the cut-off lies in the future. A `warn`,
    /// unless one was logged less than an interval ago.
    pub(crate) fn issued_ahead(&self, now: u64, ahead: u64, skew: u64, at_cutoff: bool) {
        let Some(unlogged) = self.issued_ahead.admit(now) else {
            return;
        };
        if at_cutoff {
            tracing::warn!(
                ahead_secs = ahead,
                skew_secs = skew,
                unlogged,
                interval_secs = REJECTION_WARN_INTERVAL,
                "authentic session cookie created at the configured cut-off, which lies further in the future than the allowed clock skew: SessionConfig::with_cutoff is set in the future, and sessions are sealed as created at the cut-off, so every session created before it is refused (set the cut-off to the present or the past)"
            );
            return;
        }
        tracing::warn!(
            ahead_secs = ahead,
            skew_secs = skew,
            unlogged,
            interval_secs = REJECTION_WARN_INTERVAL,
            "authentic session cookie issued later than this instance's clock allows: the instance that sealed it has a clock ahead of this one's by more than the allowed clock skew (check time synchronisation on every instance, or raise SessionConfig::with_clock_skew); its users get a new session on this instance"
        );
    }

    /// An authentic cookie pointing at a store entry, on an instance with
    /// no store configured: the instances are configured differently. A
    /// `warn`, unless one was logged less than an interval ago.
    pub(crate) fn no_store<T: 'static>(&self, now: u64) {
        let Some(unlogged) = self.no_store.admit(now) else {
            return;
        };
        tracing::warn!(
            session_type = std::any::type_name::<T>(),
            unlogged,
            interval_secs = REJECTION_WARN_INTERVAL,
            "authentic session cookie points at a server store entry, and this instance has no store configured: another instance of the application has one (configure the same store on every instance), or the store was removed on purpose and these are cookies from before (they stop when they expire); its users get a new session on this instance"
        );
    }

    fn stats(&self) -> RejectionStats {
        RejectionStats {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
        }
    }
}

/// Cookies rejected per reason since a [`Sessions`] was built, from
/// [`Sessions::rejection_stats`]. Alert on the refusals of authentic
/// cookies that only our own deploys and infrastructure produce (each
/// also logged at `warn`, rate-limited): [`Rejection::Incompatible`],
/// [`Rejection::NewerSchema`], [`Rejection::OldSchema`] and
/// [`Rejection::MigrationFailed`] (a session type changed without a
/// schema version, a rolling deploy out of order, a migration removed or
/// failing), [`Rejection::StoreNotConfigured`] and
/// [`Rejection::FromFuture`] (instances configured differently, clocks
/// apart), [`Rejection::StoreEntryInvalid`] (an entry that does not
/// authenticate). For lost store entries alert on the `warn` (an entry
/// gone with no note of this library deleting it), not on the count of
/// [`Rejection::MissingStoreEntry`]: a client raises that count at will
/// by replaying its own cookie from before a logout or renew. The other
/// reasons are what clients send (forged, expired, foreign cookies) and
/// only worth a rate.
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
/// sessions.load::<u32>(&headers).await.unwrap();
///
/// let stats = sessions.rejection_stats();
/// assert_eq!(stats.count(Rejection::Malformed), 1);
/// assert_eq!(stats.count(Rejection::Incompatible), 0);
/// assert_eq!(stats.total(), 1);
/// for (reason, count) in stats.iter() {
///     println!("sessions_rejected_total{{reason=\"{reason}\"}} {count}");
/// }
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RejectionStats {
    counts: [u64; REASONS.len()],
}

impl RejectionStats {
    /// Cookies rejected for `reason` (of any version, for the reasons
    /// that carry one: `NewerSchema(2)` counts all newer schemas).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, Rejection, SessionConfig, Sessions};
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
    /// assert_eq!(sessions.rejection_stats().count(Rejection::NewerSchema(2)), 0);
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn count(&self, reason: Rejection) -> u64 {
        self.counts[index(reason)]
    }

    /// Every reason's [`Rejection::as_str`] name and count, in a fixed
    /// order, zeros included (for exporting as metrics).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
    /// let stats = sessions.rejection_stats();
    /// assert!(stats.iter().any(|(reason, count)| reason == "forged" && count == 0));
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REASONS
            .iter()
            .zip(self.counts)
            .map(|(reason, count)| (reason.as_str(), count))
    }

    /// All rejected cookies.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
    /// assert_eq!(sessions.rejection_stats().total(), 0);
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl fmt::Debug for RejectionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().filter(|(_, count)| *count > 0))
            .finish()
    }
}

impl Sessions {
    /// Cookies rejected per reason since this [`Sessions`] was built (its
    /// clones share the counts), like [`Sessions::schema_stats`]: alert on
    /// [`Rejection::Incompatible`] and [`Rejection::NewerSchema`], which
    /// are also logged at `warn` (at most once per
    /// [`REJECTION_WARN_INTERVAL`] each).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, Rejection, SessionConfig, Sessions};
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
    /// assert_eq!(sessions.rejection_stats().count(Rejection::Incompatible), 0);
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn rejection_stats(&self) -> RejectionStats {
        self.inner.rejections.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter() {
        for (i, reason) in REASONS.iter().enumerate() {
            assert_eq!(index(*reason), i, "{reason}");
        }
    }
}
