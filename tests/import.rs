//! Moving from express-session + connect-redis (examples/import_express.rs)
//! on a real `redis-server` and over real HTTP: records written the way
//! connect-redis writes them, cookies signed the way express-session's
//! cookie-signature signs them and encoded the way its `cookie` package
//! encodes them, each done here independently of the example's code.

mod common;

#[path = "../examples/import_express.rs"]
mod import_express;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::client::{Reply, send};
use common::express::{encode_uri_component, express_cookie, express_id, sign};
use common::redis_server::RedisServer;
use common::{plain_http, serve};
use http::{HeaderMap, Method};
use import_express::{Account, ExpressSessions, Secrets, unsign};
use redis::AsyncCommands as _;
use sealed_session::{Import, SaveError, SessionConfig, Sessions};

const SECRET: &str = "keyboard cat";

// ---- The old system, as the Node packages do it ----

/// `Date.prototype.toJSON`.
fn iso(time: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    )
}

/// `JSON.stringify(req.session)` for a session whose cookie has
/// `maxAge: max_age_ms` (express-session's defaults otherwise: path `/`,
/// httpOnly, no `secure`, `domain` or `sameSite`), `expires` then.
fn record_json(
    user: &str,
    cart: &[&str],
    expires: time::OffsetDateTime,
    max_age_ms: u64,
) -> String {
    let cart = serde_json::to_string(cart).unwrap();
    format!(
        r#"{{"cookie":{{"originalMaxAge":{max_age_ms},"expires":"{}","httpOnly":true,"path":"/"}},"user":{},"cart":{cart}}}"#,
        iso(expires),
        serde_json::to_string(user).unwrap()
    )
}

/// What connect-redis's `set(sid, sess)` does: `SET sess:<sid> <json> EX
/// <ttl>`, the TTL `ceil((expires - now) / 1000)`.
async fn connect_redis_set(
    redis: &mut redis::aio::MultiplexedConnection,
    id: &str,
    json: &str,
    expires: time::OffsetDateTime,
) {
    let ms = (expires - time::OffsetDateTime::now_utc()).whole_milliseconds();
    let ttl = u64::try_from((ms + 999) / 1000).unwrap();
    let () = redis::cmd("SET")
        .arg(format!("sess:{id}"))
        .arg(json)
        .arg("EX")
        .arg(ttl)
        .query_async(redis)
        .await
        .unwrap();
}

/// A session logged in as `user`, stored by connect-redis with a one-day
/// cookie; its id.
async fn old_session(
    redis: &mut redis::aio::MultiplexedConnection,
    user: &str,
    cart: &[&str],
) -> String {
    let id = express_id();
    let expires = time::OffsetDateTime::now_utc() + Duration::from_secs(86_400);
    connect_redis_set(
        redis,
        &id,
        &record_json(user, cart, expires, 86_400_000),
        expires,
    )
    .await;
    id
}

// ---- The new application ----

struct Setup {
    redis: RedisServer,
    connection: redis::aio::MultiplexedConnection,
    addr: SocketAddr,
    /// How many times the import function was called.
    calls: Arc<AtomicUsize>,
    sessions: Sessions,
}

/// The example's import, counting its calls.
fn counted(old: ExpressSessions, calls: &Arc<AtomicUsize>) -> Import<Account> {
    let calls = Arc::clone(calls);
    Import::new("connect.sid", move |value| {
        calls.fetch_add(1, Ordering::SeqCst);
        old.load(value)
    })
    .remove_old_cookie("/", None)
}

/// redis-server, the example's app on it with express-session's
/// `secrets`, served on loopback.
async fn start(secrets: &[&str]) -> Setup {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).unwrap();
    let connection = client.get_multiplexed_async_connection().await.unwrap();
    let old = ExpressSessions::connect(&redis.url(), Secrets::new(secrets))
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let sessions = plain_http(SessionConfig::default().with_import(counted(old, &calls)));
    let addr = serve(import_express::app(sessions.clone())).await;
    Setup {
        redis,
        connection,
        addr,
        calls,
        sessions,
    }
}

impl Setup {
    async fn get(&self, cookie: &str) -> Reply {
        send(self.addr, Method::GET, "/", Some(cookie)).await
    }

    async fn exists(&mut self, id: &str) -> bool {
        self.connection.exists(format!("sess:{id}")).await.unwrap()
    }

