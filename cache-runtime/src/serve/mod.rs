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
use self::store::Stored;
use crate::backend::{BackendError, Lease, Lookup};
use crate::cache::Cache;
use crate::entry::StoredResponse;
use crate::flight::{Leader, Role};
use crate::http::policy;
use crate::http::render::{
    add_downstream, mark, mark_for_catcher, merge_vary, not_modified, replay,
};
use crate::http::status::{detail, ForwardReason, Forwarded};
use crate::http::{surrogate, targeted};
use crate::invalidation::generation::Generation;
use crate::invalidation::targets::Scope;
use crate::key::{key_for, CacheKey};
use crate::lookup::Fetched;
use crate::outcome::Served;
use crate::rate_limited_log;
use crate::route::guard::CacheRequest;
use crate::route::options::RouteOptions;
use crate::route::validators;
use crate::settings::Config;
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
    // Added to every response of the route, never stored: the configuration in force decides.
    let tagged = |mut response: Response<'r>| {
        surrogate::add(
            &mut response,
            cache.config().surrogate_keys,
            &scope.surrogate_keys,
        );
        response
    };
    let route = match request.route() {
        Some(route) if cache.config().enabled && !policy::bypasses(request, options) => route,
        // No route (not reachable from a handler), a per-principal request, or the cache is
        // switched off.
        _ => {
            options.stats.outcome(cache.counters(), Served::Bypass);
            let x_cache = cache.config().x_cache_header;
            let outcome = respond(handler.await, request).map(|mut response| {
                response.remove_header(targeted::OWN_FIELD);
                merge_vary(&mut response, options);
                let cache_status = bypass_status(cache, response.status().code);
                mark(&mut response, x_cache, Served::Bypass, cache_status);
                tagged(response)
            });
            if let Err(status) = &outcome {
                let cache_status = bypass_status(cache, status.code);
                let marked = (x_cache, Served::Bypass, cache_status);
                mark_for_catcher(request, marked, None, options);
            }
            return Cached::new(outcome.map(shorten));
        }
    };
    options.stats.register(route);
    options.warn_unkeyed_cookies(request);
    let key = key_for(
        request,
        route,
        &cache.config().namespace,
        options,
        &scope.guards,
    );
    let (flow, looked) = Flow::lookup(request, cache, options, key, &scope).await;
    let run = match flow.decide(looked) {
        Decision::Serve(reply) => return Cached::new(reply.map(tagged)),
        Decision::Revalidate(entry, run, leader) => {
            let refreshing = flow.revalidate(entry, run, leader, handler, respond);
            return Cached::new(Box::pin(refreshing).await.map(tagged));
        }
        Decision::Run(run) => run,
    };
    // The steps after a hit are boxed, as is every step that talks to Memcached: a future holds
    // room for its largest state and is copied whole when moved, so the hit path's own future
    // stays small (a hit from the near tier never allocates one of these).
    let (flow, leader) = match Box::pin(flow.coalesce(&run, &scope)).await {
        Coalesced::Answered(reply) => return Cached::new(reply.map(tagged)),
        Coalesced::Runs(flow, leader) => (flow, leader),
    };
    if let Some(entry) = &run.revalidates {
        validators::revalidating(request, stored_validators(entry));
    }
    let outcome = outcome_of(request, &run, handler.await, respond);
    let finished = flow.finish(run, leader, outcome);
    Cached::new(Box::pin(finished).await.map(tagged))
}

/// What a request is answered with: a response, or a status for Rocket's catcher to render.
type Reply<'r> = Result<Response<'r>, Status>;

/// One request's way through the cache: what every step reads, decided once at the lookup.
struct Flow<'r> {
    request: &'r Request<'r>,
    cache: &'r Cache,
    options: &'static RouteOptions,
    /// Every lease this request takes is given back, whatever await it is dropped at (the
    /// client went away).
    leases: Leases<'r>,
    /// The lookup's share of the request's cache deadline (waiting on others is not counted:
    /// the store after it gets what the lookup left).
    lookup_took: Duration,
    /// The page belongs to one client (a keyed guard, a cookie or credentials in its key, an
    /// authorized request on a `public` route): `downstream` sends it `private`.
    private: bool,
}

