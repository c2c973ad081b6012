//! [`Session<T>`](crate::Session) as an axum extractor (feature `axum`).

use std::fmt;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::session::Session;

/// The rejection when a handler asks for a `Session<T>` but no
/// [`SessionLayer<T>`](crate::SessionLayer) of the same `T` wraps it: a
/// programming error, answered with `500 Internal Server Error`.
///
/// # Example
///
/// ```
/// use axum_core::response::IntoResponse;
/// let response = sealed_session::MissingSessionLayer.into_response();
/// assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingSessionLayer;

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no SessionLayer<T> for this session type wraps the handler")
    }
}

impl std::error::Error for MissingSessionLayer {}

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<S, T> FromRequestParts<S> for Session<T>
where
    S: Send + Sync,
    T: Send + 'static,
{
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session<T>>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}