    /// Whether the record was replaced by the example's short-lived
    /// "moved" marker (which is no record: it imports nothing).
    async fn moved(&mut self, id: &str) -> bool {
        let key = format!("sess:{id}");
        let value: Option<Vec<u8>> = self.connection.get(&key).await.unwrap();
        let ttl: i64 = self.connection.ttl(&key).await.unwrap();
        value.as_deref() == Some(import_express::MOVED)
            && (1..=import_express::MOVED_TTL_SECS as i64).contains(&ttl)
    }

    /// What the marker's expiry does, now.
    async fn expire(&mut self, id: &str) {
        let _: bool = self
            .connection
            .pexpire(format!("sess:{id}"), 1)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The `name=value` of our sealed cookie in a reply.
fn sealed_pair(reply: &Reply) -> String {
    let set = reply
        .set_cookies
        .iter()
        .find(|c| c.starts_with("session="))
        .unwrap_or_else(|| panic!("no sealed cookie: {:?}", reply.set_cookies));
    common::client::pair(set)
}

// ---- The tests ----

#[tokio::test]
async fn a_connect_redis_session_moves_into_the_sealed_cookie() {
    let mut setup = start(&[SECRET]).await;
    let id = old_session(&mut setup.connection, "ann", &["book", "lamp"]).await;
    let old = express_cookie(&id, SECRET);
    assert!(old.starts_with("connect.sid=s%3A"), "{old}");

    let reply = setup.get(&old).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        "signed in as ann (moved over from express-session); cart: book, lamp\n"
    );
    // The sealed cookie first, then the old cookie's removal.
    assert_eq!(reply.set_cookies.len(), 2, "{:?}", reply.set_cookies);
    assert!(reply.set_cookies[0].starts_with("session="));
    let removal = &reply.set_cookies[1];
    assert!(removal.starts_with("connect.sid=; "), "{removal}");
    assert!(
        removal.contains("Path=/") && removal.contains("Max-Age=0"),
        "{removal}"
    );
    // The old record is gone.
    assert!(setup.moved(&id).await);

    // The next request, with only the sealed cookie.
    let sealed = sealed_pair(&reply);
    let reply = setup.get(&sealed).await;
    assert_eq!(reply.body, "signed in as ann; cart: book, lamp\n");
    assert!(reply.set_cookies.is_empty());
    assert_eq!(setup.calls(), 1);
}

#[tokio::test]
async fn a_forged_or_unsigned_old_cookie_imports_nothing() {
    let mut setup = start(&[SECRET]).await;
    let id = old_session(&mut setup.connection, "ann", &["book"]).await;
    let signed = sign(&id, SECRET);
    let (_, signature) = signed.rsplit_once('.').unwrap();
    let other = express_id();
    let first = if signature.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{first}{}", &signature[1..]);
    let forged = [
        // Signed under a secret the application does not have.
        express_cookie(&id, "guessed secret"),
        // Another id with ann's signature.
        format!(
            "connect.sid={}",
            encode_uri_component(&format!("s:{other}.{signature}"))
        ),
        // The signature with its first character changed.
        format!(
            "connect.sid={}",
            encode_uri_component(&format!("s:{id}.{tampered}"))
        ),
        // Unsigned: the bare id, and `s:` with no signature.
        format!("connect.sid={id}"),
        format!("connect.sid=s%3A{id}"),
        // Garbage the decoder must survive.
        "connect.sid=s%3A%E0%A4%A.%%".to_owned(),
        format!("connect.sid=\"s:{id}.\""),
    ];
    for cookie in &forged {
        let reply = setup.get(cookie).await;
        assert_eq!(reply.status, 200, "{cookie}");
        assert_eq!(reply.body, "not signed in; cart: \n", "{cookie}");
        assert!(
            reply.set_cookies.is_empty(),
            "{cookie}: {:?}",
            reply.set_cookies
        );
    }
    assert_eq!(setup.calls(), forged.len());
    // Nothing deleted; the real cookie still imports.
    assert!(setup.exists(&id).await);
    let reply = setup.get(&express_cookie(&id, SECRET)).await;
    assert!(reply.body.starts_with("signed in as ann"), "{}", reply.body);
}

#[tokio::test]
async fn a_cookie_signed_under_an_older_secret_imports() {
    // express-session's `secret: ["new secret", "keyboard cat"]`: signs
    // with the first, accepts both.
    let mut setup = start(&["new secret", SECRET]).await;
    let id = old_session(&mut setup.connection, "bob", &[]).await;
    let reply = setup.get(&express_cookie(&id, SECRET)).await;
    assert_eq!(
        reply.body,
        "signed in as bob (moved over from express-session); cart: \n"
    );
    assert_eq!(reply.set_cookies.len(), 2);
    assert!(setup.moved(&id).await);
}

#[tokio::test]
async fn an_unknown_or_expired_old_session_imports_nothing() {
    let mut setup = start(&[SECRET]).await;
    // Never stored.
    let reply = setup.get(&express_cookie(&express_id(), SECRET)).await;
    assert_eq!(reply.body, "not signed in; cart: \n");
    assert!(reply.set_cookies.is_empty());

    // Stored with a short TTL that ran out (connect-redis's own expiry).
    let id = express_id();
    let expires = time::OffsetDateTime::now_utc() + Duration::from_millis(300);
    let json = record_json("cat", &[], expires, 300);
    let () = redis::cmd("SET")
        .arg(format!("sess:{id}"))
        .arg(&json)
        .arg("PX")
        .arg(300)
        .query_async(&mut setup.connection)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reply = setup.get(&express_cookie(&id, SECRET)).await;
    assert_eq!(reply.body, "not signed in; cart: \n");

    // Stored without a TTL (connect-redis's `disableTTL`), its cookie's
    // expiry passed.
    let id = express_id();
    let past = time::OffsetDateTime::now_utc() - Duration::from_secs(60);
    let () = setup
        .connection
        .set(format!("sess:{id}"), record_json("dan", &[], past, 1000))
        .await
        .unwrap();
    let reply = setup.get(&express_cookie(&id, SECRET)).await;
    assert_eq!(reply.body, "not signed in; cart: \n");
    assert!(reply.set_cookies.is_empty());
    assert_eq!(setup.calls(), 3);
}

#[tokio::test]
async fn a_replay_of_the_old_cookie_after_the_import_imports_nothing() {
    let mut setup = start(&[SECRET]).await;
    let id = old_session(&mut setup.connection, "eve", &["pen"]).await;
    let old = express_cookie(&id, SECRET);
    let reply = setup.get(&old).await;
    let sealed = sealed_pair(&reply);
    // The user signs out in the new system.
    let reply = send(setup.addr, Method::GET, "/logout", Some(&sealed)).await;
    assert!(
        reply.set_cookies[0].starts_with("session=;"),
        "{:?}",
        reply.set_cookies
    );
    // A copy of the old cookie, replayed alone within the marker's minute:
    // a 503 (retry), nothing imported, no Set-Cookie.
    let reply = setup.get(&old).await;
    assert_eq!(reply.status, 503);
    assert!(reply.set_cookies.is_empty());
    // After it: nothing to bring back.
    setup.expire(&id).await;
    let reply = setup.get(&old).await;
    assert_eq!(reply.body, "not signed in; cart: \n");
    assert!(reply.set_cookies.is_empty());
    assert_eq!(setup.calls(), 3);
}

#[tokio::test]
async fn a_request_with_our_cookie_never_calls_the_import() {
    let mut setup = start(&[SECRET]).await;
    let id = old_session(&mut setup.connection, "fay", &[]).await;
    let old = express_cookie(&id, SECRET);
    // A browser with a sealed cookie of its own (another session).
    let reply = send(setup.addr, Method::POST, "/cart/add?item=mug", None).await;
    let sealed = sealed_pair(&reply);
    for cookie in [
        format!("{sealed}; {old}"),
        format!("{old}; {sealed}"),
        // Ours refused (garbage, or expired): still no import.
        format!("session=garbage; {old}"),
        format!("{old}; session="),
    ] {
        let reply = setup.get(&cookie).await;
        assert!(
            !reply.body.contains("ann") && !reply.body.contains("moved"),
            "{}",
            reply.body
        );
        assert!(
            !reply
                .set_cookies
                .iter()
                .any(|c| c.starts_with("connect.sid")),
            "{:?}",
            reply.set_cookies
        );
    }
    assert_eq!(setup.calls(), 0);
    assert!(setup.exists(&id).await);
}

#[tokio::test]
async fn redis_down_during_the_import_is_a_503_with_no_cookie() {
    let mut setup = start(&[SECRET]).await;
    let id = old_session(&mut setup.connection, "gus", &[]).await;
    let old = express_cookie(&id, SECRET);
    setup.redis.kill();
    let started = std::time::Instant::now();
    let reply = setup.get(&old).await;
    assert_eq!(reply.status, 503);
    assert!(reply.set_cookies.is_empty(), "{:?}", reply.set_cookies);
    assert!(started.elapsed() < Duration::from_secs(5));
    // A request without the old cookie does not need Redis.
    let reply = send(setup.addr, Method::POST, "/cart/add?item=mug", None).await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_session_too_large_without_a_store_gives_the_import_up() {
    let mut setup = start(&[SECRET]).await;
    let id = old_session(&mut setup.connection, "hal", &["a"]).await;
    let old = express_cookie(&id, SECRET);
    // The handler makes the session too large for its cookie (no store).
    // Failing the save would fail every request of that browser (each one
    // imports again), so the import is given up (import.rs, rule 5): a
    // new, empty session of ours, the old cookie removed, the record kept,
    // the handler's change dropped with the imported value.
    let big = "x".repeat(5000);
    let reply = send(
        setup.addr,
        Method::POST,
        &format!("/cart/add?item={big}"),
        Some(&old),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.set_cookies.len(), 2, "{:?}", reply.set_cookies);
    assert!(reply.set_cookies[1].starts_with("connect.sid=;"));
    assert!(setup.exists(&id).await);
    // The browser holds our (empty) session now: no import, not signed in.
    let ours = reply.set_cookies[0].split(';').next().unwrap().to_owned();
    let reply = setup.get(&format!("{ours}; {old}")).await;
    assert!(reply.body.starts_with("not signed in;"), "{}", reply.body);
    assert!(setup.exists(&id).await);
}

#[tokio::test]
async fn redis_down_when_deleting_the_old_record_fails_the_save() {
    let mut setup = start(&[SECRET]).await;
    let id = old_session(&mut setup.connection, "ida", &[]).await;
    let mut request = HeaderMap::new();
    request.insert(
        http::header::COOKIE,
        express_cookie(&id, SECRET).parse().unwrap(),
    );
    let session = setup.sessions.load::<Account>(&request).await.unwrap();
    assert_eq!(session.get().user.as_deref(), Some("ida"));
    setup.redis.kill();
    let mut response = HeaderMap::new();
    let error = setup
        .sessions
        .save(&session, &mut response)
        .await
        .unwrap_err();
    assert!(matches!(error, SaveError::Import(_)), "{error}");
    assert!(response.is_empty(), "{response:?}");
    assert!(!error.to_string().contains(&id), "{error}");
}

// ---- The example's verification, against vectors from Node ----

/// `s:<id>.<sig>` values as express-session sets them, made with Node's
/// crypto, `encodeURIComponent` and the algorithm of cookie-signature
/// (the first is cookie-signature's own test vector).
const NODE_VECTORS: [(&str, &str, &str); 4] = [
    (
        "hello",
        "tobiiscool",
        "s%3Ahello.DGDUkGlIkCzPz%2BC0B064FNgHdEjox7ch8tOBGslZ5QI",
    ),
    (
        "Xz0Vb8XN2D1ZlpQJ3rYq9c5kT7mWfHaE",
        "keyboard cat",
        "s%3AXz0Vb8XN2D1ZlpQJ3rYq9c5kT7mWfHaE.pB6n7oQp9pAORghRlkmRzMciKDMNGE7lVRBKSnwxLVQ",
    ),
    (
        "Xz0Vb8XN2D1ZlpQJ3rYq9c5kT7mWfHaE",
        "old secret",
        "s%3AXz0Vb8XN2D1ZlpQJ3rYq9c5kT7mWfHaE.czIQDe0Ss%2F56anByOHhoDGs%2F08YgMJ8f6GZATjE48cQ",
    ),
    (
        "ünï",
        "sécret",
        "s%3A%C3%BCn%C3%AF.Qyp5U6Y%2BBGhFg5oUxe1b%2Fdr0LhhNadcWXdSAx26iGpE",
    ),
];

#[test]
fn unsign_accepts_what_node_signed_and_the_test_signer_agrees() {
    for (id, secret, value) in NODE_VECTORS {
        assert_eq!(express_cookie(id, secret), format!("connect.sid={value}"));
        assert_eq!(unsign(value, &Secrets::new([secret])).as_deref(), Some(id));
        // Partly percent-decoded already (`:`, `+` and `/` as they are).
        let decoded = value
            .replace("%3A", ":")
            .replace("%2B", "+")
            .replace("%2F", "/");
        assert_eq!(
            unsign(&decoded, &Secrets::new([secret])).as_deref(),
            Some(id)
        );
        // Under a ring where it is the second secret.
        assert_eq!(
            unsign(value, &Secrets::new(["other", secret])).as_deref(),
            Some(id)
        );
        assert_eq!(unsign(value, &Secrets::new(["other"])), None);
    }
}

#[test]
fn unsign_refuses_everything_else_without_panicking() {
    let secrets = Secrets::new([SECRET]);
    let good = express_cookie("abc", SECRET);
    let good = good.strip_prefix("connect.sid=").unwrap();
    for bad in [
        "",
        "%",
        "%%",
        "%zz",
        "s%3",
        "s:",
        "s:.",
        "s:abc",
        "s:abc.",
        "abc.sig",
        "s%3Aabc.%ZZ",
        "s%3A%C3.x",
        "s%3A%FF%FE.abc",
        &good[..good.len() - 1],
        &format!("{good}A"),
        &format!("{good}.x"),
        &format!("x{good}"),
        &"%".repeat(5000),
        &"s:".repeat(3000),
    ] {
        assert_eq!(unsign(bad, &secrets), None, "{bad}");
    }
    assert_eq!(unsign(good, &secrets).as_deref(), Some("abc"));
    // The id may hold dots: the signature follows the last one.
    let dotted = encode_uri_component(&format!("s:{}", sign("a.b.c", SECRET)));
    assert_eq!(unsign(&dotted, &secrets).as_deref(), Some("a.b.c"));
}

#[test]
fn secrets_are_never_printed() {
    let secrets = Secrets::parse(r#"["s3cr3t-one","s3cr3t-two"]"#).unwrap();
    let text = format!("{secrets:?}");
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(Secrets::parse("[]").is_err());
    assert!(Secrets::parse(r#"["a", 1]"#).is_err());
    assert!(Secrets::parse("plain secret").is_ok());
}

#[test]
fn the_record_mapping_takes_user_and_cart_only_from_a_json_object() {
    use import_express::{Record, read_record};
    let now = time::OffsetDateTime::now_utc();
    let account = |user: Option<&str>, cart: &[&str]| {
        Record::Account(Account {
            user: user.map(str::to_owned),
            cart: cart.iter().map(|s| (*s).to_owned()).collect(),
        })
    };
    let cookie = r#""cookie":{"originalMaxAge":null,"expires":null,"path":"/"}"#;
    for (json, expected) in [
        (
            format!(r#"{{{cookie},"user":"ann","cart":["a"],"flash":{{}}}}"#),
            account(Some("ann"), &["a"]),
        ),
        (
            format!(r#"{{{cookie},"cart":["a"]}}"#),
            account(None, &["a"]),
        ),
        (format!(r#"{{{cookie},"user":null}}"#), account(None, &[])),
        (format!(r#"{{{cookie}}}"#), Record::Empty),
        (r#"{}"#.to_owned(), Record::Empty),
        (
            format!(r#"{{{cookie},"passport":{{"user":"ann"}}}}"#),
            Record::Refused("none of the keys the mapping takes (user, cart)"),
        ),
        (
            r#"[null,"admin",[]]"#.to_owned(),
            Record::Refused("not a JSON object"),
        ),
        (
            r#""admin""#.to_owned(),
            Record::Refused("not a JSON object"),
        ),
        (
            r#"{"user":7}"#.to_owned(),
            Record::Refused("a user that is not a string"),
        ),
        (
            r#"{"user":"ann","cart":[1]}"#.to_owned(),
            Record::Refused("a cart that is not an array of strings"),
        ),
        (
            r#"{"cookie":{"expires":"2000-01-01T00:00:00.000Z"},"user":"ann"}"#.to_owned(),
            Record::Expired,
        ),
        (
            r#"{"cookie":{"expires":"soon"},"user":"ann"}"#.to_owned(),
            Record::Refused("an unreadable cookie.expires"),
        ),
        (
            r#"{"cookie":[],"user":"ann"}"#.to_owned(),
            Record::Refused("a cookie that is not an object"),
        ),
    ] {
        assert_eq!(read_record(&json, now), expected, "{json}");
    }
}

#[tokio::test]
async fn a_hash_or_a_binary_record_imports_nothing_and_is_kept() {
    let mut setup = start(&[SECRET]).await;
    let (hash, binary) = (
        "hashhashhashhashhashhashhashhash",
        "binbinbinbinbinbinbinbinbinbinbi",
    );
    let () = redis::cmd("HSET")
        .arg(format!("sess:{hash}"))
        .arg("user")
        .arg("ann")
        .query_async::<i64>(&mut setup.connection)
        .await
        .map(drop)
        .unwrap();
    let () = setup
        .connection
        .set(format!("sess:{binary}"), &[0x82_u8, 0xff][..])
        .await
        .unwrap();
    for id in [hash, binary] {
        let reply = setup.get(&express_cookie(id, SECRET)).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "not signed in; cart: \n");
        assert!(setup.exists(id).await);
    }
}
