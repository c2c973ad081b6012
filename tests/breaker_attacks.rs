//! An adversarial review of the circuit breaker in front of the store
//! (`src/store/breaker.rs`) and of the cookie path's buffers (base64 into
//! exact-size buffers, the reused seal buffer).
//!
//! The `finding_*` tests failed on the reviewed code (a probe cancelled by
//! a client that hung up held the breaker open with the store up; late
//! timeouts reopened a breaker a probe had closed; a huge interval
//! panicked) and pass since the fix; the `held_*` tests record attacks
//! that held.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{config, request_after};
use http::HeaderMap;
use sealed_session::{
    CircuitBreaker, LoadError, ManualClock, MemoryStore, Rejection, SessionStore, Sessions,
    StoreError, StoreFuture, StoreKey, StoreMode,
};
use tokio::sync::Notify;

/// How a [`Gate`]d store answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Passes every call to the memory store.
    Up,
    /// Every call times out at once.
    Down,
    /// Every call waits until [`Gate::release`], then times out (a store
    /// that hangs, with a per-call timeout longer than the breaker's).
    Hang,
    /// Every call is pending once (a real round trip), then passes.
    Slow,
    /// Every call takes 20 ms (a network round trip), then passes.
    Latency,
}

/// A memory store whose answers the test controls.
#[derive(Debug)]
struct Gate {
    inner: MemoryStore,
    mode: Mutex<Mode>,
    release: Notify,
    released: AtomicBool,
    calls: AtomicUsize,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            inner: MemoryStore::new(),
            mode: Mutex::new(Mode::Up),
            release: Notify::new(),
            released: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
        })
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }

    fn gate<'a, T: Send + 'a>(&'a self, call: StoreFuture<'a, T>) -> StoreFuture<'a, T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Up => call,
            Mode::Down => Box::pin(async { Err(StoreError::Timeout) }),
            Mode::Hang => Box::pin(async move {
                while !self.released.load(Ordering::SeqCst) {
                    let notified = self.release.notified();
                    if self.released.load(Ordering::SeqCst) {
                        break;
                    }
                    notified.await;
                }
                Err(StoreError::Timeout)
            }),
            Mode::Slow => Box::pin(async move {
                tokio::task::yield_now().await;
                call.await
            }),
            Mode::Latency => Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                call.await
            }),
        }
    }
}

impl SessionStore for Gate {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.gate(self.inner.load(key))
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.gate(self.inner.create(key, value, ttl))
    }
    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.gate(self.inner.replace(key, value, ttl))
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.gate(self.inner.delete(key))
    }
}

fn sessions_with(
    store: &Arc<Gate>,
    breaker: CircuitBreaker,
    mode: StoreMode,
    revocation: bool,
) -> Sessions {
    let clock = ManualClock::new(common::START);
    let shared: Arc<dyn SessionStore> = Arc::clone(store) as Arc<dyn SessionStore>;
    Sessions::new(
        common::ring(&[1]),
        config(&clock)
            .with_shared_store(shared)
            .with_store_mode(mode)
            .with_revocation(revocation)
            .with_circuit_breaker(Some(breaker)),
    )
    .unwrap()
}

fn server_sessions(store: &Arc<Gate>, breaker: CircuitBreaker) -> Sessions {
    sessions_with(store, breaker, StoreMode::Server, false)
}

/// A session holding `value`, saved while the store is up; the request
/// that carries its cookie.
async fn saved(sessions: &Sessions, value: u32) -> HeaderMap {
    let session = sessions.load::<u32>(&HeaderMap::new()).await.unwrap();
    session.set(value);
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    request_after(&response)
}

fn is_breaker_refusal(result: &Result<sealed_session::Session<u32>, LoadError>) -> bool {
    matches!(result, Err(LoadError::Store(StoreError::Unavailable(why))) if why.contains("circuit breaker"))
}

/// Polls `future` once and drops it: a request whose client went away
/// (hyper drops the handler's future) while its store call was out.
fn poll_once_and_drop<F: Future>(future: F) -> bool {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(future.as_mut().poll(&mut cx), Poll::Pending)
}

/// Opens the breaker of `sessions` with the store down (`failures` calls).
async fn trip(store: &Gate, sessions: &Sessions, request: &HeaderMap, failures: usize) {
    store.set(Mode::Down);
    for _ in 0..failures {
        let failed = sessions.load::<u32>(request).await;
        assert!(
            matches!(failed, Err(LoadError::Store(StoreError::Timeout))),
            "{failed:?}"
        );
    }
    assert!(is_breaker_refusal(&sessions.load::<u32>(request).await));
}

// ---------------------------------------------------------------------
// Finding B1: a client that cancels its request while it is the probe
// keeps the breaker open (and doubles its interval), with the store up.
// ---------------------------------------------------------------------

