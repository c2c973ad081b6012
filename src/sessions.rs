//! [`Sessions`]: load a session from request headers, save it onto
//! response headers.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attributes::Rendered;
use crate::config::SessionConfig;
use crate::envelope::{Body, Envelope, SessionId};
use crate::error::{ConfigError, LoadError, SaveError};
use crate::header::cookie_values;
use crate::keyring::Keyring;
use crate::rejection::Rejection;
use crate::seal;
use crate::session::{Origin, Session, State};

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
    /// fraction outside 0..=1, or a size limit too small for any session.
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
    /// # Errors
    ///
    /// None without a server store: [`LoadError`] is for store failures,
    /// which must not pass for "no session".
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
        let now = inner.config.clock.now();
        let mut buf = Vec::new();
        let mut first_rejection = None;
        for value in cookie_values(headers, &inner.config.attributes.name).take(MAX_CANDIDATES) {
            match inner.open(value, now, &mut buf) {
                Ok(state) => return Ok(Session::from_state(state)),
                Err((reason, key_id)) => {
                    tracing::debug!(
                        reason = %reason,
                        key_id = key_id.map(tracing::field::display),
                        cookie = %inner.config.attributes.name,
                        "session cookie rejected"
                    );
                    first_rejection.get_or_insert(reason);
                }
            }
        }
        Ok(Session::from_state(State {
            data: T::default(),
            id: SessionId::random(),
            created: now,
            issued: now,
            new: true,
            origin: None,
            changed: false,
            restart: false,
            destroyed: false,
            rejection: first_rejection,
        }))
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
    /// # Errors
    ///
    /// [`SaveError::TooLarge`] when the sealed cookie's name plus value
    /// would exceed the size limit, [`SaveError::Encode`] when the value
    /// cannot be encoded. Either way no `Set-Cookie` is written and the
    /// browser keeps its previous cookie.
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
        let lifetime = &inner.config.lifetime;
        let now = inner.config.clock.now();
        let mut state = session.lock();
        if state.destroyed {
            headers.append(SET_COOKIE, inner.rendered.removal.clone());
            state.destroyed = false;
            state.restart = false;
            state.origin = None;
            return Ok(());
        }
        // Reasons to write a cookie even for an unchanged value.
        let must_reissue = state.restart
            || state.origin.as_ref().is_some_and(|origin| {
                origin.key_position != 0 || lifetime.reissue_due(state.issued, now)
            });
        if !must_reissue && !state.changed {
            return Ok(());
        }
        let hint = state.origin.as_ref().map_or(64, |o| o.body.len() + 16);
        let body = postcard::to_extend(&state.data, Vec::with_capacity(hint))
            .map_err(|e| SaveError::Encode(e.to_string()))?;
        // A write that left the encoding as it was needs no cookie.
        if !must_reissue && state.origin.as_ref().is_some_and(|o| o.body() == body) {
            state.changed = false;
            return Ok(());
        }
        let created = if state.restart { now } else { state.created };
        let envelope = Envelope {
            id: state.id,
            created,
            issued: now,
            body: Body::Inline(&body),
        };
        let set_cookie = inner.seal(&envelope, body.len(), lifetime.max_age(created, now))?;
        headers.append(SET_COOKIE, set_cookie);
        state.created = created;
        state.issued = now;
        state.changed = false;
        state.restart = false;
        state.origin = Some(Origin {
            key_position: 0,
            body: 0..body.len(),
            buf: body,
        });
        Ok(())
    }
}

impl Inner {
    /// Opens one candidate value into a session state.
    fn open<T: DeserializeOwned>(
        &self,
        value: &[u8],
        now: u64,
        buf: &mut Vec<u8>,
    ) -> Result<State<T>, seal::Refused> {
        let name = &self.config.attributes.name;
        if name.len() + value.len() > self.config.size_limit {
            return Err((Rejection::TooLarge, None));
        }
        let (position, plaintext) = seal::open(&self.keyring, &self.aads, value, buf)?;
        let key = &self.keyring.keys()[position];
        let fail = |reason| (reason, Some(key.id));
        let envelope =
            Envelope::decode(&buf[plaintext.clone()]).ok_or(fail(Rejection::Incompatible))?;
        self.config
            .lifetime
            .check(envelope.created, envelope.issued, now)
            .map_err(fail)?;
        let body = match envelope.body {
            Body::Inline(body) => body,
            Body::Stored(_) => return Err(fail(Rejection::StoreNotConfigured)),
        };
        let data = match postcard::take_from_bytes::<T>(body) {
            Ok((data, [])) => data,
            _ => return Err(fail(Rejection::Incompatible)),
        };
        // The inline body is the envelope's last field and decoding used
        // every byte, so it ends where the plaintext ends.
        let body = plaintext.end - body.len()..plaintext.end;
        key.count_open();
        Ok(State {
            data,
            id: envelope.id,
            created: envelope.created,
            issued: envelope.issued,
            new: false,
            origin: Some(Origin {
                key_position: position,
                buf: std::mem::take(buf),
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
        // id, two varint timestamps, variant, varint length: at most 42.
        let mut plaintext = seal::buffer(body_len + 42);
        plaintext = postcard::to_extend(envelope, plaintext)
            .map_err(|e| SaveError::Encode(e.to_string()))?;
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
            write!(cookie, "{MAX_AGE}{max_age}").expect("writing to a String cannot fail");
        }
        debug_assert_eq!(cookie.len(), cookie.capacity());
        HeaderValue::try_from(cookie).map_err(|e| SaveError::Encode(e.to_string()))
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
