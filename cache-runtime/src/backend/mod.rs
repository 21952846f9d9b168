//! Where entries live. The rest of the crate talks to [`Store`] only; the Memcached client's
//! (experimental) API is named in `memcached.rs` and nowhere else.

mod breaker;
mod embedded;
mod memcached;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use breaker::BreakerState;
pub(crate) use embedded::EmbeddedStore;
pub(crate) use memcached::{BreakerSettings, MemcachedStore};

use crate::entry::StoredResponse;
use crate::generation::{fingerprint, GenId, Restamp, Stamp};
use crate::key::CacheKey;

/// What a lookup found.
#[derive(Debug)]
pub(crate) enum Lookup {
    Hit(Arc<StoredResponse>),
    /// Not there; with a lease read, who recomputes it.
    Miss(Lease),
    /// The backend failed (down, stalled, undecodable entry): served as a miss. After a
    /// failure the response is not stored, so a stalled server costs one deadline, not two.
    Failed(BackendError),
}

/// A lookup, checked against the invalidation counters.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// A hit only when the entry was rendered under the counters' current values.
    pub(crate) lookup: Lookup,
    /// What to stamp the entry stored after a miss with, read before the handler runs;
    /// `None` when the counters could not be read (nothing may be stored).
    pub(crate) stamp: Option<Stamp>,
    /// An entry was there but rendered before an invalidation.
    pub(crate) invalidated: bool,
    /// The hit was rendered in an earlier epoch but is still valid: store it again, recorded
    /// in the current one, so that its next hits take the short path.
    pub(crate) restamp: Option<Restamp>,
}

impl Fetched {
    pub(crate) fn failed(error: BackendError) -> Fetched {
        Fetched {
            lookup: Lookup::Failed(error),
            stamp: None,
            invalidated: false,
            restamp: None,
        }
    }
}

/// What the first round trip of a lookup decided.
#[derive(Debug)]
pub(crate) enum FirstRead {
    /// A hit in the current epoch, or a failure: nothing more to read.
    Done(Fetched),
    /// An entry from an earlier epoch, or none, to check against the counters (with the
    /// epoch read).
    Check(Found, u64),
}

/// An entry as the first round trip of a lookup found it.
#[derive(Debug)]
pub(crate) enum Found {
    /// With its CAS and remaining TTL, when the backend has them.
    Entry(Arc<StoredResponse>, Option<u64>, Option<u32>),
    Absent,
    /// A value that is not a frame of this version.
    Undecodable,
}

impl Found {
    /// Whether the second round trip asks for the key's lease: only when nothing is there.
    pub(crate) fn takes_lease(&self) -> bool {
        matches!(self, Found::Absent)
    }
}

/// The lease a lookup took along the way (Memcached meta `mg ... N<ttl>`: one round trip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    /// No lease was asked for, or the backend has none (the in-process flight decides).
    None,
    /// This request recomputes the entry; it must store it or give the lease back. The CAS
    /// of the placeholder, so that giving it back never deletes anything else.
    Won(u64),
    /// Another client (another instance) is recomputing it.
    Busy,
}

/// Why a backend operation did not complete.
#[derive(Debug)]
pub(crate) enum BackendError {
    /// The per-operation deadline passed.
    Timeout,
    /// The server answered with something that is not a frame of ours.
    Undecodable,
    /// Connecting, I/O or a protocol error: the server failed.
    Client(String),
    /// This one request was refused, by the client before it was sent (an invalid argument) or
    /// by a server that answered (an item too large for it): a usage error, which says nothing
    /// about the server's health.
    Refused(String),
    /// The key's server is skipped by its circuit breaker: no cost, no request.
    ServerSkipped,
}

impl BackendError {
    /// A short stable name, for rate-limited logs.
    pub(crate) fn cause(&self) -> &'static str {
        match self {
            BackendError::Timeout => "timeout",
            BackendError::Undecodable => "undecodable entry",
            BackendError::Client(_) => "client error",
            BackendError::Refused(_) => "request refused",
            BackendError::ServerSkipped => "server skipped",
        }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendError::Timeout => f.write_str("operation deadline passed"),
            BackendError::Undecodable => {
                f.write_str("stored value is not a cache frame of this version")
            }
            BackendError::Client(message) | BackendError::Refused(message) => f.write_str(message),
            BackendError::ServerSkipped => {
                f.write_str("the key's server is skipped after repeated failures")
            }
        }
    }
}

