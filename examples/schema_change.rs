//! The schema-change drill, end to end, in process: four releases of an
//! application change its session type while users are logged in, and
//! each step runs real requests through `load`/`save` on `http` headers,
//! bouncing every user between the instances of that step, prints what
//! happened and checks it. Exits 1 on any surprise.
//!
//! 1. Release 1 stores `LoginV1 { user, count }`, with no `Schema`
//!    (schema version 0).
//! 2. Release 2 adds `#[serde(default)] theme: Option<String>` at the end
//!    and is deployed everywhere at once: no schema is needed, every
//!    cookie opens. At once, because a release 1 instance left running
//!    cannot read what release 2 writes (the extra field): a rolling
//!    deploy of even an additive change takes the two phases of step 3.
//! 3. Release 3 renames `count` to `visits` and makes the theme an enum:
//!    a change that needs a migration. It goes out in two phases, like a
//!    key rotation: phase 1 reads both versions and writes version 0
//!    (`write_as`) beside release 2; phase 2 writes version 1 beside
//!    phase 1; then phase 2 alone, where `schema_stats` shows version 0
//!    draining. An instance that meets a cookie of a schema it does not
//!    know (release 2 after phase 2, an operator who skipped phase 1)
//!    refuses to overwrite it.
//! 4. Release 4 adds the user's language (version 2): a release 1 cookie
//!    goes through the chain `0 → 1 → 2`.
//!
//! ```sh
//! cargo run --example schema_change
//! ```

use std::process::ExitCode;

use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use sealed_session::{Key, Keyring, Rejection, SaveError, Schema, SessionConfig, Sessions};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Release 1's session: no schema (version 0).
#[derive(Default, Serialize, Deserialize)]
struct LoginV1 {
    user: String,
    count: u64,
}

/// Release 2's: a field added at the end with a default, still no schema.
#[derive(Clone, Default, Serialize, Deserialize)]
struct LoginV2 {
    user: String,
    count: u64,
    #[serde(default)]
    theme: Option<String>,
}

/// Release 3's (schema version 1): `count` renamed `visits`, the theme an
/// enum. Version 0 bytes do not decode as this type.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Login {
    user: String,
    visits: u64,
    theme: Theme,
}

/// Release 3's theme.
#[derive(Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
enum Theme {
    #[default]
    Light,
    Dark,
}

/// Release 4's (schema version 2): the user's language added, with no
/// default of its own (so a version and a migration).
#[derive(Serialize, Deserialize)]
struct LoginV4 {
    user: String,
    visits: u64,
    theme: Theme,
    language: String,
}

impl Default for LoginV4 {
    fn default() -> LoginV4 {
        to_v4(Login::default())
    }
}

/// Version 0 (release 1 or 2, which decode alike) to version 1.
fn upgrade(old: LoginV2) -> Login {
    let dark = old.theme.as_deref() == Some("dark");
    Login {
        user: old.user,
        visits: old.count,
        theme: if dark { Theme::Dark } else { Theme::Light },
    }
}

/// Version 1 to version 0, for phase 1.
fn downgrade(login: &Login) -> LoginV2 {
    LoginV2 {
        user: login.user.clone(),
        count: login.visits,
        theme: (login.theme == Theme::Dark).then(|| "dark".to_owned()),
    }
}

/// Version 1 to version 2.
fn to_v4(login: Login) -> LoginV4 {
    LoginV4 {
        user: login.user,
        visits: login.visits,
        theme: login.theme,
        language: "en".into(),
    }
}

/// Release 3, phase 1: reads versions 0 and 1, writes version 0.
fn phase_1() -> Schema<Login> {
    phase_2().write_as(0, downgrade)
}

/// Release 3, phase 2: reads versions 0 and 1, writes version 1.
fn phase_2() -> Schema<Login> {
    Schema::new(1).migrate(0, upgrade)
}

/// Release 4: versions 0 and 1 convert step by step to version 2.
fn release_4() -> Schema<LoginV4> {
    Schema::new(2).migrate(0, upgrade).migrate(1, to_v4)
}

