//! What may be stored (RFC 9111, for a shared cache) and which headers an entry keeps.

use std::time::SystemTime;

use rocket::http::{Header, Method};
use rocket::Request;

use super::freshness::{Freshness, FreshnessHeaders, StaleWindows};
use super::targeted;
use crate::outcome::Refusal;
use crate::route::options::RouteOptions;

/// Returns whether the response must neither come from nor go to a shared entry: the request
/// carries `Authorization` (it is about to be computed for one principal), and the route is not
/// declared `public`.
pub fn bypasses(request: &Request<'_>, options: &RouteOptions) -> bool {
    !options.public && request.headers().contains("Authorization")
}

/// Returns whether the handler (or a guard, or a responder such as `Flash`) changed the request's
/// cookie jar. Rocket adds those cookies to the response after the handler returns, so the
/// `Set-Cookie` check cannot see them; storing would hand a copy without them to everyone.
///
/// Rocket exposes the pending changes only through `Debug`. The check is written so that a
/// change of that format makes it refuse to store, never store wrongly.
pub fn has_pending_cookies(request: &Request<'_>) -> bool {
    // `pending` is the last field: the client's own cookies, printed before it, cannot fake
    // the ending (regression: `Cookie: x=pending%3A%20%5B%5D` once passed a `contains` check).
    !format!("{:?}", request.cookies()).ends_with(", pending: [] }")
}

/// Returns whether the client asked that nothing of this exchange be stored
/// (`Cache-Control: no-store`).
pub fn client_forbids_store(request: &Request<'_>) -> bool {
    request
        .headers()
        .get("Cache-Control")
        .any(|value| directives(value).any(|(name, _)| name.eq_ignore_ascii_case("no-store")))
}

/// Checks a response's status and headers against the route's options; the body is checked
/// by size afterwards. On success, how long it stays fresh: the route's `ttl` (its
/// `negative_ttl` for a status from 400, see [`RouteOptions::ttl_for`]), shortened to
/// what is left of the response's own lifetime (`s-maxage`, or, without it, `max-age`, or,
/// without either, `Expires - Date`) once the age it arrives with is spent (see
/// [`freshness`](super::freshness)), and its stale windows.
/// `received`: when the handler returned it.
///
/// A targeted field (`Rocket-Route-Cache-Control`, else `CDN-Cache-Control`, see
/// [`targeted`](super::targeted)) that is valid and not empty stands for `Cache-Control` and
/// `Expires`, which are then left to browsers and other caches (RFC 9213 section 2.2).
///
/// `authorized`: the request carried `Authorization` (on a `public` route). Such a response is
/// stored only if it says it may be shared: `public`, `s-maxage` or `must-revalidate`
/// (RFC 9111 section 3.5).
pub fn check_headers<'h>(
    status: u16,
    headers: impl Iterator<Item = Header<'h>>,
    options: &RouteOptions,
    received: SystemTime,
    authorized: bool,
) -> Result<Freshness, Refusal> {
    if !options.statuses.contains(&status) {
        return Err(Refusal::Status);
    }
    let headers: Vec<Header<'h>> = headers.collect();
    let targeted = targeted::select(|name| {
        headers
            .iter()
            .filter(move |header| header.name() == name)
            .map(|header| header.value())
    });
    let mut read = Directives::default();
    for header in &headers {
        let name = header.name();
        if name == "Set-Cookie" {
            return Err(Refusal::SetCookie);
        }
        if name == "Cache-Control" {
            if targeted.is_none() {
                for (directive, argument) in directives(header.value()) {
                    read.directive(directive, argument)?;
                }
            }
        } else if targeted.is_none() || name != "Expires" {
            read.freshness.header(name.as_str(), header.value());
        }
        if name == "Vary" && vary_outside_key(header.value(), options).is_some() {
            return Err(Refusal::Vary);
        }
    }
    for (directive, argument) in targeted.iter().flatten() {
        read.directive(directive, argument.as_deref())?;
    }
    if authorized && !read.shareable_when_authorized {
        return Err(Refusal::CacheControl);
    }
    let windows = StaleWindows {
        stale: options.stale,
        stale_if_error: options.stale_if_error,
    };
    let freshness = read
        .freshness
        .freshness((options.ttl_for(status), windows), received);
    // Stale on arrival: serving it would need revalidation first.
    if freshness.ttl == 0 {
        return Err(Refusal::CacheControl);
    }
    Ok(freshness)
}

