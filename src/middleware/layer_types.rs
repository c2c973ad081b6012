//! Which [`SessionLayer`](crate::SessionLayer)s a request went through, for
//! the axum extractor's rejection
//! ([`MissingSessionLayer`](crate::MissingSessionLayer)): it tells a
//! handler with no layer from one wrapped by a layer of another session
//! type, and names them.
//!
//! Nothing is added to a request for this. Each `SessionLayer` records
//! its session type here on its first request (once per type and
//! process); a layer puts a `Session<T>` into every request's extensions
//! anyway, so when a handler's `Session<U>` is missing, the session types
//! recorded here whose `Session<T>` the request carries are the layers
//! that wrap it. (A marker extension naming the layers would cost an
//! allocation per request, about 400 instructions in a request of
//! 11,000, for what only a broken application reads.)

use std::any::{TypeId, type_name};
use std::sync::{Mutex, PoisonError};

use http::Extensions;

use crate::session::Session;

/// A session type some `SessionLayer` was built for.
struct Recorded {
    id: TypeId,
    name: &'static str,
    /// Whether a request's extensions hold a `Session` of this type.
    carried: fn(&Extensions) -> bool,
}

/// The session types of every `SessionLayer` that served a request in
/// this process, in the order of their first requests, each once.
static RECORDED: Mutex<Vec<Recorded>> = Mutex::new(Vec::new());

fn carried<T: Send + 'static>(extensions: &Extensions) -> bool {
    extensions.get::<Session<T>>().is_some()
}

/// Records that a `SessionLayer<T>` serves requests.
pub(crate) fn record<T: Send + 'static>() {
    let id = TypeId::of::<T>();
    let mut recorded = RECORDED.lock().unwrap_or_else(PoisonError::into_inner);
    if recorded.iter().all(|known| known.id != id) {
        recorded.push(Recorded {
            id,
            name: type_name::<T>(),
            carried: carried::<T>,
        });
    }
}

/// The session types of the layers whose session a request's
/// `extensions` carry, in the order of [`record`]; none without a
/// layer.
pub(crate) fn of(extensions: &Extensions) -> Vec<&'static str> {
    let recorded = RECORDED.lock().unwrap_or_else(PoisonError::into_inner);
    recorded
        .iter()
        .filter(|known| (known.carried)(extensions))
        .map(|known| known.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, Keyring, SessionConfig, Sessions};

    // Types of this test's own, so that no other test records them.
    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct Unrecorded;
    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct First;
    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct Second;

    #[test]
    fn the_layers_are_the_recorded_types_whose_session_a_request_carries() {
        let sessions = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default())
            .expect("the default configuration is valid");
        let empty = http::HeaderMap::new();
        let mut extensions = Extensions::new();
        assert!(of(&extensions).is_empty());
        // Not recorded: a session some other code put there.
        extensions.insert(sessions.load_now::<Unrecorded>(&empty));
        assert!(of(&extensions).is_empty());
        record::<Second>();
        record::<First>();
        record::<Second>();
        extensions.insert(sessions.load_now::<First>(&empty));
        assert_eq!(of(&extensions), [type_name::<First>()]);
        extensions.insert(sessions.load_now::<Second>(&empty));
        assert_eq!(
            of(&extensions),
            [type_name::<Second>(), type_name::<First>()]
        );
    }
}
