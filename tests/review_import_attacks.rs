//! Adversarial review of the import hook (src/sessions/import.rs) and of
//! examples/import_express.rs. Tests named `finding_*` reproduce a
//! finding and FAIL on the code as merged; tests named `holds_*` are
//! attacks that were tried and held; `characterize_*` records a
//! behaviour the docs only half describe (they pass).

mod common;

#[path = "../examples/import_express.rs"]
mod import_express;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client::{Reply, send};
use common::express::{encode_uri_component, express_cookie, express_id, sign};
use common::redis_server::RedisServer;
use common::{plain_http, serve};
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, Method};
use import_express::{ExpressSessions, Secrets, unsign};
use redis::AsyncCommands as _;
use sealed_session::{
    Import, ImportError, Imported, Key, Keyring, MemoryStore, SaveError, SessionConfig, Sessions,
};

const SECRET: &str = "keyboard cat";

// ---- express-session's side, written independently of the example ----

/// `SET sess:<id> <json> EX 86400`, as connect-redis does.
async fn set_record(redis: &mut redis::aio::MultiplexedConnection, id: &str, json: &str) {
    let () = redis::cmd("SET")
        .arg(format!("sess:{id}"))
        .arg(json)
        .arg("EX")
        .arg(86_400)
        .query_async(redis)
        .await
        .unwrap();
}

struct Setup {
    _redis: RedisServer,
    connection: redis::aio::MultiplexedConnection,
    addr: SocketAddr,
}

/// The example's app and import (connect.sid, path `/`), no store, as the
/// example runs it.
async fn start() -> Setup {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let old = ExpressSessions::connect(&redis.url(), Secrets::new([SECRET]))
        .await
        .unwrap();
    let sessions =
        plain_http(SessionConfig::default().with_import(old.import("connect.sid", "/", None)));
    let addr = serve(import_express::app(sessions)).await;
    Setup {
        _redis: redis,
        connection,
        addr,
    }
}

impl Setup {
    async fn get(&self, path: &str, cookie: &str) -> Reply {
        send(self.addr, Method::GET, path, Some(cookie)).await
    }

    async fn exists(&mut self, id: &str) -> bool {
        self.connection.exists(format!("sess:{id}")).await.unwrap()
    }
}

// ---- An in-memory old system, for what needs no Redis ----

/// Old records by cookie value; `on_saved` deletes (or fails while
/// `fail_delete`).
#[derive(Clone, Default)]
struct OldStore {
    records: Arc<Mutex<HashMap<String, String>>>,
    fail_delete: Arc<AtomicBool>,
}

impl OldStore {
    fn import(&self) -> Import<String> {
        let old = self.clone();
        Import::new("old.sid", move |id: String| {
            let old = old.clone();
            async move {
                let Some(value) = old.records.lock().unwrap().get(&id).cloned() else {
                    return Ok(None);
                };
                Ok(Some(Imported::new(value).on_saved(async move {
                    if old.fail_delete.load(Ordering::SeqCst) {
                        return Err(ImportError::new("old store down"));
                    }
                    old.records.lock().unwrap().remove(&id);
                    Ok(())
                })))
            }
        })
        .remove_old_cookie("/", None)
    }

    fn has(&self, id: &str) -> bool {
        self.records.lock().unwrap().contains_key(id)
    }
}

