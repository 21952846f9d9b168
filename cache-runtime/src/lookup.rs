//! The invalidation-aware read: an entry is a hit only when it was rendered under the current
//! values of the counters it depends on (see `generation.rs` for the protocol). The backends
//! below only read and write; this layer decides what a read means.

use crate::backend::{BackendError, Found, Lease, Lookup, Read, Store};
use crate::invalidation::generation::{CarryForward, CounterId, Generation, Slots};
use crate::key::CacheKey;

/// A lookup, checked against the invalidation counters.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// A hit only when the entry was rendered under the counters' current values.
    pub(crate) lookup: Lookup,
    /// What to stamp the entry stored after a miss with, read before the handler runs;
    /// `None` when the counters could not be read (nothing may be stored).
    pub(crate) stamp: Option<Generation>,
    /// An entry was there but rendered before an invalidation.
    pub(crate) invalidated: bool,
    /// The hit was rendered before a soft invalidation of one of its counters: it is served
    /// as expired (within the route's stale windows) while one request renders it again.
    pub(crate) soft_purged: bool,
    /// The hit was rendered in an earlier epoch but is still valid: store it again, recorded
    /// in the current one, so that its next hits take the short path.
    pub(crate) carry_forward: Option<CarryForward>,
}

impl Fetched {
    pub(crate) fn failed(error: BackendError) -> Fetched {
        Fetched {
            lookup: Lookup::Failed(error),
            stamp: None,
            invalidated: false,
            soft_purged: false,
            carry_forward: None,
        }
    }
}

/// What the first round trip of a lookup decided.
#[derive(Debug)]
pub(crate) enum FirstRead {
    /// A hit in the current epoch, or a failure: nothing more to read.
    Done(Fetched),
    /// An entry from an earlier epoch, or none, to check against the counters; with the epoch
    /// read (or polled) with it, whose mapping names the counters.
    Check(Found, u64),
}

impl Store {
    /// Runs both round trips of a lookup in one (see [`read_first`](Self::read_first)); requests
    /// go through `Leases::lookup`, which runs a lease read so that a cancelled request gives
    /// back what it won.
    #[cfg(test)]
    pub(crate) async fn get(
        &self,
        key: &CacheKey,
        counters: impl FnOnce() -> Vec<CounterId>,
        lease: Option<u32>,
    ) -> Fetched {
        match self.read_first(key).await {
            FirstRead::Done(fetched) => fetched,
            FirstRead::Check(found, epoch) => {
                let lease = lease.filter(|_| found.takes_lease());
                self.check(key, (found, epoch), &counters(), lease).await
            }
        }
    }

    /// Looks `key` up, to be checked against the invalidation counters its entry depends on
    /// (see `generation.rs`): an entry rendered under other values than theirs is a miss.
    ///
    /// A hit that no invalidation since its stamp concerns takes this one round trip (the
    /// entry, with the epoch unless a recent poll says what changed). Otherwise
    /// [`check`](Self::check) reads the counters themselves, with the lease read on a miss.
    pub(crate) async fn read_first(&self, key: &CacheKey) -> FirstRead {
        match self.read(key).await {
            Ok(Read::Current(entry)) => FirstRead::Done(Fetched {
                stamp: Some(entry.generation()),
                lookup: Lookup::Hit(entry),
                invalidated: false,
                soft_purged: false,
                carry_forward: None,
            }),
            Ok(Read::Check(found, epoch)) => FirstRead::Check(found, epoch),
            Err(error) => FirstRead::Done(Fetched::failed(error)),
        }
    }

