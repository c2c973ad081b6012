//! Lifetime rules: idle and absolute timeouts, rolling re-issue, clock
//! skew, cut-off, and the cookie's `Max-Age`.
//!
//! All times are unix seconds. Deadlines are computed from the sealed
//! timestamps at every request, so a configuration change applies to
//! existing cookies at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::lifetime::session_lifetime::{Persistence, SessionLifetime};
use crate::rejection::Rejection;

/// The lifetime settings of a [`SessionConfig`](crate::SessionConfig).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Lifetime {
    /// Seconds from `issued` after which the session is idle-expired.
    pub(crate) idle: Option<u64>,
    /// Seconds from `created` after which the session is over.
    pub(crate) absolute: Option<u64>,
    /// Re-issue (extending the idle window) once this fraction of the idle
    /// window has passed since `issued`.
    pub(crate) rolling: f64,
    /// How far in the future a timestamp may lie (other instances' clocks).
    pub(crate) skew: u64,
    /// Sessions created before this time are invalid.
    pub(crate) cutoff: Option<u64>,
    /// Leave `Max-Age` out: the browser drops the cookie when it closes.
    pub(crate) browser_session: bool,
    /// The longest idle timeout one session may choose: `None` follows
    /// `idle`; `Some(None)` is no bound.
    pub(crate) max_idle: Option<Option<u64>>,
    /// The same for the absolute timeout.
    pub(crate) max_absolute: Option<Option<u64>>,
}

impl Default for Lifetime {
    fn default() -> Lifetime {
        Lifetime {
            idle: Some(24 * 3600),
            absolute: Some(7 * 24 * 3600),
            rolling: 0.1,
            skew: 60,
            cutoff: None,
            browser_session: false,
            max_idle: None,
            max_absolute: None,
        }
    }
}

pub(crate) fn seconds(duration: Option<Duration>) -> Option<u64> {
    duration.map(|d| d.as_secs())
}

/// The longest time to live given to a store entry or marker: ten years.
const MAX_TTL: u64 = 10 * 365 * 24 * 3600;

/// The longest timeout a session may choose for itself: one that a
/// revocation marker (at most `MAX_TTL`) still outlasts, as an instance
/// whose clock lags by the skew sees it.
fn longest_chosen(skew: u64) -> u64 {
    MAX_TTL.saturating_sub(skew.saturating_add(1))
}

/// A session's own timeout, capped by its bound (`None` bound: none).
fn capped(chosen: u64, bound: Option<u64>) -> u64 {
    bound.map_or(chosen, |bound| chosen.min(bound))
}

/// A bound of the timeouts one session may choose.
#[derive(Clone, Copy, Debug)]
enum Bound {
    Idle,
    Absolute,
}

/// Set once a lifetime was capped by the bound (once per process each).
static IDLE_CAPPED: AtomicBool = AtomicBool::new(false);
static ABSOLUTE_CAPPED: AtomicBool = AtomicBool::new(false);

/// A session asked for a timeout of `asked` seconds, over its `bound`
/// (seconds; `explicit`: set with `with_max_*_timeout`, not the configured
/// timeout it follows by default): logged at `warn`, once per process and
/// bound, since [`Lifetime::cap`] caps it silently otherwise.
#[cold]
fn warn_capped(bound: Bound, asked: u64, most: u64, explicit: bool) {
    let (flag, timeout, setting) = match bound {
        Bound::Idle => (&IDLE_CAPPED, "idle", "with_max_idle_timeout"),
        Bound::Absolute => (&ABSOLUTE_CAPPED, "absolute", "with_max_absolute_timeout"),
    };
    if flag.swap(true, Ordering::Relaxed) {
        return;
    }
    let source = if explicit {
        format!("set with SessionConfig::{setting}")
    } else {
        format!(
            "the configured {timeout} timeout, as SessionConfig::{setting} is not set, so a \
             session can only be made shorter"
        )
    };
    tracing::warn!(
        "Session::set_lifetime asked for an {timeout} timeout of {asked} s, more than the \
         bound of {most} s ({source}): the session gets {most} s. To let sessions choose \
         longer, raise the bound with SessionConfig::{setting}. Logged once per process"
    );
}

