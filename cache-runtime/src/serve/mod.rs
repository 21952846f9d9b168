//! The request path every cached handler takes, one step at a time: lookup -> coalesce -> run
//! -> store -> reply. [`Flow`] is what the steps so far decided.

mod coalesce;
mod leases;
pub(crate) mod responder;
mod revalidate;
mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocket::http::Status;
use rocket::response;
use rocket::{Request, Response};

use self::leases::Leases;
use self::responder::Cached;
use crate::backend::{BackendError, Lease, Lookup};
use crate::cache::Cache;
use crate::config::Config;
use crate::entry::StoredResponse;
use crate::flight::{Leader, Role};
use crate::generation::Stamp;
use crate::guard::CacheRequest;
use crate::http::policy;
use crate::http::render::{mark, merge_vary, not_modified, replay};
use crate::invalidation::Scope;
use crate::key::{key_for, CacheKey};
use crate::lookup::Fetched;
use crate::options::RouteOptions;
use crate::outcome::{Refusal, Served};
use crate::rate_limited_log;
pub(crate) use crate::util::unix_now;

/// Serves `request` from the cache, or runs `handler` (an unpolled future: on a hit it is
/// dropped without running) and stores its response when that is safe.
///
/// Misses for one key are coalesced: in this process, concurrent requests wait for the one
/// that runs the handler; across processes, that one holds the key's lease in the backend and
/// the others poll for its entry. Waits are bounded by `lease_wait`, after which a request runs
/// the handler itself. With `stale`, every request that finds an expired entry is answered with
/// it at once (`X-Cache: STALE`), and one of them (one per key across instances, through the
/// flight and the companion lease) refreshes it after its reply: the refresh is the tail of the
/// stale reply's body, which Rocket polls after handing the last byte over (see
/// `revalidate`; over HTTP/2 the stream's end waits for it, and a HEAD request cannot refresh).
/// With `stale_if_error`, an expired entry stands in for a failing handler.
pub async fn serve<'r, 'o, P, R>(
    guard: CacheRequest<'r>,
    options: &'static RouteOptions,
    scope: Scope,
    handler: impl Future<Output = R> + Send + 'r,
    respond: impl FnOnce(R, &'r Request<'r>) -> response::Result<'o> + Send + 'r,
) -> Cached<'r, P>
where
    'o: 'r,
{
    let request = guard.request;
    let cache = Cache::for_request(request);
    let route = match request.route() {
        Some(route) if !policy::bypasses(request, options) => route,
        // No route (not reachable from a handler) or a per-principal request.
        _ => {
            options.stats.outcome(Served::Bypass);
            let outcome = respond(handler.await, request).map(|mut response| {
                merge_vary(&mut response, options);
                mark(&mut response, cache.config().x_cache_header, Served::Bypass);
                response
            });
            return Cached::new(outcome.map(shorten));
        }
    };
    options.stats.register(route);
    let key = key_for(request, route, &cache.config().namespace, options);
    let (mut flow, lookup) = Flow::lookup(request, cache, options, key, &scope).await;
    if let Some(served) = flow.decide(lookup).await {
        return Cached::new(Ok(served));
    }
    if let Some(entry) = flow.revalidates.take() {
        return Cached::new(Ok(Box::pin(flow.revalidate(entry, handler, respond)).await));
    }
    // The steps after a hit are boxed, as is every step that talks to Memcached: a future holds
    // room for its largest state and is copied whole when moved, so the hit path's own future
    // stays small (a hit from the near tier never allocates one of these).
    if let Some(served) = Box::pin(flow.coalesce(&scope)).await {
        return Cached::new(Ok(served));
    }
    let outcome = respond(handler.await, request).map(shorten);
    Cached::new(Box::pin(flow.finish(outcome)).await)
}

/// One request's way through the cache: what the steps so far decided.
struct Flow<'r> {
    request: &'r Request<'r>,
    cache: &'r Cache,
    options: &'static RouteOptions,
    /// Every lease this request takes is given back, whatever await it is dropped at (the
    /// client went away).
    leases: Leases<'r>,
    /// The client's `no-cache`, honored: the entry is recomputed, not served.
    refresh: bool,
    /// The lookup's share of the request's cache deadline (waiting on others is not counted:
    /// the store after it gets what the lookup left).
    lookup_took: Duration,
    /// What the stored entry will be stamped with: the counters as they were before the
    /// handler ran, so that an invalidation during the run is not lost.
    stamp: Option<Stamp>,
    /// Whether the lookup's lease read made this request the one to recompute the entry.
    lease: Lease,
    /// Whether a fresh response may be stored: the backend answered.
    may_store: bool,
    /// An expired entry kept for `stale_if_error`, if the handler fails.
    fallback: Option<Arc<StoredResponse>>,
    /// This process's waiters for the key, when this request runs the handler for them.
    leader: Option<Leader<'r>>,
    /// The expired entry this request answers with before refreshing it (`stale`).
    revalidates: Option<Arc<StoredResponse>>,
}

