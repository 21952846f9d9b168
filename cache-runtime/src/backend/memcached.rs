//! Memcached through the `memcache` crate's async meta-protocol client. This is the only file
//! that names that client: its API is experimental, so it stays behind [`Store`](super::Store).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use memcache::exp::{
    Arithmetic, AsyncMemcache, Get, GetResult, GetStatus, LeaseState, Meta, Op, OpResult,
    Rendezvous, Router, Ttl,
};
use tokio::sync::OnceCell;

use super::breaker::{Admission, Breaker, BreakerState};
use super::watch::{EpochWatch, PollSettings};
use super::{BackendError, Bumped, Found, Lease, Lookup, Read};
use crate::entry::StoredResponse;
use crate::invalidation::generation::{
    fresh_generation, Counter, CounterId, Generation, Purge, Slots,
};
use crate::key::CacheKey;
use crate::util::{hex, unix_now};

mod changes;
mod poll;

pub(crate) struct MemcachedStore {
    servers: Vec<String>,
    op_timeout: Duration,
    pool_idle: usize,
    /// Dialed lazily, inside the runtime that serves requests. A failed start (an address that
    /// does not resolve) is retried by the next operation.
    client: OnceCell<AsyncMemcache>,
    /// For invalidations only: a longer deadline per exchange ([`BUMP_DEADLINE`] at least), and
    /// few connections.
    invalidation_client: OnceCell<AsyncMemcache>,
    /// For the epoch polls only (one connection per server, deadline [`PollSettings::deadline`]):
    /// never queued behind requests.
    poll_client: OnceCell<AsyncMemcache>,
    /// Each server's epoch as last polled; `None` when polling is off (every hit reads it).
    watch: Option<EpochWatch>,
    start_failed_at: Mutex<Option<Instant>>,
    /// The client's router, given to it explicitly so that the breakers see the same server
    /// for a key as the client does.
    router: Placement,
    breakers: Vec<Breaker>,
}

/// How failures are counted per server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BreakerSettings {
    pub(crate) failures: u32,
    pub(crate) cooldown: Duration,
}

/// How long after a failed client start the next attempt waits.
const START_RETRY: Duration = Duration::from_secs(1);

/// Invalidation counters live 30 days past their last read (memcached's longest relative
/// TTL); one that expires comes back with a new random value, which only drops entries.
pub(super) const COUNTER_TTL: u32 = 30 * 24 * 3600;

/// The least time an invalidation is given, however short the per-request deadline.
const BUMP_DEADLINE: Duration = Duration::from_millis(500);

/// Routes entry keys by rendezvous hashing, and each server's copy of an invalidation counter
/// (`{ns}:g:{32 hex}@{server tag}`) to that server, so that a lookup reads the counters from
/// the server that holds the entry, in the same round trip.
#[derive(Clone)]
struct Placement {
    rendezvous: Rendezvous,
    /// Per configured server: 8 hex digits of a hash of its address as configured.
    tags: Arc<[[u8; 8]]>,
}

impl Placement {
    fn new(servers: &[String]) -> Placement {
        let tags = servers
            .iter()
            .map(|server| hex(blake3::hash(server.as_bytes()).as_bytes()))
            .collect();
        Placement {
            rendezvous: Rendezvous::new(),
            tags,
        }
    }
}

impl Router for Placement {
    fn route(&self, key: &[u8], servers: &[String]) -> usize {
        if servers.len() == 1 {
            return 0;
        }
        let pinned = key
            .len()
            .checked_sub(9)
            .filter(|&at| key[at] == b'@')
            .and_then(|at| self.tags.iter().position(|tag| tag[..] == key[at + 1..]));
        match pinned {
            Some(server) if server < servers.len() => server,
            _ => self.rendezvous.route(key, servers),
        }
    }
}

impl fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("servers", &self.servers)
            .field("op_timeout", &self.op_timeout)
            .field("pool_idle", &self.pool_idle)
            .finish_non_exhaustive()
    }
}

