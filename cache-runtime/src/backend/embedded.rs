//! The in-process store used when no servers are configured: bounded by bytes, per-entry TTL.
//! Entries are not shared between instances of the application.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use super::{Backend, BackendError, Lookup};
use crate::entry::StoredResponse;
use crate::key::CacheKey;

/// Bookkeeping per entry beyond the frame itself (key, slot, Arc, allocation headers).
const ENTRY_OVERHEAD: u64 = 160;

#[derive(Clone)]
struct Slot {
    entry: Arc<StoredResponse>,
    expires: Instant,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<CacheKey, Slot> for ByBytes {
    fn weight(&self, key: &CacheKey, slot: &Slot) -> u64 {
        (key.as_str().len() + slot.entry.encoded_len()) as u64 + ENTRY_OVERHEAD
    }
}

pub(crate) struct EmbeddedStore {
    entries: Cache<CacheKey, Slot, ByBytes>,
    capacity: u64,
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
        // The item estimate only sizes the initial tables; the weight is the bound.
        let estimated_items = (capacity / 4096).clamp(16, 1 << 20) as usize;
        EmbeddedStore {
            entries: Cache::with_weighter(estimated_items, capacity, ByBytes),
            capacity,
        }
    }

    /// Bytes currently held, as weighed for the bound.
    pub(crate) fn weight(&self) -> u64 {
        self.entries.weight()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Backend for EmbeddedStore {
    async fn get(&self, key: &CacheKey) -> Lookup {
        match self.entries.get(key) {
            Some(slot) if slot.expires > Instant::now() => Lookup::Hit(slot.entry),
            Some(_) => {
                self.entries.remove(key);
                Lookup::Miss
            }
            None => Lookup::Miss,
        }
    }

    async fn set(&self, key: &CacheKey, entry: Arc<StoredResponse>) -> Result<(), BackendError> {
        let expires = Instant::now() + Duration::from_secs(u64::from(entry.ttl));
        self.entries.insert(key.clone(), Slot { entry, expires });
        Ok(())
    }
}
