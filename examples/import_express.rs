//! Moving from express-session + connect-redis without logging anyone out.
//!
//! A browser that comes with express-session's cookie (`connect.sid`) and
//! no sealed cookie yet gets its session moved over: the cookie's
//! signature is checked under the old secrets, the record `sess:<id>` is
//! read from Redis and mapped to [`Account`] ([`read_record`]), the
//! response carries the sealed cookie and removes `connect.sid`, and the
//! record is replaced by a marker that lives a minute ([`MOVED`]). A
//! forged, unsigned, unknown or expired old cookie imports nothing; so
//! does a record this mapping does not understand (not a JSON object, none
//! of its keys, a Redis hash, not UTF-8), with a `WARN`, and it is kept.
//! Sessions go into the cookie, or into the same Redis (under
//! `sealed-session:`) when too large for it.
//!
//! - `GET /` shows who is signed in and the cart (and whether the
//!   session was moved over on this request);
//! - `POST /login?user=NAME` signs in (a new session id);
//! - `POST /cart/add?item=NAME` adds to the cart;
//! - `GET /logout` ends the session.
//!
//! Environment, besides the examples' own (`PORT`, `SESSION_KEYS`,
//! `SESSION_SECURE=0`, ...):
//!
//! - `REDIS_URL` (default `redis://127.0.0.1:6379`): connect-redis's
//!   Redis;
//! - `EXPRESS_SESSION_SECRETS`: express-session's `secret` option, as a
//!   JSON array of strings (`["newest","older"]`, in the same order) or
//!   one plain string; required;
//! - `EXPRESS_SESSION_COOKIE` (default `connect.sid`), `EXPRESS_SESSION_PATH`
//!   (default `/`) and `EXPRESS_SESSION_DOMAIN` (default none): the old
//!   cookie's `name` and `cookie.path`/`cookie.domain` options, for its
//!   removal;
//! - `EXPRESS_SESSION_PREFIX` (default `sess:`): connect-redis's `prefix`.
//!
//! ```sh
//! EXPRESS_SESSION_SECRETS='["keyboard cat"]' SESSION_SECURE=0 \
//!   cargo run --example import_express --features axum,redis
//! ```
//!
//! The formats, checked against the sources of cookie-signature 1.0.x and
//! 1.2.x (`sign`: `val + '.' + base64(HMAC-SHA256(secret, val))` with the
//! trailing `=` removed; `unsign`: split at the last `.`, constant-time
//! compare), express-session 1.19 (`getcookie`: the first `connect.sid`,
//! `s:` prefix, each secret in turn; `setcookie`: `'s:' + sign(id,
//! secrets[0])`), the `cookie` package 0.7 it uses (`serialize`
//! percent-encodes with `encodeURIComponent`, so the header holds
//! `s%3A<id>.<sig>` with `+` and `/` as `%2B` and `%2F`; `parse` strips
//! double quotes and `decodeURIComponent`s a value with a `%`, keeping it
//! as it is when that fails) and connect-redis 9 (`SET <prefix><id>
//! JSON.stringify(sess) EX <ttl>`, the TTL from `sess.cookie.expires`,
//! else its `ttl` option, one day by default).

#[path = "common/mod.rs"]
mod common;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sealed_session::{
    Import, ImportError, Imported, RedisStore, Session, SessionConfig, SessionLayer, Sessions,
};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// The session of the Rust application: one struct where express kept
/// keys (`req.session.user`, `req.session.cart`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub user: Option<String>,
    pub cart: Vec<String>,
}

/// express-session's signing secrets, newest first (its `secret` option:
/// it signs with the first and accepts any). Never printed.
#[derive(Clone)]
pub struct Secrets(Arc<Vec<Zeroizing<Vec<u8>>>>);

