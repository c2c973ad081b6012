//! Moving over from another session system without logging anyone out:
//! [`Import`], registered per session type with
//! [`SessionConfig::with_import`].
//!
//! The rules, in order:
//!
//! 1. **When it runs.** Only when the request carries no cookie of our
//!    name at all, valid or not, and does carry the old system's cookie
//!    (its first value, as express-session and the `cookie` crate's jar
//!    read it; at most 4096 bytes, UTF-8). A cookie of ours, even one that
//!    is refused (expired, forged, under a removed key), means the
//!    cut-over already happened for that browser, so an old cookie still
//!    beside it is not imported. This is not what protects a logout: a
//!    logout (and an expiry) of ours makes the browser drop our cookie
//!    (`Max-Age=0`), after which a request with the old cookie alone is
//!    imported again unless the old record is gone. Only `on_saved`
//!    (deleting or replacing the old record, rule 4) keeps an old cookie
//!    from bringing a session back after our logout.
//! 2. **What it gives.** The application's function turns the old
//!    cookie's value into `Ok(Some(Imported))`, `Ok(None)` (forged,
//!    unsigned, unknown, expired: a normal new session, never an error)
//!    or `Err(ImportError)` (the old store cannot answer). An error is a
//!    [`LoadError::Import`]: the layer answers `503` without calling the
//!    handler, so a store outage can never pass for "no session" and let
//!    the handler write a new sealed cookie over a session that would
//!    then be lost.
//! 3. **The session.** An imported value starts a new session (a fresh
//!    random id, `created` now, the configured lifetime), marked changed,
//!    so save writes the sealed cookie whatever the handler does.
//! 4. **The save.** After the sealed value is written (store entry
//!    included) and before any `Set-Cookie` goes on the response, the
//!    import's [`Imported::on_saved`] future runs (the example deletes the
//!    old record there); if it fails, the save fails
//!    ([`SaveError::Import`], `503` from the layer), the store entry just
//!    created is deleted again and no `Set-Cookie` is sent: the browser
//!    keeps the old cookie and the next request imports again. Only then
//!    do the sealed cookie and the old cookie's removal (when asked for
//!    with [`Import::remove_old_cookie`]) go on the response, the sealed
//!    cookie first. A save that fails for any other reason runs nothing
//!    and sends nothing either. `on_saved` is a one-shot future: once it
//!    has failed, every later save of that session fails with the same
//!    `SaveError::Import` (a cookie of ours written without the old
//!    record's deletion would leave that record importable again after a
//!    logout of ours).
//! 5. **Too large for the cookie, no store.** An imported value whose
//!    sealed cookie would exceed the size limit goes to the store when
//!    there is one. Without one the import is impossible for that browser,
//!    and retrying it would fail every request for as long as the old
//!    cookie lives; so it is given up: a `WARN` names the old cookie and
//!    the size, the session becomes a new, empty one (the handler's
//!    changes on that request are dropped with the imported value) whose
//!    cookie is written (so rule 1 stops further imports from that
//!    browser), the old cookie's removal is sent if configured, `on_saved`
//!    does not run and the old record is kept (it expires in the old
//!    store). The save succeeds: the user starts over but can use the
//!    site. `Sessions::new` warns about an import registered without a
//!    store; configure one for the cut-over.
//! 6. **A value that cannot load back.** An imported value the save check
//!    refuses (`SaveError::Unloadable`: the mapping produced a value
//!    postcard cannot read back as `T`) is given up the same way, at
//!    `ERROR` naming the serde problem: a new, empty session is written
//!    instead, the old cookie's removal is sent if configured, the old
//!    record is kept. If `T::default()` itself cannot load back, no cookie
//!    of ours is written and only the old cookie's removal goes out
//!    (without one configured, that browser imports again on its next
//!    request and is given up again: it is never locked out, but the old
//!    system's store is asked on each of its requests).

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::config::SessionConfig;
use crate::error::{ConfigError, LoadError, SaveError};
use crate::lifetime::session_lifetime::SessionLifetime;
use crate::session::Session;
use crate::sessions::load::Refusals;
use crate::sessions::rejection_log::REJECTION_WARN_INTERVAL;
use crate::sessions::{Inner, Sessions};
use crate::wire::header::cookie_values;

