//! Invalidation by generation counters: the protocol's ids, stamps and epochs, in one place.
//!
//! Memcached cannot list keys, so an entry is never found to be deleted. Instead an entry
//! depends on a few counters:
//!
//! - the namespace's (`invalidate_all`),
//! - its path's (`invalidate(uri)`: every host, query, `vary` value, GET and HEAD; the path
//!   as `invalidation/spelling.rs` spells it, so that `/articles/05` and `/articles/5` share one),
//! - its route's, for the handler's parameter values (`article::invalidate(5)`),
//! - one per tag the route declares (`invalidate_tag("articles")`);
//!
//! and records a fingerprint of their values when it was rendered, with the epoch (below): its
//! [`Generation`]. Bumping any of
//! them changes the fingerprint later lookups compute, so the entry reads as a miss and is
//! rendered again and overwritten.
//!
//! Paths, parameter values and tags are hashed onto a fixed set of [`SHARED_COUNTERS`]
//! counters, so that their number never depends on how many distinct URLs are requested. In
//! Memcached they are created on first read with a random value: one that is evicted or
//! expires comes back as another random value, which can only drop entries, never revive one.
//! The embedded store holds all of them from the start and never evicts one.
//!
//! Reading every counter on every hit would cost a hit several operations. So each
//! invalidation also bumps one more counter, the namespace's epoch, after the one it targets;
//! an entry records the epoch it was rendered in, and a hit reads the entry and the epoch only
//! (one round trip, two operations). Only when the epoch moved does a second round trip read the
//! entry's counters: unchanged, the entry is served and stored again recorded in the new epoch
//! (once, compared by CAS: a [`CarryForward`]), so that its next hits take the short path again.
//! With Memcached and epoch polls, an entry also records which counters it depends on
//! ([`Deps`]), and each server keeps a log of which counter each epoch changed: an entry no
//! record since its epoch names is served without reading the epoch at all (`backend/watch.rs`),
//! so that an invalidation costs only the entries it names.
//!
//! With Memcached, each server holds its own copy of every counter, next to the entries it
//! holds: a lookup asks one server, and losing a server loses only its entries. Invalidating
//! bumps the copies on every server, each server's in order (the counter, then the epoch).
//!
//! A soft invalidation ([`Purge::Soft`]) marks entries stale instead of dropping them. A
//! counter's value has two parts: a hard invalidation adds 2^32 (its upper half changes), a
//! soft one adds 1 (its lower half changes). An entry records two fingerprints: of the whole
//! values (any invalidation changes it: the entry is no longer fresh) and of the upper halves,
//! its lineage (only a hard invalidation changes it: the entry is gone). No extra counter is
//! read: a soft purge costs a lookup what a hard one does. A soft bump that carries into the
//! upper half (once in 2^32 bumps of a counter) reads as a hard one: an entry is then dropped,
//! never served fresh.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::util::hex;

/// One generation counter: the namespace's, the epoch, or one of [`SHARED_COUNTERS`] that
/// paths, routes' parameter values and tags are hashed onto. Named by
/// [`InvalidationUri`](crate::invalidation::InvalidationUri), which only this crate implements usefully.
#[doc(hidden)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CounterId(Counter);

/// What an invalidation log record names (see `backend/watch.rs`): a shared counter's index, or
/// [`CHANGED_ALL`] for the namespace's counter.
pub(crate) type ChangeId = u32;

/// The record of an invalidation of the namespace's counter (every entry).
pub(crate) const CHANGED_ALL: ChangeId = u32::MAX;

/// Where a counter lives.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Counter {
    Everything,
    Epoch,
    /// A path's, a route's parameter values' or a tag's: 64 bits of a public digest of the
    /// name, which a store's [`Slots`] map onto one of its [`SHARED_COUNTERS`].
    Named(u64),
}