/// The cache directives of one response, from `Cache-Control` or the targeted field that
/// stands for it, read one at a time.
#[derive(Debug, Default)]
struct Directives {
    freshness: FreshnessHeaders,
    shareable_when_authorized: bool,
}

impl Directives {
    /// Reads one directive; `Err` when it forbids storing.
    fn directive(&mut self, directive: &str, argument: Option<&str>) -> Result<(), Refusal> {
        // With an argument too: a shared cache cannot strip the fields
        // `private="Set-Cookie"` names and be sure nothing else was private.
        if ["private", "no-store", "no-cache"]
            .iter()
            .any(|refused| directive.eq_ignore_ascii_case(refused))
        {
            return Err(Refusal::CacheControl);
        }
        if ["s-maxage", "public", "must-revalidate"]
            .iter()
            .any(|shareable| directive.eq_ignore_ascii_case(shareable))
        {
            self.shareable_when_authorized = true;
        }
        self.freshness.directive(directive, argument);
        Ok(())
    }
}

/// Returns a `Cache-Control` value's directives, names trimmed, arguments unquoted. Commas inside
/// a quoted argument do not split (`foo="a, s-maxage=9"` is one directive). A malformed argument
/// (`max-age=soon`) reads as 0, which refuses: the safe reading.
fn directives(value: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter().map(|directive| {
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name, Some(argument.trim().trim_matches('"'))),
            None => (directive, None),
        };
        (name.trim().trim_matches('"'), argument)
    })
}

/// Returns the first header a handler's own `Vary` names that the key does not hold (`*`
/// included). `Cookie` is never held: `vary_cookies` puts only the named cookies in the key, and
/// a handler that says it varies on the whole `Cookie` header may read any of them.
pub fn vary_outside_key<'v>(vary: &'v str, options: &RouteOptions) -> Option<&'v str> {
    vary.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .find(|name| {
            !options
                .vary
                .iter()
                .any(|held| held.eq_ignore_ascii_case(name))
        })
}

/// Returns the `Vary` value a response of this route carries: its own names plus those the route
/// varies on (and `Cookie` for `vary_cookies`), each once. `None` when there is none, or when
/// its own says `*`, which already covers every header (RFC 9110 section 12.5.5) and stays
/// as it is.
pub fn merged_vary(existing: Option<&str>, options: &RouteOptions) -> Option<String> {
    let declared = options
        .vary
        .iter()
        .copied()
        .chain((!options.vary_cookies.is_empty()).then_some("Cookie"));
    vary_with(existing, declared)
}

/// Returns `existing` (a response's `Vary`) with each of `names` added unless already listed
/// (case-insensitively); `None` when it says `*` or names nothing.
pub fn vary_with<'n>(
    existing: Option<&'n str>,
    names: impl IntoIterator<Item = &'n str>,
) -> Option<String> {
    let mut listed: Vec<&str> = existing
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    if listed.contains(&"*") {
        return None;
    }
    for name in names {
        if !listed.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
            listed.push(name);
        }
    }
    (!listed.is_empty()).then(|| listed.join(", "))
}

/// Returns whether a client's `Cache-Control: no-cache` (or `Pragma: no-cache`) asks for a fresh
/// response.
pub fn client_wants_fresh(request: &Request<'_>) -> bool {
    request
        .headers()
        .get("Cache-Control")
        .any(|value| directives(value).any(|(name, _)| name.eq_ignore_ascii_case("no-cache")))
        || request
            .headers()
            .get("Pragma")
            .any(|value| value.trim().eq_ignore_ascii_case("no-cache"))
}

/// Returns whether `request` carries a validator to check against the response it would be sent.
pub fn is_conditional(request: &Request<'_>) -> bool {
    let headers = request.headers();
    headers.contains("If-None-Match") || headers.contains("If-Modified-Since")
}

/// A response's validators, as conditional requests read them: its first `ETag` and
/// `Last-Modified`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validators<'h> {
    pub etag: Option<&'h str>,
    pub last_modified: Option<&'h str>,
}

impl<'h> Validators<'h> {
    /// Returns the validators among these headers.
    pub fn among(headers: impl IntoIterator<Item = (&'h str, &'h str)>) -> Validators<'h> {
        let mut found = Validators::default();
        for (name, value) in headers {
            if found.etag.is_none() && name.eq_ignore_ascii_case("ETag") {
                found.etag = Some(value);
            } else if found.last_modified.is_none() && name.eq_ignore_ascii_case("Last-Modified") {
                found.last_modified = Some(value);
            }
        }
        found
    }
}

