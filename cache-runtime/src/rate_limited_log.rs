//! Rate-limited logging of backend trouble: one line per cause per interval, with a count of
//! what was suppressed, never one line per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::util::monotonic_ms;

const INTERVAL: Duration = Duration::from_secs(10);

/// One log cause: when it last logged ([`monotonic_ms`]; 0 = never) and how many events were
/// suppressed since.
#[derive(Debug)]
pub(crate) struct RateLimited {
    last_logged: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimited {
    pub(crate) const fn new() -> RateLimited {
        RateLimited {
            last_logged: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Returns `Some(suppressed count)` when this event should be logged now.
    pub(crate) fn admit(&self) -> Option<u64> {
        let now = monotonic_ms();
        let last = self.last_logged.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= INTERVAL.as_millis() as u64;
        if due
            && self
                .last_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

pub(crate) static LOOKUP_FAILED: RateLimited = RateLimited::new();
pub(crate) static STORE_FAILED: RateLimited = RateLimited::new();
pub(crate) static UNDECODABLE: RateLimited = RateLimited::new();
pub(crate) static VARY_OUTSIDE_KEY: RateLimited = RateLimited::new();
pub(crate) static INVALIDATION_UNCONFIRMED: RateLimited = RateLimited::new();

/// Logs a warning through `limiter`.
pub(crate) fn warn(limiter: &RateLimited, what: std::fmt::Arguments<'_>) {
    if let Some(suppressed) = limiter.admit() {
        if suppressed > 0 {
            log::warn!(
                "cache: {what} ({suppressed} similar events in the last interval not logged)"
            );
        } else {
            log::warn!("cache: {what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_is_admitted_and_the_rest_counted() {
        let limiter = RateLimited::new();
        assert_eq!(limiter.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(limiter.admit(), None);
        }
        assert_eq!(limiter.suppressed.load(Ordering::Relaxed), 1000);
    }
}
