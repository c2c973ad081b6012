//! A model-based test of the session lifecycle: random sequences of
//! operations against the real `Sessions` (manual clock, a real store
//! behind a switchable wrapper), checked after every step against a small
//! reference model of what must hold.
//!
//! The model knows, for every cookie a client holds, what loading it must
//! give: the value, or the typed reason it is refused (unknown key,
//! expired, revoked, missing or invalid store entry), or a load error
//! while the store is down. It also says which save outcomes are allowed:
//! a refused save changes nothing; `Ended` only when the session was
//! ended (or its entry taken) since the request loaded it; a cookie
//! written carries the expected value, id, times and place (cookie or
//! store entry). What the model does *not* decide, it takes from the
//! implementation's output (an `inspect` of the cookie written) and then
//! holds it to that from then on.
//!
//! Dimensions: three clients holding copies (copying a cookie is an
//! operation); requests that read, set, grow, shrink, no-op update, renew,
//! destroy, destroy then set; two requests loaded before either saves; the
//! clock moved around the rolling, idle and absolute boundaries and the
//! skew; two instances whose clocks differ by the allowed skew; keys
//! added, promoted and retired; revocation on and off; cookie
//! and server mode; cookies of a newer schema protected or replaced
//! (`with_replace_newer_schemas`); a cookie of the session's name planted
//! before a client's own (another path: the browser sends both); a login
//! (`renew` with a short absolute timeout of its own) on a session older
//! than that; a store that is down or refuses writes, and a real
//! capacity bound; and releases of the session type deployed to each
//! instance in any order (no schema, phase 1 reading schema 1 and writing
//! 0, phase 2 writing 1), where schema 0 holds each byte with its top bit
//! flipped, so that a value read without its conversion shows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use proptest::prelude::*;
use sealed_session::{
    ManualClock, Rejection, SaveError, Schema, Session, SessionConfig, SessionId, SessionLifetime,
    SessionStore, Sessions, StoreError, StoreKey, StoreMode,
};

use crate::common::suite::Recording;
use crate::common::{request, set_cookies};

const IDLE: u64 = 1000;
const ROLLING: f64 = 0.25;
// Close enough to IDLE that sequences of a few dozen steps reach it.
const ABSOLUTE: u64 = 1500;
const SKEW: u64 = 60;
/// The absolute timeout a login gives its session (below `ABSOLUTE`, and
/// set whether or not the configuration has one).
const LOGIN_ABSOLUTE: u64 = 400;
const NAME: &str = "s";
const JARS: usize = 3;
const SLOTS: usize = 2;
/// Two instances share keys and store: the second's clock runs ahead of
/// the first's (and of the store's) by the whole allowed skew.
const OFFSETS: [u64; 2] = [0, SKEW];
/// Values past this many bytes do not fit a 4096-byte cookie.
const LARGE: usize = 4000;
/// A planted cookie of the session's name: refused as `Malformed`.
const PLANTED: &str = "x";

/// The release of the session type an instance runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Release {
    /// No schema: version 0.
    Old,
    /// Schema 1, migrating from 0; writes 0.
    Phase1,
    /// Schema 1, migrating from 0; writes 1.
    Phase2,
}

/// Schema 0's encoding of a value: every byte with its top bit flipped.
fn flip(bytes: Vec<u8>) -> Vec<u8> {
    bytes.into_iter().map(|b| b ^ 0x80).collect()
}

impl Release {
    fn config(self, config: SessionConfig) -> SessionConfig {
        let schema = Schema::<Vec<u8>>::new(1).migrate(0, flip);
        match self {
            Release::Old => config,
            Release::Phase1 => {
                config.with_schema(schema.write_as(0, |v: &Vec<u8>| flip(v.clone())))
            }
            Release::Phase2 => config.with_schema(schema),
        }
    }

    /// The newest schema it reads.
    fn known(self) -> u32 {
        if self == Release::Old { 0 } else { 1 }
    }

    /// A value in this release's terms in schema 1's, and back: the
    /// old release's type is schema 0's.
    fn canonical(self, value: Vec<u8>) -> Vec<u8> {
        if self == Release::Old {
            flip(value)
        } else {
            value
        }
    }

    /// The schema it writes a new session at.
    fn writes(self) -> u32 {
        if self == Release::Phase2 { 1 } else { 0 }
    }
}

