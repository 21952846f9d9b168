//! The leases one request takes in the backend, and their return on every path: finished
//! explicitly, or given back from a task when the request is dropped (the client went away),
//! including while the call that takes one is still in flight.
//!
//! A call that may take a lease (a lease read that creates a placeholder, the stale-refresh
//! `add`) runs in a task of its own and hands what it won back through a channel: dropped
//! mid-call, the request still cannot leave a lease held until `lease_ttl`. Only those calls
//! pay for a task; a hit, and every lookup on the embedded store, takes none.

use std::future::Future;

use crate::backend::{BackendError, Found, Lease, Lookup, Store};
use crate::cache::Cache;
use crate::invalidation::generation::CounterId;
use crate::key::CacheKey;
use crate::lookup::{Fetched, FirstRead};

/// What a request holds in the backend for its key.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    /// The stale-refresh companion key (`{key}~l`, taken with `add`).
    companion: bool,
    /// The CAS of the placeholder a lease read created for this request.
    placeholder: Option<u64>,
}

impl Held {
    fn is_empty(&self) -> bool {
        !self.companion && self.placeholder.is_none()
    }
}

/// Gives `held` back; `written`: an entry replaced the placeholder, which is then gone.
async fn give_back(store: &Store, key: &CacheKey, held: Held, written: bool) {
    if held.companion {
        store.release(key).await;
    }
    if let (Some(cas), false) = (held.placeholder, written) {
        store.abandon(key, cas).await;
    }
}

/// Gives `held` back from a task: the request that held it is gone.
fn give_back_later(cache: Cache, key: CacheKey, held: Held) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { give_back(cache.store(), &key, held, false).await });
    }
}

/// The leases a request holds for its key. Finished explicitly on every path; dropped
/// unfinished (the request was cancelled), it gives them back from a task.
pub(crate) struct Leases<'a> {
    cache: &'a Cache,
    /// Owned, so that a request's flow can outlive the frame that built its key (a refresh
    /// run after a stale reply's body).
    key: CacheKey,
    held: Held,
}

/// Leases won by a call that ran in a task of its own, on their way to the request; dropped
/// before the request took them over (it is gone), they are given back.
struct InFlight {
    cache: Cache,
    key: CacheKey,
    held: Held,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            give_back_later(self.cache.clone(), self.key.clone(), held);
        }
    }
}

impl Drop for Leases<'_> {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.held);
        if !held.is_empty() {
            give_back_later(self.cache.clone(), self.key.clone(), held);
        }
    }
}

/// Runs `call` in a task of its own, so that it completes even if the request awaiting it is
/// dropped meanwhile; what it returns is then dropped in that task or with the channel (an
/// [`InFlight`] gives its leases back). `None` if the task panicked.
async fn to_completion<T: Send + 'static>(
    call: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = sender.send(call.await);
    });
    receiver.await.ok()
}

impl<'a> Leases<'a> {
    pub(crate) fn new(cache: &'a Cache, key: CacheKey) -> Leases<'a> {
        Leases {
            cache,
            key,
            held: Held::default(),
        }
    }

    /// Looks the key up ([`Store::read_first`], then [`Store::check`] unless that was a hit),
    /// for a request that may be dropped at any point: a lease read (a miss, on Memcached)
    /// runs to its end, and the placeholder it won is this request's to give back.
    ///
    /// With `expect_miss` (the route's last lookups found nothing), a lease read, and a recent
    /// poll of the key's server, the first round trip is skipped: the lease read, batched with
    /// the counters, returns the entry if there is one after all, checked as an entry stored
    /// between two round trips is.
    pub(crate) async fn lookup(
        &mut self,
        counters: impl FnOnce() -> Vec<CounterId>,
        lease: Option<u32>,
        expect_miss: bool,
    ) -> Fetched {
        let store = self.cache.store();
        // Only when the shortcut may be taken: a far hit otherwise reads the poll itself.
        let skip_first = expect_miss && lease.is_some();
        let polled = store.polled_epoch(&self.key).filter(|_| skip_first);
        let first = match polled {
            Some(epoch) => FirstRead::Check(Found::Absent, epoch),
            None => store.read_first(&self.key).await,
        };
        let found = match first {
            FirstRead::Done(fetched) => return fetched,
            FirstRead::Check(found, epoch) => (found, epoch),
        };
        let lease = lease.filter(|_| found.0.takes_lease() && self.cache.is_shared());
        if lease.is_none() {
            return store.check(&self.key, found, &counters(), None).await;
        }
        let (cache, key, counters) = (self.cache.clone(), self.key.clone(), counters());
        let read = to_completion(async move {
            let fetched = cache.store().check(&key, found, &counters, lease).await;
            let placeholder = match fetched.lookup {
                Lookup::Miss(Lease::Won(cas)) => Some(cas),
                _ => None,
            };
            let held = Held {
                companion: false,
                placeholder,
            };
            (fetched, InFlight { cache, key, held })
        })
        .await;
        match read {
            Some((fetched, won)) => {
                self.adopt(won);
                fetched
            }
            None => Fetched::failed(BackendError::Client("the lease read did not end".into())),
        }
    }

    /// Takes the stale-refresh lease for `ttl` seconds: whether this request refreshes the
    /// entry.
    pub(crate) async fn take_companion(&mut self, ttl: u32) -> bool {
        if !self.cache.is_shared() {
            return self.cache.store().lease(&self.key, ttl).await;
        }
        let (cache, key) = (self.cache.clone(), self.key.clone());
        let taken = to_completion(async move {
            let won = cache.store().lease(&key, ttl).await;
            let held = Held {
                companion: won,
                placeholder: None,
            };
            InFlight { cache, key, held }
        })
        .await;
        match taken {
            Some(won) => {
                let companion = won.held.companion;
                self.adopt(won);
                companion
            }
            None => false,
        }
    }

    /// Returns the key the leases are for.
    pub(crate) fn key(&self) -> &CacheKey {
        &self.key
    }

    fn adopt(&mut self, mut won: InFlight) {
        let held = std::mem::take(&mut won.held);
        self.held.companion |= held.companion;
        self.held.placeholder = held.placeholder.or(self.held.placeholder);
    }

    /// Gives the leases back; `written`: the entry replaced the placeholder.
    pub(crate) async fn finish(&mut self, written: bool) {
        // Cleared only once given back: dropped midway, the rest is given back from a task.
        give_back(self.cache.store(), &self.key, self.held, written).await;
        self.held = Held::default();
    }
}
