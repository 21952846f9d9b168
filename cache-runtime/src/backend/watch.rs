//! What this process knows of each Memcached server's invalidation epoch between reads of it,
//! and for how long it may rely on it: the lease that lets a hit skip the epoch read (one
//! operation instead of two) and lets the near tier answer without any I/O.
//!
//! # The promise, and why it holds
//!
//! Once `invalidate*` returns `Ok`, a request that starts afterwards, on any instance sharing
//! the servers, is never served an entry rendered before it. Without this module every hit
//! keeps it by reading the key's server's epoch along with the entry (see `generation.rs`).
//! With it, a background task polls every server's epoch every `P` (the configured
//! `epoch_poll`), and records for each server the epoch read and the instant the poll was
//! **sent**. A hit may use that epoch instead of reading it, only while the poll is younger
//! than the horizon `H = P + D` (`D`, the poll's deadline): [`EpochWatch::epoch`] answers
//! `None` after that, and the hit reads the epoch itself as before.
//!
//! An invalidation bumps its counter and the epoch on every server, and once every server has
//! confirmed, waits `H` before returning. Take a request that starts at `t`, after the
//! invalidation returned: `t >= confirmed + H`. If it relies on a poll, that poll was sent at
//! `s > t - H >= confirmed`, after the server applied the bump; so the epoch it read is the
//! bumped one (or a later one), and no entry stamped before the bump carries it. Entries are
//! served, near or far, only when their stamp's epoch equals the polled one.
//!
//! The argument only measures durations, each with one process's monotonic clock: clocks need
//! not agree, only run at about the same rate. A poller that stalls, a paused server or a lost
//! connection stops polls from succeeding; the last one ages past `H` and hits go back to
//! reading the epoch (or miss, if the server does not answer) by themselves.
//!
//! # Instances configured differently
//!
//! The wait must be the longest horizon any instance relies on. Each server holds the largest
//! horizon in use (`{ns}:h@{server}`, in milliseconds, only ever raised, by compare-and-swap).
//! A poll reads it *before* the epoch, in the same batch, and counts only if it is at least
//! this process's horizon (the first poll raises it, the next ones count). An invalidation
//! reads it *after* bumping the epoch, and waits the largest it saw. If a poll missed the bump
//! (the server read its epoch before the bump), the invalidation's read came after that poll's
//! read of the horizon, so it saw a value at least as large. The value is read every `P` by
//! every instance, so Memcached's LRU keeps it; were it lost anyway (a server restarted with an
//! empty memory), the epochs and every entry on that server are lost with it.
//!
//! # What changed: an invalidation costs the entries it names, not the working set
//!
//! The epoch moves at every invalidation, whatever it names. Were an entry served only in the
//! epoch it was stamped in, every invalidation would send every near entry, then every far
//! entry, back through a check of its counters: the cost of an edit would grow with the
//! working set. So each server also keeps a short log of what each epoch changed
//! (`memcached/changes.rs`): the invalidation that moved the epoch to `V` appends `(V, counter)`
//! after both increments, and returns only once the record is written. A poll that finds the
//! epoch moved reads the records since its last one and keeps, per bucket of counters, the
//! latest epoch a change was recorded in. An entry stamped in epoch `e` that depends on
//! counters `C` (its [`Deps`]) is then served without any read of the counters while no record
//! after `e` names a counter of `C` ([`EpochWatch::vouches`]).
//!
//! Why the promise still holds: take an invalidation recorded as `V` that returned before a
//! request started, and the poll the request relies on, sent at `s` after the record was
//! written (as above). That poll read the epoch (at least `V`) and then the records up to it,
//! so it read `(V, counter)` unless it was overwritten by a newer round of the log (then the
//! versions of that round are *lost*), and the request's entry, if stamped before `V` and
//! depending on `counter`, is not vouched for. A version the log does not hold yet (its
//! invalidation is between its increments and its record) cannot be one that returned before
//! the poll was sent: it is *pending*, not taken into account, and read again by the next
//! polls; one still missing after [`HOLE_WAIT`] (its invalidator failed, and reported its server
//! as unconfirmed), or lost, raises the **floor**: entries stamped before it are checked
//! through their counters, as every entry was after every invalidation before this log. A
//! record of the namespace's counter (`invalidate_all`) raises the floor to its version; so
//! does the first poll (nothing earlier is known), and an epoch that went back or jumped (the
//! counter was lost and created again with a random value). A stamp past the polled epoch by
//! more than [`SLACK`] is from another run of the counter and is never vouched for.
//!
//! Counters are kept in [`BUCKETS`] buckets: an entry is checked again when a counter sharing
//! a bucket with one of its own changed (odds `deps / BUCKETS` per invalidation). Memory: 8
//! bytes a bucket, 128 KiB per server. Readers and the poller share the knowledge through a
//! sequence lock: a hit that overlaps a poll's update is not vouched for and takes the far path.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::invalidation::generation::{ChangeId, Generation, CHANGED_ALL};
use crate::settings::Config;

