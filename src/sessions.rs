//! [`Sessions`]: load a session from request headers, save it onto
//! response headers.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attributes::Rendered;
use crate::config::SessionConfig;
use crate::envelope::{self, Body, Envelope, SessionId, StoreRef};
use crate::error::{ConfigError, LoadError, SaveError};
use crate::header::cookie_values;
use crate::keyring::Keyring;
use crate::rejection::Rejection;
use crate::seal;
use crate::session::{Origin, Session, State};
use crate::store::{SessionStore, StoreError, StoreKey, StoreMode};

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

struct Inner {
    keyring: Arc<Keyring>,
    config: SessionConfig,
    /// Associated data for each key of the ring, in ring order.
    aads: Vec<Vec<u8>>,
    rendered: Rendered,
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
        config.attributes.validate()?;
        if !(0.0..=1.0).contains(&config.lifetime.rolling) {
            return Err(ConfigError::InvalidRolling);
        }
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
        // An empty value in an envelope: 16-byte id, two 5-byte varints,
        // variant and length bytes.
        let minimum = name.len() + seal::encoded_len(seal::OVERHEAD + 16 + 5 + 5 + 2);
        if config.size_limit < minimum {
            return Err(ConfigError::SizeLimitTooSmall { minimum });
        }
        let aads = keyring
            .keys()
            .iter()
            .map(|key| seal::associated_data(key.id, name))
            .collect();
        let rendered = config.attributes.render();
        Ok(Sessions {
            inner: Arc::new(Inner {
                keyring,
                config,
                aads,
                rendered,
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
        T: DeserializeOwned + Default,
    {
        let inner = &*self.inner;
        if inner.config.store.is_none() {
            return Ok(self.load_now(headers));
        }
        let now = inner.config.clock.now();
        let mut buf = Vec::new();
        let mut first_rejection = None;
        for value in cookie_values(headers, &inner.config.attributes.name).take(MAX_CANDIDATES) {
            let opened = match inner.open_cookie(value, now, &mut buf) {
                Ok(opened) => inner.resolve(opened).await.map_err(LoadError::Store)?,
                Err(refused) => Err(refused),
            };
            match opened {
                Ok(state) => return Ok(Session::from_state(state)),
                Err(refused) => inner.rejected(refused, &mut first_rejection),
            }
        }
        Ok(inner.fresh(now, first_rejection))
    }

    /// [`Sessions::load`] without a store: nothing to wait for, so it is
    /// done here and now (the tower layer calls it directly, with no
    /// future to allocate). With a store configured it must not be used:
    /// it would treat a store-held cookie as `StoreNotConfigured`.
    pub(crate) fn load_now<T>(&self, headers: &HeaderMap) -> Session<T>
    where
        T: DeserializeOwned + Default,
    {
        let inner = &*self.inner;
        debug_assert!(inner.config.store.is_none());
        let now = inner.config.clock.now();
        let mut buf = Vec::new();
        let mut first_rejection = None;
        for value in cookie_values(headers, &inner.config.attributes.name).take(MAX_CANDIDATES) {
            let opened = inner
                .open_cookie(value, now, &mut buf)
                .and_then(|opened| inner.decode(opened, None));
            match opened {
                Ok(state) => return Session::from_state(state),
                Err(refused) => inner.rejected(refused, &mut first_rejection),
            }
        }
        inner.fresh(now, first_rejection)
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
    /// overwrites it, and the cookie need not change); it gets a new entry
    /// when it moves to the store and on [`Session::renew`]; the old entry
    /// is deleted when the value moves back into the cookie, on renew and
    /// on destroy. With revocation on, destroy also records the session id
    /// until the session would have expired.
    ///
    /// # Errors
    ///
    /// [`SaveError::TooLarge`] when the sealed cookie's name plus value
    /// would exceed the size limit and no store is configured,
    /// [`SaveError::Encode`] when the value cannot be encoded,
    /// [`SaveError::Store`] when the store fails. In each case no
    /// `Set-Cookie` is written and the browser keeps its previous cookie.
    /// On destroy, a store-held session's entry (and, with revocation, the
    /// marker) must be written before the removal cookie is: a store
    /// failure there is a [`SaveError::Store`]. After a move back into the
    /// cookie or a renew, a failure to delete the old entry is only logged
    /// (at `warn`): the entry expires with its time to live.
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
        T: Serialize,
    {
        let inner = &*self.inner;
        if inner.config.store.is_none() {
            return self.save_now(session, headers);
        }
        let now = inner.config.clock.now();
        // Decide under the lock, do the store I/O without it, then record.
        let plan = inner.plan(&mut session.lock(), now)?;
        match plan {
            Plan::Nothing => Ok(()),
            Plan::Remove { stored, revoke } => {
                // Both must hold before the browser is told the session is
                // over: copies of the cookie must not open it afterwards.
                if let Some((marker, ttl)) = revoke {
                    let store = inner.store()?;
                    store
                        .save(&marker, &[], ttl)
                        .await
                        .map_err(SaveError::Store)?;
                }
                if let Some(key) = stored {
                    inner
                        .store()?
                        .delete(&key)
                        .await
                        .map_err(SaveError::Store)?;
                }
                inner.removed(session, headers);
                Ok(())
            }
            Plan::Write(write) => {
                let written = inner.write(&write, now).await?;
                if write.old_stored.is_some() && write.old_stored != written.stored {
                    inner.forget(write.old_stored).await;
                }
                inner.written(session, headers, write, written);
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
        T: Serialize,
    {
        let inner = &*self.inner;
        debug_assert!(inner.config.store.is_none());
        let now = inner.config.clock.now();
        let plan = inner.plan(&mut session.lock(), now)?;
        match plan {
            Plan::Nothing => Ok(()),
            // A session loaded without a store has no entry and no
            // revocation marker to write.
            Plan::Remove {
                stored: None,
                revoke: None,
            } => {
                inner.removed(session, headers);
                Ok(())
            }
            // Not reachable (a store-held session cannot be loaded, nor
            // revocation configured, without a store): a typed error
            // rather than a panic.
            Plan::Remove { .. } => inner.store().map(drop),
            Plan::Write(write) => {
                let written = inner.write_cookie(&write, now)?;
                inner.written(session, headers, write, written);
                Ok(())
            }
        }
    }
}

/// What `save` has to do, decided under the session's lock.
enum Plan {
    Nothing,
    /// Send the removal cookie; delete the entry; record the revocation.
    Remove {
        stored: Option<StoreKey>,
        revoke: Option<(StoreKey, Duration)>,
    },
    Write(Write),
}

/// A session to seal, copied out of its state.
struct Write {
    id: SessionId,
    created: u64,
    /// `issued` of the cookie loaded; it stays when the cookie is not
    /// written again.
    old_issued: u64,
    /// The cookie must be sealed again even if nothing else changes.
    must_reissue: bool,
    /// The postcard bytes of the value.
    body: Vec<u8>,
    /// The store entry the session had.
    old_stored: Option<StoreKey>,
    /// The session keeps `old_stored` if it stays in the store.
    keep_store_key: bool,
}

impl Write {
    /// The envelope of a cookie for this session sealed `now`.
    fn envelope<'a>(&self, now: u64, body: Body<'a>) -> Envelope<'a> {
        Envelope {
            id: self.id,
            created: self.created,
            issued: now,
            body,
        }
    }
}

/// What `write` did.
struct Written {
    /// The cookie to send, if it changed.
    set_cookie: Option<HeaderValue>,
    /// The store entry now holding the value.
    stored: Option<StoreKey>,
    /// `issued` of the cookie the browser now has.
    issued: u64,
}

impl Inner {
    /// A new session holding `T::default()`, after no cookie opened.
    fn fresh<T: Default>(&self, now: u64, rejection: Option<Rejection>) -> Session<T> {
        Session::from_state(State {
            data: T::default(),
            id: SessionId::random(),
            created: now,
            issued: now,
            new: true,
            origin: None,
            changed: false,
            restart: false,
            destroyed: false,
            rejection,
        })
    }

    /// Records a cookie that did not open: a `debug` event, and the first
    /// reason for [`Session::rejection`].
    fn rejected(&self, (reason, key_id): seal::Refused, first: &mut Option<Rejection>) {
        tracing::debug!(
            reason = %reason,
            key_id = key_id.map(tracing::field::display),
            cookie = %self.config.attributes.name,
            "session cookie rejected"
        );
        first.get_or_insert(reason);
    }

    /// Sends the removal cookie of a destroyed session (its store entry
    /// and marker, if any, are already taken care of).
    fn removed<T>(&self, session: &Session<T>, headers: &mut HeaderMap) {
        headers.append(SET_COOKIE, self.rendered.removal.clone());
        let mut state = session.lock();
        state.destroyed = false;
        state.restart = false;
        state.origin = None;
    }

    /// Sends the cookie `write` produced, if any, and records what the
    /// browser now holds.
    fn written<T>(
        &self,
        session: &Session<T>,
        headers: &mut HeaderMap,
        write: Write,
        written: Written,
    ) {
        if let Some(set_cookie) = written.set_cookie {
            headers.append(SET_COOKIE, set_cookie);
        }
        let mut state = session.lock();
        state.created = write.created;
        state.issued = written.issued;
        state.changed = false;
        state.restart = false;
        state.origin = Some(Origin {
            id: write.id,
            key_position: 0,
            stored: written.stored,
            body: 0..write.body.len(),
            buf: write.body,
        });
    }

    fn store(&self) -> Result<&dyn SessionStore, SaveError> {
        // `Sessions::new` refuses what would need a missing store, and a
        // store-held session can only be loaded with a store.
        self.config
            .store
            .as_deref()
            .ok_or(SaveError::Store(StoreError::Unavailable(
                "no store configured".into(),
            )))
    }

    /// Decides what `save` must do.
    fn plan<T: Serialize>(&self, state: &mut State<T>, now: u64) -> Result<Plan, SaveError> {
        let lifetime = &self.config.lifetime;
        let old_stored = state.origin.as_ref().and_then(|o| o.stored);
        if state.destroyed {
            let revoke = match &state.origin {
                Some(origin) if self.config.revocation => Some((
                    StoreKey::revocation(&self.config.attributes.name, &origin.id),
                    lifetime.store_ttl(state.created, state.issued, now),
                )),
                _ => None,
            };
            return Ok(Plan::Remove {
                stored: old_stored,
                revoke,
            });
        }
        // Reasons to write even an unchanged value.
        let must_reissue = state.restart
            || state.origin.as_ref().is_some_and(|origin| {
                origin.key_position != 0 || lifetime.reissue_due(state.issued, now)
            });
        if !must_reissue && !state.changed {
            return Ok(Plan::Nothing);
        }
        let hint = state.origin.as_ref().map_or(64, |o| o.body.len() + 16);
        let body = postcard::to_extend(&state.data, Vec::with_capacity(hint))
            .map_err(|e| SaveError::Encode(e.to_string()))?;
        // A write that left the encoding as it was needs nothing.
        if !must_reissue && state.origin.as_ref().is_some_and(|o| o.body() == body) {
            state.changed = false;
            return Ok(Plan::Nothing);
        }
        Ok(Plan::Write(Write {
            id: state.id,
            created: if state.restart { now } else { state.created },
            old_issued: state.issued,
            must_reissue,
            body,
            old_stored,
            keep_store_key: !state.restart,
        }))
    }

    /// Seals a session into the cookie, or into the store with a pointer in
    /// the cookie. A cookie written is issued `now`; a store-held session
    /// whose cookie is not due keeps its cookie (and its `issued`).
    async fn write(&self, write: &Write, now: u64) -> Result<Written, SaveError> {
        let lifetime = &self.config.lifetime;
        if self.config.store_mode == StoreMode::Cookie {
            match self.write_cookie(write, now) {
                Err(SaveError::TooLarge { .. }) if self.config.store.is_some() => {}
                done => return done,
            }
        }
        let store = self.store()?;
        let key = match write.old_stored {
            Some(old) if write.keep_store_key => old,
            _ => StoreKey::random(),
        };
        let primary = self.keyring.primary();
        let aad = seal::store_associated_data(primary.id, &key, &self.config.attributes.name);
        let mut plaintext = seal::buffer(write.body.len());
        plaintext.extend_from_slice(&write.body);
        let entry = seal::seal_raw(primary, seal::Purpose::Store, &aad, plaintext);
        let cookie_stays = write.old_stored == Some(key) && !write.must_reissue;
        let issued = if cookie_stays { write.old_issued } else { now };
        let ttl = lifetime.store_ttl(write.created, issued, now);
        store
            .save(&key, &entry, ttl)
            .await
            .map_err(SaveError::Store)?;
        let set_cookie = if cookie_stays {
            None
        } else {
            let pointer = write.envelope(
                now,
                Body::Stored(StoreRef {
                    id: *key.as_bytes(),
                }),
            );
            Some(self.seal(&pointer, 0, lifetime.max_age(write.created, now))?)
        };
        Ok(Written {
            set_cookie,
            stored: Some(key),
            issued,
        })
    }

    /// Seals a session whole into its cookie, issued `now`.
    fn write_cookie(&self, write: &Write, now: u64) -> Result<Written, SaveError> {
        let max_age = self.config.lifetime.max_age(write.created, now);
        let inline = write.envelope(now, Body::Inline(&write.body));
        Ok(Written {
            set_cookie: Some(self.seal(&inline, write.body.len(), max_age)?),
            stored: None,
            issued: now,
        })
    }

    /// Deletes an entry the new cookie no longer points at (after a move
    /// back into the cookie, or a renew). A failure is only logged: the
    /// entry expires with its time to live.
    async fn forget(&self, stored: Option<StoreKey>) {
        let (Some(key), Some(store)) = (stored, self.config.store.as_deref()) else {
            return;
        };
        if let Err(error) = store.delete(&key).await {
            tracing::warn!(%error, "unreferenced session store entry not deleted; it expires with its TTL");
        }
    }

    /// Opens one candidate cookie value: cryptography and lifetime only.
    fn open_cookie(
        &self,
        value: &[u8],
        now: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Opened, seal::Refused> {
        let opened = self.unseal(value, buf)?;
        self.config
            .lifetime
            .check(opened.created, opened.issued, now)
            .map_err(|reason| (reason, Some(opened.key_id)))?;
        Ok(opened)
    }

    /// Opens a cookie value into its envelope: size bound, cryptography,
    /// envelope decoding. No lifetime check (`inspect` reports it instead).
    fn unseal(&self, value: &[u8], buf: &mut Vec<u8>) -> Result<Opened, seal::Refused> {
        let name = &self.config.attributes.name;
        if name.len() + value.len() > self.config.size_limit {
            return Err((Rejection::TooLarge, None));
        }
        let (position, plaintext) = seal::open(&self.keyring, &self.aads, value, buf)?;
        let key_id = self.keyring.keys()[position].id;
        let envelope = Envelope::decode(&buf[plaintext.clone()])
            .ok_or((Rejection::Incompatible, Some(key_id)))?;
        let body = match envelope.body {
            // The inline body is the envelope's last field and decoding
            // used every byte, so it ends where the plaintext ends.
            Body::Inline(body) => OpenedBody::Inline(plaintext.end - body.len()..plaintext.end),
            Body::Stored(store_ref) => OpenedBody::Stored(StoreKey::from_bytes(store_ref.id)),
        };
        Ok(Opened {
            key_position: position,
            key_id,
            id: envelope.id,
            created: envelope.created,
            issued: envelope.issued,
            body,
            buf: std::mem::take(buf),
        })
    }

    /// Completes an opened cookie: revocation, store entry, value. The
    /// outer `Err` is a store failure; the inner one a refusal.
    async fn resolve<T: DeserializeOwned>(
        &self,
        opened: Opened,
    ) -> Result<Result<State<T>, seal::Refused>, StoreError> {
        let fail = |reason| Ok(Err((reason, Some(opened.key_id))));
        let store = self.config.store.as_deref();
        if let (true, Some(store)) = (self.config.revocation, store) {
            let marker = StoreKey::revocation(&self.config.attributes.name, &opened.id);
            if store.load(&marker).await?.is_some() {
                return fail(Rejection::Revoked);
            }
        }
        let entry = match &opened.body {
            OpenedBody::Inline(_) => None,
            &OpenedBody::Stored(key) => {
                let Some(store) = store else {
                    return fail(Rejection::StoreNotConfigured);
                };
                let Some(mut buf) = store.load(&key).await? else {
                    return fail(Rejection::MissingStoreEntry);
                };
                let name = &self.config.attributes.name;
                let opened_entry =
                    seal::open_raw(&self.keyring, seal::Purpose::Store, &mut buf, |_, id| {
                        seal::store_associated_data(id, &key, name)
                    });
                let Ok((position, body)) = opened_entry else {
                    tracing::warn!(store_key = %key, "session store entry did not authenticate");
                    return fail(Rejection::StoreEntryInvalid);
                };
                Some(Entry {
                    key,
                    position,
                    buf,
                    body,
                })
            }
        };
        Ok(self.decode(opened, entry))
    }

    /// Decodes the value, from the cookie (`entry` is `None`) or from its
    /// opened store entry, into the session's state. Without an entry, a
    /// store-held cookie is `StoreNotConfigured`.
    fn decode<T: DeserializeOwned>(
        &self,
        opened: Opened,
        entry: Option<Entry>,
    ) -> Result<State<T>, seal::Refused> {
        let (buf, body, stored, key_position) = match (entry, opened.body) {
            (Some(entry), _) => (
                entry.buf,
                entry.body,
                Some(entry.key),
                opened.key_position.max(entry.position),
            ),
            (None, OpenedBody::Inline(body)) => (opened.buf, body, None, opened.key_position),
            (None, OpenedBody::Stored(_)) => {
                return Err((Rejection::StoreNotConfigured, Some(opened.key_id)));
            }
        };
        let data = match postcard::take_from_bytes::<T>(&buf[body.clone()]) {
            Ok((data, [])) => data,
            _ => return Err((Rejection::Incompatible, Some(opened.key_id))),
        };
        self.keyring.keys()[opened.key_position].count_open();
        Ok(State {
            data,
            id: opened.id,
            created: opened.created,
            issued: opened.issued,
            new: false,
            origin: Some(Origin {
                id: opened.id,
                key_position,
                stored,
                buf,
                body,
            }),
            changed: false,
            restart: false,
            destroyed: false,
            rejection: None,
        })
    }

    /// Seals an envelope under the primary key into a whole `Set-Cookie`
    /// value, enforcing the size limit on name plus value.
    fn seal(
        &self,
        envelope: &Envelope<'_>,
        body_len: usize,
        max_age: Option<u64>,
    ) -> Result<HeaderValue, SaveError> {
        let name = &self.config.attributes.name;
        let mut plaintext = seal::buffer(body_len + envelope::MAX_OVERHEAD);
        envelope.encode_into(&mut plaintext);
        let value_len = seal::encoded_len(plaintext.len() + seal::OVERHEAD - seal::HEADER_LEN);
        let size = name.len() + value_len;
        if size > self.config.size_limit {
            return Err(SaveError::TooLarge {
                size,
                limit: self.config.size_limit,
            });
        }
        let suffix = &self.rendered.suffix;
        const MAX_AGE: &str = "; Max-Age=";
        let max_age_len = max_age.map_or(0, |n| {
            MAX_AGE.len() + n.checked_ilog10().unwrap_or(0) as usize + 1
        });
        // Exactly the final length: the header value then takes this buffer
        // as it is, with no second allocation.
        let mut cookie = String::with_capacity(size + 1 + suffix.len() + max_age_len);
        cookie.push_str(name);
        cookie.push('=');
        seal::seal_into(
            self.keyring.primary(),
            &self.aads[0],
            plaintext,
            &mut cookie,
        );
        debug_assert_eq!(cookie.len(), size + 1);
        cookie.push_str(suffix);
        if let Some(max_age) = max_age {
            cookie.push_str(MAX_AGE);
            push_decimal(&mut cookie, max_age);
        }
        debug_assert_eq!(cookie.len(), cookie.capacity());
        HeaderValue::try_from(cookie).map_err(|e| SaveError::Encode(e.to_string()))
    }
}

/// Appends `n` in decimal (what `write!` does, without the formatting
/// machinery, on every cookie written).
fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

/// A cookie that opened, before the store is asked.
pub(crate) struct Opened {
    pub(crate) key_position: usize,
    pub(crate) key_id: crate::keyring::KeyId,
    pub(crate) id: SessionId,
    pub(crate) created: u64,
    pub(crate) issued: u64,
    pub(crate) body: OpenedBody,
    /// The decoded cookie: every sealed byte (holds an inline body).
    pub(crate) buf: Vec<u8>,
}

/// A store entry that opened.
struct Entry {
    key: StoreKey,
    /// The ring position of the key that sealed it.
    position: usize,
    /// The opened entry; the value lies at `body`.
    buf: Vec<u8>,
    body: Range<usize>,
}

pub(crate) enum OpenedBody {
    /// Where the value lies in `Opened::buf`.
    Inline(Range<usize>),
    Stored(StoreKey),
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("keyring", &self.inner.keyring)
            .field("config", &self.inner.config)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::push_decimal;

    #[test]
    fn decimal_digits_are_those_of_display() {
        for n in [
            0,
            7,
            9,
            10,
            99,
            100,
            86_400,
            1 << 40,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }
}