/// The configuration of one run.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub revocation: bool,
    pub server: bool,
    pub absolute: bool,
    /// Saves may replace cookies of a newer schema.
    pub replace: bool,
}

/// A value a request may set.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    Small,
    Large,
    Larger,
}

#[derive(Clone, Copy, Debug)]
pub struct Val(pub u8, pub Size);

impl Val {
    fn bytes(self) -> Vec<u8> {
        let len = match self.1 {
            Size::Small => 8,
            Size::Large => 5000,
            Size::Larger => 7000,
        };
        vec![self.0; len]
    }
}

/// What a handler does to the session.
#[derive(Clone, Copy, Debug)]
pub enum Action {
    Read,
    Set(Val),
    NoopUpdate,
    Renew,
    RenewThenSet(Val),
    Destroy,
    DestroyThenSet(Val),
    DestroyThenNoop,
    /// `renew` and a lifetime of the session's own: an absolute timeout
    /// of `LOGIN_ABSOLUTE`, which runs from the renewal.
    Login,
}

impl Action {
    fn apply(self, session: &Session<Vec<u8>>) {
        match self {
            Action::Read => drop(session.read(Vec::len)),
            Action::Set(v) => session.set(v.bytes()),
            Action::NoopUpdate => session.update(|_| ()),
            Action::Renew => session.renew(),
            Action::RenewThenSet(v) => {
                session.renew();
                session.set(v.bytes());
            }
            Action::Destroy => session.destroy(),
            Action::DestroyThenSet(v) => {
                session.destroy();
                session.set(v.bytes());
            }
            Action::DestroyThenNoop => {
                session.destroy();
                session.update(|_| ());
            }
            Action::Login => {
                session.renew();
                session.set_lifetime(
                    SessionLifetime::configured()
                        .with_absolute_timeout(Duration::from_secs(LOGIN_ABSOLUTE)),
                );
            }
        }
    }

    /// The value after the action, from the value loaded.
    fn value(self, loaded: &[u8]) -> Vec<u8> {
        match self {
            Action::Read | Action::NoopUpdate | Action::Renew | Action::Login => loaded.to_vec(),
            Action::Set(v) | Action::RenewThenSet(v) | Action::DestroyThenSet(v) => v.bytes(),
            Action::Destroy | Action::DestroyThenNoop => Vec::new(),
        }
    }

    /// Ends the id loaded (`destroy` or `renew`).
    fn ends(self) -> bool {
        !matches!(self, Action::Read | Action::Set(_) | Action::NoopUpdate)
    }

    /// Carries the loaded value on under a new id.
    fn renews(self) -> bool {
        matches!(
            self,
            Action::Renew | Action::RenewThenSet(_) | Action::Login
        )
    }

    /// Destroys with nothing set after (or only `T::default()`, which is
    /// no value): the removal cookie.
    fn removes(self) -> bool {
        matches!(self, Action::Destroy | Action::DestroyThenNoop)
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    /// A request that loads now, on instance `on`, and saves later
    /// (`Finish`) on the same instance.
    Begin {
        slot: usize,
        jar: usize,
        on: usize,
    },
    Finish {
        slot: usize,
        action: Action,
    },
    /// A request that loads, acts and saves at once, on instance `on`.
    Request {
        jar: usize,
        action: Action,
        on: usize,
    },
    /// Someone copies a client's cookie.
    Copy {
        from: usize,
        to: usize,
    },
    Advance(u64),
    /// Moves the clock to a client's cookie's idle or absolute deadline
    /// plus `delta` seconds (if that is ahead): the boundaries, with and
    /// without the skew, where copies change from valid to refused.
    Near {
        jar: usize,
        absolute: bool,
        delta: i64,
    },
    AddKey,
    Promote,
    Retire,
    Down(bool),
    Full(bool),
    /// Instance `on` restarts with another release.
    Deploy {
        on: usize,
        release: Release,
    },
    /// A cookie of the session's name that never opens is planted in (or
    /// removed from) a client, sent before its own (another path).
    Plant(usize),
}

pub fn setups() -> impl Strategy<Value = Setup> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(revocation, server, absolute, replace)| Setup {
            revocation,
            server,
            absolute,
            replace,
        },
    )
}

fn vals() -> impl Strategy<Value = Val> {
    (
        1u8..=4,
        prop_oneof![3 => Just(Size::Small), 2 => Just(Size::Large), 1 => Just(Size::Larger)],
    )
        .prop_map(|(b, s)| Val(b, s))
}

