//! The cache key: `{namespace}:{hex of a BLAKE3 hash of everything a response depends on}`.
//!
//! What goes into the hash, each field length-prefixed so that no two different requests can
//! produce the same byte stream:
//! - route identity: the mounted URI pattern (base included), rank, format and name, so that a
//!   route that forwards never serves another route's entry;
//! - method class: GET and HEAD share one entry;
//! - host, twice: as Rocket parsed it for the handler (`request.host()`: the `Host` header on
//!   HTTP/1.x, `:authority` on HTTP/2), and every raw `Host` header value in order, so that
//!   neither an HTTP/2 request whose `:authority` and `host` differ nor two malformed values
//!   share an entry with a request the handler answers differently. Absent differs from
//!   empty; case is kept, as the handler sees it (`Host`'s `Display`, `domain().as_str()` and
//!   `to_absolute` all keep the request's spelling; browsers send lowercase, so this costs
//!   no hits in practice);
//! - path, exactly as received (percent-encoding is not undone: two spellings are two entries,
//!   never one entry for two different resources);
//! - query, normalized: `&`-separated pairs stably sorted by name, so the order of different
//!   names does not matter while the order of a repeated name (a `Vec` parameter) does;
//! - the `vary` headers' and `vary_cookies` cookies' values, and the values of the handler's
//!   keyed guards (`KeyedGuard::cache_key`, or their absence).
//!
//! Whatever the request holds (8 KiB paths, CR/LF, NUL, invalid UTF-8 escapes), the key is the
//! namespace, a colon and 32 hex digits (128 bits of the hash): at most 97 bytes of safe
//! characters.

use std::borrow::Cow;
use std::fmt;

use rocket::{Request, Route};

use crate::route::guard_key::GuardKey;
use crate::route::options::{QueryKey, RouteOptions};
use crate::util::hex;

/// The longest key: a 64-byte namespace, a colon, 32 hex digits and a lease suffix.
const KEY_CAPACITY: usize = 64 + 1 + 32 + LEASE_SUFFIX.len();

/// Appended to a key to name its lease (stampede protection).
const LEASE_SUFFIX: &[u8] = b"~l";

/// A memcached-safe key, held inline (building one allocates nothing). Nothing from a request
/// reaches the wire except through the hash.
#[derive(Clone)]
pub struct CacheKey {
    len: u8,
    bytes: [u8; KEY_CAPACITY],
}

impl CacheKey {
    fn new(parts: &[&[u8]]) -> CacheKey {
        let mut key = CacheKey {
            len: 0,
            bytes: [0; KEY_CAPACITY],
        };
        for part in parts {
            let start = key.len as usize;
            key.bytes[start..start + part.len()].copy_from_slice(part);
            key.len += part.len() as u8;
        }
        key
    }

    /// Returns the key of this entry's lease: who recomputes it while others wait or serve it
    /// stale.
    pub(crate) fn lease(&self) -> CacheKey {
        CacheKey::new(&[self.as_bytes(), LEASE_SUFFIX])
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    pub fn as_str(&self) -> &str {
        // Always ASCII: a validated namespace, a colon and hex digits.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns a key the caller vouches for (benchmarks' raw operations only).
    pub(crate) fn trusted(key: &str) -> CacheKey {
        assert!(
            key.len() <= KEY_CAPACITY,
            "raw keys are at most {KEY_CAPACITY} bytes"
        );
        CacheKey::new(&[key.as_bytes()])
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &CacheKey) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CacheKey {}

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.as_str())
    }
}

