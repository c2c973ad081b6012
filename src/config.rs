//! [`SessionConfig`]: cookie attributes, lifetime, size limit, clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::lifetime::clock::{Clock, SystemClock};
use crate::lifetime::rules::{Lifetime, seconds};
use crate::schema::versions::{Schema, Schemas};
use crate::store::breaker::CircuitBreaker;
use crate::store::{SessionStore, StoreMode};
use crate::wire::attributes::{CookieAttributes, SameSite};

/// The default size limit: browsers drop a cookie whose name plus value is
/// over 4096 bytes (RFC 6265bis §5.6, Chromium, Firefox).
pub const DEFAULT_SIZE_LIMIT: usize = 4096;

/// How sessions are kept: cookie attributes, lifetime, size limit and
/// clock. A builder of `with_*` methods; [`Sessions::new`](crate::Sessions::new)
/// validates it.
///
/// | setting | default |
/// |---|---|
/// | cookie name | `__Host-session` |
/// | `Path` | `/` |
/// | `Domain` | none (host-only) |
/// | `Secure` | on |
/// | `HttpOnly` | on |
/// | `SameSite` | `Lax` |
/// | `Partitioned` | off |
/// | idle timeout | 24 hours |
/// | absolute timeout | 7 days |
/// | rolling re-issue | after 0.1 of the idle window |
/// | allowed clock skew | 60 seconds |
/// | cut-off | none |
/// | browser-session cookie (no `Max-Age`) | off |
/// | size limit (name + value) | 4096 bytes |
/// | clock | [`SystemClock`] |
/// | server store | none |
/// | store mode | [`StoreMode::Cookie`] (store only what does not fit) |
/// | revocation on destroy | off |
/// | application context | empty |
/// | longest per-session idle / absolute timeout | the configured ones |
/// | session type schemas | none (every type at version 0) |
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{Key, Keyring, SameSite, SessionConfig, Sessions};
///
/// let config = SessionConfig::default()
///     .with_idle_timeout(Some(Duration::from_secs(30 * 60)))
///     .with_absolute_timeout(Some(Duration::from_secs(12 * 3600)))
///     .with_same_site(SameSite::Strict);
/// let sessions = Sessions::new(Keyring::new(Key::generate()), config)?;
/// # Ok::<(), sealed_session::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) attributes: CookieAttributes,
    pub(crate) lifetime: Lifetime,
    pub(crate) size_limit: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Option<Arc<dyn SessionStore>>,
    pub(crate) store_mode: StoreMode,
    pub(crate) circuit_breaker: Option<CircuitBreaker>,
    pub(crate) revocation: bool,
    pub(crate) context: Vec<u8>,
    pub(crate) schemas: Schemas,
    pub(crate) replace_newer_schemas: bool,
    pub(crate) imports: crate::sessions::import::Imports,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            attributes: CookieAttributes::default(),
            lifetime: Lifetime::default(),
            size_limit: DEFAULT_SIZE_LIMIT,
            clock: Arc::new(SystemClock),
            store: None,
            store_mode: StoreMode::Cookie,
            circuit_breaker: Some(CircuitBreaker::default()),
            revocation: false,
            context: Vec::new(),
            schemas: Schemas::default(),
            replace_newer_schemas: false,
            imports: crate::sessions::import::Imports::default(),
        }
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("attributes", &self.attributes)
            .field("lifetime", &self.lifetime)
            .field("size_limit", &self.size_limit)
            .field("clock", &self.clock)
            .field("store", &self.store)
            .field("store_mode", &self.store_mode)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("revocation", &self.revocation)
            .field("context", &String::from_utf8_lossy(&self.context))
            .field("schemas", &self.schemas)
            .field("replace_newer_schemas", &self.replace_newer_schemas)
            .field("imports", &self.imports)
            .finish()
    }
}

