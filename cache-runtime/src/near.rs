//! The near tier: with Memcached, an in-process copy of recent hits, served without any network
//! I/O or lock shared by all cores (a sharded, byte-bounded map).
//!
//! An entry is kept with the epoch it was checked against (the epoch of its Memcached server
//! read before its invalidation counters: its stamp's, or the one a check re-validated it in)
//! and served only while fresh and while the server's epoch, as last polled, is still that one
//! and the poll may be relied on (`backend/watch.rs` says why that keeps the invalidation
//! promise). Any invalidation moves the epoch, so every near entry of that server is checked
//! again through Memcached at its next request, as a far hit from an earlier epoch is.

use std::fmt;
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::backend::{estimated_items, held_weight};
use crate::entry::StoredResponse;
use crate::key::CacheKey;

#[derive(Clone)]
struct Near {
    entry: Arc<StoredResponse>,
    epoch: u64,
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

    /// `key`'s entry, when it is fresh at `now` (unix seconds) and was checked in `epoch`.
    pub(crate) fn get(&self, key: &CacheKey, epoch: u64, now: u64) -> Option<Arc<StoredResponse>> {
        let near = self.entries.get(key)?;
        (near.epoch == epoch && is_fresh(&near.entry, now)).then_some(near.entry)
    }

    /// Keeps `entry`, checked in `epoch`, unless it is no longer fresh at `now`.
    pub(crate) fn put(&self, key: &CacheKey, entry: &Arc<StoredResponse>, epoch: u64, now: u64) {
        if is_fresh(entry, now) {
            let entry = Arc::clone(entry);
            self.entries.insert(key.clone(), Near { entry, epoch });
        }
    }

    /// Bytes held, as weighed for the bound, and how many entries.
    pub(crate) fn usage(&self) -> (usize, u64) {
        (self.entries.len(), self.entries.weight())
    }
}

/// Served from the near tier only while fresh: stale serving and refreshes take the far path.
fn is_fresh(entry: &StoredResponse, now: u64) -> bool {
    now.saturating_sub(entry.created()) < u64::from(entry.ttl())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Stamp;
    use crate::key::KeyParts;

    fn entry(created: u64, ttl: u32, body: &[u8]) -> Arc<StoredResponse> {
        let stamp = Stamp {
            epoch: 1,
            fingerprint: 2,
            lineage: 3,
        };
        let times = (created, ttl, 0);
        let built = StoredResponse::build_stamped(200, std::iter::empty(), body, times, stamp);
        Arc::new(built.unwrap())
    }

    #[test]
    fn served_only_in_its_epoch_and_while_fresh() {
        let near = NearTier::new(1 << 20);
        let key = KeyParts::fixture("/a/<id>", "/a/1").build("rc");
        near.put(&key, &entry(1_000, 60, b"x"), 7, 1_000);
        assert!(near.get(&key, 7, 1_059).is_some());
        assert!(near.get(&key, 8, 1_000).is_none(), "another epoch");
        assert!(near.get(&key, 7, 1_060).is_none(), "expired");
        near.put(&key, &entry(1_000, 60, b"y"), 7, 1_060);
        assert_eq!(
            near.get(&key, 7, 1_000).unwrap().body(),
            b"x",
            "a stale one is not kept"
        );
    }

    #[test]
    fn holds_no_more_than_its_capacity() {
        let near = NearTier::new(1 << 20);
        let body = vec![b'x'; 2048];
        for i in 0..2_000 {
            let key = KeyParts::fixture("/a/<id>", &format!("/a/{i}")).build("rc");
            near.put(&key, &entry(1_000, 60, &body), 7, 1_000);
        }
        let (len, weight) = near.usage();
        assert!(weight <= 1 << 20, "{weight}");
        assert!(len > 300 && len < 2_000, "{len}");
    }
}