/// The store is back. A client's request becomes the probe and the
/// client goes away before the store answered (its future is dropped:
/// hyper drops a handler's future when the connection closes). Nothing
/// failed, yet the breaker is open again for *twice* the interval, so
/// every other user's store-held session is 503 for that long; repeated,
/// the interval grows to `max_open_for` (30 s by default). A client with
/// any store-held cookie can keep the store "down" for everyone this
/// way, at the cost of one cancelled request per interval.
///
/// Expected: a probe dropped unfinished gives no verdict, so the next
/// call may probe at once (the breaker is not left probing, and one probe
/// at a time still holds).
#[tokio::test]
async fn finding_b1_a_cancelled_probe_keeps_the_breaker_open_with_the_store_up() {
    let store = Gate::new();
    let breaker = CircuitBreaker::default()
        .with_failures(5)
        .with_open_for(Duration::from_millis(50), Duration::from_secs(30));
    let sessions = server_sessions(&store, breaker);
    let attacker = saved(&sessions, 1).await;
    let victim = saved(&sessions, 2).await;
    trip(&store, &sessions, &victim, 5).await;

    // The store is back (its calls take one round trip).
    store.set(Mode::Slow);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut outage = Vec::new();
    for round in 1..=4u32 {
        // The attacker's request is the probe; the client goes away.
        assert!(poll_once_and_drop(sessions.load::<u32>(&attacker)));
        // A victim right after: the store is up, no call failed.
        let at_once = is_breaker_refusal(&sessions.load::<u32>(&victim).await);
        // And once the interval before this probe (50 ms << (round - 1))
        // has passed again: still refused means it doubled.
        tokio::time::sleep(Duration::from_millis((50 << (round - 1)) + 10)).await;
        let after_old_interval = is_breaker_refusal(&sessions.load::<u32>(&victim).await);
        outage.push((at_once, after_old_interval));
        // Wait out the rest of the doubled interval.
        tokio::time::sleep(Duration::from_millis(50 << (round - 1))).await;
    }
    assert_eq!(
        outage[0],
        (false, false),
        "the store is up and nothing failed, yet after each cancelled probe the victim's \
         store-held session is refused by the breaker, for twice the previous interval \
         ((refused at once, refused after the previous interval) per cancelled probe: \
         {outage:?})"
    );
}

