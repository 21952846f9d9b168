//! Storing a fresh response: the policy's verdict, the body read when its size allows, the
//! frame written to the backend.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocket::http::{Header, Status};
use rocket::tokio::io::AsyncReadExt;
use rocket::{Request, Response};

use crate::backend::BackendError;
use crate::cache::Cache;
use crate::entry::{Lifetime, StoredResponse};
use crate::http::freshness::Freshness;
use crate::http::policy;
use crate::http::render::{
    generated_etag, generated_last_modified, merge_vary, GENERATED_ETAG_SHAPE,
};
use crate::invalidation::generation::Generation;
use crate::key::CacheKey;
use crate::outcome::Refusal;
use crate::rate_limited_log;
use crate::route::options::RouteOptions;

/// What became of a response offered to the store.
pub(super) enum Stored {
    /// Fit to share: the entry, and whether the backend took it (a backend failure still gives
    /// the entry, which this process's waiters can use).
    Entry {
        entry: Arc<StoredResponse>,
        written: bool,
    },
    /// Not fit to share, for this reason.
    Refused(Refusal),
    /// Not offered to the store, for this reason (a `Cache-Status` detail).
    Skipped(&'static str),
}

impl Stored {
    /// Returns the entry, if the response was fit to share, and whether the backend took it.
    pub(super) fn entry(&self) -> (Option<Arc<StoredResponse>>, bool) {
        match self {
            Stored::Entry { entry, written } => (Some(Arc::clone(entry)), *written),
            Stored::Refused(_) | Stored::Skipped(_) => (None, false),
        }
    }
}

/// Stores `response` when the policy allows. Reading the body replaces it with the bytes read;
/// `Err` only when the body failed while being read, which leaves nothing to send.
pub(super) async fn store(
    cache: &Cache,
    request: &Request<'_>,
    key: &CacheKey,
    options: &RouteOptions,
    stamp: Generation,
    response: &mut Response<'_>,
    budget: Duration,
) -> Result<Stored, Status> {
    let authorized = request.headers().contains("Authorization");
    let received = SystemTime::now();
    let checked = policy::check_headers(
        response.status().code,
        response.headers().iter(),
        options,
        received,
        authorized,
    );
    let verdict = match checked {
        Ok(_) if policy::has_pending_cookies(request) => Err(Refusal::SetCookie),
        Ok(fresh) => read_entry(cache, options, (fresh, received), stamp, response).await?,
        Err(Refusal::Vary) => {
            let vary = response.headers().get("Vary").collect::<Vec<_>>().join(",");
            let outside = policy::vary_outside_key(&vary, options).unwrap_or("*");
            rate_limited_log::warn(
                &rate_limited_log::VARY_OUTSIDE_KEY,
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
    Ok(write_or_refuse(cache, key, options, verdict, budget).await)
}

/// Stores, when the route lists `status`, that the handler's responder failed with it: a hit
/// hands `status` to Rocket's catcher, as this miss does. An unlisted status is refused as
/// [`Refusal::Status`].
///
/// The request's cookie changes do not count: Rocket drops what the handler set when its
/// responder fails (`invoke_catcher` resets the jar's changes), and the catcher, which may set
/// its own, runs on every hit too.
pub(super) async fn store_for_catcher(
    cache: &Cache,
    request: &Request<'_>,
    key: &CacheKey,
    options: &RouteOptions,
    stamp: Generation,
    status: Status,
    budget: Duration,
) -> Stored {
    let authorized = request.headers().contains("Authorization");
    let received = SystemTime::now();
    let no_headers = std::iter::empty();
    let verdict = policy::check_headers(status.code, no_headers, options, received, authorized)
        .and_then(|fresh| {
            let lifetime = lifetime(&fresh, received);
            StoredResponse::catcher_page(status.code, lifetime, stamp)
                .map_err(|_| Refusal::Unframeable)
        });
    match write_or_refuse(cache, key, options, verdict, budget).await {
        Stored::Refused(_) => Stored::Refused(Refusal::Status),
        stored => stored,
    }
}

/// Stores `stored` again, refreshed by a handler's 304 (RFC 9111 4.3.4): each field the 304
/// carries replaces the stored ones of its name (`Content-Length` and the fields no entry keeps
/// excepted), and its freshness starts again now, read from the merged fields as a miss's is.
/// The body is the stored one. Refused as a miss would be when the merged fields forbid it.
pub(super) async fn store_revalidated(
    cache: &Cache,
    request: &Request<'_>,
    key: &CacheKey,
    options: &RouteOptions,
    (stamp, budget): (Generation, Duration),
    stored: &StoredResponse,
    updates: &[(String, String)],
) -> Stored {
    let updated = |name: &str| {
        updates
            .iter()
            .any(|(field, _)| field.eq_ignore_ascii_case(name))
    };
    let kept = updates
        .iter()
        .filter(|(name, _)| policy::is_stored_header(name))
        .filter(|(name, _)| !name.eq_ignore_ascii_case("Content-Length"));
    // The 304 is a response made now: without a `Date` of its own, it is dated now, so that
    // the stored `Date` does not age the refreshed entry.
    let received = SystemTime::now();
    let dated = updated("Date");
    let mut headers: Vec<(String, String)> = stored
        .headers()
        .filter(|(name, _)| !updated(name) || !policy::is_stored_header(name))
        .filter(|(name, _)| dated || !name.eq_ignore_ascii_case("Date"))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    headers.extend(kept.cloned());
    if !dated {
        headers.push(("Date".to_owned(), httpdate::fmt_http_date(received)));
    }
    let pairs = || headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
    let fields = || pairs().map(|(name, value)| Header::new(name, value));
    let authorized = request.headers().contains("Authorization");
    let status = stored.status();
    let verdict =
        policy::check_headers(status, fields(), options, received, authorized).and_then(|fresh| {
            let lifetime = lifetime(&fresh, received);
            StoredResponse::response(status, pairs(), stored.body(), lifetime, stamp)
                .map_err(|_| Refusal::Unframeable)
        });
    write_or_refuse(cache, key, options, verdict, budget).await
}

/// Writes the entry the policy's `verdict` allows, or counts and logs its refusal.
async fn write_or_refuse(
    cache: &Cache,
    key: &CacheKey,
    options: &RouteOptions,
    verdict: Result<StoredResponse, Refusal>,
    budget: Duration,
) -> Stored {
    match verdict {
        Ok(entry) => write(cache, key, options, entry, budget).await,
        Err(refusal) => {
            refused(cache, options, refusal);
            Stored::Refused(refusal)
        }
    }
}

/// Writes `entry` to the backend and keeps it in the near tier.
async fn write(
    cache: &Cache,
    key: &CacheKey,
    options: &RouteOptions,
    entry: StoredResponse,
    budget: Duration,
) -> Stored {
    let entry = Arc::new(entry);
    let stored = cache
        .store()
        .set(
            key,
            Arc::clone(&entry),
            entry.keep().max(options.keep),
            budget,
        )
        .await;
    match &stored {
        Ok(()) => {
            options.stats.stored(cache.counters(), entry.frame().len());
            cache.near_keep_stored(key, &entry);
        }
        Err(BackendError::ServerSkipped) => {}
        Err(_) => {
            options.stats.backend_error(cache.counters());
        }
    }
    if let Some(error) = stored
        .as_ref()
        .err()
        .filter(|e| !matches!(e, BackendError::ServerSkipped))
    {
        rate_limited_log::warn(
            &rate_limited_log::STORE_FAILED,
            format_args!("store failed ({}): {error}", error.cause()),
        );
    }
    let written = stored.is_ok();
    Stored::Entry { entry, written }
}

fn refused(cache: &Cache, options: &RouteOptions, refusal: Refusal) {
    log::debug!("cache: not stored: {refusal}");
    options.stats.refused(cache.counters(), refusal);
}

/// Returns how long a response received at `received` with `freshness` may be used.
fn lifetime(freshness: &Freshness, received: SystemTime) -> Lifetime {
    Lifetime {
        created: unix_seconds(received),
        ttl: freshness.ttl,
        age: freshness.age,
        stale: freshness.windows.stale,
        stale_if_error: freshness.windows.stale_if_error,
    }
}

/// Returns `at` in whole seconds since the Unix epoch (0 before it).
fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Returns the entry for a storable response received at `received`, or why not; reads the body
/// when its size allows.
async fn read_entry(
    cache: &Cache,
    options: &RouteOptions,
    (freshness, received): (Freshness, SystemTime),
    stamp: Generation,
    response: &mut Response<'_>,
) -> Result<Result<StoredResponse, Refusal>, Status> {
    let limit = cache.config().max_item_size;
    let size = match response.body_mut().size().await {
        Some(size) => size,
        None => return Ok(Err(Refusal::Streamed)),
    };
    // The client of this miss and those of later hits see one `Date`: when it was made.
    if freshness.undated {
        response.set_raw_header("Date", httpdate::fmt_http_date(received));
    }
    // Every stored success carries validators: the handler's own, else generated ones; this
    // one before the headers are counted, the `ETag` after the body is read.
    let success = response.status().class().is_success();
    if success && !response.headers().contains("Last-Modified") {
        let last_modified = generated_last_modified(response, received);
        response.set_raw_header("Last-Modified", last_modified);
    }
    // The stored entry carries the route's merged `Vary`.
    merge_vary(response, options);
    let headers = stored_headers(response);
    let header_pairs = || {
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    };
    // Counted with the validator added below, so that no frame over the limit reaches the
    // backend (which would refuse it as an error, after the body was read for nothing).
    let adds_etag = success && !response.headers().contains("ETag");
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
    let lifetime = lifetime(&freshness, received);
    let entry = StoredResponse::response(
        response.status().code,
        header_pairs(),
        &body,
        lifetime,
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

/// Returns the headers an entry keeps, owned (the body is read from the response afterwards): the
/// end-to-end ones, less those its `Connection` names.
fn stored_headers(response: &Response<'_>) -> Vec<(String, String)> {
    let hop_by_hop = policy::connection_options(response.headers().get("Connection"));
    response
        .headers()
        .iter()
        .filter(|header| policy::is_stored_header(header.name().as_str()))
        .filter(|header| !hop_by_hop.iter().any(|option| header.name() == *option))
        .map(|header| (header.name().to_string(), header.value().to_string()))
        .collect()
}
