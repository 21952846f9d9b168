//! In-process request coalescing: concurrent misses for one key wait for the one request that
//! runs the handler, and all replay its stored response.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::entry::StoredResponse;
use crate::key::CacheKey;

/// What the leader published: the entry it stored, or `None` (not storable, failed, dropped).
pub(crate) type Outcome = Option<Arc<StoredResponse>>;

#[derive(Debug, Default)]
pub(crate) struct Flights {
    pending: Mutex<HashMap<CacheKey, watch::Receiver<Option<Outcome>>>>,
}

/// Joining a key's flight.
pub(crate) enum Role<'f> {
    /// This request runs the handler and must publish through the guard.
    Leader(Leader<'f>),
    /// Another request is running it: wait for its outcome.
    Follower(watch::Receiver<Option<Outcome>>),
}

impl Flights {
    pub(crate) fn join(&self, key: &CacheKey) -> Role<'_> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(receiver) = pending.get(key) {
            return Role::Follower(receiver.clone());
        }
        let (sender, receiver) = watch::channel(None);
        pending.insert(key.clone(), receiver);
        Role::Leader(Leader {
            flights: self,
            key: key.clone(),
            sender: Some(sender),
        })
    }

    /// Whether a flight for `key` is under way.
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
pub(crate) struct Leader<'f> {
    flights: &'f Flights,
    key: CacheKey,
    sender: Option<watch::Sender<Option<Outcome>>>,
}

impl Leader<'_> {
    pub(crate) fn publish(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(sender) = self.sender.take() {
            self.flights
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.key);
            let _ = sender.send(Some(outcome));
        }
    }
}

impl Drop for Leader<'_> {
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
