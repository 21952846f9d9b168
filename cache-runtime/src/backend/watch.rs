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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often, and for how long a poll may be relied on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PollSettings {
    /// Between two polls' sending.
    pub(crate) interval: Duration,
    /// The most a poll may take; a later answer is not used.
    pub(crate) deadline: Duration,
}

impl PollSettings {
    /// How long after it was sent a poll may be relied on: a poll answered within its deadline
    /// is followed by the next one before the horizon passes.
    pub(crate) fn horizon(&self) -> Duration {
        self.interval + self.deadline
    }
}

/// One server's last successful poll.
#[derive(Debug)]
struct Polled {
    epoch: AtomicU64,
    /// Nanoseconds after [`EpochWatch::origin`] at which it was sent, plus one (0: never).
    sent: AtomicU64,
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
                    epoch: AtomicU64::new(0),
                    sent: AtomicU64::new(0),
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

    /// The epoch `server` had when last polled, while that poll may be relied on (see the
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

    /// Records a poll of `server` sent at `sent` that read `epoch` (and a horizon at least
    /// ours). An answer to an older poll than the one recorded changes nothing.
    pub(crate) fn record(&self, server: usize, sent: Instant, epoch: u64) {
        let Some(polled) = self.servers.get(server) else {
            return;
        };
        let sent = self.since_origin(sent) + 1;
        if polled.sent.load(Ordering::Relaxed) >= sent {
            return;
        }
        polled.epoch.store(epoch, Ordering::Relaxed);
        polled.sent.store(sent, Ordering::Release);
    }

    /// Whether every server's last poll may be relied on.
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

/// The horizon stored on a server, in whole milliseconds, rounded up: never shorter than the
/// horizon it stands for.
pub(crate) fn horizon_millis(horizon: Duration) -> u64 {
    u64::try_from(horizon.as_micros().div_ceil(1000)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        watch.record(0, sent, 7);
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
        watch.record(0, second, 8);
        watch.record(0, first, 7);
        assert_eq!(watch.epoch_at(0, second), Some(8));
        assert_eq!(
            watch.epoch_at(0, first + Duration::from_millis(120)),
            Some(8)
        );
        watch.forget();
        assert_eq!(watch.epoch_at(0, second), None);
    }

    #[test]
    fn the_stored_horizon_is_never_shorter() {
        assert_eq!(horizon_millis(Duration::from_micros(100_001)), 101);
        assert_eq!(horizon_millis(Duration::from_millis(100)), 100);
    }
}
