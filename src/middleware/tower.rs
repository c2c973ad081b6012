//! [`SessionLayer`]: loads the session before the inner service, saves it
//! after (feature `tower`).

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::SaveError;
use crate::middleware::cache_headers::mark_for_caches;
use crate::middleware::layer_types;
use crate::middleware::plain_http;
use crate::session::Session;
use crate::sessions::Sessions;

/// A tower layer that gives every request a [`Session<T>`](crate::Session)
/// in its extensions and saves it onto the response.
///
/// - Before the inner service: [`Sessions::load`]; the session goes into
///   the request's extensions (and so to the `axum` extractor).
/// - After it: [`Sessions::save`] onto the response headers.
/// - A save error is logged with `tracing` at `error` level and the
///   response is replaced by an empty one with no `Set-Cookie`, so the
///   browser keeps its previous cookie: `503 Service Unavailable` when the
///   server store failed, `409 Conflict` when another request ended the
///   session while this one ran ([`SaveError::Ended`]), `500 Internal
///   Server Error` otherwise (a session too large for its cookie with no
///   store configured).
/// - A load error (a server store that is down) answers an empty
///   `503 Service Unavailable` without calling the inner service.
/// - Without a store, loading and saving never wait: the session is loaded
///   in `call` and saved when the inner future completes, inside
///   [`ResponseFuture`], with no future allocated by the layer. With a
///   store, the whole request runs in one boxed future.
///
/// # Caches
///
/// A response that depends on the session must not be served by a shared
/// cache (a proxy, a CDN) to anyone else. After a successful save the
/// layer marks the response, as Django (`Vary: Cookie`) and Rails
/// (`Cache-Control: private`) do:
///
/// 1. **`Vary: Cookie`** when the request carried a cookie of the
///    session's name (valid or not), or the save wrote a `Set-Cookie`.
///    `Cookie` is added to the handler's own `Vary` (its lines are merged
///    into one); nothing is added when the `Vary` already names `Cookie`
///    (any case) or is `*`.
/// 2. **`Cache-Control: private`** when the save wrote a `Set-Cookie` (a
///    new, changed, re-issued or removal cookie), so that no shared cache
///    stores the cookie or the page it came with:
///    - no `Cache-Control` from the handler: `private`;
///    - the handler's has `no-store`, or a plain `private` (not
///      `private="..."`) and neither `public` nor `s-maxage`: kept as it
///      is;
///    - otherwise (`max-age=60`, `no-cache`, `public`, ...): its lines are
///      merged into one, `public`, `s-maxage` and a field-qualified
///      `private="..."` are dropped, and `private` is added; the other
///      directives (`max-age`, `no-cache`, `must-revalidate`, ...) stay,
///      for the browser's own cache. Dropping `public` or `s-maxage` is
///      logged at `warn` level: asking shared caches to keep a response
///      that sets a session cookie would hand that session to the next
///      user of the cache. At most once per
///      [`REJECTION_WARN_INTERVAL`](crate::REJECTION_WARN_INTERVAL) per
///      [`Sessions`], with the count left out. Not at all when the only
///      cookie sent is the removal of a dead cookie the client sent (a
///      forged one, say): the handler did nothing wrong, the response is
///      still made `private`.
///
/// What the layer cannot see: a handler that only reads the session of a
/// request that carried no session cookie (it finds the empty default) is
/// indistinguishable from one that never looked, and gets no `Vary`. If
/// such a page differs for users who have a session (a "log in" link
/// instead of a name), set `Vary: Cookie` or `Cache-Control: private` on
/// it in the handler. The layer's own `409`, `500` and `503` answers carry no
/// cache headers: without explicit freshness, caches do not store those
/// statuses. Responses to requests that carry the session cookie get
/// `Vary: Cookie` even when the handler ignored the session (static files
/// behind the layer included): serve what is the same for everyone
/// outside the layer to keep it cacheable.
///
/// # Mistakes it points out
///
/// - The layer records its session type (once per process, on its first
///   request), so that a handler asking for a `Session` of another type
///   is told which layers wrap it
///   ([`MissingSessionLayer`](crate::MissingSessionLayer), feature `axum`).
/// - A `Secure` cookie (the default) sent in answer to a request that looks
///   like plain HTTP to a host other than localhost is dropped by browsers,
///   so every request starts a new session. The first time the layer sends
///   one, it logs a `warn` (once per process) saying so and how to fix it.
///   A request looks like plain HTTP when its URI's scheme is not `https`
///   (hyper's HTTP/1 requests carry none) and it has neither
///   `X-Forwarded-Proto: https` nor `Forwarded: proto=https`; behind a
///   proxy that ends TLS, have the proxy send one of them (a proxy that
///   appends to a client's own `Forwarded` or `X-Forwarded-Proto` leaves
///   the client's value first, where the layer reads it, so a client can
///   raise this warning falsely, once). Browsers keep
///   `Secure` cookies from `localhost`, `*.localhost` and loopback
///   addresses over plain HTTP, a request with no host is not a
///   browser's, and one that carries a cookie of the session's name came
///   over HTTPS (or not from a browser): none is warned about, and for
///   the last the request's headers are not even read. A server that ends TLS itself sees
///   no scheme in HTTP/1 requests either; there the warning is a false
///   alarm (once).
///
/// # Example
///
/// ```
/// use sealed_session::{Key, Keyring, SessionConfig, SessionLayer, Sessions};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())?;
/// let layer = SessionLayer::<u32>::new(sessions);
/// # let _ = layer;
/// # Ok::<(), sealed_session::ConfigError>(())
/// ```
pub struct SessionLayer<T> {
    shared: Arc<Shared>,
    _session: PhantomData<fn() -> T>,
}