/// The small surface every store implements.
pub(crate) trait Backend: Send + Sync {
    /// Reads `key` and the namespace's invalidation epoch (`epoch`, created when missing) in
    /// one round trip.
    fn read(
        &self,
        key: &CacheKey,
        epoch: GenId,
    ) -> impl Future<Output = Result<(Found, u64), BackendError>> + Send;
    /// Reads `counters` (created when missing) in one round trip; with `lease`, also a lease
    /// read of `key`, which on a miss takes the key's lease for that many seconds when nobody
    /// holds it.
    fn read_counters(
        &self,
        key: &CacheKey,
        counters: &[GenId],
        lease: Option<u32>,
    ) -> impl Future<Output = Result<(Lookup, Vec<u64>), BackendError>> + Send;
    /// Stores `original` again recorded in `epoch`, for the `ttl` it had left, unless `key`
    /// changed since it was read (with `cas`).
    fn restamp(
        &self,
        key: &CacheKey,
        original: Arc<StoredResponse>,
        epoch: u64,
        cas: u64,
        ttl: u32,
    ) -> impl Future<Output = ()> + Send;
    /// Increments `counter`, then the epoch, wherever they are kept (every server), within
    /// `deadline`; the servers that did not confirm it.
    fn bump(
        &self,
        namespace: &str,
        counter: GenId,
        deadline: Duration,
    ) -> impl Future<Output = Vec<(String, BackendError)>> + Send;
    /// Stores `entry` for its TTL plus `keep` seconds (the route's stale windows), giving up
    /// after `budget` (what is left of the request's deadline).
    fn set(
        &self,
        key: &CacheKey,
        entry: Arc<StoredResponse>,
        keep: u32,
        budget: Duration,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// Takes `key`'s lease for `ttl` seconds: `true` when this caller recomputes the entry,
    /// only once the backend confirmed it (a timed-out request is not a lease).
    fn lease(&self, key: &CacheKey, ttl: u32) -> impl Future<Output = bool> + Send;
    /// Gives a lease back once the entry is stored (or was not storable).
    fn release(&self, key: &CacheKey) -> impl Future<Output = ()> + Send;
    /// Gives back a lease won by a lookup (the placeholder with this CAS), when nothing was
    /// stored in its place.
    fn abandon(&self, key: &CacheKey, cas: u64) -> impl Future<Output = ()> + Send;
}

/// The configured store, dispatched statically: no boxed future on the hit path.
#[derive(Debug)]
// One per cache, inside its `Arc`: the size difference costs nothing, a box would cost an
// indirection on every operation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store {
    Embedded(EmbeddedStore),
    Memcached(MemcachedStore),
}

impl Store {
    /// Both round trips of a lookup in one (see [`read_first`](Self::read_first)); requests go
    /// through `Leases::lookup`, which runs a lease read so that a cancelled request gives
    /// back what it won.
    #[cfg(test)]
    pub(crate) async fn get(
        &self,
        key: &CacheKey,
        counters: impl FnOnce() -> Vec<GenId>,
        lease: Option<u32>,
    ) -> Fetched {
        match self.read_first(key).await {
            FirstRead::Done(fetched) => fetched,
            FirstRead::Check(found, epoch) => {
                let lease = lease.filter(|_| found.takes_lease());
                self.check(key, found, epoch, &counters(), lease).await
            }
        }
    }

    /// Looks `key` up, to be checked against the invalidation counters its entry depends on
    /// (see `generation.rs`): an entry rendered under other values than theirs is a miss.
    ///
    /// A hit rendered in the current epoch (no invalidation since) takes this one round trip:
    /// the entry and the epoch. Otherwise [`check`](Self::check) reads the counters
    /// themselves, with the lease read on a miss.
    pub(crate) async fn read_first(&self, key: &CacheKey) -> FirstRead {
        let (found, epoch) = match self.read(key).await {
            Ok(read) => read,
            Err(error) => return FirstRead::Done(Fetched::failed(error)),
        };
        if let Found::Entry(entry, _, _) = &found {
            if entry.stamp().epoch == epoch {
                return FirstRead::Done(Fetched {
                    stamp: Some(entry.stamp()),
                    lookup: Lookup::Hit(Arc::clone(entry)),
                    invalidated: false,
                    restamp: None,
                });
            }
        }
        FirstRead::Check(found, epoch)
    }

