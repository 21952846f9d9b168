//! The cache handle: a store, the near tier and the in-process flights, with the settings
//! routes read on every request; the global one (`global`); invalidation through either
//! (`invalidate`).

mod global;
mod invalidate;

pub(crate) use self::global::{adopt, every_cache};
pub use self::global::{global, install, InstallError};
pub use self::invalidate::{invalidate, invalidate_all, invalidate_tag, Invalidation};

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rocket::request::{FromRequest, Outcome};
use rocket::Request;

use crate::backend::Lookup;
use crate::backend::{
    BreakerSettings, BreakerState, EmbeddedStore, MemcachedStore, PollSettings, Store,
};
use crate::counting::{Counters, Snapshot};
use crate::entry::StoredResponse;
use crate::flight::Flights;
use crate::http::status::CacheStatus;
use crate::key::CacheKey;
use crate::lookup::Fetched;
use crate::near::NearTier;
use crate::route::guard_check::SharedGuard;
use crate::settings::{Config, ConfigError, SERVERS_ENV};
use crate::util::unix_now;

/// A configured cache: a store plus the settings routes read on every request.
///
/// Routes use, in order: a `Cache` managed by their Rocket instance
/// (`rocket::build().manage(cache)`), else the global cache ([`install`]ed, or configured
/// from the environment on first use). Cloning is cheap and shares the store.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Config,
    announced: AtomicBool,
    flights: Flights,
    /// What `Cache-Status` opens with, when it is sent.
    cache_status: Option<CacheStatus>,
    /// Keys whose entry this process is storing again in a new invalidation epoch.
    carrying_forward: Mutex<HashSet<CacheKey>>,
    /// With Memcached and polling on: recent hits, served without I/O.
    near: Option<NearTier>,
    /// Whether a task polls the epochs (in the runtime that serves requests).
    polling: AtomicBool,
    /// Polls sent so far.
    polls: AtomicU64,
    /// Woken after each poll.
    polled: tokio::sync::Notify,
    /// What requests served by this cache did, apart from other caches of the process.
    counters: Counters,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("store", &self.inner.store)
            .field("namespace", &self.inner.config.namespace)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// Creates a cache from `config`, checked first. Memcached connections are dialed lazily, on
    /// first use, so this never blocks and works before any runtime exists.
    pub fn new(config: Config) -> Result<Cache, ConfigError> {
        config.validate()?;
        let store = if config.servers.is_empty() {
            Store::Embedded(EmbeddedStore::new(config.embedded_capacity))
        } else {
            Store::Memcached(MemcachedStore::new(
                config.servers.clone(),
                config.op_timeout,
                config.pool_idle,
                BreakerSettings {
                    failures: config.breaker_failures,
                    cooldown: config.breaker_cooldown,
                },
                PollSettings::of(&config),
            ))
        };
        let near = (store.poll_settings().is_some() && config.near_capacity > 0)
            .then(|| NearTier::new(config.near_capacity));
        let cache_status = config.cache_status.as_deref().map(CacheStatus::new);
        let cache = Cache {
            inner: Arc::new(Inner {
                store,
                config,
                announced: AtomicBool::new(false),
                flights: Flights::default(),
                cache_status,
                carrying_forward: Mutex::new(HashSet::new()),
                near,
                polling: AtomicBool::new(false),
                polls: AtomicU64::new(0),
                polled: tokio::sync::Notify::new(),
                counters: Counters::new(),
            }),
        };
        global::register(&cache);
        Ok(cache)
    }

    /// Creates a cache configured from `MEMCACHED_SERVERS` (see [`Config::from_env`]).
    pub fn from_env() -> Result<Cache, ConfigError> {
        Cache::new(Config::from_env()?)
    }

    /// Returns the configuration in force.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Returns the counters of the requests this cache served and of its invalidations: with two
    /// Rocket instances in one process, each with its own cache, each instance's own (the
    /// per-route counters of [`stats`](crate::metrics::stats) add up every instance mounting the
    /// route).
    pub fn stats(&self) -> Snapshot {
        self.inner.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Returns whether entries are shared with other instances (Memcached) or private to this
    /// process (the embedded store).
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.store, Store::Memcached(_))
    }

    /// Returns one line for logs: the backend, its servers or bound, and the namespace.
    pub fn describe(&self) -> String {
        let config = &self.inner.config;
        match &self.inner.store {
            Store::Memcached(_) => format!(
                "memcached at {} (namespace `{}`)",
                config.servers.join(", "),
                config.namespace
            ),
            Store::Embedded(_) => format!(
                "embedded in-process store, {} MiB (namespace `{}`; entries are not shared between instances)",
                config.embedded_capacity / (1024 * 1024),
                config.namespace
            ),
        }
    }

    /// Returns, for the embedded store, how many entries it holds and their weight in bytes,
    /// which stays within [`Config::embedded_capacity`]. `None` for Memcached.
    pub fn embedded_usage(&self) -> Option<(usize, u64)> {
        match &self.inner.store {
            Store::Embedded(store) => Some((store.len(), store.weight())),
            Store::Memcached(_) => None,
        }
    }

    /// Returns each Memcached server with its circuit breaker's state (empty for the embedded
    /// store).
    pub fn servers(&self) -> Vec<ServerStatus> {
        match &self.inner.store {
            Store::Memcached(store) => store
                .server_states()
                .into_iter()
                .map(|(address, breaker)| ServerStatus { address, breaker })
                .collect(),
            Store::Embedded(_) => Vec::new(),
        }
    }

    pub(crate) fn flights(&self) -> &Flights {
        &self.inner.flights
    }

    /// Returns the `Cache-Status` field's maker; `None` when the field is off.
    pub(crate) fn cache_status(&self) -> Option<&CacheStatus> {
        self.inner.cache_status.as_ref()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Claims the right to store `key`'s entry again in a new epoch, unless this process is
    /// already doing so: concurrent first hits after an invalidation send one re-store, not one
    /// each.
    pub(crate) fn claim_carry_forward(&self, key: &CacheKey) -> Option<CarryForwardClaim> {
        let mut carrying_forward = self
            .inner
            .carrying_forward
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        carrying_forward
            .insert(key.clone())
            .then(|| CarryForwardClaim {
                cache: self.clone(),
                key: key.clone(),
            })
    }

    /// Returns the cache serving `request`: its Rocket instance's managed one, else the global
    /// one.
    pub(crate) fn for_request<'r>(request: &'r Request<'_>) -> &'r Cache {
        let cache = request
            .rocket()
            .state::<Cache>()
            .unwrap_or_else(|| global());
        cache.announce();
        if cache.config().enabled {
            cache.watch_epochs();
        }
        cache
    }

    /// Starts polling the servers' epochs in the current runtime, unless a task already does
    /// (one per cache; started again when the runtime it ran in is gone).
    pub(crate) fn watch_epochs(&self) {
        let Some(settings) = self.store().poll_settings() else {
            return;
        };
        let polling = &self.inner.polling;
        if polling.load(Ordering::Relaxed) || polling.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(poll_epochs(Arc::downgrade(&self.inner), settings.interval));
            }
            Err(_) => polling.store(false, Ordering::Release),
        }
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns how many epoch polls this cache has sent.
    pub(crate) fn polls(&self) -> u64 {
        self.inner.polls.load(Ordering::Relaxed)
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Starts the poller if needed and waits for a poll that completes after this call and
    /// leaves every server's last poll fit to rely on (forever when polling is off, or a server
    /// does not answer): hits may then rely on it for about a whole horizon.
    pub(crate) async fn polled(&self) {
        self.watch_epochs();
        loop {
            self.inner.polled.notified().await;
            if self.store().all_polled() {
                return;
            }
        }
    }

    /// Returns, for the near tier, how many entries it holds and their weight in bytes, which
    /// stays within [`Config::near_capacity`]. `None` when there is no near tier (the embedded
    /// store, or `near_capacity` or `epoch_poll` zero).
    pub fn near_usage(&self) -> Option<(usize, u64)> {
        self.inner.near.as_ref().map(NearTier::usage)
    }

    /// Returns a hit from the near tier: `key`'s entry when it is fresh and the last poll of its
    /// server, recent enough to be relied on, vouches for the stamp it was checked with.
    pub(crate) fn near_hit(&self, key: &CacheKey) -> Option<Fetched> {
        let near = self.inner.near.as_ref()?;
        let store = self.store();
        let (entry, stamp) = near.get(key, unix_now(), |stamp| store.vouches(key, stamp))?;
        Some(Fetched {
            lookup: Lookup::Hit(entry),
            stamp: Some(stamp),
            invalidated: false,
            soft_purged: false,
            carry_forward: None,
        })
    }

    /// Keeps a far hit in the near tier, with the stamp it was checked with; not a soft-purged
    /// one, which the near tier would serve as fresh.
    pub(crate) fn near_keep(&self, key: &CacheKey, fetched: &Fetched) {
        if let (Some(near), Lookup::Hit(entry), Some(stamp), false) = (
            &self.inner.near,
            &fetched.lookup,
            fetched.stamp,
            fetched.soft_purged,
        ) {
            near.put(key, entry, stamp, unix_now());
        }
    }

    /// Keeps an entry just written to Memcached in the near tier, with its stamp.
    pub(crate) fn near_keep_stored(&self, key: &CacheKey, entry: &Arc<StoredResponse>) {
        if let Some(near) = &self.inner.near {
            near.put(key, entry, entry.generation(), unix_now());
        }
    }

    /// Logs, once per cache and through Rocket's logger (which exists by the first request),
    /// which backend is in use; for the embedded store, that entries are not shared.
    pub(crate) fn announce(&self) {
        if self.inner.announced.load(Ordering::Relaxed)
            || self.inner.announced.swap(true, Ordering::Relaxed)
        {
            return;
        }
        if !self.inner.config.enabled {
            log::warn!(
                "cache: disabled (`enabled = false`): cached routes run their handlers and \
                 answer X-Cache: BYPASS"
            );
        } else if self.is_shared() {
            log::info!("cache: {}", self.describe());
        } else {
            log::warn!(
                "cache: {}: no Memcached servers configured ({SERVERS_ENV} unset, no `servers` \
                 in the cache configuration)",
                self.describe()
            );
        }
    }
}

