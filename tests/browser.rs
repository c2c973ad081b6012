//! Real browser, end to end: headless Chromium driven over WebDriver
//! (chromedriver) against the examples on 127.0.0.1. Compiled only with the
//! `browser-tests` feature; `.ci/run` installs chromium and chromedriver.
#![allow(clippy::duplicate_mod)]

mod common;

#[path = "../examples/cart.rs"]
mod cart;
#[path = "../examples/counter.rs"]
mod counter;
#[path = "../examples/login.rs"]
mod login;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use common::{plain_http, serve};
use fantoccini::{Client, ClientBuilder, Locator};
use sealed_session::{Key, Keyring, MemoryStore, SameSite, SessionConfig, Sessions};

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver not found: apt-get install chromium chromium-driver (.ci/run does)",
            );
        // From here on, dropping the guard (even in a panic) stops it.
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return driver;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("chromedriver did not listen within 5 s");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser profile directory, removed on drop.
struct Profile(std::path::PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// chromedriver and a fresh headless browser (its own profile, no
/// network beyond loopback). Up to three tries, each with a chromedriver
/// of its own: on a freshly installed machine, with the other test
/// starting its browser beside it, chromedriver once reset the connection
/// of the first session request (CI, "Connection reset by peer").
async fn browser() -> (Driver, Client, Profile) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        let driver = Driver::start();
        match session(&driver).await {
            Ok((client, profile)) => return (driver, client, profile),
            Err(failure) => {
                eprintln!("no WebDriver session, trying again: {failure}");
                failures.push(failure);
            }
        }
    }
    panic!("no WebDriver session in three tries: {failures:?}");
}

/// A WebDriver session on `driver` with a browser of its own profile.
async fn session(driver: &Driver) -> Result<(Client, Profile), String> {
    let profile = Profile(
        std::env::temp_dir().join(format!("sealed-session-chromium-{}", rand::random::<u64>())),
    );
    let capabilities = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.0.display()),
            ]
        }
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url),
    )
    .await
    .map_err(|_| "chromium did not start within 60 s".to_owned())?
    .map_err(|e| e.to_string())?;
    Ok((client, profile))
}