    /// The second round trip of a lookup: `found`, from an earlier epoch or absent,
    /// checked against the `counters`; with `lease` (only for an absent entry), a lease read.
    /// The epoch was read first: an invalidation bumps its counter before the epoch, so an
    /// entry stamped with this epoch and these counters cannot hide a later one.
    pub(crate) async fn check(
        &self,
        key: &CacheKey,
        found: Found,
        epoch: u64,
        counters: &[GenId],
        lease: Option<u32>,
    ) -> Fetched {
        let (leased, values) = match self.read_counters(key, counters, lease).await {
            Ok(read) => read,
            Err(error) => return Fetched::failed(error),
        };
        let fingerprint = fingerprint(values);
        let (lookup, invalidated, restamp) = match (found, leased) {
            (Found::Entry(entry, cas, ttl), _) if entry.stamp().fingerprint == fingerprint => {
                let restamp = cas
                    .zip(ttl)
                    .filter(|(_, ttl)| *ttl > 0)
                    .map(|(cas, ttl)| Restamp { cas, ttl });
                (Lookup::Hit(entry), false, restamp)
            }
            (Found::Entry(..), _) => (Lookup::Miss(Lease::None), true, None),
            (Found::Undecodable, _) => (Lookup::Failed(BackendError::Undecodable), false, None),
            // Stored by another instance between the two round trips.
            (Found::Absent, Lookup::Hit(entry)) if entry.stamp().fingerprint != fingerprint => {
                (Lookup::Miss(Lease::None), true, None)
            }
            (Found::Absent, leased) => (leased, false, None),
        };
        Fetched {
            lookup,
            stamp: Some(Stamp { epoch, fingerprint }),
            invalidated,
            restamp,
        }
    }

    async fn read(&self, key: &CacheKey) -> Result<(Found, u64), BackendError> {
        match self {
            Store::Embedded(store) => store.read(key, GenId::epoch()).await,
            Store::Memcached(store) => store.read(key, GenId::epoch()).await,
        }
    }

    async fn read_counters(
        &self,
        key: &CacheKey,
        counters: &[GenId],
        lease: Option<u32>,
    ) -> Result<(Lookup, Vec<u64>), BackendError> {
        match self {
            Store::Embedded(store) => store.read_counters(key, counters, lease).await,
            Store::Memcached(store) => store.read_counters(key, counters, lease).await,
        }
    }

    pub(crate) async fn restamp(
        &self,
        key: &CacheKey,
        original: Arc<StoredResponse>,
        epoch: u64,
        Restamp { cas, ttl }: Restamp,
    ) {
        match self {
            Store::Embedded(store) => store.restamp(key, original, epoch, cas, ttl).await,
            Store::Memcached(store) => store.restamp(key, original, epoch, cas, ttl).await,
        }
    }

    pub(crate) async fn bump(
        &self,
        namespace: &str,
        counter: GenId,
        deadline: Duration,
    ) -> Vec<(String, BackendError)> {
        match self {
            Store::Embedded(store) => store.bump(namespace, counter, deadline).await,
            Store::Memcached(store) => store.bump(namespace, counter, deadline).await,
        }
    }

    pub(crate) async fn abandon(&self, key: &CacheKey, cas: u64) {
        match self {
            Store::Embedded(store) => store.abandon(key, cas).await,
            Store::Memcached(store) => store.abandon(key, cas).await,
        }
    }

    /// How many invalidation counters the embedded store holds; `None` for Memcached.
    pub(crate) fn counters_held(&self) -> Option<usize> {
        match self {
            Store::Embedded(store) => Some(store.counters_held()),
            Store::Memcached(_) => None,
        }
    }

