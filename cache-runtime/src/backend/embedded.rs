//! The in-process store used when no servers are configured: bounded by bytes, per-entry TTL.
//! Entries are not shared between instances of the application.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::{BackendError, Bumped, Found, Lease, Lookup, Read};
use crate::entry::StoredResponse;
use crate::invalidation::generation::{
    fresh_generation, Counter, CounterId, Purge, Slots, SHARED_COUNTERS,
};
use crate::key::CacheKey;

/// Bookkeeping per entry beyond the frame itself (key, slot, Arc, allocation headers).
const ENTRY_OVERHEAD: u64 = 160;

/// Returns what keeping `entry` under `key` in this process weighs against a bound in bytes: the
/// embedded store's and the near tier's.
pub(crate) fn held_weight(key: &CacheKey, entry: &StoredResponse) -> u64 {
    (key.as_str().len() + entry.frame().len()) as u64 + ENTRY_OVERHEAD
}

/// Returns how many entries a cache bounded at `capacity` bytes sizes its initial tables for; the
/// weight, not this, is the bound.
pub(crate) fn estimated_items(capacity: u64) -> usize {
    (capacity / 4096).clamp(16, 1 << 20) as usize
}

#[derive(Clone)]
struct Slot {
    entry: Arc<StoredResponse>,
    expires: Instant,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<CacheKey, Slot> for ByBytes {
    fn weight(&self, key: &CacheKey, slot: &Slot) -> u64 {
        held_weight(key, &slot.entry)
    }
}

/// Every invalidation counter, in place from the start: reading one creates nothing and
/// nothing is ever evicted, so no request, however many distinct URLs it names, can make
/// another page's counter lose its value. They start at 0: they live exactly as long as the
/// entries stamped with them. Names map onto the shared counters under a key drawn at random
/// when the store is made (see [`Slots`]), as unknowable to clients as a Memcached epoch's.
struct Counters {
    everything: AtomicU64,
    epoch: AtomicU64,
    shared: Box<[AtomicU64]>,
    slots: Slots,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            everything: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            shared: (0..SHARED_COUNTERS).map(|_| AtomicU64::new(0)).collect(),
            slots: Slots::of_epoch(fresh_generation()),
        }
    }

    fn cell(&self, id: CounterId) -> &AtomicU64 {
        match id.counter() {
            Counter::Everything => &self.everything,
            Counter::Epoch => &self.epoch,
            Counter::Named(_) => {
                let index = self.slots.index(&id).unwrap_or_default();
                &self.shared[usize::from(index)]
            }
        }
    }
}

pub(crate) struct EmbeddedStore {
    entries: Cache<CacheKey, Slot, ByBytes>,
    capacity: u64,
    counters: Counters,
    /// Serializes writes that read first (carry-forwards) with stores; lookups take no lock.
    writes: Mutex<()>,
}

impl fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("capacity", &self.capacity)
            .field("weight", &self.entries.weight())
            .field("len", &self.entries.len())
            .finish()
    }
}

impl EmbeddedStore {
    pub(crate) fn new(capacity: u64) -> EmbeddedStore {
        EmbeddedStore {
            entries: Cache::with_weighter(estimated_items(capacity), capacity, ByBytes),
            capacity,
            counters: Counters::new(),
            writes: Mutex::new(()),
        }
    }