fn actions() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => Just(Action::Read),
        4 => vals().prop_map(Action::Set),
        1 => Just(Action::NoopUpdate),
        2 => Just(Action::Renew),
        1 => vals().prop_map(Action::RenewThenSet),
        2 => Just(Action::Destroy),
        1 => vals().prop_map(Action::DestroyThenSet),
        1 => Just(Action::DestroyThenNoop),
        1 => Just(Action::Login),
    ]
}

pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    let jar = 0..JARS;
    let slot = 0..SLOTS;
    let op = prop_oneof![
        8 => (jar.clone(), actions(), 0..OFFSETS.len())
            .prop_map(|(jar, action, on)| Op::Request { jar, action, on }),
        2 => (slot.clone(), jar.clone(), 0..OFFSETS.len())
            .prop_map(|(slot, jar, on)| Op::Begin { slot, jar, on }),
        2 => (slot, actions()).prop_map(|(slot, action)| Op::Finish { slot, action }),
        2 => (jar.clone(), jar).prop_map(|(from, to)| Op::Copy { from, to }),
        4 => prop_oneof![
            Just(1u64), Just(SKEW), Just(SKEW + 1), Just(249), Just(250), Just(251),
            Just(IDLE - 1), Just(IDLE), Just(IDLE + 1), Just(ABSOLUTE - IDLE),
        ]
        .prop_map(Op::Advance),
        3 => (
            0..JARS,
            any::<bool>(),
            prop_oneof![
                Just(-(SKEW as i64) - 1),
                Just(-(SKEW as i64)),
                Just(-(SKEW as i64) + 1),
                Just(-1i64),
                Just(0),
                Just(1),
            ]
        )
            .prop_map(|(jar, absolute, delta)| Op::Near {
                jar,
                absolute,
                delta
            }),
        1 => Just(Op::AddKey),
        1 => Just(Op::Promote),
        1 => Just(Op::Retire),
        1 => any::<bool>().prop_map(Op::Down),
        1 => any::<bool>().prop_map(Op::Full),
        2 => (
            0..OFFSETS.len(),
            prop_oneof![Just(Release::Old), Just(Release::Phase1), Just(Release::Phase2)]
        )
            .prop_map(|(on, release)| Op::Deploy { on, release }),
        1 => (0..JARS).prop_map(Op::Plant),
    ];
    proptest::collection::vec(op, 1..60)
}

/// A cookie a client holds, and what it was sealed with.
#[derive(Clone, Debug)]
struct Cookie {
    value: String,
    id: SessionId,
    /// The value as sealed (inline) or as written (store-held).
    data: Vec<u8>,
    created: u64,
    issued: u64,
    /// The byte of the key that sealed it (keys are `key(byte)`).
    key: u8,
    store: Option<StoreKey>,
    /// The schema of the value in the cookie (store-held: the entry's).
    schema: u32,
    /// The session's own absolute timeout (a login's), if any.
    absolute: Option<u64>,
}

/// A store entry, as the model sees it.
#[derive(Clone, Debug)]
struct Entry {
    data: Vec<u8>,
    key: u8,
    schema: u32,
    /// It lives as long as any copy of its cookie could open: idle +
    /// skew (+ 1 s) from its last write, within the absolute deadline.
    expires: u64,
}

/// What loading a cookie must give.
#[derive(Debug, PartialEq)]
enum Expect {
    Opens(Vec<u8>),
    Refused(Rejection),
    LoadError,
}

/// A request between its load and its save.
struct Pending {
    sessions: Sessions,
    ring: Vec<u8>,
    session: Session<Vec<u8>>,
    /// The cookie it opened, if any.
    loaded: Option<Cookie>,
    loaded_at: u64,
    jar: usize,
    /// The instance it runs on.
    on: usize,
    /// The release it runs.
    release: Release,
    /// The cookie, when it was refused as of a newer schema: nothing may
    /// be saved over it but a logout.
    newer: Option<Cookie>,
}

/// A clock ahead of another by a fixed number of seconds.
#[derive(Debug)]
struct Ahead(ManualClock, u64);

impl sealed_session::Clock for Ahead {
    fn now(&self) -> u64 {
        sealed_session::Clock::now(&self.0) + self.1
    }
}

