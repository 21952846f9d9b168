//! Where entries live. The rest of the crate talks to [`Store`] only; the Memcached client's
//! (experimental) API is named in `memcached.rs` and nowhere else.

mod breaker;
mod embedded;
mod memcached;
mod watch;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use breaker::BreakerState;
pub(crate) use embedded::{estimated_items, held_weight, EmbeddedStore};
pub(crate) use memcached::{BreakerSettings, MemcachedStore};
pub(crate) use watch::PollSettings;

use crate::entry::StoredResponse;
use crate::invalidation::generation::{CarryForward, CounterId, Generation, Purge, Slots};
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
    /// Returns whether the second round trip asks for the key's lease: only when nothing is
    /// there.
    pub(crate) fn takes_lease(&self) -> bool {
        matches!(self, Found::Absent)
    }
}

/// What the first round trip of a lookup decided.
#[derive(Debug)]
pub(crate) enum Read {
    /// An entry no invalidation since its stamp concerns: a hit without reading its counters.
    Current(Arc<StoredResponse>),
    /// An entry from before an invalidation that may concern it, or none: to check against
    /// the counters, named under the mapping of the epoch read (or polled) with it.
    Check(Found, u64),
}

impl Read {
    /// Returns `found`, current when stamped in `epoch` (no invalidation at all since).
    pub(crate) fn in_epoch(found: Found, epoch: u64) -> Read {
        match found {
            Found::Entry(entry, ..) if entry.generation().epoch == epoch => Read::Current(entry),
            found => Read::Check(found, epoch),
        }
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

/// What an invalidation's increments did.
#[derive(Debug, Default)]
pub(crate) struct Bumped {
    /// The servers that did not confirm them.
    pub(crate) unconfirmed: Vec<(String, BackendError)>,
    /// How long instances may still serve from an epoch polled before them: the longest
    /// horizon the servers hold (see `watch.rs`). The invalidation returns only after it.
    pub(crate) settle: Duration,
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
    /// Returns a short stable name, for rate-limited logs.
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

/// The configured store: the one seam between the cache and where entries live. Each variant
/// implements the same operations under the same names (`read`, `read_counters`, `carry_forward`,
/// `bump`, `set`, `lease`, `release`, `abandon`), and `each!` forwards to them; a new backend
/// is a variant and those methods. Operations only Memcached has (the epoch polls) are reached
/// through [`Store::memcached`]. Dispatched statically: no boxed future on the hit path.
#[derive(Debug)]
// One per cache, inside its `Arc`: the size difference costs nothing, a box would cost an
// indirection on every operation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store {
    Embedded(EmbeddedStore),
    Memcached(MemcachedStore),
}

/// `body` with `store` bound to the configured store, whichever it is.
macro_rules! each {
    ($self:expr, $store:ident => $body:expr) => {
        match $self {
            Store::Embedded($store) => $body,
            Store::Memcached($store) => $body,
        }
    };
}

impl Store {
    /// Returns the Memcached store, for the operations only it has.
    pub(crate) fn memcached(&self) -> Option<&MemcachedStore> {
        match self {
            Store::Embedded(_) => None,
            Store::Memcached(store) => Some(store),
        }
    }

    /// Reads `key` and whether its entry is current: in one round trip, with the namespace's
    /// invalidation epoch (created when missing) when it must be read.
    pub(crate) async fn read(&self, key: &CacheKey) -> Result<Read, BackendError> {
        each!(self, store => store.read(key, CounterId::epoch()).await)
    }

    /// Reads `counters` (created when missing, named through the slots of the epoch the entry
    /// was read in) in one round trip; with `lease`, also a lease
    /// read of `key`, which on a miss takes the key's lease for that many seconds when nobody
    /// holds it.
    pub(crate) async fn read_counters(
        &self,
        key: &CacheKey,
        counters: (&[CounterId], &Slots),
        lease: Option<u32>,
    ) -> Result<(Lookup, Vec<u64>), BackendError> {
        each!(self, store => store.read_counters(key, counters, lease).await)
    }

    /// Stores `original` again recorded in `epoch`, for the `ttl` it had left, unless `key`
    /// changed since it was read (with `cas`).
    pub(crate) async fn carry_forward(
        &self,
        key: &CacheKey,
        original: Arc<StoredResponse>,
        epoch: u64,
        CarryForward { cas, ttl }: CarryForward,
    ) {
        each!(self, store => store.carry_forward(key, original, epoch, cas, ttl).await)
    }

    /// Increments `counter` by `purge`'s delta, then the epoch, wherever they are kept (every
    /// server), within `deadline`.
    pub(crate) async fn bump(
        &self,
        namespace: &str,
        counter: CounterId,
        purge: Purge,
        deadline: Duration,
    ) -> Bumped {
        each!(self, store => store.bump(namespace, counter, purge, deadline).await)
    }

    /// Gives back a lease won by a lookup (the placeholder with this CAS), when nothing was
    /// stored in its place.
    pub(crate) async fn abandon(&self, key: &CacheKey, cas: u64) {
        each!(self, store => store.abandon(key, cas).await)
    }

    /// Returns the epoch of `key`'s server as last polled, while hits may rely on it; `None` for
    /// the embedded store (which reads its epoch in memory) and when polling is off or stale.
    pub(crate) fn polled_epoch(&self, key: &CacheKey) -> Option<u64> {
        self.memcached()?.polled_epoch(key)
    }

    /// Returns whether an entry of `key` stamped with `stamp` is current as far as the last poll
    /// of its server says, while that poll may be relied on; `false` for the embedded store.
    pub(crate) fn vouches(&self, key: &CacheKey, stamp: &Generation) -> bool {
        self.memcached()
            .is_some_and(|store| store.vouches(key, stamp))
    }

    /// Polls the servers' epochs (Memcached with polling on); how many were recorded.
    pub(crate) async fn poll(&self, namespace: &str) -> usize {
        match self.memcached() {
            Some(store) => store.poll(namespace).await,
            None => 0,
        }
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns whether polling is on and every server's last poll may be relied on.
    pub(crate) fn all_polled(&self) -> bool {
        self.memcached().is_some_and(MemcachedStore::all_polled)
    }

    /// Returns the polling settings, for Memcached with polling on.
    pub(crate) fn poll_settings(&self) -> Option<PollSettings> {
        self.memcached()?.poll_settings()
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns how many invalidation counters the embedded store holds; `None` for Memcached.
    pub(crate) fn counters_held(&self) -> Option<usize> {
        match self {
            Store::Embedded(store) => Some(store.counters_held()),
            Store::Memcached(_) => None,
        }
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Runs a raw get (no decoding), for the benchmark's floor.
    pub(crate) async fn raw_get(&self, key: &str) -> Option<usize> {
        match self {
            Store::Embedded(store) => store.raw_get(key),
            Store::Memcached(store) => store.raw_get(key).await,
        }
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Runs a raw get batched with reads of invalidation counters, as a hit does.
    pub(crate) async fn raw_get_counted(&self, key: &str, counters: &[CounterId]) -> Option<usize> {
        match self {
            Store::Embedded(store) => store.raw_get_counted(key, counters),
            Store::Memcached(store) => store.raw_get_counted(key, counters).await,
        }
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) async fn raw_set(&self, key: &str, value: &[u8]) -> bool {
        match self {
            Store::Embedded(store) => store.raw_set(key, value),
            Store::Memcached(store) => store.raw_set(key, value).await,
        }
    }

    /// Stores `entry` for its TTL plus `keep` seconds (the route's stale windows), giving up
    /// after `budget` (what is left of the request's deadline).
    pub(crate) async fn set(
        &self,
        key: &CacheKey,
        entry: Arc<StoredResponse>,
        keep: u32,
        budget: Duration,
    ) -> Result<(), BackendError> {
        each!(self, store => store.set(key, entry, keep, budget).await)
    }

    /// Takes `key`'s lease for `ttl` seconds: `true` when this caller recomputes the entry,
    /// only once the backend confirmed it (a timed-out request is not a lease).
    pub(crate) async fn lease(&self, key: &CacheKey, ttl: u32) -> bool {
        each!(self, store => store.lease(key, ttl).await)
    }

    /// Gives a lease back once the entry is stored (or was not storable).
    pub(crate) async fn release(&self, key: &CacheKey) {
        each!(self, store => store.release(key).await)
    }
}