/// A release's session type, seen as what every release holds (user,
/// visits, theme), in release 3's terms, so one handler serves them all.
trait Account: Serialize + DeserializeOwned + Default + 'static {
    /// The parts every release has.
    fn login(&self) -> Login;
    /// Changes those parts.
    fn set_login(&mut self, login: Login);
}

impl Account for LoginV1 {
    fn login(&self) -> Login {
        upgrade(LoginV2 {
            user: self.user.clone(),
            count: self.count,
            theme: None,
        })
    }
    fn set_login(&mut self, login: Login) {
        (self.user, self.count) = (login.user, login.visits);
    }
}

impl Account for LoginV2 {
    fn login(&self) -> Login {
        upgrade(self.clone())
    }
    fn set_login(&mut self, login: Login) {
        *self = downgrade(&login);
    }
}

impl Account for Login {
    fn login(&self) -> Login {
        self.clone()
    }
    fn set_login(&mut self, login: Login) {
        *self = login;
    }
}

impl Account for LoginV4 {
    fn login(&self) -> Login {
        Login {
            user: self.user.clone(),
            visits: self.visits,
            theme: self.theme,
        }
    }
    fn set_login(&mut self, login: Login) {
        (self.user, self.visits, self.theme) = (login.user, login.visits, login.theme);
    }
}

/// A release of the application.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Release {
    One,
    Two,
    ThreePhase1,
    ThreePhase2,
    Four,
}

impl Release {
    fn name(self) -> &'static str {
        match self {
            Release::One => "release 1",
            Release::Two => "release 2",
            Release::ThreePhase1 => "release 3 phase 1",
            Release::ThreePhase2 => "release 3 phase 2",
            Release::Four => "release 4",
        }
    }

    /// The schema version this release writes a session loaded at
    /// `loaded` (`None`: new) at: never lower than it was.
    fn writes(self, loaded: Option<u32>) -> u32 {
        match self {
            Release::One | Release::Two => 0,
            Release::ThreePhase1 => loaded.unwrap_or(0),
            Release::ThreePhase2 => 1,
            Release::Four => 2,
        }
    }
}

/// One running instance: a release and its `Sessions`, as a process
/// started with the shared `SESSION_KEYS` would build them.
struct Instance {
    release: Release,
    sessions: Sessions,
}

fn instance(keys: &str, release: Release) -> Instance {
    let ring: Keyring = keys.parse().expect("a valid SESSION_KEYS");
    let config = SessionConfig::default();
    let config = match release {
        Release::One | Release::Two => config,
        Release::ThreePhase1 => config.with_schema(phase_1()),
        Release::ThreePhase2 => config.with_schema(phase_2()),
        Release::Four => config.with_schema(release_4()),
    };
    let sessions = Sessions::new(ring, config).expect("a valid configuration");
    Instance { release, sessions }
}

/// A browser holding one session cookie, and what its user expects.
struct Client {
    name: &'static str,
    cookie: Option<String>,
    /// The count the next visit should show.
    next: u64,
    /// The theme the user chose.
    dark: bool,
    /// The schema version of the cookie held (`None`: no cookie).
    schema: Option<u32>,
}

impl Client {
    /// A browser without a cookie.
    fn new(name: &'static str) -> Client {
        Client {
            name,
            cookie: None,
            next: 1,
            dark: false,
            schema: None,
        }
    }
}

/// What one request saw.
struct Visit {
    user: String,
    count: u64,
    dark: bool,
    rejection: Option<Rejection>,
    saved: Result<(), SaveError>,
    set_cookie: bool,
}

/// One request of `client` to `instance`: the handler logs the user in
/// when the session has nobody, counts the visit and, if `choose_dark`,
/// sets the theme.
async fn visit(instance: &Instance, client: &mut Client, choose_dark: bool) -> Visit {
    let sessions = &instance.sessions;
    let visit = match instance.release {
        Release::One => visit_as::<LoginV1>(sessions, client, choose_dark).await,
        Release::Two => visit_as::<LoginV2>(sessions, client, choose_dark).await,
        Release::ThreePhase1 | Release::ThreePhase2 => {
            visit_as::<Login>(sessions, client, choose_dark).await
        }
        Release::Four => visit_as::<LoginV4>(sessions, client, choose_dark).await,
    };
    client.schema = client
        .cookie
        .as_deref()
        .and_then(|c| sessions.inspect(c).ok())
        .and_then(|i| i.schema);
    visit
}

