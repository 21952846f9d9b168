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
use crate::entry::StoredResponse;
use crate::flight::{Leader, Role};
use crate::generation::Stamp;
use crate::guard::CacheRequest;
use crate::http::policy;
use crate::http::render::{
    add_downstream, mark, mark_for_catcher, merge_vary, not_modified, replay,
};
use crate::http::status::{detail, ForwardReason, Forwarded};
use crate::http::{surrogate, targeted};
use crate::key::{key_for, CacheKey};
use crate::lookup::Fetched;
use crate::options::RouteOptions;
use crate::outcome::{Refusal, Served};
use crate::rate_limited_log;
use crate::settings::Config;
use crate::targets::Scope;
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
    let (mut flow, lookup) = Flow::lookup(request, cache, options, key, &scope).await;
    if let Some(served) = flow.decide(lookup).await {
        return Cached::new(served.map(tagged));
    }
    if let Some(entry) = flow.revalidates.take() {
        return Cached::new(
            Box::pin(flow.revalidate(entry, handler, respond))
                .await
                .map(tagged),
        );
    }
    // The steps after a hit are boxed, as is every step that talks to Memcached: a future holds
    // room for its largest state and is copied whole when moved, so the hit path's own future
    // stays small (a hit from the near tier never allocates one of these).
    if let Some(served) = Box::pin(flow.coalesce(&scope)).await {
        return Cached::new(served.map(tagged));
    }
    let outcome = respond(handler.await, request).map(shorten);
    Cached::new(Box::pin(flow.finish(outcome)).await.map(tagged))
}

/// What a request is answered with: a response, or a status for Rocket's catcher to render.
type Reply<'r> = Result<Response<'r>, Status>;

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
    /// The hit was rendered before a soft invalidation: it is served as expired.
    soft_purged: bool,
    /// This process's waiters for the key, when this request runs the handler for them.
    leader: Option<Leader<'r>>,
    /// The expired entry this request answers with before refreshing it (`stale`).
    revalidates: Option<Arc<StoredResponse>>,
    /// Why this request goes to the handler, if it does (`Cache-Status`'s `fwd`).
    fwd: ForwardReason,
    /// The key's last response was not storable: this request waits for no other.
    passing: bool,
    /// The page belongs to one client (a keyed guard, a cookie or credentials in its key, an
    /// authorized request on a `public` route): `downstream` sends it `private`.
    private: bool,
}

/// What became of a fresh response.
pub(super) enum Stored {
    /// Fit to share: the entry, and whether the backend took it.
    Entry(Arc<StoredResponse>, bool),
    /// Not fit to share.
    Refused(Refusal),
    /// Not offered to the store, for this reason (a `Cache-Status` detail).
    Skipped(&'static str),
}

/// How a response made from an entry reached this request.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// From the cache alone (fresh, or stale while another request refreshes it).
    Cache,
    /// From another request's handler run, which this one waited for.
    Collapsed,
    /// In place of the handler's failure, which had this status.
    StandIn(u16),
}

