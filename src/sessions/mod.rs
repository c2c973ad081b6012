//! [`Sessions`]: load a session from request headers, save it onto
//! response headers.
//!
//! The heart of a request: `load` finds and opens the cookie (and its store
//! entry), `save` decides what to write and writes it, `import` turns
//! another session system's cookie into a first session, `inspect` tells
//! an operator what a cookie holds. The state both share, `Inner`, lives here
//! in the parent, so the children use it and never each other.
//!
//! Uses every lower part: [`crypto`](crate::crypto) (the key ring),
//! [`wire`](crate::wire) (headers, sealing, the envelope),
//! [`lifetime`](crate::lifetime), [`schema`](crate::schema) and
//! [`store`](crate::store), plus the shared types. Used by
//! [`middleware`](crate::middleware) and by applications directly.

pub(crate) mod import;
pub(crate) mod inspect;
pub(crate) mod limiter;
pub(crate) mod load;
pub(crate) mod rejection_log;
mod save;
mod save_check;

use std::fmt;
use std::sync::Arc;

use http::HeaderMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::SessionConfig;
use crate::crypto::keyring::Keyring;
use crate::error::{ConfigError, LoadError, SaveError};
use crate::sessions::import::send_removal;
use crate::sessions::load::{Opened, Refusals};
use crate::wire::attributes::Rendered;
use crate::wire::header::cookie_values;
// `inspect` reads an opened cookie's body.
use crate::session::Session;
pub(crate) use crate::sessions::load::OpenedBody;
use crate::sessions::save::{End, Next, Plan};
use crate::store::StoreMode;
use crate::store::breaker::Guarded;
use crate::wire::seal;

/// The most values of the session cookie's name that one request may make
/// us try to open; further ones are ignored. Each try can cost an AEAD
/// open, so a request cannot buy unbounded work.
pub const MAX_CANDIDATES: usize = 4;

/// Loads and saves sessions for one cookie name, key ring and
/// configuration. Cheap to clone (shared inside), `Send + Sync`.
///
/// Everything that does not depend on the request is done once in
/// [`Sessions::new`]: subkeys were derived when the keys joined the ring,
/// the associated data per key and the rendered cookie attributes are kept
/// here.
///
/// # Example
///
/// A whole request on plain `http` types:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
///
/// // First request: no cookie.
/// let session = sessions.load::<u32>(&http::HeaderMap::new()).await?;
/// session.update(|n| *n += 1);
/// let mut response = http::HeaderMap::new();
/// sessions.save(&session, &mut response).await?;
/// let set_cookie = response[http::header::SET_COOKIE].to_str()?;
///
/// // Next request: the browser sends the cookie back.
/// let pair = set_cookie.split(';').next().unwrap();
/// let mut request = http::HeaderMap::new();
/// request.insert(http::header::COOKIE, pair.parse()?);
/// let session = sessions.load::<u32>(&request).await?;
/// assert_eq!(session.get(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) config: SessionConfig,
    /// The cookie name and application context, as bound into every
    /// sealed value (`seal::binding`).
    pub(crate) binding: Vec<u8>,
    /// Associated data for each key of the ring, in ring order, for wire
    /// format versions 1 and 2.
    pub(crate) aads: Vec<seal::Aads>,
    pub(crate) rendered: Rendered,
    /// Rejections counted per reason; the loud ones logged, rate-limited.
    pub(crate) rejections: rejection_log::RejectionLog,
    /// The other loud events, rate-limited.
    pub(crate) warnings: limiter::Warnings,
    /// Whether the cookie name has the `__Host-` prefix: only then are
    /// dead cookies removed (`load.rs`).
    pub(crate) host_only: bool,
}

