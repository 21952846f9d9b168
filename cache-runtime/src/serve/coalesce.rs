//! Coalescing misses: in this process through the key's flight, across instances through the
//! key's lease in the backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::leases::Leases;
use super::{lease_secs, unix_now, Flow, Reply, Source};
use crate::backend::{Lease, Lookup};
use crate::entry::StoredResponse;
use crate::flight::{follow, Leader, Outcome, Role};
use crate::generation::CounterId;
use crate::outcome::Served;
use crate::settings::Config;
use crate::targets::Scope;

impl<'r> Flow<'r> {
    /// Coalesce: waits for the request that runs the handler for this key, or becomes it.
    /// Only when the backend answered: a failing backend must never turn waiting into a queue
    /// (each request then runs the handler, as without a cache).
    pub(super) async fn coalesce(&mut self, scope: &Scope) -> Option<Reply<'r>> {
        let cache = self.cache;
        let alone = self.leader.is_some() || self.refresh || self.passing;
        if !self.may_store || alone || !cache.config().coalesce {
            return None;
        }
        match (self.lease, cache.flights().join(self.key())) {
            // This request won the backend's lease: it runs the handler whatever happens here,
            // and leads this process's waiters if none is leading yet.
            (Lease::Won(_), Role::Leader(guard)) => self.leader = Some(guard),
            (Lease::Won(_), Role::Follower(_)) => {}
            (_, Role::Follower(receiver)) => return self.follow_leader(receiver).await,
            (Lease::Busy, Role::Leader(guard)) => {
                return self.await_other_instance(guard, scope).await
            }
            (Lease::None, Role::Leader(guard)) => self.leader = Some(guard),
        }
        None
    }

    /// Another request of this process runs the handler: its entry, if it stored one in time.
    async fn follow_leader(&self, receiver: watch::Receiver<Option<Outcome>>) -> Option<Reply<'r>> {
        let waited = tokio::time::timeout(self.cache.config().lease_wait, follow(receiver)).await;
        // Rendered under the counters this request read: not from before an invalidation it
        // follows.
        let same_counters = |e: &Arc<StoredResponse>| {
            self.stamp.map(|s| s.fingerprint) == Some(e.stamp().fingerprint)
        };
        if let Ok(Some(entry)) = waited.map(|e| e.filter(same_counters)) {
            return Some(self.serve_entry(&entry, unix_now(), Served::Hit, Source::Collapsed));
        }
        // The leader published nothing usable or took too long: run it here.
        None
    }

    /// Another instance holds the backend's lease: its entry, else this request runs the
    /// handler, leading this process's waiters.
    async fn await_other_instance(
        &mut self,
        guard: Leader<'r>,
        scope: &Scope,
    ) -> Option<Reply<'r>> {
        let counters = scope.counters(self.request);
        match await_other_instance(&mut self.leases, self.cache.config(), &counters).await {
            Awaited::Entry(entry) => {
                guard.publish(Some(Arc::clone(&entry)));
                return Some(self.serve_entry(&entry, unix_now(), Served::Hit, Source::Collapsed));
            }
            // Either way this request runs the handler; a lease it won is in `leases`.
            Awaited::Leased | Awaited::GaveUp => {}
        }
        self.leader = Some(guard);
        None
    }
}

/// What waiting on another instance's lease came to.
enum Awaited {
    /// It stored the entry.
    Entry(Arc<StoredResponse>),
    /// It gave the lease back without storing (the response was not storable), or the lease
    /// expired: this request now holds it (given back through its `Leases`).
    Leased,
    /// `lease_wait` passed, or the backend failed: run the handler without a lease.
    GaveUp,
}

/// Another instance holds the key's lease: poll for the entry it stores with lease reads,
/// backing off, for at most `lease_wait`. A holder that stored nothing gives the placeholder
/// back, and the next read here wins the lease (held by `leases`) instead of waiting out the
/// deadline.
async fn await_other_instance(
    leases: &mut Leases<'_>,
    config: &Config,
    counters: &[CounterId],
) -> Awaited {
    let deadline = Instant::now() + config.lease_wait;
    let mut pause = Duration::from_millis(5);
    while Instant::now() + pause < deadline {
        tokio::time::sleep(pause).await;
        let lease = Some(lease_secs(config));
        // Nothing was there at the last read: the entry, once stored, comes back with the
        // lease read itself.
        match leases
            .lookup(|| counters.to_vec(), lease, true)
            .await
            .lookup
        {
            Lookup::Hit(entry) => return Awaited::Entry(entry),
            Lookup::Miss(Lease::Won(_)) => return Awaited::Leased,
            Lookup::Miss(Lease::Busy) => pause = (pause * 2).min(Duration::from_millis(100)),
            Lookup::Miss(Lease::None) | Lookup::Failed(_) => return Awaited::GaveUp,
        }
    }
    Awaited::GaveUp
}
