//! The request path every cached handler takes: key, lookup, run on a miss, store when safe.

use std::borrow::Cow;
use std::future::Future;
use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::tokio::io::AsyncReadExt;
use rocket::{Request, Response};

use crate::backend::{BackendError, Lease, Lookup};
use crate::cache::Cache;
use crate::entry::StoredResponse;
use crate::flight::{follow, Role};
use crate::guard::CacheRequest;
use crate::invalidation::{GenId, Scope};
use crate::key::{CacheKey, KeyParts, Varied};
use crate::leases::Leases;
use crate::policy::{self, Refusal};
use crate::report;
use crate::stats::{RouteStats, Served};

/// A route's options, fixed at compile time by `#[cached_route(...)]`, and its counters.
#[derive(Debug)]
pub struct RouteOptions {
    pub(crate) ttl: u32,
    pub(crate) vary: &'static [&'static str],
    pub(crate) vary_cookies: &'static [&'static str],
    pub(crate) public: bool,
    pub(crate) query: QueryKey,
    pub(crate) statuses: &'static [u16],
    pub(crate) honor_no_cache: bool,
    /// Seconds past the TTL an entry may be served while one request refreshes it.
    pub(crate) stale: u32,
    /// Seconds past the TTL an entry may stand in for a failing handler.
    pub(crate) stale_if_error: u32,
    pub(crate) stats: RouteStats,
}

/// Which query parameters the key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKey {
    /// Every parameter, normalized.
    All,
    /// Every parameter, in the order received: the route collects the whole query into one
    /// value (`?<rest..>`), which may keep the pairs' order (a `Vec`).
    AllInOrder,
    /// These names, and any pair whose name could hide one of them.
    Only(&'static [&'static str]),
    /// None.
    Ignored,
}

impl RouteOptions {
    pub const fn new(ttl: u32) -> RouteOptions {
        RouteOptions {
            ttl,
            vary: &[],
            vary_cookies: &[],
            public: false,
            query: QueryKey::All,
            statuses: &[200],
            honor_no_cache: false,
            stale: 0,
            stale_if_error: 0,
            stats: RouteStats::new(),
        }
    }

    pub const fn stale(mut self, seconds: u32) -> RouteOptions {
        self.stale = seconds;
        self
    }

    pub const fn stale_if_error(mut self, seconds: u32) -> RouteOptions {
        self.stale_if_error = seconds;
        self
    }

    /// How long an entry is kept past its TTL.
    fn keep(&self) -> u32 {
        self.stale.max(self.stale_if_error)
    }

    pub const fn vary(mut self, headers: &'static [&'static str]) -> RouteOptions {
        self.vary = headers;
        self
    }

    pub const fn vary_cookies(mut self, cookies: &'static [&'static str]) -> RouteOptions {
        self.vary_cookies = cookies;
        self
    }

    pub const fn public(mut self) -> RouteOptions {
        self.public = true;
        self
    }

    pub const fn query_only(mut self, names: &'static [&'static str]) -> RouteOptions {
        self.query = QueryKey::Only(names);
        self
    }

    pub const fn query_in_order(mut self) -> RouteOptions {
        self.query = QueryKey::AllInOrder;
        self
    }

    pub const fn ignore_query(mut self) -> RouteOptions {
        self.query = QueryKey::Ignored;
        self
    }

    pub const fn statuses(mut self, statuses: &'static [u16]) -> RouteOptions {
        self.statuses = statuses;
        self
    }

    pub const fn honor_no_cache(mut self) -> RouteOptions {
        self.honor_no_cache = true;
        self
    }
}

/// What a cached handler returns: a finished response (hit or fresh) or an error status for
/// Rocket's catchers. `P` is the handler's own return type, kept so that Rocket still finds
/// its sentinels; `'o` is how long the response may borrow (a streamed body may borrow the
/// request).
pub struct Cached<'o, P> {
    outcome: Result<Response<'o>, Status>,
    _handler_returns: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for Cached<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(response) => f.debug_tuple("Cached").field(&response.status()).finish(),
            Err(status) => f
                .debug_tuple("Cached")
                .field(&Err::<(), _>(status))
                .finish(),
        }
    }
}

