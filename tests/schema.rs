//! Changing the session type: fields added at the end, schema versions
//! with migrations (chains, failures, store-held values), the two-phase
//! write of a rolling deploy, and an instance that meets a newer schema.

mod common;

use std::sync::Arc;

use common::*;
use http::HeaderMap;
use sealed_session::{
    ConfigError, Key, Keyring, ManualClock, MemoryStore, Rejection, SaveError, Schema,
    SessionConfig, Sessions, StoreMode,
};
use serde::{Deserialize, Serialize};

const NAME: &str = "__Host-session";

/// The first release's session type (no schema: version 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct LoginV0 {
    user: String,
    count: u64,
}

/// The reproduction: a field added at the end with a default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct LoginWithTheme {
    user: String,
    count: u64,
    #[serde(default)]
    theme: Option<String>,
}

/// Version 1: `count` renamed and widened into a struct, a new field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct LoginV1 {
    user: String,
    visits: Visits,
    theme: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Visits {
    total: u64,
}

/// Version 2: the user split into two fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct LoginV2 {
    first: String,
    last: String,
    visits: Visits,
    theme: Option<String>,
}

fn v0_to_v1(old: LoginV0) -> LoginV1 {
    LoginV1 {
        user: old.user,
        visits: Visits { total: old.count },
        theme: None,
    }
}

fn v1_to_v0(new: &LoginV1) -> LoginV0 {
    LoginV0 {
        user: new.user.clone(),
        count: new.visits.total,
    }
}

fn v1_to_v2(old: LoginV1) -> LoginV2 {
    let (first, last) = old.user.split_once(' ').unwrap_or((&old.user, ""));
    LoginV2 {
        first: first.into(),
        last: last.into(),
        visits: old.visits,
        theme: old.theme,
    }
}

fn ann() -> LoginV0 {
    LoginV0 {
        user: "Ann Lee".into(),
        count: 3,
    }
}

/// Phase 2 of the v0 → v1 change: reads both, writes version 1.
fn v1(clock: &ManualClock) -> Sessions {
    instance(clock, |c| {
        c.with_schema(Schema::<LoginV1>::new(1).migrate(0, v0_to_v1))
    })
}

/// Phase 1: reads both, still writes version 0.
fn phase_1(clock: &ManualClock) -> Sessions {
    instance(clock, |c| {
        c.with_schema(
            Schema::<LoginV1>::new(1)
                .migrate(0, v0_to_v1)
                .write_as(0, v1_to_v0),
        )
    })
}

/// What the browser holds after `response`, or `value` if nothing was set.
fn next_value(response: &HeaderMap, value: &str) -> String {
    if response.is_empty() {
        value.to_owned()
    } else {
        the_cookie(response).value().to_owned()
    }
}

#[tokio::test]
async fn a_field_added_at_the_end_with_a_default_logs_nobody_out() {
    let clock = ManualClock::new(START);
    let old = sessions(&[1], &clock);
    let value = sealed(&old, ann()).await;
    // The next release: same keys, the type gained `theme`. No schema.
    let new = sessions(&[1], &clock);
    let session = new
        .load::<LoginWithTheme>(&cookie_of(&value))
        .await
        .unwrap();
    assert_eq!(session.rejection(), None);
    assert_eq!(
        session.get(),
        LoginWithTheme {
            user: "Ann Lee".into(),
            count: 3,
            theme: None,
        }
    );
    // Nothing changed: no cookie written, the browser keeps the old one.
    let mut response = HeaderMap::new();
    new.save(&session, &mut response).await.unwrap();
    assert!(response.is_empty());
    // Once it is written with the field, it is a value of the new type
    // (version 1 of the wire format, as before).
    session.update(|login| login.theme = Some("dark".into()));
    new.save(&session, &mut response).await.unwrap();
    let written = the_cookie(&response).value().to_owned();
    assert_eq!(new.inspect(&written).unwrap().version, 1);
    let again = new
        .load::<LoginWithTheme>(&cookie_of(&written))
        .await
        .unwrap();
    assert_eq!(again.get().theme.as_deref(), Some("dark"));
}

