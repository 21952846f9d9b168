//! The near tier: with Memcached, an in-process copy of recent hits, served without any network
//! I/O or lock shared by all cores (a sharded, byte-bounded map).
//!
//! An entry is kept with the stamp it was checked against (the epoch of its Memcached server
//! read before its invalidation counters: its own, or the one a check re-validated it in) and
//! served only while fresh and while the last poll of its server, which may still be relied
//! on, vouches that no invalidation since that epoch concerns its counters
//! (`backend/watch.rs` says why that keeps the invalidation promise). An invalidation of
//! something else leaves it served from here.

use std::fmt;
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::backend::{estimated_items, held_weight};
use crate::entry::StoredResponse;
use crate::invalidation::generation::Generation;
use crate::key::CacheKey;

#[derive(Clone)]
struct Near {
    entry: Arc<StoredResponse>,
    checked: Generation,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<CacheKey, Near> for ByBytes {
    fn weight(&self, key: &CacheKey, near: &Near) -> u64 {
        held_weight(key, &near.entry)
    }
}

pub(crate) struct NearTier {
    entries: Cache<CacheKey, Near, ByBytes>,
    capacity: u64,
}

impl fmt::Debug for NearTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NearTier")
            .field("capacity", &self.capacity)
            .field("weight", &self.entries.weight())
            .finish()
    }
}

impl NearTier {
    pub(crate) fn new(capacity: u64) -> NearTier {
        NearTier {
            entries: Cache::with_weighter(estimated_items(capacity), capacity, ByBytes),
            capacity,
        }
    }

    /// Returns `key`'s entry, when it is fresh at `now` (unix seconds) and `current` says the
    /// stamp it was checked with is still current; with that stamp.
    pub(crate) fn get(
        &self,
        key: &CacheKey,
        now: u64,
        current: impl FnOnce(&Generation) -> bool,
    ) -> Option<(Arc<StoredResponse>, Generation)> {
        let near = self.entries.get(key)?;
        (is_fresh(&near.entry, now) && current(&near.checked)).then_some((near.entry, near.checked))
    }

    /// Keeps `entry`, checked with `checked`, unless it is no longer fresh at `now`.
    pub(crate) fn put(
        &self,
        key: &CacheKey,
        entry: &Arc<StoredResponse>,
        checked: Generation,
        now: u64,
    ) {
        if is_fresh(entry, now) {
            let entry = Arc::clone(entry);
            self.entries.insert(key.clone(), Near { entry, checked });
        }
    }

    /// Returns the bytes held, as weighed for the bound, and how many entries.
    pub(crate) fn usage(&self) -> (usize, u64) {
        (self.entries.len(), self.entries.weight())
    }
}

/// Returns whether `entry` may be served from the near tier: only while fresh; stale serving and
/// refreshes take the far path.
fn is_fresh(entry: &StoredResponse, now: u64) -> bool {
    now.saturating_sub(entry.created()) < u64::from(entry.ttl())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Lifetime;
    use crate::key::KeyParts;

    fn entry(created: u64, ttl: u32, body: &[u8]) -> Arc<StoredResponse> {
        let stamp = Generation {
            epoch: 1,
            fingerprint: 2,
            lineage: 3,
            deps: crate::invalidation::generation::Deps::default(),
        };
        let lifetime = Lifetime::fresh(created, ttl);
        let built = StoredResponse::response(200, std::iter::empty(), body, lifetime, stamp);
        Arc::new(built.unwrap())
    }

    #[test]
    fn served_only_while_current_and_fresh() {
        let near = NearTier::new(1 << 20);
        let key = KeyParts::fixture("/a/<id>", "/a/1").build("rc");
        let checked = |epoch| Generation {
            epoch,
            ..Generation::default()
        };
        let in_7 = |stamp: &Generation| stamp.epoch == 7;
        near.put(&key, &entry(1_000, 60, b"x"), checked(7), 1_000);
        assert_eq!(near.get(&key, 1_059, in_7).unwrap().1, checked(7));
        assert!(near.get(&key, 1_000, |_| false).is_none(), "not current");
        assert!(near.get(&key, 1_060, in_7).is_none(), "expired");
        near.put(&key, &entry(1_000, 60, b"y"), checked(7), 1_060);
        assert_eq!(
            near.get(&key, 1_000, in_7).unwrap().0.body(),
            b"x",
            "a stale one is not kept"
        );
    }

    /// Checked against what the entries themselves hold, not against the tier's own weighing:
    /// every entry keeps at least its key and its frame, so the entries held, times the smallest
    /// of those, must fit in the capacity.
    #[test]
    fn holds_no_more_than_its_capacity() {
        let capacity = 1 << 20;
        let near = NearTier::new(capacity);
        let body = vec![b'x'; 2048];
        let mut held_by_each = u64::MAX;
        for i in 0..2_000 {
            let key = KeyParts::fixture("/a/<id>", &format!("/a/{i}")).build("rc");
            let entry = entry(1_000, 60, &body);
            let size = (key.as_str().len() + entry.frame().len()) as u64;
            held_by_each = held_by_each.min(size);
            near.put(&key, &entry, Generation::default(), 1_000);
        }
        let (len, weight) = near.usage();
        assert!(weight <= capacity, "{weight}");
        assert!(
            len as u64 * held_by_each <= capacity,
            "{len} entries of at least {held_by_each} bytes each in a tier of {capacity} bytes"
        );
        assert!(len > 300 && len < 2_000, "{len}");
    }

    /// A flood of one-time keys (100,000 unique query strings, say, each stored after its miss
    /// and kept near) does not evict a page requested throughout: read once per thousand junk
    /// entries (about twice what the tier holds: under LRU it would be gone at every read), and
    /// kept again after a miss as the request path does, it stays a near hit.
    #[test]
    fn a_flood_of_one_time_keys_does_not_evict_a_hot_page() {
        let near = NearTier::new(1 << 20);
        let body = vec![b'x'; 2048];
        let hot = KeyParts::fixture("/", "/").build("rc");
        let current = |_: &Generation| true;
        near.put(&hot, &entry(1_000, 60, &body), Generation::default(), 1_000);
        let (mut reads, mut hits) = (0, 0);
        for i in 0..100_000 {
            let junk = KeyParts::fixture("/search", &format!("/search/{i}")).build("rc");
            near.put(
                &junk,
                &entry(1_000, 60, &body),
                Generation::default(),
                1_000,
            );
            if i % 1_000 == 999 {
                reads += 1;
                match near.get(&hot, 1_000, current) {
                    Some(_) => hits += 1,
                    None => near.put(&hot, &entry(1_000, 60, &body), Generation::default(), 1_000),
                }
            }
        }
        assert!(
            near.usage().0 < 1_000,
            "the junk was evicted: {:?}",
            near.usage()
        );
        println!("{hits} hits of {reads} reads");
        assert!(hits * 100 >= reads * 95, "{hits} hits of {reads} reads");
    }
}