impl Secrets {
    /// Secrets as express-session was given them (UTF-8 strings, which is
    /// what Node's HMAC keys them with).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Secrets {
        Secrets(Arc::new(
            secrets
                .into_iter()
                .map(|s| Zeroizing::new(s.as_ref().as_bytes().to_vec()))
                .collect(),
        ))
    }

    /// `EXPRESS_SESSION_SECRETS`: a JSON array of strings, or one string.
    pub fn parse(text: &str) -> Result<Secrets, String> {
        let secrets: Vec<String> = if text.trim_start().starts_with('[') {
            serde_json::from_str(text)
                .map_err(|_| "EXPRESS_SESSION_SECRETS is not a JSON array of strings".to_owned())?
        } else {
            vec![text.to_owned()]
        };
        if secrets.is_empty() || secrets.iter().any(String::is_empty) {
            return Err("EXPRESS_SESSION_SECRETS has no secret, or an empty one".to_owned());
        }
        Ok(Secrets::new(secrets))
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

/// The express-session id in a `connect.sid` value as the browser sent
/// it, if its signature is right under one of `secrets`: what
/// express-session's `getcookie` accepts, and nothing else.
pub fn unsign(raw: &str, secrets: &Secrets) -> Option<String> {
    let value = percent_decode(raw);
    let signed = value.strip_prefix("s:")?;
    let (id, signature) = signed.rsplit_once('.')?;
    let mut matched = subtle::Choice::from(0);
    // Every secret is tried, whichever matches.
    for secret in secrets.0.iter() {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        mac.update(id.as_bytes());
        let expected = STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
        matched |= expected.as_bytes().ct_eq(signature.as_bytes());
    }
    bool::from(matched).then(|| id.to_owned())
}

/// The `cookie` package's decoding: `decodeURIComponent` when the value
/// has a `%`, the value as it is when that fails (a bad escape, bytes
/// that are not UTF-8).
fn percent_decode(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return raw.to_owned();
            };
            let (Some(hi), Some(lo)) = (hex(hi), hex(lo)) else {
                return raw.to_owned();
            };
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| raw.to_owned())
}

/// What connect-redis leaves in place of a record once it is moved: not
/// JSON (a record is always `JSON.stringify` of an object), so it can never
/// be read as one. It lives [`MOVED_TTL_SECS`]: a request of the same
/// browser that still carries only `connect.sid` in that time (one that
/// left before the importing response arrived) is a `503` with no
/// `Set-Cookie`, so it cannot replace the imported session with a new one;
/// its retry carries our cookie. Afterwards the old cookie finds nothing.
pub const MOVED: &[u8] = b"moved-to-sealed-session";

/// How long [`MOVED`] stays.
pub const MOVED_TTL_SECS: u64 = 60;

/// What a connect-redis record (`JSON.stringify(req.session)`: the
/// cookie's settings under `cookie`, the application's keys beside them)
/// gives.
#[derive(Debug, PartialEq)]
pub enum Record {
    /// `user` and/or `cart` were there: the session to import.
    Account(Account),
    /// Only `cookie` (an uninitialized session, `saveUninitialized`):
    /// nothing to move.
    Empty,
    /// `cookie.expires` passed.
    Expired,
    /// Not a record this mapping understands: not imported, kept.
    Refused(&'static str),
}

/// The mapping, explicit about the keys it takes: a JSON object (an array
/// or any other JSON is refused), `cookie.expires` (ISO 8601 or null),
/// `user` (a string or null) and `cart` (an array of strings); other keys
/// are dropped. A record with neither `user` nor `cart` but other keys
/// (passport's `{"passport":{"user":..}}`, another application's) is
/// refused rather than imported as an empty session.
pub fn read_record(json: &str, now: time::OffsetDateTime) -> Record {
    use serde_json::Value;
    let Ok(record) = serde_json::from_str::<serde_json::Map<String, Value>>(json) else {
        return Record::Refused("not a JSON object");
    };
    // A store written without a TTL (disableTTL) keeps expired records:
    // express-session's own MemoryStore refuses them too.
    match record.get("cookie") {
        None | Some(Value::Null) => {}
        Some(Value::Object(cookie)) => match cookie.get("expires") {
            None | Some(Value::Null) => {}
            Some(Value::String(expires)) => {
                let Ok(expires) = time::OffsetDateTime::parse(
                    expires,
                    &time::format_description::well_known::Rfc3339,
                ) else {
                    return Record::Refused("an unreadable cookie.expires");
                };
                if expires <= now {
                    return Record::Expired;
                }
            }
            Some(_) => return Record::Refused("an unreadable cookie.expires"),
        },
        Some(_) => return Record::Refused("a cookie that is not an object"),
    }
    let (has_user, has_cart) = (record.contains_key("user"), record.contains_key("cart"));
    if !has_user && !has_cart {
        return if record.keys().all(|k| k == "cookie") {
            Record::Empty
        } else {
            Record::Refused("none of the keys the mapping takes (user, cart)")
        };
    }
    let user = match record.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user.clone()),
        Some(_) => return Record::Refused("a user that is not a string"),
    };
    let cart = match record.get("cart") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let items: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect();
            let Some(items) = items else {
                return Record::Refused("a cart that is not an array of strings");
            };
            items
        }
        Some(_) => return Record::Refused("a cart that is not an array of strings"),
    };
    let dropped = record
        .keys()
        .filter(|k| !matches!(k.as_str(), "cookie" | "user" | "cart"))
        .count();
    if dropped > 0 {
        tracing::debug!(dropped, "express-session record keys not mapped; dropped");
    }
    Record::Account(Account { user, cart })
}