/// The longer of two timeouts, `None` (off) being the longest.
fn longer(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.max(b?))
}

impl Lifetime {
    /// The rules for one session: its own lifetime, if it chose one,
    /// within the configured bounds. Borrows the configuration as it is
    /// when the session chose nothing (the common case).
    #[inline]
    pub(crate) fn of(&self, chosen: &SessionLifetime) -> std::borrow::Cow<'_, Lifetime> {
        if chosen.is_configured() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut lifetime = self.clone();
        if let Some(idle) = chosen.idle_secs() {
            lifetime.idle = Some(capped(idle, self.max_idle.unwrap_or(self.idle)));
        }
        if let Some(absolute) = chosen.absolute_secs() {
            lifetime.absolute = Some(capped(absolute, self.max_absolute.unwrap_or(self.absolute)));
        }
        match chosen.persistence {
            Persistence::Configured => {}
            Persistence::Persistent => lifetime.browser_session = false,
            Persistence::BrowserSession => lifetime.browser_session = true,
        }
        std::borrow::Cow::Owned(lifetime)
    }

    /// The longest timeout a revocation marker outlasts (ten years less
    /// the skew): with revocation on, a configured timeout must not be
    /// longer.
    pub(crate) fn longest_timeout(&self) -> u64 {
        longest_chosen(self.skew)
    }

    /// A session's own lifetime with its timeouts capped by this
    /// configuration's bounds: what is sealed. A timeout over its bound is
    /// logged at `warn`, once per process and bound (what asked for it is
    /// [`Session::set_lifetime`](crate::Session::set_lifetime)).
    pub(crate) fn cap(&self, mut chosen: SessionLifetime) -> SessionLifetime {
        // Also within what a revocation marker can outlast.
        let longest = longest_chosen(self.skew);
        if let Some(asked) = chosen.idle_secs() {
            let idle = capped(asked, self.max_idle.unwrap_or(self.idle));
            if idle < asked {
                warn_capped(Bound::Idle, asked, idle, self.max_idle.is_some());
            }
            chosen.idle = idle.min(longest).max(1);
        }
        if let Some(asked) = chosen.absolute_secs() {
            let absolute = capped(asked, self.max_absolute.unwrap_or(self.absolute));
            if absolute < asked {
                warn_capped(
                    Bound::Absolute,
                    asked,
                    absolute,
                    self.max_absolute.is_some(),
                );
            }
            chosen.absolute = absolute.min(longest).max(1);
        }
        chosen
    }

    /// The rules a copy sealed with `chosen` would have under a
    /// configuration without bounds (an instance with higher bounds may
    /// open it): what a revocation marker must outlast.
    pub(crate) fn uncapped(&self, chosen: &SessionLifetime) -> Lifetime {
        let mut lifetime = self.clone();
        if let Some(idle) = chosen.idle_secs() {
            lifetime.idle = Some(idle);
        }
        if let Some(absolute) = chosen.absolute_secs() {
            lifetime.absolute = Some(absolute);
        }
        lifetime
    }

    /// The rules a copy sealed with `chosen` carries itself: its own
    /// timeouts only (none where it follows the configuration).
    pub(crate) fn sealed_only(&self, chosen: &SessionLifetime) -> Lifetime {
        let mut lifetime = self.clone();
        lifetime.idle = chosen.idle_secs();
        lifetime.absolute = chosen.absolute_secs();
        lifetime
    }

    /// The rules of the longest-lived session the configuration allows:
    /// what a revocation marker must outlast, whatever lifetime each copy
    /// of the id carries. A bound turned off (`Some(None)`) still allows
    /// only what [`Lifetime::cap`] seals: a chosen timeout of about ten
    /// years, not none (a session that chose nothing follows the
    /// configured timeout, which may be none).
    pub(crate) fn longest(&self) -> std::borrow::Cow<'_, Lifetime> {
        if self.max_idle.is_none() && self.max_absolute.is_none() {
            return std::borrow::Cow::Borrowed(self);
        }
        let chosen = |configured: Option<u64>, bound: Option<Option<u64>>| {
            let most = bound.unwrap_or(configured).unwrap_or(u64::MAX);
            longer(configured, Some(most.min(longest_chosen(self.skew))))
        };
        let mut lifetime = self.clone();
        lifetime.idle = chosen(self.idle, self.max_idle);
        lifetime.absolute = chosen(self.absolute, self.max_absolute);
        std::borrow::Cow::Owned(lifetime)
    }

    /// Whether a cookie with these timestamps is still a valid session.
    /// A deadline is exclusive: at `created + absolute` the session is over.
    pub(crate) fn check(&self, created: u64, issued: u64, now: u64) -> Result<(), Rejection> {
        let latest = now.saturating_add(self.skew);
        if created > latest || issued > latest {
            return Err(Rejection::FromFuture);
        }
        if self.cutoff.is_some_and(|cutoff| created < cutoff) {
            return Err(Rejection::BeforeCutoff);
        }
        if self
            .absolute
            .is_some_and(|a| now >= created.saturating_add(a))
        {
            return Err(Rejection::AbsoluteExpired);
        }
        if self.idle.is_some_and(|i| now >= issued.saturating_add(i)) {
            return Err(Rejection::IdleExpired);
        }
        Ok(())
    }

    /// Whether a cookie with these timestamps is past its idle or absolute
    /// deadline (only the deadlines: no skew or cut-off check).
    pub(crate) fn expired(&self, created: u64, issued: u64, now: u64) -> bool {
        self.absolute
            .is_some_and(|a| now >= created.saturating_add(a))
            || self.idle.is_some_and(|i| now >= issued.saturating_add(i))
    }

    /// When a session that starts at `at` is sealed as created: `at`, or
    /// the cut-off if that is later (an instance whose clock lags behind a
    /// cut-off set to "now" must not create sessions the others refuse;
    /// the skew check bounds how far ahead this can be).
    pub(crate) fn start(&self, at: u64) -> u64 {
        self.cutoff.map_or(at, |cutoff| at.max(cutoff))
    }

    /// Whether enough of the idle window has passed to re-issue the cookie.
    pub(crate) fn reissue_due(&self, issued: u64, now: u64) -> bool {
        self.idle.is_some_and(|idle| {
            let threshold = (idle as f64 * self.rolling) as u64;
            now.saturating_sub(issued) >= threshold
        })
    }

    /// Seconds from `now` until the nearer deadline of a cookie with these
    /// timestamps, or `None` when neither timeout is set.
    pub(crate) fn remaining_from(&self, created: u64, issued: u64, now: u64) -> Option<u64> {
        let left = |start: u64, span: u64| start.saturating_add(span).saturating_sub(now);
        let idle = self.idle.map(|i| left(issued, i));
        let absolute = self.absolute.map(|a| left(created, a));
        match (idle, absolute) {
            (Some(i), Some(a)) => Some(i.min(a)),
            (i, a) => i.or(a),
        }
    }

    /// How long a store entry or revocation marker written `now` for a
    /// session created at `created` must live: as long as any copy of its
    /// cookie could still open. A copy written by a request is issued at
    /// that request's load, never later than now (a revoked copy is
    /// refused, so never re-issued); another instance's clock may run up to
    /// the allowed skew ahead; so a copy's idle deadline is at most `now +
    /// skew + idle` (plus a second for rounding); the absolute deadline
    /// bounds every copy, on an instance whose clock lags this one's by up
    /// to the skew too (so `created + absolute + skew + 1`). Without either
    /// timeout, 400 days (the longest a browser keeps a cookie, RFC
    /// 6265bis).
    ///
    /// An entry timed from one cookie's own `issued` instead would expire
    /// under a copy issued later (a copy re-issued past the rolling
    /// threshold, while an older copy changes the value without being
    /// re-issued), and a marker would let that copy open again.
    pub(crate) fn copies_ttl(&self, created: u64, now: u64) -> std::time::Duration {
        let idle = self
            .idle
            .map(|i| i.saturating_add(self.skew).saturating_add(1));
        let absolute = self.absolute.map(|a| {
            created
                .saturating_add(a)
                .saturating_add(self.skew)
                .saturating_add(1)
                .saturating_sub(now)
        });
        let seconds = match (idle, absolute) {
            (Some(i), Some(a)) => i.min(a),
            (i, a) => i.or(a).unwrap_or(400 * 24 * 3600),
        };
        // Within what every store takes (Redis counts milliseconds in an
        // i64): timeouts of more than ten years are as good as none.
        std::time::Duration::from_secs(seconds.clamp(1, MAX_TTL))
    }

    /// The `Max-Age` for a cookie with these timestamps sent `now`: the
    /// time to the nearer deadline, or none for a browser-session cookie
    /// (configured, or no timeout set).
    pub(crate) fn max_age(&self, created: u64, issued: u64, now: u64) -> Option<u64> {
        if self.browser_session {
            return None;
        }
        self.remaining_from(created, issued, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_threshold_is_a_fraction_of_idle() {
        let lifetime = Lifetime {
            idle: Some(1000),
            rolling: 0.25,
            ..Lifetime::default()
        };
        assert!(!lifetime.reissue_due(100, 349));
        assert!(lifetime.reissue_due(100, 350));
        let every = Lifetime {
            rolling: 0.0,
            ..lifetime.clone()
        };
        assert!(every.reissue_due(100, 100));
        let no_idle = Lifetime {
            idle: None,
            ..lifetime
        };
        assert!(!no_idle.reissue_due(0, u64::MAX));
    }

    #[test]
    fn remaining_takes_the_nearer_deadline() {
        let lifetime = Lifetime {
            idle: Some(100),
            absolute: Some(1000),
            ..Lifetime::default()
        };
        assert_eq!(lifetime.remaining_from(0, 0, 0), Some(100));
        assert_eq!(lifetime.remaining_from(0, 950, 950), Some(50));
        let none = Lifetime {
            idle: None,
            absolute: None,
            ..Lifetime::default()
        };
        assert_eq!(none.remaining_from(0, 10, 10), None);
    }

    #[test]
    fn copies_ttl_covers_any_copy_up_to_the_absolute_deadline() {
        let lifetime = Lifetime {
            idle: Some(100),
            absolute: Some(1000),
            skew: 60,
            ..Lifetime::default()
        };
        let secs = |created, now| lifetime.copies_ttl(created, now).as_secs();
        // A copy issued up to `skew` ahead of now idles out by now + 160.
        assert_eq!(secs(0, 10), 161);
        // The absolute deadline comes first, as an instance lagging by the
        // skew sees it.
        assert_eq!(secs(0, 900), 161);
        assert_eq!(secs(0, 950), 111);
        assert_eq!(secs(0, 1061), 1, "at least a second");
        let idle_only = Lifetime {
            absolute: None,
            ..lifetime.clone()
        };
        assert_eq!(idle_only.copies_ttl(0, 1_000_000).as_secs(), 161);
        let absolute_only = Lifetime {
            idle: None,
            ..lifetime.clone()
        };
        assert_eq!(absolute_only.copies_ttl(0, 400).as_secs(), 661);
        let neither = Lifetime {
            idle: None,
            absolute: None,
            ..lifetime
        };
        assert_eq!(neither.copies_ttl(0, 5).as_secs(), 400 * 24 * 3600);
    }

    #[test]
    fn with_the_bounds_off_markers_outlast_the_longest_chosen_timeout() {
        let unbounded = Lifetime {
            max_idle: Some(None),
            max_absolute: Some(None),
            ..Lifetime::default()
        };
        let chosen = SessionLifetime::configured()
            .with_idle_timeout(Duration::from_secs(u64::MAX))
            .with_absolute_timeout(Duration::from_secs(u64::MAX));
        let sealed = unbounded.of(&unbounded.cap(chosen)).copies_ttl(0, 0);
        assert_eq!(sealed.as_secs(), MAX_TTL);
        assert_eq!(unbounded.longest().copies_ttl(0, 0), sealed);
        // Bounds that follow the configured timeouts keep the markers short.
        let bounded = Lifetime::default().longest().copies_ttl(0, 0).as_secs();
        assert_eq!(bounded, 24 * 3600 + 61);
    }
}