impl<'o, P> Cached<'o, P> {
    fn new(outcome: Result<Response<'o>, Status>) -> Cached<'o, P> {
        Cached {
            outcome,
            _handler_returns: PhantomData,
        }
    }
}

impl<'r, 'o: 'r, P> Responder<'r, 'o> for Cached<'o, P> {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'o> {
        self.outcome
    }
}

/// Stands in for a handler's `impl Responder` return type, which cannot be named.
#[derive(Debug)]
pub enum Opaque {}

/// Turns the handler's responder into a response. Generated code passes it to [`serve`] at the
/// span of the handler's return type, so that a type that is not a `Responder` is reported
/// there, once.
pub fn respond<'r, 'o: 'r, R: Responder<'r, 'o>>(
    responder: R,
    request: &'r Request<'_>,
) -> response::Result<'o> {
    responder.respond_to(request)
}

/// Serves `request` from the cache, or runs `handler` (an unpolled future: on a hit it is
/// dropped without running) and stores its response when that is safe.
///
/// Misses for one key are coalesced: in this process, concurrent requests wait for the one
/// that runs the handler; across processes, that one holds the key's lease in the backend and
/// the others poll for its entry. Waits are bounded by `lease_wait`, after which a request runs
/// the handler itself. With `stale`, an expired entry is served (`X-Cache: STALE`) while one
/// request refreshes it; with `stale_if_error`, it stands in for a failing handler.
pub async fn serve<'r, 'o, P, R>(
    guard: CacheRequest<'r>,
    options: &'static RouteOptions,
    scope: Scope,
    handler: impl Future<Output = R>,
    respond: impl FnOnce(R, &'r Request<'r>) -> response::Result<'o>,
) -> Cached<'r, P>
where
    'o: 'r,
{
    let request = guard.request;
    let cache = Cache::for_request(request);
    let config = cache.config();
    let x_cache = config.x_cache_header;
    let route = match request.route() {
        Some(route) if policy::bypass(request, options).is_none() => route,
        // No route (not reachable from a handler) or a per-principal request.
        _ => {
            options.stats.outcome(Served::Bypass);
            let outcome = respond(handler.await, request).map(|mut response| {
                merge_vary(&mut response, options);
                mark(&mut response, x_cache, "BYPASS");
                response
            });
            return Cached::new(outcome.map(shorten));
        }
    };

    options.stats.register(route);
    let key = key_for(request, route, &config.namespace, options);
    let lookup_started = Instant::now();
    let refresh = options.honor_no_cache && policy::client_wants_fresh(request);
    // With coalescing, a miss is followed by a lease read (hits pay nothing for it).
    let lease = config.coalesce.then(|| lease_secs(config));
    // The lookup's share of the request's cache deadline (waiting on others is not counted:
    // the store after it gets what the lookup left).
    // The invalidation counters the entry depends on (read only after an invalidation or on a
    // miss; a hit in the current epoch reads the epoch alone).
    let counters = || scope.counters(request);
    // Every lease this request takes from here is given back, whatever await it is dropped
    // at (the client went away).
    let mut leases = Leases::new(cache, &key);
    let fetched = leases.lookup(counters, lease.filter(|_| !refresh)).await;
    let lookup_took = lookup_started.elapsed();
    options.stats.lookup(lookup_took);
    if fetched.invalidated {
        options.stats.invalidated();
    }
    // What the stored entry will be stamped with: the counters as they were before the handler
    // ran, so that an invalidation during the run is not lost.
    let stamp = fetched.stamp;
    // A hit from an earlier epoch, still valid, is recorded in this one, off the request path.
    if let (Lookup::Hit(entry), Some(restamp), Some((epoch, _))) =
        (&fetched.lookup, fetched.restamp, stamp)
    {
        if let Some(claim) = cache.claim_restamp(&key) {
            let entry = Arc::clone(entry);
            tokio::spawn(async move {
                let store = claim.cache.store();
                store.restamp(&claim.key, entry, epoch, restamp).await;
            });
        }
    }
    let lookup = match fetched.lookup {
        Lookup::Hit(_) if refresh => Lookup::Miss(Lease::None),
        lookup => lookup,
    };
    // An expired entry kept for `stale_if_error`, if the handler fails.
    let mut fallback: Option<Arc<StoredResponse>> = None;
    let mut leader = None;
    // Whether the lookup's lease read made this request the one to recompute the entry.
    let mut lease_state = Lease::None;
    let may_store = match lookup {
        Lookup::Hit(entry) => {
            let now = unix_now();
            let age = now.saturating_sub(entry.created());
            let ttl = u64::from(entry.ttl());
            if age < ttl || options.keep() == 0 {
                options.stats.outcome(Served::Hit);
                return Cached::new(Ok(replay(request, &entry, now, x_cache, "HIT")));
            }
            if age < ttl + u64::from(options.stale) {
                // Stale while revalidating: one request refreshes, the others are served the
                // stale entry at once.
                match cache.flights().join(&key) {
                    Role::Leader(guard) if leases.take_companion(lease_secs(config)).await => {
                        leader = Some(guard);
                    }
                    _ => {
                        options.stats.outcome(Served::Stale);
                        return Cached::new(Ok(replay(request, &entry, now, x_cache, "STALE")));
                    }
                }
            }
            if age < ttl + u64::from(options.stale_if_error) {
                fallback = Some(entry);
            }
            true
        }
        Lookup::Miss(state) => {
            lease_state = state;
            stamp.is_some()
        }
        // The breaker already said so, once: a skipped server is a quiet miss.
        Lookup::Failed(BackendError::ServerSkipped) => false,
        Lookup::Failed(error) => {
            options.stats.backend_error();
            let limiter = match error {
                BackendError::Undecodable => &report::UNDECODABLE,
                _ => &report::LOOKUP_FAILED,
            };
            report::warn(
                limiter,
                format_args!(
                    "lookup failed ({}): {error}; serving as a miss",
                    error.cause()
                ),
            );
            // A server that just failed would likely cost the deadline again; an entry that
            // did not decode is replaced.
            matches!(error, BackendError::Undecodable) && stamp.is_some()
        }
    };

    // Coalesce misses. Only when the backend answered: a failing backend must never turn
    // waiting into a queue (each request then runs the handler, as without a cache).
    if may_store && leader.is_none() && !refresh && config.coalesce {
        let role = cache.flights().join(&key);
        match (lease_state, role) {
            // This request won the backend's lease: it runs the handler whatever happens here,
            // and leads this process's waiters if none is leading yet.
            (Lease::Won(_), Role::Leader(guard)) => leader = Some(guard),
            (Lease::Won(_), Role::Follower(_)) => {}
            (_, Role::Follower(receiver)) => {
                let waited = tokio::time::timeout(config.lease_wait, follow(receiver)).await;
                // Rendered under the counters this request read: not from before an
                // invalidation it follows.
                let same_counters =
                    |e: &Arc<StoredResponse>| stamp.map(|(_, s)| s) == Some(e.stamp());
                if let Ok(Some(entry)) = waited.map(|e| e.filter(same_counters)) {
                    options.stats.outcome(Served::Hit);
                    return Cached::new(Ok(replay(request, &entry, unix_now(), x_cache, "HIT")));
                }
                // The leader published nothing usable or took too long: run it here.
            }
            (Lease::Busy, Role::Leader(guard)) => {
                match await_other_instance(&mut leases, config, &counters()).await {
                    Awaited::Entry(entry) => {
                        guard.publish(Some(Arc::clone(&entry)));
                        options.stats.outcome(Served::Hit);
                        return Cached::new(Ok(replay(
                            request,
                            &entry,
                            unix_now(),
                            x_cache,
                            "HIT",
                        )));
                    }
                    // Either way this request runs the handler; a lease it won is in `leases`.
                    Awaited::Leased | Awaited::GaveUp => {}
                }
                leader = Some(guard);
            }
            (Lease::None, Role::Leader(guard)) => leader = Some(guard),
        }
    }

    let outcome = respond(handler.await, request);
    let failed = match &outcome {
        Ok(response) => response.status().code >= 500,
        Err(status) => status.code >= 500,
    };
    if let (true, Some(stale)) = (failed, &fallback) {
        leases.finish(false).await;
        options.stats.outcome(Served::Stale);
        return Cached::new(Ok(replay(request, stale, unix_now(), x_cache, "STALE")));
    }
    options.stats.outcome(Served::Miss);
    let mut response = match outcome {
        Ok(response) => shorten(response),
        Err(status) => {
            leases.finish(false).await;
            options.stats.refused(Refusal::Status);
            return Cached::new(Err(status));
        }
    };
    let mut stored = None;
    let mut written = false;
    if may_store && !policy::client_forbids_store(request) {
        // The lookup and the store share one deadline: a server that answers the lookup and
        // then stalls still costs a request at most `op_timeout` in all.
        let budget = config.op_timeout.saturating_sub(lookup_took);
        let stamp = stamp.unwrap_or_default();
        match store(cache, request, &key, options, stamp, &mut response, budget).await {
            Ok(Some((entry, set))) => {
                stored = Some(entry);
                written = set;
            }
            Ok(None) => {}
            Err(status) => {
                leases.finish(false).await;
                return Cached::new(Err(status));
            }
        }
    }
    if let Some(leader) = leader {
        leader.publish(stored.clone());
    }
    // A won placeholder is replaced by the stored entry; with nothing written, it is given
    // back so that other instances stop waiting for it.
    leases.finish(written).await;
    // After storing: the handler's own `Vary` is checked first, then the route's is merged.
    merge_vary(&mut response, options);
    // Only a response fit to share is answered with a bare 304: one that is not (it sets a
    // cookie, say) keeps every header it has.
    let etag = response.headers().get_one("ETag").map(str::to_owned);
    let fresh_for_client = stored.is_some()
        && response.status().class().is_success()
        && etag.is_some_and(|etag| policy::not_modified(request, &etag));
    if fresh_for_client {
        response = not_modified(
            response
                .headers()
                .iter()
                .map(|h| (h.name.into_string(), h.value.into_owned())),
        );
    }
    mark(&mut response, x_cache, "MISS");
    Cached::new(Ok(response))
}