/// How one store (one Memcached server's copies, or the embedded store) maps named counters
/// onto its [`SHARED_COUNTERS`]: a keyed hash, whose key is the upper half of the store's
/// epoch.
///
/// Two names sometimes share a slot, and bumping it drops the entries of both. With a public
/// mapping, a client able to invalidate a tag of its own (`user:{id}`) could search offline for
/// an id whose tag shares the slot of any page it chose, and drop that page at will. The key
/// makes the mapping unknowable to clients: the epoch is created with a random value (its upper
/// half random, see `backend/memcached.rs`), only ever incremented by one, and never sent to a
/// client. Every instance reads the same epoch, so the fleet agrees on the mapping; an epoch that
/// is lost comes back with a new random value, and with it a new mapping, along with new counter
/// values that drop every entry stamped before. A stamp's own epoch gives the mapping its deps
/// were listed under.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slots {
    key: [u8; 32],
}

impl fmt::Debug for Slots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.write_str("Slots(..)")
    }
}

impl Slots {
    /// A mapping for reads of the namespace's counter and the epoch alone, which no mapping
    /// moves: it maps no name.
    pub(crate) const UNKEYED: Slots = Slots { key: [0; 32] };

    /// Returns the mapping of a store whose epoch is `epoch`.
    pub(crate) fn of_epoch(epoch: u64) -> Slots {
        let key = blake3::derive_key(
            "rocket-route-cache 2026-12 shared counter slots",
            &(epoch >> 32).to_le_bytes(),
        );
        Slots { key }
    }

    /// Returns the slot of a named counter; `None` for the namespace's counter and the epoch.
    pub(crate) fn index(&self, counter: &CounterId) -> Option<u16> {
        match counter.0 {
            Counter::Named(name) => {
                let hash = blake3::keyed_hash(&self.key, &name.to_le_bytes());
                let [low, high, ..] = *hash.as_bytes();
                Some(u16::from_le_bytes([low, high]))
            }
            Counter::Everything | Counter::Epoch => None,
        }
    }
}

/// How many counters paths, routes' parameter values and tags share. Requests name counters
/// (every distinct URL its own path), so their number must not depend on traffic: a scan of
/// made-up URLs would otherwise fill a store with counters, pushing out those of real pages
/// (each then comes back with a new value, dropping its entries at the next check). Hashed
/// onto a fixed set, two names sometimes share a counter: bumping it drops both, never fewer
/// entries than asked (an unrelated entry, with three or four counters, is dropped by a given
/// invalidation with odds of about 1 in 20,000).
pub(crate) const SHARED_COUNTERS: usize = 1 << 16;

const EVERYTHING: u8 = 0;
const PATH: u8 = 1;
const ROUTE: u8 = 2;
const TAG: u8 = 3;
const EPOCH: u8 = 4;
const SHARED: u8 = 5;

/// Separates parameter values in a route counter's input: never produced by `Debug` (which
/// writes UTF-8).
const VALUE_END: u8 = 0xff;

fn digest(kind: u8, write: impl FnOnce(&mut blake3::Hasher)) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[kind]);
    write(&mut hasher);
    let mut id = [0; 16];
    id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    id
}

impl CounterId {
    fn hashed(kind: u8, write: impl FnOnce(&mut blake3::Hasher)) -> CounterId {
        let digest = digest(kind, write);
        let name = u64::from_le_bytes(digest[..8].try_into().expect("8 of 16 bytes"));
        CounterId(Counter::Named(name))
    }

    /// Returns the namespace's counter: every entry depends on it.
    pub(crate) fn everything() -> CounterId {
        CounterId(Counter::Everything)
    }

    /// Returns the namespace's epoch: bumped by every invalidation, read by every hit.
    pub(crate) fn epoch() -> CounterId {
        CounterId(Counter::Epoch)
    }

    pub(crate) fn counter(&self) -> Counter {
        self.0
    }