/// The longest old cookie value handed to an import function; a longer
/// one imports nothing (browsers keep at most 4096 bytes of name and
/// value).
///
/// # Example
///
/// ```
/// assert_eq!(sealed_session::MAX_OLD_COOKIE_LEN, 4096);
/// ```
pub const MAX_OLD_COOKIE_LEN: usize = 4096;

/// What an import function returns, boxed.
type ImportFuture<T> =
    Pin<Box<dyn Future<Output = Result<Option<Imported<T>>, ImportError>> + Send>>;

type AfterSave = Pin<Box<dyn Future<Output = Result<(), ImportError>> + Send>>;

type Load<T> = dyn Fn(String) -> ImportFuture<T> + Send + Sync;

/// How to turn another session system's cookie into a session of type
/// `T`, once, at the cut-over. Register it with
/// [`SessionConfig::with_import`]; [`Sessions::load`] (and so the tower
/// layer and the axum extractor) then uses it. The rules are in the
/// module's source (`src/sessions/import.rs`) and in the README ("Moving from
/// express-session").
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sealed_session::{Import, Imported, Key, Keyring, SessionConfig, Sessions};
///
/// // The old system's sessions, by cookie value (a real one verifies a
/// // signature and reads its store; see examples/import_express.rs).
/// let import = Import::new("old.sid", |value: String| async move {
///     Ok((value == "ann-s-id").then(|| Imported::new("ann".to_owned())))
/// })
/// .remove_old_cookie("/", None);
/// let config = SessionConfig::default().with_import(import);
/// let sessions = Sessions::new(Keyring::new(Key::generate()), config)?;
///
/// let mut request = http::HeaderMap::new();
/// request.insert(http::header::COOKIE, "old.sid=ann-s-id".parse()?);
/// let session = sessions.load::<String>(&request).await?;
/// assert_eq!(session.get(), "ann");
/// assert!(session.is_imported());
///
/// let mut response = http::HeaderMap::new();
/// sessions.save(&session, &mut response).await?;
/// let cookies: Vec<_> = response.get_all(http::header::SET_COOKIE).iter().collect();
/// assert!(cookies[0].to_str()?.starts_with("__Host-session="));
/// assert!(cookies[1].to_str()?.starts_with("old.sid=; Path=/; Max-Age=0"));
/// # Ok(())
/// # }
/// ```
pub struct Import<T> {
    cookie: String,
    /// The removal `Set-Cookie` for the old cookie, rendered (or why it
    /// cannot be, reported by `Sessions::new`).
    removal: Option<Result<HeaderValue, ConfigError>>,
    load: Arc<Load<T>>,
}

impl<T> Import<T> {
    /// An import from the old system's cookie `old_cookie` (e.g.
    /// `connect.sid` for express-session, `id` for tower-sessions): `load`
    /// gets the cookie's value as the browser sent it (not
    /// percent-decoded) and answers:
    ///
    /// - `Ok(Some(Imported::new(value)))`: the session starts with
    ///   `value`;
    /// - `Ok(None)`: nothing to import (a forged, unsigned, unknown or
    ///   expired cookie): a new session, as without the old cookie;
    /// - `Err(ImportError)`: the old system cannot answer (its store is
    ///   down): the load fails ([`LoadError::Import`]).
    ///
    /// The function is called from `load`, so it must be quick to return
    /// its future; the future does the I/O, bounded by a timeout of its
    /// own (a store that hangs holds the request).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Import, ImportError, Imported};
    ///
    /// let import: Import<u64> = Import::new("connect.sid", |value: String| async move {
    ///     match value.parse::<u64>() {
    ///         Ok(n) => Ok(Some(Imported::new(n))),
    ///         Err(_) => Ok(None),
    ///     }
    /// });
    /// # let _ = (import, ImportError::new("unused"));
    /// ```
    pub fn new<F, Fut>(old_cookie: impl Into<String>, load: F) -> Import<T>
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Imported<T>>, ImportError>> + Send + 'static,
    {
        Import {
            cookie: old_cookie.into(),
            removal: None,
            load: Arc::new(move |value| Box::pin(load(value))),
        }
    }