/// Buckets of counters whose latest change each server's knowledge keeps.
pub(crate) const BUCKETS: usize = 1 << 14;

/// How long a version missing from the log is taken to be an invalidation still writing its
/// record; then it is lost (its invalidator gave up: it answers within
/// `max(op_timeout, 500 ms)` per exchange).
pub(crate) const HOLE_WAIT: Duration = Duration::from_secs(2);

/// How far past the polled epoch an entry's stamp may be (stamped by an instance that polled
/// later) and still be of the same run of the counter.
const SLACK: u64 = 1 << 32;

/// How often, and for how long a poll may be relied on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollSettings {
    /// The time between two polls' sending.
    pub(crate) interval: Duration,
    /// The most a poll may take; a later answer is not used.
    pub(crate) deadline: Duration,
}

impl PollSettings {
    /// Returns how `config` polls the epochs; `None` when polling is off.
    pub(crate) fn of(config: &Config) -> Option<PollSettings> {
        (!config.epoch_poll.is_zero()).then(|| PollSettings {
            interval: config.epoch_poll,
            deadline: config.epoch_poll.min(config.op_timeout),
        })
    }

    /// Returns how long after it was sent a poll may be relied on: a poll answered within its
    /// deadline is followed by the next one before the horizon passes.
    pub(crate) fn horizon(&self) -> Duration {
        self.interval + self.deadline
    }
}

/// One server's last successful poll, and what it knows of the changes up to it.
#[derive(Debug)]
struct Polled {
    /// Even while stable; odd while the poller updates the fields below (a sequence lock).
    seq: AtomicU64,
    epoch: AtomicU64,
    /// Nanoseconds after [`EpochWatch::origin`] at which it was sent, plus one (0: never).
    sent: AtomicU64,
    /// Entries stamped before it are not vouched for.
    floor: AtomicU64,
    /// The latest version any change was recorded in: for entries whose counters are not listed.
    latest: AtomicU64,
    /// Per bucket of counters, the latest version a change of one was recorded in.
    changed: Box<[AtomicU64]>,
    /// The poller's own: how far the log was read.
    progress: Mutex<Progress>,
}

/// How far a server's log was read.
#[derive(Debug, Default)]
struct Progress {
    /// Every record up to this version was applied (or is lost); `None` before the first poll.
    known: Option<u64>,
    /// The first version missing from the log after `known`, and since when.
    pending: Option<(u64, Instant)>,
}

/// What a poll read of a server's log, from version `from` on: each version it holds, with
/// what it changed, and the versions it can tell were overwritten before they were read
/// (earlier versions than `from` were too).
#[derive(Debug, Default)]
pub(crate) struct Records {
    pub(crate) from: u64,
    pub(crate) changes: HashMap<u64, ChangeId>,
    pub(crate) lost: Vec<u64>,
}

/// Every server's last successful poll.
#[derive(Debug)]
pub(crate) struct EpochWatch {
    settings: PollSettings,
    origin: Instant,
    servers: Box<[Polled]>,
}