impl Sessions {
    /// Validates `config` and prepares everything that does not depend on
    /// the request.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for cookie attributes a browser would refuse
    /// (`__Host-` without `Secure`, with `Domain` or `Path` other than `/`;
    /// `__Secure-` without `Secure`; `SameSite=None` or `Partitioned`
    /// without `Secure`; an invalid name, path or domain), a rolling
    /// fraction outside 0..=1, a size limit too small for any session, or
    /// server mode or revocation without a store.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    ///
    /// // Keep a handle on the ring to read its counters.
    /// let ring = Arc::new(Keyring::new(Key::generate()));
    /// let sessions = Sessions::new(Arc::clone(&ring), SessionConfig::default())?;
    /// assert_eq!(sessions.keyring().primary_id(), ring.primary_id());
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn new(
        keyring: impl Into<Arc<Keyring>>,
        config: SessionConfig,
    ) -> Result<Sessions, ConfigError> {
        let keyring = keyring.into();
        let mut config = config;
        if let (Some(store), Some(breaker)) = (&config.store, config.circuit_breaker)
            && store.fails_as_one()
        {
            config.store = Some(Arc::new(Guarded::wrap(Arc::clone(store), breaker)));
        }
        config.attributes.validate()?;
        if !(0.0..=1.0).contains(&config.lifetime.rolling) {
            return Err(ConfigError::InvalidRolling);
        }
        let lifetime = &config.lifetime;
        let bounds = [lifetime.max_idle, lifetime.max_absolute];
        if lifetime.idle == Some(0)
            || lifetime.absolute == Some(0)
            || bounds.contains(&Some(Some(0)))
        {
            return Err(ConfigError::TimeoutTooShort);
        }
        let max_secs = lifetime.longest_timeout();
        // Both off is longer still: the session never ends on the server.
        let both_off = lifetime.idle.is_none() && lifetime.absolute.is_none();
        if config.revocation
            && (both_off
                || [lifetime.idle, lifetime.absolute]
                    .iter()
                    .any(|t| t.is_some_and(|t| t > max_secs)))
        {
            return Err(ConfigError::TimeoutTooLong { max_secs });
        }
        config.schemas.check()?;
        config.imports.check(&config.attributes.name)?;
        if config.store.is_none() {
            if config.store_mode == StoreMode::Server {
                return Err(ConfigError::StoreRequired {
                    feature: "server mode",
                });
            }
            if config.revocation {
                return Err(ConfigError::StoreRequired {
                    feature: "revocation",
                });
            }
        }
        let name = &config.attributes.name;
        // An envelope: 16-byte id, two 5-byte varints, then an empty
        // inline value (variant and length bytes) or, with a store, a
        // pointer (variant and a 32-byte store key).
        // Room for version 2 too: a lifetime of the session's own (a code
        // and two varint timeouts) and a schema version.
        let body = if config.store.is_some() { 1 + 32 } else { 2 };
        let version_2 = 1 + 10 + 10 + 5;
        let minimum =
            name.len() + seal::encoded_len(seal::OVERHEAD + 16 + 5 + 5 + version_2 + body);
        if config.size_limit < minimum {
            return Err(ConfigError::SizeLimitTooSmall { minimum });
        }
        warn_about(&config);
        let binding = seal::binding(name, &config.context);
        let aads = keyring
            .keys()
            .iter()
            .map(|key| seal::associated_data_both(key.id, &binding))
            .collect();
        let rendered = config.attributes.render();
        // Exactly `__Host-`, not any case as `validate` checks it: browsers
        // from before RFC 6265bis made prefixes case-insensitive treat
        // `__host-` as an ordinary name, which a sibling subdomain may set,
        // so only the exact spelling guarantees the cookie a removal must
        // reach (docs/reference.md, removal rules).
        let host_only = config.attributes.name.starts_with("__Host-");
        Ok(Sessions {
            inner: Arc::new(Inner {
                keyring,
                config,
                binding,
                aads,
                rendered,
                rejections: Default::default(),
                warnings: Default::default(),
                host_only,
            }),
        })
    }

    /// The key ring, for its per-key counters.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
    /// for key in sessions.keyring().stats() {
    ///     println!("key {} opens {}", key.id, key.opens);
    /// }
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// Opens a cookie value without using it (no lifetime check, no
    /// counters, no store): for [`Sessions::inspect`].
    pub(crate) fn unseal(&self, value: &[u8]) -> Result<Opened, seal::Refused> {
        self.inner.unseal(value, &mut Vec::new())
    }