    /// After a successful import, the response also removes the old
    /// cookie: a `Set-Cookie` with its name, this `path` and `domain`
    /// (they must be the ones the old system set it with, or the browser
    /// keeps it), an empty value, `Max-Age=0` and an `Expires` in the
    /// past. `Secure` is added for a `__Secure-` or `__Host-` name (the
    /// browser refuses the removal without it). Without this call the old
    /// cookie stays until it expires; it imports nothing once the record
    /// is deleted, and never while a cookie of ours is present.
    ///
    /// [`Sessions::new`] refuses an invalid name, path or domain, and an
    /// old cookie with the session cookie's own name.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Import, Imported};
    ///
    /// let import = Import::new("connect.sid", |_: String| async { Ok(None::<Imported<u32>>) })
    ///     .remove_old_cookie("/", Some("example.com"));
    /// # let _ = import;
    /// ```
    pub fn remove_old_cookie(mut self, path: &str, domain: Option<&str>) -> Import<T> {
        self.removal = Some(removal(&self.cookie, path, domain));
        self
    }

    /// The old system's cookie name.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Import, Imported};
    /// let import = Import::new("id", |_: String| async { Ok(None::<Imported<u32>>) });
    /// assert_eq!(import.old_cookie(), "id");
    /// ```
    pub fn old_cookie(&self) -> &str {
        &self.cookie
    }
}

/// RFC 6265 `token`, as `attributes` checks our own cookie name.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn is_attribute_value(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !value.contains(';')
}

/// The old cookie's removal `Set-Cookie`, or why it cannot be written.
fn removal(name: &str, path: &str, domain: Option<&str>) -> Result<HeaderValue, ConfigError> {
    let problem = |problem| ConfigError::Import {
        cookie: name.to_owned(),
        problem,
    };
    if !is_token(name) {
        return Err(problem("the old cookie's name is not a valid cookie name"));
    }
    if !is_attribute_value(path) || domain.is_some_and(|d| !is_attribute_value(d)) {
        return Err(problem(
            "the old cookie's path or domain is empty or has a control character or ';'",
        ));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("__host-") && (path != "/" || domain.is_some()) {
        return Err(problem("a __Host- cookie has Path=/ and no Domain"));
    }
    let secure = lower.starts_with("__host-") || lower.starts_with("__secure-");
    let mut builder = cookie::Cookie::build((name.to_owned(), String::new()))
        .path(path.to_owned())
        .secure(secure);
    if let Some(domain) = domain {
        builder = builder.domain(domain.to_owned());
    }
    let mut cookie = builder.build();
    cookie.make_removal();
    HeaderValue::try_from(cookie.to_string())
        .map_err(|_| problem("the old cookie's removal is not a valid header value"))
}

impl<T> Clone for Import<T> {
    fn clone(&self) -> Self {
        Import {
            cookie: self.cookie.clone(),
            removal: self.removal.clone(),
            load: Arc::clone(&self.load),
        }
    }
}

impl<T> fmt::Debug for Import<T> {
    /// The old cookie's name and whether it is removed; never the function.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Import")
            .field("session_type", &std::any::type_name::<T>())
            .field("old_cookie", &self.cookie)
            .field("removes_old_cookie", &self.removal.is_some())
            .finish_non_exhaustive()
    }
}

/// A value imported from the old system, with what to do once it is
/// saved.
///
/// # Example
///
/// ```
/// use sealed_session::{ImportError, Imported};
///
/// let imported = Imported::new(42_u64).on_saved(async {
///     // e.g. DEL sess:<id> in the old store
///     Ok::<(), ImportError>(())
/// });
/// # let _ = imported;
/// ```
pub struct Imported<T> {
    value: T,
    on_saved: Option<AfterSave>,
}

impl<T> Imported<T> {
    /// The session's value.
    ///
    /// # Example
    ///
    /// ```
    /// let imported = sealed_session::Imported::new(String::from("ann"));
    /// # let _ = imported;
    /// ```
    pub fn new(value: T) -> Imported<T> {
        Imported {
            value,
            on_saved: None,
        }
    }

    /// A future to run once the session is saved, before any `Set-Cookie`
    /// is sent: delete the old record there, so that a copy of the old
    /// cookie replayed later imports nothing. It runs after the sealed
    /// value is written and only if that succeeded; if it fails, the save
    /// fails ([`SaveError::Import`]), nothing is sent and the old cookie
    /// stays in the browser, so the next request imports again. It runs
    /// at most once: once it has failed, every later save of the same
    /// session fails with the same [`SaveError::Import`] and sends nothing
    /// (writing our cookie without the old record's deletion would let
    /// the old cookie import the session again after a logout of ours).
    /// The layer saves once and answers `503`; the next request imports
    /// afresh.
    ///
    /// Two requests that import the same old cookie at once (a page and
    /// its images at the cut-over) both import and both run this: make it
    /// idempotent (deleting a record that is already gone is a success).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{ImportError, Imported};
    ///
    /// let key = String::from("sess:abc");
    /// let imported = Imported::new(7_u32).on_saved(async move {
    ///     let _ = key; // store.delete(&key).await.map_err(ImportError::new)
    ///     Ok::<(), ImportError>(())
    /// });
    /// # let _ = imported;
    /// ```
    pub fn on_saved(
        mut self,
        future: impl Future<Output = Result<(), ImportError>> + Send + 'static,
    ) -> Imported<T> {
        self.on_saved = Some(Box::pin(future));
        self
    }
}

