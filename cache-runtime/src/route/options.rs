//! A route's options, fixed at compile time by `#[cached_route(...)]`.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::counting::RouteStats;

/// A route's options, fixed at compile time by `#[cached_route(...)]`, and its counters.
#[derive(Debug)]
pub struct RouteOptions {
    pub(crate) ttl: u32,
    pub(crate) vary: &'static [&'static str],
    pub(crate) vary_cookies: &'static [&'static str],
    pub(crate) public: bool,
    pub(crate) query: QueryKey,
    pub(crate) statuses: &'static [u16],
    /// Seconds a negative entry (a stored status from 400) is served instead of `ttl`; 0: `ttl`.
    pub(crate) negative_ttl: u32,
    pub(crate) honor_no_cache: bool,
    /// Seconds past the TTL an entry may be served while one request refreshes it.
    pub(crate) stale: u32,
    /// Seconds past the TTL an entry may stand in for a failing handler.
    pub(crate) stale_if_error: u32,
    /// Seconds past the TTL an entry is kept to be revalidated by the handler (`Validators`).
    pub(crate) keep: u32,
    /// The `Cache-Control` this cache sends on, for browsers and caches after it.
    pub(crate) downstream: Downstream,
    /// The key holds something of one client's by declaration (`vary_cookies`,
    /// `Authorization` / `Cookie` in `vary`): `downstream` pages are sent `private`.
    pub(crate) per_client: bool,
    /// The route names parameters in `trusted_guards`.
    pub(crate) trusts_guards: bool,
    /// Whether the debug-build warning about cookies the key does not hold was logged.
    pub(crate) warned_cookies: AtomicBool,
    pub(crate) stats: RouteStats,
    /// Lookups in a row that found nothing, up to a cap.
    pub(crate) misses_in_a_row: MissRun,
}

/// How many lookups of a route in a row found nothing (saturating): a route that keeps missing
/// (a long tail of URLs, each requested once) reads its entry together with the invalidation
/// counters and the lease, in one round trip instead of two. Written only when it changes, so
/// that a route that keeps hitting, or keeps missing, writes nothing shared on its lookups.
#[derive(Debug)]
pub struct MissRun(AtomicU8);

/// Misses in a row after which the next lookup is expected to miss too.
const EXPECTED_AFTER: u8 = 8;
const CAP: u8 = 15;

impl MissRun {
    const fn new() -> MissRun {
        MissRun(AtomicU8::new(0))
    }

    pub(crate) fn expects_miss(&self) -> bool {
        self.0.load(Ordering::Relaxed) >= EXPECTED_AFTER
    }

    /// Counts a lookup: whether it found an entry.
    pub(crate) fn looked_up(&self, found: bool) {
        let run = self.0.load(Ordering::Relaxed);
        match found {
            true if run != 0 => self.0.store(0, Ordering::Relaxed),
            false if run < CAP => self.0.store(run + 1, Ordering::Relaxed),
            _ => {}
        }
    }
}

/// The `Cache-Control` a route's responses carry on to browsers and caches after this one,
/// when the handler set none: derived from how long the entry stays fresh here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downstream {
    /// None is added.
    Off,
    /// `public, max-age=R`: browsers and shared caches keep it as long as this cache does.
    MaxAge,
    /// `public, max-age=0, s-maxage=R`: shared caches (a CDN) keep it; browsers revalidate,
    /// which the cache answers with a 304 from the entry.
    SharedMaxAge,
}

impl Downstream {
    /// Returns the `Cache-Control` value for an entry fresh `remaining` more seconds; `private`
    /// when the page belongs to one client (its key holds a keyed guard, a cookie, credentials):
    /// shared caches, which key pages by URL, must not keep it.
    pub(crate) fn cache_control(self, remaining: u64, private: bool) -> Option<String> {
        match (self, private) {
            (Downstream::Off, _) => None,
            (Downstream::MaxAge, false) => Some(format!("public, max-age={remaining}")),
            (Downstream::MaxAge, true) => Some(format!("private, max-age={remaining}")),
            (Downstream::SharedMaxAge, false) => {
                Some(format!("public, max-age=0, s-maxage={remaining}"))
            }
            // Browsers only, and they revalidate: what `s-maxage` asked of them.
            (Downstream::SharedMaxAge, true) => Some("private, max-age=0".to_owned()),
        }
    }
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
    /// Every parameter when a request guard of the handler may read the query (`&Origin`, a
    /// trusted guard), none otherwise: the route declares no query parameter, so a query
    /// string (`?utm_source=..`) changes nothing the handler sees.
    WhereRead,
}