/// What the lookup read, before it is decided on.
struct Looked {
    lookup: Lookup,
    /// The counters as read before the handler runs (`None`: they could not be read).
    stamp: Option<Generation>,
    /// The hit was rendered before a soft invalidation: it is served as expired.
    soft_purged: bool,
    /// The client's `no-cache`, honored: the entry is recomputed, not served.
    refresh: bool,
    /// The key's last response was not storable (hit-for-pass): this request waits for no
    /// other.
    passing: bool,
    /// This request's answer is not for the others (the client's `no-store`, credentials on a
    /// `public` route): it neither leads them nor takes the key's lease.
    alone: bool,
}

/// What the lookup decided for this request.
enum Decision<'r> {
    /// Answer with this now: a fresh entry, or an expired one within `stale` that another
    /// request refreshes.
    Serve(Reply<'r>),
    /// Answer with this expired entry, then refresh it with this run: this request leads the
    /// key's flight in this process.
    Revalidate(Arc<StoredResponse>, Run, Leader),
    /// Run the handler.
    Run(Run),
}

/// Why the handler runs, and what becomes of its response.
struct Run {
    /// Why this request goes to the handler (`Cache-Status`'s `fwd`).
    fwd: ForwardReason,
    /// The stamp a stored response gets (the counters as read before the run, so that an
    /// invalidation during it is not lost), or why nothing is stored (a `Cache-Status`
    /// detail).
    store: Result<Generation, &'static str>,
    /// What the lookup's lease read gave this request.
    lease: Lease,
    /// An expired entry that stands in for a failing handler (`stale_if_error`).
    fallback: Option<Arc<StoredResponse>>,
    /// The stored entry this run revalidates: the handler's `Validators` are its, and a 304
    /// from the handler refreshes it instead of rendering it again.
    revalidates: Option<Arc<StoredResponse>>,
    /// Whether this run may wait for another or lead others: not for a client's `no-cache`,
    /// nor for a key in hit-for-pass.
    coalesces: bool,
    /// The key is in hit-for-pass (`Cache-Status` says so when nothing is stored).
    passing: bool,
    /// The answer is not for the others (see [`Looked::alone`]): its refusal says nothing of
    /// the route, and starts no hit-for-pass.
    alone: bool,
}

/// What coalescing came to: an answer from another request's run, or this request runs the
/// handler (leading this process's waiters for the key, if it does).
enum Coalesced<'r> {
    Answered(Reply<'r>),
    Runs(Flow<'r>, Option<Leader>),
}

/// How a response made from an entry reached this request.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// From the cache alone (fresh, or stale while another request refreshes it).
    Cache,
    /// From another request's handler run, which this one (going for this reason) waited for.
    Collapsed(ForwardReason),
    /// In place of the handler's failure, which had this status.
    StandIn(u16),
}

/// Returns seconds of freshness `entry` has left at `now`, negative once stale.
fn freshness_left(entry: &StoredResponse, now: u64) -> i64 {
    // The entry's ttl already counts the age it arrived with.
    let stored_for = i64::try_from(now.saturating_sub(entry.created())).unwrap_or(i64::MAX);
    i64::from(entry.ttl()) - stored_for
}

impl<'r> Flow<'r> {
    fn key(&self) -> &CacheKey {
        self.leases.key()
    }