/// The parts of a request the key is built from, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// The route's mounted URI pattern, e.g. `/blog/article/<id>?<lang>`.
    pub route_uri: &'a str,
    pub route_rank: isize,
    /// The route's `format` media type as (top, sub): a JSON and an HTML route on one path are
    /// two routes.
    pub route_format: Option<(&'a str, &'a str)>,
    pub route_name: Option<&'a str>,
    /// The host the handler sees (`request.host()`), as its domain and port.
    pub host: Option<(&'a str, Option<u16>)>,
    /// Every raw `Host` header value, in order (none on most HTTP/2 requests).
    pub host_headers: &'a [&'a str],
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// Which query parameters count.
    pub query_key: QueryKey,
    /// The request headers and cookies the route varies on, with their values.
    pub varied: &'a [Varied<'a>],
    /// The values of the handler's keyed guards (`KeyedGuard`), framed.
    pub guards: &'a [u8],
}

/// One `vary` header or `vary_cookies` cookie and what the request carries for it. Absent
/// differs from empty; repeated headers are kept in order.
#[derive(Debug, Clone)]
pub struct Varied<'a> {
    pub cookie: bool,
    pub name: &'a str,
    pub present: bool,
    pub values: Vec<&'a str>,
}

impl<'a> KeyParts<'a> {
    /// Returns the parts of a request for `path`, with no host, query or varied values, served by
    /// a route of pattern `route_uri`: the one fixture unit tests build keys from (they set the
    /// other fields where they matter).
    #[cfg(test)]
    pub(crate) fn fixture(route_uri: &'a str, path: &'a str) -> KeyParts<'a> {
        KeyParts {
            route_uri,
            route_rank: 0,
            route_format: None,
            route_name: None,
            host: None,
            host_headers: &[],
            path,
            query: None,
            query_key: QueryKey::All,
            varied: &[],
            guards: &[],
        }
    }

    /// Returns the parts of the request being served by `route`; `host_headers` are the request's
    /// raw `Host` values (collected by the caller, which owns any buffer they need).
    pub fn of(
        request: &'a Request<'_>,
        route: &'a Route,
        host_headers: &'a [&'a str],
    ) -> KeyParts<'a> {
        KeyParts {
            route_uri: route.uri.as_str(),
            route_rank: route.rank,
            route_format: route
                .format
                .as_ref()
                .map(|f| (f.top().as_str(), f.sub().as_str())),
            route_name: route.name.as_deref(),
            host: request
                .host()
                .map(|host| (host.domain().as_str(), host.port())),
            host_headers,
            path: request.uri().path().as_str(),
            query: request.uri().query().map(|q| q.as_str()),
            query_key: QueryKey::All,
            varied: &[],
            guards: &[],
        }
    }

    pub fn build(&self, namespace: &str) -> CacheKey {
        // Everything is framed into one buffer and hashed once: BLAKE3's per-call overhead
        // dominates for inputs this small.
        let mut input = Framed::new();
        // The key's version changes with the hash input or the frame format, so that during a
        // rolling deploy instances of two releases never read each other's entries; each
        // change is in the CHANGELOG.
        input.field(b"rc-key-v6");
        input.field(self.route_uri.as_bytes());
        input.field(&self.route_rank.to_le_bytes());
        match self.route_format {
            Some((top, sub)) => {
                input.flag(true);
                input.lowercase_field(top);
                input.lowercase_field(sub);
            }
            None => input.flag(false),
        }
        input.optional(self.route_name.map(str::as_bytes));
        input.field(b"GET");
        match self.host {
            Some((domain, port)) => {
                input.flag(true);
                input.field(domain.as_bytes());
                input.optional(port.map(u16::to_le_bytes).as_ref().map(|port| &port[..]));
            }
            None => input.flag(false),
        }
        input.count(self.host_headers.len());
        for value in self.host_headers {
            input.field(value.as_bytes());
        }
        input.field(self.path.as_bytes());
        match (self.query, self.query_key) {
            (Some(query), QueryKey::All) => {
                input.flag(true);
                frame_query(&mut input, query, None, Order::ByName);
            }
            (Some(query), QueryKey::AllInOrder) => {
                input.flag(true);
                frame_query(&mut input, query, None, Order::AsReceived);
            }
            (Some(query), QueryKey::Only(names)) => {
                input.flag(true);
                frame_query(&mut input, query, Some(names), Order::ByName);
            }
            (None, _) | (Some(_), QueryKey::Ignored | QueryKey::WhereRead) => input.flag(false),
        }
        input.count(self.varied.len());
        for varied in self.varied {
            input.flag(varied.cookie);
            if varied.cookie {
                input.field(varied.name.as_bytes());
            } else {
                input.lowercase_field(varied.name);
            }
            input.flag(varied.present);
            input.count(varied.values.len());
            for value in &varied.values {
                input.field(value.as_bytes());
            }
        }
        input.field(self.guards);
        // 128 bits of BLAKE3: serving one request another's entry would take a second
        // preimage, 2^128 work; accidental collisions are negligible at any cache size.
        let digest = input.finish();
        let hex: [u8; 32] = hex(digest.as_bytes());
        CacheKey::new(&[namespace.as_bytes(), b":", &hex])
    }
}