/// The old store: connect-redis's records, read with express-session's
/// secrets.
#[derive(Clone)]
pub struct ExpressSessions {
    redis: ConnectionManager,
    secrets: Secrets,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for ExpressSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpressSessions")
            .field("secrets", &self.secrets)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn import_error(error: impl fmt::Display) -> ImportError {
    ImportError::new(format!("express-session's redis: {error}"))
}

impl ExpressSessions {
    /// Connects to connect-redis's Redis (records under `sess:`).
    pub async fn connect(url: &str, secrets: Secrets) -> Result<ExpressSessions, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(1);
        let redis = tokio::time::timeout(
            Duration::from_secs(3),
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        Ok(ExpressSessions {
            redis,
            secrets,
            prefix: "sess:".to_owned(),
            timeout: Duration::from_secs(1),
        })
    }

    /// connect-redis's `prefix` option.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> ExpressSessions {
        self.prefix = prefix.into();
        self
    }

    /// The import function: the old cookie's value to an [`Account`],
    /// with the record's deletion to run once the sealed cookie is saved.
    pub fn load(
        &self,
        cookie: String,
    ) -> impl Future<Output = Result<Option<Imported<Account>>, ImportError>> + Send + use<> {
        let id = unsign(&cookie, &self.secrets);
        let mut redis = self.redis.clone();
        let (prefix, timeout) = (self.prefix.clone(), self.timeout);
        async move {
            let Some(id) = id else {
                // Unsigned or forged: nothing, and no Redis round trip.
                return Ok(None);
            };
            let key = format!("{prefix}{id}");
            // Bytes, not a String: a value that is not UTF-8 is a record
            // this mapping cannot read, not an outage.
            let bytes: Option<Vec<u8>> = match tokio::time::timeout(timeout, redis.get(&key)).await
            {
                Err(_) => return Err(import_error("timed out")),
                // A key of another type (a hash, a list): not a
                // connect-redis record; kept, not imported.
                Ok(Err(error)) if error.code() == Some("WRONGTYPE") => {
                    tracing::warn!(
                        "express-session record is not a Redis string (WRONGTYPE); not imported, kept"
                    );
                    return Ok(None);
                }
                Ok(Err(error)) => return Err(import_error(error)),
                Ok(Ok(bytes)) => bytes,
            };
            // Unknown, or expired (connect-redis's TTL).
            let Some(bytes) = bytes else {
                return Ok(None);
            };
            if bytes == MOVED {
                // Moved by a request of this browser moments ago: retry
                // (the layer's 503, no Set-Cookie); by then the browser
                // holds our cookie.
                return Err(ImportError::new(
                    "express-session: this session was just moved over; retry",
                ));
            }
            let Ok(json) = String::from_utf8(bytes) else {
                tracing::warn!("express-session record is not UTF-8; not imported, kept");
                return Ok(None);
            };
            let account = match read_record(&json, time::OffsetDateTime::now_utc()) {
                Record::Account(account) => account,
                Record::Empty | Record::Expired => return Ok(None),
                Record::Refused(why) => {
                    tracing::warn!(
                        why,
                        "express-session record not understood; not imported, kept"
                    );
                    return Ok(None);
                }
            };
            // Once the sealed cookie is saved: the record is replaced by
            // the MOVED marker for a minute (XX: only if it is still there;
            // a key already replaced by a parallel import is a success),
            // so a replayed copy of the old cookie imports nothing, and a
            // request that still carries only the old cookie meanwhile is
            // told to retry rather than start a new session.
            let moved = async move {
                let mut command = redis::cmd("SET");
                command
                    .arg(&key)
                    .arg(MOVED)
                    .arg("EX")
                    .arg(MOVED_TTL_SECS)
                    .arg("XX");
                let set = command.query_async::<redis::Value>(&mut redis);
                tokio::time::timeout(timeout, set)
                    .await
                    .map_err(|_| import_error("timed out"))?
                    .map_err(import_error)?;
                Ok(())
            };
            Ok(Some(Imported::new(account).on_saved(moved)))
        }
    }

