//! Responses built from what the cache holds: a stored entry replayed with `Age`, a `304 Not
//! Modified`, the route's `Vary` merged in, the generated `ETag`.

use std::borrow::Cow;
use std::io::Cursor;

use rocket::http::Status;
use rocket::{Request, Response};

use super::policy;
use crate::entry::StoredResponse;
use crate::options::RouteOptions;
use crate::outcome::Served;
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

/// A `304 Not Modified` carrying the validators and cache headers of the full response.
pub(crate) fn not_modified<'r>(headers: impl Iterator<Item = (String, String)>) -> Response<'r> {
    let mut builder = Response::build();
    builder.status(Status::NotModified);
    for (name, value) in headers.filter(|(name, _)| policy::is_not_modified_header(name)) {
        builder.raw_header_adjoin(name, value);
    }
    builder.finalize()
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

/// A stored entry as a response, with `Age` as of `now` (unix seconds): the age it arrived
/// with plus the time since. The body shares the
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

/// `text` as a static string when it is a common header name or value, else a copy.
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

/// What [`generated_etag`] returns has this length: the size limit counts it before the body
/// is read.
pub(crate) const GENERATED_ETAG_SHAPE: &str = "\"0123456789abcdef0123456789abcdef\"";

/// A strong validator for a success without one, hashed from the status, the representation
/// headers and the body (the same bytes as gzip or as another type are another
/// representation): 32 hex digits, quoted.
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
    let etag = format!("\"{}\"", String::from_utf8_lossy(&digits));
    debug_assert_eq!(etag.len(), GENERATED_ETAG_SHAPE.len());
    etag
}