    /// The configuration.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
    /// assert_eq!(sessions.config().cookie_name(), "__Host-session");
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Opens per schema version of each session type with a registered
    /// [`Schema`](crate::Schema), and cookies refused as newer than this
    /// instance knows: how an operator sees an old version drain before
    /// dropping its migration.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, Keyring, Schema, SessionConfig, Sessions};
    /// let config = SessionConfig::default().with_schema(Schema::<u32>::new(1));
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), config)?;
    /// assert_eq!(sessions.schema_stats()[0].opens, vec![(1, 0)]);
    /// # Ok::<(), sealed_session::ConfigError>(())
    /// ```
    pub fn schema_stats(&self) -> Vec<crate::SchemaStats> {
        self.inner.config.schemas.stats()
    }

    /// Loads the session from a request's headers.
    ///
    /// Every `Cookie` header is read; among the values with the session's
    /// cookie name (at most [`MAX_CANDIDATES`]), the first that opens wins.
    /// A value that is not a valid, current, authentic session for this
    /// name and key ring never fails the load: the result is a new session
    /// holding `T::default()`, [`Session::rejection`] says why, and a
    /// `tracing` event at `debug` level records the reason and key id.
    /// Values over the size limit are refused before any decoding.
    ///
    /// A cookie that points at a server-store entry loads it; with
    /// revocation on, the session id is checked against the store's
    /// revocation list.
    ///
    /// # Errors
    ///
    /// [`LoadError::Store`] when the store must be asked and fails: a store
    /// that is down must not pass for "no session", or saving that empty
    /// session would overwrite the user's data. Without a store, loading
    /// cannot fail.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    ///
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert(http::header::COOKIE, "theme=dark".parse().unwrap());
    /// let session = sessions.load::<String>(&headers).await.unwrap();
    /// assert!(session.is_new());
    /// # }
    /// ```
    pub async fn load<T>(&self, headers: &HeaderMap) -> Result<Session<T>, LoadError>
    where
        T: DeserializeOwned + Default + 'static,
    {
        let inner = &*self.inner;
        // Moving over from another session system: only while the
        // browser has no cookie of ours (`import.rs`).
        if let Some(import) = inner.config.imports.of::<T>() {
            if cookie_values(headers, &inner.config.attributes.name)
                .next()
                .is_none()
            {
                return inner.import(import, headers).await;
            }
        }
        if inner.config.store.is_none() {
            return Ok(self.load_now(headers));
        }
        let now = inner.config.clock.now();
        let mut buf = Vec::new();
        let mut refusals = Refusals::default();
        let mut all = cookie_values(headers, &inner.config.attributes.name);
        let mut values = all.by_ref().take(MAX_CANDIDATES);
        while let Some(value) = values.next() {
            let opened = match inner.open_cookie(value, now, &mut buf) {
                Ok(opened) => inner
                    .resolve(opened, now, true)
                    .await
                    .map_err(LoadError::Store)?,
                Err(failed) => Err(failed),
            };
            match opened {
                Ok(mut state) => {
                    // The browser holds more than one: a cookie of a newer
                    // schema among the others, before or after this one, is
                    // protected (its Set-Cookie may land on it). The others
                    // are opened only when there are others.
                    let mut later = Vec::new();
                    for value in values {
                        // A store failure here does not fail the read of
                        // the session that opened, but that cookie may be
                        // of a newer schema: no save until it can tell.
                        let refused = match inner.open_cookie(value, now, &mut buf) {
                            Ok(opened) => match inner.resolve::<T>(opened, now, false).await {
                                Ok(resolved) => resolved.err(),
                                Err(_) => {
                                    state.unchecked = true;
                                    None
                                }
                            },
                            Err(failed) => Some(failed),
                        };
                        later.extend(refused);
                    }
                    inner.opened_among(&mut state, refusals, later);
                    return Ok(Session::from_state(state));
                }
                Err(refused) => inner.rejected(refused, &mut refusals),
            }
        }
        inner.not_all_seen(all.next().is_some(), &mut refusals);
        Ok(inner.fresh(now, refusals))
    }

    /// [`Sessions::load`] without a store: nothing to wait for, so it is
    /// done here and now (the tower layer calls it directly, with no
    /// future to allocate). With a store configured it must not be used:
    /// it would treat a store-held cookie as `StoreNotConfigured`.
    pub(crate) fn load_now<T>(&self, headers: &HeaderMap) -> Session<T>
    where
        T: DeserializeOwned + Default + 'static,
    {
        let inner = &*self.inner;
        debug_assert!(inner.config.store.is_none());
        let now = inner.config.clock.now();
        let mut buf = Vec::new();
        let mut refusals = Refusals::default();
        let mut all = cookie_values(headers, &inner.config.attributes.name);
        let mut values = all.by_ref().take(MAX_CANDIDATES);
        let mut open = |value, count| {
            inner
                .open_cookie(value, now, &mut buf)
                .and_then(|opened| inner.decode::<T>(opened, None, now, count))
        };
        while let Some(value) = values.next() {
            match open(value, true) {
                Ok(mut state) => {
                    // As in `load`: the others, when there are others.
                    let later = values.filter_map(|v| open(v, false).err());
                    inner.opened_among(&mut state, refusals, later);
                    return Session::from_state(state);
                }
                Err(refused) => inner.rejected(refused, &mut refusals),
            }
        }
        inner.not_all_seen(all.next().is_some(), &mut refusals);
        inner.fresh(now, refusals)
    }

    /// Whether the tower layer logs its shared-cache `warn` now: `Some`
    /// (the events left out since the last one logged) at most once per
    /// [`REJECTION_WARN_INTERVAL`](crate::REJECTION_WARN_INTERVAL): a
    /// handler's `public` on every response that sets the session cookie
    /// would otherwise log one per request (the layer does not ask for a
    /// response whose only cookie removes a client's dead one).
    #[cfg(feature = "tower")]
    pub(crate) fn admit_shared_cache_warn(&self) -> Option<u64> {
        let now = self.inner.config.clock.now();
        self.inner.warnings.shared_cache.admit(now)
    }

    /// Whether a store is configured: without one, [`Sessions::load_now`]
    /// and [`Sessions::save_now`] do the whole work.
    #[cfg(feature = "tower")]
    pub(crate) fn has_store(&self) -> bool {
        self.inner.config.store.is_some()
    }

    /// Writes what the request did to the session onto the response
    /// headers, as at most one `Set-Cookie`.
    ///
    /// A cookie is written only when needed: the value changed (its
    /// encoding differs from the one loaded), the session was renewed, the
    /// cookie was opened under an older key (re-sealed under the primary),
    /// or the rolling threshold passed. A destroyed session gets a removal
    /// cookie. A new session nobody touched gets nothing.
    ///
    /// With a store: a value whose sealed cookie would exceed the size limit
    /// (or every value, in [`StoreMode::Server`]) goes to the store, sealed
    /// with the store subkey, with a time to live equal to the session's
    /// remaining lifetime, and the cookie holds only a sealed pointer. A
    /// session keeps its store entry while it stays there (a changed value
    /// replaces it, only if it is still there, and the cookie need not
    /// change); it gets a new entry when it moves to the store and on
    /// [`Session::renew`]; the old entry is deleted when the value moves
    /// back into the cookie, on renew and on destroy. With revocation on,
    /// destroy and renew also record the old session id for as long as
    /// any copy of its cookie could open. The rules and their order are
    /// listed at the top of `src/sessions/save.rs`.
    ///
    /// # Errors
    ///
    /// [`SaveError::TooLarge`] when the sealed cookie's name plus value
    /// would exceed the size limit and no store is configured (except for
    /// a session imported on this request: the import is then given up
    /// and a new, empty session saved instead, with a `warn`; see
    /// [`Import`](crate::Import)),
    /// [`SaveError::Encode`] when the value cannot be encoded,
    /// [`SaveError::Store`] when the store fails, [`SaveError::Ended`]
    /// when the session was ended by another request while this one ran
    /// (or the request ran past the session's deadline). In each case no
    /// `Set-Cookie` is written and the browser keeps its previous cookie.
    /// On destroy and renew, the old id is ended (marker, then entry)
    /// before any cookie is written: a store failure there is a
    /// [`SaveError::Store`]; once the marker is written, a failure to
    /// delete the entry is only logged (at `warn`: every copy is already
    /// refused, and the entry expires with its time to live).
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
    /// let mut headers = http::HeaderMap::new();
    /// sessions.save(&session, &mut headers).await.unwrap();
    /// assert!(headers.is_empty()); // untouched new session
    /// session.set(1);
    /// sessions.save(&session, &mut headers).await.unwrap();
    /// assert!(headers[http::header::SET_COOKIE].to_str().unwrap().starts_with("__Host-session="));
    /// # }
    /// ```
    pub async fn save<T>(
        &self,
        session: &Session<T>,
        headers: &mut HeaderMap,
    ) -> Result<(), SaveError>
    where
        T: Serialize + DeserializeOwned + Default + 'static,
    {
        let inner = &*self.inner;
        if inner.config.store.is_none() && !self.import_pending(session) {
            return self.save_now(session, headers);
        }
        let now = inner.config.clock.now();
        // Decide under the lock, do the store I/O without it, then record
        // (the rules and their order: `save.rs`).
        let planned = inner.plan(&mut session.lock(), now);
        let Plan {
            end,
            next,
            generation,
            also,
        } = match planned {
            // An imported value that cannot load back: the import is given
            // up for this browser rather than fail every request
            // (`import.rs`, rule 6).
            Err(error @ SaveError::Unloadable { .. }) => {
                let Some(old_cookie) = inner.abandon_unloadable_import(session, &error) else {
                    return Err(error);
                };
                match Box::pin(self.save(session, headers)).await {
                    Ok(()) => {}
                    // `T::default()` does not load back either: only the
                    // old cookie's removal.
                    Err(SaveError::Unloadable { .. }) => {}
                    Err(error) => return Err(error),
                }
                send_removal(headers, old_cookie);
                return Ok(());
            }
            planned => planned?,
        };
        match next {
            Next::Keep => Ok(()),
            Next::Remove => {
                for end in end.iter().chain(also.as_deref()) {
                    inner.end(end, false).await?;
                }
                let old_cookie = inner.complete_import(session).await?;
                inner.removed(session, headers, generation);
                send_removal(headers, old_cookie);
                Ok(())
            }
            Next::Write(write) => {
                if inner.ended_meanwhile(&write).await? {
                    return Ok(());
                }
                let written = match inner.write(&write, now).await {
                    Ok(Some(written)) => written,
                    Ok(None) => return Ok(()),
                    // An imported value that does not fit the cookie, with
                    // no store: the import is given up for this browser
                    // rather than fail every request (`import.rs`, rule 5).
                    Err(SaveError::TooLarge { size, limit }) if inner.config.store.is_none() => {
                        let Some(old_cookie) = inner.abandon_import(session, size, limit) else {
                            return Err(SaveError::TooLarge { size, limit });
                        };
                        self.save_now(session, headers)?;
                        send_removal(headers, old_cookie);
                        return Ok(());
                    }
                    Err(error) => return Err(error),
                };
                // A value moving back into its cookie whose entry another
                // request took meanwhile ends nothing (rule 3).
                let ends = end.iter().chain(also.as_deref());
                if ends.clone().any(End::needs_store) && !inner.can_take(&write, &written).await? {
                    return Ok(());
                }
                for end in ends {
                    if let Err(error) = inner.end(end, true).await {
                        inner.undo(&written).await;
                        return Err(error);
                    }
                }
                // A value moving back into its cookie leaves its entry
                // only now: a failure above left it for the browser's
                // pointer.
                if !inner.take_moved(&write, &written, now).await? {
                    return Ok(());
                }
                let old_cookie = match inner.complete_import(session).await {
                    Ok(old_cookie) => old_cookie,
                    Err(error) => {
                        inner.undo(&written).await;
                        return Err(error);
                    }
                };
                inner.written(session, headers, write, written, generation);
                send_removal(headers, old_cookie);
                Ok(())
            }
        }
    }

    /// [`Sessions::save`] without a store: sealing only, done here and now.
    /// With a store configured it must not be used (no fallback to the
    /// store, no revocation marker).
    pub(crate) fn save_now<T>(
        &self,
        session: &Session<T>,
        headers: &mut HeaderMap,
    ) -> Result<(), SaveError>
    where
        T: Serialize + DeserializeOwned + Default + 'static,
    {
        let inner = &*self.inner;
        debug_assert!(inner.config.store.is_none());
        let now = inner.config.clock.now();
        let Plan {
            end,
            next,
            generation,
            also,
        } = inner.plan(&mut session.lock(), now)?;
        // Ending an id needs the store only for a marker or an entry, and
        // neither exists without one: a typed error rather than a panic.
        if end.iter().chain(also.as_deref()).any(End::needs_store) {
            return inner.store().map(drop);
        }
        match next {
            Next::Keep => Ok(()),
            Next::Remove => {
                inner.removed(session, headers, generation);
                Ok(())
            }
            Next::Write(write) => {
                let written = inner.write_cookie(&write, now)?;
                inner.written(session, headers, write, written, generation);
                Ok(())
            }
        }
    }
}

/// Settings that are valid but weaken what the library promises: logged
/// once, at `warn`, when a [`Sessions`] is built (not per request).
fn warn_about(config: &SessionConfig) {
    if !config.attributes.secure {
        tracing::warn!(
            cookie = %config.attributes.name,
            "session cookie without Secure: browsers send it over plain HTTP, where anyone on the path can copy it; use this for local testing only"
        );
    }
    if config.lifetime.idle.is_none() && config.lifetime.absolute.is_none() {
        tracing::warn!(
            cookie = %config.attributes.name,
            "sessions with neither an idle nor an absolute timeout never expire on the server: a copied cookie opens forever (revocation is refused in this configuration: no marker could outlive such a copy)"
        );
    }
    if config.store.is_none() {
        for old_cookie in config.imports.old_cookies() {
            tracing::warn!(
                old_cookie,
                "import registered without a store: an old session too large for the cookie cannot be moved over (its browser starts a new session); configure a store for the cut-over"
            );
        }
    }
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("keyring", &self.inner.keyring)
            .field("config", &self.inner.config)
            .finish()
    }
}