impl<T> fmt::Debug for Imported<T> {
    /// Never the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imported")
            .field("on_saved", &self.on_saved.is_some())
            .finish_non_exhaustive()
    }
}

/// The old session system could not answer (its store is down, timed out,
/// or answered something that is not a session record). Not for a cookie
/// that imports nothing: that is `Ok(None)`.
///
/// The message is logged and shown in [`LoadError`] and [`SaveError`]: put
/// no secret, cookie value or session id in it.
///
/// # Example
///
/// ```
/// use sealed_session::ImportError;
/// let err = ImportError::new("redis: connection refused");
/// assert_eq!(err.to_string(), "the old session store could not answer: redis: connection refused");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportError {
    message: String,
}

impl ImportError {
    /// An error with this message.
    ///
    /// # Example
    ///
    /// ```
    /// let err = sealed_session::ImportError::new("timed out after 1 s");
    /// assert!(err.to_string().ends_with("timed out after 1 s"));
    /// ```
    pub fn new(message: impl fmt::Display) -> ImportError {
        ImportError {
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the old session store could not answer: {}",
            self.message
        )
    }
}

impl std::error::Error for ImportError {}

impl SessionConfig {
    /// Registers the [`Import`] of the session type `T`: while moving over
    /// from another session system, a request with no cookie of ours but
    /// with the old system's cookie starts with the value the import
    /// gives. A second import for the same type replaces the first. Remove
    /// it once the old sessions have expired.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Import, Imported, SessionConfig};
    ///
    /// let config = SessionConfig::default().with_import(Import::new("connect.sid", |_: String| async {
    ///     Ok(None::<Imported<u32>>)
    /// }));
    /// # let _ = config;
    /// ```
    pub fn with_import<T: 'static>(mut self, import: Import<T>) -> Self {
        let import: Arc<dyn AnyImport> = Arc::new(import);
        self.imports
            .0
            .retain(|i| i.session_type() != import.session_type());
        self.imports.0.push(import);
        self
    }
}

pub(crate) trait AnyImport: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn session_type(&self) -> TypeId;
    fn check(&self, ours: &str) -> Result<(), ConfigError>;
    fn old_cookie(&self) -> &str;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: 'static> AnyImport for Import<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn session_type(&self) -> TypeId {
        TypeId::of::<T>()
    }

    fn check(&self, ours: &str) -> Result<(), ConfigError> {
        if self.cookie == ours {
            return Err(ConfigError::Import {
                cookie: self.cookie.clone(),
                problem: "the old cookie has the session cookie's own name",
            });
        }
        if !is_token(&self.cookie) {
            return Err(ConfigError::Import {
                cookie: self.cookie.clone(),
                problem: "the old cookie's name is not a valid cookie name",
            });
        }
        match &self.removal {
            Some(Err(error)) => Err(error.clone()),
            _ => Ok(()),
        }
    }

    fn old_cookie(&self) -> &str {
        &self.cookie
    }

    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The registered imports of a configuration (usually none).
#[derive(Clone, Default)]
pub(crate) struct Imports(Vec<Arc<dyn AnyImport>>);

impl Imports {
    pub(crate) fn check(&self, ours: &str) -> Result<(), ConfigError> {
        self.0.iter().try_for_each(|i| i.check(ours))
    }

    /// The old cookies' names.
    pub(crate) fn old_cookies(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|i| i.old_cookie())
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[inline]
    pub(crate) fn of<T: 'static>(&self) -> Option<&Import<T>> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().find_map(|i| i.as_any().downcast_ref())
    }
}

impl fmt::Debug for Imports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct One<'a>(&'a dyn AnyImport);
        impl fmt::Debug for One<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.debug(f)
            }
        }
        f.debug_list()
            .entries(self.0.iter().map(|i| One(&**i)))
            .finish()
    }
}