struct World {
    setup: Setup,
    clock: ManualClock,
    store: Arc<Recording>,
    /// One configuration per instance (they differ in their clock).
    configs: Vec<SessionConfig>,
    ring: Vec<u8>,
    sessions: Vec<Sessions>,
    releases: [Release; 2],
    /// The first instance's (and the store's) time.
    now: u64,
    jars: [Option<Cookie>; JARS],
    /// The clients that send a planted cookie before their own.
    planted: [bool; JARS],
    slots: [Option<Pending>; SLOTS],
    revoked: HashSet<SessionId>,
    entries: HashMap<StoreKey, Entry>,
    down: bool,
    full: bool,
    /// The store times entries out in real time (Redis), not on the
    /// manual clock: an entry past its time in the model may still be
    /// there.
    real_ttl: bool,
}

fn keyring(bytes: &[u8]) -> sealed_session::Keyring {
    crate::common::ring(bytes)
}

impl World {
    fn new(
        setup: Setup,
        clock: ManualClock,
        store: Arc<dyn SessionStore>,
        real_ttl: bool,
    ) -> World {
        let store = Arc::new(Recording::new(store));
        let config = SessionConfig::default()
            .with_idle_timeout(Some(Duration::from_secs(IDLE)))
            .with_absolute_timeout(setup.absolute.then(|| Duration::from_secs(ABSOLUTE)))
            .with_rolling(ROLLING)
            .with_clock_skew(Duration::from_secs(SKEW))
            .with_cookie_name(NAME)
            .with_shared_store(store.clone())
            // The model's store-down steps fail calls one by one; the
            // circuit breaker (tests/circuit_breaker.rs) would fail the
            // calls after them at once, which the model does not model.
            .with_circuit_breaker(None)
            .with_revocation(setup.revocation)
            .with_replace_newer_schemas(setup.replace)
            .with_store_mode(if setup.server {
                StoreMode::Server
            } else {
                StoreMode::Cookie
            });
        let configs: Vec<SessionConfig> = OFFSETS
            .iter()
            .map(|&ahead| config.clone().with_clock(Ahead(clock.clone(), ahead)))
            .collect();
        let ring = vec![1];
        let releases = [Release::Old; 2];
        let sessions = configs
            .iter()
            .map(|c| Sessions::new(keyring(&ring), c.clone()).unwrap())
            .collect();
        World {
            setup,
            now: sealed_session::Clock::now(&clock),
            clock,
            store,
            configs,
            ring,
            sessions,
            releases,
            jars: Default::default(),
            planted: [false; JARS],
            slots: Default::default(),
            revoked: HashSet::new(),
            entries: HashMap::new(),
            down: false,
            full: false,
            real_ttl,
        }
    }

    fn rebuild(&mut self) {
        let ring = &self.ring;
        self.sessions = self
            .configs
            .iter()
            .zip(self.releases)
            .map(|(c, release)| Sessions::new(keyring(ring), release.config(c.clone())).unwrap())
            .collect();
    }

    /// Instance `on`'s time.
    fn at(&self, on: usize) -> u64 {
        self.now + OFFSETS[on]
    }

    /// The absolute timeout of a session with its own one `own`, or the
    /// configured one.
    fn absolute(&self, own: Option<u64>) -> Option<u64> {
        own.or(self.setup.absolute.then_some(ABSOLUTE))
    }

    /// What loading `cookie` on instance `on` must give now.
    fn expect(&self, cookie: &Cookie, on: usize) -> Expect {
        let now = self.at(on);
        if !self.ring.contains(&cookie.key) {
            return Expect::Refused(Rejection::UnknownKey);
        }
        if self
            .absolute(cookie.absolute)
            .is_some_and(|a| now >= cookie.created + a)
        {
            return Expect::Refused(Rejection::AbsoluteExpired);
        }
        if now >= cookie.issued + IDLE {
            return Expect::Refused(Rejection::IdleExpired);
        }
        if self.down && (self.setup.revocation || cookie.store.is_some()) {
            return Expect::LoadError;
        }
        if self.setup.revocation && self.revoked.contains(&cookie.id) {
            return Expect::Refused(Rejection::Revoked);
        }
        let (data, schema) = match cookie.store {
            None => (&cookie.data, cookie.schema),
            Some(store_key) => match self.live(store_key) {
                None => return Expect::Refused(Rejection::MissingStoreEntry),
                Some(entry) if !self.ring.contains(&entry.key) => {
                    return Expect::Refused(Rejection::StoreEntryInvalid);
                }
                Some(entry) => (&entry.data, entry.schema),
            },
        };
        let release = self.releases[on];
        if schema > release.known() {
            return Expect::Refused(Rejection::NewerSchema(schema));
        }
        Expect::Opens(release.canonical(data.clone()))
    }