/// Frames query pairs, stably sorted by the first key Rocket reads from their name: the name
/// percent- and `+`-decoded, up to the first `.`, `[` or `:`. Pairs Rocket assembles by
/// arrival order (`v[1]=a&v[0]=b`, `page=1&p%61ge=2`, `v=a&v[]=b`) share a sort key and so keep
/// their order; only the order of different fields is normalized. The raw pairs are hashed, so
/// two spellings stay two entries. Empty pairs (`a=1&&b=2`) carry nothing and are skipped;
/// `flag` and `flag=` stay different.
///
/// With `only`, a pair is skipped only when its first key, compared case-insensitively, is not
/// listed: `p%61ge=2`, `PAGE=2`, `page.x=2` and `page[0]=2` all count for `page`.
///
/// With [`Order::AsReceived`] nothing is reordered: `a=1&b=2` and `b=2&a=1` are two entries.
fn frame_query(input: &mut Framed, query: &str, only: Option<&[&str]>, order: Order) {
    // One pass over the query; the sort is stable and, for the few pairs a query usually has,
    // an insertion sort over a small vector.
    let mut pairs: Vec<(&str, Cow<'_, [u8]>)> = Vec::with_capacity(8);
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let field = first_key(query_name(pair));
        if let Some(only) = only {
            let listed = only
                .iter()
                .any(|name| name.as_bytes().eq_ignore_ascii_case(&field));
            if !listed {
                continue;
            }
        }
        pairs.push((pair, field));
    }
    if order == Order::ByName {
        pairs.sort_by(|a, b| a.1.cmp(&b.1));
    }
    input.count(pairs.len());
    for (pair, _) in &pairs {
        input.field(pair.as_bytes());
    }
}

/// How query pairs are ordered in the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Stably by field name: the order of different fields does not split entries.
    ByName,
    /// As received, for routes whose handler may see the order.
    AsReceived,
}

/// Returns the first key of a form field name, as Rocket reads it: the name percent- and
/// `+`-decoded (invalid UTF-8 replaced, as Rocket's query decoding does), then its first key as
/// Rocket's own `NameView` cuts it: up to the first `.` or `[` after the first byte, a leading
/// `.` or brackets dropped (`.page` and `[page]` are `page` to Rocket, and feed `?<page>`).
fn first_key(name: &str) -> Cow<'_, [u8]> {
    let raw = name.as_bytes();
    if !raw.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Cow::Borrowed(rocket_first_key(name).as_bytes());
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match raw[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let digit = |at: usize| raw.get(at).and_then(|b| hex(*b));
                match (digit(i + 1), digit(i + 2)) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&out);
    Cow::Owned(rocket_first_key(&decoded).as_bytes().to_vec())
}

/// Returns the first key Rocket's form parser reads from a decoded field name.
fn rocket_first_key(name: &str) -> &str {
    rocket::form::name::NameView::new(name).key_lossy().as_str()
}

fn query_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(name, _)| name)
}

