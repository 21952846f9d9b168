//! Memcached through the `memcache` crate's async meta-protocol client. This is the only file
//! that names that client: its API is experimental, so it stays behind [`Backend`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

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
}

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
        }
    }

    async fn client(&self) -> Result<&AsyncMemcache, BackendError> {
        self.client
            .get_or_try_init(|| {
                AsyncMemcache::builder()
                    .timeout(self.op_timeout)
                    .connect_timeout(self.op_timeout)
                    .max_idle(self.pool_idle)
                    .degrade(false)
                    .connect_async(self.servers.iter().map(String::as_str))
            })
            .await
            .map_err(|error| BackendError::Client(error.to_string()))
    }

    /// Runs `op` under the operation deadline, dialing included.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(self.op_timeout, op)
            .await
            .unwrap_or(Err(BackendError::Timeout))
    }
}

impl Backend for MemcachedStore {
    async fn get(&self, key: &CacheKey) -> Lookup {
        let fetched = self
            .bounded(async {
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

    async fn set(&self, key: &CacheKey, entry: Arc<StoredResponse>) -> Result<(), BackendError> {
        let frame = entry.encode();
        self.bounded(async {
            let client = self.client().await?;
            client
                .set(key.as_str(), frame.as_slice(), Ttl::secs(entry.ttl))
                .await
                .map_err(|error| BackendError::Client(error.to_string()))
        })
        .await
    }
}
