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

use crate::backend::{BackendError, Lookup};
use crate::cache::Cache;
use crate::entry::StoredResponse;
use crate::guard::CacheRequest;
use crate::key::{CacheKey, KeyParts};
use crate::policy::{self, Refusal};
use crate::report;

/// A route's options, fixed at compile time by `#[cached_route(...)]`.
#[derive(Debug, Clone, Copy)]
pub struct RouteOptions {
    ttl: u32,
}

impl RouteOptions {
    pub const fn new(ttl: u32) -> RouteOptions {
        RouteOptions { ttl }
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
pub async fn serve<'r, 'o, P, R>(
    guard: CacheRequest<'r>,
    options: &'static RouteOptions,
    handler: impl Future<Output = R>,
    respond: impl FnOnce(R, &'r Request<'r>) -> response::Result<'o>,
) -> Cached<'r, P>
where
    'o: 'r,
{
    let request = guard.request;
    let cache = Cache::for_request(request);
    let x_cache = cache.config().x_cache_header;
    let route = match request.route() {
        Some(route) if policy::bypass(request).is_none() => route,
        // No route (not reachable from a handler) or a per-principal request.
        _ => {
            let outcome = respond(handler.await, request).map(|mut response| {
                mark(&mut response, x_cache, "BYPASS");
                response
            });
            return Cached::new(outcome.map(shorten));
        }
    };

    let key = key_for(request, route, &cache.config().namespace);
    let lookup_started = Instant::now();
    let lookup = cache.store().get(&key).await;
    let may_store = match lookup {
        Lookup::Hit(entry) => return Cached::new(Ok(replay(&entry, x_cache))),
        Lookup::Miss => true,
        Lookup::Failed(error) => {
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
            matches!(error, BackendError::Undecodable)
        }
    };

    // Measured before the handler runs: its time is not the cache's.
    let lookup_took = lookup_started.elapsed();
    let mut response = match respond(handler.await, request) {
        Ok(response) => shorten(response),
        Err(status) => return Cached::new(Err(status)),
    };
    if may_store {
        // The lookup and the store share one deadline: a server that answers the lookup and
        // then stalls still costs a request at most `op_timeout` in all.
        let budget = cache.config().op_timeout.saturating_sub(lookup_took);
        if let Err(status) = store(cache, request, &key, options, &mut response, budget).await {
            return Cached::new(Err(status));
        }
    }
    mark(&mut response, x_cache, "MISS");
    Cached::new(Ok(response))
}

/// The key `request`, served by `route`, is stored under.
pub fn key_for(request: &Request<'_>, route: &rocket::Route, namespace: &str) -> CacheKey {
    let host = host_of(request);
    KeyParts::of(request, route, host.as_deref()).build(namespace)
}

/// The request's authority: every raw `Host` value when present (so that two different
/// malformed values never share an entry), else what Rocket parsed (HTTP/2 `:authority`).
fn host_of<'a>(request: &'a Request<'_>) -> Option<Cow<'a, str>> {
    let mut values = request.headers().get("Host");
    match (values.next(), values.next()) {
        (Some(only), None) => Some(Cow::Borrowed(only)),
        (Some(first), Some(second)) => {
            let mut all = format!("{first}\n{second}");
            for value in values {
                all.push('\n');
                all.push_str(value);
            }
            Some(Cow::Owned(all))
        }
        (None, _) => request.host().map(|host| Cow::Owned(host.to_string())),
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

/// A stored entry as a response, with `Age`. The body shares the entry's allocation; header
/// names and the most common values come from static strings, so a typical hit allocates only
/// for its less common header values.
fn replay<'r>(entry: &StoredResponse, x_cache: bool) -> Response<'r> {
    let mut builder = Response::build();
    builder.status(Status::new(entry.status()));
    // `adjoin`: one map operation per header (the names were filtered on the way in, so none
    // of these is already present).
    for (name, value) in entry.headers() {
        builder.raw_header_adjoin(interned(name), interned(value));
    }
    builder.raw_header_adjoin("Age", age_text(unix_now().saturating_sub(entry.created())));
    if x_cache {
        builder.raw_header_adjoin("X-Cache", "HIT");
    }
    builder.sized_body(entry.body().len(), Cursor::new(entry.body_bytes()));
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

/// Stores `response` when the policy allows. Reading the body replaces it with the bytes read;
/// `Err` only when the body failed while being read, which leaves nothing to send.
async fn store(
    cache: &Cache,
    request: &Request<'_>,
    key: &CacheKey,
    options: &RouteOptions,
    response: &mut Response<'_>,
    budget: Duration,
) -> Result<(), Status> {
    let verdict = match policy::check_headers(response.status().code, response.headers().iter()) {
        Ok(()) if policy::has_pending_cookies(request) => Err(Refusal::SetCookie),
        Ok(()) => read_entry(cache, options, response).await?,
        Err(refusal) => Err(refusal),
    };
    match verdict {
        Ok(entry) => {
            if let Err(error) = cache.store().set(key, Arc::new(entry), budget).await {
                report::warn(
                    &report::STORE_FAILED,
                    format_args!("store failed ({}): {error}", error.cause()),
                );
            }
        }
        Err(refusal) => log::debug!("cache: not stored: {refusal}"),
    }
    Ok(())
}

/// The entry for a storable response, or why not; reads the body when its size allows.
async fn read_entry(
    cache: &Cache,
    options: &RouteOptions,
    response: &mut Response<'_>,
) -> Result<Result<StoredResponse, Refusal>, Status> {
    let limit = cache.config().max_item_size;
    let size = match response.body_mut().size().await {
        Some(size) => size,
        None => return Ok(Err(Refusal::Streamed)),
    };
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
    if StoredResponse::frame_len(header_pairs(), size) > limit {
        return Ok(Err(Refusal::TooLarge));
    }
    // Exactly the announced size: no spare capacity is kept in the store.
    let mut body = vec![0; size];
    if let Err(error) = response.body_mut().read_exact(&mut body).await {
        log::error!("cache: reading the response body failed: {error}");
        return Err(Status::InternalServerError);
    }
    let entry = StoredResponse::build(
        response.status().code,
        header_pairs(),
        &body,
        unix_now(),
        options.ttl,
    );
    let Ok(entry) = entry else {
        response.set_sized_body(body.len(), Cursor::new(body));
        return Ok(Err(Refusal::Unframeable));
    };
    // The client is served the stored copy of the body.
    response.set_sized_body(entry.body().len(), Cursor::new(entry.body_bytes()));
    Ok(Ok(entry))
}
