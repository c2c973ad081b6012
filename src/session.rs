//! [`Session<T>`]: the user's typed value with its id, timestamps and what
//! happened to it during the request.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::lifetime::session_lifetime::SessionLifetime;
use crate::rejection::Rejection;
use crate::store::StoreKey;
use crate::wire::envelope::SessionId;

/// One request's session: a typed value `T` plus what the request did to
/// it.
///
/// Get one from [`Sessions::load`](crate::Sessions::load) (or, with the
/// `axum` feature, as an extractor); give it back to
/// [`Sessions::save`](crate::Sessions::save). A `Session` is a handle:
/// clones share the same state, so the tower layer and the handler see the
/// same session.
///
/// Reading never marks the session changed; [`update`](Session::update)
/// and [`set`](Session::set) do, and `save` then compares the encoded value
/// with the one loaded, so a write that changes nothing sends no cookie.
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
/// assert!(session.is_new());
/// let visits = session.update(|n| { *n += 1; *n });
/// assert_eq!(visits, 1);
/// assert_eq!(session.get(), 1);
/// # }
/// ```
pub struct Session<T> {
    state: Arc<Mutex<State<T>>>,
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        Session {
            state: Arc::clone(&self.state),
        }
    }
}

/// What `load` found and what the request has done since.
pub(crate) struct State<T> {
    pub(crate) data: T,
    pub(crate) id: SessionId,
    pub(crate) created: u64,
    pub(crate) issued: u64,
    /// When `load` ran (unix seconds). A cookie this request writes is
    /// issued at this time, not at save time: a copy re-issued by a request
    /// that loaded before a logout is then never younger than the logout,
    /// so the revocation marker outlives it.
    pub(crate) loaded_at: u64,
    /// Came from no valid cookie in this request.
    pub(crate) new: bool,
    /// The cookie this session was opened from, if any.
    pub(crate) origin: Option<Origin>,
    /// `update` or `set` was called since the last save.
    pub(crate) changed: bool,
    /// `renew` or `destroy`: the next cookie starts a new session lifetime.
    pub(crate) restart: bool,
    /// `renew` or `destroy`: the id of `origin` must end on save (its store
    /// entry deleted, and revoked when revocation is on), whatever the
    /// request does afterwards.
    pub(crate) end_origin: bool,
    /// `destroy` was called: without a value set after it, save sends the
    /// removal cookie; with one, a brand-new session.
    pub(crate) destroyed: bool,
    /// Counts the changes a handler made (`update`, `set`, `renew`,
    /// `destroy`). A save clears the flags above only if no change came
    /// in while it did its store I/O (a clone used from another task), so
    /// such a change is saved next time rather than lost.
    pub(crate) generation: u64,
    pub(crate) rejection: Option<Rejection>,
    /// The session's own lifetime, as it will be sealed.
    pub(crate) lifetime: SessionLifetime,
    /// The schema version the value was loaded at (`None`: new).
    pub(crate) schema: Option<u32>,
    /// A candidate cookie was of a newer schema than this instance knows:
    /// saving anything over it but a logout is refused.
    pub(crate) newer_schema: Option<u32>,
    /// `origin` is such a cookie's session, whose value could not be read:
    /// a logout ends its id, and so does any write when such cookies may
    /// be replaced (`with_replace_newer_schemas`).
    pub(crate) unreadable: bool,
    /// The value was imported from another session system on this load.
    pub(crate) imported: bool,
    /// What saving an imported session still has to do (`import.rs`).
    pub(crate) import: Option<Box<crate::sessions::import::PendingImport>>,
    /// No cookie opened and every one the request carried is dead for
    /// good (the rule table in `load.rs`): a save that writes nothing else
    /// sends the removal cookie, so the browser stops sending it.
    pub(crate) dead: bool,
    /// The last plan sent only the removal of such dead cookies (nothing
    /// the handler did): the tower layer does not warn about the
    /// `public` it then drops from the handler's `Cache-Control`.
    pub(crate) dead_removed: bool,
    /// An import was given up (`import.rs`, rule 5): the empty session is
    /// written all the same, so that the next request does not import
    /// again.
    pub(crate) import_given_up: bool,
    /// Another cookie of the request, of a newer schema, when this one
    /// opened (the browser holds both, under other paths or domains): a
    /// `Set-Cookie` of this session may land on it, so a logout, and with
    /// replacing on any write, ends its id too.
    pub(crate) newer_too: Option<Box<crate::sessions::load::Unreadable>>,
    /// Another cookie of the request could not be checked for a newer
    /// schema (the store failed on it): saving anything is refused.
    pub(crate) unchecked: bool,
}