impl MemcachedStore {
    pub(crate) fn new(
        servers: Vec<String>,
        op_timeout: Duration,
        pool_idle: usize,
        breaker: BreakerSettings,
        poll: Option<PollSettings>,
    ) -> MemcachedStore {
        let breakers = servers
            .iter()
            .map(|server| Breaker::new(server.clone(), breaker.failures, breaker.cooldown))
            .collect();
        MemcachedStore {
            router: Placement::new(&servers),
            watch: poll.map(|settings| EpochWatch::new(servers.len(), settings)),
            servers,
            op_timeout,
            pool_idle,
            client: OnceCell::new(),
            invalidation_client: OnceCell::new(),
            poll_client: OnceCell::new(),
            start_failed_at: Mutex::new(None),
            breakers,
        }
    }

    /// Returns each server and its breaker's state.
    pub(crate) fn server_states(&self) -> Vec<(String, BreakerState)> {
        self.servers
            .iter()
            .zip(&self.breakers)
            .map(|(server, breaker)| (server.clone(), breaker.state()))
            .collect()
    }

    /// Returns the index of the server `key` lives on, as the client routes it.
    pub(crate) fn server_of(&self, key: &[u8]) -> usize {
        self.router.route(key, &self.servers)
    }

    /// Returns the copy of `counter` kept on server `server`, whose mapping of names is
    /// `slots`.
    fn counter_key(
        &self,
        namespace: &str,
        (counter, slots): (&CounterId, &Slots),
        server: usize,
    ) -> String {
        let mut name = *b"g:________________________________";
        name[2..].copy_from_slice(&counter.hex(slots));
        self.pinned_key(namespace, &name, server)
    }

    /// Returns `{namespace}:{name}@{server tag}`: a key the router sends to server `server`.
    fn pinned_key(&self, namespace: &str, name: &[u8], server: usize) -> String {
        let mut key = String::with_capacity(namespace.len() + 1 + name.len() + 9);
        key.push_str(namespace);
        key.push(':');
        key.extend(name.iter().map(|&b| char::from(b)));
        key.push('@');
        key.extend(self.router.tags[server].iter().map(|&b| char::from(b)));
        key
    }

    /// Dials every server: a client whose operations (and connects) give up after `deadline`,
    /// keeping `max_idle` connections per server.
    async fn dial(
        &self,
        deadline: Duration,
        max_idle: usize,
    ) -> Result<AsyncMemcache, memcache::exp::Error> {
        AsyncMemcache::builder()
            .router(self.router.clone())
            .timeout(deadline)
            .connect_timeout(deadline)
            .max_idle(max_idle)
            .degrade(false)
            .connect_async(self.servers.iter().map(String::as_str))
            .await
    }

    /// Runs `op` for `key` under `deadline` and the key's server breaker: a skipped server
    /// costs nothing; timeouts and client errors count against it, a refused request (a usage
    /// error) neither way, anything else for it.
    async fn guarded<T>(
        &self,
        key: &[u8],
        deadline: Duration,
        op: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let breaker = &self.breakers[self.server_of(key)];
        let admission = breaker.admit();
        if admission == Admission::Skip {
            return Err(BackendError::ServerSkipped);
        }
        let result = self.bounded(deadline, op).await;
        match &result {
            Err(BackendError::Timeout | BackendError::Client(_)) => breaker.failed(admission),
            // One route's bad request must not switch the server off for every route.
            Err(BackendError::Refused(_)) => breaker.not_blamed(admission),
            _ => breaker.succeeded(admission),
        }
        result
    }

    async fn client(&self) -> Result<&AsyncMemcache, BackendError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        // Starting resolves every address; after a failure (a name that does not resolve),
        // requests do not each retry the lookup for a while.
        let failed_at = *self
            .start_failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if failed_at.is_some_and(|at| at.elapsed() < START_RETRY) {
            return Err(BackendError::Client(
                "client start failed recently; retrying later".into(),
            ));
        }
        let started = self
            .client
            .get_or_try_init(|| self.dial(self.op_timeout, self.pool_idle))
            .await;
        if started.is_err() {
            *self
                .start_failed_at
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        started.map_err(client_error)
    }

    async fn invalidation_client(&self) -> Result<&AsyncMemcache, BackendError> {
        let deadline = self.op_timeout.max(BUMP_DEADLINE);
        self.invalidation_client
            .get_or_try_init(|| self.dial(deadline, 2))
            .await
            .map_err(client_error)
    }

