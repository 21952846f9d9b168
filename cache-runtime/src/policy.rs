//! What may be stored (RFC 9111, for a shared cache) and which headers an entry keeps.

use std::fmt;

use rocket::http::Header;
use rocket::Request;

/// Why a response was served but not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The status is not one the route may store (default: only 200).
    Status,
    /// `Set-Cookie`: storing it would hand one client's cookie to every other client.
    SetCookie,
    /// `Cache-Control: private` or `no-store`.
    CacheControl,
    /// `Vary` on a header the key does not include (or `Vary: *`).
    Vary,
    /// A streamed body, whose size is unknown before it is sent.
    Streamed,
    /// Larger than the configured item size.
    TooLarge,
    /// A header that is not a valid HTTP field, or more headers than a frame holds.
    Unframeable,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Status => "status is not cacheable",
            Refusal::SetCookie => "response sets a cookie",
            Refusal::CacheControl => "Cache-Control: private or no-store",
            Refusal::Vary => "response varies on headers outside the key",
            Refusal::Streamed => "body is streamed",
            Refusal::TooLarge => "larger than the item size limit",
            Refusal::Unframeable => "a header is not a valid HTTP field",
        })
    }
}

/// Why a request skips the cache altogether.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// `Authorization`: the response is about to be computed for one principal.
    Authorization,
}

/// Requests whose response must neither come from nor go to a shared entry.
pub fn bypass(request: &Request<'_>) -> Option<Bypass> {
    request
        .headers()
        .contains("Authorization")
        .then_some(Bypass::Authorization)
}

/// Whether the handler (or a guard, or a responder such as `Flash`) changed the request's
/// cookie jar. Rocket adds those cookies to the response after the handler returns, so the
/// `Set-Cookie` check cannot see them; storing would hand a copy without them to everyone.
///
/// Rocket exposes the pending changes only through `Debug`. The check is written so that a
/// change of that format makes it refuse to store, never store wrongly.
pub fn has_pending_cookies(request: &Request<'_>) -> bool {
    !format!("{:?}", request.cookies()).contains("pending: []")
}

/// Checks a response's status and headers; the body is checked by size afterwards.
pub fn check_headers<'h>(
    status: u16,
    headers: impl Iterator<Item = Header<'h>>,
) -> Result<(), Refusal> {
    if status != 200 {
        return Err(Refusal::Status);
    }
    for header in headers {
        let name = header.name();
        if name == "Set-Cookie" {
            return Err(Refusal::SetCookie);
        }
        if name == "Cache-Control" && forbids_shared_storage(header.value()) {
            return Err(Refusal::CacheControl);
        }
        // The key holds no request header yet, so any Vary names a header outside it.
        if name == "Vary" && !header.value().trim().is_empty() {
            return Err(Refusal::Vary);
        }
    }
    Ok(())
}

/// `private` or `no-store` among the directives, in any case, with any spacing, with or
/// without an argument (`private="Set-Cookie"` still refuses: a shared cache cannot strip the
/// named fields and be sure nothing else was private).
pub fn forbids_shared_storage(cache_control: &str) -> bool {
    cache_control.split(',').any(|directive| {
        let name = directive
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        name.eq_ignore_ascii_case("private") || name.eq_ignore_ascii_case("no-store")
    })
}

/// Headers a stored entry keeps: end-to-end ones, minus those recomputed on every reply.
pub fn is_stored_header(name: &str) -> bool {
    const DROPPED: &[&str] = &[
        // Hop-by-hop (RFC 9110 section 7.6.1).
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        // Recomputed for each reply.
        "Content-Length",
        "Date",
        "Age",
        "X-Cache",
    ];
    !DROPPED
        .iter()
        .any(|dropped| dropped.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(headers: &[(&'static str, &'static str)]) -> Result<(), Refusal> {
        let headers: Vec<Header<'static>> =
            headers.iter().map(|(n, v)| Header::new(*n, *v)).collect();
        check_headers(200, headers.into_iter())
    }

    #[test]
    fn only_200_is_stored() {
        for status in [201, 204, 301, 303, 404, 500] {
            assert_eq!(
                check_headers(status, std::iter::empty()),
                Err(Refusal::Status)
            );
        }
        assert_eq!(check_headers(200, std::iter::empty()), Ok(()));
    }

    #[test]
    fn private_and_no_store_refuse_in_any_spelling() {
        for value in [
            "private",
            "PRIVATE",
            "Private",
            "public, Private",
            "max-age=60,private",
            "  no-store  ",
            "No-Store, max-age=0",
            "private=\"Set-Cookie\"",
            "max-age=60, \"private\"",
        ] {
            assert!(forbids_shared_storage(value), "{value:?} was allowed");
        }
        for value in [
            "public, max-age=60",
            "max-age=3600",
            "no-cache",
            "privateer",
            "s-maxage=5",
        ] {
            assert!(!forbids_shared_storage(value), "{value:?} was refused");
        }
        assert_eq!(
            check(&[("Cache-Control", "Private")]),
            Err(Refusal::CacheControl)
        );
    }

    #[test]
    fn cookies_and_vary_refuse() {
        assert_eq!(check(&[("Set-Cookie", "a=b")]), Err(Refusal::SetCookie));
        assert_eq!(check(&[("set-cookie", "a=b")]), Err(Refusal::SetCookie));
        assert_eq!(check(&[("Vary", "*")]), Err(Refusal::Vary));
        assert_eq!(check(&[("Vary", "Accept-Language")]), Err(Refusal::Vary));
        assert_eq!(
            check(&[("Content-Type", "text/plain"), ("ETag", "\"1\"")]),
            Ok(())
        );
    }

    #[test]
    fn hop_by_hop_headers_are_not_stored() {
        assert!(!is_stored_header("connection"));
        assert!(!is_stored_header("Transfer-Encoding"));
        assert!(!is_stored_header("x-cache"));
        assert!(is_stored_header("Content-Type"));
        assert!(is_stored_header("ETag"));
    }
}
