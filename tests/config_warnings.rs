//! `Sessions::new` warns once about valid settings that weaken the
//! promises (no `Secure`; no timeout at all).
//!
//! Alone in its own test binary, for the reason given in
//! `rejection_event.rs` (tracing's per-call-site interest cache).

mod common;

use common::capture::Capture;
use sealed_session::{Key, Keyring, SessionConfig, Sessions};

/// The `warn` lines logged while building `Sessions` from `config`.
fn warnings(config: SessionConfig) -> Vec<String> {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.subscriber(tracing::Level::WARN), || {
        Sessions::new(Keyring::new(Key::generate()), config).unwrap();
    });
    capture.text().lines().map(str::to_owned).collect()
}

#[test]
fn weakening_settings_are_logged_once_and_defaults_are_not() {
    assert_eq!(warnings(SessionConfig::default()), Vec::<String>::new());

    let plain = warnings(
        SessionConfig::default()
            .with_secure(false)
            .with_cookie_name("session"),
    );
    assert_eq!(plain.len(), 1, "{plain:?}");
    assert!(plain[0].contains("WARN") && plain[0].contains("without Secure"));

    let forever = warnings(
        SessionConfig::default()
            .with_idle_timeout(None)
            .with_absolute_timeout(None),
    );
    assert_eq!(forever.len(), 1, "{forever:?}");
    assert!(forever[0].contains("never expire"));

    // One timeout is enough.
    let idle_only = warnings(SessionConfig::default().with_absolute_timeout(None));
    assert!(idle_only.is_empty(), "{idle_only:?}");
}