/// What a layer and every service it makes share.
struct Shared {
    sessions: Sessions,
    /// The layer's session type was recorded for the extractor's rejection
    /// ([`layer_types`]): on the first request, where `T`'s bounds are
    /// known, so `new` needs none.
    recorded: Once,
}

impl<T> SessionLayer<T> {
    /// A layer that loads and saves sessions of type `T` with `sessions`.
    ///
    /// # Example
    ///
    /// ```
    /// # use sealed_session::{Key, Keyring, SessionConfig, SessionLayer, Sessions};
    /// # let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let layer: SessionLayer<String> = SessionLayer::new(sessions);
    /// # let _ = layer;
    /// ```
    pub fn new(sessions: Sessions) -> SessionLayer<T> {
        SessionLayer {
            shared: Arc::new(Shared {
                sessions,
                recorded: Once::new(),
            }),
            _session: PhantomData,
        }
    }
}

impl<T> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        SessionLayer {
            shared: Arc::clone(&self.shared),
            _session: PhantomData,
        }
    }
}

impl<T> fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("sessions", &self.shared.sessions)
            .finish()
    }
}

impl<S, T> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: Arc::clone(&self.shared),
            _session: PhantomData,
        }
    }
}

/// The service made by [`SessionLayer`].
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use sealed_session::{Key, Keyring, Session, SessionConfig, SessionLayer, Sessions};
/// use tower::{ServiceBuilder, ServiceExt as _};
///
/// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
/// let service = ServiceBuilder::new()
///     .layer(SessionLayer::<u32>::new(sessions))
///     .service_fn(|request: http::Request<()>| async move {
///         let session = request.extensions().get::<Session<u32>>().unwrap();
///         session.update(|visits| *visits += 1);
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     });
/// let response = service.oneshot(http::Request::new(())).await.unwrap();
/// assert!(response.headers().contains_key(http::header::SET_COOKIE));
/// # }
/// ```
pub struct SessionService<S, T> {
    inner: S,
    shared: Arc<Shared>,
    _session: PhantomData<fn() -> T>,
}

impl<S: Clone, T> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        SessionService {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
            _session: PhantomData,
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("sessions", &self.shared.sessions)
            .finish()
    }
}

/// Whether to warn if the response to `request` sets the session's cookie
/// ([`plain_http::watch`]): it is `Secure`, and the request carried no
/// cookie of the session's name (a browser never sends a `Secure` cookie
/// over plain HTTP, so one that did is not the case to warn about; and
/// then the request's headers are not read).
#[inline]
fn watch_plain_http<B, T>(request: &Request<B>, sessions: &Sessions, session: &Session<T>) -> bool {
    plain_http::watch(request, sessions.config().attributes.secure, || {
        let state = session.lock();
        state.new && state.rejection.is_none()
    })
}

