//! Changing the session type without logging anyone out: schema versions
//! with their conversions, and the decoding of a struct that gained
//! fields at its end.
//!
//! - `versions`: [`Schema`](crate::Schema), the registry of versions and
//!   conversions, and the counts per version.
//! - `trailing`: decoding a value whose bytes end before its newest
//!   trailing `#[serde(default)]` fields.
//!
//! Uses only the shared error and rejection types. Used by the
//! configuration and [`sessions`](crate::sessions) (decoding and encoding
//! a session's value).

pub(crate) mod trailing;
pub(crate) mod versions;