#[tokio::test]
async fn a_type_change_without_a_schema_is_incompatible_not_misread() {
    let clock = ManualClock::new(START);
    let old = sessions(&[1], &clock);
    let value = sealed(&old, ann()).await;
    // A field added in the middle cannot be told from a changed type.
    #[derive(Default, Serialize, Deserialize)]
    struct Reordered {
        user: String,
        #[serde(default)]
        theme: Option<String>,
        count: u64,
    }
    let session = old.load::<Reordered>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::Incompatible));
}

#[tokio::test]
async fn an_older_schema_converts_on_load_and_is_resealed_on_that_response() {
    let clock = ManualClock::new(START);
    let value = sealed(&sessions(&[1], &clock), ann()).await;
    let new = v1(&clock);
    let (session, response, ()) = round::<LoginV1, _>(&new, &cookie_of(&value), |_| ()).await;
    assert_eq!(session.rejection(), None);
    assert_eq!(session.get(), v0_to_v1(ann()));
    // Re-sealed at version 1 although the handler changed nothing, with
    // the same id and creation time.
    let written = the_cookie(&response).value().to_owned();
    let before = new.inspect(&value).unwrap();
    let after = new.inspect(&written).unwrap();
    assert_eq!((after.version, after.schema), (2, Some(1)));
    assert_eq!(
        (after.session_id, after.created),
        (before.session_id, before.created)
    );
    // The next request reads it at version 1 and writes nothing.
    let (again, response, ()) = round::<LoginV1, _>(&new, &cookie_of(&written), |_| ()).await;
    assert_eq!(again.get(), v0_to_v1(ann()));
    assert!(response.is_empty());
    assert_eq!(new.schema_stats()[0].opens, vec![(0, 1), (1, 1)]);
}

#[tokio::test]
async fn migrations_chain_across_versions() {
    let clock = ManualClock::new(START);
    let v0_value = sealed(&sessions(&[1], &clock), ann()).await;
    let v1_value = sealed(&v1(&clock), v0_to_v1(ann())).await;
    let v2 = instance(&clock, |c| {
        c.with_schema(
            Schema::<LoginV2>::new(2)
                .migrate(0, v0_to_v1)
                .migrate(1, v1_to_v2),
        )
    });
    let expected = v1_to_v2(v0_to_v1(ann()));
    assert_eq!(expected.first, "Ann");
    for value in [&v0_value, &v1_value] {
        let (session, response, ()) = round::<LoginV2, _>(&v2, &cookie_of(value), |_| ()).await;
        assert_eq!(session.rejection(), None);
        assert_eq!(session.get(), expected);
        let written = the_cookie(&response).value().to_owned();
        assert_eq!(v2.inspect(&written).unwrap().schema, Some(2));
    }
    assert_eq!(v2.schema_stats()[0].opens, vec![(0, 1), (1, 1), (2, 0)]);
}

#[tokio::test]
async fn a_migration_that_fails_or_is_missing_is_a_typed_rejection() {
    let clock = ManualClock::new(START);
    let value = sealed(&sessions(&[1], &clock), ann()).await;
    let failing = instance(&clock, |c| {
        c.with_schema(Schema::<LoginV1>::new(1).try_migrate(0, |old: LoginV0| {
            if old.count > 2 {
                Err("too many visits to convert")
            } else {
                Ok(v0_to_v1(old))
            }
        }))
    });
    let session = failing.load::<LoginV1>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::MigrationFailed(0)));
    assert!(session.is_new());

    // Version 2 with only the 1 → 2 step: a version 0 value cannot be
    // converted (its migration was dropped).
    let without_0 = instance(&clock, |c| {
        c.with_schema(Schema::<LoginV2>::new(2).migrate(1, v1_to_v2))
    });
    let session = without_0.load::<LoginV2>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::OldSchema(0)));

    // A step registered with the wrong old type: the bytes do not decode.
    let wrong = instance(&clock, |c| {
        c.with_schema(
            Schema::<LoginV1>::new(1).migrate(0, |old: (u8, u8, u8, u8)| LoginV1 {
                user: old.0.to_string(),
                ..LoginV1::default()
            }),
        )
    });
    let session = wrong.load::<LoginV1>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::Incompatible));
    assert_eq!(
        Rejection::MigrationFailed(0).to_string(),
        "migration_failed(0)"
    );
}

