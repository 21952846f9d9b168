//! The epoch polls, and the horizon each server holds (see `watch.rs` for why both are safe).

use std::time::{Duration, Instant};

use memcache::exp::{Get, GetResult, GetStatus, Meta, Op, OpResult, Set};

use super::{changes, client_error, MemcachedStore};
use crate::backend::watch::{horizon_millis, Records};
use crate::backend::BackendError;
use crate::invalidation::generation::{CounterId, Slots};

impl MemcachedStore {
    /// Returns the key of the largest horizon in use, as server `server` holds it.
    pub(super) fn horizon_key(&self, namespace: &str, server: usize) -> String {
        self.pinned_key(namespace, b"h", server)
    }

    /// Returns a read of the horizon server `server` holds, with its CAS (to raise it).
    pub(super) fn horizon_read(&self, namespace: &str, server: usize) -> Op {
        Op::Get(Get::new(self.horizon_key(namespace, server)).meta(Meta::NONE.cas()))
    }

    /// Polls every server's epoch, reading the horizon first, in one batch bounded by the poll
    /// deadline. Records each server whose answer may be relied on; raises the horizon where it
    /// is shorter than ours, and then polls once more (which reads it). How many servers were
    /// recorded.
    pub(crate) async fn poll(&self, namespace: &str) -> usize {
        match self.poll_once(namespace).await {
            (recorded, false) => recorded,
            (_, true) => self.poll_once(namespace).await.0,
        }
    }

    /// Runs one poll; returns how many servers were recorded, and whether a horizon was raised.
    async fn poll_once(&self, namespace: &str) -> (usize, bool) {
        let Some(watch) = &self.watch else {
            return (0, false);
        };
        let settings = watch.settings();
        let ours = horizon_millis(settings.horizon());
        let operations: Vec<Op> = (0..self.servers.len())
            .flat_map(|server| {
                [
                    self.horizon_read(namespace, server),
                    Op::Arithmetic(self.counter_read(
                        namespace,
                        (&CounterId::epoch(), &Slots::UNKEYED),
                        server,
                    )),
                ]
            })
            .collect();
        let sent = Instant::now();
        let Ok(results) = self.run_poll(settings.deadline, operations).await else {
            return (0, false);
        };
        let mut results = results.into_iter();
        let mut relied = Vec::new();
        let mut raises = Vec::new();
        for server in 0..self.servers.len() {
            let (horizon, epoch) = (results.next(), results.next());
            let epoch = match epoch {
                Some(Ok(OpResult::Arithmetic(counter))) => counter.value,
                _ => None,
            };
            let Some(Ok(OpResult::Get(horizon))) = horizon else {
                continue;
            };
            match (stored_horizon(&horizon), epoch) {
                (Some(held), Some(epoch)) if held >= ours => relied.push((server, epoch)),
                (Some(held), _) if held >= ours => {}
                _ => raises.push(self.raise(namespace, server, &horizon, ours)),
            }
        }
        let recorded = self.read_changes(namespace, sent, relied).await;
        let raised = !raises.is_empty();
        if raised {
            // Not relied on: the next poll reads what was stored.
            let _ = self.run_poll(settings.deadline, raises).await;
        }
        (recorded, raised)
    }

    /// Reads, within what is left of the poll's deadline, the log records of the servers whose
    /// epoch moved since their last poll, and records each server's poll: how many were.
    async fn read_changes(
        &self,
        namespace: &str,
        sent: Instant,
        relied: Vec<(usize, u64)>,
    ) -> usize {
        let Some(watch) = &self.watch else {
            return 0;
        };
        let wanted: Vec<_> = relied
            .into_iter()
            .map(|(server, epoch)| (server, epoch, watch.to_read(server, epoch, changes::WINDOW)))
            .collect();
        let operations: Vec<Op> = wanted
            .iter()
            .filter_map(|&(server, _, range)| Some(self.change_reads(namespace, server, range?)))
            .flatten()
            .collect();
        let left = watch.settings().deadline.saturating_sub(sent.elapsed());
        let mut results = self
            .run_poll(left, operations)
            .await
            .unwrap_or_default()
            .into_iter();
        let mut recorded = 0;
        for (server, epoch, range) in wanted {
            let records = match range {
                None => Some(Records::default()),
                Some(range) => changes::records(range, &mut results),
            };
            if let Some(records) = records {
                watch.record(server, sent, epoch, &records);
                recorded += 1;
            }
        }
        recorded
    }

    /// Stores `ours` as the horizon of server `server` unless it changed since `read`.
    fn raise(&self, namespace: &str, server: usize, read: &GetResult, ours: u64) -> Op {
        let set = Set::new(self.horizon_key(namespace, server), ours.to_string());
        match (read.status, read.item.cas) {
            (GetStatus::Hit, Some(cas)) => Op::Set(set.compare_cas(cas)),
            _ => Op::Set(set.add()),
        }
    }

    async fn run_poll(
        &self,
        deadline: Duration,
        operations: Vec<Op>,
    ) -> Result<Vec<Result<OpResult, memcache::exp::Error>>, BackendError> {
        let client = async {
            self.poll_client
                .get_or_try_init(|| self.dial(deadline, 1))
                .await
                .map_err(client_error)
        };
        self.run_batch_on(deadline, client, operations).await
    }
}

/// Returns the horizon a read found, in milliseconds; `None` when absent or not a number.
pub(super) fn stored_horizon(read: &GetResult) -> Option<u64> {
    if read.status != GetStatus::Hit {
        return None;
    }
    std::str::from_utf8(read.value.as_deref()?)
        .ok()?
        .parse()
        .ok()
}