/// The hash input, every field written as `length || bytes`. Buffered on the stack and
/// hashed in one call; only an input longer than the buffer (a long path or query) streams
/// through an incremental hasher, which gives the same digest.
struct Framed {
    buffer: [u8; 512],
    len: usize,
    spilled: Option<blake3::Hasher>,
}

impl Framed {
    fn new() -> Framed {
        Framed {
            buffer: [0; 512],
            len: 0,
            spilled: None,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > self.buffer.len() {
            let hasher = self.spilled.get_or_insert_with(blake3::Hasher::new);
            hasher.update(&self.buffer[..self.len]);
            self.len = 0;
            if bytes.len() > self.buffer.len() {
                hasher.update(bytes);
                return;
            }
        }
        self.buffer[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn finish(self) -> blake3::Hash {
        match self.spilled {
            None => blake3::hash(&self.buffer[..self.len]),
            Some(mut hasher) => {
                hasher.update(&self.buffer[..self.len]);
                hasher.finalize()
            }
        }
    }

    fn count(&mut self, n: usize) {
        // Request parts are far below 4 GiB (Rocket's own limits are kilobytes).
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.write(&n.to_le_bytes());
    }

    fn flag(&mut self, present: bool) {
        self.write(&[u8::from(present)]);
    }

    fn field(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.write(bytes);
    }

    fn optional(&mut self, bytes: Option<&[u8]>) {
        self.flag(bytes.is_some());
        if let Some(bytes) = bytes {
            self.field(bytes);
        }
    }

    fn lowercase_field(&mut self, text: &str) {
        self.count(text.len());
        let mut chunk = [0u8; 64];
        for piece in text.as_bytes().chunks(chunk.len()) {
            let out = &mut chunk[..piece.len()];
            out.copy_from_slice(piece);
            out.make_ascii_lowercase();
            self.write(out);
        }
    }
}

/// Returns the key `request`, served by `route` with `options`, is stored under.
pub fn key_for(
    request: &Request<'_>,
    route: &rocket::Route,
    namespace: &str,
    options: &RouteOptions,
    guards: &GuardKey,
) -> CacheKey {
    // Both the host the handler sees and the raw `Host` values: over HTTP/2 the handler's host
    // is `:authority`, which a `host` header sent alongside may contradict.
    let host_headers = HostHeaders::of(request);
    let mut parts = KeyParts::of(request, route, host_headers.as_slice());
    parts.query_key = options.query.given(guards.reads_query());
    parts.guards = guards.bytes();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &'static str, query: Option<&'static str>) -> KeyParts<'static> {
        KeyParts {
            route_rank: 2,
            route_name: Some("article"),
            host: Some(("Example.COM", None)),
            host_headers: &["Example.COM"],
            query,
            ..KeyParts::fixture("/article/<id>?<lang>", path)
        }
    }

    fn key(path: &'static str, query: Option<&'static str>) -> String {
        parts(path, query).build("rc").as_str().to_owned()
    }

    fn assert_safe(key: &CacheKey) {
        assert!(key.as_str().len() <= 250, "{} bytes", key.as_str().len());
        assert!(
            key.as_bytes().iter().all(|b| b.is_ascii_graphic()),
            "{key:?}"
        );
    }

    #[test]
    fn the_key_is_namespace_colon_32_hex_digits() {
        let k = parts("/article/1", Some("lang=en")).build("shop-v2");
        assert_safe(&k);
        let (ns, hex) = k.as_str().split_once(':').unwrap();
        assert_eq!(ns, "shop-v2");
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn a_collected_query_keeps_the_order_of_different_names() {
        let in_order = |query| {
            let mut parts = parts("/a", Some(query));
            parts.query_key = QueryKey::AllInOrder;
            parts.build("rc")
        };
        assert_ne!(in_order("x=1&y=2"), in_order("y=2&x=1"));
        assert_eq!(in_order("x=1&y=2"), in_order("x=1&y=2"));
    }

    #[test]
    fn parameter_order_does_not_matter_but_values_and_repeats_do() {
        assert_eq!(key("/a", Some("x=1&y=2")), key("/a", Some("y=2&x=1")));
        assert_ne!(key("/a", Some("x=1&y=2")), key("/a", Some("x=1&y=3")));
        // A repeated name is a list: its order is meaningful.
        assert_ne!(key("/a", Some("x=1&x=2")), key("/a", Some("x=2&x=1")));
        assert_eq!(key("/a", Some("x=1&&y=2")), key("/a", Some("y=2&x=1")));
        assert_ne!(key("/a", Some("flag")), key("/a", Some("flag=")));
        assert_ne!(key("/a", None), key("/a", Some("")));
    }

    #[test]
    fn pairs_of_one_field_keep_their_order() {
        // Regression: names that decode or nest to the same field were grouped apart from it, so
        // `page=1&p%61ge=2` shared a key with `p%61ge=2&page=1`.
        assert_ne!(
            key("/a", Some("page=1&p%61ge=2")),
            key("/a", Some("p%61ge=2&page=1"))
        );
        assert_ne!(key("/a", Some("v=a&v[]=b")), key("/a", Some("v[]=b&v=a")));
        assert_ne!(
            key("/a", Some("a+b=1&a%20b=2")),
            key("/a", Some("a%20b=2&a+b=1"))
        );
        // Different fields still sort.
        assert_eq!(
            key("/a", Some("p%61ge=2&sort=x")),
            key("/a", Some("sort=x&p%61ge=2"))
        );
    }

    #[test]
    fn first_keys_decode_and_cut() {
        assert_eq!(&*first_key("page"), b"page");
        assert_eq!(&*first_key("p%61ge"), b"page");
        assert_eq!(&*first_key("pa+ge"), b"pa ge");
        assert_eq!(&*first_key("page.x"), b"page");
        assert_eq!(&*first_key("page[0]"), b"page");
        assert_eq!(&*first_key("p%2eage"), b"p");
        // A leading `.` or brackets are dropped: Rocket feeds `?<page>` with these.
        assert_eq!(&*first_key(".page"), b"page");
        assert_eq!(&*first_key("[page]"), b"page");
        assert_eq!(&*first_key("%2Epage"), b"page");
        // `:` is part of a key to Rocket.
        assert_eq!(&*first_key("page:1"), b"page:1");
        assert_eq!(&*first_key("bad%zz"), b"bad%zz");
        assert_eq!(&*first_key("%"), b"%");
        assert_eq!(&*first_key("%4"), b"%4");
    }

    #[test]
    fn structured_form_fields_keep_their_order() {
        // Rocket assembles these in arrival order: different values for a `Vec` or map field.
        assert_ne!(
            key("/a", Some("v[1]=a&v[0]=b")),
            key("/a", Some("v[0]=b&v[1]=a"))
        );
        assert_ne!(
            key("/a", Some("v%5B1%5D=a&v%5B0%5D=b")),
            key("/a", Some("v%5B0%5D=b&v%5B1%5D=a"))
        );
        assert_ne!(
            key("/a", Some("u.name=a&u.name=b")),
            key("/a", Some("u.name=b&u.name=a"))
        );
        // Plain names around them still sort.
        assert_eq!(
            key("/a", Some("z=1&v[0]=x&a=2&v[1]=y")),
            key("/a", Some("a=2&v[0]=x&v[1]=y&z=1"))
        );
    }

    #[test]
    fn query_only_skips_unlisted_plain_names_but_never_a_hidden_listed_one() {
        let only = |query: &'static str| {
            let mut p = parts("/a", Some(query));
            p.query_key = QueryKey::Only(&["page", "sort"]);
            p.build("rc")
        };
        assert_eq!(only("page=2&utm_source=x"), only("utm_medium=y&page=2"));
        assert_ne!(only("page=2"), only("page=3"));
        assert_eq!(only("sort=a&page=2"), only("page=2&sort=a"));
        // Rocket decodes `p%61ge` to `page`: it must not share the entry of a request without it.
        for hidden in ["p%61ge=9", "page.x=9", "page[0]=9", "PAGE=9", "Page=9"] {
            assert_ne!(only(hidden), only(""), "{hidden}");
        }
        assert_eq!(
            only("utm.x=1&p=2"),
            only(""),
            "unlisted fields, structured or not, are skipped"
        );
        let mut ignored = parts("/a", Some("page=1"));
        ignored.query_key = QueryKey::Ignored;
        let mut other = parts("/a", Some("page=2"));
        other.query_key = QueryKey::Ignored;
        assert_eq!(ignored.build("rc"), other.build("rc"));
    }

    #[test]
    fn vary_values_are_in_the_key_and_absent_differs_from_empty() {
        let with = |varied: &[Varied<'static>]| {
            let mut p = parts("/a", None);
            let varied = varied.to_vec();
            p.varied = &varied;
            p.build("rc")
        };
        let header = |present: bool, values: Vec<&'static str>| Varied {
            cookie: false,
            name: "Accept-Language",
            present,
            values,
        };
        assert_ne!(
            with(&[header(true, vec!["en"])]),
            with(&[header(true, vec!["fr"])])
        );
        assert_ne!(
            with(&[header(false, vec![])]),
            with(&[header(true, vec![""])])
        );
        assert_ne!(
            with(&[header(true, vec!["en", "fr"])]),
            with(&[header(true, vec!["en"])])
        );
        assert_ne!(
            with(&[header(true, vec!["en", "fr"])]),
            with(&[header(true, vec!["fr", "en"])])
        );
        let mut cookie = header(true, vec!["en"]);
        cookie.cookie = true;
        assert_ne!(with(&[cookie]), with(&[header(true, vec!["en"])]));
        let mut upper = header(true, vec!["en"]);
        upper.name = "ACCEPT-LANGUAGE";
        assert_eq!(with(&[upper]), with(&[header(true, vec!["en"])]));
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        assert_ne!(key("/a", Some("b")), key("/a?b", None));
        assert_ne!(key("/ab", Some("c=1")), key("/a", Some("bc=1")));
        assert_ne!(key("/a", Some("x=1&y=2")), key("/a", Some("x=1%26y%3D2")));
    }

