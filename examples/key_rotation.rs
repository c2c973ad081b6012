//! The key-rotation drill, end to end, in process: each step builds the
//! instances' `Sessions` from a new `SESSION_KEYS` string, as an operator's
//! restart would, runs real requests through `load`/`save` on `http`
//! headers, prints what happened and checks it. Exits 1 on any surprise.
//!
//! ```sh
//! cargo run --example key_rotation
//! ```

use std::process::ExitCode;

use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use sealed_session::{Key, KeyId, Keyring, Rejection, SessionConfig, Sessions};

/// A browser holding one session cookie.
struct Client {
    name: &'static str,
    cookie: Option<String>,
}

/// What one request saw.
struct Visit {
    count: u64,
    rejection: Option<Rejection>,
    /// The key the browser's cookie is sealed under after the response.
    sealed_under: Option<KeyId>,
}

fn instances(keys: &str) -> Sessions {
    let ring: Keyring = keys.parse().expect("a valid SESSION_KEYS");
    Sessions::new(ring, SessionConfig::default()).expect("a valid configuration")
}

async fn visit(sessions: &Sessions, client: &mut Client) -> Visit {
    let mut request = HeaderMap::new();
    if let Some(cookie) = &client.cookie {
        request.insert(COOKIE, format!("__Host-session={cookie}").parse().unwrap());
    }
    let session = sessions
        .load::<u64>(&request)
        .await
        .expect("no store: loading cannot fail");
    let rejection = session.rejection();
    let count = session.update(|count| {
        *count += 1;
        *count
    });
    let mut response = HeaderMap::new();
    sessions
        .save(&session, &mut response)
        .await
        .expect("a counter fits its cookie");
    if let Some(set_cookie) = response.get(SET_COOKIE) {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        client.cookie = Some(pair.split_once('=').unwrap().1.to_owned());
    }
    let sealed_under = client
        .cookie
        .as_deref()
        .and_then(|v| sessions.inspect(v).ok())
        .map(|i| i.key_id);
    Visit {
        count,
        rejection,
        sealed_under,
    }
}

fn opens(sessions: &Sessions, id: KeyId) -> u64 {
    sessions
        .keyring()
        .stats()
        .iter()
        .find(|s| s.id == id)
        .map_or(0, |s| s.opens)
}

/// Prints a check; remembers a failure.
fn check(ok: &mut bool, condition: bool, what: &str) {
    println!("   [{}] {what}", if condition { "ok" } else { "FAILED" });
    *ok &= condition;
}

/// Runs the drill, printing each step; true when every check held.
pub async fn drill() -> bool {
    let (a, b) = (Key::generate(), Key::generate());
    let (a_id, b_id) = (a.id(), b.id());
    let (a, b) = (a.to_base64url(), b.to_base64url());
    let mut clients: Vec<Client> = ["ana", "ben", "cai", "dee", "eli"]
        .into_iter()
        .map(|name| Client { name, cookie: None })
        .collect();
    let mut ok = true;

    println!("1. SESSION_KEYS=A ({a_id}): users arrive");
    let ring_a = instances(&a);
    for client in &mut clients {
        let v = visit(&ring_a, client).await;
        check(
            &mut ok,
            v.count == 1 && v.sealed_under == Some(a_id),
            &format!("{} has a session sealed under A", client.name),
        );
    }

    println!("2. SESSION_KEYS=A,B: B added as an older key on every instance");
    let ring_ab = instances(&format!("{a},{b}"));
    for client in &mut clients {
        let v = visit(&ring_ab, client).await;
        check(
            &mut ok,
            v.count == 2 && v.sealed_under == Some(a_id),
            &format!(
                "{} continues (2), still under A: nothing moved to B yet",
                client.name
            ),
        );
    }

    println!("3. SESSION_KEYS=B,A: B promoted; A only opens");
    let ring_ba = instances(&format!("{b},{a}"));
    let (active, away) = clients.split_at_mut(4);
    for round in 1..=2u64 {
        for client in active.iter_mut() {
            let v = visit(&ring_ba, client).await;
            check(
                &mut ok,
                v.count == 2 + round && v.sealed_under == Some(b_id),
                &format!(
                    "{} continues ({}), re-sealed under B",
                    client.name,
                    2 + round
                ),
            );
        }
        let (opens_a, opens_b) = (opens(&ring_ba, a_id), opens(&ring_ba, b_id));
        println!("   opens after round {round}: A={opens_a} B={opens_b}");
        check(
            &mut ok,
            opens_a == 4 && opens_b == 4 * (round - 1),
            &format!("round {round}: A opened only the first visits; A is draining"),
        );
    }
    println!(
        "   {} stayed away: their cookie is still sealed under A",
        away[0].name
    );

    println!("4. SESSION_KEYS=B: A retired");
    let ring_b = instances(&b);
    for client in active.iter_mut() {
        let v = visit(&ring_b, client).await;
        check(
            &mut ok,
            v.count == 5 && v.rejection.is_none(),
            &format!("{} continues (5) under B", client.name),
        );
    }
    let v = visit(&ring_b, &mut away[0]).await;
    check(
        &mut ok,
        v.count == 1 && v.rejection == Some(Rejection::UnknownKey),
        &format!(
            "{} starts over: cookie under A is refused as unknown_key",
            away[0].name
        ),
    );
    println!(
        "   (retire A only when its opens stay at zero on every instance, or one absolute timeout after step 3)"
    );

    println!("drill {}", if ok { "passed" } else { "FAILED" });
    ok
}

#[allow(dead_code)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if drill().await {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