    fn live(&self, store_key: StoreKey) -> Option<&Entry> {
        self.entries
            .get(&store_key)
            .filter(|e| self.now < e.expires)
    }

    /// An entry written now by instance `on` for a session created at
    /// `created`. Its lifetime comes from the writer's clock; the store
    /// counts it down on its own (the first instance's).
    fn entry(
        &self,
        data: Vec<u8>,
        key: u8,
        schema: u32,
        cookie: (u64, Option<u64>),
        on: usize,
    ) -> Entry {
        let (created, own) = cookie;
        let mut ttl = IDLE + SKEW + 1;
        if let Some(absolute) = self.absolute(own) {
            ttl = ttl.min((created + absolute + SKEW + 1).saturating_sub(self.at(on)));
        }
        Entry {
            data,
            key,
            schema,
            expires: self.now + ttl.max(1),
        }
    }

    fn headers(cookie: Option<&Cookie>, planted: bool) -> HeaderMap {
        let mut pairs = Vec::new();
        if planted {
            pairs.push((NAME, PLANTED));
        }
        if let Some(c) = cookie {
            pairs.push((NAME, c.value.as_str()));
        }
        if pairs.is_empty() {
            HeaderMap::new()
        } else {
            request(&pairs)
        }
    }

    /// Loads a client's cookie on instance `on` and checks the outcome
    /// against the model.
    async fn load(
        &self,
        on: usize,
        jar: usize,
        what: &str,
    ) -> Option<(Session<Vec<u8>>, Option<Cookie>, Option<Cookie>)> {
        let cookie = self.jars[jar].as_ref();
        let planted = self.planted[jar];
        let loaded = self.sessions[on]
            .load::<Vec<u8>>(&Self::headers(cookie, planted))
            .await;
        // A planted cookie is refused first: its reason is the session's.
        let first = planted.then_some(Rejection::Malformed);
        let Some(cookie) = cookie else {
            let session = loaded.expect("no cookie: a new session, whatever the store does");
            assert!(session.is_new(), "{what}");
            assert_eq!(session.rejection(), first, "{what}");
            return Some((session, None, None));
        };
        let what = format!("{what} on instance {on}");
        match (self.expect(cookie, on), loaded) {
            (Expect::LoadError, Err(_)) => None,
            (Expect::Opens(data), Ok(session)) => {
                assert_eq!(session.rejection(), None, "{what}: jar {jar} must open");
                assert!(!session.is_new(), "{what}");
                assert_eq!(session.id(), cookie.id, "{what}: jar {jar}");
                assert!(
                    session.get() == data,
                    "{what}: jar {jar} opens with another value"
                );
                let mut opened = cookie.clone();
                opened.data = self.releases[on].canonical(data);
                if let Some(store_key) = cookie.store {
                    opened.schema = self.entries[&store_key].schema;
                }
                Some((session, Some(opened), None))
            }
            (Expect::Refused(reason), Ok(session)) => {
                let reason_seen = first.unwrap_or(reason);
                assert_eq!(session.rejection(), Some(reason_seen), "{what}: jar {jar}");
                assert!(session.is_new(), "{what}");
                let newer = matches!(reason, Rejection::NewerSchema(_)).then(|| cookie.clone());
                Some((session, None, newer))
            }
            (expected, Ok(session)) => panic!(
                "{what}: jar {jar}: expected {expected:?}, got a session (rejection {:?})",
                session.rejection()
            ),
            (expected, Err(error)) => {
                panic!("{what}: jar {jar}: expected {expected:?}, got load error {error}")
            }
        }
    }

    /// Every client's cookie loads as the model says, on every instance.
    async fn probe(&self, step: usize) {
        for on in 0..OFFSETS.len() {
            for jar in 0..JARS {
                self.load(on, jar, &format!("probe after step {step}"))
                    .await;
            }
        }
    }