    #[test]
    fn host_keeps_its_case_and_absent_differs_from_empty() {
        // The handler renders `Host` as sent: `SHOP.example` must not fill `shop.example`'s entry.
        let mut a = parts("/a", None);
        let mut b = parts("/a", None);
        a.host = Some(("EXAMPLE.com", None));
        b.host = Some(("example.com", None));
        assert_ne!(a.build("rc"), b.build("rc"));
        b.host = Some(("EXAMPLE.com", None));
        assert_eq!(a.build("rc"), b.build("rc"));
        a.host = None;
        b.host = Some(("", None));
        assert_ne!(a.build("rc"), b.build("rc"));
        let mut c = parts("/a", None);
        let mut d = parts("/a", None);
        c.host_headers = &["EXAMPLE.com"];
        d.host_headers = &["example.com"];
        assert_ne!(c.build("rc"), d.build("rc"));
    }

    #[test]
    fn lowercasing_longer_than_its_buffer_matches() {
        let mut upper = Framed::new();
        let mut lower = Framed::new();
        upper.lowercase_field(&"A".repeat(200));
        lower.field("a".repeat(200).as_bytes());
        assert_eq!(upper.finish(), lower.finish());
    }

    #[test]
    fn host_port_is_in_the_key() {
        let mut a = parts("/a", None);
        let mut b = parts("/a", None);
        a.host = Some(("example.com", None));
        b.host = Some(("example.com", Some(80)));
        assert_ne!(a.build("rc"), b.build("rc"));
        a.host = Some(("example.com", Some(8080)));
        assert_ne!(a.build("rc"), b.build("rc"));
    }

