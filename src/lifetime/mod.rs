//! How long a session lives: the clocks, the rules that decide from
//! sealed timestamps whether a session is still alive and when to
//! re-issue it, and the lifetime one session may choose for itself.
//!
//! - `clock`: [`Clock`](crate::Clock), the system clock and a manual one
//!   for tests.
//! - `rules`: idle and absolute timeouts, rolling re-issue, clock skew,
//!   the global cut-off and the cookie's `Max-Age`.
//! - `session_lifetime`: [`SessionLifetime`](crate::SessionLifetime), a
//!   per-session choice ("remember me") within configured bounds.
//!
//! Uses only the shared [`Rejection`](crate::Rejection). Used by
//! [`wire`](crate::wire) (a v2 envelope seals a lifetime), the stores (the
//! memory store's clock), the configuration and
//! [`sessions`](crate::sessions).

pub(crate) mod clock;
pub(crate) mod rules;
pub(crate) mod session_lifetime;