fn cookies(text: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(COOKIE, text.parse().unwrap());
    headers
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// `name=value` of the first Set-Cookie.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

fn sessions_with(config: SessionConfig) -> Sessions {
    Sessions::new(Keyring::new(Key::generate()), config).unwrap()
}

// ---- Findings ----

/// F1. A connect-redis session whose value does not fit the cookie (no
/// store configured, as in the example): every request with that
/// browser's `connect.sid` imports, the save fails with `TooLarge`, the
/// layer answers 500 with no Set-Cookie, the record and the old cookie
/// stay, and the next request does the same. The browser is locked out
/// of every route under the layer until `connect.sid` expires. docs/migrating.md:
/// "Either way the browser keeps the old cookie and the record is still
/// there, so the next request imports again" -- and fails again.
#[tokio::test]
async fn finding_an_old_session_too_big_for_the_cookie_locks_the_browser_out() {
    let mut setup = start().await;
    let id = express_id();
    // 120 cart items of 40 characters: ~5 KB of JSON, ordinary for a
    // server-side session, more than a 4 KB cookie holds.
    let cart: Vec<String> = (0..120)
        .map(|i| format!("{i:03}-{}", "x".repeat(36)))
        .collect();
    let json = serde_json::json!({
        "cookie": {"originalMaxAge": null, "expires": null, "httpOnly": true, "path": "/"},
        "user": "big",
        "cart": cart,
    })
    .to_string();
    set_record(&mut setup.connection, &id, &json).await;
    let old = express_cookie(&id, SECRET);

    let first = setup.get("/", &old).await;
    // The fix (import.rs, rule 5) gives the import up instead of failing
    // the save: the first request is answered, with a new, empty session
    // of ours and the old cookie's removal (this asserted `500` and no
    // Set-Cookie, the behaviour the finding reports).
    assert_eq!(first.status, 200);
    assert_eq!(first.set_cookies.len(), 2, "{:?}", first.set_cookies);
    assert!(first.set_cookies[1].starts_with("connect.sid=;"));
    // Retries, other routes: the same 500, no way out for the browser.
    let mut statuses = Vec::new();
    for path in ["/", "/", "/cart/add?item=x"] {
        let reply = if path.starts_with("/cart") {
            send(setup.addr, Method::POST, path, Some(&old)).await
        } else {
            setup.get(path, &old).await
        };
        statuses.push(reply.status.as_u16());
    }
    assert!(setup.exists(&id).await, "record still there");
    assert!(
        statuses.iter().all(|&s| s != 500),
        "the browser holding connect.sid gets 500 on every request, for as long as \
         connect.sid lives: {statuses:?}"
    );
}

/// F2. `Imported::on_saved` fails (old Redis briefly down): the save is
/// `SaveError::Import` and the pending import is consumed. An
/// application that saves again (a retry on 503, its own middleware)
/// gets our cookie written WITHOUT the old record's deletion and WITHOUT
/// the old cookie's removal. The old record outlives the cut-over; after
/// a logout in the new system (our cookie removed) the browser's old
/// cookie imports the session again: the logout is undone.
#[tokio::test]
async fn finding_a_save_retried_after_on_saved_failed_lets_the_old_cookie_undo_a_logout() {
    let old = OldStore::default();
    old.records
        .lock()
        .unwrap()
        .insert("abc".into(), "ann".into());
    let sessions = sessions_with(SessionConfig::default().with_import(old.import()));

    let session = sessions
        .load::<String>(&cookies("old.sid=abc"))
        .await
        .unwrap();
    assert!(session.is_imported());
    old.fail_delete.store(true, Ordering::SeqCst);
    let mut response = HeaderMap::new();
    let error = sessions.save(&session, &mut response).await.unwrap_err();
    assert!(matches!(error, SaveError::Import(_)), "{error}");
    assert!(response.is_empty());

    // The old store is back; the application retries the save.
    old.fail_delete.store(false, Ordering::SeqCst);
    let mut response = HeaderMap::new();
    let retried = sessions.save(&session, &mut response).await;
    let sent = set_cookies(&response);
    eprintln!(
        "retry: {retried:?}, Set-Cookie: {sent:?}, old record kept: {}",
        old.has("abc")
    );

    if retried.is_ok() && !sent.is_empty() {
        // The browser now holds ours and still old.sid=abc. Logout:
        let ours = pair(&sent[0]);
        let session = sessions
            .load::<String>(&cookies(&format!("{ours}; old.sid=abc")))
            .await
            .unwrap();
        assert_eq!(session.get(), "ann");
        session.destroy();
        let mut response = HeaderMap::new();
        sessions.save(&session, &mut response).await.unwrap();
        assert!(set_cookies(&response)[0].starts_with("__Host-session=;"));
        // Our cookie is gone; old.sid=abc is still in the browser.
        let after = sessions
            .load::<String>(&cookies("old.sid=abc"))
            .await
            .unwrap();
        assert!(
            !after.is_imported(),
            "logout undone: the old cookie imported {:?} again after our logout",
            after.get()
        );
    }
}

/// F3 (example). A `sess:<id>` record that is JSON but not of the shape
/// expected (passport's `{"passport":{"user":..}}`, another app's keys):
/// every field of `Record` is `#[serde(default)]` and unknown fields are
/// ignored, so it is imported as an empty, signed-out `Account` and the
/// record is DELETED: the user's old session is lost instead of "not
/// imported" (the warn path only catches a type mismatch).
#[tokio::test]
async fn finding_a_record_of_another_shape_is_imported_empty_and_deleted() {
    let mut setup = start().await;
    let id = express_id();
    set_record(
        &mut setup.connection,
        &id,
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"passport":{"user":"ann"}}"#,
    )
    .await;
    let reply = setup.get("/", &express_cookie(&id, SECRET)).await;
    let deleted = !setup.exists(&id).await;
    // Nor is a JSON array a connect-redis record, yet serde's derive
    // reads a struct from a sequence: `[cookie, user, cart]`.
    let array = express_id();
    set_record(&mut setup.connection, &array, r#"[null,"admin",[]]"#).await;
    let from_array = setup.get("/", &express_cookie(&array, SECRET)).await;
    eprintln!("array record gave: {:?}", from_array.body);
    assert!(
        !(reply.body.contains("moved over") && deleted),
        "a record with none of the expected fields was imported as {:?} and deleted",
        reply.body
    );
    assert!(
        !from_array.body.contains("signed in as admin"),
        "a JSON array was imported as {:?}",
        from_array.body
    );
}

/// F4 (example). A `sess:<id>` key that is not a UTF-8 string (a hash,
/// or a record written with a binary serializer) is an `ImportError`:
/// 503 on every request of that browser, without end, whereas a string
/// that is not the expected JSON is `Ok(None)` with a warning.
#[tokio::test]
async fn finding_a_record_that_is_not_a_utf8_string_is_a_503_on_every_request() {
    let mut setup = start().await;
    let hash = express_id();
    let () = redis::cmd("HSET")
        .arg(format!("sess:{hash}"))
        .arg("user")
        .arg("ann")
        .query_async(&mut setup.connection)
        .await
        .unwrap();
    let binary = express_id();
    let () = redis::cmd("SET")
        .arg(format!("sess:{binary}"))
        .arg(&[0x82_u8, 0xa4, b'u', b's', 0xff][..])
        .query_async(&mut setup.connection)
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for id in [&hash, &hash, &binary, &binary] {
        statuses.push(
            setup
                .get("/", &express_cookie(id, SECRET))
                .await
                .status
                .as_u16(),
        );
    }
    assert!(
        statuses.iter().all(|&s| s != 503),
        "a record the example cannot read locks the browser out with 503: {statuses:?}"
    );
}

/// F5. The cut-over race the docs did not describe: a second request
/// of the same browser that still carries only the old cookie (restored
/// tabs, parallel XHRs at the first page load) and arrives just AFTER
/// the first one deleted the record imports nothing; if its handler
/// writes to the session (a CSRF token, a "last seen"), its Set-Cookie
/// is a fresh, empty session that replaces the imported one in the
/// browser. The old record is gone: the user is logged out for good.
///
/// Fixed in the example's `on_saved` (the library cannot know the old
/// store), so this runs on it rather than on `OldStore`, whose `on_saved`
/// deletes and still shows the race (docs/migrating.md, "The cut-over"): the record
/// becomes a "moved" marker for a minute, which the import answers with
/// an error (the layer's 503, no Set-Cookie): request B cannot replace
/// A's session, and its retry carries A's cookie.
#[tokio::test]
async fn finding_a_concurrent_request_after_the_delete_replaces_the_imported_session() {
    let mut setup = start().await;
    let id = express_id();
    set_record(
        &mut setup.connection,
        &id,
        r#"{"cookie":{"originalMaxAge":null,"expires":null,"httpOnly":true,"path":"/"},"user":"ann","cart":[]}"#,
    )
    .await;
    let old = express_cookie(&id, SECRET);
    // Request A imports and is saved (the record is replaced).
    let a = setup.get("/", &old).await;
    assert!(a.body.starts_with("signed in as ann"), "{}", a.body);
    let ours = pair(&a.set_cookies[0]);
    // Request B left the browser before A's response arrived; its
    // handler writes.
    let b = send(setup.addr, Method::POST, "/cart/add?item=csrf", Some(&old)).await;
    assert_eq!(b.status, 503, "{}", b.body);
    assert!(b.set_cookies.is_empty(), "{:?}", b.set_cookies);
    // The browser keeps A's cookie; B's retry carries it.
    let retry = send(
        setup.addr,
        Method::POST,
        "/cart/add?item=csrf",
        Some(&format!("{ours}; {old}")),
    )
    .await;
    assert_eq!(retry.status, 200);
    let after = setup.get("/", &pair(&retry.set_cookies[0])).await;
    assert!(
        after.body.starts_with("signed in as ann"),
        "the imported session was replaced by a fresh one ({:?})",
        after.body
    );
    // The marker is no record: replayed alone after its minute, the old
    // cookie imports nothing.
    let () = redis::cmd("PEXPIRE")
        .arg(format!("sess:{id}"))
        .arg(1)
        .query_async::<i64>(&mut setup.connection)
        .await
        .map(drop)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let replay = setup.get("/", &old).await;
    assert!(replay.body.starts_with("not signed in;"), "{}", replay.body);
    assert!(!setup.exists(&id).await);
}

// ---- Characterizations (pass) ----

/// Two requests that import at once (both read the record before either
/// deletes it) give two independent sessions. With revocation on, a
/// logout through one leaves the other signed in: with express-session,
/// deleting the one record ended both. Documented only as "may both
/// import the same value".
#[tokio::test]
async fn characterize_a_double_import_survives_a_logout_with_revocation() {
    let old = OldStore::default();
    old.records
        .lock()
        .unwrap()
        .insert("abc".into(), "ann".into());
    let config = SessionConfig::default()
        .with_store(MemoryStore::new())
        .with_revocation(true)
        .with_import(old.import());
    let sessions = sessions_with(config);
    let a = sessions
        .load::<String>(&cookies("old.sid=abc"))
        .await
        .unwrap();
    let b = sessions
        .load::<String>(&cookies("old.sid=abc"))
        .await
        .unwrap();
    let (mut ra, mut rb) = (HeaderMap::new(), HeaderMap::new());
    sessions.save(&a, &mut ra).await.unwrap();
    sessions.save(&b, &mut rb).await.unwrap(); // DEL of a gone record: Ok
    let (ca, cb) = (pair(&set_cookies(&ra)[0]), pair(&set_cookies(&rb)[0]));
    // Logout with A.
    let a = sessions.load::<String>(&cookies(&ca)).await.unwrap();
    a.destroy();
    sessions.save(&a, &mut HeaderMap::new()).await.unwrap();
    assert!(
        sessions
            .load::<String>(&cookies(&ca))
            .await
            .unwrap()
            .rejection()
            .is_some()
    );
    // B is still signed in as ann.
    let b = sessions.load::<String>(&cookies(&cb)).await.unwrap();
    assert_eq!(b.get(), "ann");
}

// ---- Attacks that held ----

/// Signature variants: wrong secret, padding, base64url alphabet,
/// `S:`, double encoding, whitespace, extra segments, other ids.
#[test]
fn holds_forged_signature_variants_import_nothing() {
    let secrets = Secrets::new(["new", SECRET]);
    let id = "Xz0Vb8XN2D1ZlpQJ3rYq9c5kT7mWfHaE";
    let signed = sign(id, SECRET);
    let (_, sig) = signed.rsplit_once('.').unwrap();
    let enc = |s: &str| encode_uri_component(s);
    let good = enc(&format!("s:{signed}"));
    assert_eq!(unsign(&good, &secrets).as_deref(), Some(id));
    // Node's decodeURIComponent takes lower-case escapes too.
    assert_eq!(
        unsign(&good.replace("%3A", "%3a"), &secrets).as_deref(),
        Some(id)
    );
    // Raw (not percent-encoded) is what `cookie.parse` gives as well.
    assert_eq!(
        unsign(&format!("s:{signed}"), &secrets).as_deref(),
        Some(id)
    );
    let url_safe = sig.replace('+', "-").replace('/', "_");
    let bad = [
        enc(&format!("s:{id}.{sig}=")),
        format!("s%3A{id}.{sig}%3D"),
        enc(&format!("S:{signed}")),
        format!("s%253A{id}.{sig}"),
        enc(&format!(" s:{signed}")),
        enc(&format!("s:{signed} ")),
        enc(&format!("s:{signed}.")),
        enc(&format!("s:{id}..{sig}")),
        enc(&format!("s:{id}x.{sig}")),
        enc(&format!("s:.{sig}")),
        enc(&format!("s:{}", sign(id, "wrong"))),
        enc(&format!("s:{id}.{}", &sig[..sig.len() - 1])),
        enc(&format!("s:{id}.{sig}A")),
        enc(&format!("s:{id}.{}", "A".repeat(4000))),
        enc(&format!("s:{}.{sig}", "é".repeat(10))),
        enc(&format!("s:{id}.{}", sig.to_lowercase())),
        enc(&format!("s:{id}.{}", sig.to_uppercase())),
    ];
    for value in bad.iter().chain(
        (sig != url_safe)
            .then(|| enc(&format!("s:{id}.{url_safe}")))
            .iter(),
    ) {
        assert_eq!(unsign(value, &secrets), None, "{value}");
    }
}

/// Our cookie in any position or duplicated, or refused, stops the
/// import; the old cookie's name equal to ours is refused by
/// `Sessions::new`; empty/oversized/non-UTF-8 old values never reach
/// the function; the old cookie is read by exact name only.
#[tokio::test]
async fn holds_our_cookie_anywhere_in_the_request_stops_the_import() {
    let old = OldStore::default();
    old.records
        .lock()
        .unwrap()
        .insert("abc".into(), "ann".into());
    let sessions = sessions_with(SessionConfig::default().with_import(old.import()));
    for header in [
        "__Host-session=x; old.sid=abc",
        "old.sid=abc; __Host-session=x",
        "old.sid=abc; __Host-session=",
        "old.sid=abc; __Host-session=\"\"",
        "old.sid=abc;__Host-session=x;__Host-session=y",
        " __Host-session = x ; old.sid=abc",
    ] {
        let session = sessions.load::<String>(&cookies(header)).await.unwrap();
        assert!(!session.is_imported(), "{header}");
    }
    // Our cookie in a second Cookie header (HTTP/2 splits them).
    let mut headers = cookies("old.sid=abc");
    headers.append(COOKIE, "__Host-session=x".parse().unwrap());
    assert!(
        !sessions
            .load::<String>(&headers)
            .await
            .unwrap()
            .is_imported()
    );
    // Other names do not count as ours, nor as the old one.
    for header in ["Old.sid=abc", "old.sid2=abc", "xold.sid=abc"] {
        assert!(
            !sessions
                .load::<String>(&cookies(header))
                .await
                .unwrap()
                .is_imported()
        );
    }
    // The first old value wins, as in express-session.
    let s = sessions
        .load::<String>(&cookies("old.sid=nope; old.sid=abc"))
        .await
        .unwrap();
    assert!(!s.is_imported());
    assert!(old.has("abc"));
    // Old cookie name equal to ours: refused at configuration.
    let same = Import::new("__Host-session", |_: String| async {
        Ok(None::<Imported<String>>)
    });
    assert!(
        Sessions::new(
            Keyring::new(Key::generate()),
            SessionConfig::default().with_import(same)
        )
        .is_err()
    );
}

/// A replay of the old cookie after the import (with our cookie removed
/// by a logout) imports nothing; destroy on the importing request
/// completes the import; a failed on_saved sends nothing and leaves the
/// store entry undone.
#[tokio::test]
async fn holds_replay_after_import_and_logout_imports_nothing() {
    let old = OldStore::default();
    old.records
        .lock()
        .unwrap()
        .insert("abc".into(), "ann".into());
    let sessions = sessions_with(
        SessionConfig::default()
            .with_store(MemoryStore::new())
            .with_import(old.import()),
    );
    let s = sessions
        .load::<String>(&cookies("old.sid=abc"))
        .await
        .unwrap();
    s.renew();
    let mut r = HeaderMap::new();
    sessions.save(&s, &mut r).await.unwrap();
    let sent = set_cookies(&r);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].starts_with("old.sid=;"));
    assert!(!old.has("abc"));
    let ours = pair(&sent[0]);
    let s = sessions.load::<String>(&cookies(&ours)).await.unwrap();
    s.destroy();
    sessions.save(&s, &mut HeaderMap::new()).await.unwrap();
    let replay = sessions
        .load::<String>(&cookies("old.sid=abc"))
        .await
        .unwrap();
    assert!(!replay.is_imported());
    assert_eq!(replay.get(), "");
    tokio::time::sleep(Duration::from_millis(1)).await;
}