/// The cookie a session was opened from (or last saved to).
pub(crate) struct Origin {
    /// The session id the cookie carries (`renew` and `destroy` change the
    /// state's id, not this).
    pub(crate) id: SessionId,
    /// Position in the ring of the oldest key that sealed the cookie or its
    /// store entry (0: primary).
    pub(crate) key_position: usize,
    /// The store entry holding the value, if it is not in the cookie.
    pub(crate) stored: Option<StoreKey>,
    /// A buffer holding the value bytes as sealed (in version 2, the
    /// schema version and the postcard bytes)...
    pub(crate) buf: Vec<u8>,
    /// ...at this range (kept in place rather than copied out).
    pub(crate) body: std::ops::Range<usize>,
    /// The lifetime the browser's cookie carries.
    pub(crate) lifetime: SessionLifetime,
}

impl Origin {
    /// The value bytes as sealed.
    pub(crate) fn body(&self) -> &[u8] {
        &self.buf[self.body.clone()]
    }
}

impl<T> Session<T> {
    pub(crate) fn from_state(state: State<T>) -> Session<T> {
        Session {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The state; a panic in a user's closure does not make it unusable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of the value.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<String>(&http::HeaderMap::new()).await.unwrap();
    /// assert_eq!(session.get(), "");
    /// # }
    /// ```
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.lock().data.clone()
    }

    /// Reads the value without copying it; does not mark the session
    /// changed.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<Vec<String>>(&http::HeaderMap::new()).await.unwrap();
    /// assert_eq!(session.read(|items| items.len()), 0);
    /// # }
    /// ```
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock().data)
    }

    /// Changes the value in place and marks the session changed.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<Vec<String>>(&http::HeaderMap::new()).await.unwrap();
    /// session.update(|items| items.push("book".into()));
    /// assert_eq!(session.get(), ["book"]);
    /// # }
    /// ```
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut state = self.lock();
        state.changed = true;
        state.generation += 1;
        f(&mut state.data)
    }

    /// Replaces the value and marks the session changed.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u64>(&http::HeaderMap::new()).await.unwrap();
    /// session.set(7);
    /// assert_eq!(session.get(), 7);
    /// # }
    /// ```
    pub fn set(&self, value: T) {
        self.update(|data| *data = value);
    }

    /// Whether this request carried no valid session cookie (see
    /// [`rejection`](Session::rejection) for why one was refused).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// assert!(session.is_new());
    /// # }
    /// ```
    pub fn is_new(&self) -> bool {
        self.lock().new
    }

    /// Why the request's session cookie was refused, if it had one that
    /// was. With several candidate cookies of the session's name and none
    /// valid, the first one's reason.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// assert_eq!(session.rejection(), None); // no cookie at all
    /// # }
    /// ```
    pub fn rejection(&self) -> Option<Rejection> {
        self.lock().rejection
    }

    /// Whether the value was imported from another session system on
    /// this request (an [`Import`](crate::Import) registered for `T`, a
    /// request with the old system's cookie and none of ours). Such a
    /// session is also [new](Session::is_new): no cookie of ours opened.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// assert!(!session.is_imported()); // no import registered
    /// # }
    /// ```
    pub fn is_imported(&self) -> bool {
        self.lock().imported
    }

    /// Whether the value lives in the server store (it was loaded from, or
    /// last saved to, a store entry) rather than in the cookie.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// assert!(!session.in_store());
    /// # }
    /// ```
    pub fn in_store(&self) -> bool {
        let state = self.lock();
        // (A cookie of a newer schema is not loaded: its entry is not the
        // session's.)
        !state.unreadable && state.origin.as_ref().is_some_and(|o| o.stored.is_some())
    }

    /// The session's id.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// let before = session.id();
    /// session.renew();
    /// assert_ne!(session.id(), before);
    /// # }
    /// ```
    pub fn id(&self) -> SessionId {
        self.lock().id
    }

    /// Starts a new session lifetime with the same value: a new id, and on
    /// save new `created` and `issued` times. Call it when privileges
    /// change (after login) so a session id fixed before cannot follow.
    ///
    /// The absolute timeout then runs from the renewal. On save, the old
    /// id ends as `express-session`'s `regenerate()` ends it: its store
    /// entry is deleted and, with revocation on, the old id is revoked, so
    /// copies of the pre-renewal cookie stop opening (without revocation, a
    /// copy of a cookie-held session stays valid until it expires). If
    /// the store cannot record that (the marker; without revocation, the
    /// delete), or the old session was ended meanwhile by another request,
    /// the save fails and writes no cookie.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<String>(&http::HeaderMap::new()).await.unwrap();
    /// session.set("juan".into());
    /// session.renew();
    /// assert_eq!(session.get(), "juan");
    /// # }
    /// ```
    pub fn renew(&self) {
        let mut state = self.lock();
        state.id = SessionId::random();
        state.restart = true;
        state.end_origin = true;
        state.generation += 1;
    }

    /// Gives this session a lifetime of its own ("remember me"): a
    /// browser-session or persistent cookie, and its own idle and absolute
    /// timeouts within the configured bounds
    /// ([`SessionConfig::with_max_idle_timeout`](crate::SessionConfig::with_max_idle_timeout)).
    /// The choice is sealed into the cookie (wire format version 2),
    /// capped by the bounds when it is saved (a timeout over its bound is
    /// logged at `warn` the first time, once per process and bound, with
    /// the value asked for, the bound and the setting that raises it:
    /// [`with_max_idle_timeout`](crate::SessionConfig::with_max_idle_timeout),
    /// [`with_max_absolute_timeout`](crate::SessionConfig::with_max_absolute_timeout)),
    /// and enforced on the server
    /// within the bounds at every load, so lowering a bound shortens
    /// existing sessions at once. Save re-issues the cookie with it; a
    /// lifetime that leaves the session already past its deadline ends the
    /// session as [`destroy`](Session::destroy) does. It survives
    /// [`renew`](Session::renew); `destroy` resets it. Copies of the
    /// cookie sealed before keep the lifetime they carry: to bind them to
    /// a shorter one, [`renew`](Session::renew) too.
    ///
    /// Usually set at login, with [`renew`](Session::renew).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use sealed_session::{Key, Keyring, SessionConfig, SessionLifetime, Sessions};
    ///
    /// const DAY: Duration = Duration::from_secs(24 * 3600);
    /// let config = SessionConfig::default().with_max_idle_timeout(Some(30 * DAY));
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), config).unwrap();
    /// let session = sessions.load::<String>(&http::HeaderMap::new()).await.unwrap();
    /// session.set("ann".into());
    /// session.renew();
    /// let remember_me = true; // the login form's checkbox
    /// session.set_lifetime(if remember_me {
    ///     SessionLifetime::persistent().with_idle_timeout(30 * DAY)
    /// } else {
    ///     SessionLifetime::browser_session()
    /// });
    /// let mut headers = http::HeaderMap::new();
    /// sessions.save(&session, &mut headers).await.unwrap();
    /// let cookie = headers[http::header::SET_COOKIE].to_str().unwrap();
    /// assert!(cookie.contains("Max-Age=604800")); // the 7-day absolute timeout comes first
    /// # }
    /// ```
    pub fn set_lifetime(&self, lifetime: SessionLifetime) {
        let mut state = self.lock();
        state.lifetime = lifetime;
        state.changed = true;
        state.generation += 1;
    }

    /// The session's own lifetime ([`SessionLifetime::configured`] unless
    /// a handler chose one).
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, SessionLifetime, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// assert!(session.lifetime().is_configured());
    /// session.set_lifetime(SessionLifetime::browser_session());
    /// assert_eq!(session.lifetime().persistent_cookie(), Some(false));
    /// # }
    /// ```
    pub fn lifetime(&self) -> SessionLifetime {
        self.lock().lifetime
    }

    /// Ends the session: the value goes back to `T::default()` and save
    /// sends a removal cookie (same name, path and domain).
    ///
    /// The end sticks, whatever the request does afterwards: on save the
    /// old session's store entry is deleted and, with revocation on, its id
    /// is revoked, before any cookie is written; if the store cannot do
    /// that, the save fails. Without revocation, a copy of a cookie-held
    /// session stays valid until it expires (see SECURITY.md). If the
    /// request sets or updates the value after `destroy`, save writes it
    /// as a brand-new session (new id, new `created`) instead of the
    /// removal, e.g. for a "you are logged out" message; the old id is
    /// ended all the same.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use sealed_session::{Key, Keyring, SessionConfig, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let session = sessions.load::<u32>(&http::HeaderMap::new()).await.unwrap();
    /// session.set(5);
    /// session.destroy();
    /// assert_eq!(session.get(), 0);
    /// # }
    /// ```
    pub fn destroy(&self)
    where
        T: Default,
    {
        let mut state = self.lock();
        state.destroy();
        state.generation += 1;
    }
}

impl<T: Default> State<T> {
    /// What [`Session::destroy`] does to the state: the id loaded ends, the
    /// value, its lifetime and schema start afresh under a new id.
    pub(crate) fn destroy(&mut self) {
        self.data = T::default();
        self.lifetime = SessionLifetime::default();
        // A value set afterwards is a new session: written at the write
        // version, whatever schema the ended one had.
        self.schema = None;
        self.id = SessionId::random();
        self.restart = true;
        self.end_origin = true;
        self.destroyed = true;
        self.changed = false;
    }
}

impl<T> fmt::Debug for Session<T> {
    /// Shows the id and flags, never the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Session")
            .field("id", &state.id)
            .field("new", &state.new)
            .field("changed", &state.changed)
            .field("destroyed", &state.destroyed)
            .field("rejection", &state.rejection)
            .field("lifetime", &state.lifetime)
            .field("schema", &state.schema)
            .finish_non_exhaustive()
    }
}
