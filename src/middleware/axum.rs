//! [`Session<T>`](crate::Session) as an axum extractor (feature `axum`).

use std::any::type_name;
use std::fmt;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::middleware::layer_types;
use crate::session::Session;

/// The rejection when a handler asks for a `Session<T>` but no
/// [`SessionLayer<T>`](crate::SessionLayer) of the same `T` wraps it: a
/// programming error, answered with `500 Internal Server Error`.
///
/// It says which of the two mistakes it is, naming the types (as
/// [`std::any::type_name`] spells them):
///
/// - **no layer at all**: "handler asks for `Session<u32>` but no
///   SessionLayer wraps this handler" (often a `Router::layer` called
///   before the route was added: it wraps only the routes added before
///   it);
/// - **a layer of another session type**: "handler asks for
///   `Session<u32>` but the SessionLayer wrapping it is
///   `SessionLayer<u64>`"; with several layers, all of them
///   ([`layer_types`](MissingSessionLayer::layer_types)).
///
/// Nothing is added to requests for this: each
/// [`SessionLayer`](crate::SessionLayer) records its session type once
/// per process, on its first request, and a request carries the
/// `Session<T>` of every layer it went through; the rejection lists the
/// recorded types whose session the request carries.
///
/// # Response
///
/// As a response ([`IntoResponse`](https://docs.rs/axum-core/0.5/axum_core/response/trait.IntoResponse.html)) it logs that sentence with `tracing`
/// at `error` level and answers `500`. In a debug build of this crate
/// (`cfg(debug_assertions)`, as `cargo run` and `cargo test` build it) the
/// sentence is also the body, as `text/plain`, so the mistake shows in the
/// browser; in a release build the body is empty (the type names say
/// something about the application's internals).
///
/// # Why not at compile time
///
/// The mismatch cannot be caught by the type checker without making every
/// application thread a type through its router state. An axum extractor
/// is generic over the router's state type `S`, and
/// [`Router::layer`](https://docs.rs/axum/0.8/axum/struct.Router.html#method.layer)
/// does not change the router's type: the handler's `Session<T>` cannot
/// see which layers wrap it. Tying `Session<T>` to a state that carries
/// the layer's `T` (`Session<T>: FromRequestParts<S>` only where `S`
/// names the sessions of `T`) would make every application's state name
/// its session types, and still not stop a handler mounted without the
/// layer. So the check stays at run time, with the types named: the first
/// request to such a handler, in a test or in development, shows it.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use axum_core::extract::FromRequestParts as _;
/// use axum_core::response::IntoResponse as _;
/// use sealed_session::Session;
///
/// // A request that went through no SessionLayer.
/// let (mut parts, ()) = http::Request::new(()).into_parts();
/// let missing = Session::<u32>::from_request_parts(&mut parts, &()).await.unwrap_err();
/// assert_eq!(missing.session_type(), "u32");
/// assert!(missing.layer_types().is_empty());
/// assert!(missing.to_string().contains("no SessionLayer wraps this handler"));
/// let response = missing.into_response();
/// assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingSessionLayer {
    session_type: &'static str,
    layer_types: Vec<&'static str>,
}

impl MissingSessionLayer {
    /// The session type the handler asked for: `T` of its `Session<T>`.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use axum_core::extract::FromRequestParts as _;
    /// # let (mut parts, ()) = http::Request::new(()).into_parts();
    /// let missing = sealed_session::Session::<String>::from_request_parts(&mut parts, &())
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(missing.session_type(), "alloc::string::String");
    /// # }
    /// ```
    pub fn session_type(&self) -> &'static str {
        self.session_type
    }

    /// The session types of the [`SessionLayer`](crate::SessionLayer)s
    /// that wrap the handler, each once, in the order the layers served
    /// their first request: empty when none does.
    ///
    /// # Example
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use sealed_session::{Key, Keyring, Session, SessionConfig, SessionLayer, Sessions};
    /// use axum_core::extract::FromRequestParts as _;
    /// use tower::{Layer as _, ServiceExt as _, service_fn};
    ///
    /// let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    /// // A handler that asks for a `Session<u32>` under a `SessionLayer<u64>`.
    /// let service = SessionLayer::<u64>::new(sessions).layer(service_fn(
    ///     |request: http::Request<()>| async move {
    ///         let (mut parts, ()) = request.into_parts();
    ///         let missing = Session::<u32>::from_request_parts(&mut parts, &()).await.unwrap_err();
    ///         assert_eq!(missing.layer_types(), ["u64"]);
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     },
    /// ));
    /// service.oneshot(http::Request::new(())).await.unwrap();
    /// # }
    /// ```
    pub fn layer_types(&self) -> &[&'static str] {
        &self.layer_types
    }
}

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wanted = self.session_type;
        write!(f, "handler asks for Session<{wanted}> but ")?;
        match self.layer_types.as_slice() {
            [] => write!(
                f,
                "no SessionLayer wraps this handler: add a SessionLayer::<{wanted}> with \
                 Router::layer (which wraps only the routes added before it)"
            ),
            [only] => write!(
                f,
                "the SessionLayer wrapping it is SessionLayer<{only}>: the handler and \
                 the layer must name the same session type"
            ),
            several => {
                f.write_str("the SessionLayers wrapping it are ")?;
                for (i, layer) in several.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}SessionLayer<{layer}>")?;
                }
                f.write_str(": none of them is of the handler's session type")
            }
        }
    }
}

impl std::error::Error for MissingSessionLayer {}

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        if cfg!(debug_assertions) {
            (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
        } else {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

impl<S, T> FromRequestParts<S> for Session<T>
where
    S: Send + Sync,
    T: Send + 'static,
{
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Session<T>>() {
            Some(session) => Ok(session.clone()),
            None => Err(MissingSessionLayer {
                session_type: type_name::<T>(),
                layer_types: layer_types::of(&parts.extensions),
            }),
        }
    }
}