/// What an imported session still has to do when it is saved.
pub(crate) struct PendingImport {
    /// The old cookie's name, for the logs.
    cookie: String,
    /// The old cookie's removal, if asked for.
    removal: Option<HeaderValue>,
    on_saved: Option<AfterSave>,
    /// Why `on_saved` failed, once it has: it is a one-shot future, so
    /// every later save of this session fails with this error too rather
    /// than write our cookie without the old record's deletion.
    failed: Option<ImportError>,
}

impl Sessions {
    /// Whether an import is registered for `T` (the layer then loads and
    /// saves in a future, as with a store).
    #[cfg(feature = "tower")]
    pub(crate) fn has_import<T: 'static>(&self) -> bool {
        self.config().imports.of::<T>().is_some()
    }

    /// Whether `save` must take the path that can wait: a pending import
    /// runs its `on_saved` future.
    pub(crate) fn import_pending<T>(&self, session: &Session<T>) -> bool {
        !self.config().imports.is_empty() && session.lock().import.is_some()
    }
}

impl Inner {
    /// `load` for a request with no cookie of ours, when `T` has an
    /// import: a new session, with the imported value if the old cookie
    /// gives one.
    pub(crate) async fn import<T: Default + 'static>(
        &self,
        import: &Import<T>,
        headers: &HeaderMap,
    ) -> Result<Session<T>, LoadError> {
        let now = self.config.clock.now();
        let session = self.fresh::<T>(now, Refusals::default());
        let Some(value) = cookie_values(headers, &import.cookie).next() else {
            return Ok(session);
        };
        let old_cookie = import.cookie.as_str();
        if value.is_empty() {
            return Ok(session);
        }
        if value.len() > MAX_OLD_COOKIE_LEN {
            tracing::debug!(old_cookie, "old session cookie too long; nothing imported");
            return Ok(session);
        }
        let Ok(value) = std::str::from_utf8(value) else {
            tracing::debug!(old_cookie, "old session cookie not UTF-8; nothing imported");
            return Ok(session);
        };
        match (import.load)(value.to_owned()).await {
            Ok(None) => {
                tracing::debug!(old_cookie, "old session cookie imported nothing");
                Ok(session)
            }
            Ok(Some(imported)) => {
                tracing::debug!(old_cookie, "old session imported");
                let mut state = session.lock();
                state.data = imported.value;
                state.changed = true;
                state.generation += 1;
                state.imported = true;
                state.import = Some(Box::new(PendingImport {
                    cookie: import.cookie.clone(),
                    removal: import.removal.as_ref().and_then(|r| r.clone().ok()),
                    on_saved: imported.on_saved,
                    failed: None,
                }));
                drop(state);
                Ok(session)
            }
            Err(error) => Err(LoadError::Import(error)),
        }
    }

    /// At save, once the value is written and before any `Set-Cookie`:
    /// runs the import's `on_saved`; gives the old cookie's removal to
    /// send after the sealed cookie. Once `on_saved` has failed, every
    /// later save of the session fails with the same error (the future
    /// cannot run again, and a cookie of ours written without it would
    /// leave the old record importable after our logout).
    pub(crate) async fn complete_import<T>(
        &self,
        session: &Session<T>,
    ) -> Result<Option<HeaderValue>, SaveError> {
        if self.config.imports.is_empty() {
            return Ok(None);
        }
        let mut pending = {
            let mut state = session.lock();
            match state.import.as_ref().and_then(|p| p.failed.clone()) {
                Some(error) => return Err(SaveError::Import(error)),
                None => match state.import.take() {
                    Some(pending) => pending,
                    None => return Ok(None),
                },
            }
        };
        if let Some(on_saved) = pending.on_saved.take() {
            if let Err(error) = on_saved.await {
                pending.failed = Some(error.clone());
                session.lock().import = Some(pending);
                return Err(SaveError::Import(error));
            }
        }
        Ok(pending.removal)
    }
}

