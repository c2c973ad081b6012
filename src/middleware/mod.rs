//! The glue around an application's handlers (features `tower` and
//! `axum`): the layer that loads the session before the handler and saves
//! it after, the extractor, and the cache headers on session responses.
//!
//! - `tower`: [`SessionLayer`](crate::SessionLayer) and its service.
//! - `axum`: [`Session<T>`](crate::Session) as an extractor.
//! - `cache_headers`: `Vary: Cookie` and `Cache-Control: private`.
//! - `layer_types`: the session types of the layers a request went
//!   through, for the extractor's rejection.
//! - `plain_http`: the warning for a `Secure` cookie sent over plain HTTP.
//!
//! This is where a request's way through the crate starts. Uses
//! [`Sessions`](crate::Sessions) and the shared types; nothing in the crate
//! uses it. (Not named `http`, which would shadow the `http` crate in
//! every path.)

#[cfg(feature = "axum")]
pub(crate) mod axum;
#[cfg(feature = "tower")]
pub(crate) mod cache_headers;
#[cfg(feature = "tower")]
pub(crate) mod layer_types;
#[cfg(feature = "tower")]
pub(crate) mod plain_http;
#[cfg(feature = "tower")]
pub(crate) mod tower;