/// Seconds of freshness `entry` has left at `now`, negative once stale.
fn freshness_left(entry: &StoredResponse, now: u64) -> i64 {
    // The entry's ttl already counts the age it arrived with.
    let stored_for = i64::try_from(now.saturating_sub(entry.created())).unwrap_or(i64::MAX);
    i64::from(entry.ttl()) - stored_for
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
        let mut passing = false;
        let fetched = match cache.near_hit(leases.key()).filter(|_| !refresh) {
            Some(near) => {
                options.stats.near_hit(cache.counters());
                near
            }
            None => {
                // A key in hit-for-pass takes no lease: other instances would wait for it.
                passing = cache.flights().passing(leases.key());
                let lease = lease.filter(|_| !refresh && !passing);
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
            refresh,
            lookup_took,
            stamp: fetched.stamp,
            lease: Lease::None,
            may_store: false,
            fallback: None,
            soft_purged: fetched.soft_purged,
            leader: None,
            fwd: match (refresh, passing) {
                (true, _) => ForwardReason::Request,
                (false, true) => ForwardReason::Bypass,
                (false, false) => ForwardReason::UriMiss,
            },
            passing,
            revalidates: None,
            private: options.per_client
                || scope.guards.keyed()
                || (options.public && request.headers().contains("Authorization")),
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
    async fn decide(&mut self, lookup: Lookup) -> Option<Reply<'r>> {
        match lookup {
            Lookup::Hit(entry) => self.on_hit(entry).await,
            Lookup::Miss(lease) => {
                self.lease = lease;
                self.may_store = self.stamp.is_some();
                None
            }
            Lookup::Failed(error) => {
                if self.fwd == ForwardReason::UriMiss {
                    self.fwd = ForwardReason::Miss;
                }
                self.may_store = self.on_failure(error);
                None
            }
        }
    }

    /// Serves a fresh entry, or an expired one within `stale` (one request, this one or
    /// another, refreshes it after answering); else this request refreshes it, keeping it for
    /// `stale_if_error`.
    async fn on_hit(&mut self, entry: Arc<StoredResponse>) -> Option<Reply<'r>> {
        let now = unix_now();
        // The entry's ttl already counts the age it arrived with.
        let stored_for = now.saturating_sub(entry.created());
        let ttl = u64::from(entry.ttl());
        // Soft-purged, it is expired from now on: the stale windows then end where they would
        // have anyway, never later than the route allows for this entry.
        let stored_for = if self.soft_purged {
            stored_for.max(ttl)
        } else {
            stored_for
        };
        // The entry's own windows: the route's, or those its response set.
        let (stale, stale_if_error) = stale_windows(&entry);
        if stored_for < ttl || (stale.max(stale_if_error) == 0 && !self.soft_purged) {
            return Some(self.serve_entry(&entry, now, Served::Hit, Source::Cache));
        }
        self.fwd = ForwardReason::Stale;
        if stored_for < ttl + stale {
            // Stale while revalidating: every request is served the stale entry at once; the
            // one that leads the key's flight in this process tries, after its reply, for the
            // companion lease that elects one refresher across instances.
            match self.cache.flights().join(self.key()) {
                Role::Leader(guard) => {
                    self.leader = Some(guard);
                    self.may_store = true;
                    self.revalidates = Some(entry);
                    return None;
                }
                _ => return Some(self.serve_entry(&entry, now, Served::Stale, Source::Cache)),
            }
        }
        if stored_for < ttl + stale_if_error {
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
        matches!(error, BackendError::Undecodable) && self.stamp.is_some()
    }

    /// `entry` as the response, counted as `served`, which came from `source`; an entry of a
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

    /// What `Cache-Status` says of `entry` served at `now`, reached from `source`.
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
                Source::Collapsed => {
                    cache_status.forwarded(&forwarded(self.fwd, entry.status(), true))
                }
                Source::StandIn(status) => {
                    cache_status.forwarded(&forwarded(ForwardReason::Stale, status, false))
                }
            }
        })
    }

    /// How long this key passes once its response was found not storable: no longer than an
    /// entry of the route would have lived.
    fn pass_period(&self) -> Duration {
        let route_ttl = Duration::from_secs(u64::from(self.options.ttl));
        self.cache.config().hit_for_pass.min(route_ttl)
    }

    /// Hit-for-pass: begins with a response not fit to share (an error status says nothing
    /// lasting about the route: those keep coalescing), ends with one that is.
    fn update_hit_for_pass(&self, stored: &Stored, status: u16) {
        match stored {
            Stored::Entry(..) => self.cache.flights().end_pass(self.key()),
            Stored::Refused(_) if status < 500 => {
                self.cache.flights().pass(self.key(), self.pass_period())
            }
            Stored::Refused(_) | Stored::Skipped(_) => {}
        }
    }

    /// What `Cache-Status` says of a response the handler produced for this request.
    fn forwarded(&self, stored: &Stored, status: u16) -> Forwarded {
        let (written, ttl, reason) = match stored {
            Stored::Entry(entry, true) => (true, Some(freshness_left(entry, unix_now())), None),
            Stored::Entry(_, false) => (false, None, Some(detail::STORE_FAILED)),
            Stored::Refused(refusal) => (false, None, Some(refusal.token())),
            Stored::Skipped(why) => (false, None, Some(*why)),
        };
        Forwarded {
            fwd: self.fwd,
            status,
            stored: written,
            collapsed: false,
            ttl,
            detail: match self.passing && !written {
                true => Some(detail::HIT_FOR_PASS),
                false => reason,
            },
        }
    }

    /// Run's aftermath: a failing handler's stand-in, or the response, stored when it may be,
    /// and the reply.
    async fn finish(mut self, outcome: Reply<'r>) -> Reply<'r> {
        let failed = match &outcome {
            Ok(response) => response.status().code >= 500,
            Err(status) => status.code >= 500,
        };
        if let (true, Some(stale)) = (failed, &self.fallback) {
            self.leases.finish(false).await;
            let status = match &outcome {
                Ok(response) => response.status().code,
                Err(status) => status.code,
            };
            let source = Source::StandIn(status);
            return self.serve_entry(stale, unix_now(), Served::Stale, source);
        }
        self.options
            .stats
            .outcome(self.cache.counters(), Served::Miss);
        let mut response = match outcome {
            Ok(response) => response,
            Err(status) => return self.hand_to_catcher(status).await,
        };
        match self.store(&mut response).await {
            Ok(stored) => Ok(self.reply(response, stored).await),
            Err(status) => {
                self.leases.finish(false).await;
                Err(status)
            }
        }
    }

    /// The handler's responder failed with `status`: stored when the route lists it (this
    /// process's waiters get that entry), and handed to Rocket's catcher.
    async fn hand_to_catcher(mut self, status: Status) -> Reply<'r> {
        let outcome = match self.store_budget() {
            Ok(budget) => {
                let stamp = self.stamp.unwrap_or_default();
                let (cache, request, key, options) =
                    (self.cache, self.request, self.key(), self.options);
                let stored =
                    store::store_for_catcher(cache, request, key, options, stamp, status, budget)
                        .await;
                match stored {
                    Some((entry, written)) => Stored::Entry(entry, written),
                    None => Stored::Refused(Refusal::Status),
                }
            }
            Err(why) => Stored::Skipped(why),
        };
        // Hit-for-pass, as for a response: an unlisted status starts it, a stored one ends it.
        self.update_hit_for_pass(&outcome, status.code);
        let (entry, written) = match &outcome {
            Stored::Entry(entry, written) => (Some(Arc::clone(entry)), *written),
            Stored::Refused(_) | Stored::Skipped(_) => (None, false),
        };
        if let Some(leader) = self.leader.take() {
            leader.publish(entry);
        }
        self.leases.finish(written).await;
        let x_cache = self.cache.config().x_cache_header;
        let cache_status = self.cache.cache_status();
        let cache_status =
            cache_status.map(|s| s.forwarded(&self.forwarded(&outcome, status.code)));
        let marked = (x_cache, Served::Miss, cache_status);
        mark_for_catcher(self.request, marked, None, self.options);
        Err(status)
    }

    /// What a store may take of the request's cache deadline, or why nothing may be stored
    /// (a `Cache-Status` detail): the client said `no-store`, or the lookup failed.
    fn store_budget(&self) -> Result<Duration, &'static str> {
        if policy::client_forbids_store(self.request) {
            return Err(detail::REQUEST_NO_STORE);
        }
        if !self.may_store {
            return Err(detail::BACKEND_ERROR);
        }
        // The lookup and the store share one deadline: a server that answers the lookup and
        // then stalls still costs a request at most `op_timeout` in all.
        Ok(self
            .cache
            .config()
            .op_timeout
            .saturating_sub(self.lookup_took))
    }

    /// Store: the response, when it may be shared.
    async fn store(&self, response: &mut Response<'r>) -> Result<Stored, Status> {
        let budget = match self.store_budget() {
            Ok(budget) => budget,
            Err(why) => return Ok(Stored::Skipped(why)),
        };
        let stamp = self.stamp.unwrap_or_default();
        let (cache, request, key, options) = (self.cache, self.request, self.key(), self.options);
        let stored = store::store(cache, request, key, options, stamp, response, budget).await?;
        Ok(match stored {
            Ok((entry, written)) => Stored::Entry(entry, written),
            Err(refusal) => Stored::Refused(refusal),
        })
    }

    /// Reply: this process's waiters get the stored entry, the leases go back, and the client
    /// gets the response (a bare 304 when it has the stored one).
    async fn reply(mut self, mut response: Response<'r>, stored: Stored) -> Response<'r> {
        let status = response.status().code;
        self.update_hit_for_pass(&stored, status);
        let (entry, written) = match &stored {
            Stored::Entry(entry, written) => (Some(Arc::clone(entry)), *written),
            Stored::Refused(_) | Stored::Skipped(_) => (None, false),
        };
        let shared = entry.is_some();
        if let Some(leader) = self.leader.take() {
            leader.publish(entry);
        }
        // A won placeholder is replaced by the stored entry; with nothing written, it is given
        // back so that other instances stop waiting for it.
        self.leases.finish(written).await;
        // After storing: the handler's own `Vary` is checked first, then the route's is merged.
        merge_vary(&mut response, self.options);
        response.remove_header(targeted::OWN_FIELD);
        // Only a response fit to share is answered with a bare 304: one that is not (it sets a
        // cookie, say) keeps every header it has.
        let fresh_for_client = shared
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
        if let Stored::Entry(entry, _) = &stored {
            let ttl = u64::from(entry.ttl());
            add_downstream(&mut response, self.options.downstream, ttl, self.private);
        }
        let cache_status = self.cache.cache_status();
        let cache_status = cache_status.map(|s| s.forwarded(&self.forwarded(&stored, status)));
        let x_cache = self.cache.config().x_cache_header;
        mark(&mut response, x_cache, Served::Miss, cache_status);
        response
    }
}

/// Seconds past its ttl `entry` may be served while refreshed, and may stand in for a failing
/// handler.
fn stale_windows(entry: &StoredResponse) -> (u64, u64) {
    (u64::from(entry.stale()), u64::from(entry.stale_if_error()))
}

fn lease_secs(config: &Config) -> u32 {
    config.lease_ttl.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

/// A response borrowing no longer than the request (`Response` is covariant).
fn shorten<'r, 'o: 'r>(response: Response<'o>) -> Response<'r> {
    response
}

/// What `Cache-Status` says of a request the cache let through (`Authorization`, or the cache
/// switched off), whose handler answered `status`.
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
