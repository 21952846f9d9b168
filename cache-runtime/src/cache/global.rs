//! The global cache: what routes use when their Rocket instance manages none, what the free
//! `invalidate*` functions and the fairing share; and the registry of every cache alive in the
//! process, which invalidations that name no cache reach.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use once_cell::sync::OnceCell;

use super::{Cache, Inner};
use crate::settings::{Config, ConfigError};

/// How the global cache came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Configured from the environment by its first use.
    Environment,
    /// Installed through [`install`].
    Installed,
    /// Installed by the first Rocket instance whose [`CacheFairing`](crate::CacheFairing)
    /// ignited.
    Fairing,
}

static GLOBAL_CACHE: OnceCell<(Cache, Origin)> = OnceCell::new();

/// Returns the global cache, configured on first use from the environment when nothing was
/// [`install`]ed. An unusable `MEMCACHED_SERVERS` is logged as an error and the cache is
/// disabled (cached routes run their handlers): a configuration mistake must not take the site
/// down, nor put it on a store nobody configured, which other instances would not share (an
/// invalidation would not reach it). With [`CacheFairing`](crate::CacheFairing) the same mistake
/// fails ignite instead.
pub fn global() -> &'static Cache {
    &GLOBAL_CACHE
        .get_or_init(|| {
            let cache = Cache::from_env().unwrap_or_else(|error| {
                log::error!(
                    "cache: {error}; the cache is disabled: cached routes run their handlers"
                );
                let disabled = Config {
                    enabled: false,
                    ..Config::embedded()
                };
                Cache::new(disabled).expect("the default configuration is valid")
            });
            (cache, Origin::Environment)
        })
        .0
}

/// Installs the global cache from `config`, before the first cached request.
///
/// ```
/// let mut config = rocket_route_cache::Config::memcached(["127.0.0.1:11211"]);
/// config.namespace = "blog".into();
/// rocket_route_cache::config::install(config).expect("installed before first use");
/// ```
pub fn install(config: Config) -> Result<(), InstallError> {
    let cache = Cache::new(config).map_err(InstallError::Invalid)?;
    GLOBAL_CACHE
        .set((cache, Origin::Installed))
        .map_err(|_| InstallError::AlreadyInitialized)
}

/// Returns the cache a Rocket instance configured with `cache` serves its routes from, installed
/// as the global one when that is still unused. When the global one is in use already, with the
/// same configuration it is that one (so that routes and `invalidate*` share one store); with
/// another, it is an error unless another instance's fairing installed it (two Rocket
/// instances in one process, each with its own cache).
pub(crate) fn adopt(cache: Cache) -> Result<Cache, Conflict> {
    let mut adopted = true;
    let (global, origin) = GLOBAL_CACHE.get_or_init(|| {
        adopted = false;
        (cache.clone(), Origin::Fairing)
    });
    if !adopted || *origin == Origin::Fairing {
        return Ok(cache);
    }
    if global.config() == cache.config() {
        return Ok(global.clone());
    }
    Err(Conflict {
        origin: *origin,
        global: global.describe_with_state(),
        configured: cache.describe_with_state(),
    })
}

impl Cache {
    fn describe_with_state(&self) -> String {
        match self.config().enabled {
            true => self.describe(),
            false => format!("disabled, {}", self.describe()),
        }
    }
}

/// The global cache was in use, with another configuration, before a fairing configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    origin: Origin,
    global: String,
    configured: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.origin {
            Origin::Environment => "configured from the environment by an earlier use",
            Origin::Installed => "installed with rocket_route_cache::config::install",
            Origin::Fairing => "installed by another fairing",
        };
        write!(
            f,
            "the global cache is already in use ({how}: {}) and differs from the `cache` \
             configuration ({}): this instance's routes would use one store and \
             rocket_route_cache::invalidate* the other. Attach CacheFairing before anything uses the \
             global cache (no install, global(), invalidate* or cached request before ignite), \
             or configure both the same",
            self.global, self.configured
        )
    }
}

/// Why [`install`] did not take effect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// The configuration is not usable.
    Invalid(ConfigError),
    /// The global cache was already installed or used.
    AlreadyInitialized,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::Invalid(error) => error.fmt(f),
            InstallError::AlreadyInitialized => f.write_str(
                "the global cache was already initialized: install it before the first request",
            ),
        }
    }
}

impl std::error::Error for InstallError {}

/// Every cache alive in the process, created by [`Cache::new`]: what the free `invalidate*`
/// functions reach.
static CACHES: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

pub(super) fn register(cache: &Cache) {
    let mut caches = CACHES.lock().unwrap_or_else(|e| e.into_inner());
    caches.retain(|weak| weak.strong_count() > 0);
    caches.push(Arc::downgrade(&cache.inner));
}

/// Returns the caches an invalidation that names no cache reaches: the global one (configured
/// first if unused: a process that only invalidates, a CLI say, reaches the servers it names) and
/// every other cache alive in the process (each Rocket instance's managed one), one per store:
/// two caches on the same servers and namespace are reached once.
pub(crate) fn every_cache() -> Vec<Cache> {
    let mut every = vec![global().clone()];
    let alive: Vec<Cache> = CACHES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(|weak| weak.upgrade().map(|inner| Cache { inner }))
        .collect();
    for cache in alive {
        if !every.iter().any(|reached| reached.covers(&cache)) {
            every.push(cache);
        }
    }
    every
}

impl Cache {
    /// Returns whether an invalidation through `self` also reaches everything `other` serves: the
    /// same Memcached servers and namespace (an embedded store is its own).
    fn covers(&self, other: &Cache) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (!self.config().servers.is_empty()
                && self.config().servers == other.config().servers
                && self.config().namespace == other.config().namespace)
    }
}