    /// The [`Import`] for the configuration: from cookie `cookie`, whose
    /// removal the response carries with `path` and `domain`.
    pub fn import(self, cookie: &str, path: &str, domain: Option<&str>) -> Import<Account> {
        Import::new(cookie, move |value| self.load(value)).remove_old_cookie(path, domain)
    }
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

#[derive(Deserialize)]
struct Add {
    item: String,
}

/// The application; tests serve it too.
pub fn app(sessions: Sessions) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/cart/add", post(add))
        .route("/logout", get(logout))
        .layer(SessionLayer::<Account>::new(sessions))
}

async fn home(session: Session<Account>) -> String {
    let moved = if session.is_imported() {
        " (moved over from express-session)"
    } else {
        ""
    };
    session.read(|account| match &account.user {
        Some(user) => format!(
            "signed in as {user}{moved}; cart: {}\n",
            account.cart.join(", ")
        ),
        None => format!("not signed in{moved}; cart: {}\n", account.cart.join(", ")),
    })
}

async fn login(session: Session<Account>, Query(login): Query<Login>) -> String {
    session.update(|account| account.user = Some(login.user.clone()));
    session.renew();
    format!("signed in as {}\n", login.user)
}

async fn add(session: Session<Account>, Query(add): Query<Add>) -> String {
    let count = session.update(|account| {
        account.cart.push(add.item);
        account.cart.len()
    });
    format!("{count} items\n")
}

async fn logout(session: Session<Account>) -> &'static str {
    session.destroy();
    "signed out\n"
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn fail(message: impl fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    common::init_logging();
    let secrets = env("EXPRESS_SESSION_SECRETS")
        .unwrap_or_else(|| fail("set EXPRESS_SESSION_SECRETS to express-session's secret(s)"));
    let secrets = Secrets::parse(&secrets).unwrap_or_else(|e| fail(e));
    let url = env("REDIS_URL").unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let mut old = ExpressSessions::connect(&url, secrets)
        .await
        .unwrap_or_else(|e| fail(format!("REDIS_URL={url}: {e}")));
    if let Some(prefix) = env("EXPRESS_SESSION_PREFIX") {
        old = old.with_prefix(prefix);
    }
    let cookie = env("EXPRESS_SESSION_COOKIE").unwrap_or_else(|| "connect.sid".to_owned());
    let path = env("EXPRESS_SESSION_PATH").unwrap_or_else(|| "/".to_owned());
    let domain = env("EXPRESS_SESSION_DOMAIN");
    // A store for the cut-over: an old session too large for the cookie
    // goes there instead of being given up (its browser would start over).
    // The same Redis, under our own prefix.
    let store = RedisStore::connect(&url)
        .await
        .unwrap_or_else(|e| fail(format!("REDIS_URL={url}: {e}")));
    let config: SessionConfig = common::config().with_store(store).with_import(old.import(
        &cookie,
        &path,
        domain.as_deref(),
    ));
    common::serve("import_express", app(common::sessions_with(config))).await;
}