    /// Returns what the invalidation log of a store mapping counters with `slots` records for
    /// a bump of this counter; `None` for the epoch.
    pub(crate) fn change_id(&self, slots: &Slots) -> Option<ChangeId> {
        match self.0 {
            Counter::Everything => Some(CHANGED_ALL),
            Counter::Named(_) => slots.index(self).map(ChangeId::from),
            Counter::Epoch => None,
        }
    }

    /// Returns a path's counter, from its segments as `invalidation/spelling.rs` spells them.
    pub(crate) fn path<'a>(segments: impl Iterator<Item = &'a str>) -> CounterId {
        CounterId::hashed(PATH, |hasher| {
            for segment in segments {
                hasher.update(&(segment.len() as u64).to_le_bytes());
                hasher.update(segment.as_bytes());
            }
        })
    }

    /// Returns a route's counter for these parameter values (`route` names the handler).
    pub(crate) fn route(route: &str, values: &[&dyn fmt::Debug]) -> CounterId {
        struct Writer<'h>(&'h mut blake3::Hasher);
        impl fmt::Write for Writer<'_> {
            fn write_str(&mut self, text: &str) -> fmt::Result {
                self.0.update(text.as_bytes());
                Ok(())
            }
        }
        CounterId::hashed(ROUTE, |hasher| {
            hasher.update(&(route.len() as u64).to_le_bytes());
            hasher.update(route.as_bytes());
            for value in values {
                // Formatting into a hasher cannot fail; a `Debug` impl that reports an error
                // still wrote the same bytes on both sides.
                let _ = fmt::write(&mut Writer(hasher), format_args!("{value:?}"));
                hasher.update(&[VALUE_END]);
            }
        })
    }

    /// Returns a tag's counter.
    pub(crate) fn tag(tag: &str) -> CounterId {
        CounterId::hashed(TAG, |hasher| {
            hasher.update(tag.as_bytes());
        })
    }

    /// Returns 32 lowercase hex digits, distinct per slot of a store mapping counters with
    /// `slots` (the Memcached key's suffix).
    pub(crate) fn hex(&self, slots: &Slots) -> [u8; 32] {
        static EVERYTHING_ID: OnceLock<[u8; 16]> = OnceLock::new();
        static EPOCH_ID: OnceLock<[u8; 16]> = OnceLock::new();
        let id = match self.0 {
            Counter::Everything => *EVERYTHING_ID.get_or_init(|| digest(EVERYTHING, |_| {})),
            Counter::Epoch => *EPOCH_ID.get_or_init(|| digest(EPOCH, |_| {})),
            Counter::Named(_) => {
                let index = slots.index(self).unwrap_or_default();
                digest(SHARED, |hasher| {
                    hasher.update(&index.to_le_bytes());
                })
            }
        };
        hex(&id)
    }
}

/// How an invalidation changes the counter it names: a hard one drops the entries that depend
/// on it, a soft one marks them stale (served as expired while one request refreshes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Purge {
    Hard,
    Soft,
}

impl Purge {
    /// Returns what the counter is incremented by (a counter's upper half is its lineage).
    pub(crate) fn delta(self) -> u64 {
        match self {
            Purge::Hard => 1 << 32,
            Purge::Soft => 1,
        }
    }
}

/// The generation of the invalidation counters an entry was rendered under (its stamp): the
/// namespace's epoch at the time, the
/// fingerprint of the counters it depends on, their lineage (the fingerprint of their upper
/// halves, which soft invalidations leave alone), and which shared counters they are. A lookup
/// compares them with the counters' current values; while no invalidation since the epoch
/// names one of its counters (as far as the changes this process polled say, see
/// `backend/watch.rs`), the epoch alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Generation {
    pub(crate) epoch: u64,
    pub(crate) fingerprint: u64,
    pub(crate) lineage: u64,
    pub(crate) deps: Deps,
}

impl Generation {
    /// Returns the stamp of `counters` with these `values` (in order), read in `epoch`.
    pub(crate) fn of(epoch: u64, counters: &[CounterId], values: &[u64]) -> Generation {
        Generation {
            epoch,
            fingerprint: fingerprint(values.iter().copied()),
            lineage: fingerprint(values.iter().map(|value| value >> 32)),
            deps: Deps::of(counters, &Slots::of_epoch(epoch)),
        }
    }
}

