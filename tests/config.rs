//! Configuration and key validation: refused with a clear error.

use sealed_session::{ConfigError, Key, KeyError, Keyring, SameSite, SessionConfig, Sessions};

fn build(config: SessionConfig) -> Result<Sessions, ConfigError> {
    Sessions::new(Keyring::new(Key::from_bytes([1; 32]).unwrap()), config)
}

#[test]
fn cookie_prefix_and_attribute_rules_are_enforced() {
    let base = SessionConfig::default;
    let cases = [
        (
            base().with_secure(false),
            ConfigError::HostPrefixNeedsSecure,
        ),
        (
            base().with_domain(Some("example.com".into())),
            ConfigError::HostPrefixWithDomain,
        ),
        (
            base().with_path("/app"),
            ConfigError::HostPrefixNeedsRootPath,
        ),
        (
            base().with_cookie_name("__host-lower").with_secure(false),
            ConfigError::HostPrefixNeedsSecure,
        ),
        (
            base().with_cookie_name("__Secure-s").with_secure(false),
            ConfigError::SecurePrefixNeedsSecure,
        ),
        (
            base()
                .with_cookie_name("s")
                .with_secure(false)
                .with_same_site(SameSite::None),
            ConfigError::SameSiteNoneNeedsSecure,
        ),
        (
            base()
                .with_cookie_name("s")
                .with_secure(false)
                .with_partitioned(true),
            ConfigError::PartitionedNeedsSecure,
        ),
        (base().with_cookie_name(""), ConfigError::InvalidName),
        (base().with_cookie_name("a b"), ConfigError::InvalidName),
        (base().with_cookie_name("a=b"), ConfigError::InvalidName),
        (base().with_cookie_name("a;b"), ConfigError::InvalidName),
        (
            base().with_cookie_name("s").with_path("/a;b"),
            ConfigError::InvalidAttribute { attribute: "path" },
        ),
        (
            base()
                .with_cookie_name("s")
                .with_domain(Some("a\nb".into())),
            ConfigError::InvalidAttribute {
                attribute: "domain",
            },
        ),
        (base().with_rolling(1.5), ConfigError::InvalidRolling),
        (base().with_rolling(-0.1), ConfigError::InvalidRolling),
        (base().with_rolling(f64::NAN), ConfigError::InvalidRolling),
    ];
    for (config, expected) in cases {
        let debug = format!("{config:?}");
        assert_eq!(build(config).unwrap_err(), expected, "{debug}");
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn valid_combinations_are_accepted() {
    assert!(build(SessionConfig::default()).is_ok());
    assert!(
        build(
            SessionConfig::default()
                .with_cookie_name("s")
                .with_secure(false)
        )
        .is_ok()
    );
    assert!(
        build(
            SessionConfig::default()
                .with_cookie_name("__Secure-s")
                .with_domain(Some("example.com".into()))
                .with_path("/x")
                .with_same_site(SameSite::None)
                .with_partitioned(true)
        )
        .is_ok()
    );
}

#[test]
fn a_size_limit_too_small_for_any_session_is_refused() {
    let err = build(SessionConfig::default().with_size_limit(50)).unwrap_err();
    let ConfigError::SizeLimitTooSmall { minimum } = err else {
        panic!("{err:?}")
    };
    assert!(build(SessionConfig::default().with_size_limit(minimum)).is_ok());
    assert!(build(SessionConfig::default().with_size_limit(minimum - 1)).is_err());
}

#[test]
fn bad_keys_are_refused_with_clear_errors() {
    assert_eq!("".parse::<Key>().unwrap_err(), KeyError::Empty);
    assert_eq!("   ".parse::<Key>().unwrap_err(), KeyError::Empty);
    assert_eq!(
        "not base64!".parse::<Key>().unwrap_err(),
        KeyError::NotBase64url
    );
    // 31 bytes: one short.
    let short = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ";
    assert_eq!(
        short.parse::<Key>().unwrap_err(),
        KeyError::Length { actual: 31 }
    );
    let long = format!("{}AQ", Key::generate().to_base64url());
    assert!(matches!(
        long.parse::<Key>().unwrap_err(),
        KeyError::Length { .. } | KeyError::NotBase64url
    ));
    // Standard base64 with padding is not the text form.
    assert_eq!(
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
            .parse::<Key>()
            .unwrap_err(),
        KeyError::NotBase64url
    );
    let zero = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(zero.parse::<Key>().unwrap_err(), KeyError::AllZero);
    assert!(
        KeyError::Length { actual: 31 }
            .to_string()
            .contains("32 bytes")
    );
}

#[test]
fn key_rings_refuse_empty_duplicate_and_bad_entries() {
    let a = Key::generate().to_base64url();
    let b = Key::generate().to_base64url();
    assert_eq!("".parse::<Keyring>().unwrap_err(), KeyError::Empty);
    assert_eq!(
        format!("{a},{b},{a}").parse::<Keyring>().unwrap_err(),
        KeyError::Duplicate { position: 3 }
    );
    assert_eq!(
        format!("{a},,{b}").parse::<Keyring>().unwrap_err(),
        KeyError::Entry {
            position: 2,
            cause: Box::new(KeyError::Empty)
        }
    );
    let err = format!("{a},short").parse::<Keyring>().unwrap_err();
    assert!(
        matches!(err, KeyError::Entry { position: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("key 2 of the ring"));
    let ring: Keyring = format!(" {a} , {b} ").parse().unwrap();
    assert_eq!(ring.primary_id(), a.parse::<Key>().unwrap().id());
    assert_eq!(ring.stats().len(), 2);
}

#[test]
fn debug_output_never_shows_key_bytes() {
    let key = Key::generate();
    let text = key.to_base64url();
    let ring: Keyring = text.parse().unwrap();
    let sessions = Sessions::new(ring, SessionConfig::default()).unwrap();
    for debug in [format!("{key:?}"), format!("{sessions:?}")] {
        assert!(!debug.contains(&text), "{debug}");
        assert!(debug.contains(&key.id().to_string()), "{debug}");
    }
}
