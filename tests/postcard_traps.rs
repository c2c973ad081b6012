//! Session types postcard cannot store (issue 17, item 1): a value whose
//! bytes would not decode back as the session type is never saved. The
//! save fails with `SaveError::Unloadable`, no `Set-Cookie` is written
//! (the tower layer answers 500), and the cookie the browser holds still
//! opens. One test per trap of the README's "Session types postcard
//! supports".

mod common;

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use sealed_session::{
    ManualClock, MemoryStore, SaveError, Schema, Session, SessionLayer, Sessions, StoreMode,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower::ServiceExt as _;

/// Saves `value` on a new session: the error, and the response headers.
async fn save_new<T>(sessions: &Sessions, value: T) -> (Result<(), SaveError>, HeaderMap)
where
    T: Serialize + DeserializeOwned + Default + 'static,
{
    let session = sessions.load::<T>(&HeaderMap::new()).await.unwrap();
    session.set(value);
    let mut response = HeaderMap::new();
    let saved = sessions.save(&session, &mut response).await;
    (saved, response)
}

/// The save failed as unloadable, naming the type and `problem`, and
/// wrote nothing.
fn assert_unloadable<T>(saved: Result<(), SaveError>, response: &HeaderMap, problem: &str) {
    let error = saved.expect_err("a value that would not load back must not be saved");
    match &error {
        SaveError::Unloadable {
            type_name,
            problem: text,
        } => {
            assert_eq!(*type_name, std::any::type_name::<T>());
            assert!(text.contains(problem), "{text}");
        }
        other => panic!("expected Unloadable, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("Session types postcard supports")
    );
    assert!(response.is_empty(), "nothing written: {response:?}");
}

// Trap 1: a map of `serde_json::Value` (any `deserialize_any`).

#[tokio::test]
async fn a_map_of_json_values_is_not_saved() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let mut map = HashMap::new();
    map.insert("user".to_owned(), serde_json::json!("ann"));
    let (saved, response) = save_new(&sessions, map).await;
    assert_unloadable::<HashMap<String, serde_json::Value>>(saved, &response, "deserialize_any");
}

#[tokio::test]
async fn what_to_write_instead_of_a_json_map_saves_and_loads() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let mut map = BTreeMap::new();
    map.insert("user".to_owned(), "ann".to_owned());
    let value = sealed(&sessions, map.clone()).await;
    let session = sessions
        .load::<BTreeMap<String, String>>(&cookie_of(&value))
        .await
        .unwrap();
    assert_eq!(session.get(), map);
}

// Trap 2: `skip_serializing_if` on a field that is skipped.

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Prefs {
    #[serde(skip_serializing_if = "Option::is_none")]
    theme: Option<String>,
    visits: u64,
}

#[tokio::test]
async fn a_skipped_none_field_is_not_saved() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    // Whatever the later field holds, the shifted bytes do not load.
    for visits in [1, 3, 300] {
        let prefs = Prefs {
            theme: None,
            visits,
        };
        let (saved, response) = save_new(&sessions, prefs).await;
        assert_unloadable::<Prefs>(saved, &response, "skip_serializing_if");
    }
    // The default value on a new session is no value: nothing is written,
    // so there is nothing that could fail to load.
    let (saved, response) = save_new(&sessions, Prefs::default()).await;
    assert_eq!(saved, Ok(()));
    assert!(response.is_empty(), "{response:?}");
    // The same type saves when nothing is skipped: the check must run on
    // every save, since the encoding depends on the value.
    let prefs = Prefs {
        theme: Some("dark".into()),
        visits: 3,
    };
    let (saved, response) = save_new(&sessions, prefs).await;
    saved.unwrap();
    assert_eq!(set_cookies(&response).len(), 1);
}

