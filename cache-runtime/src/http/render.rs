//! Responses built from what the cache holds: a stored entry replayed with `Age`, a `304 Not
//! Modified`, the route's `Vary` merged in, the generated `ETag` and `Last-Modified`.

use std::borrow::Cow;
use std::io::Cursor;
use std::time::SystemTime;

use rocket::http::Status;
use rocket::response::Builder as ResponseBuilder;
use rocket::{Request, Response};

use super::policy;
use super::range::{self, Part};
use crate::entry::StoredResponse;
use crate::outcome::Served;
use crate::route::options::{Downstream, RouteOptions};
use crate::util::hex;

/// Adds the route's `vary` headers (and `Cookie` for `vary_cookies`) to the response's `Vary`.
pub(crate) fn merge_vary(response: &mut Response<'_>, options: &RouteOptions) {
    if options.vary.is_empty() && options.vary_cookies.is_empty() {
        return;
    }
    let existing: Vec<&str> = response.headers().get("Vary").collect();
    let existing = (!existing.is_empty()).then(|| existing.join(", "));
    if let Some(merged) = policy::merged_vary(existing.as_deref(), options) {
        response.set_raw_header("Vary", merged);
    }
}

/// Builds a `304 Not Modified` carrying the validators and cache headers of the full response.
pub(crate) fn not_modified<'r>(headers: impl Iterator<Item = (String, String)>) -> Response<'r> {
    let mut builder = Response::build();
    builder.status(Status::NotModified);
    for (name, value) in headers.filter(|(name, _)| policy::is_not_modified_header(name)) {
        builder.raw_header_adjoin(name, value);
    }
    builder.finalize()
}

/// Adds the route's [`Downstream`] `Cache-Control`, for an entry fresh `remaining` more seconds,
/// unless the response has one of its own: the handler's word for browsers stands. `private`:
/// the page belongs to one client.
pub(crate) fn add_downstream(
    response: &mut Response<'_>,
    downstream: Downstream,
    remaining: u64,
    private: bool,
) {
    if response.headers().contains("Cache-Control") {
        return;
    }
    if let Some(value) = downstream.cache_control(remaining, private) {
        response.set_raw_header("Cache-Control", value);
        if private {
            vary_on_credentials(response);
        }
    }
}

/// Adds `Cookie` and `Authorization` to `Vary`: a browser keeps a `private` page by its URL, and
/// without them would show the page of whoever signed in before on that browser.
fn vary_on_credentials(response: &mut Response<'_>) {
    let existing: Vec<&str> = response.headers().get("Vary").collect();
    let existing = (!existing.is_empty()).then(|| existing.join(", "));
    if let Some(merged) = policy::vary_with(existing.as_deref(), ["Cookie", "Authorization"]) {
        response.set_raw_header("Vary", merged);
    }
}

/// Sets `X-Cache` to what `served` says when the header is enabled, and adds this cache's
/// `Cache-Status` member when given: last, after any the handler passed on (RFC 9211 lists
/// caches from the origin's side to the client's).
pub(crate) fn mark(
    response: &mut Response<'_>,
    x_cache: bool,
    served: Served,
    cache_status: Option<String>,
) {
    if x_cache {
        response.set_raw_header("X-Cache", served.x_cache());
    }
    if let Some(status) = cache_status {
        response.adjoin_raw_header("Cache-Status", status);
    }
}

/// What the cache did for a request whose handler's responder failed with a status (`None`,
/// `Err(Status)`), kept in the request's local cache: Rocket's catcher renders that page after
/// the handler returned, so the headers a cached route adds to its responses are added to the
/// catcher's page by [`CacheFairing`](crate::CacheFairing), when attached, from this.
pub(crate) struct CatcherMark(Option<ForCatcher>);

struct ForCatcher {
    /// `X-Cache`, when the header is enabled.
    served: Option<Served>,
    /// This cache's `Cache-Status` member, when the field is enabled.
    cache_status: Option<String>,
    /// The stored entry's `Age`, on a hit.
    age: Option<u64>,
    /// The route's `vary`, which the page's status depended on.
    options: &'static RouteOptions,
}

/// Records, for the catcher's page, that the request came to `served` (`x_cache`: the header is
/// enabled) and, on a hit, how old the stored entry is. The first record of a request is kept:
/// a handler's failure ends routing, so there is never another.
pub(crate) fn mark_for_catcher(
    request: &Request<'_>,
    (x_cache, served, cache_status): (bool, Served, Option<String>),
    age: Option<u64>,
    options: &'static RouteOptions,
) {
    request.local_cache(|| {
        CatcherMark(Some(ForCatcher {
            served: x_cache.then_some(served),
            cache_status,
            age,
            options,
        }))
    });
}

/// Adds to a page Rocket's catcher rendered for a cached route what the route's own responses
/// carry: its `Vary`, `X-Cache`, `Cache-Status` and, on a hit, `Age`. Other responses are left as they are.
pub(crate) fn finish_catcher_page(request: &Request<'_>, response: &mut Response<'_>) {
    let CatcherMark(Some(record)) = request.local_cache(|| CatcherMark(None)) else {
        return;
    };
    merge_vary(response, record.options);
    if let Some(age) = record.age {
        response.set_raw_header("Age", age_text(age));
    }
    let x_cache = record.served.is_some();
    let served = record.served.unwrap_or(Served::Miss);
    mark(response, x_cache, served, record.cache_status.clone());
}