    /// Reads the entry, checked against the invalidation counters.
    async fn lookup(
        request: &'r Request<'r>,
        cache: &'r Cache,
        options: &'static RouteOptions,
        key: CacheKey,
        scope: &Scope,
    ) -> (Flow<'r>, Looked) {
        let config = cache.config();
        let started = Instant::now();
        let refresh = options.honor_no_cache && policy::client_wants_fresh(request);
        // With coalescing, a miss is followed by a lease read (hits pay nothing for it).
        let lease = config.coalesce.then(|| lease_secs(config));
        // The invalidation counters the entry depends on (read only after an invalidation or
        // on a miss; a hit in the current epoch reads the epoch alone).
        let counters = || scope.counters(request);
        let mut leases = Leases::new(cache, key);
        let mut passing = false;
        // Leading the others, a request whose answer they cannot share would hand them nothing:
        // each would then run the handler itself. Asked only past the near tier, which serves
        // fresh entries alone (no run to lead).
        let mut alone = false;
        let fetched = match cache.near_hit(leases.key()).filter(|_| !refresh) {
            Some(near) => {
                options.stats.near_hit(cache.counters());
                near
            }
            None => {
                // A key in hit-for-pass takes no lease: other instances would wait for it.
                passing = cache.flights().passing(leases.key());
                alone = unshareable(request, options);
                let lease = lease.filter(|_| !refresh && !passing && !alone);
                let expect_miss = options.misses_in_a_row.expects_miss();
                let far = Box::pin(leases.lookup(counters, lease, expect_miss)).await;
                cache.near_keep(leases.key(), &far);
                far
            }
        };
        let lookup_took = started.elapsed();
        options.stats.lookup(cache.counters(), lookup_took);
        let found = matches!(fetched.lookup, Lookup::Hit(_));
        options.misses_in_a_row.looked_up(found);
        if fetched.invalidated {
            options.stats.invalidated(cache.counters());
        }
        let flow = Flow {
            request,
            cache,
            options,
            leases,
            lookup_took,
            private: options.per_client
                || scope.guards.keyed()
                || (options.public && request.headers().contains("Authorization")),
        };
        flow.carry_forward_later(&fetched);
        let looked = Looked {
            lookup: fetched.lookup,
            stamp: fetched.stamp,
            soft_purged: fetched.soft_purged,
            refresh,
            passing,
            alone,
        };
        (flow, looked)
    }

    /// Records a hit from an earlier epoch, still valid, in this one, off the request path.
    fn carry_forward_later(&self, fetched: &Fetched) {
        if let (Lookup::Hit(entry), Some(carry_forward), Some(stamp)) =
            (&fetched.lookup, fetched.carry_forward, fetched.stamp)
        {
            if let Some(claim) = self.cache.claim_carry_forward(self.key()) {
                let entry = Arc::clone(entry);
                tokio::spawn(async move {
                    let store = claim.cache.store();
                    store
                        .carry_forward(&claim.key, entry, stamp.epoch, carry_forward)
                        .await;
                });
            }
        }
    }