    /// Runs `operations` in one batch on the client `client` gives (dialed on first use), all
    /// under `deadline`, dialing included: the invalidation and poll exchanges. No operation,
    /// no exchange.
    async fn run_batch_on<'c>(
        &self,
        deadline: Duration,
        client: impl Future<Output = Result<&'c AsyncMemcache, BackendError>>,
        operations: Vec<Op>,
    ) -> Result<Vec<Result<OpResult, memcache::exp::Error>>, BackendError> {
        if operations.is_empty() {
            return Ok(Vec::new());
        }
        self.bounded(deadline, async {
            client
                .await?
                .meta()
                .run_batch(operations)
                .await
                .map_err(client_error)
        })
        .await
    }

    /// Runs `op` under `deadline`, dialing included.
    async fn bounded<T>(
        &self,
        deadline: Duration,
        op: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        tokio::time::timeout(deadline, op)
            .await
            .unwrap_or(Err(BackendError::Timeout))
    }
}

impl MemcachedStore {
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) async fn raw_get(&self, key: &str) -> Option<usize> {
        self.guarded(key.as_bytes(), self.op_timeout, async {
            let client = self.client().await?;
            client.get::<Vec<u8>>(key).await.map_err(client_error)
        })
        .await
        .ok()
        .flatten()
        .map(|value| value.len())
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Runs a raw get batched with reads of `counters` invalidation counters, as a hit does.
    pub(crate) async fn raw_get_counted(&self, key: &str, counters: &[CounterId]) -> Option<usize> {
        // Under some mapping: a bench measures the operations, whichever slots they read.
        let slots = Slots::of_epoch(0);
        let read = self.batch(key, Some(Get::new(key)), (counters, &slots));
        let (got, _) = read.await.ok()?;
        got?.value.map(|value| value.len())
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) async fn raw_set(&self, key: &str, value: &[u8]) -> bool {
        self.guarded(key.as_bytes(), self.op_timeout, async {
            let client = self.client().await?;
            client
                .set(key, value, Ttl::secs(3600))
                .await
                .map_err(client_error)
        })
        .await
        .is_ok()
    }
}

/// Returns a client error, as the rest of the crate sees it (it never names the client's types):
/// either the server failing, or this request refused (see [`is_usage_error`]).
fn client_error(error: memcache::exp::Error) -> BackendError {
    if is_usage_error(&error) {
        BackendError::Refused(error.to_string())
    } else {
        BackendError::Client(error.to_string())
    }
}

/// Returns whether `error` is about the request rather than the server: the client refused it
/// before sending (an invalid TTL, key or value), or the server answered that it will not take it
/// (`CLIENT_ERROR`, or `SERVER_ERROR object too large for cache` when `max_item_size` is above
/// its `-I`). Such a server is healthy: its breaker must not count these.
fn is_usage_error(error: &memcache::exp::Error) -> bool {
    use memcache::exp::Error;
    match error {
        Error::Usage(_)
        | Error::EmptyValue
        | Error::Encode(_)
        | Error::Decode(_)
        | Error::Rejected(_) => true,
        Error::Server(message) => message.contains("too large"),
        // Written, then refused: the server's answer is what counts.
        Error::Ambiguous { source, .. } => is_usage_error(source),
        _ => false,
    }
}

/// Memcached reads an expiry above 30 days as a unix time...
const LONGEST_RELATIVE_EXPIRY: u32 = 30 * 24 * 3600;

/// ...and parses it as a signed 32-bit number: a later time (2038-01-19T03:14:07Z and after)
/// wraps into the past and the item is stored already expired, while the client refuses
/// outright one that does not fit 32 bits unsigned.
const LATEST_ABSOLUTE_EXPIRY: u64 = i32::MAX as u64;