    #[test]
    fn raw_host_headers_are_kept_absent_differs_from_empty() {
        let with = |headers: &'static [&'static str]| {
            let mut p = parts("/a", None);
            p.host_headers = headers;
            p.build("rc")
        };
        assert_ne!(with(&[]), with(&[""]));
        assert_ne!(with(&["a.example"]), with(&["b.example"]));
        assert_ne!(with(&["a.example"]), with(&["a.example", "a.example"]));
        assert_ne!(with(&["a.example", "b"]), with(&["b", "a.example"]));
        assert_ne!(with(&["a.example\nb"]), with(&["a.example", "b"]));
        assert_ne!(with(&["a.example:x"]), with(&["a.example:y"]));
    }

    #[test]
    fn the_handlers_host_and_the_raw_header_are_separate_fields() {
        // HTTP/2: `:authority` is what the handler sees, a `host` header may say otherwise.
        let request = |authority: Option<(&'static str, Option<u16>)>,
                       headers: &'static [&'static str]| {
            let mut p = parts("/", None);
            p.host = authority;
            p.host_headers = headers;
            p.build("rc")
        };
        let http1 = request(Some(("shop-a.example", None)), &["shop-a.example"]);
        let h2_lying = request(Some(("evil.example", None)), &["shop-a.example"]);
        let h2_plain = request(Some(("shop-a.example", None)), &[]);
        let h2_no_authority = request(None, &["shop-a.example"]);
        assert_ne!(http1, h2_lying);
        assert_ne!(http1, h2_plain);
        assert_ne!(http1, h2_no_authority);
        assert_ne!(h2_plain, h2_no_authority);
        // A value cannot move between the two fields.
        assert_ne!(request(Some(("a", None)), &[]), request(None, &["a"]));
    }

    #[test]
    fn route_identity_separates_routes_with_the_same_path() {
        let a = parts("/a", None);
        let mut b = a;
        b.route_rank = 3;
        assert_ne!(a.build("rc"), b.build("rc"));
        let mut c = a;
        c.route_uri = "/<any>";
        assert_ne!(a.build("rc"), c.build("rc"));
        let mut d = a;
        d.route_uri = "/v2/article/<id>?<lang>";
        assert_ne!(a.build("rc"), d.build("rc"));
    }

    #[test]
    fn long_inputs_hash_the_same_streamed_or_buffered() {
        let mut small = Framed::new();
        let mut large = Framed::new();
        let text = "x".repeat(2000);
        small.write(text.as_bytes());
        for chunk in text.as_bytes().chunks(7) {
            large.write(chunk);
        }
        assert_eq!(small.finish(), blake3::hash(text.as_bytes()));
        assert_eq!(large.finish(), blake3::hash(text.as_bytes()));
    }

    #[test]
    fn the_longest_namespace_fits() {
        let namespace = "n".repeat(64);
        let k = parts("/a", None).build(&namespace);
        assert_eq!(k.as_str().len(), 97);
        assert!(k.as_str().starts_with(&namespace));
    }

    #[test]
    fn hostile_requests_still_give_short_safe_keys() {
        let long_path: &'static str = format!("/{}", "a".repeat(8 * 1024)).leak();
        let many: &'static str = (0..10_000)
            .map(|i| format!("p{i}={i}"))
            .collect::<Vec<_>>()
            .join("&")
            .leak();
        let cases: [(&'static str, Option<&'static str>); 6] = [
            (long_path, None),
            ("/a%0d%0aset%20x%200%200%201", Some("q=%0d%0a")),
            ("/a%00b", Some("%00=%00")),
            ("/a b\r\nc", Some("x y=\0")),
            ("/%ff%fe", Some("%c3%28=1")),
            ("/a", Some(many)),
        ];
        let mut seen = std::collections::HashSet::new();
        for (path, query) in cases {
            let k = parts(path, query).build("rc");
            assert_safe(&k);
            assert!(seen.insert(k), "two hostile requests shared a key");
        }
    }
}