    /// A request on instance `on` that has loaded a client's cookie (none
    /// when the load failed: the store was down).
    async fn load_request(&self, jar: usize, on: usize, what: &str) -> Option<Pending> {
        let (session, loaded, newer) = self.load(on, jar, what).await?;
        Some(Pending {
            sessions: self.sessions[on].clone(),
            ring: self.ring.clone(),
            session,
            loaded,
            loaded_at: self.at(on),
            jar,
            on,
            release: self.releases[on],
            newer,
        })
    }

    async fn begin(&mut self, slot: usize, jar: usize, on: usize, what: &str) {
        if self.slots[slot].is_none() {
            self.slots[slot] = self.load_request(jar, on, what).await;
        }
    }

    async fn finish(&mut self, slot: usize, action: Action, what: &str) {
        let Some(pending) = self.slots[slot].take() else {
            return;
        };
        let Pending {
            sessions,
            ring,
            session,
            mut loaded,
            loaded_at,
            jar,
            on,
            release,
            newer,
        } = pending;
        let now = self.at(on);
        let loaded_value = session.get();
        action.apply(&session);
        let seen = action.value(&loaded_value);
        // The model keeps values in schema 1's terms.
        let value = release.canonical(seen.clone());
        let mut headers = HeaderMap::new();
        let saved = sessions.save(&session, &mut headers).await;
        let cookies = set_cookies(&headers);

        // A logout of a cookie of a newer schema ends its id as any other
        // (its value was never read); with replacing on, so does any save
        // over it, which starts a new session (a renew of the empty value).
        let mut replaced = false;
        let newer = match newer {
            Some(cookie) if action.ends() && !action.renews() => {
                loaded = Some(cookie);
                false
            }
            Some(cookie) if self.setup.replace => {
                loaded = Some(cookie);
                replaced = true;
                false
            }
            other => other.is_some(),
        };
        let ends = action.ends() || replaced;
        let renews = action.renews() || replaced;

        // Since the load, was the session ended, or its entry taken (or
        // timed out: for sure on the manual clock, perhaps in real time)?
        let entry = loaded.as_ref().and_then(|c| c.store);
        let maybe_gone = entry.is_some_and(|k| self.live(k).is_none());
        let gone = entry.is_some_and(|k| {
            !self.entries.contains_key(&k) || (!self.real_ttl && self.live(k).is_none())
        });
        let revoked = loaded
            .as_ref()
            .is_some_and(|c| self.setup.revocation && self.revoked.contains(&c.id));
        // The request ran past the deadline of the cookie it would write.
        // (A value that carries on keeps its session's absolute deadline.)
        let created = loaded
            .as_ref()
            .filter(|_| !ends || renews)
            .map_or(loaded_at, |c| c.created);
        // The session's own absolute timeout after the action: a login's,
        // kept by renew, reset by destroy and by a replacement.
        let own = match (action, &loaded) {
            (Action::Login, _) => Some(LOGIN_ABSOLUTE),
            (_, Some(c)) if !replaced && (!action.ends() || action.renews()) => c.absolute,
            _ => None,
        };
        // A renewed value keeps the deadline of the session it was loaded
        // from (under the lifetime that one had), and its own lifetime runs
        // from the renewal.
        let past =
            |created: u64, own: Option<u64>| self.absolute(own).is_some_and(|a| now >= created + a);
        let late = now >= loaded_at + IDLE
            || match (&loaded, renews) {
                (Some(c), true) => past(c.created, c.absolute) || past(loaded_at, own),
                _ => past(created, own),
            };
        // The schema a written value must be at: the release's, or the
        // loaded one if newer (never lowered); a value set after destroy
        // (or over a replaced cookie) is a new session.
        let carried_schema = loaded
            .as_ref()
            .filter(|_| !replaced && (!action.ends() || action.renews()))
            .map_or(0, |c| c.schema);
        let schema = release.writes().max(carried_schema);
        if newer {
            // A cookie of a newer schema: reading is fine, anything else
            // that would write over it is refused.
            let refused = !matches!(action, Action::Read);
            assert_eq!(
                saved.is_err(),
                refused,
                "{what}: a session over a newer schema saved: {saved:?}"
            );
            if refused {
                assert_eq!(saved, Err(SaveError::NewerSchema { version: 1 }), "{what}");
            }
            assert!(cookies.is_empty(), "{what}: wrote over a newer schema");
            return;
        }

        if let Err(error) = saved {
            assert!(
                cookies.is_empty(),
                "{what}: a failed save wrote {cookies:?}"
            );
            match error {
                SaveError::Store(StoreError::Full) => {}
                SaveError::Store(StoreError::Unavailable(_)) => {
                    assert!(self.down, "{what}: store error while it is up")
                }
                SaveError::Ended => assert!(
                    maybe_gone || revoked || late,
                    "{what}: Ended, but the session was not ended meanwhile"
                ),
                other => panic!("{what}: unexpected save error {other:?}"),
            }
            return;
        }
        if let Some(loaded) = &loaded {
            assert!(
                !(gone && ((!ends && value != loaded.data) || renews)),
                "{what}: a change to a session whose entry was taken meanwhile was accepted"
            );
            assert!(
                !(revoked && renews),
                "{what}: a renew carried a session revoked meanwhile into a new id"
            );
        }
        let primary = ring[0];
        match cookies.as_slice() {
            [] => {
                assert!(!action.removes(), "{what}: destroy sent no removal cookie");
                assert!(
                    !ends || loaded.is_none(),
                    "{what}: renew (or a replacement) wrote nothing"
                );
                let Some(loaded) = &loaded else {
                    return;
                };
                let due = loaded_at.saturating_sub(loaded.issued) >= (IDLE as f64 * ROLLING) as u64
                    || loaded.key != primary
                    || loaded.schema != schema;
                // (A re-issue that finds its entry taken meanwhile writes
                // nothing: the request changed nothing. With revocation
                // on, neither does one whose id was revoked meanwhile, or
                // whose marker could not be read again, the store down.)
                let skipped = self.setup.revocation && (revoked || self.down);
                assert!(
                    !due || maybe_gone || skipped,
                    "{what}: a cookie due for re-issue was not re-issued"
                );
                if value != loaded.data {
                    // Only a store-held value changes without a new cookie.
                    let Some(store_key) = loaded.store else {
                        panic!("{what}: a changed cookie-held value wrote no cookie");
                    };
                    let entry = self.entry(
                        value,
                        primary,
                        schema,
                        (loaded.created, loaded.absolute),
                        on,
                    );
                    self.entries.insert(store_key, entry);
                }
            }
            [removal] if removal.starts_with(&format!("{NAME}=;")) => {
                // Without a destroy: only a cookie that can never open
                // again, on any instance (the table in `src/sessions/load.rs`).
                let dead = loaded.is_none()
                    && matches!(
                        session.rejection(),
                        Some(
                            Rejection::Malformed
                                | Rejection::Forged
                                | Rejection::BeforeCutoff
                                | Rejection::AbsoluteExpired
                                | Rejection::IdleExpired
                                | Rejection::Revoked
                                | Rejection::MissingStoreEntry
                        )
                    );
                assert!(
                    action.removes() || dead,
                    "{what}: removal cookie without destroy, for a cookie refused as {:?}",
                    session.rejection()
                );
                self.end(loaded.as_ref(), ends);
                self.jars[jar] = None;
            }
            [written] => {
                assert!(!action.removes(), "{what}: destroy wrote a session cookie");
                assert!(!late, "{what}: wrote a cookie already past its deadline");
                let text = cookie::Cookie::parse(written.clone()).unwrap();
                let found = sessions.inspect(text.value()).unwrap();
                let continues = loaded.as_ref().filter(|_| !ends);
                assert_eq!(found.session_id, session.id(), "{what}");
                assert_eq!(session.get(), seen, "{what}: the value written");
                match (continues, &loaded) {
                    (Some(c), _) => {
                        assert_eq!(found.session_id, c.id, "{what}: same id");
                        assert_eq!(found.created, c.created, "{what}: same lifetime");
                    }
                    (None, Some(c)) => {
                        assert_ne!(found.session_id, c.id, "{what}: a new id");
                        assert_eq!(found.created, loaded_at, "{what}: a new lifetime");
                    }
                    (None, None) => assert_eq!(found.created, loaded_at, "{what}"),
                }
                assert_eq!(found.issued, loaded_at, "{what}: issued at the load");
                assert_eq!(found.key_position, 0, "{what}: sealed under the primary");
                if found.store_key.is_none() {
                    assert_eq!(found.schema, Some(schema), "{what}: the schema written");
                }
                let in_store = self.setup.server || value.len() > LARGE;
                assert_eq!(
                    found.store_key.is_some(),
                    in_store,
                    "{what}: where it lives"
                );
                match (continues.and_then(|c| c.store), found.store_key) {
                    (Some(old), Some(new)) => assert_eq!(old, new, "{what}: keeps its entry"),
                    (Some(old), None) => drop(self.entries.remove(&old)),
                    (None, Some(new)) => {
                        assert!(!self.entries.contains_key(&new), "{what}: a fresh entry")
                    }
                    (None, None) => {}
                }
                self.end(loaded.as_ref(), ends);
                if let Some(store_key) = found.store_key {
                    let entry =
                        self.entry(value.clone(), primary, schema, (found.created, own), on);
                    self.entries.insert(store_key, entry);
                }
                self.jars[jar] = Some(Cookie {
                    value: text.value().to_owned(),
                    id: found.session_id,
                    data: value,
                    created: found.created,
                    issued: found.issued,
                    key: primary,
                    store: found.store_key,
                    schema,
                    absolute: own,
                });
            }
            more => panic!("{what}: several Set-Cookie {more:?}"),
        }
    }

