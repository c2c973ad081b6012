//! What travels between the server and the browser: the `Cookie` header
//! read, the `Set-Cookie` attributes written, the sealed value inside the
//! cookie (wire formats 1 and 2) and the envelope inside that.
//!
//! - `header`: finding our cookie's values in a request's `Cookie` headers.
//! - `attributes`: `Secure`, `HttpOnly`, `SameSite`, `Path`, `Domain`,
//!   `Partitioned`, and rendering a `Set-Cookie` value.
//! - `seal`: the sealed format, byte by byte (SECURITY.md), and its
//!   known-answer tests.
//! - `envelope`: the plaintext: session id, timestamps, lifetime and a body
//!   that is the value or a store pointer.
//!
//! Uses [`crypto`](crate::crypto) (the key ring and the cipher),
//! [`lifetime`](crate::lifetime) (a session's own lifetime, which v2
//! seals) and [`store`](crate::store) (the key an envelope points at).
//! Used by [`sessions`](crate::sessions) and the configuration.

pub(crate) mod attributes;
pub(crate) mod envelope;
pub(crate) mod header;
pub(crate) mod seal;