#[tokio::test]
async fn a_newer_schema_is_never_overwritten() {
    let clock = ManualClock::new(START);
    let newer = sealed(&v1(&clock), v0_to_v1(ann())).await;
    // An instance of the old release (no schema) meets a version 1 cookie.
    let old = sessions(&[1], &clock);
    let session = old.load::<LoginV0>(&cookie_of(&newer)).await.unwrap();
    assert!(session.is_new());
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(1)));
    // Reading it writes nothing.
    let mut response = HeaderMap::new();
    old.save(&session, &mut response).await.unwrap();
    assert!(response.is_empty());
    // A value set on the new session, a renew, a new lifetime: all
    // refused, no Set-Cookie, so the browser keeps the newer cookie. (A
    // logout is not refused: it ends the newer session's id, see
    // tests/schema_lifetime_attacks.rs.)
    for act in [
        |s: &sealed_session::Session<LoginV0>| s.set(ann()),
        |s: &sealed_session::Session<LoginV0>| s.renew(),
        |s: &sealed_session::Session<LoginV0>| {
            s.set_lifetime(sealed_session::SessionLifetime::browser_session())
        },
    ] {
        let session = old.load::<LoginV0>(&cookie_of(&newer)).await.unwrap();
        act(&session);
        let mut response = HeaderMap::new();
        assert_eq!(
            old.save(&session, &mut response).await,
            Err(SaveError::NewerSchema { version: 1 })
        );
        assert!(response.is_empty());
    }
    // Back on an instance that knows version 1, the session is intact.
    let session = v1(&clock)
        .load::<LoginV1>(&cookie_of(&newer))
        .await
        .unwrap();
    assert_eq!(session.get(), v0_to_v1(ann()));

    // A registered schema counts the refusals.
    let phase_1 = phase_1(&clock);
    let v2_value = sealed(
        &instance(&clock, |c| {
            c.with_schema(
                Schema::<LoginV2>::new(2)
                    .migrate(0, v0_to_v1)
                    .migrate(1, v1_to_v2),
            )
        }),
        v1_to_v2(v0_to_v1(ann())),
    )
    .await;
    let session = phase_1
        .load::<LoginV1>(&cookie_of(&v2_value))
        .await
        .unwrap();
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(2)));
    assert_eq!(phase_1.schema_stats()[0].newer, 1);
}

#[tokio::test]
async fn a_newer_schema_beside_a_valid_cookie_still_protects_the_newer_one() {
    // Two cookies of the name (say, a stale one on another path): the
    // first is of a newer schema, the second opens. The session is the
    // second's, but it must not be saved over the first.
    let clock = ManualClock::new(START);
    let newer = sealed(&v1(&clock), v0_to_v1(ann())).await;
    let old = sessions(&[1], &clock);
    let current = sealed(&old, ann()).await;
    let headers = request(&[(NAME, &newer), (NAME, &current)]);
    let session = old.load::<LoginV0>(&headers).await.unwrap();
    assert_eq!(session.get(), ann());
    session.update(|login| login.count += 1);
    let mut response = HeaderMap::new();
    let saved = old.save(&session, &mut response).await;
    // Its Set-Cookie could replace the newer cookie: refused.
    assert_eq!(saved, Err(SaveError::NewerSchema { version: 1 }));
    assert!(response.is_empty());
}