async fn visit_as<T: Account>(
    sessions: &Sessions,
    client: &mut Client,
    choose_dark: bool,
) -> Visit {
    let mut request = HeaderMap::new();
    if let Some(cookie) = &client.cookie {
        request.insert(COOKIE, format!("__Host-session={cookie}").parse().unwrap());
    }
    let session = sessions
        .load::<T>(&request)
        .await
        .expect("no store: loading cannot fail");
    let rejection = session.rejection();
    let login = session.update(|value| {
        let mut login = value.login();
        if login.user.is_empty() {
            login.user = client.name.to_owned();
        }
        if choose_dark {
            login.theme = Theme::Dark;
        }
        login.visits += 1;
        value.set_login(login.clone());
        login
    });
    let mut response = HeaderMap::new();
    let saved = sessions.save(&session, &mut response).await;
    let set_cookie = response.get(SET_COOKIE);
    if let Some(set_cookie) = set_cookie {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        client.cookie = Some(pair.split_once('=').unwrap().1.to_owned());
    }
    Visit {
        user: login.user,
        count: login.visits,
        dark: login.theme == Theme::Dark,
        rejection,
        saved,
        set_cookie: set_cookie.is_some(),
    }
}

/// Prints a check; remembers a failure.
fn check(ok: &mut bool, condition: bool, what: &str) {
    println!("   [{}] {what}", if condition { "ok" } else { "FAILED" });
    *ok &= condition;
}

/// A visit that must continue the client's session on `instance`: no
/// rejection, the same user and theme, the count one more, the cookie
/// written at the schema version the release writes.
async fn continues(ok: &mut bool, instance: &Instance, client: &mut Client, choose_dark: bool) {
    let loaded = client.schema;
    let v = visit(instance, client, choose_dark).await;
    client.dark |= choose_dark;
    let written = instance.release.writes(loaded);
    check(
        ok,
        v.rejection.is_none()
            && v.user == client.name
            && v.count == client.next
            && v.dark == client.dark
            && v.saved.is_ok()
            && v.set_cookie
            && client.schema == Some(written),
        &format!(
            "{} on {}: user {}, count {}{}, cookie at schema {written}",
            client.name,
            instance.release.name(),
            client.name,
            client.next,
            if client.dark { ", dark theme" } else { "" },
        ),
    );
    client.next += 1;
}

/// Rounds of one visit per client, each client sent to the next instance
/// in turn (and to another one than in the round before).
async fn bounce(
    ok: &mut bool,
    instances: &[&Instance],
    clients: &mut [Client],
    rounds: std::ops::Range<usize>,
) {
    for round in rounds {
        for (i, client) in clients.iter_mut().enumerate() {
            let instance = instances[(round + i) % instances.len()];
            continues(ok, instance, client, false).await;
        }
    }
}

/// Opens of schema `version` on `instance` so far.
fn opens(instance: &Instance, version: u32) -> u64 {
    instance
        .sessions
        .schema_stats()
        .iter()
        .flat_map(|s| s.opens.iter())
        .find(|(v, _)| *v == version)
        .map_or(0, |(_, n)| *n)
}

