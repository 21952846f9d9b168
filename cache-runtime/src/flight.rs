//! In-process request coalescing: concurrent misses for one key wait for the one request that
//! runs the handler, and all replay its stored response; and the keys not to coalesce for a
//! while ("hit-for-pass"), whose last response could not be stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::entry::StoredResponse;
use crate::key::CacheKey;

/// What the leader published: the entry it stored, or `None` (not storable, failed, dropped).
pub(crate) type Outcome = Option<Arc<StoredResponse>>;

/// The most keys held in hit-for-pass at once (a key is at most 250 bytes): past it, a key
/// that is not storable is coalesced as any other, which costs waiting, never correctness.
const MAX_PASSES: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct Flights {
    /// Shared with each flight's [`Leader`], which owns its duty to publish (a stale refresh
    /// hands it to a timer, see `serve/revalidate.rs`).
    pending: Arc<Mutex<Pending>>,
    /// Keys whose last response was not storable, and until when their requests pass.
    passes: Mutex<HashMap<CacheKey, Instant>>,
    /// How many keys `passes` holds, read without its lock: with none (the common case),
    /// asking costs one atomic load.
    passing: AtomicUsize,
}

/// The flights under way: each key's receiver of what its leader publishes.
type Pending = HashMap<CacheKey, watch::Receiver<Option<Outcome>>>;

/// Joining a key's flight.
pub(crate) enum Role {
    /// This request runs the handler and must publish through the guard.
    Leader(Leader),
    /// Another request is running it: wait for its outcome.
    Follower(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    pub(crate) fn join(&self, key: &CacheKey) -> Role {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(receiver) = pending.get(key) {
            return Role::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        pending.insert(key.clone(), receiver);
        Role::Leader(Leader {
            pending: Arc::clone(&self.pending),
            key: key.clone(),
            sender: Some(sender),
        })
    }

    /// Returns whether `key` is in hit-for-pass: its requests run the handler without waiting for
    /// another's, which would store nothing.
    pub(crate) fn passing(&self, key: &CacheKey) -> bool {
        if self.passing.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        let passing = match passes.get(key) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                passes.remove(key);
                false
            }
            None => false,
        };
        self.passing.store(passes.len(), Ordering::Relaxed);
        passing
    }

    /// Records that `key`'s response was not storable: its requests pass for `period`.
    pub(crate) fn pass(&self, key: &CacheKey, period: Duration) {
        if period.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        if passes.len() >= MAX_PASSES && !passes.contains_key(key) {
            passes.retain(|_, until| *until > now);
        }
        if passes.len() < MAX_PASSES || passes.contains_key(key) {
            passes.insert(key.clone(), now + period);
        }
        self.passing.store(passes.len(), Ordering::Relaxed);
    }

    /// Records that `key`'s response was storable: its requests coalesce again.
    pub(crate) fn end_pass(&self, key: &CacheKey) {
        if self.passing.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut passes = self.passes.lock().unwrap_or_else(|e| e.into_inner());
        passes.remove(key);
        self.passing.store(passes.len(), Ordering::Relaxed);
    }

    /// Returns whether a flight for `key` is under way.
    #[cfg(test)]
    pub(crate) fn busy(&self, key: &CacheKey) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }
}

/// The leader's duty to publish. Dropped without publishing (the request was cancelled, the
/// handler panicked), it publishes `None`, so followers never wait for nothing.
pub(crate) struct Leader {
    pending: Arc<Mutex<Pending>>,
    key: CacheKey,
    sender: Option<watch::Sender<Option<Outcome>>>,
}

impl Leader {
    pub(crate) fn publish(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(sender) = self.sender.take() {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.key);
            let _ = sender.send(Some(outcome));
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.finish(None);
    }
}

/// Waits for a leader's outcome; `None` when it published nothing usable.
pub(crate) async fn follow(mut receiver: watch::Receiver<Option<Outcome>>) -> Outcome {
    match receiver.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().flatten(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyParts;

    fn key() -> CacheKey {
        KeyParts::fixture("/", "/").build("rc")
    }

    #[rocket::async_test]
    async fn followers_receive_what_the_leader_publishes() {
        let flights = Flights::default();
        let Role::Leader(leader) = flights.join(&key()) else {
            panic!("the first request leads")
        };
        let Role::Follower(receiver) = flights.join(&key()) else {
            panic!("the second follows")
        };
        assert!(flights.busy(&key()));
        let entry = Arc::new(StoredResponse::build(200, std::iter::empty(), b"x", 0, 60).unwrap());
        leader.publish(Some(Arc::clone(&entry)));
        assert!(!flights.busy(&key()));
        assert_eq!(follow(receiver).await, Some(entry));
    }

    #[test]
    fn a_pass_lasts_its_period_or_until_ended() {
        let flights = Flights::default();
        assert!(!flights.passing(&key()));
        flights.pass(&key(), Duration::from_secs(60));
        assert!(flights.passing(&key()));
        flights.end_pass(&key());
        assert!(!flights.passing(&key()));
        flights.pass(&key(), Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(1));
        assert!(!flights.passing(&key()), "expired");
        assert_eq!(flights.passing.load(Ordering::Relaxed), 0, "and forgotten");
        flights.pass(&key(), Duration::ZERO);
        assert!(!flights.passing(&key()), "zero turns it off");
    }

    #[test]
    fn passes_are_bounded() {
        let flights = Flights::default();
        let key = |i: usize| KeyParts::fixture("/", &format!("/{i}")).build("rc");
        for i in 0..MAX_PASSES + 10 {
            flights.pass(&key(i), Duration::from_secs(60));
        }
        assert_eq!(flights.passes.lock().unwrap().len(), MAX_PASSES);
        assert!(!flights.passing(&key(MAX_PASSES + 5)), "past the bound");
        assert!(flights.passing(&key(0)));
    }

    #[rocket::async_test]
    async fn a_dropped_leader_releases_its_followers() {
        let flights = Flights::default();
        let leader = flights.join(&key());
        let Role::Follower(receiver) = flights.join(&key()) else {
            panic!("the second follows")
        };
        drop(leader);
        assert_eq!(follow(receiver).await, None);
        assert!(
            matches!(flights.join(&key()), Role::Leader(_)),
            "a new flight can start"
        );
    }
}