    /// Decides what the lookup's finding means for this request.
    fn decide(&self, looked: Looked) -> Decision<'r> {
        let fwd = match (looked.refresh, looked.passing) {
            (true, _) => ForwardReason::Request,
            (false, true) => ForwardReason::Bypass,
            (false, false) => ForwardReason::UriMiss,
        };
        let run = |fwd, store, lease| Run {
            fwd,
            store,
            lease,
            fallback: None,
            revalidates: None,
            coalesces: !looked.refresh && !looked.passing && !looked.alone,
            passing: looked.passing,
            alone: looked.alone,
        };
        let stamped = looked.stamp.ok_or(detail::BACKEND_ERROR);
        match looked.lookup {
            Lookup::Hit(_) if looked.refresh => Decision::Run(run(fwd, stamped, Lease::None)),
            Lookup::Hit(entry) => {
                let run = run(
                    ForwardReason::Stale,
                    Ok(looked.stamp.unwrap_or_default()),
                    Lease::None,
                );
                self.on_hit(entry, looked.soft_purged, looked.alone, run)
            }
            Lookup::Miss(lease) => Decision::Run(run(fwd, stamped, lease)),
            Lookup::Failed(error) => {
                let fwd = match fwd {
                    ForwardReason::UriMiss => ForwardReason::Miss,
                    other => other,
                };
                let store = match self.on_failure(&error) {
                    true => stamped,
                    false => Err(detail::BACKEND_ERROR),
                };
                Decision::Run(run(fwd, store, Lease::None))
            }
        }
    }

    /// Serves a fresh entry, or an expired one within `stale` (one request, this one or
    /// another, refreshes it after answering); else `run` refreshes it, keeping it for
    /// `stale_if_error`.
    fn on_hit(
        &self,
        entry: Arc<StoredResponse>,
        soft_purged: bool,
        alone: bool,
        mut run: Run,
    ) -> Decision<'r> {
        let now = unix_now();
        // The entry's ttl already counts the age it arrived with.
        let stored_for = now.saturating_sub(entry.created());
        let ttl = u64::from(entry.ttl());
        // Soft-purged, it is expired from now on: the stale windows then end where they would
        // have anyway, never later than the route allows for this entry.
        let stored_for = match soft_purged {
            true => stored_for.max(ttl),
            false => stored_for,
        };
        // The entry's own windows: the route's, or those its response set.
        let (stale, stale_if_error) = stale_windows(&entry);
        // Without windows, the backend holds an entry no longer than its ttl (give or take its
        // clock): found, it is served; one kept to be revalidated (`keep`) is not.
        let kept_to_revalidate = self.options.keep > 0;
        if stored_for < ttl
            || (stale.max(stale_if_error) == 0 && !soft_purged && !kept_to_revalidate)
        {
            return Decision::Serve(self.serve_entry(&entry, now, Served::Hit, Source::Cache));
        }
        // Past its freshness, a stored success is revalidated by the run that follows: the
        // handler may answer 304.
        if (200..300).contains(&entry.status()) && entry.for_catcher().is_none() {
            run.revalidates = Some(Arc::clone(&entry));
        }
        if stored_for < ttl + stale {
            // Stale while revalidating: every request is served the stale entry at once; the
            // one that leads the key's flight in this process tries, after its reply, for the
            // companion lease that elects one refresher across instances. A request whose
            // answer may not be stored would refresh nothing: it is served, and leads no one.
            // (Asked again here: a near hit's entry may have expired since the near tier's check.)
            if alone || unshareable(self.request, self.options) {
                return Decision::Serve(self.serve_entry(
                    &entry,
                    now,
                    Served::Stale,
                    Source::Cache,
                ));
            }
            return match self.cache.flights().join(self.key()) {
                Role::Leader(leader) => Decision::Revalidate(entry, run, leader),
                Role::Follower(_) => {
                    Decision::Serve(self.serve_entry(&entry, now, Served::Stale, Source::Cache))
                }
            };
        }
        if stored_for < ttl + stale_if_error {
            run.fallback = Some(entry);
        }
        Decision::Run(run)
    }

    /// Counts and logs a failed lookup; returns whether the response may still be stored.
    fn on_failure(&self, error: &BackendError) -> bool {
        // The breaker already said so, once: a skipped server is a quiet miss.
        if matches!(error, BackendError::ServerSkipped) {
            return false;
        }
        self.options.stats.backend_error(self.cache.counters());
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
        matches!(error, BackendError::Undecodable)
    }

    /// Answers with `entry`, counted as `served`, which came from `source`; an entry of a
    /// responder's failure is its status, for Rocket's catcher to render as on the miss.
    fn serve_entry(
        &self,
        entry: &StoredResponse,
        now: u64,
        served: Served,
        source: Source,
    ) -> Reply<'r> {
        self.options.stats.outcome(self.cache.counters(), served);
        let x_cache = self.cache.config().x_cache_header;
        if let Some(status) = entry.for_catcher() {
            let age = Some(entry.age_at(now));
            let marked = (x_cache, served, self.cache_status_of(entry, now, source));
            mark_for_catcher(self.request, marked, age, self.options);
            return Err(Status::new(status));
        }
        let cache_status = self.cache_status_of(entry, now, source);
        let mut response = replay(self.request, entry, now, x_cache, served, cache_status);
        let remaining = u64::try_from(freshness_left(entry, now)).unwrap_or(0);
        add_downstream(
            &mut response,
            self.options.downstream,
            remaining,
            self.private,
        );
        Ok(response)
    }

    /// Says in `Cache-Status` what `entry` served at `now`, reached from `source`, is.
    fn cache_status_of(&self, entry: &StoredResponse, now: u64, source: Source) -> Option<String> {
        self.cache.cache_status().map(|cache_status| {
            let ttl = freshness_left(entry, now);
            let forwarded = |fwd, status, collapsed| Forwarded {
                fwd,
                status,
                stored: false,
                collapsed,
                ttl: Some(ttl),
                detail: None,
            };
            match source {
                Source::Cache => cache_status.hit(ttl),
                Source::Collapsed(fwd) => {
                    cache_status.forwarded(&forwarded(fwd, entry.status(), true))
                }
                Source::StandIn(status) => {
                    cache_status.forwarded(&forwarded(ForwardReason::Stale, status, false))
                }
            }
        })
    }

    /// Returns how long this key passes once its response was found not storable: no longer
    /// than an entry of the route would have lived.
    fn pass_period(&self) -> Duration {
        let route_ttl = Duration::from_secs(u64::from(self.options.ttl));
        self.cache.config().hit_for_pass.min(route_ttl)
    }

    /// Updates hit-for-pass: it begins with a response not fit to share (an error status says
    /// nothing lasting about the route: those keep coalescing), ends with one that is.
    fn update_hit_for_pass(&self, run: &Run, stored: &Stored, status: u16) {
        match stored {
            Stored::Entry { .. } => self.cache.flights().end_pass(self.key()),
            Stored::Refused(_) if status < 500 && !run.alone => {
                self.cache.flights().pass(self.key(), self.pass_period())
            }
            Stored::Refused(_) | Stored::Skipped(_) => {}
        }
    }

    /// Ends `run` once its response (of `status`) was offered to the store: hit-for-pass
    /// updated, this process's waiters given the entry, the leases given back. Returns what
    /// `Cache-Status` says of the response.
    async fn settle(
        &mut self,
        run: &Run,
        leader: Option<Leader>,
        stored: &Stored,
        status: u16,
    ) -> Option<String> {
        self.update_hit_for_pass(run, stored, status);
        let (entry, written) = stored.entry();
        if let Some(leader) = leader {
            leader.publish(entry);
        }
        // A won placeholder is replaced by the stored entry; with nothing written, it is given
        // back so that other instances stop waiting for it.
        self.leases.finish(written).await;
        let (written, ttl, reason) = match stored {
            Stored::Entry {
                entry,
                written: true,
            } => (true, Some(freshness_left(entry, unix_now())), None),
            Stored::Entry { .. } => (false, None, Some(detail::STORE_FAILED)),
            Stored::Refused(refusal) => (false, None, Some(refusal.token())),
            Stored::Skipped(why) => (false, None, Some(*why)),
        };
        let forwarded = Forwarded {
            fwd: run.fwd,
            status,
            stored: written,
            collapsed: false,
            ttl,
            detail: match run.passing && !written {
                true => Some(detail::HIT_FOR_PASS),
                false => reason,
            },
        };
        self.cache.cache_status().map(|s| s.forwarded(&forwarded))
    }

    /// Answers with what the handler's run came to: a failing handler's stand-in, or the
    /// response, stored when it may be.
    async fn finish(mut self, run: Run, leader: Option<Leader>, outcome: Reply<'r>) -> Reply<'r> {
        let status = match &outcome {
            Ok(response) => response.status().code,
            Err(status) => status.code,
        };
        if let (true, Some(stale)) = (status >= 500, &run.fallback) {
            self.leases.finish(false).await;
            let source = Source::StandIn(status);
            return self.serve_entry(stale, unix_now(), Served::Stale, source);
        }
        self.options
            .stats
            .outcome(self.cache.counters(), Served::Miss);
        if let (Some(stored), Some(updates)) = (&run.revalidates, unchanged(&outcome)) {
            let stored = Arc::clone(stored);
            return Ok(self.keep_revalidated(run, leader, &stored, &updates).await);
        }
        let mut response = match outcome {
            Ok(response) => response,
            Err(status) => return self.hand_to_catcher(run, leader, status).await,
        };
        match self.store(&run, &mut response).await {
            Ok(stored) => Ok(self.reply(run, leader, response, stored).await),
            Err(status) => {
                self.leases.finish(false).await;
                Err(status)
            }
        }
    }

    /// Hands `status`, the handler's responder's failure, to Rocket's catcher, stored when the
    /// route lists it (this process's waiters get that entry).
    async fn hand_to_catcher(
        mut self,
        run: Run,
        leader: Option<Leader>,
        status: Status,
    ) -> Reply<'r> {
        let stored = match self.store_budget(&run) {
            Ok((stamp, budget)) => {
                let (cache, request, key, options) =
                    (self.cache, self.request, self.key(), self.options);
                store::store_for_catcher(cache, request, key, options, stamp, status, budget).await
            }
            Err(why) => Stored::Skipped(why),
        };
        // Hit-for-pass, as for a response: an unlisted status starts it, a stored one ends it.
        let cache_status = self.settle(&run, leader, &stored, status.code).await;
        let x_cache = self.cache.config().x_cache_header;
        let marked = (x_cache, Served::Miss, cache_status);
        mark_for_catcher(self.request, marked, None, self.options);
        Err(status)
    }

    /// Answers with `stored`, which the handler said has not changed (304, its fields
    /// `updates`): refreshed and stored when it may be (RFC 9111 4.3.4), else served as it is,
    /// once. A client whose own conditional matches gets a 304.
    async fn keep_revalidated(
        &mut self,
        run: Run,
        leader: Option<Leader>,
        stored: &Arc<StoredResponse>,
        updates: &[(String, String)],
    ) -> Response<'r> {
        let kept = match self.store_budget(&run) {
            Ok(at) => {
                let (cache, request, key, options) =
                    (self.cache, self.request, self.key(), self.options);
                store::store_revalidated(cache, request, key, options, at, stored, updates).await
            }
            Err(why) => Stored::Skipped(why),
        };
        let cache_status = self.settle(&run, leader, &kept, 304).await;
        let entry = match &kept {
            Stored::Entry { entry, .. } => Arc::clone(entry),
            Stored::Refused(_) | Stored::Skipped(_) => Arc::clone(stored),
        };
        let (now, x_cache) = (unix_now(), self.cache.config().x_cache_header);
        let mut response = replay(
            self.request,
            &entry,
            now,
            x_cache,
            Served::Miss,
            cache_status,
        );
        let remaining = u64::try_from(freshness_left(&entry, now)).unwrap_or(0);
        add_downstream(
            &mut response,
            self.options.downstream,
            remaining,
            self.private,
        );
        response
    }

    /// Returns the stamp `run` stores with and what a store may take of the request's cache
    /// deadline, or why nothing may be stored (a `Cache-Status` detail).
    fn store_budget(&self, run: &Run) -> Result<(Generation, Duration), &'static str> {
        if policy::client_forbids_store(self.request) {
            return Err(detail::REQUEST_NO_STORE);
        }
        let stamp = run.store?;
        // The lookup and the store share one deadline: a server that answers the lookup and
        // then stalls still costs a request at most `op_timeout` in all.
        let op_timeout = self.cache.config().op_timeout;
        Ok((stamp, op_timeout.saturating_sub(self.lookup_took)))
    }

    /// Stores `response` when it may be shared.
    async fn store(&self, run: &Run, response: &mut Response<'r>) -> Result<Stored, Status> {
        let (stamp, budget) = match self.store_budget(run) {
            Ok(allowed) => allowed,
            Err(why) => return Ok(Stored::Skipped(why)),
        };
        let (cache, request, key, options) = (self.cache, self.request, self.key(), self.options);
        store::store(cache, request, key, options, stamp, response, budget).await
    }

    /// Replies with the handler's response (a bare 304 when the client has the stored one),
    /// once `run` is settled.
    async fn reply(
        mut self,
        run: Run,
        leader: Option<Leader>,
        mut response: Response<'r>,
        stored: Stored,
    ) -> Response<'r> {
        let status = response.status().code;
        let cache_status = self.settle(&run, leader, &stored, status).await;
        // After storing: the handler's own `Vary` is checked first, then the route's is merged.
        merge_vary(&mut response, self.options);
        response.remove_header(targeted::OWN_FIELD);
        // Only a response fit to share is answered with a bare 304: one that is not (it sets a
        // cookie, say) keeps every header it has.
        let fresh_for_client = matches!(stored, Stored::Entry { .. })
            && response.status().class().is_success()
            && policy::is_conditional(self.request)
            && policy::not_modified(
                self.request,
                policy::Validators {
                    etag: response.headers().get_one("ETag"),
                    last_modified: response.headers().get_one("Last-Modified"),
                },
            );
        if fresh_for_client {
            response = not_modified(
                response
                    .headers()
                    .iter()
                    .map(|h| (h.name.into_string(), h.value.into_owned())),
            );
        }
        if let Stored::Entry { entry, .. } = &stored {
            let ttl = u64::from(entry.ttl());
            add_downstream(&mut response, self.options.downstream, ttl, self.private);
        }
        let x_cache = self.cache.config().x_cache_header;
        mark(&mut response, x_cache, Served::Miss, cache_status);
        response
    }
}