/// Returns the expiry Memcached is given for an item meant to live `seconds` from `now` (unix
/// seconds): exactly that when Memcached can hold it, else the longest it can. Never longer:
/// a route without stale windows trusts Memcached's expiry, and an entry dropped early is only
/// a miss. Never a value the client refuses (a usage error on every store) or one the server
/// stores already expired.
fn expiry(seconds: u32, now: u64) -> Ttl {
    let seconds = seconds.max(1);
    let until = now
        .saturating_add(u64::from(seconds))
        .min(LATEST_ABSOLUTE_EXPIRY);
    if seconds <= LONGEST_RELATIVE_EXPIRY
        || until <= now.saturating_add(u64::from(LONGEST_RELATIVE_EXPIRY))
    {
        // Short enough to send relative, or past what an absolute time can say (near 2038):
        // at most 30 days, which the server reads from its own clock.
        return Ttl::secs(seconds.min(LONGEST_RELATIVE_EXPIRY));
    }
    Ttl::at(UNIX_EPOCH + Duration::from_secs(until))
}

/// Returns a counter's value when it is created: random (see `generation.rs`); for the epoch, in
/// the lower half of the range, so that its versions, compared by order (`watch.rs`), never wrap,
/// with its own lower half at 0.
fn first_value(counter: &CounterId) -> u64 {
    match counter.counter() {
        // The upper half keys the server's mapping of names onto counters (`Slots`); a lower
        // half that starts at 0 takes 2^32 invalidations to carry into it.
        Counter::Epoch => ((fresh_generation() >> 1) & !0xffff_ffff).max(1 << 32),
        _ => fresh_generation(),
    }
}

/// Returns a stored frame, or a miss-like failure when it is not ours.
fn decoded(frame: Vec<u8>) -> Lookup {
    match StoredResponse::decode(frame) {
        Some(entry) => Lookup::Hit(Arc::new(entry)),
        None => Lookup::Failed(BackendError::Undecodable),
    }
}

impl MemcachedStore {
    /// Reads a bump's results, three per server, in order: its counter, its epoch, its horizon.
    /// With the version each confirming server's epoch moved to.
    fn bumped(
        &self,
        results: Vec<Result<OpResult, memcache::exp::Error>>,
    ) -> (Bumped, Vec<(usize, u64)>) {
        let mut results = results.into_iter();
        let mut bumped = Bumped::default();
        let mut versions = Vec::new();
        for (index, server) in self.servers.iter().enumerate() {
            let pair = [results.next(), results.next()];
            let mut version = None;
            let failed = pair.into_iter().find_map(|result| match result {
                Some(Ok(OpResult::Arithmetic(counter)))
                    if counter.applied() && counter.value.is_some() =>
                {
                    version = counter.value;
                    None
                }
                Some(Err(error)) => Some(client_error(error)),
                _ => Some(BackendError::Client("increment not applied".into())),
            });
            match (failed, version) {
                (Some(error), _) => bumped.unconfirmed.push((server.clone(), error)),
                (None, Some(version)) => versions.push((index, version)),
                (None, None) => {}
            }
            if let Some(Ok(OpResult::Get(horizon))) = results.next() {
                let held = poll::stored_horizon(&horizon).unwrap_or(0);
                bumped.settle = bumped.settle.max(Duration::from_millis(held));
            }
        }
        (bumped, versions)
    }
}

/// Returns a read of `key`'s entry with its CAS (to store it again only if unchanged) and
/// remaining TTL.
fn entry_get(key: &CacheKey) -> Get {
    Get::new(key.as_bytes()).meta(Meta::NONE.cas().ttl())
}

/// Returns what a read of an entry found.
fn found_of(got: Option<GetResult>) -> Found {
    let Some(result) = got.filter(|result| result.status == GetStatus::Hit) else {
        return Found::Absent;
    };
    match result.value.filter(|frame| !frame.is_empty()) {
        // An empty value is another request's lease placeholder.
        None => Found::Absent,
        Some(frame) => match StoredResponse::decode(frame) {
            Some(entry) => {
                let ttl = result.item.ttl.and_then(|ttl| u32::try_from(ttl).ok());
                Found::Entry(Arc::new(entry), result.item.cas, ttl)
            }
            None => Found::Undecodable,
        },
    }
}

impl MemcachedStore {
    /// Returns the epoch of `key`'s server as last polled, while that poll may be relied on.
    pub(crate) fn polled_epoch(&self, key: &CacheKey) -> Option<u64> {
        let watch = self.watch.as_ref()?;
        watch.epoch(self.server_of(key.as_bytes()))
    }