    /// A raw get (no decoding), for the benchmark's floor.
    pub(crate) async fn raw_get(&self, key: &str) -> Option<usize> {
        match self {
            Store::Embedded(store) => store.raw_get(key),
            Store::Memcached(store) => store.raw_get(key).await,
        }
    }

    /// A raw get batched with reads of invalidation counters, as a hit does.
    pub(crate) async fn raw_get_counted(&self, key: &str, counters: &[GenId]) -> Option<usize> {
        match self {
            Store::Embedded(store) => store.raw_get_counted(key, counters),
            Store::Memcached(store) => store.raw_get_counted(key, counters).await,
        }
    }

    pub(crate) async fn raw_set(&self, key: &str, value: &[u8]) -> bool {
        match self {
            Store::Embedded(store) => store.raw_set(key, value),
            Store::Memcached(store) => store.raw_set(key, value).await,
        }
    }

    pub(crate) async fn set(
        &self,
        key: &CacheKey,
        entry: Arc<StoredResponse>,
        keep: u32,
        budget: Duration,
    ) -> Result<(), BackendError> {
        match self {
            Store::Embedded(store) => store.set(key, entry, keep, budget).await,
            Store::Memcached(store) => store.set(key, entry, keep, budget).await,
        }
    }

    pub(crate) async fn lease(&self, key: &CacheKey, ttl: u32) -> bool {
        match self {
            Store::Embedded(store) => store.lease(key, ttl).await,
            Store::Memcached(store) => store.lease(key, ttl).await,
        }
    }

    pub(crate) async fn release(&self, key: &CacheKey) {
        match self {
            Store::Embedded(store) => store.release(key).await,
            Store::Memcached(store) => store.release(key).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyParts;

    fn key() -> CacheKey {
        KeyParts::fixture("/a/<id>", "/a/1").build("rc")
    }

    async fn fresh_hit(store: &Store, key: &CacheKey, counters: &[GenId]) -> Fetched {
        let fetched = store.get(key, || counters.to_vec(), None).await;
        assert!(matches!(fetched.lookup, Lookup::Hit(_)), "{fetched:?}");
        fetched
    }

    /// The protocol on the embedded store: a hit in its own epoch takes the short path; after
    /// an unrelated invalidation it is checked, served and restamped; after one of its own
    /// counters, it is a miss.
    #[rocket::async_test]
    async fn hits_take_the_short_path_until_an_invalidation_concerns_them() {
        let store = Store::Embedded(EmbeddedStore::new(1 << 20));
        let key = key();
        let counters = [GenId::everything(), GenId::tag("mine")];
        let missed = store.get(&key, || counters.to_vec(), None).await;
        assert!(matches!(missed.lookup, Lookup::Miss(_)));
        let stamp = missed.stamp.unwrap();
        let entry = StoredResponse::build_stamped(200, std::iter::empty(), b"x", 0, 60, stamp);
        store
            .set(&key, Arc::new(entry.unwrap()), 0, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(fresh_hit(&store, &key, &counters).await.restamp, None);

        // Another tag: the epoch moves, the entry is still valid and is recorded again.
        store.bump("rc", GenId::tag("other"), Duration::ZERO).await;
        let checked = fresh_hit(&store, &key, &counters).await;
        let Lookup::Hit(found) = &checked.lookup else {
            unreachable!()
        };
        let restamp = checked.restamp.expect("restamped");
        let Stamp {
            epoch: new_epoch,
            fingerprint: same_fingerprint,
        } = checked.stamp.unwrap();
        assert_ne!(new_epoch, stamp.epoch);
        assert_eq!(same_fingerprint, stamp.fingerprint);
        store
            .restamp(&key, Arc::clone(found), new_epoch, restamp)
            .await;
        assert_eq!(fresh_hit(&store, &key, &counters).await.restamp, None);

        // Its own tag: a miss, and the stamp to store the next rendering with differs.
        store.bump("rc", GenId::tag("mine"), Duration::ZERO).await;
        let invalidated = store.get(&key, || counters.to_vec(), None).await;
        assert!(matches!(invalidated.lookup, Lookup::Miss(Lease::None)));
        assert!(invalidated.invalidated);
        assert_ne!(invalidated.stamp.unwrap().fingerprint, stamp.fingerprint);
    }
}