/// Returns whether `request`'s answer is not for the others: the client's `no-store`, or
/// credentials on a `public` route.
fn unshareable(request: &Request<'_>, options: &RouteOptions) -> bool {
    policy::client_forbids_store(request)
        || (options.public && request.headers().contains("Authorization"))
}

/// Returns the response the handler's `answer` makes: a 304 when it answered
/// `Err(Status::NotModified)` to a run that revalidates (a status Rocket's responders refuse).
fn outcome_of<'r, 'o: 'r, R>(
    request: &'r Request<'r>,
    run: &Run,
    answer: R,
    respond: impl FnOnce(R, &'r Request<'r>) -> response::Result<'o>,
) -> Reply<'r> {
    match run.revalidates.is_some() && validators::said_unchanged(request) {
        true => Err(Status::NotModified),
        false => respond(answer, request).map(shorten),
    }
}

/// Returns the validators `entry` stores, for the handler that revalidates it.
fn stored_validators(entry: &StoredResponse) -> validators::Stored {
    let found = policy::Validators::among(entry.headers());
    validators::Stored {
        etag: found.etag.map(str::to_owned),
        last_modified: found.last_modified.map(str::to_owned),
    }
}

/// Returns the fields of a handler's answer that says the revalidated entry has not changed: a
/// response with status 304, or `Err(Status::NotModified)` (no fields).
fn unchanged(outcome: &Reply<'_>) -> Option<Vec<(String, String)>> {
    match outcome {
        Ok(response) if response.status() == Status::NotModified => Some(
            response
                .headers()
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_string()))
                .collect(),
        ),
        Err(status) if *status == Status::NotModified => Some(Vec::new()),
        _ => None,
    }
}

/// Returns seconds past its ttl `entry` may be served while refreshed, and may stand in for a
/// failing handler.
fn stale_windows(entry: &StoredResponse) -> (u64, u64) {
    (u64::from(entry.stale()), u64::from(entry.stale_if_error()))
}

fn lease_secs(config: &Config) -> u32 {
    config.lease_ttl.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

/// Returns `response` borrowing no longer than the request (`Response` is covariant).
fn shorten<'r, 'o: 'r>(response: Response<'o>) -> Response<'r> {
    response
}

/// Returns what `Cache-Status` says of a request the cache let through (`Authorization`, or the
/// cache switched off), whose handler answered `status`.
fn bypass_status(cache: &Cache, status: u16) -> Option<String> {
    let bypassed = Forwarded {
        fwd: ForwardReason::Bypass,
        status,
        stored: false,
        collapsed: false,
        ttl: None,
        detail: Some(match cache.config().enabled {
            true => detail::AUTHORIZATION,
            false => detail::DISABLED,
        }),
    };
    cache.cache_status().map(|s| s.forwarded(&bypassed))
}