impl<'r> Flow<'r> {
    fn key(&self) -> &CacheKey {
        self.leases.key()
    }

    /// Lookup: reads the entry, checked against the invalidation counters.
    async fn lookup(
        request: &'r Request<'r>,
        cache: &'r Cache,
        options: &'static RouteOptions,
        key: CacheKey,
        scope: &Scope,
    ) -> (Flow<'r>, Lookup) {
        let config = cache.config();
        let started = Instant::now();
        let refresh = options.honor_no_cache && policy::client_wants_fresh(request);
        // With coalescing, a miss is followed by a lease read (hits pay nothing for it).
        let lease = config.coalesce.then(|| lease_secs(config));
        // The invalidation counters the entry depends on (read only after an invalidation or
        // on a miss; a hit in the current epoch reads the epoch alone).
        let counters = || scope.counters(request);
        let mut leases = Leases::new(cache, key);
        let fetched = match cache.near_hit(leases.key()).filter(|_| !refresh) {
            Some(near) => near,
            None => {
                let lease = lease.filter(|_| !refresh);
                let expect_miss = options.misses_in_a_row.expects_miss();
                let far = Box::pin(leases.lookup(counters, lease, expect_miss)).await;
                cache.near_keep(leases.key(), &far);
                far
            }
        };
        let lookup_took = started.elapsed();
        options.stats.lookup(lookup_took);
        let found = matches!(fetched.lookup, Lookup::Hit(_));
        options.misses_in_a_row.looked_up(found);
        if fetched.invalidated {
            options.stats.invalidated();
        }
        let flow = Flow {
            request,
            cache,
            options,
            leases,
            refresh,
            lookup_took,
            stamp: fetched.stamp,
            lease: Lease::None,
            may_store: false,
            fallback: None,
            leader: None,
            revalidates: None,
        };
        flow.restamp_later(&fetched);
        let lookup = match fetched.lookup {
            Lookup::Hit(_) if refresh => Lookup::Miss(Lease::None),
            lookup => lookup,
        };
        (flow, lookup)
    }

    /// A hit from an earlier epoch, still valid, is recorded in this one, off the request path.
    fn restamp_later(&self, fetched: &Fetched) {
        if let (Lookup::Hit(entry), Some(restamp), Some(stamp)) =
            (&fetched.lookup, fetched.restamp, fetched.stamp)
        {
            if let Some(claim) = self.cache.claim_restamp(self.key()) {
                let entry = Arc::clone(entry);
                tokio::spawn(async move {
                    let store = claim.cache.store();
                    store.restamp(&claim.key, entry, stamp.epoch, restamp).await;
                });
            }
        }
    }