fn lease_secs(config: &crate::Config) -> u32 {
    config.lease_ttl.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

/// What waiting on another instance's lease came to.
enum Awaited {
    /// It stored the entry.
    Entry(Arc<StoredResponse>),
    /// It gave the lease back without storing (the response was not storable), or the lease
    /// expired: this request now holds it (given back through its `Leases`).
    Leased,
    /// `lease_wait` passed, or the backend failed: run the handler without a lease.
    GaveUp,
}

/// Another instance holds the key's lease: poll for the entry it stores with lease reads,
/// backing off, for at most `lease_wait`. A holder that stored nothing gives the placeholder
/// back, and the next read here wins the lease (held by `leases`) instead of waiting out the
/// deadline.
async fn await_other_instance(
    leases: &mut Leases<'_>,
    config: &crate::Config,
    counters: &[GenId],
) -> Awaited {
    let deadline = Instant::now() + config.lease_wait;
    let mut pause = Duration::from_millis(5);
    while Instant::now() + pause < deadline {
        tokio::time::sleep(pause).await;
        let lease = Some(lease_secs(config));
        match leases.lookup(|| counters.to_vec(), lease).await.lookup {
            Lookup::Hit(entry) => return Awaited::Entry(entry),
            Lookup::Miss(Lease::Won(_)) => return Awaited::Leased,
            Lookup::Miss(Lease::Busy) => pause = (pause * 2).min(Duration::from_millis(100)),
            Lookup::Miss(Lease::None) | Lookup::Failed(_) => return Awaited::GaveUp,
        }
    }
    Awaited::GaveUp
}

/// Adds the route's `vary` headers (and `Cookie` for `vary_cookies`) to the response's `Vary`.
fn merge_vary(response: &mut Response<'_>, options: &RouteOptions) {
    if options.vary.is_empty() && options.vary_cookies.is_empty() {
        return;
    }
    let existing: Vec<&str> = response.headers().get("Vary").collect();
    let existing = (!existing.is_empty()).then(|| existing.join(", "));
    if let Some(merged) = policy::merged_vary(existing.as_deref(), options) {
        response.set_raw_header("Vary", merged);
    }
}

/// A `304 Not Modified` carrying the validators and cache headers of the full response.
fn not_modified<'r>(headers: impl Iterator<Item = (String, String)>) -> Response<'r> {
    let mut builder = Response::build();
    builder.status(Status::NotModified);
    for (name, value) in headers.filter(|(name, _)| policy::is_not_modified_header(name)) {
        builder.raw_header_adjoin(name, value);
    }
    builder.finalize()
}

/// The key `request`, served by `route` with `options`, is stored under.
pub fn key_for(
    request: &Request<'_>,
    route: &rocket::Route,
    namespace: &str,
    options: &RouteOptions,
) -> CacheKey {
    // Both the host the handler sees and the raw `Host` values: over HTTP/2 the handler's host
    // is `:authority`, which a `host` header sent alongside may contradict.
    let host_headers = HostHeaders::of(request);
    let mut parts = KeyParts::of(request, route, host_headers.as_slice());
    parts.query_key = options.query;
    if options.vary.is_empty() && options.vary_cookies.is_empty() {
        return parts.build(namespace);
    }
    let headers = options.vary.iter().map(|name| {
        let values: Vec<&str> = request.headers().get(name).collect();
        Varied {
            cookie: false,
            name,
            present: !values.is_empty(),
            values,
        }
    });
    let cookies = options.vary_cookies.iter().map(|name| {
        let value = request.cookies().get(name).map(|cookie| cookie.value());
        Varied {
            cookie: true,
            name,
            present: value.is_some(),
            values: value.into_iter().collect(),
        }
    });
    let varied: Vec<Varied<'_>> = headers.chain(cookies).collect();
    parts.varied = &varied;
    parts.build(namespace)
}

/// The request's raw `Host` values: borrowed in place for the usual zero or one, collected
/// only when a request repeats the header.
enum HostHeaders<'a> {
    Absent,
    One(&'a str),
    Many(Vec<&'a str>),
}

impl<'a> HostHeaders<'a> {
    fn of(request: &'a Request<'_>) -> HostHeaders<'a> {
        let mut values = request.headers().get("Host");
        match (values.next(), values.next()) {
            (None, _) => HostHeaders::Absent,
            (Some(only), None) => HostHeaders::One(only),
            (Some(first), Some(second)) => {
                HostHeaders::Many([first, second].into_iter().chain(values).collect())
            }
        }
    }

    fn as_slice(&self) -> &[&'a str] {
        match self {
            HostHeaders::Absent => &[],
            HostHeaders::One(only) => std::slice::from_ref(only),
            HostHeaders::Many(all) => all,
        }
    }
}

fn mark(response: &mut Response<'_>, enabled: bool, state: &'static str) {
    if enabled {
        response.set_raw_header("X-Cache", state);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// A response borrowing no longer than the request (`Response` is covariant).
fn shorten<'r, 'o: 'r>(response: Response<'o>) -> Response<'r> {
    response
}

/// A stored entry as a response, with `Age` as of `now` (unix seconds). The body shares the entry's allocation; header
/// names and the most common values come from static strings, so a typical hit allocates only
/// for its less common header values.
fn replay<'r>(
    request: &Request<'_>,
    entry: &StoredResponse,
    now: u64,
    x_cache: bool,
    state: &'static str,
) -> Response<'r> {
    // Conditional requests are the exception: look for the entry's ETag only when asked.
    let revalidated = (200..300).contains(&entry.status())
        && request.headers().contains("If-None-Match")
        && entry
            .headers()
            .find(|(name, _)| name.eq_ignore_ascii_case("ETag"))
            .is_some_and(|(_, etag)| policy::not_modified(request, etag));
    let mut builder = if revalidated {
        Response::build_from(not_modified(
            entry
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
        ))
    } else {
        let mut builder = Response::build();
        builder.status(Status::new(entry.status()));
        // `adjoin`: one map operation per header (the names were filtered on the way in, so
        // none of these is already present).
        for (name, value) in entry.headers() {
            builder.raw_header_adjoin(interned(name), interned(value));
        }
        builder.sized_body(entry.body().len(), Cursor::new(entry.body_bytes()));
        builder
    };
    builder.raw_header_adjoin("Age", age_text(now.saturating_sub(entry.created())));
    if x_cache {
        builder.raw_header_adjoin("X-Cache", state);
    }
    builder.finalize()
}