/// Returns whether a response with these validators is answered `304 Not Modified` to `request`
/// (RFC 9110 section 13.2.2, steps 3 and 4; the precondition fields only an origin server
/// evaluates, `If-Match` and `If-Unmodified-Since`, are left to it). The caller checks that the
/// response would be a success.
///
/// `If-None-Match`, when present, decides alone: `If-Modified-Since` is then ignored (section
/// 13.1.3), whatever it says.
pub fn not_modified(request: &Request<'_>, validators: Validators<'_>) -> bool {
    let asked = request.headers();
    if asked.contains("If-None-Match") {
        return validators
            .etag
            .is_some_and(|etag| etag_matches(asked.get("If-None-Match"), etag));
    }
    matches!(request.method(), Method::Get | Method::Head)
        && validators
            .last_modified
            .is_some_and(|at| unmodified_since(asked.get("If-Modified-Since"), at))
}

/// Returns whether an `If-None-Match` field (its lines) matches `etag`: weak comparison (RFC 9110
/// section 8.8.3.2), lists and `*`.
fn etag_matches<'v>(mut if_none_match: impl Iterator<Item = &'v str>, etag: &str) -> bool {
    fn opaque(tag: &str) -> &str {
        let tag = tag.trim();
        tag.strip_prefix("W/").unwrap_or(tag)
    }
    let wanted = opaque(etag);
    if_none_match.any(|value| {
        value.split(',').any(|candidate| {
            let candidate = candidate.trim();
            candidate == "*" || opaque(candidate) == wanted
        })
    })
}

/// Returns whether a representation last modified at `last_modified` is unchanged since the date
/// an `If-Modified-Since` field (its lines) gives: modified at or before it (RFC 9110 section
/// 13.1.3). HTTP dates count whole seconds, so the comparison does too. The field is ignored
/// (false: the full response) when it is not exactly one valid date, or when `last_modified`
/// is not one.
fn unmodified_since<'v>(
    mut if_modified_since: impl Iterator<Item = &'v str>,
    last_modified: &str,
) -> bool {
    let date = |text: &str| httpdate::parse_http_date(text.trim()).ok();
    let since = match (if_modified_since.next(), if_modified_since.next()) {
        (Some(only), None) => date(only),
        _ => None,
    };
    match (since, date(last_modified)) {
        (Some(since), Some(modified)) => modified <= since,
        _ => false,
    }
}

/// Returns whether `name` is one of the headers a 304 carries (RFC 9110 15.4.5): those a 200
/// would have sent that guide caches.
pub fn is_not_modified_header(name: &str) -> bool {
    [
        "Cache-Control",
        "Content-Location",
        "Date",
        "ETag",
        "Expires",
        "Vary",
        "Last-Modified",
    ]
    .iter()
    .any(|kept| kept.eq_ignore_ascii_case(name))
}

/// Returns the header names a response's `Connection` lines list: hop-by-hop, meant for one
/// connection only, so never stored nor replayed (RFC 9110 section 7.6.1).
pub fn connection_options<'v>(connection: impl Iterator<Item = &'v str>) -> Vec<&'v str> {
    connection
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|option| !option.is_empty())
        .collect()
}