/// The shared counters an entry depends on, by index (the namespace's counter is implied: every
/// entry depends on it). Up to [`Deps::MAX`] are listed; an entry with more is marked as
/// depending on every counter, and is then taken as current only while nothing at all changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Deps {
    /// How many of `ids` are listed, or [`Deps::ALL`].
    len: u8,
    ids: [u16; Deps::MAX],
}

impl Deps {
    /// The most counters listed one by one.
    pub(crate) const MAX: usize = 8;
    /// `len` for an entry that depends on more counters than are listed.
    const ALL: u8 = u8::MAX;

    /// Returns the slots, under `slots`, of the named counters among `counters`.
    pub(crate) fn of(counters: &[CounterId], slots: &Slots) -> Deps {
        let mut deps = Deps::default();
        for counter in counters {
            if let Some(index) = slots.index(counter) {
                if !deps.push(index) {
                    return Deps::all();
                }
            }
        }
        deps
    }

    /// Returns the deps of an entry that depends on every counter.
    pub(crate) fn all() -> Deps {
        Deps {
            len: Deps::ALL,
            ids: [0; Deps::MAX],
        }
    }

    /// Adds `index` unless listed; `false` when the list is full.
    fn push(&mut self, index: u16) -> bool {
        if self.ids().contains(&index) {
            return true;
        }
        let Some(slot) = self.ids.get_mut(usize::from(self.len)) else {
            return false;
        };
        *slot = index;
        self.len += 1;
        true
    }

    /// Returns the listed counters; `None` when the entry depends on every counter.
    pub(crate) fn listed(&self) -> Option<&[u16]> {
        (self.len != Deps::ALL).then(|| self.ids())
    }

    fn ids(&self) -> &[u16] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Encodes the list as a frame holds it, always [`Deps::ENCODED_LEN`] bytes: `len`, then
    /// every slot of `ids` (unused ones zero).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        for id in self.ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }

    /// Bytes [`encode`](Self::encode) writes.
    pub(crate) const ENCODED_LEN: usize = 1 + 2 * Deps::MAX;

    /// Decodes what [`encode`](Self::encode) wrote; `None` for anything it does not write (a
    /// length over [`Deps::MAX`] other than the mark for every counter, an index listed twice, a
    /// nonzero unused slot).
    pub(crate) fn decode(bytes: &[u8; Deps::ENCODED_LEN]) -> Option<Deps> {
        let len = bytes[0];
        let mut ids = [0u16; Deps::MAX];
        for (slot, pair) in ids.iter_mut().zip(bytes[1..].chunks_exact(2)) {
            *slot = u16::from_le_bytes([pair[0], pair[1]]);
        }
        let deps = Deps { len, ids };
        let used = match len {
            Deps::ALL => 0,
            len if usize::from(len) <= Deps::MAX => usize::from(len),
            _ => return None,
        };
        let listed = &ids[..used];
        let distinct = listed
            .iter()
            .enumerate()
            .all(|(i, id)| !listed[..i].contains(id));
        (distinct && ids[used..].iter().all(|&id| id == 0)).then_some(deps)
    }
}

/// A hit rendered in an earlier epoch and still valid, to be carried forward: stored again
/// recorded in the current epoch, so that its next hits take the short path. It holds the CAS it was read with (so that a newer entry is never overwritten) and the
/// TTL it has left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CarryForward {
    pub(crate) cas: u64,
    pub(crate) ttl: u32,
}

/// Returns the fingerprint of a lookup's counter values, in order. Each step is a bijection of
/// the running value and of the next counter, so changing any one counter always changes it.
pub(crate) fn fingerprint(values: impl IntoIterator<Item = u64>) -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for value in values {
        state = (state ^ value).wrapping_mul(0xff51_afd7_ed55_8ccd);
        state ^= state >> 33;
    }
    state
}