/// The same through a real HTTP/1 server (axum over hyper): the attacker
/// sends its request with its store-held cookie and closes the connection
/// at once; hyper drops the handler's future while its store call (the
/// probe) is out. The victim's request 40 ms later (after the probe would
/// have answered and closed the breaker), with the store up, gets the
/// breaker's `503`.
#[tokio::test]
async fn finding_b1_over_http_a_client_closing_its_connection_holds_the_breaker_open() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let store = Gate::new();
    let breaker =
        CircuitBreaker::default().with_open_for(Duration::from_millis(50), Duration::from_secs(30));
    let sessions = Arc::new(server_sessions(&store, breaker));
    let attacker = saved(&sessions, 1).await;
    let victim = saved(&sessions, 2).await;
    let app = axum::Router::new().route(
        "/",
        axum::routing::get({
            let sessions = Arc::clone(&sessions);
            move |headers: HeaderMap| {
                let sessions = Arc::clone(&sessions);
                async move {
                    match sessions.load::<u32>(&headers).await {
                        Ok(session) => (http::StatusCode::OK, session.get().to_string()),
                        Err(error) => (http::StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
                    }
                }
            }
        }),
    );
    let addr = common::serve(app).await;
    let cookie_header = |request: &HeaderMap| {
        request
            .get(http::header::COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    let raw = |cookie: String| {
        format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")
    };
    let get = |cookie: String| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(raw(cookie).as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response.lines().next().unwrap_or_default().to_owned()
    };
    assert!(get(cookie_header(&victim)).await.contains("200"));
    trip(&store, &sessions, &victim, 5).await;
    // The store is back, at 20 ms a call.
    store.set(Mode::Latency);
    tokio::time::sleep(Duration::from_millis(60)).await;
    // The attacker: its request, then it hangs up.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(raw(cookie_header(&attacker)).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    drop(stream);
    // Past the time the probe would have taken to answer (20 ms), had it
    // not been dropped: an answered probe would have closed the breaker.
    tokio::time::sleep(Duration::from_millis(35)).await;
    let status = get(cookie_header(&victim)).await;
    assert!(
        status.contains("200"),
        "the store is up; the victim got {status:?} after the attacker hung up on its probe"
    );
}

// ---------------------------------------------------------------------
// Finding B2: late answers of calls sent before the breaker opened are
// counted after a probe closed it, and open it again.
// ---------------------------------------------------------------------

/// A store hangs; the calls already sent wait for its per-call timeout,
/// longer than the breaker's interval (e.g. `with_timeout(5 s)` against
/// the default 1 s, or any `open_for` below the store timeout). The
/// breaker opens on the first failures; the store comes back; a probe
/// succeeds and closes it. Then the stale timeouts of the calls sent
/// before the outage was detected land in `Closed` and count as fresh
/// consecutive failures: the breaker opens again with the store up and
/// every call since the probe successful.
///
/// Expected: only calls admitted since the breaker last closed count
/// (an epoch/generation number taken at admission).
#[tokio::test]
async fn finding_b2_stale_timeouts_reopen_the_breaker_after_a_successful_probe() {
    let store = Gate::new();
    let breaker = CircuitBreaker::default()
        .with_failures(2)
        .with_open_for(Duration::from_millis(30), Duration::from_millis(30));
    let sessions = Arc::new(server_sessions(&store, breaker));
    let victim = saved(&sessions, 2).await;

    // The store hangs: two requests' calls are out (admitted while closed).
    store.set(Mode::Hang);
    let mut hung = Vec::new();
    for _ in 0..2 {
        let sessions = Arc::clone(&sessions);
        let request = victim.clone();
        hung.push(tokio::spawn(async move {
            sessions.load::<u32>(&request).await.map(drop)
        }));
    }
    while store.calls.load(Ordering::SeqCst) < 3 {
        tokio::task::yield_now().await;
    }
    // Two quick failures open the breaker.
    trip(&store, &sessions, &victim, 2).await;
    // The store is back; after the interval the probe succeeds: closed.
    store.set(Mode::Up);
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(sessions.load::<u32>(&victim).await.unwrap().get(), 2);
    // The old calls now time out (sent before the outage was noticed).
    store.release();
    for task in hung {
        assert!(matches!(
            task.await.unwrap(),
            Err(LoadError::Store(StoreError::Timeout))
        ));
    }
    // The store is up and the last answer it gave was a success.
    let result = sessions.load::<u32>(&victim).await;
    assert!(
        !is_breaker_refusal(&result),
        "stale timeouts of calls sent before the breaker opened reopened it after a \
         successful probe: {result:?}"
    );
}

// ---------------------------------------------------------------------
// Finding B3: an interval the builder accepts makes opening panic.
// ---------------------------------------------------------------------

/// `with_open_for` clamps only from below: `Duration::MAX` (read as "stay
/// open until restart", or a large "no cap" maximum after enough
/// doublings) is accepted, and the call that should open the breaker
/// panics on `Instant + Duration` overflow inside `record` (with the phase
/// mutex held). The phase never changes, so every later failing call
/// panics the same way; were it reached from `ProbeGuard::drop` during an
/// unwind, the process would abort.
#[tokio::test]
async fn finding_b3_a_huge_interval_panics_when_the_breaker_opens() {
    let store = Gate::new();
    let breaker = CircuitBreaker::default()
        .with_failures(1)
        .with_open_for(Duration::MAX, Duration::MAX);
    let sessions = Arc::new(server_sessions(&store, breaker));
    let victim = saved(&sessions, 2).await;
    store.set(Mode::Down);
    let task = {
        let sessions = Arc::clone(&sessions);
        let victim = victim.clone();
        tokio::spawn(async move { sessions.load::<u32>(&victim).await.map(drop) })
    };
    let outcome = task.await;
    assert!(
        matches!(outcome, Ok(Err(LoadError::Store(StoreError::Timeout)))),
        "the failing call that opens the breaker must fail with its error, not panic: \
         {outcome:?}"
    );
}

// ---------------------------------------------------------------------
// What held.
// ---------------------------------------------------------------------

/// Revocation fails closed while the breaker is open: the marker load is
/// refused, so a revoked copy of a cookie-held session is an error, never
/// "no marker" (and a cookie-held session with revocation on needs the
/// store on every load, so it is refused too: correct, not a bug).
#[tokio::test]
async fn held_a_revoked_cookie_does_not_open_while_the_breaker_is_open() {
    let store = Gate::new();
    let breaker = CircuitBreaker::default().with_failures(2);
    let sessions = sessions_with(&store, breaker, StoreMode::Cookie, true);
    let copy = saved(&sessions, 5).await;
    // Log out: the id is revoked (marker written).
    let session = sessions.load::<u32>(&copy).await.unwrap();
    assert_eq!(session.get(), 5);
    session.destroy();
    sessions
        .save(&session, &mut HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(
        sessions.load::<u32>(&copy).await.unwrap().rejection(),
        Some(Rejection::Revoked)
    );
    // The store goes down; the breaker opens.
    store.set(Mode::Down);
    for _ in 0..2 {
        assert!(sessions.load::<u32>(&copy).await.is_err());
    }
    let before = store.calls.load(Ordering::SeqCst);
    for _ in 0..10 {
        let result = sessions.load::<u32>(&copy).await;
        assert!(is_breaker_refusal(&result), "{result:?}");
    }
    assert_eq!(store.calls.load(Ordering::SeqCst), before, "failed fast");
}

/// Cookie-held sessions without revocation never reach the store, so an
/// open breaker does not touch them (load and save of a change).
#[tokio::test]
async fn held_cookie_held_sessions_ignore_an_open_breaker() {
    let store = Gate::new();
    let breaker = CircuitBreaker::default().with_failures(1);
    let sessions = sessions_with(&store, breaker, StoreMode::Cookie, false);
    let cookie_held = saved(&sessions, 3).await;
    let big = sessions.load::<Vec<u8>>(&HeaderMap::new()).await.unwrap();
    big.set(vec![7; 8000]);
    let mut response = HeaderMap::new();
    sessions.save(&big, &mut response).await.unwrap();
    let store_held = request_after(&response);
    store.set(Mode::Down);
    assert!(sessions.load::<Vec<u8>>(&store_held).await.is_err());
    assert!(
        sessions.load::<Vec<u8>>(&store_held).await.is_err(),
        "breaker open"
    );
    let calls = store.calls.load(Ordering::SeqCst);
    let session = sessions.load::<u32>(&cookie_held).await.unwrap();
    assert_eq!(session.get(), 3);
    session.set(4);
    sessions
        .save(&session, &mut HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(store.calls.load(Ordering::SeqCst), calls);
}

/// One probe at a time: while a probe is out (pending), concurrent calls
/// are refused without being sent, and the probe's success closes.
#[tokio::test]
async fn held_one_probe_at_a_time() {
    let store = Gate::new();
    let breaker = CircuitBreaker::default()
        .with_failures(1)
        .with_open_for(Duration::from_millis(20), Duration::from_millis(20));
    let sessions = server_sessions(&store, breaker);
    let victim = saved(&sessions, 2).await;
    trip(&store, &sessions, &victim, 1).await;
    store.set(Mode::Slow);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let before = store.calls.load(Ordering::SeqCst);
    let probe = sessions.load::<u32>(&victim);
    let mut probe = Box::pin(probe);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(probe.as_mut().poll(&mut cx).is_pending());
    for _ in 0..5 {
        assert!(is_breaker_refusal(&sessions.load::<u32>(&victim).await));
    }
    assert_eq!(store.calls.load(Ordering::SeqCst), before + 1);
    assert_eq!(probe.await.unwrap().get(), 2);
    assert_eq!(sessions.load::<u32>(&victim).await.unwrap().get(), 2);
}

/// The cookie decoding after 2443f78: every non-canonical spelling of a
/// valid cookie value is refused as before (padding, the standard
/// alphabet, whitespace, a changed unused trailing bit, one character
/// more or less), and lengths 0..=8 and a value at the size limit neither
/// panic nor open.
#[tokio::test]
async fn held_non_canonical_cookie_spellings_are_refused() {
    let clock = ManualClock::new(common::START);
    let sessions = Sessions::new(common::ring(&[1]), config(&clock)).unwrap();
    let request = saved(&sessions, 9).await;
    let value = common::the_cookie(&{
        let session = sessions.load::<u32>(&request).await.unwrap();
        session.set(10);
        let mut response = HeaderMap::new();
        sessions.save(&session, &mut response).await.unwrap();
        response
    })
    .value()
    .to_owned();
    assert_eq!(
        sessions
            .load::<u32>(&common::cookie_of(&value))
            .await
            .unwrap()
            .get(),
        10
    );
    // The last character carries unused low bits when len % 4 != 0.
    assert_ne!(value.len() % 4, 0, "{}", value.len());
    let last = value.chars().last().unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let index = alphabet.find(last).unwrap();
    let unused_bits = if value.len() % 4 == 2 { 4 } else { 2 };
    let mut variants = Vec::new();
    for flip in 1..(1 << unused_bits) {
        let other = alphabet.as_bytes()[index ^ flip] as char;
        variants.push(format!("{}{other}", &value[..value.len() - 1]));
    }
    let std_alphabet: String = value
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    if std_alphabet != value {
        variants.push(std_alphabet);
    }
    variants.push(format!("{value}="));
    variants.push(format!("{value}=="));
    variants.push(format!("{value}A"));
    variants.push(value[..value.len() - 1].to_owned());
    variants.push(format!("{}%20{}", &value[..10], &value[10..]));
    for len in 0..=8 {
        variants.push("A".repeat(len));
    }
    variants.push("A".repeat(4096 - common::DEFAULT_NAME.len()));
    variants.push("A".repeat(4096 - common::DEFAULT_NAME.len() + 1));
    for variant in variants {
        let session = sessions
            .load::<u32>(&common::cookie_of(&variant))
            .await
            .unwrap();
        assert!(session.is_new(), "{variant} opened");
    }
}
