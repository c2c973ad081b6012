//! [`CircuitBreaker`]: fail fast while a store is down.
//!
//! Without it, while a store is down every request for a store-held
//! session waits the store's full timeout (1 s by default) before its 503,
//! so a handful of clients hold the server's tasks. The breaker wraps the
//! configured store: after [`CircuitBreaker::failures`] consecutive calls
//! that failed with [`StoreError::Unavailable`] or [`StoreError::Timeout`]
//! it *opens*, and every call fails at once with
//! [`StoreError::Unavailable`] for [`CircuitBreaker::open_for`]; then one
//! call (the *probe*) goes through while the others still fail at once.
//! A probe that succeeds closes the breaker; one that fails opens it again
//! for twice as long, up to [`CircuitBreaker::max_open_for`]; one dropped
//! before it answered (a client that hung up) says nothing, and the next
//! call probes. Answers of calls sent before the breaker last closed do not
//! count.
//!
//! Only errors that say the store is unreachable count: a full store
//! ([`StoreError::Full`]) and a corrupt entry answer, so they count as
//! answers, and so does every `Ok`. A call that fails fast was never sent:
//! it changes nothing in the store.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::store::{SessionStore, StoreError, StoreFuture, StoreKey};

/// When a store counts as down, and for how long calls then fail at once.
///
/// On by default for every configured store
/// ([`SessionConfig::with_circuit_breaker`](crate::SessionConfig::with_circuit_breaker)):
/// 5 consecutive failures open it for 1 s, doubling up to 4 s while the
/// probes keep failing. The cap bounds how long the breaker keeps
/// answering `503` after the store is back (it notices at its next probe);
/// one probe every 4 s is no load on a store that is down.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{CircuitBreaker, MemoryStore, SessionConfig};
///
/// let breaker = CircuitBreaker::default()
///     .with_failures(3)
///     .with_open_for(Duration::from_millis(500), Duration::from_secs(10));
/// assert_eq!(breaker.failures(), 3);
/// let config = SessionConfig::default()
///     .with_store(MemoryStore::new())
///     .with_circuit_breaker(Some(breaker));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitBreaker {
    failures: u32,
    open_for: Duration,
    max_open_for: Duration,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            failures: 5,
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(4),
        }
    }
}

impl CircuitBreaker {
    /// Consecutive failed calls that open the breaker (at least 1).
    ///
    /// # Example
    ///
    /// ```
    /// let breaker = sealed_session::CircuitBreaker::default().with_failures(0);
    /// assert_eq!(breaker.failures(), 1);
    /// ```
    pub fn with_failures(mut self, failures: u32) -> Self {
        self.failures = failures.max(1);
        self
    }

    /// How long the breaker stays open the first time (`first`, at least
    /// 1 ms), and at most after probes that keep failing (`max`, at least
    /// `first`).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let breaker = sealed_session::CircuitBreaker::default()
    ///     .with_open_for(Duration::from_secs(2), Duration::from_secs(1));
    /// assert_eq!(breaker.open_for(), Duration::from_secs(2));
    /// assert_eq!(breaker.max_open_for(), Duration::from_secs(2));
    /// ```
    pub fn with_open_for(mut self, first: Duration, max: Duration) -> Self {
        self.open_for = first.max(Duration::from_millis(1));
        self.max_open_for = max.max(self.open_for);
        self
    }

    /// Consecutive failed calls that open the breaker.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(sealed_session::CircuitBreaker::default().failures(), 5);
    /// ```
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How long the breaker stays open the first time.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let breaker = sealed_session::CircuitBreaker::default();
    /// assert_eq!(breaker.open_for(), Duration::from_secs(1));
    /// ```
    pub fn open_for(&self) -> Duration {
        self.open_for
    }

    /// The longest the breaker stays open.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let breaker = sealed_session::CircuitBreaker::default();
    /// assert_eq!(breaker.max_open_for(), Duration::from_secs(4));
    /// ```
    pub fn max_open_for(&self) -> Duration {
        self.max_open_for
    }
}

/// Where the breaker is.
#[derive(Debug)]
enum Phase {
    /// Calls go through; `failed` consecutive ones failed.
    Closed { failed: u32 },
    /// Calls fail at once until `until`; the next interval is `next`.
    Open { until: Instant, next: Duration },
    /// One probe is out; the others fail at once.
    Probing { next: Duration },
}

