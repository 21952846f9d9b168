//! Coalescing misses: in this process through the key's flight, across instances through the
//! key's lease in the backend.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::leases::Leases;
use super::{lease_secs, unix_now, Coalesced, Flow, Reply, Run, Source};
use crate::backend::{Lease, Lookup};
use crate::entry::StoredResponse;
use crate::flight::{follow, Outcome, Role};
use crate::invalidation::generation::CounterId;
use crate::invalidation::targets::Scope;
use crate::outcome::Served;
use crate::settings::Config;

impl<'r> Flow<'r> {
    /// Waits for the request that runs the handler for this key, or becomes it. Only when the
    /// backend answered: a failing backend must never turn waiting into a queue (each request
    /// then runs the handler, as without a cache).
    pub(super) async fn coalesce(mut self, run: &Run, scope: &Scope) -> Coalesced<'r> {
        let cache = self.cache;
        if run.store.is_err() || !run.coalesces || !cache.config().coalesce {
            return Coalesced::Runs(self, None);
        }
        let leader = match (run.lease, cache.flights().join(self.key())) {
            // This request won the backend's lease: it runs the handler whatever happens here,
            // and leads this process's waiters if none is leading yet.
            (Lease::Won(_), Role::Leader(leader)) => Some(leader),
            (Lease::Won(_), Role::Follower(_)) => None,
            (_, Role::Follower(receiver)) => match self.follow_leader(run, receiver).await {
                Some(reply) => return Coalesced::Answered(reply),
                None => None,
            },
            (Lease::Busy, Role::Leader(leader)) => match self.await_other_instance(scope).await {
                Some(entry) => {
                    leader.publish(Some(Arc::clone(&entry)));
                    let source = Source::Collapsed(run.fwd);
                    let reply = self.serve_entry(&entry, unix_now(), Served::Hit, source);
                    return Coalesced::Answered(reply);
                }
                None => Some(leader),
            },
            (Lease::None, Role::Leader(leader)) => Some(leader),
        };
        Coalesced::Runs(self, leader)
    }

    /// Returns the answer from the entry another request of this process stored for the key,
    /// if it stored one, rendered under the counters `run` read, within `lease_wait`.
    async fn follow_leader(
        &self,
        run: &Run,
        receiver: watch::Receiver<Option<Outcome>>,
    ) -> Option<Reply<'r>> {
        let waited = tokio::time::timeout(self.cache.config().lease_wait, follow(receiver)).await;
        // Rendered under the counters this request read: not from before an invalidation it
        // follows.
        let same_counters = |e: &Arc<StoredResponse>| {
            run.store.ok().map(|s| s.fingerprint) == Some(e.generation().fingerprint)
        };
        let entry = waited.ok().flatten().filter(same_counters)?;
        let source = Source::Collapsed(run.fwd);
        Some(self.serve_entry(&entry, unix_now(), Served::Hit, source))
    }

    /// Returns the entry another instance, which holds the backend's lease, stored; `None`
    /// when this request is to run the handler (a lease it won is then in `leases`).
    async fn await_other_instance(&mut self, scope: &Scope) -> Option<Arc<StoredResponse>> {
        let counters = scope.counters(self.request);
        match await_other_instance(&mut self.leases, self.cache.config(), &counters).await {
            Awaited::Entry(entry) => Some(entry),
            Awaited::Leased | Awaited::GaveUp => None,
        }
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

/// Polls, while another instance holds the key's lease, for the entry it stores with lease reads,
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