/// `text` as a static string when it is a common header name or value, else a copy.
fn interned(text: &str) -> Cow<'static, str> {
    const COMMON: &[&str] = &[
        "Content-Type",
        "Cache-Control",
        "ETag",
        "Last-Modified",
        "Expires",
        "Content-Language",
        "Content-Encoding",
        "Content-Disposition",
        "Link",
        "text/html; charset=utf-8",
        "text/plain; charset=utf-8",
        "application/json",
        "text/css; charset=utf-8",
        "text/javascript",
        "application/xml",
        "image/png",
        "image/svg+xml",
    ];
    match COMMON.iter().find(|common| **common == text) {
        Some(common) => Cow::Borrowed(common),
        None => Cow::Owned(text.to_owned()),
    }
}

/// `Age` values, without an allocation for the common ones.
fn age_text(age: u64) -> Cow<'static, str> {
    const SMALL: [&str; 16] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
    ];
    match SMALL.get(age as usize) {
        Some(text) => Cow::Borrowed(text),
        None => Cow::Owned(age.to_string()),
    }
}

/// Stores `response` when the policy allows; whether it did (a backend failure still counts:
/// the response was fit to share). Reading the body replaces it with the bytes read; `Err` only
/// when the body failed while being read, which leaves nothing to send.
async fn store(
    cache: &Cache,
    request: &Request<'_>,
    key: &CacheKey,
    options: &RouteOptions,
    stamp: (u64, u64),
    response: &mut Response<'_>,
    budget: Duration,
) -> Result<Option<(Arc<StoredResponse>, bool)>, Status> {
    let authorized = request.headers().contains("Authorization");
    let checked = policy::check_headers(
        response.status().code,
        response.headers().iter(),
        options,
        SystemTime::now(),
        authorized,
    );
    let verdict = match checked {
        Ok(_) if policy::has_pending_cookies(request) => Err(Refusal::SetCookie),
        Ok(ttl) => read_entry(cache, options, ttl, stamp, response).await?,
        Err(Refusal::Vary) => {
            let vary = response.headers().get("Vary").collect::<Vec<_>>().join(",");
            let outside = policy::vary_outside_key(&vary, options).unwrap_or("*");
            report::warn(
                &report::VARY_OUTSIDE_KEY,
                format_args!(
                    "not stored: {} responded with `Vary: {outside}`, which the key does not hold; \
                     add `vary = [\"{outside}\"]` to its #[cached_route] (or drop the header)",
                    request.uri().path()
                ),
            );
            Err(Refusal::Vary)
        }
        Err(refusal) => Err(refusal),
    };
    match verdict {
        Ok(entry) => {
            let entry = Arc::new(entry);
            let stored = cache
                .store()
                .set(key, Arc::clone(&entry), options.keep(), budget)
                .await;
            match &stored {
                Ok(()) => {
                    options.stats.stored(entry.frame().len());
                }
                Err(BackendError::ServerSkipped) => {}
                Err(_) => {
                    options.stats.backend_error();
                }
            }
            if let Some(error) = stored
                .as_ref()
                .err()
                .filter(|e| !matches!(e, BackendError::ServerSkipped))
            {
                report::warn(
                    &report::STORE_FAILED,
                    format_args!("store failed ({}): {error}", error.cause()),
                );
            }
            Ok(Some((entry, stored.is_ok())))
        }
        Err(refusal) => {
            log::debug!("cache: not stored: {refusal}");
            options.stats.refused(refusal);
            Ok(None)
        }
    }
}