    /// Returns the bytes currently held, as weighed for the bound.
    pub(crate) fn weight(&self) -> u64 {
        self.entries.weight()
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns how many counters were ever bumped (the namespace's and the epoch included): what
    /// invalidations created; reads create none.
    pub(crate) fn counters_held(&self) -> usize {
        let Counters {
            everything,
            epoch,
            shared,
            ..
        } = &self.counters;
        [everything, epoch]
            .into_iter()
            .chain(shared.iter())
            .filter(|cell| cell.load(Ordering::Relaxed) != 0)
            .count()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn raw_get(&self, key: &str) -> Option<usize> {
        self.entries
            .get(&CacheKey::trusted(key))
            .map(|slot| slot.entry.body().len())
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn raw_get_counted(&self, key: &str, counters: &[CounterId]) -> Option<usize> {
        for counter in counters {
            self.counter(counter);
        }
        self.raw_get(key)
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn raw_set(&self, key: &str, value: &[u8]) -> bool {
        let Ok(entry) = StoredResponse::build(200, std::iter::empty(), value, 0, 3600) else {
            return false;
        };
        let slot = Slot {
            entry: Arc::new(entry),
            expires: Instant::now() + Duration::from_secs(3600),
        };
        self.entries.insert(CacheKey::trusted(key), slot);
        true
    }
}

impl EmbeddedStore {
    fn counter(&self, counter: &CounterId) -> u64 {
        // Paired with the increments in `bump`: a lookup that sees the new epoch sees the
        // counter bumped before it.
        self.counters.cell(*counter).load(Ordering::SeqCst)
    }
}

impl EmbeddedStore {
    pub(crate) async fn read(
        &self,
        key: &CacheKey,
        epoch: CounterId,
    ) -> Result<Read, BackendError> {
        let epoch = self.counter(&epoch);
        let found = match self.entries.get(key) {
            Some(slot) => {
                let left = slot.expires.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // Only if still expired: a fresh entry stored meanwhile stays.
                    let now = Instant::now();
                    self.entries.remove_if(key, |slot| slot.expires <= now);
                    Found::Absent
                } else {
                    let left = u32::try_from(left.as_secs()).unwrap_or(u32::MAX);
                    // No CAS: a carry-forward compares the entry itself.
                    Found::Entry(slot.entry, Some(0), Some(left))
                }
            }
            None => Found::Absent,
        };
        Ok(Read::in_epoch(found, epoch))
    }

    /// Reads `counters`; the store maps names with its own slots, which the epoch it hands out
    /// names (the one given is the same).
    pub(crate) async fn read_counters(
        &self,
        _key: &CacheKey,
        (counters, _): (&[CounterId], &Slots),
        _lease: Option<u32>,
    ) -> Result<(Lookup, Vec<u64>), BackendError> {
        let values = counters.iter().map(|c| self.counter(c)).collect();
        Ok((Lookup::Miss(Lease::None), values))
    }

    pub(crate) async fn carry_forward(
        &self,
        key: &CacheKey,
        original: Arc<StoredResponse>,
        epoch: u64,
        _cas: u64,
        _ttl: u32,
    ) {
        // Replaces only the entry that was read (held here, so never another one at its
        // address), atomically with respect to stores.
        let _serialized = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = self.entries.get(key) else {
            return;
        };
        if Arc::ptr_eq(&slot.entry, &original) {
            let slot = Slot {
                entry: Arc::new(original.with_epoch(epoch)),
                expires: slot.expires,
            };
            self.entries.insert(key.clone(), slot);
        }
    }

    pub(crate) async fn set(
        &self,
        key: &CacheKey,
        entry: Arc<StoredResponse>,
        keep: u32,
        _budget: Duration,
    ) -> Result<(), BackendError> {
        let expires =
            Instant::now() + Duration::from_secs(u64::from(entry.ttl()) + u64::from(keep));
        let _serialized = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        self.entries.insert(key.clone(), Slot { entry, expires });
        Ok(())
    }

    pub(crate) async fn bump(
        &self,
        _namespace: &str,
        counter: CounterId,
        purge: Purge,
        _deadline: Duration,
    ) -> Bumped {
        // The counter before the epoch (see `counter`). An entry stored meanwhile carries
        // the values its request read before rendering, so no lock with stores is needed.
        for (counter, delta) in [(counter, purge.delta()), (CounterId::epoch(), 1)] {
            self.counters
                .cell(counter)
                .fetch_add(delta, Ordering::SeqCst);
        }
        Bumped::default()
    }

    /// Always wins the lease: one process shares this store, and the in-process flight is the
    /// whole lease.
    pub(crate) async fn lease(&self, _key: &CacheKey, _ttl: u32) -> bool {
        true
    }

    pub(crate) async fn release(&self, _key: &CacheKey) {}

    pub(crate) async fn abandon(&self, _key: &CacheKey, _cas: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyParts;

    fn key(i: usize) -> CacheKey {
        let path = format!("/item/{i}");
        KeyParts::fixture("/item/<i>", &path).build("rc")
    }

    fn entry(ttl: u32) -> Arc<StoredResponse> {
        let headers = [("Content-Type", "text/plain")];
        Arc::new(StoredResponse::build(200, headers.into_iter(), &[b'x'; 2048], 0, ttl).unwrap())
    }

    /// Checked against what the entries themselves hold, not against the store's own weighing:
    /// every entry keeps at least its key and its frame, so the entries held, times the smallest
    /// of those, must fit in the capacity.
    #[rocket::async_test]
    async fn stays_within_its_byte_bound() {
        let capacity = 1024 * 1024;
        let store = EmbeddedStore::new(capacity);
        let mut held_by_each = u64::MAX;
        for i in 0..5_000 {
            let (key, entry) = (key(i), entry(60));
            let size = (key.as_str().len() + entry.frame().len()) as u64;
            held_by_each = held_by_each.min(size);
            store.set(&key, entry, 0, Duration::ZERO).await.unwrap();
        }
        assert!(
            store.weight() <= capacity,
            "{} > {capacity}",
            store.weight()
        );
        assert!(
            store.len() as u64 * held_by_each <= capacity,
            "{} entries of at least {held_by_each} bytes each in a store of {capacity} bytes",
            store.len()
        );
        assert!(store.len() > 100, "it holds entries: {}", store.len());
        assert!(store.len() < 5_000, "it evicted: {}", store.len());
        assert!(
            matches!(
                store.read(&key(4_999), CounterId::epoch()).await.unwrap(),
                Read::Current(_)
            ),
            "the newest entry is kept"
        );
    }

    /// A flood of one-time keys (100,000 unique query strings, say) does not evict a page
    /// requested throughout: S3-FIFO admits new keys to a small queue, and a key read again
    /// before it leaves that queue moves to the main one, which one-time keys never reach. The
    /// hot page is read once per thousand junk stores (about twice what the store holds: under
    /// LRU it would be gone at every read), and stored again after a miss, as the
    /// request path does.
    #[rocket::async_test]
    async fn a_flood_of_one_time_keys_does_not_evict_a_hot_page() {
        let store = EmbeddedStore::new(1024 * 1024);
        let hot = KeyParts::fixture("/", "/").build("rc");
        store.set(&hot, entry(60), 0, Duration::ZERO).await.unwrap();
        let (mut reads, mut hits) = (0, 0);
        for i in 0..100_000 {
            store
                .set(&key(i), entry(60), 0, Duration::ZERO)
                .await
                .unwrap();
            if i % 1_000 == 999 {
                reads += 1;
                match store.read(&hot, CounterId::epoch()).await.unwrap() {
                    Read::Current(_) => hits += 1,
                    _ => store.set(&hot, entry(60), 0, Duration::ZERO).await.unwrap(),
                }
            }
        }
        assert!(store.len() < 1_000, "the junk was evicted: {}", store.len());
        println!("{hits} hits of {reads} reads");
        assert!(hits * 100 >= reads * 95, "{hits} hits of {reads} reads");
    }

    #[rocket::async_test]
    async fn expired_entries_are_misses() {
        let store = EmbeddedStore::new(1024 * 1024);
        store
            .set(&key(1), entry(60), 0, Duration::ZERO)
            .await
            .unwrap();
        assert!(matches!(
            store.read(&key(1), CounterId::epoch()).await.unwrap(),
            Read::Current(_)
        ));
        store.entries.insert(
            key(1),
            Slot {
                entry: entry(60),
                expires: Instant::now(),
            },
        );
        assert!(matches!(
            store.read(&key(1), CounterId::epoch()).await.unwrap(),
            Read::Check(Found::Absent, _)
        ));
        assert_eq!(store.len(), 0, "the expired entry was dropped");
    }
}