/// A store behind a [`CircuitBreaker`].
pub(crate) struct Guarded {
    inner: Arc<dyn SessionStore>,
    settings: CircuitBreaker,
    /// The phase, and the number of the current closed period (one more
    /// each time a probe closes the breaker).
    phase: Mutex<(Phase, u64)>,
    now: fn() -> Instant,
}

/// What a call may do.
enum Admission {
    /// Go through (`probe`: as the one probe).
    Pass { probe: bool, epoch: u64 },
    /// Fail at once.
    Refuse,
}

impl Guarded {
    pub(crate) fn wrap(inner: Arc<dyn SessionStore>, settings: CircuitBreaker) -> Guarded {
        Guarded::with_time(inner, settings, Instant::now)
    }

    fn with_time(
        inner: Arc<dyn SessionStore>,
        settings: CircuitBreaker,
        now: fn() -> Instant,
    ) -> Guarded {
        Guarded {
            inner,
            settings,
            phase: Mutex::new((Phase::Closed { failed: 0 }, 0)),
            now,
        }
    }

    fn admit(&self) -> Admission {
        let mut guard = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let epoch = guard.1;
        let phase = &mut guard.0;
        match *phase {
            Phase::Closed { .. } => Admission::Pass {
                probe: false,
                epoch,
            },
            Phase::Open { until, next } if (self.now)() >= until => {
                *phase = Phase::Probing { next };
                Admission::Pass { probe: true, epoch }
            }
            Phase::Open { .. } | Phase::Probing { .. } => Admission::Refuse,
        }
    }

    /// `by` from now, or a year from now if that is past what an
    /// `Instant` holds (`with_open_for(Duration::MAX, ..)`).
    fn later(&self, by: Duration) -> Instant {
        let now = (self.now)();
        now.checked_add(by)
            .unwrap_or(now + Duration::from_secs(86_400 * 365))
    }

    /// A probe dropped before it answered (the client hung up, a request
    /// timeout) gives no verdict: the breaker stays open, without doubling
    /// its interval, and the next call may probe at once. Counting it as a
    /// failure let a client that hangs up on purpose hold the breaker open
    /// while the store was up.
    fn dropped(&self) {
        let mut guard = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Probing { next } = guard.0 {
            guard.0 = Phase::Open {
                until: (self.now)(),
                next,
            };
        }
    }

    /// Records a call's outcome: `down` when it said the store cannot be
    /// reached. `epoch` is the closed period the call was admitted in: an
    /// ordinary call's answer counts only in that period, so the late
    /// timeouts of calls sent before an outage cannot reopen a breaker
    /// that a probe has closed since.
    fn record(&self, probe: bool, epoch: u64, down: bool) {
        let mut guard = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if !probe && guard.1 != epoch {
            return;
        }
        if probe && !down {
            guard.1 += 1;
        }
        let phase = &mut guard.0;
        let settings = &self.settings;
        *phase = match (&*phase, down) {
            (_, false) if probe => Phase::Closed { failed: 0 },
            (Phase::Probing { next }, true) if probe => Phase::Open {
                until: self.later(*next),
                next: next.saturating_mul(2).min(settings.max_open_for),
            },
            (Phase::Closed { .. }, false) => Phase::Closed { failed: 0 },
            (Phase::Closed { failed }, true) if failed + 1 >= settings.failures => {
                tracing::warn!(
                    failures = settings.failures,
                    open_for = ?settings.open_for,
                    "session store unreachable: failing store calls at once for a while"
                );
                Phase::Open {
                    until: self.later(settings.open_for),
                    next: settings
                        .open_for
                        .saturating_mul(2)
                        .min(settings.max_open_for),
                }
            }
            (Phase::Closed { failed }, true) => Phase::Closed { failed: failed + 1 },
            // A call let through before the breaker opened, answering
            // late: the breaker's phase stands.
            (Phase::Open { .. } | Phase::Probing { .. }, _) => return,
        };
    }

