//! Each server's log of what each epoch changed (see `watch.rs` for what it is for and why it
//! keeps the invalidation promise).
//!
//! The log is a ring of [`SEGMENTS`] items, `{ns}:c:{NN}@{server}`, each holding the records of
//! [`PER_SEGMENT`] consecutive versions: version `V` is in round `V / PER_SEGMENT`, kept in item
//! `round % SEGMENTS`. A record is 12 bytes (the version, then what it changed, little-endian),
//! so a poll reads about what changed since its last one, not the whole log. An invalidation
//! appends its record by compare-and-swap: a record of the item's round is never dropped by
//! another writer; an item of an older round is replaced; an item of a newer round means the
//! record is already overwritten, which a reader tells apart (the versions of that round are
//! lost, not pending).

use std::collections::HashMap;
use std::time::Duration;

use memcache::exp::{Get, GetResult, GetStatus, Meta, MutationStatus, Op, OpResult, Set, Ttl};

use super::{client_error, MemcachedStore, COUNTER_TTL};
use crate::backend::watch::Records;
use crate::backend::BackendError;
use crate::invalidation::generation::{ChangeId, CounterId, Slots};

/// Versions per item.
pub(super) const PER_SEGMENT: u64 = 16;
/// Items in the ring: the log holds the last `SEGMENTS * PER_SEGMENT` versions.
pub(super) const SEGMENTS: u64 = 16;
/// The versions a reader may ask for: the last round may still be filling.
pub(super) const WINDOW: u64 = (SEGMENTS - 1) * PER_SEGMENT;
/// Attempts at appending one record before the invalidation is reported unconfirmed there.
const ATTEMPTS: usize = 16;

const RECORD: usize = 12;

fn round(version: u64) -> u64 {
    version / PER_SEGMENT
}

/// Returns the records an item holds, in order; none for a value that is not whole records.
fn decode(value: &[u8]) -> Vec<(u64, ChangeId)> {
    if !value.len().is_multiple_of(RECORD) {
        return Vec::new();
    }
    value
        .chunks_exact(RECORD)
        .map(|record| {
            let (version, id) = record.split_at(8);
            (
                u64::from_le_bytes(version.try_into().unwrap_or_default()),
                ChangeId::from_le_bytes(id.try_into().unwrap_or_default()),
            )
        })
        .collect()
}

/// Returns the item's value with `(version, id)` added: its records of the same round kept, those
/// of an older round dropped; `None` when it holds a newer round (the record is overwritten
/// already).
fn appended(value: &[u8], version: u64, id: ChangeId) -> Option<Vec<u8>> {
    let held = decode(value);
    if held.iter().any(|&(v, _)| round(v) > round(version)) {
        return None;
    }
    let mut out = Vec::with_capacity(value.len() + RECORD);
    for &(v, held_id) in held.iter().filter(|&&(v, _)| round(v) == round(version)) {
        if v == version {
            // Written already (a retried exchange).
            return Some(value.to_vec());
        }
        out.extend_from_slice(&v.to_le_bytes());
        out.extend_from_slice(&held_id.to_le_bytes());
    }
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    Some(out)
}

impl MemcachedStore {
    fn segment_key(&self, namespace: &str, version: u64, server: usize) -> String {
        let name = format!("c:{:02x}", round(version) % SEGMENTS);
        self.pinned_key(namespace, name.as_bytes(), server)
    }