    /// Runs the second round trip of a lookup: `found`, from an earlier epoch or absent,
    /// checked against the `counters`; with `lease` (only for an absent entry), a lease read.
    /// The epoch is read in the same batch, before the counters: an invalidation bumps its
    /// counter before the epoch, so an entry stamped with this epoch and these counters cannot
    /// hide a later one. Read here rather than reused from the first read, it is as recent as
    /// the counters: an entry rendered after an invalidation is stamped after it, and is not
    /// taken for one it predates when the polls learn of that invalidation.
    ///
    /// The counters are named under the mapping of `read_in`, the epoch `found` was read (or
    /// polled) with (see `Slots`). An epoch created again since (lost in between, or after the
    /// poll, so with another mapping) is read again under the new one, once; a second change
    /// leaves nothing to conclude: a miss that stores nothing.
    pub(crate) async fn check(
        &self,
        key: &CacheKey,
        (found, read_in): (Found, u64),
        counters: &[CounterId],
        lease: Option<u32>,
    ) -> Fetched {
        let (leased, epoch, values) = match self.read_named(key, read_in, counters, lease).await {
            Ok(read) => read,
            Err(fetched) => return fetched,
        };
        let stamp = Generation::of(epoch, counters, &values);
        let mut soft_purged = false;
        let (lookup, invalidated, carry_forward) = match (found, leased) {
            (Found::Entry(entry, cas, ttl), _)
                if entry.generation().fingerprint == stamp.fingerprint =>
            {
                let carry_forward = cas
                    .zip(ttl)
                    .filter(|(_, ttl)| *ttl > 0)
                    .map(|(cas, ttl)| CarryForward { cas, ttl });
                (Lookup::Hit(entry), false, carry_forward)
            }
            // Soft-purged: never carried forward, so that every later lookup checks it again until
            // an entry rendered after the purge replaces it.
            (Found::Entry(entry, ..), _) if entry.generation().lineage == stamp.lineage => {
                soft_purged = true;
                (Lookup::Hit(entry), false, None)
            }
            (Found::Entry(..), _) => (Lookup::Miss(Lease::None), true, None),
            (Found::Undecodable, _) => (Lookup::Failed(BackendError::Undecodable), false, None),
            // Stored by another instance between the two round trips.
            (Found::Absent, Lookup::Hit(entry))
                if entry.generation().fingerprint != stamp.fingerprint =>
            {
                (Lookup::Miss(Lease::None), true, None)
            }
            (Found::Absent, leased) => (leased, false, None),
        };
        Fetched {
            lookup,
            stamp: Some(stamp),
            invalidated,
            soft_purged,
            carry_forward,
        }
    }