    fn call<'a, T: Send + 'a>(
        &'a self,
        call: impl FnOnce() -> StoreFuture<'a, T> + Send + 'a,
    ) -> StoreFuture<'a, T> {
        match self.admit() {
            Admission::Refuse => Box::pin(async {
                Err(StoreError::Unavailable(
                    "circuit breaker open after repeated store failures".into(),
                ))
            }),
            Admission::Pass { probe, epoch } => {
                // A probe whose future is dropped unfinished (the request
                // was cancelled, even before its first poll) must not leave
                // the breaker probing for ever: the guard lets the next
                // call probe.
                let guard = ProbeGuard {
                    store: self,
                    armed: probe,
                };
                Box::pin(async move {
                    let mut guard = guard;
                    let result = call().await;
                    let down = matches!(
                        result,
                        Err(StoreError::Unavailable(_) | StoreError::Timeout)
                    );
                    guard.armed = false;
                    self.record(probe, epoch, down);
                    result
                })
            }
        }
    }
}

/// Reopens the breaker when a probe is dropped before it answered.
struct ProbeGuard<'a> {
    store: &'a Guarded,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.store.dropped();
        }
    }
}

impl SessionStore for Guarded {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.call(move || self.inner.load(key))
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.call(move || self.inner.create(key, value, ttl))
    }

    fn create_hint<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.call(move || self.inner.create_hint(key, value, ttl))
    }

    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.call(move || self.inner.replace(key, value, ttl))
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.call(move || self.inner.delete(key))
    }

    fn fails_as_one(&self) -> bool {
        self.inner.fails_as_one()
    }
}