    /// What the lookup found: a response to serve now, or what running the handler is for.
    async fn decide(&mut self, lookup: Lookup) -> Option<Response<'r>> {
        match lookup {
            Lookup::Hit(entry) => self.on_hit(entry).await,
            Lookup::Miss(lease) => {
                self.lease = lease;
                self.may_store = self.stamp.is_some();
                None
            }
            Lookup::Failed(error) => {
                self.may_store = self.on_failure(error);
                None
            }
        }
    }

    /// Serves a fresh entry, or an expired one within `stale` (one request, this one or
    /// another, refreshes it after answering); else this request refreshes it, keeping it for
    /// `stale_if_error`.
    async fn on_hit(&mut self, entry: Arc<StoredResponse>) -> Option<Response<'r>> {
        let now = unix_now();
        // The entry's ttl already counts the age it arrived with.
        let stored_for = now.saturating_sub(entry.created());
        let ttl = u64::from(entry.ttl());
        if stored_for < ttl || self.options.keep() == 0 {
            return Some(self.serve_entry(&entry, now, Served::Hit));
        }
        if stored_for < ttl + u64::from(self.options.stale) {
            // Stale while revalidating: every request is served the stale entry at once; the
            // one that holds the key's flight and companion lease refreshes it afterwards.
            let cache = self.cache;
            match cache.flights().join(self.key()) {
                Role::Leader(guard)
                    if Box::pin(self.leases.take_companion(lease_secs(cache.config()))).await =>
                {
                    self.leader = Some(guard);
                    self.may_store = true;
                    self.revalidates = Some(entry);
                    return None;
                }
                _ => return Some(self.serve_entry(&entry, now, Served::Stale)),
            }
        }
        if stored_for < ttl + u64::from(self.options.stale_if_error) {
            self.fallback = Some(entry);
        }
        self.may_store = true;
        None
    }

    /// Counts and logs a failed lookup; whether the response may still be stored.
    fn on_failure(&self, error: BackendError) -> bool {
        // The breaker already said so, once: a skipped server is a quiet miss.
        if matches!(error, BackendError::ServerSkipped) {
            return false;
        }
        self.options.stats.backend_error();
        let limiter = match error {
            BackendError::Undecodable => &rate_limited_log::UNDECODABLE,
            _ => &rate_limited_log::LOOKUP_FAILED,
        };
        rate_limited_log::warn(
            limiter,
            format_args!(
                "lookup failed ({}): {error}; serving as a miss",
                error.cause()
            ),
        );
        // A server that just failed would likely cost the deadline again; an entry that did
        // not decode is replaced.
        matches!(error, BackendError::Undecodable) && self.stamp.is_some()
    }

    /// `entry` as the response, counted as `served`.
    fn serve_entry(&self, entry: &StoredResponse, now: u64, served: Served) -> Response<'r> {
        self.options.stats.outcome(served);
        let x_cache = self.cache.config().x_cache_header;
        replay(self.request, entry, now, x_cache, served)
    }

    /// Run's aftermath: a failing handler's stand-in, or the response, stored when it may be,
    /// and the reply.
    async fn finish(
        mut self,
        outcome: Result<Response<'r>, Status>,
    ) -> Result<Response<'r>, Status> {
        let failed = match &outcome {
            Ok(response) => response.status().code >= 500,
            Err(status) => status.code >= 500,
        };
        if let (true, Some(stale)) = (failed, &self.fallback) {
            self.leases.finish(false).await;
            return Ok(self.serve_entry(stale, unix_now(), Served::Stale));
        }
        self.options.stats.outcome(Served::Miss);
        let mut response = match outcome {
            Ok(response) => response,
            Err(status) => {
                self.leases.finish(false).await;
                self.options.stats.refused(Refusal::Status);
                return Err(status);
            }
        };
        match self.store(&mut response).await {
            Ok((stored, written)) => Ok(self.reply(response, stored, written).await),
            Err(status) => {
                self.leases.finish(false).await;
                Err(status)
            }
        }
    }

    /// Store: the response, when it may be shared; the entry, and whether it was written.
    async fn store(
        &self,
        response: &mut Response<'r>,
    ) -> Result<(Option<Arc<StoredResponse>>, bool), Status> {
        if !self.may_store || policy::client_forbids_store(self.request) {
            return Ok((None, false));
        }
        // The lookup and the store share one deadline: a server that answers the lookup and
        // then stalls still costs a request at most `op_timeout` in all.
        let budget = self
            .cache
            .config()
            .op_timeout
            .saturating_sub(self.lookup_took);
        let stamp = self.stamp.unwrap_or_default();
        let (cache, request, key, options) = (self.cache, self.request, self.key(), self.options);
        let stored = store::store(cache, request, key, options, stamp, response, budget).await?;
        Ok(stored.map_or((None, false), |(entry, written)| (Some(entry), written)))
    }

    /// Reply: this process's waiters get the stored entry, the leases go back, and the client
    /// gets the response (a bare 304 when it has the stored one).
    async fn reply(
        mut self,
        mut response: Response<'r>,
        stored: Option<Arc<StoredResponse>>,
        written: bool,
    ) -> Response<'r> {
        if let Some(leader) = self.leader.take() {
            leader.publish(stored.clone());
        }
        // A won placeholder is replaced by the stored entry; with nothing written, it is given
        // back so that other instances stop waiting for it.
        self.leases.finish(written).await;
        // After storing: the handler's own `Vary` is checked first, then the route's is merged.
        merge_vary(&mut response, self.options);
        // Only a response fit to share is answered with a bare 304: one that is not (it sets a
        // cookie, say) keeps every header it has.
        let etag = response.headers().get_one("ETag").map(str::to_owned);
        let fresh_for_client = stored.is_some()
            && response.status().class().is_success()
            && etag.is_some_and(|etag| policy::not_modified(self.request, &etag));
        if fresh_for_client {
            response = not_modified(
                response
                    .headers()
                    .iter()
                    .map(|h| (h.name.into_string(), h.value.into_owned())),
            );
        }
        mark(
            &mut response,
            self.cache.config().x_cache_header,
            Served::Miss,
        );
        response
    }
}

fn lease_secs(config: &Config) -> u32 {
    config.lease_ttl.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

/// A response borrowing no longer than the request (`Response` is covariant).
fn shorten<'r, 'o: 'r>(response: Response<'o>) -> Response<'r> {
    response
}