    /// Records that a save ended the id it loaded.
    fn end(&mut self, loaded: Option<&Cookie>, ends: bool) {
        let Some(loaded) = loaded.filter(|_| ends) else {
            return;
        };
        if self.setup.revocation {
            self.revoked.insert(loaded.id);
        }
        if let Some(store_key) = loaded.store {
            self.entries.remove(&store_key);
        }
    }

    async fn step(&mut self, index: usize, op: &Op) {
        let what = format!("step {index} ({op:?})");
        match *op {
            Op::Begin { slot, jar, on } => self.begin(slot, jar, on, &what).await,
            Op::Finish { slot, action } => self.finish(slot, action, &what).await,
            Op::Request { jar, action, on } => {
                // Loaded and saved at once, in slot 0 for the while.
                if let Some(request) = self.load_request(jar, on, &what).await {
                    let waiting = self.slots[0].replace(request);
                    self.finish(0, action, &what).await;
                    self.slots[0] = waiting;
                }
            }
            Op::Copy { from, to } => self.jars[to] = self.jars[from].clone(),
            Op::Advance(seconds) => {
                self.clock.advance(Duration::from_secs(seconds));
                self.now += seconds;
            }
            Op::Near {
                jar,
                absolute,
                delta,
            } => {
                if let Some(cookie) = &self.jars[jar] {
                    let deadline = if absolute {
                        cookie.created + self.absolute(cookie.absolute).unwrap_or(ABSOLUTE)
                    } else {
                        cookie.issued + IDLE
                    };
                    let target = deadline.saturating_add_signed(delta);
                    if target > self.now {
                        self.clock.advance(Duration::from_secs(target - self.now));
                        self.now = target;
                    }
                }
            }
            Op::AddKey => {
                if let Some(b) = (1..=9u8).find(|b| !self.ring.contains(b)) {
                    if self.ring.len() < 3 {
                        self.ring.push(b);
                        self.rebuild();
                    }
                }
            }
            Op::Promote => {
                if self.ring.len() > 1 {
                    let newest = self.ring.pop().unwrap();
                    self.ring.insert(0, newest);
                    self.rebuild();
                }
            }
            Op::Retire => {
                if self.ring.len() > 1 {
                    self.ring.pop();
                    self.rebuild();
                }
            }
            Op::Down(down) => {
                self.down = down;
                self.store.set_down(down);
            }
            Op::Full(full) => {
                self.full = full;
                self.store.set_full(full);
            }
            Op::Deploy { on, release } => {
                self.releases[on] = release;
                self.rebuild();
            }
            Op::Plant(jar) => self.planted[jar] = !self.planted[jar],
        }
        self.probe(index).await;
    }
}

/// Runs one sequence of operations from a fresh store and clock.
pub async fn run(
    setup: Setup,
    ops: &[Op],
    clock: ManualClock,
    store: Arc<dyn SessionStore>,
    real_ttl: bool,
) {
    let mut world = World::new(setup, clock, store, real_ttl);
    for (index, op) in ops.iter().enumerate() {
        world.step(index, op).await;
    }
    // Let every pending request finish, then check once more.
    for slot in 0..SLOTS {
        world.finish(slot, Action::Read, "final").await;
    }
    world.probe(ops.len()).await;
}