/// Polls the epochs every `interval` while the cache exists; marks it unpolled when it ends
/// (the cache is gone, or the runtime running the task shut down).
async fn poll_epochs(cache: Weak<Inner>, interval: Duration) {
    struct Running(Weak<Inner>);
    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(inner) = self.0.upgrade() {
                inner.polling.store(false, Ordering::Release);
            }
        }
    }
    let _running = Running(cache.clone());
    loop {
        let started = Instant::now();
        {
            let Some(inner) = cache.upgrade() else {
                return;
            };
            inner.polls.fetch_add(1, Ordering::Relaxed);
            inner.store.poll(&inner.config.namespace).await;
            inner.polled.notify_waiters();
        }
        tokio::time::sleep_until((started + interval).into()).await;
    }
}

/// Held while a key's entry is being stored again; released when dropped.
pub(crate) struct CarryForwardClaim {
    pub(crate) cache: Cache,
    pub(crate) key: CacheKey,
}

impl Drop for CarryForwardClaim {
    fn drop(&mut self) {
        self.cache
            .inner
            .carrying_forward
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// A Memcached server and whether requests use it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStatus {
    /// As configured, `host:port`.
    pub address: String,
    pub breaker: BreakerState,
}

/// The cache serving this request (its Rocket instance's managed [`Cache`], else the global
/// one), for handlers that invalidate: `async fn update(id: u32, cache: &Cache)`.
#[rocket::async_trait]
impl<'r> FromRequest<'r> for &'r Cache {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Cache::for_request(request))
    }
}

/// A handler that takes the cache reads nothing of the request through it.
impl SharedGuard for &Cache {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_carry_forward_per_key_at_a_time() {
        let cache = Cache::new(Config::embedded()).unwrap();
        let (one, two) = (CacheKey::trusted("rc:one"), CacheKey::trusted("rc:two"));
        let claim = cache.claim_carry_forward(&one).expect("first claim");
        assert!(cache.claim_carry_forward(&one).is_none(), "held");
        assert!(cache.claim_carry_forward(&two).is_some(), "another key");
        drop(claim);
        assert!(cache.claim_carry_forward(&one).is_some(), "released");
    }
}
