//! A circuit breaker per Memcached server: after `threshold` failures in a row the server is
//! skipped for a cool-down (its keys are misses at no cost), then one request probes it; a
//! success closes the breaker, a failure opens it again. State changes are logged once each.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::util::monotonic_ms;

/// What a breaker lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The breaker is closed: use the server.
    Pass,
    /// The one request that tests an open server after its cool-down.
    Probe,
    /// The breaker is open: skip the server.
    Skip,
}

/// A breaker's state, as reported by [`Cache::servers`](crate::Cache::servers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// The server is used.
    Closed,
    /// The server failed repeatedly and is skipped until its cool-down ends.
    Open,
    /// The cool-down ended; the next request probes the server.
    HalfOpen,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    server: String,
    threshold: u32,
    cooldown: Duration,
    failures: AtomicU32,
    /// 0 when closed; else when the cool-down ends (on [`monotonic_ms`](crate::util::monotonic_ms)).
    open_until: AtomicU64,
    /// When the current probe started (0: none). A probe whose request was dropped midway is
    /// taken over after a cool-down, so a breaker never stays half-open forever.
    probe_started: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(server: String, threshold: u32, cooldown: Duration) -> Breaker {
        Breaker {
            server,
            threshold,
            cooldown,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probe_started: AtomicU64::new(0),
        }
    }

    pub(crate) fn state(&self) -> BreakerState {
        match self.open_until.load(Ordering::Acquire) {
            0 => BreakerState::Closed,
            until if monotonic_ms() < until => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    pub(crate) fn admit(&self) -> Admission {
        match self.state() {
            BreakerState::Closed => Admission::Pass,
            BreakerState::Open => Admission::Skip,
            BreakerState::HalfOpen => {
                let now = monotonic_ms();
                let started = self.probe_started.load(Ordering::Acquire);
                let free =
                    started == 0 || now.saturating_sub(started) > self.cooldown.as_millis() as u64;
                if free
                    && self
                        .probe_started
                        .compare_exchange(started, now, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    Admission::Probe
                } else {
                    Admission::Skip
                }
            }
        }
    }

    pub(crate) fn succeeded(&self, admission: Admission) {
        self.failures.store(0, Ordering::Release);
        if admission == Admission::Probe || self.open_until.load(Ordering::Acquire) != 0 {
            if self.open_until.swap(0, Ordering::AcqRel) != 0 {
                log::info!("cache: memcached {} answers again; using it", self.server);
            }
            self.probe_started.store(0, Ordering::Release);
        }
    }

    /// Records that the request was refused for what it asked (a usage error), not for the
    /// server's state: neither a failure nor a success. A probe that ends this way lets the next
    /// request probe.
    pub(crate) fn not_blamed(&self, admission: Admission) {
        if admission == Admission::Probe {
            self.probe_started.store(0, Ordering::Release);
        }
    }

    pub(crate) fn failed(&self, admission: Admission) {
        let cooldown = self.cooldown.as_millis() as u64;
        if admission == Admission::Probe {
            self.open_until
                .store(monotonic_ms() + cooldown, Ordering::Release);
            self.probe_started.store(0, Ordering::Release);
            return;
        }
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if failures >= self.threshold
            && self
                .open_until
                .compare_exchange(
                    0,
                    monotonic_ms() + cooldown,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
        {
            log::warn!(
                "cache: memcached {} failed {failures} times in a row; its keys are misses \
                 for the next {:?}, then it is probed",
                self.server,
                self.cooldown
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_and_closes_on_success() {
        let breaker = Breaker::new("a:1".into(), 3, Duration::from_millis(50));
        for _ in 0..2 {
            assert_eq!(breaker.admit(), Admission::Pass);
            breaker.failed(Admission::Pass);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.failed(Admission::Pass);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.admit(), Admission::Skip);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.admit(), Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Skip, "one probe at a time");
        breaker.failed(Admission::Probe);
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "a failed probe reopens"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(breaker.admit(), Admission::Probe);
        breaker.succeeded(Admission::Probe);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit(), Admission::Pass);
    }

    #[test]
    fn usage_errors_neither_open_it_nor_hold_a_probe() {
        let breaker = Breaker::new("a:1".into(), 2, Duration::from_millis(20));
        for _ in 0..5 {
            breaker.not_blamed(breaker.admit());
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.failed(Admission::Pass);
        breaker.failed(Admission::Pass);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(breaker.admit(), Admission::Probe);
        breaker.not_blamed(Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Probe, "the next request probes");
    }

    #[test]
    fn a_success_resets_the_count() {
        let breaker = Breaker::new("a:1".into(), 3, Duration::from_secs(60));
        breaker.failed(Admission::Pass);
        breaker.failed(Admission::Pass);
        breaker.succeeded(Admission::Pass);
        breaker.failed(Admission::Pass);
        breaker.failed(Admission::Pass);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