/// Returns whether `name` is one of the headers a stored entry keeps: end-to-end ones, minus
/// those recomputed on every reply. `Date` is kept: a hit carries the origin's (RFC 9110 section
/// 6.6.1).
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
        "Age",
        "X-Cache",
        // It targets this cache alone (see `targeted::OWN_FIELD`).
        targeted::OWN_FIELD,
    ];
    !DROPPED
        .iter()
        .any(|dropped| dropped.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    static ROUTE: RouteOptions = RouteOptions::new(60);

    fn check_with(
        options: &RouteOptions,
        status: u16,
        headers: &[(&'static str, &'static str)],
    ) -> Result<u32, Refusal> {
        let headers: Vec<Header<'static>> =
            headers.iter().map(|(n, v)| Header::new(*n, *v)).collect();
        check_headers(
            status,
            headers.into_iter(),
            options,
            SystemTime::now(),
            false,
        )
        .map(|freshness| freshness.ttl)
    }

    fn check(headers: &[(&'static str, &'static str)]) -> Result<u32, Refusal> {
        check_with(&ROUTE, 200, headers)
    }

    #[test]
    fn only_listed_statuses_are_stored() {
        for status in [201, 204, 301, 303, 404, 500] {
            assert_eq!(check_with(&ROUTE, status, &[]), Err(Refusal::Status));
        }
        assert_eq!(check_with(&ROUTE, 200, &[]), Ok(60));
        let wider = RouteOptions::new(60).statuses(&[200, 404]);
        assert_eq!(check_with(&wider, 404, &[]), Ok(60));
        assert_eq!(check_with(&wider, 500, &[]), Err(Refusal::Status));
    }

    #[test]
    fn negative_entries_are_fresh_for_the_negative_ttl_at_most() {
        let negative = RouteOptions::new(60)
            .statuses(&[200, 301, 404])
            .negative_ttl(5);
        assert_eq!(check_with(&negative, 404, &[]), Ok(5));
        assert_eq!(check_with(&negative, 200, &[]), Ok(60));
        assert_eq!(check_with(&negative, 301, &[]), Ok(60));
        // The response's own lifetime still shortens it, never lengthens it.
        let own = [("Cache-Control", "max-age=3")];
        assert_eq!(check_with(&negative, 404, &own), Ok(3));
        let longer = [("Cache-Control", "max-age=3000")];
        assert_eq!(check_with(&negative, 404, &longer), Ok(5));
    }

    #[test]
    fn private_no_store_and_no_cache_refuse_in_any_spelling() {
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
            assert_eq!(
                check(&[("Cache-Control", value)]),
                Err(Refusal::CacheControl),
                "{value:?} was allowed"
            );
        }
        for value in [
            "public, max-age=60",
            "max-age=3600",
            "privateer",
            "s-maxage=5",
        ] {
            assert!(
                check(&[("Cache-Control", value)]).is_ok(),
                "{value:?} was refused"
            );
        }
        // `no-cache` would need revalidation before every use: not stored.
        assert_eq!(
            check(&[("Cache-Control", "No-Cache")]),
            Err(Refusal::CacheControl)
        );
    }

    #[test]
    fn max_age_and_s_maxage_shorten_the_ttl() {
        assert_eq!(check(&[("Cache-Control", "public, max-age=10")]), Ok(10));
        assert_eq!(
            check(&[("Cache-Control", "max-age=3600")]),
            Ok(60),
            "never longer"
        );
        assert_eq!(
            check(&[("Cache-Control", "max-age=10, s-maxage=20")]),
            Ok(20),
            "shared caches read s-maxage"
        );
        assert_eq!(check(&[("Cache-Control", "S-MAXAGE=\"5\"")]), Ok(5));
        assert_eq!(
            check(&[("Cache-Control", "max-age=0")]),
            Err(Refusal::CacheControl)
        );
        assert_eq!(
            check(&[("Cache-Control", "max-age=soon")]),
            Err(Refusal::CacheControl)
        );
    }

    #[test]
    fn cookies_and_vary_outside_the_key_refuse() {
        assert_eq!(check(&[("Set-Cookie", "a=b")]), Err(Refusal::SetCookie));
        assert_eq!(check(&[("set-cookie", "a=b")]), Err(Refusal::SetCookie));
        assert_eq!(check(&[("Vary", "*")]), Err(Refusal::Vary));
        assert_eq!(check(&[("Vary", " * ")]), Err(Refusal::Vary));
        assert_eq!(check(&[("Vary", "Accept-Language")]), Err(Refusal::Vary));
        assert_eq!(
            check(&[("Content-Type", "text/plain"), ("ETag", "\"1\"")]),
            Ok(60)
        );
        let varying = RouteOptions::new(60).vary(&["Accept-Language"]);
        assert_eq!(
            check_with(&varying, 200, &[("Vary", "accept-language")]),
            Ok(60)
        );
        assert_eq!(
            check_with(&varying, 200, &[("Vary", "Accept-Language, *")]),
            Err(Refusal::Vary)
        );
        assert_eq!(
            vary_outside_key("Accept-Language, X-Tenant", &varying),
            Some("X-Tenant")
        );
        // Regression: a handler's own `Vary: Cookie` passed on a `vary_cookies` route, though
        // only the named cookies are in the key.
        let cookies = RouteOptions::new(60).vary_cookies(&["lang"]);
        assert_eq!(
            check_with(&cookies, 200, &[("Vary", "Cookie")]),
            Err(Refusal::Vary)
        );
    }

    #[test]
    fn repeated_ages_quoted_commas_and_expires() {
        assert_eq!(
            check(&[("Cache-Control", "max-age=0, max-age=60")]),
            Err(Refusal::CacheControl)
        );
        assert_eq!(
            check(&[
                ("Cache-Control", "max-age=30"),
                ("Cache-Control", "max-age=10")
            ]),
            Ok(10)
        );
        assert_eq!(
            check(&[("Cache-Control", "foo=\"x, s-maxage=3600\", max-age=5")]),
            Ok(5)
        );
        assert_eq!(
            check(&[("Cache-Control", "foo=\"a, private\"")]),
            Ok(60),
            "quoted, not a directive"
        );
        assert_eq!(check(&[("Expires", "0")]), Err(Refusal::CacheControl));
        assert_eq!(
            check(&[("Expires", "Thu, 01 Jan 1970 00:00:00 GMT")]),
            Err(Refusal::CacheControl)
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + std::time::Duration::from_secs(20));
        let soon: &'static str = Box::leak(soon.into_boxed_str());
        assert!(matches!(check(&[("Expires", soon)]), Ok(19..=20)));
        assert_eq!(
            check(&[("Expires", soon), ("Cache-Control", "max-age=50")]),
            Ok(50),
            "max-age wins"
        );
    }

    #[test]
    fn a_targeted_field_stands_for_cache_control_and_expires() {
        // Browsers are told not to keep it; the CDN-like caches are told an hour.
        assert_eq!(
            check(&[
                ("Cache-Control", "no-cache"),
                ("CDN-Cache-Control", "max-age=30")
            ]),
            Ok(30)
        );
        assert_eq!(
            check(&[
                ("Cache-Control", "max-age=10"),
                ("CDN-Cache-Control", "max-age=3600")
            ]),
            Ok(60),
            "a browser's max-age does not shorten it; the route's ttl still caps"
        );
        assert_eq!(
            check(&[("Expires", "0"), ("CDN-Cache-Control", "max-age=30")]),
            Ok(30),
            "Expires is ignored too"
        );
        assert_eq!(
            check(&[
                ("CDN-Cache-Control", "max-age=30"),
                ("Rocket-Route-Cache-Control", "max-age=20")
            ]),
            Ok(20),
            "this cache's own field first"
        );
        assert_eq!(
            check(&[
                ("Cache-Control", "public, max-age=50"),
                ("Rocket-Route-Cache-Control", "no-store")
            ]),
            Err(Refusal::CacheControl)
        );
        assert_eq!(
            check(&[("Cache-Control", "no-store"), ("CDN-Cache-Control", "none")]),
            Ok(60),
            "RFC 9213's example: every cache but this kind refuses"
        );
        // Invalid or empty: as if absent.
        assert_eq!(
            check(&[
                ("Cache-Control", "max-age=10"),
                ("Rocket-Route-Cache-Control", "Max-Age=30")
            ]),
            Ok(10)
        );
        assert_eq!(
            check(&[("Cache-Control", "max-age=10"), ("CDN-Cache-Control", "")]),
            Ok(10)
        );
        assert_eq!(
            check(&[
                ("Rocket-Route-Cache-Control", "max-age=30,"),
                ("CDN-Cache-Control", "max-age=40")
            ]),
            Ok(40)
        );
    }

    #[test]
    fn stale_directives_set_the_windows_the_route_leaves_open() {
        let windows = |options: &RouteOptions, headers: &[(&'static str, &'static str)]| {
            let headers: Vec<Header<'static>> =
                headers.iter().map(|(n, v)| Header::new(*n, *v)).collect();
            let read = check_headers(200, headers.into_iter(), options, SystemTime::now(), false);
            let windows = read.unwrap().windows;
            (windows.stale, windows.stale_if_error)
        };
        let directives = [(
            "Cache-Control",
            "max-age=30, stale-while-revalidate=40, stale-if-error=600",
        )];
        assert_eq!(windows(&ROUTE, &directives), (40, 600));
        assert_eq!(windows(&ROUTE, &[]), (0, 0));
        let route = RouteOptions::new(60).stale(20).stale_if_error(6000);
        assert_eq!(windows(&route, &[]), (20, 6000));
        assert_eq!(
            windows(&route, &directives),
            (20, 600),
            "like max-age against ttl: shorter only"
        );
        let targeted = [
            ("Cache-Control", "stale-if-error=5"),
            ("CDN-Cache-Control", "max-age=30, stale-if-error=900"),
        ];
        assert_eq!(windows(&ROUTE, &targeted), (0, 900));
        assert_eq!(
            windows(&ROUTE, &[("Cache-Control", "stale-while-revalidate=soon")]),
            (0, 0)
        );
    }

    #[test]
    fn authorized_requests_need_a_shareable_response() {
        let headers = |value: &'static str| vec![Header::new("Cache-Control", value)];
        let public = RouteOptions::new(60).public();
        let check = |value| {
            check_headers(
                200,
                headers(value).into_iter(),
                &public,
                SystemTime::now(),
                true,
            )
            .map(|freshness| freshness.ttl)
        };
        assert_eq!(check("max-age=30"), Err(Refusal::CacheControl));
        assert_eq!(check("public, max-age=30"), Ok(30));
        assert_eq!(check("s-maxage=30"), Ok(30));
        assert_eq!(check("must-revalidate"), Ok(60));
    }

    #[test]
    fn vary_is_merged_once() {
        let options = RouteOptions::new(60)
            .vary(&["Accept-Language"])
            .vary_cookies(&["lang"]);
        assert_eq!(
            merged_vary(None, &options).as_deref(),
            Some("Accept-Language, Cookie")
        );
        assert_eq!(
            merged_vary(Some("accept-language, Origin"), &options).as_deref(),
            Some("accept-language, Origin, Cookie")
        );
        assert_eq!(merged_vary(None, &ROUTE), None);
        // Regression: `Vary: *` became `*, Accept-Language, Cookie`.
        assert_eq!(merged_vary(Some("*"), &options), None);
        assert_eq!(merged_vary(Some("Origin, *"), &options), None);
    }

    #[test]
    fn if_modified_since_is_one_valid_date_compared_in_seconds() {
        let modified = "Sun, 06 Nov 1994 08:49:37 GMT";
        let since = |lines: &[&str]| unmodified_since(lines.iter().copied(), modified);
        assert!(since(&["Sun, 06 Nov 1994 08:49:37 GMT"]), "equal");
        assert!(since(&["Sun, 06 Nov 1994 08:49:38 GMT"]), "later");
        assert!(!since(&["Sun, 06 Nov 1994 08:49:36 GMT"]), "earlier");
        // The three formats a recipient must accept (RFC 9110 section 5.6.7).
        assert!(since(&["Sunday, 06-Nov-94 08:49:37 GMT"]));
        assert!(since(&["Sun Nov  6 08:49:37 1994"]));
        assert!(since(&["  Sun, 06 Nov 1994 08:49:37 GMT "]));
        for ignored in [
            &["yesterday"][..],
            &["Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"],
            &[
                "Sun, 06 Nov 1994 08:49:37 GMT",
                "Sun, 06 Nov 1994 08:49:37 GMT",
            ],
            &[""],
            &[],
        ] {
            assert!(!since(ignored), "{ignored:?} was read as a date");
        }
        assert!(!unmodified_since(
            ["Sun, 06 Nov 1994 08:49:37 GMT"].into_iter(),
            "last week"
        ));
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let matches = |field: &str, etag| etag_matches([field].into_iter(), etag);
        assert!(matches("\"a\"", "\"a\""));
        assert!(matches("W/\"a\"", "\"a\""));
        assert!(matches("\"a\"", "W/\"a\""));
        assert!(matches("\"x\", W/\"a\"", "W/\"a\""));
        assert!(matches("*", "W/\"a\""));
        assert!(!matches("\"b\"", "W/\"a\""));
        assert_eq!(
            Validators::among([("etag", "\"1\""), ("ETag", "\"2\""), ("last-modified", "x")]).etag,
            Some("\"1\"")
        );
    }

    #[test]
    fn hop_by_hop_headers_are_not_stored() {
        assert!(!is_stored_header("connection"));
        assert!(!is_stored_header("Transfer-Encoding"));
        assert!(!is_stored_header("x-cache"));
        assert!(is_stored_header("Content-Type"));
        assert!(is_stored_header("ETag"));
        assert!(is_stored_header("Date"), "a hit carries the origin's Date");
        assert!(!is_stored_header("rocket-route-cache-control"));
        assert!(is_stored_header("CDN-Cache-Control"), "for a CDN in front");
        assert_eq!(
            connection_options(["close, X-Hop", " keep-alive ,", "x-other"].into_iter()),
            ["close", "X-Hop", "keep-alive", "x-other"]
        );
    }
}
