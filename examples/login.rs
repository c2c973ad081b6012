//! Set, read and end a user session.
//!
//! - `GET /set-session` stores the user `{ name: "Juan", role: "admin" }`
//!   (under a new session id, as after a login);
//! - `GET /get-session` shows name and role, or says there is no session;
//! - `GET /logout` destroys the session.
//!
//! ```sh
//! SESSION_SECURE=0 cargo run --example login --features axum
//! curl -c jar -b jar http://127.0.0.1:3000/set-session
//! curl -c jar -b jar http://127.0.0.1:3000/get-session
//! curl -c jar -b jar http://127.0.0.1:3000/logout
//! ```

#[path = "common/mod.rs"]
mod common;

use axum::Router;
use axum::routing::get;
use sealed_session::{Session, SessionLayer, Sessions};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct User {
    name: String,
    role: String,
}

/// The session: a user, or none.
type Login = Option<User>;

/// The login app; tests serve it too.
pub fn app(sessions: Sessions) -> Router {
    Router::new()
        .route("/set-session", get(set_session))
        .route("/get-session", get(get_session))
        .route("/logout", get(logout))
        .layer(SessionLayer::<Login>::new(sessions))
}

async fn set_session(session: Session<Login>) -> &'static str {
    // A new id at login, so an id planted before cannot follow.
    session.renew();
    session.set(Some(User {
        name: "Juan".into(),
        role: "admin".into(),
    }));
    "Session set for Juan (admin)\n"
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
    common::serve("login", app(common::sessions())).await;
}