/// Loads `url` and returns the page's text.
async fn text(client: &Client, url: &str) -> String {
    tokio::time::timeout(Duration::from_secs(20), async {
        client.goto(url).await.unwrap();
        client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
    .await
    .expect("page loaded within 20 s")
}

/// Fills in the login example's form at `login` (the default name,
/// "keep me signed in" ticked if `remember`), posts it with its button and
/// returns the text of the page it lands on.
async fn log_in(client: &Client, login: SocketAddr, remember: bool) -> String {
    client.goto(&url(login, "/")).await.unwrap();
    let mut clicks = vec!["button"];
    if remember {
        clicks.insert(0, "input[name=remember]");
    }
    for css in clicks {
        let element = client.find(Locator::Css(css)).await.unwrap();
        element.click().await.unwrap();
    }
    // The form's navigation must land before the next one starts, or it
    // replaces it (bounded: 5 s).
    for _ in 0..50 {
        let at = client.current_url().await.unwrap();
        if at.path() == "/set-session" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Whether the browser's `session` cookie has an expiry (is kept across
/// browser restarts); `None` without one.
async fn session_expiry(client: &Client) -> Option<bool> {
    let cookies = client.get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|c| c.name() == "session")?;
    Some(session.expires_datetime().is_some())
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[tokio::test]
async fn counter_login_and_cart_in_a_real_browser() {
    let (_driver, client, _profile) = browser().await;

    // The three apps share the cookie name `session` on 127.0.0.1 (cookies
    // are not kept per port): each one sees the previous app's cookie as
    // one from a foreign key ring, a fresh session, which is also checked.
    // The counter rises across page loads.
    let counter = serve(counter::app(plain_http(SessionConfig::default()))).await;
    for n in 1..=3 {
        assert_eq!(
            text(&client, &url(counter, "/")).await,
            format!("Visits: {n}")
        );
    }
    // HttpOnly: page scripts do not see the session cookie.
    let visible = client
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert_eq!(visible, serde_json::json!(""));

    // Login and logout.
    let login = serve(login::app(plain_http(login::config(
        SessionConfig::default(),
    ))))
    .await;
    assert_eq!(
        text(&client, &url(login, "/get-session")).await,
        "No active session"
    );
    assert_eq!(
        log_in(&client, login, false).await,
        "Session set for Juan (admin), until the browser closes"
    );
    assert_eq!(
        text(&client, &url(login, "/get-session")).await,
        "Name: Juan, Role: admin"
    );
    assert_eq!(session_expiry(&client).await, Some(false));
    assert_eq!(text(&client, &url(login, "/logout")).await, "Logged out");
    assert_eq!(
        text(&client, &url(login, "/get-session")).await,
        "No active session"
    );
    // The form, with "keep me signed in" ticked: a persistent cookie.
    assert_eq!(
        log_in(&client, login, true).await,
        "Session set for Juan (admin), kept across browser restarts"
    );
    assert_eq!(
        text(&client, &url(login, "/get-session")).await,
        "Name: Juan, Role: admin"
    );
    assert_eq!(session_expiry(&client).await, Some(true));
    assert_eq!(text(&client, &url(login, "/logout")).await, "Logged out");

    // The cart grows past 4 KB: the session moves to the store, and the
    // browser accepted every cookie (the session continues).
    let config = SessionConfig::default().with_store(MemoryStore::new());
    let shop = serve(cart::app(plain_http(config))).await;
    assert!(
        text(&client, &url(shop, "/cart"))
            .await
            .starts_with("0 items")
    );
    for i in 0..6 {
        let script = format!(
            "return fetch('/cart/add?item=item{i}&bytes=1000', {{method: 'POST'}}).then(r => r.status)"
        );
        let status = client.execute(&script, vec![]).await.unwrap();
        assert_eq!(status, serde_json::json!(200));
    }
    let listing = text(&client, &url(shop, "/cart")).await;
    assert!(
        listing.starts_with("6 items, session in the store"),
        "{listing}"
    );
    assert!(listing.contains("item5 (1000 bytes of notes)"), "{listing}");

    client.close().await.unwrap();
}

#[tokio::test]
async fn same_site_and_secure_behave_as_configured_on_127_0_0_1() {
    let (_driver, client, _profile) = browser().await;
    // Cookies are not kept per port: each server needs its own name.
    let sessions = |name: &str, same_site| {
        let config = SessionConfig::default()
            .with_secure(false)
            .with_cookie_name(name)
            .with_same_site(same_site);
        Sessions::new(Keyring::new(Key::generate()), config).unwrap()
    };
    let lax = serve(counter::app(sessions("lax", SameSite::Lax))).await;
    let strict = serve(counter::app(sessions("strict", SameSite::Strict))).await;
    // A page on another site (localhost is not the same site as 127.0.0.1)
    // linking to both.
    let links = format!(
        "<a id='lax' href='{}'>lax</a> <a id='strict' href='{}'>strict</a>",
        url(lax, "/"),
        url(strict, "/")
    );
    let elsewhere =
        serve(axum::Router::new().route("/", get(move || async move { Html(links) }))).await;
    let elsewhere = format!("http://localhost:{}/", elsewhere.port());

    assert_eq!(text(&client, &url(lax, "/")).await, "Visits: 1");
    assert_eq!(text(&client, &url(strict, "/")).await, "Visits: 1");
    for (id, expected) in [("lax", "Visits: 2"), ("strict", "Visits: 1")] {
        client.goto(&elsewhere).await.unwrap();
        client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let body = client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(
            body, expected,
            "SameSite={id} on a cross-site top-level navigation"
        );
    }
    // Same-site navigation sends both.
    assert_eq!(text(&client, &url(strict, "/")).await, "Visits: 2");

    // Secure (the default, with the __Host- prefix): Chromium treats
    // http://127.0.0.1 as a secure context, so it keeps the cookie.
    let secure = Sessions::new(Keyring::new(Key::generate()), SessionConfig::default()).unwrap();
    let secure = serve(counter::app(secure)).await;
    assert_eq!(text(&client, &url(secure, "/")).await, "Visits: 1");
    assert_eq!(text(&client, &url(secure, "/")).await, "Visits: 2");

    client.close().await.unwrap();
}
