//! [`MemoryStore`]: a bounded in-process store for one instance.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::lifetime::clock::{Clock, SystemClock};
use crate::store::{SessionStore, StoreError, StoreFuture, StoreKey};

/// The embedded store for a single instance: entries in a hash map in this
/// process, gone on restart.
///
/// Bounded by a number of entries and a number of bytes (defaults 100,000
/// and 256 MiB). A store at its bounds first drops entries past their time
/// to live (at most once a second); if it is still full, a write fails
/// with [`StoreError::Full`] and leaves every entry as it was: live
/// sessions are never evicted to make room, and an entry that a growing
/// write could not replace keeps its old bytes.
/// Expired entries are never returned, and are dropped when read or swept.
///
/// Clones share the same entries.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sealed_session::StoreError> {
/// use std::time::Duration;
/// use sealed_session::{MemoryStore, SessionStore, StoreKey};
///
/// let store = MemoryStore::new().with_max_entries(10_000);
/// let key = StoreKey::from_bytes([7; 32]);
/// assert!(store.create(&key, b"sealed bytes", Duration::from_secs(60)).await?);
/// assert_eq!(store.load(&key).await?, Some(b"sealed bytes".to_vec()));
/// assert!(store.replace(&key, b"newer bytes", Duration::from_secs(60)).await?);
/// assert!(store.delete(&key).await?);
/// assert_eq!(store.load(&key).await?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Mutex<Entries>>,
    clock: Arc<dyn Clock>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<StoreKey, Entry>,
    bytes: usize,
    last_sweep: u64,
}

struct Entry {
    value: Vec<u8>,
    /// Unix seconds; the entry is live while `now < expires`.
    expires: u64,
}

impl Entries {
    fn remove(&mut self, key: &StoreKey) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= old.value.len();
        }
    }

    fn sweep(&mut self, now: u64) {
        let mut freed = 0;
        self.map.retain(|_, e| {
            let live = now < e.expires;
            if !live {
                freed += e.value.len();
            }
            live
        });
        self.bytes -= freed;
        self.last_sweep = now;
    }
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store with the default bounds and the system clock.
    ///
    /// # Example
    ///
    /// ```
    /// let store = sealed_session::MemoryStore::new();
    /// assert_eq!(store.len(), 0);
    /// ```
    pub fn new() -> MemoryStore {
        MemoryStore {
            shared: Arc::default(),
            clock: Arc::new(SystemClock),
            max_entries: 100_000,
            max_bytes: 256 << 20,
        }
    }

    /// The most entries it holds. Default 100,000. Besides the sessions
    /// held in the store, each renew, logout and move back into the
    /// cookie leaves a note (8 bytes) for the idle timeout plus the clock
    /// skew, and with revocation on each renew and logout a marker: each
    /// counts as one entry.
    ///
    /// # Example
    ///
    /// ```
    /// let store = sealed_session::MemoryStore::new().with_max_entries(1_000);
    /// # let _ = store;
    /// ```
    pub fn with_max_entries(mut self, max: usize) -> MemoryStore {
        self.max_entries = max;
        self
    }

    /// The most bytes of entries it holds. Default 256 MiB.
    ///
    /// # Example
    ///
    /// ```
    /// let store = sealed_session::MemoryStore::new().with_max_bytes(16 << 20);
    /// # let _ = store;
    /// ```
    pub fn with_max_bytes(mut self, max: usize) -> MemoryStore {
        self.max_bytes = max;
        self
    }

    /// The clock that times entries out; use the same one as the
    /// [`SessionConfig`](crate::SessionConfig). Default [`SystemClock`].
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{ManualClock, MemoryStore};
    /// let store = MemoryStore::new().with_clock(ManualClock::new(1_700_000_000));
    /// # let _ = store;
    /// ```
    pub fn with_clock(mut self, clock: impl Clock) -> MemoryStore {
        self.clock = Arc::new(clock);
        self
    }

    /// Entries held now, expired ones not yet dropped included.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(sealed_session::MemoryStore::new().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.entries().map.len()
    }

    /// Whether it holds no entry.
    ///
    /// # Example
    ///
    /// ```
    /// assert!(sealed_session::MemoryStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live entry under `key`; an expired one is dropped on the way.
    fn live<'e>(entries: &'e mut Entries, key: &StoreKey, now: u64) -> Option<&'e mut Entry> {
        if entries.map.get(key).is_some_and(|e| now >= e.expires) {
            entries.remove(key);
        }
        entries.map.get_mut(key)
    }

    fn load_now(&self, key: &StoreKey) -> Option<Vec<u8>> {
        let now = self.clock.now();
        Self::live(&mut self.entries(), key, now).map(|e| e.value.clone())
    }

    /// Writes `value` under `key` if the entry's presence is `present`:
    /// `create` wants none, `replace` wants one. Room is checked with the
    /// replaced entry's bytes accounted for, and nothing is removed before
    /// the write is known to fit: a refused write leaves the store as it
    /// was.
    fn write_now(
        &self,
        key: &StoreKey,
        value: &[u8],
        ttl: Duration,
        present: bool,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let mut entries = self.entries();
        let old_len = match Self::live(&mut entries, key, now) {
            Some(entry) if present => entry.value.len(),
            None if !present => 0,
            _ => return Ok(false),
        };
        let fits = |e: &Entries| {
            (present || e.map.len() < self.max_entries)
                && e.bytes - old_len + value.len() <= self.max_bytes
        };
        if !fits(&entries) && entries.last_sweep != now {
            // Sweeping drops only expired entries; the one being replaced
            // is live (checked above) and stays.
            entries.sweep(now);
        }
        if !fits(&entries) {
            return Err(StoreError::Full);
        }
        entries.bytes = entries.bytes - old_len + value.len();
        entries.map.insert(
            *key,
            Entry {
                value: value.to_vec(),
                expires: now.saturating_add(ttl.as_secs().max(1)),
            },
        );
        Ok(true)
    }

    fn delete_now(&self, key: &StoreKey) -> bool {
        let now = self.clock.now();
        let mut entries = self.entries();
        let was_live = Self::live(&mut entries, key, now).is_some();
        entries.remove(key);
        was_live
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(Ok(self.load_now(key))))
    }

    fn create<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(std::future::ready(self.write_now(key, value, ttl, false)))
    }

    fn replace<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(std::future::ready(self.write_now(key, value, ttl, true)))
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, bool> {
        Box::pin(std::future::ready(Ok(self.delete_now(key))))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries();
        f.debug_struct("MemoryStore")
            .field("entries", &entries.map.len())
            .field("bytes", &entries.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}