/// What [`generated_etag`] returns has this length: the size limit counts it before the body
/// is read.
const GENERATED_ETAG_SHAPE: &str = "\"0123456789abcdef0123456789abcdef\"";

/// A strong validator for a success without one, hashed from the status, the representation
/// headers and the body (the same bytes as gzip or as another type are another
/// representation): 32 hex digits, quoted.
fn generated_etag(response: &Response<'_>, body: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&response.status().code.to_le_bytes());
    for name in ["Content-Type", "Content-Encoding", "Content-Language"] {
        for value in response.headers().get(name) {
            hasher.update(&(value.len() as u64).to_le_bytes());
            hasher.update(value.as_bytes());
        }
        hasher.update(&[0xff]);
    }
    hasher.update(body);
    let etag = format!("\"{}\"", &hasher.finalize().to_hex()[..32]);
    debug_assert_eq!(etag.len(), GENERATED_ETAG_SHAPE.len());
    etag
}

/// The entry for a storable response, or why not; reads the body when its size allows.
async fn read_entry(
    cache: &Cache,
    options: &RouteOptions,
    ttl: u32,
    (epoch, stamp): (u64, u64),
    response: &mut Response<'_>,
) -> Result<Result<StoredResponse, Refusal>, Status> {
    let limit = cache.config().max_item_size;
    let size = match response.body_mut().size().await {
        Some(size) => size,
        None => return Ok(Err(Refusal::Streamed)),
    };
    // The stored entry carries the route's merged `Vary`.
    merge_vary(response, options);
    // Owned: the body is read from `response` below.
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|header| policy::is_stored_header(header.name().as_str()))
        .map(|header| (header.name().to_string(), header.value().to_string()))
        .collect();
    let header_pairs = || {
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    };
    // Counted with the validator added below, so that no frame over the limit reaches the
    // backend (which would refuse it as an error, after the body was read for nothing).
    let adds_etag = response.status().class().is_success() && !response.headers().contains("ETag");
    let etag = adds_etag.then_some(("ETag", GENERATED_ETAG_SHAPE));
    if StoredResponse::frame_len(header_pairs().chain(etag), size) > limit {
        return Ok(Err(Refusal::TooLarge));
    }
    // Exactly the announced size: no spare capacity is kept in the store.
    let mut body = vec![0; size];
    if let Err(error) = response.body_mut().read_exact(&mut body).await {
        log::error!("cache: reading the response body failed: {error}");
        return Err(Status::InternalServerError);
    }
    // Every stored success carries a validator: the handler's own, else a generated one.
    let mut headers = headers;
    if adds_etag {
        let etag = generated_etag(response, &body);
        response.set_raw_header("ETag", etag.clone());
        headers.push(("ETag".to_owned(), etag));
    }
    let header_pairs = || {
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    };
    let entry = StoredResponse::build_stamped(
        response.status().code,
        header_pairs(),
        &body,
        unix_now(),
        ttl,
        epoch,
        stamp,
    );
    let Ok(entry) = entry else {
        response.set_sized_body(body.len(), Cursor::new(body));
        return Ok(Err(Refusal::Unframeable));
    };
    // The client is served the stored copy of the body.
    response.set_sized_body(entry.body().len(), Cursor::new(entry.body_bytes()));
    Ok(Ok(entry))
}
