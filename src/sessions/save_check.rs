//! Nothing is saved that would not load: every value `save` writes is
//! decoded back as the session type first, on the exact bytes written.
//!
//! postcard writes no field names and no types, so serde types that need
//! them encode without complaint and then never decode (a
//! `serde_json::Value`, internally tagged and untagged enums), and a
//! field left out by `#[serde(skip_serializing_if)]` shifts every later
//! one. Such a cookie would be refused by every load
//! ([`Rejection::Incompatible`](crate::Rejection::Incompatible)): the user
//! logged out on every request. Whether a type encodes so depends on the
//! value (`skip_serializing_if` only skips some), so the check runs on
//! every write, not on a sample; a decode of a session costs a small
//! fraction of its seal (the layer bench's `update` case measures both).
//!
//! What is checked is what a load of these bytes on this instance does,
//! through the same function ([`Schemas::verify`] is `Schemas::read`
//! without the counters): the bytes are split from their schema version
//! as `load` splits them, then decoded strictly with postcard (every byte
//! used), with the trailing-field fallback load also has. During phase one
//! of a rolling schema change (`Schema::write_as`) the bytes claim the
//! older version: they are decoded as the type registered for that
//! version and converted through the migrations up to the session type,
//! exactly as a load here would; an instance of the older release decodes
//! them as its own session type, which is that same older type when the
//! migration's input type is the old release's type, as it should be.
//!
//! A value whose bytes decode, but to another value, is not caught: the
//! re-encoding of the decoded value cannot tell, since a `HashMap`
//! re-encodes its entries in another order (a false alarm on a common
//! type) and `skip_serializing_if` re-encodes the shifted value to the
//! same bytes. Such shifts need a field left out and later fields whose
//! bytes happen to parse in its place; the README says not to use
//! `skip_serializing_if` at all.
//!
//! A write whose bytes are those the session was loaded from (a re-issue:
//! rolling, a key rotation, a renew) is not checked again: they loaded.

use serde::de::DeserializeOwned;

use crate::error::SaveError;
use crate::rejection::Rejection;
use crate::sessions::Inner;
use crate::wire::{envelope, seal};

impl Inner {
    /// Checks that `body`, the value bytes of wire format `version` about
    /// to be written (in the cookie or in the store), loads as a `T`.
    pub(crate) fn check_loads<T: DeserializeOwned + 'static>(
        &self,
        version: u8,
        body: &[u8],
    ) -> Result<(), SaveError> {
        let unloadable = |problem: String| SaveError::Unloadable {
            type_name: std::any::type_name::<T>(),
            problem,
        };
        let (schema, value) = match version {
            seal::V1 => (0, body),
            _ => envelope::split_schema(body)
                .ok_or_else(|| unloadable("has no schema version".into()))?,
        };
        self.config
            .schemas
            .verify::<T>(schema, value)
            .map_err(|unread| match unread.reason {
                Rejection::Incompatible => unloadable(unread.to_string()),
                // A migration that refuses what `write_as` made of the
                // value, or a version that cannot be read here.
                _ => unloadable(format!("at schema version {schema} is {unread}")),
            })
    }
}