fn empty_response<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send,
    T: Serialize + DeserializeOwned + Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, T, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        self.shared.recorded.call_once(layer_types::record::<T>);
        let sessions = self.shared.sessions.clone();
        if !sessions.has_store() && !sessions.has_import::<T>() {
            // Nothing to wait for: the inner service is called now, so the
            // one that was polled ready serves it and needs no clone.
            let session = sessions.load_now::<T>(request.headers());
            let plain = watch_plain_http(&request, &sessions, &session);
            request.extensions_mut().insert(session.clone());
            return ResponseFuture {
                kind: Kind::Inline {
                    future: self.inner.call(request),
                    session,
                    sessions,
                    plain,
                },
            };
        }
        // The inner service is called later, inside the future: take the
        // one that was polled ready and leave a clone (not yet ready).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = Box::pin(async move {
            let session = match sessions.load::<T>(request.headers()).await {
                Ok(session) => session,
                Err(error) => {
                    tracing::error!(%error, "session could not be loaded");
                    return Ok(empty_response(StatusCode::SERVICE_UNAVAILABLE));
                }
            };
            let plain = watch_plain_http(&request, &sessions, &session);
            request.extensions_mut().insert(session.clone());
            let mut response = inner.call(request).await?;
            let before = response.headers().len();
            let saved = sessions.save(&session, response.headers_mut()).await;
            Ok(finish(saved, &sessions, &session, response, before, plain))
        });
        ResponseFuture {
            kind: Kind::Boxed { future },
        }
    }
}

/// The response once the session was saved onto it (`saved`; the headers
/// numbered `before` values until then): marked for caches, or, when the
/// save failed, replaced by an empty one with no `Set-Cookie`, so the
/// browser keeps its cookie. `plain`: the request looked like plain HTTP
/// to another host than localhost, and the cookie is `Secure`
/// ([`plain_http::watch`]).
fn finish<T, B: Default>(
    saved: Result<(), SaveError>,
    sessions: &Sessions,
    session: &Session<T>,
    mut response: Response<B>,
    before: usize,
    plain: bool,
) -> Response<B> {
    match saved {
        Ok(()) => {
            // `save` adds nothing but its `Set-Cookie`.
            let set_cookie = response.headers().len() > before;
            if plain && set_cookie {
                plain_http::warn_dropped();
            }
            mark_for_caches(
                response.headers_mut(),
                set_cookie,
                || {
                    let state = session.lock();
                    !state.new || state.rejection.is_some()
                },
                // Only the removal of a client's dead cookie: the
                // handler did nothing wrong, and a client sending forged
                // cookies must not use up the warnings a handler's own
                // mistake needs.
                || {
                    if session.lock().dead_removed {
                        None
                    } else {
                        sessions.admit_shared_cache_warn()
                    }
                },
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "session could not be saved");
            empty_response(match error {
                // A store that failed, or a cookie of a newer schema that
                // this instance must not overwrite (another instance of the
                // newer release can serve it).
                SaveError::Store(_) | SaveError::NewerSchema { .. } | SaveError::Import(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                // Another request ended the session while this one ran.
                SaveError::Ended => StatusCode::CONFLICT,
                // A session type postcard cannot store: a bug of the
                // application, logged above with the type and the problem.
                SaveError::Unloadable { .. } => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            })
        }
    }
}

type BoxedResponse<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

pin_project! {
    /// The future of [`SessionService`]: the inner service's response with
    /// the session saved onto it.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use sealed_session::{Key, Keyring, SessionConfig, SessionLayer, Sessions};
    /// use tower::{Layer as _, Service as _, service_fn};
    ///
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// let mut service = SessionLayer::<u32>::new(sessions).layer(service_fn(|_| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// }));
    /// let future: sealed_session::ResponseFuture<_, u32, String, _> =
    ///     service.call(http::Request::new(()));
    /// assert_eq!(future.await.unwrap().status(), http::StatusCode::OK);
    /// # }
    /// ```
    pub struct ResponseFuture<F, T, B, E> {
        #[pin]
        kind: Kind<F, T, B, E>,
    }
}

pin_project! {
    #[project = KindProjection]
    enum Kind<F, T, B, E> {
        // No store: the session is loaded; save it when `future` is done.
        Inline {
            #[pin]
            future: F,
            session: Session<T>,
            sessions: Sessions,
            // The request looked like plain HTTP (see `finish`).
            plain: bool,
        },
        // A store: load, inner service and save in one future.
        Boxed {
            future: BoxedResponse<B, E>,
        },
    }
}

impl<F, T, B, E> Future for ResponseFuture<F, T, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    T: Serialize + DeserializeOwned + Default + 'static,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProjection::Inline {
                future,
                session,
                sessions,
                plain,
            } => {
                let mut response = ready!(future.poll(cx))?;
                let before = response.headers().len();
                let saved = sessions.save_now(session, response.headers_mut());
                Poll::Ready(Ok(finish(
                    saved, sessions, session, response, before, *plain,
                )))
            }
            KindProjection::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, T, B, E> fmt::Debug for ResponseFuture<F, T, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Inline { .. } => "inline",
            Kind::Boxed { .. } => "boxed",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}
