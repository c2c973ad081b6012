//! Shared by the fuzz targets: one `Sessions` with a fixed key, and a
//! poller for futures that never wait (no store configured).

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use sealed_session::{Key, Keyring, SessionConfig, Sessions};

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

pub fn ready<F: Future>(future: F) -> F::Output {
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("no store: load and save never wait"),
    }
}