impl SessionConfig {
    /// The cookie name. Default `__Host-session`.
    ///
    /// A `__Host-` name needs `Secure`, `Path=/` and no `Domain`; a
    /// `__Secure-` name needs `Secure`. For plain-HTTP local testing, turn
    /// `Secure` off *and* choose a name without a prefix.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default().with_cookie_name("sid");
    /// assert_eq!(config.cookie_name(), "sid");
    /// ```
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.attributes.name = name.into();
        self
    }

    /// The `Path` attribute. Default `/`.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_cookie_name("sid")
    ///     .with_path("/app");
    /// # let _ = config;
    /// ```
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.attributes.path = path.into();
        self
    }

    /// The `Domain` attribute. Default none: the cookie goes back only to
    /// the host that set it.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_cookie_name("__Secure-sid")
    ///     .with_domain(Some("example.com".into()));
    /// # let _ = config;
    /// ```
    pub fn with_domain(mut self, domain: Option<String>) -> Self {
        self.attributes.domain = domain;
        self
    }

    /// The `Secure` attribute. Default on.
    ///
    /// # Example
    ///
    /// ```
    /// // For plain-HTTP local testing only.
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_cookie_name("session")
    ///     .with_secure(false);
    /// # let _ = config;
    /// ```
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.attributes.secure = secure;
        self
    }

    /// The `HttpOnly` attribute: page scripts cannot read the cookie.
    /// Default on.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default().with_http_only(true);
    /// # let _ = config;
    /// ```
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.attributes.http_only = http_only;
        self
    }

    /// The `SameSite` attribute. Default [`SameSite::Lax`].
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{SameSite, SessionConfig};
    /// let config = SessionConfig::default().with_same_site(SameSite::None);
    /// assert_eq!(config.same_site(), SameSite::None);
    /// ```
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.attributes.same_site = same_site;
        self
    }

    /// The `Partitioned` attribute (CHIPS): the cookie is kept per
    /// top-level site. Needs `Secure`. Default off.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default().with_partitioned(true);
    /// # let _ = config;
    /// ```
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.attributes.partitioned = partitioned;
        self
    }

    /// The idle timeout, counted from the last time the cookie was issued;
    /// `None` turns it off. Default 24 hours. Whole seconds.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_idle_timeout(Some(Duration::from_secs(15 * 60)));
    /// # let _ = config;
    /// ```
    pub fn with_idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.lifetime.idle = seconds(idle);
        self
    }

    /// The absolute timeout, counted from when the session was created and
    /// never extended; `None` turns it off. Default 7 days. Whole seconds.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_absolute_timeout(Some(Duration::from_secs(8 * 3600)));
    /// # let _ = config;
    /// ```
    pub fn with_absolute_timeout(mut self, absolute: Option<Duration>) -> Self {
        self.lifetime.absolute = seconds(absolute);
        self
    }

    /// Rolling re-issue: an unchanged session's cookie is re-sealed (moving
    /// the idle deadline) once this fraction of the idle window has passed
    /// since it was issued: at the first request at least
    /// `floor(idle * fraction)` whole seconds after `issued`. Default
    /// `0.1`. Must be from 0 to 1.
    ///
    /// - `0.0` re-issues on every request that opens a cookie (one
    ///   `Set-Cookie` per response; in server mode the pointer cookie is
    ///   re-sealed and the entry's time to live extended).
    /// - `1.0` never re-issues an unchanged cookie: it is due exactly when
    ///   its idle deadline passes, and by then it no longer opens. Only
    ///   writes move the idle deadline.
    /// - Without an idle timeout (`with_idle_timeout(None)`) nothing rolls,
    ///   whatever the fraction (`0.0` included): there is no idle deadline
    ///   to move, and an unchanged cookie is re-sealed only for a key
    ///   rotation, a schema migration or a new lifetime. The absolute
    ///   timeout is never extended.
    ///
    /// The idle timeout a user sees thus lies between `(1 - fraction) *
    /// idle` and `idle` after their last request.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default().with_rolling(0.5);
    /// # let _ = config;
    /// ```
    pub fn with_rolling(mut self, fraction: f64) -> Self {
        self.lifetime.rolling = fraction;
        self
    }

    /// How far in the future a sealed timestamp may lie, for instances
    /// whose clocks disagree. Default 60 seconds. Whole seconds.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_clock_skew(Duration::from_secs(5));
    /// # let _ = config;
    /// ```
    pub fn with_clock_skew(mut self, skew: Duration) -> Self {
        self.lifetime.skew = skew.as_secs();
        self
    }

    /// Every session created before `cutoff` is invalid: after a breach,
    /// log everyone out without changing keys. Default none.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_cutoff(Some(time::OffsetDateTime::now_utc()));
    /// # let _ = config;
    /// ```
    pub fn with_cutoff(mut self, cutoff: Option<OffsetDateTime>) -> Self {
        self.lifetime.cutoff = cutoff.map(|t| u64::try_from(t.unix_timestamp()).unwrap_or(0));
        self
    }

    /// Leave `Max-Age` out so the browser drops the cookie when it closes.
    /// The server still enforces both timeouts. Default off. With both
    /// timeouts off the cookie has no `Max-Age` either way.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default().with_browser_session(true);
    /// # let _ = config;
    /// ```
    pub fn with_browser_session(mut self, browser_session: bool) -> Self {
        self.lifetime.browser_session = browser_session;
        self
    }

    /// The most bytes of cookie name plus value (after sealing and
    /// encoding) that [`Sessions::save`](crate::Sessions::save) writes.
    /// Default [`DEFAULT_SIZE_LIMIT`] (4096). Incoming values over it are
    /// rejected before decoding.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default().with_size_limit(2048);
    /// # let _ = config;
    /// ```
    pub fn with_size_limit(mut self, limit: usize) -> Self {
        self.size_limit = limit;
        self
    }

    /// The clock every lifetime decision reads. Default [`SystemClock`];
    /// tests use a [`ManualClock`](crate::ManualClock).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{ManualClock, SessionConfig};
    /// let config = SessionConfig::default().with_clock(ManualClock::new(1_700_000_000));
    /// # let _ = config;
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// A server store for sessions too large for their cookie (and, in
    /// [`StoreMode::Server`], for all sessions). Default none: a session
    /// over the size limit is then a [`SaveError`](crate::SaveError).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{MemoryStore, SessionConfig};
    /// let config = SessionConfig::default().with_store(MemoryStore::new());
    /// # let _ = config;
    /// ```
    pub fn with_store(mut self, store: impl SessionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The same, for a store already behind an `Arc` (shared by several
    /// configurations).
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sealed_session::{MemoryStore, SessionConfig, SessionStore};
    /// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    /// let config = SessionConfig::default().with_shared_store(Arc::clone(&store));
    /// # let _ = config;
    /// ```
    pub fn with_shared_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The circuit breaker in front of the store: after repeated calls
    /// that found the store unreachable (an error or a timeout), store
    /// calls fail at once for a short, growing interval, probing with one
    /// call, instead of each waiting the store's whole timeout. `None`
    /// turns it off. Default on: [`CircuitBreaker::default`] (5 failures,
    /// open 1 s doubling to 4 s). While it is open, a request that needs
    /// the store gets [`LoadError::Store`](crate::LoadError::Store) or
    /// [`SaveError::Store`](crate::SaveError::Store) (the layer's 503) at
    /// once; sessions held in the cookie are not affected.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{MemoryStore, SessionConfig};
    /// let config = SessionConfig::default()
    ///     .with_store(MemoryStore::new())
    ///     .with_circuit_breaker(None);
    /// # let _ = config;
    /// ```
    pub fn with_circuit_breaker(mut self, breaker: Option<CircuitBreaker>) -> Self {
        self.circuit_breaker = breaker;
        self
    }

    /// Where values live when a store is configured. Default
    /// [`StoreMode::Cookie`]. [`StoreMode::Server`] needs a store.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{MemoryStore, SessionConfig, StoreMode};
    /// let config = SessionConfig::default()
    ///     .with_store(MemoryStore::new())
    ///     .with_store_mode(StoreMode::Server);
    /// # let _ = config;
    /// ```
    pub fn with_store_mode(mut self, mode: StoreMode) -> Self {
        self.store_mode = mode;
        self
    }

    /// Revocation: [`Session::destroy`](crate::Session::destroy) records
    /// the session id in the store until the session would have expired,
    /// and every load checks it, so a copy of a destroyed session's cookie
    /// no longer opens. Costs one store read per request that carries a
    /// valid cookie, and one more when a save writes under the id loaded
    /// (a change, a rolling re-issue: a parallel logout or login may have
    /// revoked it meanwhile); a store that is down then fails those
    /// requests.
    /// Needs a store. Default off.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{MemoryStore, SessionConfig};
    /// let config = SessionConfig::default()
    ///     .with_store(MemoryStore::new())
    ///     .with_revocation(true);
    /// # let _ = config;
    /// ```
    pub fn with_revocation(mut self, revocation: bool) -> Self {
        self.revocation = revocation;
        self
    }

    /// The application context: bytes bound into every sealed cookie and
    /// store entry (their associated data) and into revocation markers.
    /// Default empty.
    ///
    /// Give each application and each environment its own (for example
    /// `b"shop production"`, `b"shop staging"`): then two deployments that
    /// share `SESSION_KEYS` and the cookie name by mistake still refuse
    /// each other's cookies (as [`Rejection::Forged`](crate::Rejection::Forged),
    /// since to them the value is not authentic). Changing it logs everyone
    /// out, like removing every key. The context is not secret and is not
    /// sent; it only has to be the same on every instance of one
    /// deployment.
    ///
    /// # Example
    ///
    /// ```
    /// let config = sealed_session::SessionConfig::default().with_context("shop production");
    /// assert_eq!(config.context(), b"shop production");
    /// ```
    pub fn with_context(mut self, context: impl Into<Vec<u8>>) -> Self {
        self.context = context.into();
        self
    }

    /// Registers the [`Schema`] of the session type `T`: its version, the
    /// migrations from older versions, and the version written (see
    /// "Changing the session type" in the README). A second schema for the
    /// same type replaces the first. [`Sessions::new`](crate::Sessions::new)
    /// checks that every registered migration reaches the current version.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Schema, SessionConfig};
    /// // Version 1 widened the counter from u32 to u64.
    /// let config = SessionConfig::default()
    ///     .with_schema(Schema::<u64>::new(1).migrate(0, |old: u32| u64::from(old)));
    /// # let _ = config;
    /// ```
    pub fn with_schema<T: 'static>(mut self, schema: Schema<T>) -> Self {
        self.schemas.add(schema);
        self
    }

    /// After a **rollback** to a release that no longer knows a schema
    /// version some browsers hold: let saves replace such cookies. Default
    /// off: a cookie of a newer schema is never overwritten
    /// ([`SaveError::NewerSchema`](crate::SaveError::NewerSchema)), which
    /// during a rolling deploy keeps the user's session for the newer
    /// instances, but after a rollback would refuse every login of those
    /// users until their cookie expires. Turned on, those users get a new
    /// session (`Rejection::NewerSchema` still says why); every save over
    /// such a cookie replaces it, even when the handler changed nothing,
    /// and ends its id (store entry deleted, revoked when revocation is
    /// on) as a renew would: the new session never carries on under that
    /// id or in its store entry. What the newer release stored in it is
    /// lost. A logout ends that id either way.
    ///
    /// # Example
    ///
    /// ```
    /// // The release that went out with schema 2 was rolled back.
    /// let config = sealed_session::SessionConfig::default().with_replace_newer_schemas(true);
    /// # let _ = config;
    /// ```
    pub fn with_replace_newer_schemas(mut self, replace: bool) -> Self {
        self.replace_newer_schemas = replace;
        self
    }

    /// The longest idle timeout a handler may give one session with
    /// [`Session::set_lifetime`](crate::Session::set_lifetime) (a "remember
    /// me" session). Default: the configured idle timeout, so a session
    /// can only be made shorter. `None`: no bound (only when sessions may
    /// idle forever): a chosen timeout is then kept within about ten years,
    /// and with revocation on, markers live up to that long (within the
    /// absolute bound), to outlast any copy. Also caps existing sessions at
    /// every load.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_max_idle_timeout(Some(Duration::from_secs(30 * 24 * 3600)));
    /// # let _ = config;
    /// ```
    pub fn with_max_idle_timeout(mut self, max: Option<Duration>) -> Self {
        self.lifetime.max_idle = Some(seconds(max));
        self
    }

    /// The longest absolute timeout a handler may give one session with
    /// [`Session::set_lifetime`](crate::Session::set_lifetime). Default:
    /// the configured absolute timeout. `None`: no bound (as for
    /// [`with_max_idle_timeout`](SessionConfig::with_max_idle_timeout),
    /// markers then live up to about ten years).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = sealed_session::SessionConfig::default()
    ///     .with_max_absolute_timeout(Some(Duration::from_secs(90 * 24 * 3600)));
    /// # let _ = config;
    /// ```
    pub fn with_max_absolute_timeout(mut self, max: Option<Duration>) -> Self {
        self.lifetime.max_absolute = Some(seconds(max));
        self
    }

    /// The application context (see [`with_context`](Self::with_context)).
    ///
    /// # Example
    ///
    /// ```
    /// assert!(sealed_session::SessionConfig::default().context().is_empty());
    /// ```
    pub fn context(&self) -> &[u8] {
        &self.context
    }

    /// The configured cookie name.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(sealed_session::SessionConfig::default().cookie_name(), "__Host-session");
    /// ```
    pub fn cookie_name(&self) -> &str {
        &self.attributes.name
    }

    /// The configured `SameSite`.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{SameSite, SessionConfig};
    /// assert_eq!(SessionConfig::default().same_site(), SameSite::Lax);
    /// ```
    pub fn same_site(&self) -> SameSite {
        self.attributes.same_site
    }

    /// The configured size limit.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(sealed_session::SessionConfig::default().size_limit(), 4096);
    /// ```
    pub fn size_limit(&self) -> usize {
        self.size_limit
    }
}
