//! Memcached through the `memcache` crate's async meta-protocol client. This is the only file
//! that names that client: its API is experimental, so it stays behind [`Backend`].

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memcache::exp::{AsyncMemcache, Ttl};
use tokio::sync::OnceCell;

use super::{Backend, BackendError, Lookup};
use crate::entry::StoredResponse;
use crate::key::CacheKey;

pub(crate) struct MemcachedStore {
    servers: Vec<String>,
    op_timeout: Duration,
    pool_idle: usize,
    /// Dialed lazily, inside the runtime that serves requests. A failed start (an address that
    /// does not resolve) is retried by the next operation.
    client: OnceCell<AsyncMemcache>,
    start_failed_at: Mutex<Option<Instant>>,
}

/// How long after a failed client start the next attempt waits.
const START_RETRY: Duration = Duration::from_secs(1);

impl fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("servers", &self.servers)
            .field("op_timeout", &self.op_timeout)
            .field("pool_idle", &self.pool_idle)
            .finish_non_exhaustive()
    }
}

impl MemcachedStore {
    pub(crate) fn new(
        servers: Vec<String>,
        op_timeout: Duration,
        pool_idle: usize,
    ) -> MemcachedStore {
        MemcachedStore {
            servers,
            op_timeout,
            pool_idle,
            client: OnceCell::new(),
            start_failed_at: Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<&AsyncMemcache, BackendError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        // Starting resolves every address; after a failure (a name that does not resolve),
        // requests do not each retry the lookup for a while.
        let failed_at = *self
            .start_failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if failed_at.is_some_and(|at| at.elapsed() < START_RETRY) {
            return Err(BackendError::Client(
                "client start failed recently; retrying later".into(),
            ));
        }
        let started = self
            .client
            .get_or_try_init(|| {
                AsyncMemcache::builder()
                    .timeout(self.op_timeout)
                    .connect_timeout(self.op_timeout)
                    .max_idle(self.pool_idle)
                    .degrade(false)
                    .connect_async(self.servers.iter().map(String::as_str))
            })
            .await;
        if started.is_err() {
            *self
                .start_failed_at
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        started.map_err(|error| BackendError::Client(error.to_string()))
    }

    /// Runs `op` under `deadline`, dialing included.
    async fn bounded<T>(
        &self,
        deadline: Duration,
        op: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(deadline, op)
            .await
            .unwrap_or(Err(BackendError::Timeout))
    }
}

impl MemcachedStore {
    pub(crate) async fn raw_get(&self, key: &str) -> Option<usize> {
        self.bounded(self.op_timeout, async {
            let client = self.client().await?;
            client
                .get::<Vec<u8>>(key)
                .await
                .map_err(|error| BackendError::Client(error.to_string()))
        })
        .await
        .ok()
        .flatten()
        .map(|value| value.len())
    }

    pub(crate) async fn raw_set(&self, key: &str, value: &[u8]) -> bool {
        self.bounded(self.op_timeout, async {
            let client = self.client().await?;
            client
                .set(key, value, Ttl::secs(3600))
                .await
                .map_err(|error| BackendError::Client(error.to_string()))
        })
        .await
        .is_ok()
    }
}

impl Backend for MemcachedStore {
    async fn get(&self, key: &CacheKey) -> Lookup {
        let fetched = self
            .bounded(self.op_timeout, async {
                let client = self.client().await?;
                client
                    .get::<Vec<u8>>(key.as_str())
                    .await
                    .map_err(|error| BackendError::Client(error.to_string()))
            })
            .await;
        match fetched {
            Ok(Some(frame)) => match StoredResponse::decode(frame) {
                Some(entry) => Lookup::Hit(Arc::new(entry)),
                None => Lookup::Failed(BackendError::Undecodable),
            },
            Ok(None) => Lookup::Miss,
            Err(error) => Lookup::Failed(error),
        }
    }

    async fn set(
        &self,
        key: &CacheKey,
        entry: Arc<StoredResponse>,
        budget: Duration,
    ) -> Result<(), BackendError> {
        if budget.is_zero() {
            return Err(BackendError::Timeout);
        }
        self.bounded(budget, async {
            let client = self.client().await?;
            client
                .set(key.as_str(), entry.frame(), Ttl::secs(entry.ttl()))
                .await
                .map_err(|error| BackendError::Client(error.to_string()))
        })
        .await
    }
}