#[tokio::test]
async fn phase_1_writes_the_old_schema_and_never_lowers_a_newer_session() {
    let clock = ManualClock::new(START);
    let old = sessions(&[1], &clock);
    let phase_1 = phase_1(&clock);
    let phase_2 = v1(&clock);

    // A new session on phase 1 is written at version 0: the old release
    // reads it.
    let value = sealed(&phase_1, v0_to_v1(ann())).await;
    assert_eq!(phase_1.inspect(&value).unwrap().version, 1);
    let session = old.load::<LoginV0>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.get(), ann());

    // A version 0 session updated on phase 1 stays at version 0.
    let (_, response, ()) = round::<LoginV1, _>(&phase_1, &cookie_of(&value), |s| {
        s.update(|l| l.visits.total += 1)
    })
    .await;
    let value = next_value(&response, &value);
    let session = old.load::<LoginV0>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.get().count, 4);

    // Phase 2 writes version 1; phase 1 keeps a version 1 session at
    // version 1, with what phase 2 stored in the new field.
    let (_, response, ()) = round::<LoginV1, _>(&phase_2, &cookie_of(&value), |s| {
        s.update(|l| l.theme = Some("dark".into()))
    })
    .await;
    let value = next_value(&response, &value);
    assert_eq!(phase_2.inspect(&value).unwrap().schema, Some(1));
    let (session, response, ()) = round::<LoginV1, _>(&phase_1, &cookie_of(&value), |s| {
        s.update(|l| l.visits.total += 1)
    })
    .await;
    assert_eq!(session.get().theme.as_deref(), Some("dark"));
    let value = next_value(&response, &value);
    assert_eq!(phase_1.inspect(&value).unwrap().schema, Some(1));
    let session = phase_2.load::<LoginV1>(&cookie_of(&value)).await.unwrap();
    assert_eq!(
        session.get(),
        LoginV1 {
            user: "Ann Lee".into(),
            visits: Visits { total: 5 },
            theme: Some("dark".into()),
        }
    );
}

#[tokio::test]
async fn store_held_values_migrate_too() {
    let clock = ManualClock::new(START);
    let store = Arc::new(MemoryStore::new().with_clock(clock.clone()));
    let with_store = |c: SessionConfig| {
        c.with_shared_store(store.clone())
            .with_store_mode(StoreMode::Server)
    };
    let old = instance(&clock, with_store);
    let value = sealed(&old, ann()).await;
    assert!(old.inspect(&value).unwrap().store_key.is_some());
    let new = instance(&clock, |c| {
        with_store(c).with_schema(Schema::<LoginV1>::new(1).migrate(0, v0_to_v1))
    });
    let (session, response, ()) = round::<LoginV1, _>(&new, &cookie_of(&value), |_| ()).await;
    assert_eq!(session.get(), v0_to_v1(ann()));
    assert!(session.in_store());
    // The entry was replaced at version 1 in place; the pointer cookie
    // need not change, and the next load reads version 1 from the entry.
    let value = next_value(&response, &value);
    let (again, response, ()) = round::<LoginV1, _>(&new, &cookie_of(&value), |_| ()).await;
    assert_eq!(again.get(), v0_to_v1(ann()));
    assert!(response.is_empty(), "nothing left to migrate");
    assert_eq!(new.schema_stats()[0].opens, vec![(0, 1), (1, 1)]);
    // The old release now refuses the entry as newer, and writes nothing.
    let session = old.load::<LoginV0>(&cookie_of(&value)).await.unwrap();
    assert_eq!(session.rejection(), Some(Rejection::NewerSchema(1)));
}

#[test]
fn schemas_that_cannot_work_are_configuration_errors() {
    let build = |schema: Schema<LoginV2>| {
        Sessions::new(
            Keyring::new(Key::generate()),
            SessionConfig::default().with_schema(schema),
        )
        .map(drop)
    };
    let problem = |result: Result<(), ConfigError>| match result {
        Err(ConfigError::Schema { problem, .. }) => problem,
        other => panic!("expected a schema error, got {other:?}"),
    };
    assert!(problem(build(Schema::new(0))).contains("1 or more"));
    // 0 → 1 registered, 1 → 2 missing.
    assert!(
        problem(build(Schema::new(2).migrate(0, v0_to_v1))).contains("no migration from version 1")
    );
    assert!(problem(build(Schema::new(2).migrate(2, |x: LoginV2| x))).contains("not older"));
    // Writing a version this instance cannot read back.
    assert!(
        problem(build(
            Schema::new(2)
                .migrate(1, v1_to_v2)
                .write_as(0, |v: &LoginV2| v.visits.total)
        ))
        .contains("write_as(0)")
    );
    assert!(build(Schema::new(2).migrate(0, v0_to_v1).migrate(1, v1_to_v2)).is_ok());
}
