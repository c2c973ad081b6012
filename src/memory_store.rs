//! [`MemoryStore`]: a bounded in-process store for one instance.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::store::{SessionStore, StoreError, StoreFuture, StoreKey};

/// The embedded store for a single instance: entries in a hash map in this
/// process, gone on restart.
///
/// Bounded by a number of entries and a number of bytes (defaults 100,000
/// and 256 MiB). A store at its bounds first drops entries past their time
/// to live (at most once a second); if it is still full, `save` fails with
/// [`StoreError::Full`]: live sessions are never evicted to make room.
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
/// store.save(&key, b"sealed bytes", Duration::from_secs(60)).await?;
/// assert_eq!(store.load(&key).await?, Some(b"sealed bytes".to_vec()));
/// store.delete(&key).await?;
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

    /// The most entries it holds. Default 100,000.
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

    fn load_now(&self, key: &StoreKey) -> Option<Vec<u8>> {
        let now = self.clock.now();
        let mut entries = self.entries();
        match entries.map.get(key) {
            Some(entry) if now < entry.expires => Some(entry.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn save_now(&self, key: &StoreKey, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut entries = self.entries();
        entries.remove(key);
        let fits =
            |e: &Entries| e.map.len() < self.max_entries && e.bytes + value.len() <= self.max_bytes;
        if !fits(&entries) && entries.last_sweep != now {
            entries.sweep(now);
        }
        if !fits(&entries) {
            return Err(StoreError::Full);
        }
        entries.bytes += value.len();
        entries.map.insert(
            *key,
            Entry {
                value: value.to_vec(),
                expires: now.saturating_add(ttl.as_secs().max(1)),
            },
        );
        Ok(())
    }
}

impl SessionStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(std::future::ready(Ok(self.load_now(key))))
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(self.save_now(key, value, ttl)))
    }

    fn delete<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.entries().remove(key);
        Box::pin(std::future::ready(Ok(())))
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