/// Runs the drill, printing each step; true when every check held.
pub async fn drill() -> bool {
    let keys = Key::generate().to_base64url();
    let mut clients: Vec<Client> = ["ana", "ben", "cai", "dee", "eli", "fay"]
        .into_iter()
        .map(Client::new)
        .collect();
    let mut ok = true;

    println!("1. release 1 on two instances: users log in (LoginV1, no schema)");
    let one = [instance(&keys, Release::One), instance(&keys, Release::One)];
    bounce(&mut ok, &[&one[0], &one[1]], &mut clients, 0..1).await;
    let (active, away) = clients.split_at_mut(4);
    let [eli, fay] = away else {
        unreachable!("six clients")
    };
    println!("   eli and fay stay away (until steps 6 and 7) with release 1 cookies");

    println!("2. release 2 everywhere: `#[serde(default)] theme` added at the end, no schema");
    let two = [instance(&keys, Release::Two), instance(&keys, Release::Two)];
    bounce(&mut ok, &[&two[0], &two[1]], active, 0..1).await;
    println!("   ben chooses the dark theme");
    continues(&mut ok, &two[0], &mut active[1], true).await;
    let mut copy = Client {
        cookie: active[0].cookie.clone(),
        ..Client::new("ana")
    };
    let v = visit(&one[0], &mut copy, false).await;
    check(
        &mut ok,
        v.rejection == Some(Rejection::Incompatible) && v.count == 1,
        "why at once: a release 1 instance left running refuses a release 2 cookie (its \
         trailing field) as incompatible, and the user starts over",
    );

    println!("3. release 3 phase 1 beside release 2: reads versions 0 and 1, writes 0");
    let p1 = instance(&keys, Release::ThreePhase1);
    bounce(&mut ok, &[&two[1], &p1], active, 0..2).await;

    println!("4. release 3 phase 2 beside phase 1: writes version 1");
    let p2 = instance(&keys, Release::ThreePhase2);
    bounce(&mut ok, &[&p1, &p2], active, 0..2).await;
    check(
        &mut ok,
        active.iter().all(|c| c.schema == Some(1)),
        "every active user's cookie is at version 1: phase 1 never lowered one",
    );

    println!("5. an operator skipped phase 1: a release 2 instance meets a version 1 cookie");
    let cai = &mut active[2];
    let before = cai.cookie.clone();
    let v = visit(&two[0], cai, false).await;
    check(
        &mut ok,
        v.rejection == Some(Rejection::NewerSchema(1)) && v.user == cai.name && v.count == 1,
        "cai gets a new session there (newer_schema(1)) and the handler logs cai in again",
    );
    check(
        &mut ok,
        v.saved == Err(SaveError::NewerSchema { version: 1 }) && !v.set_cookie,
        "its save is refused (SaveError::NewerSchema): no Set-Cookie (the tower layer answers 503)",
    );
    check(
        &mut ok,
        cai.cookie == before && cai.schema == Some(1),
        "cai's browser keeps the version 1 cookie",
    );
    continues(&mut ok, &p2, cai, false).await;

    println!("6. release 3 phase 2 only: version 0 drains");
    let p2b = instance(&keys, Release::ThreePhase2);
    let zero = opens(&p2, 0);
    println!("   version 0 opens on the first phase 2 instance during step 4: {zero}");
    for round in 0..2 {
        bounce(&mut ok, &[&p2, &p2b], active, round..round + 1).await;
        let (first, second) = (opens(&p2, 0), opens(&p2b, 0));
        println!(
            "   after round {}: version 0 opens {first} and {second}",
            round + 1
        );
        check(
            &mut ok,
            first == zero && second == 0 && opens(&p2b, 1) == 2 * (round as u64 + 1),
            "no version 0 cookie among the active users any more",
        );
    }
    println!("   eli comes back with a release 1 cookie");
    continues(&mut ok, &p2b, eli, false).await;
    check(
        &mut ok,
        opens(&p2b, 0) == 1,
        "a version 0 open again: drop a migration only one absolute timeout after phase 2",
    );

    println!("7. release 4 everywhere (version 2, migrations 0 -> 1 -> 2)");
    let four = [
        instance(&keys, Release::Four),
        instance(&keys, Release::Four),
    ];
    bounce(&mut ok, &[&four[0], &four[1]], active, 0..1).await;
    println!("   fay comes back with a release 1 cookie");
    continues(&mut ok, &four[0], fay, false).await;
    let stats = four[0].sessions.schema_stats();
    println!(
        "   opens by version on the first release 4 instance: {:?}",
        stats[0].opens
    );
    check(
        &mut ok,
        stats[0].opens == [(0, 1), (1, 2), (2, 0)],
        "fay's version 0 went through both migrations, the others' version 1 through one",
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