/// Replays a stored entry as a response, with `Age` as of `now` (unix seconds): the age it
/// arrived with plus the time since. The body shares the
/// entry's allocation; header names and the most common values come from static strings, so a
/// typical hit allocates only for its less common header values.
pub(crate) fn replay<'r>(
    request: &Request<'_>,
    entry: &StoredResponse,
    now: u64,
    x_cache: bool,
    served: Served,
    cache_status: Option<String>,
) -> Response<'r> {
    // Conditional requests are the exception: look for the entry's validators only when asked.
    let revalidated = (200..300).contains(&entry.status())
        && policy::is_conditional(request)
        && policy::not_modified(request, policy::Validators::among(entry.headers()));
    let mut builder = if revalidated {
        Response::build_from(not_modified(
            entry
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
        ))
    } else {
        whole_or_part(request, entry)
    };
    builder.raw_header_adjoin("Age", age_text(entry.age_at(now)));
    if x_cache {
        builder.raw_header_adjoin("X-Cache", served.x_cache());
    }
    // After any stored one, from caches on the origin's side of this one.
    if let Some(status) = cache_status {
        builder.raw_header_adjoin("Cache-Status", status);
    }
    builder.finalize()
}

/// Builds the response `entry` makes, or the part of it a `Range` asks for (a stored 200 only,
/// see `range.rs`).
fn whole_or_part<'r>(request: &Request<'_>, entry: &StoredResponse) -> ResponseBuilder<'r> {
    let len = entry.body().len();
    let part = match entry.status() {
        200 => range::requested(request, len as u64, || {
            let validators = policy::Validators::among(entry.headers());
            (validators.etag, validators.last_modified)
        }),
        _ => Part::Whole,
    };
    let mut builder = Response::build();
    if part == Part::Unsatisfiable {
        builder.status(Status::RangeNotSatisfiable);
        builder.raw_header_adjoin("Content-Range", format!("bytes */{len}"));
        return builder;
    }
    // `adjoin`: one map operation per header (the names were filtered on the way in, so none
    // of these is already present).
    for (name, value) in entry.headers() {
        builder.raw_header_adjoin(interned(name), interned(value));
    }
    match part {
        Part::Bytes { first, last } => {
            let (first, last) = (first as usize, last as usize);
            builder.status(Status::PartialContent);
            builder.raw_header_adjoin("Content-Range", format!("bytes {first}-{last}/{len}"));
            let bytes = entry.body_bytes().slice(first..=last);
            builder.sized_body(bytes.len(), Cursor::new(bytes));
        }
        Part::Whole | Part::Unsatisfiable => {
            builder.status(Status::new(entry.status()));
            builder.sized_body(len, Cursor::new(entry.body_bytes()));
        }
    }
    builder
}

/// Returns `text` as a static string when it is a common header name or value, else a copy.
fn interned(text: &str) -> Cow<'static, str> {
    const COMMON: &[&str] = &[
        "Content-Type",
        "Cache-Control",
        "ETag",
        "Last-Modified",
        "Expires",
        "Date",
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

/// Returns `Age` values, without an allocation for the common ones.
fn age_text(age: u64) -> Cow<'static, str> {
    const SMALL: [&str; 16] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
    ];
    match SMALL.get(age as usize) {
        Some(text) => Cow::Borrowed(text),
        None => Cow::Owned(age.to_string()),
    }
}

/// What [`generated_etag`] returns has this length: the size limit counts it before the body
/// is read.
pub(crate) const GENERATED_ETAG_SHAPE: &str = "W/\"0123456789abcdef0123456789abcdef\"";

/// Returns a validator for a success without one, hashed from the status, the representation
/// headers and the body (the same bytes as gzip or as another type are another representation):
/// 32 hex digits, quoted.
///
/// Weak (`W/`): the response still goes through Rocket's response fairings, after the cache,
/// and one that compresses (or otherwise rewrites) the body sends other bytes under the same
/// tag. A strong tag promises byte-for-byte identity (RFC 9110 section 8.8.1), which the cache
/// cannot know holds for what is finally sent; a weak one promises only equivalent content,
/// which stays true. `If-None-Match` compares weakly anyway, so revalidation works the same;
/// what a strong tag would add (`If-Range`, `If-Match`) is for range and write requests, which
/// a cached route does not answer. nginx's gzip filter weakens strong tags for the same reason.
pub(crate) fn generated_etag(response: &Response<'_>, body: &[u8]) -> String {
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
    let digits: [u8; 32] = hex(hasher.finalize().as_bytes());
    let etag = format!("W/\"{}\"", String::from_utf8_lossy(&digits));
    debug_assert_eq!(etag.len(), GENERATED_ETAG_SHAPE.len());
    etag
}

/// Returns a `Last-Modified` for a success without one, so that clients and caches downstream can
/// revalidate with `If-Modified-Since` too: the response's `Date` (the cache sets one on
/// responses without it), or the time it was received when that `Date` is later. RFC 9111
/// section 4.3.2 has a cache read a stored response without `Last-Modified` the same way; the
/// origin may not send one later than its `Date` (RFC 9110 section 8.8.2.1).
pub(crate) fn generated_last_modified(response: &Response<'_>, received: SystemTime) -> String {
    let date = response
        .headers()
        .get_one("Date")
        .and_then(|date| httpdate::parse_http_date(date.trim()).ok());
    let at = date.map_or(received, |date| date.min(received));
    httpdate::fmt_http_date(at)
}