impl QueryKey {
    /// Returns what the key holds for a request whose guards read the query or not.
    pub(crate) fn given(self, read: bool) -> QueryKey {
        match (self, read) {
            (QueryKey::WhereRead, true) => QueryKey::All,
            (QueryKey::WhereRead, false) => QueryKey::Ignored,
            (other, _) => other,
        }
    }
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
            negative_ttl: 0,
            honor_no_cache: false,
            stale: 0,
            stale_if_error: 0,
            keep: 0,
            downstream: Downstream::Off,
            per_client: false,
            trusts_guards: false,
            warned_cookies: AtomicBool::new(false),
            stats: RouteStats::new(),
            misses_in_a_row: MissRun::new(),
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

    pub const fn keep(mut self, seconds: u32) -> RouteOptions {
        self.keep = seconds;
        self
    }

    pub const fn downstream_max_age(mut self) -> RouteOptions {
        self.downstream = Downstream::MaxAge;
        self
    }

    /// Declares that the key holds something of one client's: `downstream` pages are sent
    /// `private`.
    pub const fn downstream_private(mut self) -> RouteOptions {
        self.per_client = true;
        self
    }

    /// Declares that the route vouches for request guards (`trusted_guards`).
    pub const fn trusts_guards(mut self) -> RouteOptions {
        self.trusts_guards = true;
        self
    }

    /// Warns, in debug builds and once per route, when a route that vouches for guards served a
    /// request carrying cookies, none of which its key holds. A guard reading one (a session)
    /// would make one client's page everyone's; a `KeyedGuard` is the way to key a page per user.
    pub(crate) fn warn_unkeyed_cookies(&self, request: &rocket::Request<'_>) {
        if !cfg!(debug_assertions)
            || !self.trusts_guards
            || self.warned_cookies.load(Ordering::Relaxed)
        {
            return;
        }
        let cookies = request.cookies();
        if cookies.iter().next().is_none()
            || self
                .vary_cookies
                .iter()
                .any(|name| cookies.get(name).is_some())
        {
            return;
        }
        if self.warned_cookies.swap(true, Ordering::Relaxed) {
            return;
        }
        let route = request
            .route()
            .map_or_else(String::new, |route| route.uri.to_string());
        log::warn!(
            "cache: route {route} vouches for request guards (`trusted_guards`) and served a \
             request carrying cookies, none of which its key holds (`vary_cookies` = {:?}): if a \
             trusted guard reads one of them (a session, a user), every client gets the first \
             client's page. Implement `rocket_route_cache::KeyedGuard` for such a guard instead \
             (logged once per route, in debug builds)",
            self.vary_cookies
        );
    }

    /// Declares that the query counts only when a request guard may read it.
    pub const fn query_where_read(mut self) -> RouteOptions {
        self.query = QueryKey::WhereRead;
        self
    }

    pub const fn downstream_s_maxage(mut self) -> RouteOptions {
        self.downstream = Downstream::SharedMaxAge;
        self
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

    pub const fn negative_ttl(mut self, seconds: u32) -> RouteOptions {
        self.negative_ttl = seconds;
        self
    }

    /// Returns the most seconds a response with `status` is served. A status from 400 says the
    /// page is missing or failed (RFC 9110 section 15.1's heuristically cacheable 404, 405, 410,
    /// 414 and 501 among them), an answer that tends to change sooner than a page or a redirect
    /// (the page gets written, the fault fixed): `negative_ttl` applies to those.
    pub(crate) fn ttl_for(&self, status: u16) -> u32 {
        match self.negative_ttl {
            0 => self.ttl,
            negative if status >= 400 => negative,
            _ => self.ttl,
        }
    }

    pub const fn honor_no_cache(mut self) -> RouteOptions {
        self.honor_no_cache = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_ttl_applies_from_400() {
        let options = RouteOptions::new(60).negative_ttl(5);
        let ttls: Vec<u32> = [200, 301, 399, 400, 404, 410, 500, 501]
            .map(|status| options.ttl_for(status))
            .into();
        assert_eq!(ttls, [60, 60, 60, 5, 5, 5, 5, 5]);
        assert_eq!(RouteOptions::new(60).ttl_for(404), 60, "without it, `ttl`");
    }

    #[test]
    fn a_miss_is_expected_after_eight_in_a_row_until_a_hit() {
        let run = MissRun::new();
        for misses in 1..=7 {
            run.looked_up(false);
            assert!(!run.expects_miss(), "after {misses} misses in a row");
        }
        run.looked_up(false);
        assert!(run.expects_miss(), "after 8 misses in a row");
        for _ in 0..100 {
            run.looked_up(false);
        }
        assert_eq!(run.0.load(Ordering::Relaxed), CAP, "saturates");
        run.looked_up(true);
        assert!(!run.expects_miss());
        assert_eq!(run.0.load(Ordering::Relaxed), 0);
    }
}