    /// Returns whether an entry of `key` stamped with `stamp` is current as far as the last poll
    /// of its server says (see `watch.rs`).
    pub(crate) fn vouches(&self, key: &CacheKey, stamp: &Generation) -> bool {
        self.watch
            .as_ref()
            .is_some_and(|watch| watch.vouches(self.server_of(key.as_bytes()), stamp))
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns whether polling is on and every server's last poll may be relied on.
    pub(crate) fn all_polled(&self) -> bool {
        self.watch.as_ref().is_some_and(EpochWatch::all_fresh)
    }

    /// Returns the polling settings, when polling is on.
    pub(crate) fn poll_settings(&self) -> Option<PollSettings> {
        self.watch.as_ref().map(EpochWatch::settings)
    }

    /// Reads `key`'s entry, in one operation.
    async fn read_entry(&self, key: &CacheKey) -> Result<Found, BackendError> {
        let get = entry_get(key);
        let got = self
            .guarded(key.as_bytes(), self.op_timeout, async {
                let client = self.client().await?;
                client.meta().run(get).await.map_err(client_error)
            })
            .await?;
        Ok(found_of(Some(got)))
    }

    /// Returns a read of server `server`'s copy of `counter` (named through `slots`), created
    /// with a random value when missing.
    fn counter_read(
        &self,
        namespace: &str,
        counter: (&CounterId, &Slots),
        server: usize,
    ) -> Arithmetic {
        let first = first_value(counter.0);
        Arithmetic::new(self.counter_key(namespace, counter, server))
            .delta(0)
            .initial(first, COUNTER_TTL)
            .ttl(Ttl::secs(COUNTER_TTL))
    }

    /// Sends one batch to `key`'s server: `get` (when given) and a read of that server's copy of
    /// each counter, named through `slots` (created with a random value when missing).
    async fn batch(
        &self,
        key: &str,
        get: Option<Get>,
        (counters, slots): (&[CounterId], &Slots),
    ) -> Result<(Option<GetResult>, Vec<u64>), BackendError> {
        let server = self.server_of(key.as_bytes());
        let namespace = key.rsplit_once(':').map_or("", |(namespace, _)| namespace);
        let mut operations = Vec::with_capacity(1 + counters.len());
        let with_get = get.is_some();
        operations.extend(get.map(Op::Get));
        for counter in counters {
            operations.push(Op::Arithmetic(self.counter_read(
                namespace,
                (counter, slots),
                server,
            )));
        }
        let results = self
            .guarded(key.as_bytes(), self.op_timeout, async {
                let client = self.client().await?;
                // One server answers the whole batch: any failed operation is that server
                // failing (semantic outcomes, such as a miss, are not errors), and counts
                // against its breaker.
                client
                    .meta()
                    .run_batch(operations)
                    .await
                    .and_then(|results| results.into_iter().collect::<Result<Vec<_>, _>>())
                    .map_err(client_error)
            })
            .await?;
        let unexpected = || BackendError::Client("unexpected reply".into());
        let mut results = results.into_iter();
        let got = match with_get {
            false => None,
            true => match results.next() {
                Some(OpResult::Get(result)) => Some(result),
                _ => return Err(unexpected()),
            },
        };
        let values = results
            .map(|result| match result {
                OpResult::Arithmetic(counter) => counter.value.ok_or_else(unexpected),
                _ => Err(unexpected()),
            })
            .collect::<Result<Vec<u64>, _>>()?;
        Ok((got, values))
    }
}

impl MemcachedStore {
    /// Reads `key`. With a poll of its server to rely on (see `watch.rs`), one operation: the
    /// entry alone, current when no change the poll read since its stamp concerns it, else to be
    /// checked against its counters. Otherwise the entry and the server's epoch, as every hit
    /// did before polls.
    pub(crate) async fn read(
        &self,
        key: &CacheKey,
        epoch: CounterId,
    ) -> Result<Read, BackendError> {
        let server = self.server_of(key.as_bytes());
        if let Some(watch) = self.watch.as_ref().filter(|w| w.epoch(server).is_some()) {
            let polled = watch.epoch(server).unwrap_or_default();
            return Ok(match self.read_entry(key).await? {
                Found::Entry(entry, ..) if watch.vouches(server, &entry.generation()) => {
                    Read::Current(entry)
                }
                found => Read::Check(found, polled),
            });
        }
        let get = entry_get(key);
        let (got, values) =
            (self.batch(key.as_str(), Some(get), (&[epoch], &Slots::UNKEYED))).await?;
        let epoch = values
            .first()
            .copied()
            .ok_or_else(|| BackendError::Client("no epoch in the reply".into()))?;
        Ok(Read::in_epoch(found_of(got), epoch))
    }