impl EpochWatch {
    pub(crate) fn new(servers: usize, settings: PollSettings) -> EpochWatch {
        EpochWatch {
            settings,
            origin: Instant::now(),
            servers: (0..servers)
                .map(|_| Polled {
                    seq: AtomicU64::new(0),
                    epoch: AtomicU64::new(0),
                    sent: AtomicU64::new(0),
                    floor: AtomicU64::new(0),
                    latest: AtomicU64::new(0),
                    changed: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
                    progress: Mutex::new(Progress::default()),
                })
                .collect(),
        }
    }

    pub(crate) fn settings(&self) -> PollSettings {
        self.settings
    }

    fn since_origin(&self, at: Instant) -> u64 {
        // Saturates after 584 years of uptime.
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX - 1)
    }

    /// Returns the epoch `server` had when last polled, while that poll may be relied on (see the
    /// module's documentation); `None` otherwise.
    pub(crate) fn epoch(&self, server: usize) -> Option<u64> {
        self.epoch_at(server, Instant::now())
    }

    fn epoch_at(&self, server: usize, now: Instant) -> Option<u64> {
        let polled = self.servers.get(server)?;
        // Acquire: the epoch stored before this `sent` is visible. An older `sent` paired
        // with a newer epoch only ends the lease sooner.
        let sent = polled.sent.load(Ordering::Acquire).checked_sub(1)?;
        let age = self.since_origin(now).saturating_sub(sent);
        let horizon = u64::try_from(self.settings.horizon().as_nanos()).unwrap_or(u64::MAX);
        (age < horizon).then(|| polled.epoch.load(Ordering::Relaxed))
    }

    /// Returns whether an entry stamped with `stamp`, on `server`, is current as far as the
    /// changes the last poll read say (no record since its epoch names one of its counters),
    /// while that poll may be relied on. See the module's documentation.
    pub(crate) fn vouches(&self, server: usize, stamp: &Generation) -> bool {
        let Some(polled) = self.servers.get(server) else {
            return false;
        };
        let seq = polled.seq.load(Ordering::Acquire);
        if seq % 2 == 1 || self.epoch_at(server, Instant::now()).is_none() {
            return false;
        }
        let floor = polled.floor.load(Ordering::Relaxed);
        let epoch = polled.epoch.load(Ordering::Relaxed);
        let at = stamp.epoch;
        // Names map onto counters by the epoch's upper half (`Slots`): an entry stamped under
        // another mapping is never vouched for by this one's records.
        let current = at >= floor
            && at >> 32 == epoch >> 32
            && at <= epoch.saturating_add(SLACK)
            && match stamp.deps.listed() {
                None => polled.latest.load(Ordering::Relaxed) <= at,
                Some(ids) => ids.iter().all(|&id| {
                    polled.changed[usize::from(id) % BUCKETS].load(Ordering::Relaxed) <= at
                }),
            };
        // Read while no update ran: the knowledge read is one poll's.
        fence(Ordering::Acquire);
        current && polled.seq.load(Ordering::Relaxed) == seq
    }

    /// Returns which versions of `server`'s log a poll that read `epoch` must read: those after
    /// the ones known, at most the last `window`; `None` when there is nothing to read (nothing
    /// changed, or the poll starts afresh).
    pub(crate) fn to_read(&self, server: usize, epoch: u64, window: u64) -> Option<(u64, u64)> {
        let polled = self.servers.get(server)?;
        let progress = polled.progress.lock().unwrap_or_else(|e| e.into_inner());
        let known = progress.known?;
        if epoch <= known || epoch - known > SLACK {
            return None;
        }
        Some(((known + 1).max(epoch.saturating_sub(window - 1)), epoch))
    }

    /// Records a poll of `server` sent at `sent` that read `epoch` (and a horizon at least
    /// ours), then `records` of the versions [`to_read`](Self::to_read) named. An answer to an
    /// older poll than the one recorded changes nothing.
    pub(crate) fn record(&self, server: usize, sent: Instant, epoch: u64, records: &Records) {
        let Some(polled) = self.servers.get(server) else {
            return;
        };
        let mut progress = polled.progress.lock().unwrap_or_else(|e| e.into_inner());
        let sent = self.since_origin(sent) + 1;
        if polled.sent.load(Ordering::Relaxed) >= sent {
            return;
        }
        let seq = polled.seq.load(Ordering::Relaxed);
        polled.seq.store(seq + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let raise = |field: &AtomicU64, version: u64| {
            field.fetch_max(version, Ordering::Relaxed);
        };
        match progress.known {
            // Within one mapping of names (the epoch's upper half, see `Slots`): a change of
            // mapping is a jump, as a restarted server's epoch is.
            Some(known)
                if epoch >= known && epoch - known <= SLACK && epoch >> 32 == known >> 32 =>
            {
                // Versions before the first one read were overwritten before they were read.
                if records.from > known + 1 {
                    raise(&polled.floor, records.from - 1);
                }
                let mut next_known = epoch;
                for version in records.from.max(known + 1)..=epoch {
                    if records.changes.contains_key(&version) {
                        continue;
                    }
                    let waited = progress.pending.is_some_and(|(missing, since)| {
                        missing == version && since.elapsed() >= HOLE_WAIT
                    });
                    if records.lost.contains(&version) || waited {
                        raise(&polled.floor, version);
                    } else if next_known == epoch {
                        next_known = version - 1;
                        if progress
                            .pending
                            .is_none_or(|(missing, _)| missing != version)
                        {
                            progress.pending = Some((version, Instant::now()));
                        }
                    }
                }
                for (&version, &id) in &records.changes {
                    if version <= known {
                        continue;
                    }
                    raise(&polled.latest, version);
                    if id == CHANGED_ALL {
                        raise(&polled.floor, version);
                    } else {
                        raise(&polled.changed[id as usize % BUCKETS], version);
                    }
                }
                if next_known == epoch {
                    progress.pending = None;
                }
                progress.known = Some(next_known);
            }
            // The first poll, or an epoch that went back or jumped: nothing before it is known.
            _ => {
                polled.floor.store(epoch, Ordering::Relaxed);
                polled.latest.store(epoch, Ordering::Relaxed);
                for bucket in polled.changed.iter() {
                    bucket.store(0, Ordering::Relaxed);
                }
                *progress = Progress {
                    known: Some(epoch),
                    pending: None,
                };
            }
        }
        polled.epoch.store(epoch, Ordering::Relaxed);
        // Release: `epoch_at` reads `sent` (acquire) then the epoch stored before it.
        polled.sent.store(sent, Ordering::Release);
        polled.seq.store(seq + 2, Ordering::Release);
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns whether every server's last poll may be relied on.
    pub(crate) fn all_fresh(&self) -> bool {
        let now = Instant::now();
        (0..self.servers.len()).all(|server| self.epoch_at(server, now).is_some())
    }

    /// Forgets every poll: hits read the epoch again until the next one succeeds.
    #[cfg(test)]
    pub(crate) fn forget(&self) {
        for polled in self.servers.iter() {
            polled.sent.store(0, Ordering::Release);
        }
    }
}

/// Returns the horizon stored on a server, in whole milliseconds, rounded up: never shorter than
/// the horizon it stands for.
pub(crate) fn horizon_millis(horizon: Duration) -> u64 {
    u64::try_from(horizon.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invalidation::generation::{CounterId, Deps, Slots};

    fn watch() -> EpochWatch {
        EpochWatch::new(
            2,
            PollSettings {
                interval: Duration::from_millis(50),
                deadline: Duration::from_millis(50),
            },
        )
    }

    #[test]
    fn a_poll_is_relied_on_until_the_horizon_after_it_was_sent() {
        let watch = watch();
        let sent = Instant::now();
        assert_eq!(watch.epoch_at(0, sent), None, "never polled");
        watch.record(0, sent, 7, &Records::default());
        assert_eq!(watch.epoch_at(0, sent + Duration::from_millis(99)), Some(7));
        assert_eq!(watch.epoch_at(0, sent + Duration::from_millis(100)), None);
        assert_eq!(watch.epoch_at(1, sent), None, "another server");
        assert_eq!(watch.epoch_at(2, sent), None, "no such server");
    }

    #[test]
    fn an_older_poll_answering_late_changes_nothing() {
        let watch = watch();
        let first = Instant::now();
        let second = first + Duration::from_millis(40);
        watch.record(0, second, 8, &Records::default());
        watch.record(0, first, 7, &Records::default());
        assert_eq!(watch.epoch_at(0, second), Some(8));
        assert_eq!(
            watch.epoch_at(0, first + Duration::from_millis(120)),
            Some(8)
        );
        watch.forget();
        assert_eq!(watch.epoch_at(0, second), None);
    }

    fn stamp(epoch: u64, deps: &[CounterId]) -> Generation {
        Generation {
            epoch,
            deps: Deps::of(deps, &Slots::of_epoch(epoch)),
            ..Generation::default()
        }
    }

    fn records(from: u64, changes: &[(u64, &CounterId)]) -> Records {
        Records {
            from,
            changes: changes
                .iter()
                .map(|(version, counter)| {
                    let slots = Slots::of_epoch(*version);
                    (*version, counter.change_id(&slots).unwrap())
                })
                .collect(),
            lost: Vec::new(),
        }
    }

    /// An epoch whose lower half carries into its upper half changes the mapping of names onto
    /// counters (`Slots`): the records after it name other slots than the entries stamped
    /// before, which are then vouched for no more (regression: a carry left a page stale, its
    /// invalidation recorded under the new mapping).
    #[test]
    fn a_change_of_mapping_vouches_for_nothing_stamped_under_the_old_one() {
        let watch = watch();
        let (mine, other) = (CounterId::tag("mine"), CounterId::tag("other"));
        let base = (7 << 32) | 0xffff_fffe;
        watch.record(0, Instant::now(), base, &Records::default());
        assert!(watch.vouches(0, &stamp(base, &[mine])));
        let read = records(base + 1, &[(base + 1, &other), (base + 2, &other)]);
        watch.record(0, Instant::now(), base + 2, &read);
        assert!(!watch.vouches(0, &stamp(base, &[mine])), "a new mapping");
        assert!(
            watch.vouches(0, &stamp(base + 2, &[mine])),
            "stamped under it"
        );
    }

    /// What a poll reads, applied: an entry is vouched for until a record after its epoch
    /// names one of its counters; an invalidation of something else changes nothing for it.
    #[test]
    fn an_entry_is_current_until_a_change_names_one_of_its_counters() {
        let watch = watch();
        let (mine, other, third) = (
            CounterId::tag("mine"),
            CounterId::tag("other"),
            CounterId::tag("third"),
        );
        let base = 1 << 40;
        watch.record(0, Instant::now(), base, &Records::default());
        assert!(
            !watch.vouches(0, &stamp(base - 1, &[mine])),
            "before the first poll"
        );
        assert!(watch.vouches(0, &stamp(base, &[mine])));
        assert!(
            !watch.vouches(1, &stamp(base, &[mine])),
            "another server, never polled"
        );

        assert_eq!(watch.to_read(0, base, 240), None, "nothing changed");
        assert_eq!(watch.to_read(0, base + 2, 240), Some((base + 1, base + 2)));
        let read = records(base + 1, &[(base + 1, &other), (base + 2, &third)]);
        watch.record(0, Instant::now(), base + 2, &read);
        assert!(watch.vouches(0, &stamp(base, &[mine])), "unrelated changes");
        assert!(!watch.vouches(0, &stamp(base, &[mine, other])));
        assert!(!watch.vouches(0, &stamp(base + 1, &[third])));
        assert!(
            watch.vouches(0, &stamp(base + 2, &[third])),
            "stamped after it"
        );
        assert!(watch.vouches(0, &stamp(base, &[])), "no shared counter");
        assert!(!watch.vouches(
            0,
            &Generation {
                epoch: base,
                deps: Deps::all(),
                ..Generation::default()
            }
        ));
        assert!(watch.vouches(
            0,
            &Generation {
                epoch: base + 2,
                deps: Deps::all(),
                ..Generation::default()
            }
        ));
        assert!(
            !watch.vouches(0, &stamp(base + 2 + SLACK + 1, &[mine])),
            "another run"
        );

        // The namespace's counter: every entry stamped before it.
        let all = records(base + 3, &[(base + 3, &CounterId::everything())]);
        watch.record(0, Instant::now(), base + 3, &all);
        assert!(!watch.vouches(0, &stamp(base + 2, &[mine])));
        assert!(watch.vouches(0, &stamp(base + 3, &[mine])));
    }

    /// A version the log does not hold yet is an invalidation still under way: not taken into
    /// account, and read again until its record is there (or it waited too long: lost).
    #[test]
    fn a_missing_record_is_read_again_and_lost_after_a_wait() {
        let watch = watch();
        let (mine, other) = (CounterId::tag("mine"), CounterId::tag("other"));
        let base = 1 << 40;
        watch.record(0, Instant::now(), base, &Records::default());
        watch.record(
            0,
            Instant::now(),
            base + 2,
            &records(base + 1, &[(base + 2, &other)]),
        );
        assert!(
            watch.vouches(0, &stamp(base, &[mine])),
            "pending: not confirmed yet"
        );
        assert!(!watch.vouches(0, &stamp(base, &[other])));
        assert_eq!(
            watch.to_read(0, base + 2, 240),
            Some((base + 1, base + 2)),
            "read again"
        );
        watch.record(
            0,
            Instant::now(),
            base + 2,
            &records(base + 1, &[(base + 1, &mine), (base + 2, &other)]),
        );
        assert!(!watch.vouches(0, &stamp(base, &[mine])));
        assert_eq!(watch.to_read(0, base + 2, 240), None);

        // Still missing after the wait: lost, and entries before it are checked.
        let third = CounterId::tag("third");
        watch.record(0, Instant::now(), base + 3, &records(base + 3, &[]));
        assert!(watch.vouches(0, &stamp(base + 2, &[third])));
        watch.servers[0].progress.lock().unwrap().pending =
            Some((base + 3, Instant::now() - HOLE_WAIT));
        watch.record(0, Instant::now(), base + 3, &records(base + 3, &[]));
        assert!(!watch.vouches(0, &stamp(base + 2, &[third])));
        assert!(watch.vouches(0, &stamp(base + 3, &[third])));

        // Overwritten before it was read (told by the reader, or before the first one read).
        let read = Records {
            lost: vec![base + 4],
            ..records(base + 4, &[(base + 5, &other)])
        };
        watch.record(0, Instant::now(), base + 5, &read);
        assert!(!watch.vouches(0, &stamp(base + 3, &[third])));
        assert!(watch.vouches(0, &stamp(base + 4, &[third])));
        watch.record(0, Instant::now(), base + 500, &records(base + 300, &[]));
        assert!(!watch.vouches(0, &stamp(base + 298, &[third])));
    }

    /// The epoch created again (evicted, a restarted server): a random value, back or far
    /// ahead; entries of the earlier run are never vouched for.
    #[test]
    fn an_epoch_that_went_back_or_jumped_starts_afresh() {
        let watch = watch();
        let mine = CounterId::tag("mine");
        let base = 1 << 50;
        watch.record(0, Instant::now(), base, &Records::default());
        assert!(watch.vouches(0, &stamp(base, &[mine])));
        watch.record(0, Instant::now(), base - (1 << 40), &Records::default());
        assert!(!watch.vouches(0, &stamp(base, &[mine])), "went back");
        assert!(watch.vouches(0, &stamp(base - (1 << 40), &[mine])));
        watch.record(0, Instant::now(), base + (1 << 40), &Records::default());
        assert!(
            !watch.vouches(0, &stamp(base - (1 << 40), &[mine])),
            "jumped"
        );
    }

    #[test]
    fn the_stored_horizon_is_never_shorter() {
        assert_eq!(horizon_millis(Duration::from_micros(100_001)), 101);
        assert_eq!(horizon_millis(Duration::from_millis(100)), 100);
    }
}