/// Returns a counter's first value: random, so that a counter created again (after an eviction, a
/// restart, an expiry) never repeats a value an old entry was stamped with.
pub(crate) fn fresh_generation() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new()
        .hash_one(COUNT.fetch_add(1, Ordering::Relaxed))
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_distinct_per_kind_and_input() {
        let path = CounterId::path(["articles", "5"].into_iter());
        assert_eq!(path, CounterId::path(["articles", "5"].into_iter()));
        assert_ne!(path, CounterId::path(["articles5"].into_iter()));
        assert_ne!(path, CounterId::path(["articles", "6"].into_iter()));
        assert_ne!(
            CounterId::tag("articles"),
            CounterId::path(["articles"].into_iter())
        );
        let five: &dyn fmt::Debug = &5u32;
        let none: &dyn fmt::Debug = &None::<u32>;
        assert_ne!(
            CounterId::route("app::article", &[five, none]),
            CounterId::route("app::article", &[none, five])
        );
        assert_ne!(
            CounterId::route("app::article", &[five]),
            CounterId::route("app::other", &[five])
        );
        assert_ne!(CounterId::everything(), CounterId::tag(""));
    }

    /// What names a Memcached counter key (`{ns}:g:{hex}@{server}`): distinct URLs, parameter
    /// values and tags, however many, name at most `SHARED_COUNTERS` keys per server.
    #[test]
    fn distinct_names_share_a_bounded_set_of_counter_keys() {
        let slots = Slots::of_epoch(fresh_generation() >> 1);
        let mut keys = std::collections::HashSet::new();
        for i in 0..100_000u32 {
            let text = i.to_string();
            let value: &dyn fmt::Debug = &i;
            let path = CounterId::path(["missing", text.as_str()].into_iter());
            keys.insert(path.hex(&slots));
            keys.insert(CounterId::route("app::missing", &[value]).hex(&slots));
            keys.insert(CounterId::tag(&text).hex(&slots));
        }
        assert!(keys.len() <= SHARED_COUNTERS, "{} keys", keys.len());
        // Spread over the whole set: few names share a counter by accident.
        assert!(keys.len() > SHARED_COUNTERS * 9 / 10, "{} keys", keys.len());
        assert!(!keys.contains(&CounterId::everything().hex(&slots)));
        assert!(!keys.contains(&CounterId::epoch().hex(&slots)));
    }

    /// Which names share a slot depends on the store's epoch, which clients never see: a pair
    /// found sharing one under one epoch shares one under another only by chance (1 in 65,536).
    /// The tag below shares the slot of the path `/` under the mapping every release before
    /// this one used for everyone (found offline in under a second, as a client could).
    #[test]
    fn slots_are_keyed_by_the_epoch() {
        let page = CounterId::path(std::iter::empty());
        let tag = CounterId::tag("user:mallory144959");
        // The public mapping: the digest's first two bytes, as every name landed before.
        let public = |counter: &CounterId| match counter.0 {
            Counter::Named(name) => name as u16,
            _ => unreachable!(),
        };
        assert_eq!(public(&page), public(&tag), "the pair shares a public slot");
        let epochs: Vec<u64> = (0..200).map(|_| fresh_generation() >> 1).collect();
        let shared = epochs
            .iter()
            .filter(|&&epoch| {
                let slots = Slots::of_epoch(epoch);
                slots.index(&page) == slots.index(&tag)
            })
            .count();
        assert!(shared <= 1, "{shared} of 200 epochs");
        // A name keeps its slot within an epoch's life: invalidations add to the epoch's lower
        // half.
        let epoch = epochs[0];
        let slots = Slots::of_epoch(epoch);
        for later in [epoch + 1, epoch + 1_000_000] {
            assert_eq!(Slots::of_epoch(later).index(&page), slots.index(&page));
        }
        // The slot is not the public digest's: a client who hashes names as the crate does
        // (its source is public) still does not know where they land.
        let slot_of = |epoch: u64| Slots::of_epoch(epoch).index(&page);
        let distinct: std::collections::HashSet<_> = epochs.iter().map(|&e| slot_of(e)).collect();
        assert!(distinct.len() > 150, "{} distinct slots", distinct.len());
    }

    #[test]
    fn changing_any_one_counter_changes_the_fingerprint() {
        let base = [7u64, 1 << 40, 99, 12_345];
        for i in 0..base.len() {
            for delta in [1u64, 2, u64::MAX] {
                let mut changed = base;
                changed[i] = changed[i].wrapping_add(delta);
                assert_ne!(
                    fingerprint(changed),
                    fingerprint(base),
                    "counter {i} + {delta}"
                );
            }
        }
        assert_ne!(fingerprint([1, 2]), fingerprint([2, 1]));
    }

    /// A soft bump changes the fingerprint and keeps the lineage; a hard one changes both.
    #[test]
    fn soft_bumps_keep_the_lineage_hard_bumps_change_it() {
        let base = [fresh_generation() & !0xffff_ffff, 7 << 32, 99];
        let stamp = Generation::of(1, &[], &base);
        for i in 0..base.len() {
            let mut soft = base;
            soft[i] = soft[i].wrapping_add(Purge::Soft.delta());
            let soft = Generation::of(1, &[], &soft);
            assert_ne!(soft.fingerprint, stamp.fingerprint, "counter {i}");
            assert_eq!(soft.lineage, stamp.lineage, "counter {i}");
            let mut hard = base;
            hard[i] = hard[i].wrapping_add(Purge::Hard.delta());
            let hard = Generation::of(1, &[], &hard);
            assert_ne!(hard.fingerprint, stamp.fingerprint, "counter {i}");
            assert_ne!(hard.lineage, stamp.lineage, "counter {i}");
        }
        let top = [u64::MAX - (1 << 32) + 1];
        assert_ne!(
            Generation::of(1, &[], &[top[0].wrapping_add(Purge::Hard.delta())]).lineage,
            Generation::of(1, &[], &top).lineage,
            "wraps"
        );
    }

    #[test]
    fn deps_list_shared_counters_once_and_round_trip() {
        let counters = [
            CounterId::everything(),
            CounterId::tag("a"),
            CounterId::tag("a"),
            CounterId::tag("b"),
        ];
        let slots = Slots::of_epoch(fresh_generation() >> 1);
        let deps = Deps::of(&counters, &slots);
        assert_eq!(deps.listed().unwrap().len(), 2);
        let round_trip = |deps: Deps| {
            let mut out = Vec::new();
            deps.encode(&mut out);
            assert_eq!(out.len(), Deps::ENCODED_LEN);
            Deps::decode(&out.try_into().unwrap())
        };
        assert_eq!(round_trip(deps), Some(deps));
        // More than are listed: every counter.
        let many: Vec<CounterId> = (0..40).map(|i| CounterId::tag(&i.to_string())).collect();
        assert_eq!(Deps::of(&many, &slots).listed(), None);
        assert_eq!(round_trip(Deps::of(&many, &slots)), Some(Deps::all()));
        let mut bytes = [0u8; Deps::ENCODED_LEN];
        bytes[0] = 2;
        bytes[1] = 7;
        bytes[3] = 7;
        assert_eq!(Deps::decode(&bytes), None, "listed twice");
        bytes[3] = 8;
        assert!(Deps::decode(&bytes).is_some());
        bytes[5] = 1;
        assert_eq!(Deps::decode(&bytes), None, "an unused slot set");
        bytes[0] = 9;
        assert_eq!(Deps::decode(&bytes), None, "over the maximum");
    }

    #[test]
    fn fresh_generations_differ() {
        let a = fresh_generation();
        let b = fresh_generation();
        assert_ne!(a, b);
    }
}