    /// Reads `key` and `counters` (named through `slots`) in one round trip. With a lease, the
    /// key is read as a lease read: on a miss the server creates an empty placeholder for
    /// `lease_ttl` and tells exactly one client it won; others see it pending.
    pub(crate) async fn read_counters(
        &self,
        key: &CacheKey,
        counters: (&[CounterId], &Slots),
        lease: Option<u32>,
    ) -> Result<(Lookup, Vec<u64>), BackendError> {
        let get = lease.map(|ttl| Get::new(key.as_bytes()).lease_ttl(ttl.max(1)));
        let (got, values) = self.batch(key.as_str(), get, counters).await?;
        let lookup = match got {
            None => Lookup::Miss(Lease::None),
            Some(result) => match (result.status, result.value) {
                (GetStatus::Hit, Some(frame)) if !frame.is_empty() => decoded(frame),
                _ if result.lease_state == LeaseState::Granted => {
                    Lookup::Miss(Lease::Won(result.item.cas.unwrap_or(0)))
                }
                _ if result.lease_state == LeaseState::Busy => Lookup::Miss(Lease::Busy),
                _ => Lookup::Miss(Lease::None),
            },
        };
        Ok((lookup, values))
    }

    pub(crate) async fn carry_forward(
        &self,
        key: &CacheKey,
        original: Arc<StoredResponse>,
        epoch: u64,
        cas: u64,
        ttl: u32,
    ) {
        let entry = original.with_epoch(epoch);
        let _ = self
            .guarded(key.as_bytes(), self.op_timeout, async {
                let client = self.client().await?;
                client
                    .meta()
                    .set(key.as_bytes(), entry.frame())
                    .compare_cas(cas)
                    .ttl(expiry(ttl, unix_now()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(client_error)
            })
            .await;
    }

    pub(crate) async fn bump(
        &self,
        namespace: &str,
        counter: CounterId,
        purge: Purge,
        deadline: Duration,
    ) -> Bumped {
        let deadline = deadline.max(BUMP_DEADLINE);
        let failed_everywhere = |error: &dyn fmt::Display| Bumped {
            unconfirmed: self
                .servers
                .iter()
                .map(|server| (server.clone(), BackendError::Client(error.to_string())))
                .collect(),
            settle: Duration::ZERO,
        };
        // Each server maps names onto its counters with its own epoch (see `Slots`): read
        // first, after the change the caller made. An epoch created after this read (lost in
        // between) names its own mapping; the entries stamped with it were looked up after
        // this read, so after the change.
        let read = match self.server_slots(namespace, deadline).await {
            Ok(read) => read,
            Err(error) => return failed_everywhere(&error),
        };
        // A server whose epoch could not be read is bumped in vain (under no mapping of its
        // own) and reported unconfirmed.
        let slots: Vec<Slots> = read
            .iter()
            .map(|slots| slots.as_ref().map_or(Slots::UNKEYED, |slots| *slots))
            .collect();
        let operations = self.bump_operations(namespace, counter, purge, &slots);
        let done = self
            .run_batch_on(deadline, self.invalidation_client(), operations)
            .await;
        let results = match done {
            Ok(results) => results,
            Err(error) => return failed_everywhere(&error),
        };
        let (mut bumped, mut versions) = self.bumped(results);
        for (server, slots) in read.into_iter().enumerate() {
            if let Err(error) = slots {
                versions.retain(|&(bumped, _)| bumped != server);
                if !bumped
                    .unconfirmed
                    .iter()
                    .any(|(name, _)| *name == self.servers[server])
                {
                    bumped
                        .unconfirmed
                        .push((self.servers[server].clone(), error));
                }
            }
        }
        if counter.change_id(&Slots::UNKEYED).is_none() {
            return bumped;
        }
        // The record of what the new epoch changed (see `watch.rs`): until it is written,
        // pollers take the version for an invalidation still under way.
        let failed = self
            .append_changes(namespace, (counter, &slots), versions, deadline)
            .await;
        bumped.unconfirmed.extend(
            failed
                .into_iter()
                .map(|(server, error)| (self.servers[server].clone(), error)),
        );
        bumped
    }

    /// Returns a bump's operations: every server's copies, whatever its breaker says (an
    /// invalidation must reach a server that is about to come back), each named under that
    /// server's `slots`. Per server, the counter before the epoch (one connection, in order): a
    /// hit that sees the new epoch sees the new counter. Then the horizon the server holds,
    /// read after its epoch moved (see `watch.rs`).
    fn bump_operations(
        &self,
        namespace: &str,
        counter: CounterId,
        purge: Purge,
        slots: &[Slots],
    ) -> Vec<Op> {
        let increment = |counter: &CounterId, delta: u64, server: usize| {
            let named = (counter, &slots[server]);
            Op::Arithmetic(
                Arithmetic::new(self.counter_key(namespace, named, server))
                    .delta(delta)
                    .initial(first_value(counter), COUNTER_TTL)
                    .ttl(Ttl::secs(COUNTER_TTL)),
            )
        };
        (0..self.servers.len())
            .flat_map(|server| {
                [
                    increment(&counter, purge.delta(), server),
                    increment(&CounterId::epoch(), 1, server),
                    self.horizon_read(namespace, server),
                ]
            })
            .collect()
    }

    /// Reads every server's epoch (creating a missing one), in one exchange: each server's
    /// mapping of names onto its counters, or why it could not be read.
    async fn server_slots(
        &self,
        namespace: &str,
        deadline: Duration,
    ) -> Result<Vec<Result<Slots, BackendError>>, BackendError> {
        let epoch = CounterId::epoch();
        let reads = (0..self.servers.len())
            .map(|server| {
                let read = self.counter_read(namespace, (&epoch, &Slots::UNKEYED), server);
                Op::Arithmetic(read)
            })
            .collect();
        let results = self
            .run_batch_on(deadline, self.invalidation_client(), reads)
            .await?;
        let mut results = results.into_iter();
        let slots = (0..self.servers.len()).map(|_| match results.next() {
            Some(Ok(OpResult::Arithmetic(read))) => read
                .value
                .map(Slots::of_epoch)
                .ok_or_else(|| BackendError::Client("no epoch in the reply".into())),
            Some(Err(error)) => Err(client_error(error)),
            _ => Err(BackendError::Client("unexpected reply".into())),
        });
        Ok(slots.collect())
    }

    pub(crate) async fn set(
        &self,
        key: &CacheKey,
        entry: Arc<StoredResponse>,
        keep: u32,
        budget: Duration,
    ) -> Result<(), BackendError> {
        if budget.is_zero() {
            return Err(BackendError::Timeout);
        }
        self.guarded(key.as_bytes(), budget, async {
            let client = self.client().await?;
            client
                .set(
                    key.as_str(),
                    entry.frame(),
                    expiry(entry.ttl().saturating_add(keep), unix_now()),
                )
                .await
                .map_err(client_error)
        })
        .await
    }

    pub(crate) async fn lease(&self, key: &CacheKey, ttl: u32) -> bool {
        let lease = key.lease();
        let taken = self
            .guarded(lease.as_bytes(), self.op_timeout, async {
                let client = self.client().await?;
                client
                    .add(lease.as_str(), b"1".as_slice(), Ttl::secs(ttl.max(1)))
                    .await
                    .map_err(client_error)
            })
            .await;
        // Only a confirmed `add` is a win. A timed-out one may still be applied (and then held
        // by nobody until it expires); any failure means the server that would hold the lease,
        // and store the refreshed entry, is not answering: the stale entry is served instead.
        matches!(taken, Ok(true))
    }

    pub(crate) async fn abandon(&self, key: &CacheKey, cas: u64) {
        // Only the placeholder this request created: a CAS mismatch means an entry (or another
        // placeholder) took its place, which must stay.
        let _ = self
            .guarded(key.as_bytes(), self.op_timeout, async {
                let client = self.client().await?;
                let delete = client.meta().delete(key.as_str());
                let delete = if cas == 0 {
                    delete
                } else {
                    delete.compare_cas(cas)
                };
                delete.send().await.map(|_| ()).map_err(client_error)
            })
            .await;
    }

    pub(crate) async fn release(&self, key: &CacheKey) {
        let lease = key.lease();
        let _ = self
            .guarded(lease.as_bytes(), self.op_timeout, async {
                let client = self.client().await?;
                client.delete(lease.as_str()).await.map_err(client_error)
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyParts;

    fn store(servers: &[&str]) -> MemcachedStore {
        let settings = BreakerSettings {
            failures: 3,
            cooldown: Duration::from_secs(1),
        };
        let servers = servers.iter().map(|s| s.to_string()).collect();
        MemcachedStore::new(servers, Duration::from_millis(100), 8, settings, None)
    }

    fn keys() -> Vec<CacheKey> {
        (0..10_000)
            .map(|i| {
                let path = format!("/article/{i}");
                KeyParts {
                    host: Some(("example.com", None)),
                    host_headers: &["example.com"],
                    ..KeyParts::fixture("/article/<id>", &path)
                }
                .build("rc")
            })
            .collect()
    }

    /// Expiries past what memcached can hold: 30 days relative, then a unix time up to
    /// 2038-01-19 (a signed 32-bit value), never longer than asked.
    #[test]
    fn an_expiry_is_the_longest_memcached_holds_and_never_longer_than_asked() {
        let now = 1_800_000_000;
        let at = |secs: u64| Ttl::at(UNIX_EPOCH + Duration::from_secs(secs));
        let month = LONGEST_RELATIVE_EXPIRY;
        assert_eq!(expiry(60, now), Ttl::secs(60));
        assert_eq!(expiry(0, now), Ttl::secs(1));
        assert_eq!(expiry(month, now), Ttl::secs(month));
        assert_eq!(expiry(month + 1, now), at(now + u64::from(month) + 1));
        assert_eq!(expiry(u32::MAX, now), at(LATEST_ABSOLUTE_EXPIRY));
        // Within a month of 2038, and after it, only a relative expiry is left.
        assert_eq!(
            expiry(u32::MAX, LATEST_ABSOLUTE_EXPIRY - 10),
            Ttl::secs(month)
        );
        assert_eq!(expiry(u32::MAX, u64::from(u32::MAX)), Ttl::secs(month));
    }

    /// Rendezvous hashing: losing or adding one server moves only the keys that must move.
    #[test]
    fn adding_or_removing_a_server_moves_about_one_nth_of_the_keys() {
        let three = store(&["10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"]);
        let two = store(&["10.0.0.1:11211", "10.0.0.3:11211"]);
        let four = store(&[
            "10.0.0.1:11211",
            "10.0.0.2:11211",
            "10.0.0.3:11211",
            "10.0.0.4:11211",
        ]);
        let name = |store: &MemcachedStore, key: &CacheKey| {
            store.servers[store.server_of(key.as_bytes())].clone()
        };
        let keys = keys();
        let mut per_server = std::collections::HashMap::new();
        let (mut moved_on_removal, mut moved_on_addition) = (0, 0);
        for key in &keys {
            let before = name(&three, key);
            *per_server.entry(before.clone()).or_insert(0) += 1;
            let after_removal = name(&two, key);
            if after_removal != before {
                assert_eq!(
                    before, "10.0.0.2:11211",
                    "only the removed server's keys move"
                );
                moved_on_removal += 1;
            }
            let after_addition = name(&four, key);
            if after_addition != before {
                assert_eq!(
                    after_addition, "10.0.0.4:11211",
                    "keys only move to the new server"
                );
                moved_on_addition += 1;
            }
        }
        println!("10,000 keys on 3 servers: {per_server:?}; removing one moved {moved_on_removal}, adding one moved {moved_on_addition}");
        assert!(
            per_server.values().all(|n| (2_900..=3_800).contains(n)),
            "{per_server:?}"
        );
        assert_eq!(moved_on_removal, per_server["10.0.0.2:11211"]);
        assert!(
            (2_000..=3_000).contains(&moved_on_addition),
            "{moved_on_addition}"
        );
    }
}
