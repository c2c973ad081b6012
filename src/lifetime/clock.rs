//! Where "now" comes from: the system clock, or a manual clock for tests.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time in whole seconds since the Unix epoch.
///
/// Every lifetime decision (expiry, rolling re-issue, `Max-Age`) reads the
/// time from the configured clock, so tests can move time without sleeping.
///
/// # Example
///
/// ```
/// use sealed_session::{Clock, SystemClock};
///
/// assert!(SystemClock.now() > 1_700_000_000);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Seconds since 1970-01-01T00:00:00Z.
    fn now(&self) -> u64;
}

/// The operating system's wall clock.
///
/// # Example
///
/// ```
/// use sealed_session::{Clock, SystemClock};
///
/// let now = SystemClock.now();
/// assert!(SystemClock.now() >= now);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock before 1970 reads as 1970: every session then looks
        // "from the future" and is rejected, which fails closed.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// let shared = clock.clone();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(shared.now(), 1_060);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `unix_seconds`.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Clock, ManualClock};
    /// assert_eq!(ManualClock::new(5).now(), 5);
    /// ```
    pub fn new(unix_seconds: u64) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(unix_seconds)),
        }
    }

    /// Moves the clock forward by whole seconds of `by`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session::{Clock, ManualClock};
    /// let clock = ManualClock::new(0);
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(clock.now(), 3);
    /// ```
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_secs(), Ordering::SeqCst);
    }

    /// Sets the clock to `unix_seconds`, forward or back.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Clock, ManualClock};
    /// let clock = ManualClock::new(10);
    /// clock.set(4);
    /// assert_eq!(clock.now(), 4);
    /// ```
    pub fn set(&self, unix_seconds: u64) {
        self.now.store(unix_seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}
