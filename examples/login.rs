//! Set, read and end a user session, with a "keep me signed in" choice.
//!
//! - `GET /` is a login form: a user name and a "keep me signed in"
//!   checkbox, posted to `/set-session`;
//! - `POST /set-session` (the form's fields, URL-encoded) stores the user (`name`, default `Juan`, role
//!   `admin`) under a new session id, as after a login. With
//!   `remember=1` (the box ticked) the session is kept across browser
//!   restarts, may idle for 30 days and lasts at most 90
//!   (`SessionLifetime::persistent().with_idle_timeout(..).with_absolute_timeout(..)`;
//!   the configuration allows it with `with_max_idle_timeout` and
//!   `with_max_absolute_timeout`, see [`config`]); the cookie's `Max-Age`
//!   counts to the nearer of the two. Without it, a browser-session cookie
//!   (`SessionLifetime::browser_session()`: no `Max-Age`, gone when the
//!   browser closes), with the configured idle timeout (24 hours unless
//!   `SESSION_IDLE_SECS` says otherwise). The choice is sealed in the
//!   cookie, so the browser cannot stretch it;
//! - `GET /get-session` shows name and role, or says there is no session;
//! - `GET /logout` destroys the session.
//!
//! The handler takes the session and the form together
//! (`Session<Login>` first, axum's `Form` last: it reads the body). Only a
//! `POST` logs in: `GET /set-session` is `405 Method Not Allowed`, so a
//! link or an image on another page cannot start a session. A real login
//! also checks a password, and the request's `Origin` (or a CSRF token),
//! so that another site's form cannot log a visitor in under someone
//! else's name: `SameSite=Lax` keeps the visitor's cookie off a
//! cross-site `POST`, but does not stop its answer from setting one.
//!
//! ```sh
//! SESSION_SECURE=0 cargo run --example login --features axum
//! # then open http://127.0.0.1:3000/ in a browser, or:
//! curl -c jar -b jar -d name=Ann http://127.0.0.1:3000/set-session              # browser session
//! curl -c jar -b jar -d 'name=Ann&remember=1' http://127.0.0.1:3000/set-session # 30 days idle
//! curl -c jar -b jar http://127.0.0.1:3000/get-session
//! curl -c jar -b jar http://127.0.0.1:3000/logout
//! ```

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use axum::response::Html;
use axum::routing::{get, post};
use axum::{Form, Router};
use sealed_session::{Session, SessionConfig, SessionLayer, SessionLifetime, Sessions};
use serde::{Deserialize, Serialize};

/// How long a "keep me signed in" session may go unused.
pub const REMEMBER_IDLE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a "keep me signed in" session lasts at most.
pub const REMEMBER_ABSOLUTE: Duration = Duration::from_secs(90 * 24 * 3600);

#[derive(Clone, Serialize, Deserialize)]
struct User {
    name: String,
    role: String,
}

/// The session: a user, or none.
type Login = Option<User>;

/// `base` with what the login app needs: sessions may choose an idle
/// timeout up to [`REMEMBER_IDLE`] and an absolute one up to
/// [`REMEMBER_ABSOLUTE`].
pub fn config(base: SessionConfig) -> SessionConfig {
    base.with_max_idle_timeout(Some(REMEMBER_IDLE))
        .with_max_absolute_timeout(Some(REMEMBER_ABSOLUTE))
}

/// The lifetime of a "keep me signed in" session.
pub fn remember_me() -> SessionLifetime {
    SessionLifetime::persistent()
        .with_idle_timeout(REMEMBER_IDLE)
        .with_absolute_timeout(REMEMBER_ABSOLUTE)
}

/// The login app; tests serve it too. Give it `Sessions` built from
/// [`config`], or a remembered session idles only as long as the
/// configured idle timeout.
pub fn app(sessions: Sessions) -> Router {
    Router::new()
        .route("/", get(form))
        .route("/set-session", post(set_session))
        .route("/get-session", get(get_session))
        .route("/logout", get(logout))
        .layer(SessionLayer::<Login>::new(sessions))
}

async fn form() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<title>Log in</title>
<form action="/set-session" method="post">
  <label>Name <input name="name" value="Juan" maxlength="64"></label>
  <label><input type="checkbox" name="remember" value="1"> Keep me signed in</label>
  <button>Log in</button>
</form>
"#,
    )
}

/// The login form's fields.
#[derive(Deserialize)]
struct LoginForm {
    name: Option<String>,
    /// `1` when "keep me signed in" is ticked.
    remember: Option<String>,
}

async fn set_session(session: Session<Login>, Form(form): Form<LoginForm>) -> String {
    let name: String = match form.name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => name.chars().take(64).collect(),
        _ => "Juan".into(),
    };
    let remember = form.remember.as_deref() == Some("1");
    // A new id at login, so an id planted before cannot follow.
    session.renew();
    session.set_lifetime(if remember {
        remember_me()
    } else {
        SessionLifetime::browser_session()
    });
    let reply = format!(
        "Session set for {name} (admin), {}\n",
        if remember {
            "kept across browser restarts"
        } else {
            "until the browser closes"
        }
    );
    session.set(Some(User {
        name,
        role: "admin".into(),
    }));
    reply
}

async fn get_session(session: Session<Login>) -> String {
    match session.get() {
        Some(user) => format!("Name: {}, Role: {}\n", user.name, user.role),
        None => "No active session\n".into(),
    }
}

async fn logout(session: Session<Login>) -> &'static str {
    session.destroy();
    "Logged out\n"
}

#[allow(dead_code)]
#[tokio::main]
async fn main() {
    common::init_logging();
    let sessions = common::sessions_with(config(common::config()));
    common::serve("login", app(sessions)).await;
}
