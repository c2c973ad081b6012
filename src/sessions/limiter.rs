//! At most one `warn` per interval: the limiter behind every loud event
//! a client could otherwise repeat at will (the rejections of
//! `rejection_log.rs`, and the events of [`Warnings`]), counting the
//! events it leaves out so the next one logged can say how many.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sessions::rejection_log::REJECTION_WARN_INTERVAL;

/// At most one event per interval, counting those left out.
#[derive(Default)]
pub(crate) struct Limiter {
    /// The earliest time (seconds) the next event may be logged.
    next: AtomicU64,
    /// Events left out since the last one logged.
    unlogged: AtomicU64,
}

impl Limiter {
    /// Whether to log an event at `now`: `Some(events left out since the
    /// last one logged)`, or `None` (and it is counted as left out).
    pub(crate) fn admit(&self, now: u64) -> Option<u64> {
        let next = self.next.load(Ordering::Relaxed);
        // A clock that went back by up to an interval still waits for
        // it; one that went back further (from a reading far ahead) does
        // not stay silent until that reading comes round again.
        if (now < next && next <= now.saturating_add(2 * REJECTION_WARN_INTERVAL))
            || self
                .next
                .compare_exchange(
                    next,
                    now.saturating_add(REJECTION_WARN_INTERVAL),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

/// The limiters of one [`Sessions`](crate::Sessions)' loud events that
/// are not rejections of a cookie. Each can follow from what a client
/// sends on every request (an old cookie replayed, a forged cookie on a
/// page shared caches may store), so each is logged at most once per
/// [`REJECTION_WARN_INTERVAL`], with the count left out.
#[derive(Default)]
pub(crate) struct Warnings {
    /// An imported value too large for the cookie without a store.
    pub(crate) import_too_large: Limiter,
    /// An imported value that does not load back.
    pub(crate) import_unloadable: Limiter,
    /// A response the handler let shared caches store, made private
    /// because it sets the session cookie (the tower layer's).
    #[cfg(feature = "tower")]
    pub(crate) shared_cache: Limiter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limiter_admits_once_per_interval_and_counts_the_rest() {
        let limiter = Limiter::default();
        let start = 1_700_000_000;
        assert_eq!(limiter.admit(start), Some(0));
        assert_eq!(limiter.admit(start), None);
        assert_eq!(limiter.admit(start + REJECTION_WARN_INTERVAL - 1), None);
        assert_eq!(limiter.admit(start + REJECTION_WARN_INTERVAL), Some(2));
        assert_eq!(limiter.admit(start + REJECTION_WARN_INTERVAL), None);
        // A clock that went back logs nothing until the interval passed.
        assert_eq!(limiter.admit(start), None);
        assert_eq!(limiter.admit(start + 2 * REJECTION_WARN_INTERVAL), Some(2));
        // One reading a year ahead, then the clock is right again: the
        // next event is logged, not held back for a year.
        let ahead = start + 365 * 24 * 3600;
        assert_eq!(limiter.admit(ahead), Some(0));
        assert_eq!(limiter.admit(start + 3 * REJECTION_WARN_INTERVAL), Some(0));
        assert_eq!(limiter.admit(start + 3 * REJECTION_WARN_INTERVAL + 1), None);
    }
}