    /// Reads the epoch and `counters` (with `lease`, a lease read of `key`), named under the
    /// mapping of `read_in`, or of the epoch read if it was created again since (see
    /// [`check`](Self::check)): what the lease read gave, the epoch and the counters' values.
    async fn read_named(
        &self,
        key: &CacheKey,
        read_in: u64,
        counters: &[CounterId],
        lease: Option<u32>,
    ) -> Result<(Lookup, u64, Vec<u64>), Fetched> {
        let mut read = Vec::with_capacity(1 + counters.len());
        read.push(CounterId::epoch());
        read.extend_from_slice(counters);
        let mut named_in = read_in;
        let mut leased = None;
        loop {
            let slots = Slots::of_epoch(named_in);
            // The lease read goes with the first exchange only: what it won is kept.
            let lease = lease.filter(|_| leased.is_none());
            let (read_leased, mut values) = self
                .read_counters(key, (&read, &slots), lease)
                .await
                .map_err(Fetched::failed)?;
            let leased = leased.get_or_insert(read_leased);
            if values.is_empty() {
                let error = BackendError::Client("no epoch in the reply".into());
                return Err(Fetched::failed(error));
            }
            let epoch = values.remove(0);
            if epoch >> 32 == named_in >> 32 {
                let leased = std::mem::replace(leased, Lookup::Miss(Lease::None));
                return Ok((leased, epoch, values));
            }
            if named_in != read_in {
                // Nothing checked, nothing to stamp with: a miss that stores nothing, holding
                // whatever lease the first exchange won (given back as any other).
                let lookup = match leased {
                    Lookup::Miss(lease) => Lookup::Miss(*lease),
                    _ => Lookup::Miss(Lease::None),
                };
                return Err(Fetched {
                    lookup,
                    stamp: None,
                    invalidated: false,
                    soft_purged: false,
                    carry_forward: None,
                });
            }
            named_in = epoch;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::backend::EmbeddedStore;
    use crate::entry::{Lifetime, StoredResponse};
    use crate::invalidation::generation::Purge;
    use crate::key::KeyParts;

    fn key() -> CacheKey {
        KeyParts::fixture("/a/<id>", "/a/1").build("rc")
    }

    async fn fresh_hit(store: &Store, key: &CacheKey, counters: &[CounterId]) -> Fetched {
        let fetched = store.get(key, || counters.to_vec(), None).await;
        assert!(matches!(fetched.lookup, Lookup::Hit(_)), "{fetched:?}");
        fetched
    }

    /// The protocol on the embedded store: a hit in its own epoch takes the short path; after
    /// an unrelated invalidation it is checked, served and carried forward; after one of its own
    /// counters, it is a miss.
    #[rocket::async_test]
    async fn hits_take_the_short_path_until_an_invalidation_concerns_them() {
        let store = Store::Embedded(EmbeddedStore::new(1 << 20));
        let key = key();
        let counters = [CounterId::everything(), CounterId::tag("mine")];
        let missed = store.get(&key, || counters.to_vec(), None).await;
        assert!(matches!(missed.lookup, Lookup::Miss(_)));
        let stamp = missed.stamp.unwrap();
        let entry =
            StoredResponse::response(200, std::iter::empty(), b"x", Lifetime::fresh(0, 60), stamp);
        store
            .set(&key, Arc::new(entry.unwrap()), 0, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(fresh_hit(&store, &key, &counters).await.carry_forward, None);

        // Another tag: the epoch moves, the entry is still valid and is recorded again.
        store
            .bump("rc", CounterId::tag("other"), Purge::Hard, Duration::ZERO)
            .await;
        let checked = fresh_hit(&store, &key, &counters).await;
        let Lookup::Hit(found) = &checked.lookup else {
            unreachable!()
        };
        let carry_forward = checked.carry_forward.expect("carried forward");
        let Generation {
            epoch: new_epoch,
            fingerprint: same_fingerprint,
            ..
        } = checked.stamp.unwrap();
        assert_ne!(new_epoch, stamp.epoch);
        assert_eq!(same_fingerprint, stamp.fingerprint);
        store
            .carry_forward(&key, Arc::clone(found), new_epoch, carry_forward)
            .await;
        assert_eq!(fresh_hit(&store, &key, &counters).await.carry_forward, None);

        // Its own tag: a miss, and the stamp to store the next rendering with differs.
        store
            .bump("rc", CounterId::tag("mine"), Purge::Hard, Duration::ZERO)
            .await;
        let invalidated = store.get(&key, || counters.to_vec(), None).await;
        assert!(matches!(invalidated.lookup, Lookup::Miss(Lease::None)));
        assert!(invalidated.invalidated);
        assert_ne!(invalidated.stamp.unwrap().fingerprint, stamp.fingerprint);
    }

    /// A soft invalidation of one of its counters leaves the entry a hit marked soft-purged,
    /// not carried forward, with the stamp to store its next rendering with; a hard one after it
    /// drops it.
    #[rocket::async_test]
    async fn soft_purged_entries_stay_until_a_hard_invalidation() {
        let store = Store::Embedded(EmbeddedStore::new(1 << 20));
        let key = key();
        let counters = [CounterId::everything(), CounterId::tag("mine")];
        let stamp = store.get(&key, || counters.to_vec(), None).await.stamp;
        let entry = StoredResponse::response(
            200,
            std::iter::empty(),
            b"x",
            Lifetime::fresh(0, 60),
            stamp.unwrap(),
        );
        store
            .set(&key, Arc::new(entry.unwrap()), 0, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(!fresh_hit(&store, &key, &counters).await.soft_purged);

        store
            .bump("rc", CounterId::tag("mine"), Purge::Soft, Duration::ZERO)
            .await;
        let purged = fresh_hit(&store, &key, &counters).await;
        assert!(purged.soft_purged && !purged.invalidated);
        assert_eq!(purged.carry_forward, None);
        let next = purged.stamp.unwrap();
        assert_ne!(next.fingerprint, stamp.unwrap().fingerprint);
        assert_eq!(next.lineage, stamp.unwrap().lineage);

        store
            .bump("rc", CounterId::tag("mine"), Purge::Hard, Duration::ZERO)
            .await;
        let dropped = store.get(&key, || counters.to_vec(), None).await;
        assert!(matches!(dropped.lookup, Lookup::Miss(Lease::None)));
        assert!(dropped.invalidated && !dropped.soft_purged);
    }
}
