//! [`SessionLifetime`]: one session's own cookie persistence and timeouts
//! ("remember me"), sealed into its cookie.

use std::time::Duration;

/// How long one session lives, chosen by a handler with
/// [`Session::set_lifetime`](crate::Session::set_lifetime): a
/// browser-session cookie or a persistent one, and its own idle and
/// absolute timeouts.
///
/// The choice is sealed into the cookie (wire format version 2), so a
/// client cannot change it, and it is enforced on the server like the
/// configured timeouts. A timeout asked for here is capped by the
/// configuration's bounds
/// ([`SessionConfig::with_max_idle_timeout`](crate::SessionConfig::with_max_idle_timeout),
/// [`SessionConfig::with_max_absolute_timeout`](crate::SessionConfig::with_max_absolute_timeout);
/// by default the configured timeouts, so a session can only be made
/// shorter) when it is sealed (the first timeout capped per bound is
/// logged at `warn`, once per process), and again at every load, so
/// lowering a bound shortens existing sessions at once (raising one does
/// not lengthen them). A timeout left unset follows the
/// configuration. The choice survives [`Session::renew`](crate::Session::renew);
/// [`Session::destroy`](crate::Session::destroy) resets it.
///
/// Timeouts count whole seconds (a part of a second counts as a whole
/// one) and are at least one second.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use sealed_session::SessionLifetime;
///
/// const DAY: Duration = Duration::from_secs(24 * 3600);
/// let remember_me = SessionLifetime::persistent()
///     .with_idle_timeout(30 * DAY)
///     .with_absolute_timeout(90 * DAY);
/// assert_eq!(remember_me.idle_timeout(), Some(30 * DAY));
/// assert_eq!(SessionLifetime::browser_session().persistent_cookie(), Some(false));
/// assert!(SessionLifetime::configured().is_configured());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SessionLifetime {
    pub(crate) persistence: Persistence,
    /// Seconds; 0 follows the configuration (the sealed encoding too).
    pub(crate) idle: u64,
    /// Seconds; 0 follows the configuration.
    pub(crate) absolute: u64,
}

/// Whether the cookie carries `Max-Age`. The discriminants are sealed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Persistence {
    /// As [`SessionConfig::with_browser_session`](crate::SessionConfig::with_browser_session) says.
    #[default]
    Configured = 0,
    /// `Max-Age` follows the nearer deadline.
    Persistent = 1,
    /// No `Max-Age`: the browser drops the cookie when it closes.
    BrowserSession = 2,
}

impl Persistence {
    pub(crate) fn from_code(code: u64) -> Option<Persistence> {
        match code {
            0 => Some(Persistence::Configured),
            1 => Some(Persistence::Persistent),
            2 => Some(Persistence::BrowserSession),
            _ => None,
        }
    }
}

/// Whole seconds, at least one.
fn whole_seconds(duration: Duration) -> u64 {
    let seconds = duration.as_secs();
    let seconds = if duration.subsec_nanos() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    };
    seconds.max(1)
}

impl SessionLifetime {
    /// What the configuration says, for everything: the default, and what
    /// every session without a choice of its own has.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::SessionLifetime;
    /// assert_eq!(SessionLifetime::configured(), SessionLifetime::default());
    /// ```
    pub fn configured() -> SessionLifetime {
        SessionLifetime::default()
    }

    /// A cookie with `Max-Age` (kept across browser restarts until its
    /// nearer deadline), whatever the configuration says.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::SessionLifetime;
    /// assert_eq!(SessionLifetime::persistent().persistent_cookie(), Some(true));
    /// ```
    pub fn persistent() -> SessionLifetime {
        SessionLifetime {
            persistence: Persistence::Persistent,
            ..SessionLifetime::default()
        }
    }

    /// A cookie without `Max-Age`: the browser drops it when it closes.
    /// The server's timeouts still apply.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::SessionLifetime;
    /// assert_eq!(SessionLifetime::browser_session().persistent_cookie(), Some(false));
    /// ```
    pub fn browser_session() -> SessionLifetime {
        SessionLifetime {
            persistence: Persistence::BrowserSession,
            ..SessionLifetime::default()
        }
    }

    /// This session's idle timeout (capped by the configuration's bound).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session::SessionLifetime;
    /// let short = SessionLifetime::configured().with_idle_timeout(Duration::from_secs(600));
    /// assert_eq!(short.idle_timeout(), Some(Duration::from_secs(600)));
    /// ```
    pub fn with_idle_timeout(mut self, idle: Duration) -> SessionLifetime {
        self.idle = whole_seconds(idle);
        self
    }

    /// This session's absolute timeout, counted from its creation (capped
    /// by the configuration's bound).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session::SessionLifetime;
    /// let day = SessionLifetime::persistent().with_absolute_timeout(Duration::from_secs(86_400));
    /// assert_eq!(day.absolute_timeout(), Some(Duration::from_secs(86_400)));
    /// ```
    pub fn with_absolute_timeout(mut self, absolute: Duration) -> SessionLifetime {
        self.absolute = whole_seconds(absolute);
        self
    }

    /// The chosen idle timeout in seconds, if any.
    pub(crate) fn idle_secs(&self) -> Option<u64> {
        (self.idle != 0).then_some(self.idle)
    }

    /// The chosen absolute timeout in seconds, if any.
    pub(crate) fn absolute_secs(&self) -> Option<u64> {
        (self.absolute != 0).then_some(self.absolute)
    }

    /// Whether nothing is chosen: every part follows the configuration.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::SessionLifetime;
    /// assert!(!SessionLifetime::browser_session().is_configured());
    /// ```
    #[inline]
    pub fn is_configured(&self) -> bool {
        *self == SessionLifetime::default()
    }

    /// `Some(true)` for a persistent cookie, `Some(false)` for a
    /// browser-session one, `None` when the configuration decides.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::SessionLifetime;
    /// assert_eq!(SessionLifetime::configured().persistent_cookie(), None);
    /// ```
    pub fn persistent_cookie(&self) -> Option<bool> {
        match self.persistence {
            Persistence::Configured => None,
            Persistence::Persistent => Some(true),
            Persistence::BrowserSession => Some(false),
        }
    }

    /// The idle timeout chosen for this session, if any (`None`: the
    /// configured one applies).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::SessionLifetime;
    /// assert_eq!(SessionLifetime::persistent().idle_timeout(), None);
    /// ```
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_secs().map(Duration::from_secs)
    }

    /// The absolute timeout chosen for this session, if any (`None`: the
    /// configured one applies).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::SessionLifetime;
    /// assert_eq!(SessionLifetime::persistent().absolute_timeout(), None);
    /// ```
    pub fn absolute_timeout(&self) -> Option<Duration> {
        self.absolute_secs().map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_count_whole_seconds_and_at_least_one() {
        let lifetime = SessionLifetime::configured()
            .with_idle_timeout(Duration::from_millis(1500))
            .with_absolute_timeout(Duration::ZERO);
        assert_eq!(lifetime.idle_secs(), Some(2));
        assert_eq!(lifetime.absolute_secs(), Some(1));
    }

    #[test]
    fn persistence_codes_are_fixed() {
        for (code, persistence) in [
            (0, Persistence::Configured),
            (1, Persistence::Persistent),
            (2, Persistence::BrowserSession),
        ] {
            assert_eq!(persistence as u64, code);
            assert_eq!(Persistence::from_code(code), Some(persistence));
        }
        assert_eq!(Persistence::from_code(3), None);
    }
}