    /// Appends `(version, id)` to each listed server's log, `(server, version)`, within
    /// `deadline`, `id` being `counter`'s under the mapping its bump used on that server (see
    /// `Slots`): the servers where it was not written (or not confirmed).
    pub(super) async fn append_changes(
        &self,
        namespace: &str,
        (counter, slots): (CounterId, &[Slots]),
        mut pending: Vec<(usize, u64)>,
        deadline: Duration,
    ) -> Vec<(usize, BackendError)> {
        let mut failed = Vec::new();
        for _ in 0..ATTEMPTS {
            if pending.is_empty() {
                return failed;
            }
            let reads = pending
                .iter()
                .map(|&(server, version)| {
                    let key = self.segment_key(namespace, version, server);
                    Op::Get(Get::new(key).meta(Meta::NONE.cas()))
                })
                .collect();
            let read = match self
                .run_batch_on(deadline, self.invalidation_client(), reads)
                .await
            {
                Ok(read) => read,
                Err(error) => return give_up(failed, &pending, &error),
            };
            let mut writes = Vec::new();
            let mut writing = Vec::new();
            for (&(server, version), result) in pending.iter().zip(read) {
                let got = match result {
                    Ok(OpResult::Get(got)) => got,
                    Ok(_) => continue,
                    Err(error) => {
                        failed.push((server, client_error(error)));
                        continue;
                    }
                };
                let (value, cas) = match got.status {
                    GetStatus::Hit => (got.value.unwrap_or_default(), got.item.cas),
                    _ => (Vec::new(), None),
                };
                let Some(id) = slots.get(server).and_then(|slots| counter.change_id(slots)) else {
                    continue;
                };
                // A newer round holds the item: readers see this version as lost.
                let Some(value) = appended(&value, version, id) else {
                    continue;
                };
                let set = Set::new(self.segment_key(namespace, version, server), value)
                    .ttl(Ttl::secs(COUNTER_TTL));
                writes.push(Op::Set(match cas {
                    Some(cas) => set.compare_cas(cas),
                    None => set.add(),
                }));
                writing.push((server, version));
            }
            let written = match self
                .run_batch_on(deadline, self.invalidation_client(), writes)
                .await
            {
                Ok(written) => written,
                Err(error) => return give_up(failed, &writing, &error),
            };
            pending = Vec::new();
            for (entry, result) in writing.into_iter().zip(written) {
                match result {
                    Ok(OpResult::Mutation(m)) if m.status == MutationStatus::Applied => {}
                    // Another writer came first: read again.
                    Ok(_) => pending.push(entry),
                    Err(error) => failed.push((entry.0, client_error(error))),
                }
            }
        }
        let contended = || BackendError::Client("the change log stayed contended".into());
        failed.extend(pending.into_iter().map(|(server, _)| (server, contended())));
        failed
    }

    /// Reads server `server`'s records of the versions `from..=to`.
    pub(super) fn change_reads(
        &self,
        namespace: &str,
        server: usize,
        (from, to): (u64, u64),
    ) -> Vec<Op> {
        (round(from)..=round(to))
            .map(|round| {
                let key = self.segment_key(namespace, round * PER_SEGMENT, server);
                Op::Get(Get::new(key))
            })
            .collect()
    }
}

fn give_up(
    mut failed: Vec<(usize, BackendError)>,
    pending: &[(usize, u64)],
    error: &BackendError,
) -> Vec<(usize, BackendError)> {
    failed.extend(
        pending
            .iter()
            .map(|&(server, _)| (server, BackendError::Client(error.to_string()))),
    );
    failed
}

/// Returns what the reads [`MemcachedStore::change_reads`] made for `from..=to` found, taken from
/// `results`: `None` when one failed or is missing (nothing may be concluded from the log then).
pub(super) fn records(
    (from, to): (u64, u64),
    results: &mut impl Iterator<Item = Result<OpResult, memcache::exp::Error>>,
) -> Option<Records> {
    let mut records = Records {
        from,
        changes: HashMap::new(),
        lost: Vec::new(),
    };
    // This server's answers, all of them taken before any is judged: the next server's follow.
    let answers: Vec<_> = (round(from)..=round(to))
        .map(|round| (round, results.next()))
        .collect();
    for (round, answer) in answers {
        let got: GetResult = match answer? {
            Ok(OpResult::Get(got)) => got,
            _ => return None,
        };
        let held = match got.status {
            GetStatus::Hit => decode(got.value.as_deref().unwrap_or_default()),
            _ => Vec::new(),
        };
        if held.iter().any(|&(v, _)| self::round(v) > round) {
            let versions = round * PER_SEGMENT..(round + 1) * PER_SEGMENT;
            records
                .lost
                .extend(versions.filter(|v| (from..=to).contains(v)));
            continue;
        }
        records.changes.extend(
            held.into_iter()
                .filter(|&(v, _)| self::round(v) == round && (from..=to).contains(&v)),
        );
    }
    Some(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_keeps_its_round_and_replaces_an_older_one() {
        let first = appended(&[], 32, 7).unwrap();
        let second = appended(&first, 33, 9).unwrap();
        assert_eq!(decode(&second), vec![(32, 7), (33, 9)]);
        assert_eq!(appended(&second, 33, 9).unwrap(), second, "written already");
        // The same item, a later round (16 segments of 16 versions on): replaced.
        let later = appended(&second, 32 + SEGMENTS * PER_SEGMENT, 1).unwrap();
        assert_eq!(decode(&later), vec![(32 + SEGMENTS * PER_SEGMENT, 1)]);
        assert_eq!(
            appended(&later, 40, 3),
            None,
            "overwritten by a newer round"
        );
        assert_eq!(decode(b"not records"), vec![]);
    }
}