impl Inner {
    /// At save, without a store, when the imported value does not fit the
    /// cookie (`TooLarge`): the import cannot happen for this browser, and
    /// retrying it on every request would fail every request. The session
    /// becomes a new, empty one (the handler's changes on this request go
    /// with the imported value), marked changed so that save writes a
    /// cookie of ours (rule 1 then stops any further import from this
    /// browser, even without the old cookie's removal); `on_saved` is
    /// dropped without running, so the old record is kept. Gives the old
    /// cookie's removal to send (if configured), or `None` when the
    /// session has no import to give up (not imported, or its `on_saved`
    /// already failed): the save then fails as it would have. The `warn`
    /// comes at most once per [`REJECTION_WARN_INTERVAL`], with the count
    /// left out: a client that drops our cookie and keeps replaying the
    /// old one gives up the import on every request.
    pub(crate) fn abandon_import<T: Default>(
        &self,
        session: &Session<T>,
        size: usize,
        limit: usize,
    ) -> Option<Option<HeaderValue>> {
        self.give_import_up(session, |old_cookie| {
            let Some(unlogged) = self
                .warnings
                .import_too_large
                .admit(self.config.clock.now())
            else {
                return;
            };
            tracing::warn!(
                old_cookie,
                size,
                limit,
                unlogged,
                interval_secs = REJECTION_WARN_INTERVAL,
                "imported session too large for the cookie and no store configured: not imported; \
                 the browser starts a new session and the old record is kept (configure a store \
                 for the cut-over)"
            )
        })
    }

    /// At save, when the imported value cannot load back (rule 6): given
    /// up as in [`Inner::abandon_import`], logged at `ERROR`, as often.
    pub(crate) fn abandon_unloadable_import<T: Default>(
        &self,
        session: &Session<T>,
        error: &SaveError,
    ) -> Option<Option<HeaderValue>> {
        self.give_import_up(session, |old_cookie| {
            let Some(unlogged) = self
                .warnings
                .import_unloadable
                .admit(self.config.clock.now())
            else {
                return;
            };
            tracing::error!(
                old_cookie,
                %error,
                unlogged,
                interval_secs = REJECTION_WARN_INTERVAL,
                "imported session cannot be saved: the value the import gave does not load back; \
                 not imported, the browser starts a new session and the old record is kept"
            )
        })
    }

    fn give_import_up<T: Default>(
        &self,
        session: &Session<T>,
        log: impl FnOnce(&str),
    ) -> Option<Option<HeaderValue>> {
        let mut state = session.lock();
        if state.import.as_ref().is_none_or(|p| p.failed.is_some()) {
            return None;
        }
        let pending = state.import.take()?;
        log(pending.cookie.as_str());
        state.data = T::default();
        state.imported = false;
        state.import_given_up = true;
        state.changed = true;
        state.restart = false;
        state.end_origin = false;
        state.destroyed = false;
        state.lifetime = SessionLifetime::default();
        state.generation += 1;
        Some(pending.removal)
    }
}