impl std::fmt::Debug for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("inner", &self.inner)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;

    thread_local! {
        /// The test clock: a fixed start plus an offset the test moves.
        static OFFSET: Cell<Duration> = const { Cell::new(Duration::ZERO) };
        static START: Instant = Instant::now();
    }

    fn now() -> Instant {
        START.with(|start| *start + OFFSET.get())
    }

    fn advance(by: Duration) {
        OFFSET.set(OFFSET.get() + by);
    }

    /// A store that counts the calls it is sent and fails them while down.
    #[derive(Debug, Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicUsize,
    }

    impl SessionStore for Flaky {
        fn load<'a>(&'a self, _key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let down = self.down.load(Ordering::SeqCst);
            Box::pin(async move {
                if down {
                    Err(StoreError::Timeout)
                } else {
                    Ok(None)
                }
            })
        }
        fn create<'a>(
            &'a self,
            _: &'a StoreKey,
            _: &'a [u8],
            _: Duration,
        ) -> StoreFuture<'a, bool> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(StoreError::Full) })
        }
        fn create_hint<'a>(
            &'a self,
            _: &'a StoreKey,
            _: &'a [u8],
            _: Duration,
        ) -> StoreFuture<'a, bool> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(true) })
        }
        fn replace<'a>(
            &'a self,
            _: &'a StoreKey,
            _: &'a [u8],
            _: Duration,
        ) -> StoreFuture<'a, bool> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(false) })
        }
        fn delete<'a>(&'a self, _: &'a StoreKey) -> StoreFuture<'a, bool> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(false) })
        }
    }

    fn block<T>(future: StoreFuture<'_, T>) -> Result<T, StoreError> {
        // Every future here is ready at its first poll.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut future = future;
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => result,
            std::task::Poll::Pending => panic!("a test store never waits"),
        }
    }

    fn setup(failures: u32) -> (Arc<Flaky>, Guarded) {
        let flaky = Arc::new(Flaky::default());
        let settings = CircuitBreaker::default()
            .with_failures(failures)
            .with_open_for(Duration::from_secs(1), Duration::from_secs(4));
        let inner: Arc<dyn SessionStore> = Arc::clone(&flaky) as Arc<dyn SessionStore>;
        (flaky, Guarded::with_time(inner, settings, now))
    }

    fn calls(flaky: &Flaky) -> usize {
        flaky.calls.load(Ordering::SeqCst)
    }

    #[test]
    fn opens_after_consecutive_failures_and_then_sends_nothing() {
        let (flaky, store) = setup(3);
        let key = StoreKey::from_bytes([1; 32]);
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            assert_eq!(block(store.load(&key)), Err(StoreError::Timeout));
        }
        assert_eq!(calls(&flaky), 3);
        for _ in 0..10 {
            assert!(matches!(
                block(store.load(&key)),
                Err(StoreError::Unavailable(_))
            ));
        }
        assert_eq!(calls(&flaky), 3, "an open breaker sends nothing");
    }

    #[test]
    fn answers_reset_the_count_and_full_or_corrupt_are_answers() {
        let (flaky, store) = setup(2);
        let key = StoreKey::from_bytes([1; 32]);
        for _ in 0..5 {
            flaky.down.store(true, Ordering::SeqCst);
            assert_eq!(block(store.load(&key)), Err(StoreError::Timeout));
            flaky.down.store(false, Ordering::SeqCst);
            assert_eq!(block(store.load(&key)), Ok(None));
            // A full store answered: it is up.
            assert_eq!(
                block(store.create(&key, b"v", Duration::from_secs(1))),
                Err(StoreError::Full)
            );
        }
        assert_eq!(calls(&flaky), 15, "never opened");
    }

    #[test]
    fn a_hint_goes_to_the_inner_stores_own_create_hint() {
        // A Redis store writes hints without `WAIT`: the breaker must not
        // turn them back into plain creates (`Flaky::create` is `Full`).
        let (flaky, store) = setup(3);
        let key = StoreKey::from_bytes([1; 32]);
        let ttl = Duration::from_secs(1);
        assert_eq!(block(store.create_hint(&key, b"t", ttl)), Ok(true));
        assert_eq!(calls(&flaky), 1);
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            assert_eq!(block(store.load(&key)), Err(StoreError::Timeout));
        }
        assert!(
            matches!(
                block(store.create_hint(&key, b"t", ttl)),
                Err(StoreError::Unavailable(_))
            ),
            "an open breaker fails hints at once too"
        );
        assert_eq!(calls(&flaky), 4);
    }

    #[test]
    fn one_probe_after_the_interval_closes_or_doubles_it() {
        let (flaky, store) = setup(1);
        let key = StoreKey::from_bytes([1; 32]);
        flaky.down.store(true, Ordering::SeqCst);
        assert_eq!(block(store.load(&key)), Err(StoreError::Timeout));
        advance(Duration::from_millis(999));
        assert!(block(store.load(&key)).is_err());
        assert_eq!(calls(&flaky), 1, "still open");
        advance(Duration::from_millis(1));
        // The probe fails: open again for twice as long.
        assert_eq!(block(store.load(&key)), Err(StoreError::Timeout));
        assert_eq!(calls(&flaky), 2);
        advance(Duration::from_millis(1999));
        assert!(block(store.load(&key)).is_err());
        assert_eq!(calls(&flaky), 2);
        advance(Duration::from_millis(1));
        flaky.down.store(false, Ordering::SeqCst);
        // The probe succeeds: closed, every call goes through.
        assert_eq!(block(store.load(&key)), Ok(None));
        for _ in 0..5 {
            assert_eq!(block(store.delete(&key)), Ok(false));
        }
        assert_eq!(calls(&flaky), 8);
    }

    #[test]
    fn the_interval_grows_to_its_maximum_only() {
        let (flaky, store) = setup(1);
        let key = StoreKey::from_bytes([1; 32]);
        flaky.down.store(true, Ordering::SeqCst);
        assert!(block(store.load(&key)).is_err());
        // Probes at 1, 2, 4, 4, 4 s all fail.
        for wait in [1, 2, 4, 4, 4] {
            advance(Duration::from_secs(wait) - Duration::from_millis(1));
            let before = calls(&flaky);
            assert!(block(store.load(&key)).is_err());
            assert_eq!(calls(&flaky), before, "open for {wait} s");
            advance(Duration::from_millis(1));
            assert!(block(store.load(&key)).is_err());
            assert_eq!(calls(&flaky), before + 1, "probe after {wait} s");
        }
    }

    #[test]
    fn while_a_probe_is_out_other_calls_fail_at_once_and_a_dropped_probe_reopens() {
        let (flaky, store) = setup(1);
        let key = StoreKey::from_bytes([1; 32]);
        flaky.down.store(true, Ordering::SeqCst);
        assert!(block(store.load(&key)).is_err());
        advance(Duration::from_secs(1));
        let probe = store.load(&key);
        // Not polled yet: the probe is out.
        assert!(matches!(
            block(store.load(&key)),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(calls(&flaky), 1);
        drop(probe);
        // Dropped unfinished: no verdict, not probing for ever; the next
        // call probes.
        advance(Duration::from_secs(2));
        flaky.down.store(false, Ordering::SeqCst);
        assert_eq!(block(store.load(&key)), Ok(None));
        assert_eq!(calls(&flaky), 2);
    }
}