// Trap 3: internally tagged and untagged enums, flatten.

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
enum Tagged {
    Guest,
    User { name: String },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct WithTagged {
    login: Option<Tagged>,
    visits: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Id(u64),
    Name(String),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct WithUntagged {
    user: Option<Untagged>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Common {
    user: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct WithFlatten {
    #[serde(flatten)]
    common: Common,
    visits: u64,
}

#[tokio::test]
async fn an_internally_tagged_enum_is_not_saved() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = WithTagged {
        login: Some(Tagged::User { name: "ann".into() }),
        visits: 0,
    };
    let (saved, response) = save_new(&sessions, value).await;
    assert_unloadable::<WithTagged>(saved, &response, "#[serde(tag = ...)]");
}

#[tokio::test]
async fn an_untagged_enum_is_not_saved() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = WithUntagged {
        user: Some(Untagged::Name("ann".into())),
    };
    let (saved, response) = save_new(&sessions, value).await;
    assert_unloadable::<WithUntagged>(saved, &response, "#[serde(untagged)]");
}

#[tokio::test]
async fn a_flattened_struct_is_not_saved() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = WithFlatten {
        common: Common { user: "ann".into() },
        visits: 1,
    };
    let (saved, response) = save_new(&sessions, value).await;
    // `flatten` serializes as a map of unknown length, which postcard
    // refuses to encode already: a save error before any check.
    let error = saved.unwrap_err();
    assert!(
        matches!(error, SaveError::Encode(_) | SaveError::Unloadable { .. }),
        "{error:?}"
    );
    assert!(response.is_empty());
}

#[tokio::test]
async fn an_externally_tagged_enum_saves_and_loads() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Login {
        Guest,
        User { name: String },
    }
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let value = Some(Login::User { name: "ann".into() });
    let cookie = sealed(&sessions, value.clone()).await;
    let session = sessions
        .load::<Option<Login>>(&cookie_of(&cookie))
        .await
        .unwrap();
    assert_eq!(session.get(), value);
}

// Through the tower layer: 500, no Set-Cookie, the old cookie still opens.

fn app(clock: &ManualClock) -> Router {
    Router::new()
        .route(
            "/login",
            get(|session: Session<WithTagged>| async move {
                session.set(WithTagged {
                    login: Some(Tagged::User { name: "ann".into() }),
                    visits: 2,
                });
                "in"
            }),
        )
        .route(
            "/guest",
            get(|session: Session<WithTagged>| async move {
                // (Not the default: a new session at its default gets no
                // cookie at all.)
                session.set(WithTagged {
                    login: None,
                    visits: 1,
                });
                "guest"
            }),
        )
        .route(
            "/who",
            get(|session: Session<WithTagged>| async move {
                format!("{:?} {:?}", session.get().login, session.rejection())
            }),
        )
        .layer(SessionLayer::<WithTagged>::new(sessions(&[1], clock)))
}

async fn call(app: &Router, path: &str, cookie: Option<&str>) -> http::Response<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_layer_answers_500_and_the_browser_keeps_its_cookie() {
    let clock = ManualClock::new(START);
    let app = app(&clock);
    // A value of the type that does load: no tagged enum in it.
    let first = call(&app, "/guest", None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let set_cookie = first.headers()[http::header::SET_COOKIE].to_str().unwrap();
    let cookie = common::client::pair(set_cookie);

    let second = call(&app, "/login", Some(&cookie)).await;
    assert_eq!(second.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(second.headers().get(http::header::SET_COOKIE).is_none());

    let who = call(&app, "/who", Some(&cookie)).await;
    assert_eq!(who.status(), StatusCode::OK);
    let body = axum::body::to_bytes(who.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"None None", "the old cookie still opens");
}

// Store-held values and schema write versions are checked as written.

#[tokio::test]
async fn a_store_held_value_is_checked_and_nothing_is_stored() {
    let clock = ManualClock::new(START);
    let store = MemoryStore::new();
    let sessions = instance(&clock, |config| {
        config
            .with_store(store.clone())
            .with_store_mode(StoreMode::Server)
    });
    let prefs = Prefs {
        theme: None,
        visits: 7,
    };
    let (saved, response) = save_new(&sessions, prefs).await;
    assert_unloadable::<Prefs>(saved, &response, "skip_serializing_if");
    assert!(store.is_empty(), "no store entry written");
}

#[tokio::test]
async fn a_value_written_at_an_older_schema_is_checked_as_that_version() {
    #[derive(Serialize, Deserialize)]
    struct LoginV1 {
        user: String,
        admin: bool,
    }
    /// A faulty downgrade: version 1 had `admin` too.
    #[derive(Serialize)]
    struct Missing {
        user: String,
    }
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Login {
        user: String,
        admin: bool,
        theme: String,
    }
    let clock = ManualClock::new(START);
    let schema = Schema::<Login>::new(2)
        .migrate(1, |old: LoginV1| Login {
            user: old.user,
            admin: old.admin,
            theme: String::new(),
        })
        .write_as(1, |login: &Login| Missing {
            user: login.user.clone(),
        });
    let sessions = instance(&clock, |config| config.with_schema(schema));
    let login = Login {
        user: "ann".into(),
        admin: false,
        theme: "dark".into(),
    };
    let (saved, response) = save_new(&sessions, login).await;
    assert_unloadable::<Login>(saved, &response, "schema version 1");
}