/// Appends the old cookie's removal, after the sealed cookie.
pub(crate) fn send_removal(headers: &mut HeaderMap, removal: Option<HeaderValue>) {
    if let Some(removal) = removal {
        headers.append(SET_COOKIE, removal);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::HeaderMap;
    use http::header::{COOKIE, SET_COOKIE};

    use super::*;
    use crate::{ConfigError, Key, Keyring, SaveError, SessionConfig, Sessions};

    /// An import of `old=<n>` as `n`, counting calls and saves; `fail`
    /// makes the load or the `on_saved` fail.
    fn counting(calls: &Arc<AtomicUsize>, saved: &Arc<AtomicUsize>, fail: Fail) -> Import<u32> {
        let (calls, saved) = (Arc::clone(calls), Arc::clone(saved));
        Import::new("old", move |value: String| {
            calls.fetch_add(1, Ordering::SeqCst);
            let saved = Arc::clone(&saved);
            async move {
                if fail == Fail::Load {
                    return Err(ImportError::new("down"));
                }
                let Ok(n) = value.parse::<u32>() else {
                    return Ok(None);
                };
                Ok(Some(Imported::new(n).on_saved(async move {
                    saved.fetch_add(1, Ordering::SeqCst);
                    match fail {
                        Fail::Saved => Err(ImportError::new("down")),
                        _ => Ok(()),
                    }
                })))
            }
        })
        .remove_old_cookie("/", None)
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Fail {
        Not,
        Load,
        Saved,
    }

    fn sessions(import: Import<u32>) -> Sessions {
        let config = SessionConfig::default().with_import(import);
        Sessions::new(Keyring::new(Key::from_bytes([3; 32]).unwrap()), config).unwrap()
    }

    fn cookies(text: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, text.parse().unwrap());
        headers
    }

    fn set_cookies(headers: &HeaderMap) -> Vec<String> {
        headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn imports_once_then_our_cookie_wins_and_the_hook_is_not_called() {
        let (calls, saved) = Default::default();
        let sessions = sessions(counting(&calls, &saved, Fail::Not));
        let session = sessions.load::<u32>(&cookies("old=7")).await.unwrap();
        assert_eq!((session.get(), session.is_imported()), (7, true));
        assert!(session.is_new());
        let mut response = HeaderMap::new();
        sessions.save(&session, &mut response).await.unwrap();
        let sent = set_cookies(&response);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].starts_with("__Host-session="));
        assert!(sent[1].starts_with("old=; Path=/; Max-Age=0"), "{sent:?}");
        assert_eq!(saved.load(Ordering::SeqCst), 1);
        // A second save of the same session runs nothing again.
        session.set(8);
        let mut again = HeaderMap::new();
        sessions.save(&session, &mut again).await.unwrap();
        assert_eq!(set_cookies(&again).len(), 1);
        assert_eq!(saved.load(Ordering::SeqCst), 1);

        // Our cookie (with the old one still there): no call.
        let ours = sent[0].split(';').next().unwrap();
        let session = sessions
            .load::<u32>(&cookies(&format!("old=9; {ours}")))
            .await
            .unwrap();
        assert_eq!((session.get(), session.is_imported()), (7, false));
        // A refused cookie of ours: no call either.
        let session = sessions
            .load::<u32>(&cookies("__Host-session=garbage; old=9"))
            .await
            .unwrap();
        assert_eq!(session.get(), 0);
        assert!(session.rejection().is_some());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn nothing_to_import_is_a_new_session_and_no_cookie() {
        let (calls, saved) = Default::default();
        let sessions = sessions(counting(&calls, &saved, Fail::Not));
        for request in ["old=forged", "old=", "other=1", "old=\"x\""] {
            let session = sessions.load::<u32>(&cookies(request)).await.unwrap();
            assert_eq!((session.get(), session.is_imported()), (0, false));
            let mut response = HeaderMap::new();
            sessions.save(&session, &mut response).await.unwrap();
            assert!(response.is_empty(), "{request}");
        }
        // Too long: not even asked.
        let long = format!("old={}", "1".repeat(MAX_OLD_COOKIE_LEN + 1));
        let session = sessions.load::<u32>(&cookies(&long)).await.unwrap();
        assert!(!session.is_imported());
        // "forged" and "x" were asked; the empty value and no cookie not.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(saved.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_old_store_that_cannot_answer_is_a_load_error() {
        let (calls, saved) = Default::default();
        let sessions = sessions(counting(&calls, &saved, Fail::Load));
        let error = sessions.load::<u32>(&cookies("old=7")).await.unwrap_err();
        assert_eq!(error, LoadError::Import(ImportError::new("down")));
        assert!(error.to_string().contains("could not answer: down"));
    }

    #[tokio::test]
    async fn too_large_without_a_store_gives_the_import_up() {
        // A value too large for the cookie, no store: the import is given
        // up (rule 5): a new, empty session of ours, the old cookie
        // removed, on_saved not run (the old record kept), no error.
        let saved = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&saved);
        let import = Import::new("old", move |_: String| {
            let counter = Arc::clone(&counter);
            async move {
                Ok(Some(Imported::new(vec![7_u8; 5000]).on_saved(async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })))
            }
        })
        .remove_old_cookie("/", None);
        let config = SessionConfig::default().with_import(import);
        let big = Sessions::new(Keyring::new(Key::generate()), config).unwrap();
        let session = big.load::<Vec<u8>>(&cookies("old=1")).await.unwrap();
        assert!(session.is_imported());
        session.update(|v| v.push(8)); // the handler's change goes too
        let mut response = HeaderMap::new();
        big.save(&session, &mut response).await.unwrap();
        let sent = set_cookies(&response);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].starts_with("__Host-session="), "{sent:?}");
        assert!(sent[1].starts_with("old=; Path=/; Max-Age=0"), "{sent:?}");
        assert_eq!(saved.load(Ordering::SeqCst), 0);
        assert!(!session.is_imported());
        assert!(session.get().is_empty());
        // Our cookie: the next request is that new session, no import.
        let ours = sent[0].split(';').next().unwrap();
        let next = big
            .load::<Vec<u8>>(&cookies(&format!("{ours}; old=1")))
            .await
            .unwrap();
        assert!(!next.is_imported() && !next.is_new() && next.get().is_empty());
        // A value too large that the handler set on a session that was
        // not imported is still TooLarge.
        let plain = big.load::<Vec<u8>>(&HeaderMap::new()).await.unwrap();
        plain.set(vec![1; 5000]);
        let error = big.save(&plain, &mut HeaderMap::new()).await.unwrap_err();
        assert!(matches!(error, SaveError::TooLarge { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_failed_on_saved_sends_nothing_and_fails_every_later_save() {
        // on_saved fails: no Set-Cookie at all, the error says why.
        let (calls, saved) = Default::default();
        let sessions = sessions(counting(&calls, &saved, Fail::Saved));
        let session = sessions.load::<u32>(&cookies("old=7")).await.unwrap();
        let mut response = HeaderMap::new();
        let error = sessions.save(&session, &mut response).await.unwrap_err();
        assert_eq!(error, SaveError::Import(ImportError::new("down")));
        assert!(response.is_empty());
        assert_eq!(saved.load(Ordering::SeqCst), 1);
        // A second save of that session fails the same way and sends
        // nothing: never our cookie without the old record's deletion.
        for _ in 0..2 {
            session.set(8);
            let mut response = HeaderMap::new();
            let error = sessions.save(&session, &mut response).await.unwrap_err();
            assert_eq!(error, SaveError::Import(ImportError::new("down")));
            assert!(response.is_empty());
        }
        session.destroy();
        let mut response = HeaderMap::new();
        let error = sessions.save(&session, &mut response).await.unwrap_err();
        assert!(matches!(error, SaveError::Import(_)), "{error}");
        assert!(response.is_empty());
        assert_eq!(saved.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_logout_on_the_importing_request_still_completes_the_import() {
        let (calls, saved) = Default::default();
        let sessions = sessions(counting(&calls, &saved, Fail::Not));
        let session = sessions.load::<u32>(&cookies("old=7")).await.unwrap();
        session.destroy();
        let mut response = HeaderMap::new();
        sessions.save(&session, &mut response).await.unwrap();
        let sent = set_cookies(&response);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].starts_with("__Host-session=;"));
        assert!(sent[1].starts_with("old=;"));
        assert_eq!(saved.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_bad_old_cookie_is_a_configuration_error() {
        let none = |_: String| async { Ok(None::<Imported<u32>>) };
        let build = |import: Import<u32>| {
            Sessions::new(
                Keyring::new(Key::generate()),
                SessionConfig::default().with_import(import),
            )
            .map(drop)
        };
        for (import, problem) in [
            (Import::new("__Host-session", none), "own name"),
            (Import::new("a b", none), "not a valid cookie name"),
            (
                Import::new("old", none).remove_old_cookie("/;x", None),
                "path or domain",
            ),
            (
                Import::new("old", none).remove_old_cookie("/", Some("")),
                "path or domain",
            ),
            (
                Import::new("__Host-old", none).remove_old_cookie("/app", None),
                "__Host-",
            ),
        ] {
            let error = build(import).unwrap_err();
            assert!(matches!(error, ConfigError::Import { .. }), "{error}");
            assert!(error.to_string().contains(problem), "{error}");
        }
        assert!(build(Import::new("connect.sid", none)).is_ok());
    }

    #[test]
    fn the_removal_carries_path_domain_and_secure_for_prefixed_names() {
        let value = removal("__Secure-sid", "/app", Some("example.com")).unwrap();
        let text = value.to_str().unwrap();
        assert!(text.starts_with("__Secure-sid=; "), "{text}");
        for part in [
            "Path=/app",
            "Domain=example.com",
            "Secure",
            "Max-Age=0",
            "Expires=",
        ] {
            assert!(text.contains(part), "{text}");
        }
        let plain = removal("connect.sid", "/", None).unwrap();
        assert!(!plain.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn debug_shows_no_function_and_no_value() {
        let import = Import::new("connect.sid", |_: String| async {
            Ok(Some(Imported::new(String::from("secret value"))))
        });
        let text = format!("{import:?}");
        assert!(text.contains("connect.sid"), "{text}");
        let imported = format!("{:?}", Imported::new(String::from("secret value")));
        assert!(!imported.contains("secret"), "{imported}");
        let config = format!("{:?}", SessionConfig::default().with_import(import));
        assert!(config.contains("connect.sid"), "{config}");
    }
}
