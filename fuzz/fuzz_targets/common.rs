//! Shared by the fuzz targets: one `Sessions` with a fixed key, and a
//! poller for futures that never wait (no store configured).

use std::sync::OnceLock;

use sealed_session::{Key, Keyring, SessionConfig, Sessions};

#[path = "../../tests/common/ready.rs"]
mod ready;
pub use ready::ready;

pub const NAME: &str = "__Host-session";

pub fn sessions() -> &'static Sessions {
    static SESSIONS: OnceLock<Sessions> = OnceLock::new();
    SESSIONS.get_or_init(|| {
        let ring = Keyring::new(Key::from_bytes([7; 32]).unwrap())
            .with_older(Key::from_bytes([8; 32]).unwrap())
            .unwrap();
        Sessions::new(ring, SessionConfig::default()).unwrap()
    })
}
