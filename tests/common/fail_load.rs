//! A `MemoryStore` whose loads are counted, one of which can be made to
//! fail (a shard down for one key): shared by the tests of duplicate
//! cookies and of the notes dead-cookie removal reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sealed_session::{ManualClock, MemoryStore, SessionStore, StoreError, StoreFuture, StoreKey};

#[derive(Debug)]
pub struct FailLoad {
    inner: MemoryStore,
    loads: AtomicUsize,
    /// The load (counted from 1 since `fail_load`) that fails; 0: none.
    fail_at: AtomicUsize,
    failures: AtomicUsize,
}

impl FailLoad {
    /// A store on `clock` that fails nothing yet.
    pub fn new(clock: &ManualClock) -> FailLoad {
        FailLoad {
            inner: MemoryStore::new().with_clock(clock.clone()),
            loads: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
        }
    }

    /// Counts loads from here on and fails the `n`-th (from 1).
    pub fn fail_load(&self, n: usize) {
        self.reset_loads();
        self.fail_at.store(n, Ordering::SeqCst);
    }

    /// Fails nothing any more.
    pub fn heal(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    /// Counts loads from zero again.
    pub fn reset_loads(&self) {
        self.loads.store(0, Ordering::SeqCst);
    }

    /// Loads since the last reset.
    pub fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }

    /// Loads that failed, ever.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }
}

impl SessionStore for FailLoad {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        let n = self.loads.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Box::pin(async { Err(StoreError::Unavailable("shard down".into())) });
        }
        self.inner.load(key)
    }
    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.inner.create(key, value, ttl)
    }
    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        self.inner.replace(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        self.inner.delete(key)
    }
}
