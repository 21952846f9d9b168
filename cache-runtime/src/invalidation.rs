//! Invalidation by generation counters.
//!
//! Memcached cannot list keys, so an entry is never found to be deleted. Instead an entry
//! depends on a few counters:
//!
//! - the namespace's (`invalidate_all`),
//! - its path's (`invalidate(uri)`: every host, query, `vary` value, GET and HEAD; the path
//!   as `spelling.rs` spells it, so that `/articles/05` and `/articles/5` share one),
//! - its route's, for the handler's parameter values (`article::invalidate(5)`),
//! - one per tag the route declares (`invalidate_tag("articles")`);
//!
//! and records a fingerprint of their values when it was rendered (its stamp). Bumping any of
//! them changes the fingerprint later lookups compute, so the entry reads as a miss and is
//! rendered again and overwritten.
//!
//! Paths, parameter values and tags are hashed onto a fixed set of [`SHARED_COUNTERS`]
//! counters, so that their number never depends on how many distinct URLs are requested. In
//! Memcached they are created on first read with a random value: one that is evicted or
//! expires comes back as another random value, which can only drop entries, never revive one.
//! The embedded store holds all of them from the start and never evicts one.
//!
//! Reading every counter on every hit would cost a hit several operations. So each
//! invalidation also bumps one more counter, the namespace's epoch, after the one it targets;
//! an entry records the epoch it was rendered in, and a hit reads the entry and the epoch only
//! (one round trip, two operations). Only when the epoch moved does a second round trip read the
//! entry's counters: unchanged, the entry is served and stored again recorded in the new epoch
//! (once, compared by CAS), so that its next hits take the short path again.
//!
//! With Memcached, each server holds its own copy of every counter, next to the entries it
//! holds: a lookup asks one server, and losing a server loses only its entries. Invalidating
//! bumps the copies on every server, each server's in order (the counter, then the epoch).

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rocket::http::uri::{Absolute, Origin, Reference, Uri};
use rocket::Request;

use crate::cache::{global, Cache};

/// One generation counter: the namespace's, the epoch, or one of [`SHARED_COUNTERS`] that
/// paths, routes' parameter values and tags are hashed onto. Named by [`InvalidationUri`],
/// which only this crate implements usefully.
#[doc(hidden)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct GenId(Counter);

/// Where a counter lives.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Counter {
    Everything,
    Epoch,
    /// An index below [`SHARED_COUNTERS`].
    Shared(u16),
}

/// How many counters paths, routes' parameter values and tags share. Requests name counters
/// (every distinct URL its own path), so their number must not depend on traffic: a scan of
/// made-up URLs would otherwise fill a store with counters, pushing out those of real pages
/// (each then comes back with a new value, dropping its entries at the next check). Hashed
/// onto a fixed set, two names sometimes share a counter: bumping it drops both, never fewer
/// entries than asked (an unrelated entry, with three or four counters, is dropped by a given
/// invalidation with odds of about 1 in 20,000).
pub(crate) const SHARED_COUNTERS: usize = 1 << 16;

const EVERYTHING: u8 = 0;
const PATH: u8 = 1;
const ROUTE: u8 = 2;
const TAG: u8 = 3;
const EPOCH: u8 = 4;
const SHARED: u8 = 5;

/// Separates parameter values in a route counter's input: never produced by `Debug` (which
/// writes UTF-8).
const VALUE_END: u8 = 0xff;

fn digest(kind: u8, write: impl FnOnce(&mut blake3::Hasher)) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[kind]);
    write(&mut hasher);
    let mut id = [0; 16];
    id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    id
}

impl GenId {
    fn hashed(kind: u8, write: impl FnOnce(&mut blake3::Hasher)) -> GenId {
        let [low, high, ..] = digest(kind, write);
        GenId(Counter::Shared(u16::from_le_bytes([low, high])))
    }

    /// The namespace's counter: every entry depends on it.
    pub(crate) fn everything() -> GenId {
        GenId(Counter::Everything)
    }

    /// The namespace's epoch: bumped by every invalidation, read by every hit.
    pub(crate) fn epoch() -> GenId {
        GenId(Counter::Epoch)
    }

    pub(crate) fn counter(&self) -> Counter {
        self.0
    }

    /// A path's counter, from its segments as [`crate::spelling`] spells them.
    pub(crate) fn path<'a>(segments: impl Iterator<Item = &'a str>) -> GenId {
        GenId::hashed(PATH, |hasher| {
            for segment in segments {
                hasher.update(&(segment.len() as u64).to_le_bytes());
                hasher.update(segment.as_bytes());
            }
        })
    }

    /// A route's counter for these parameter values (`route` names the handler).
    pub(crate) fn route(route: &str, values: &[&dyn fmt::Debug]) -> GenId {
        struct Writer<'h>(&'h mut blake3::Hasher);
        impl fmt::Write for Writer<'_> {
            fn write_str(&mut self, text: &str) -> fmt::Result {
                self.0.update(text.as_bytes());
                Ok(())
            }
        }
        GenId::hashed(ROUTE, |hasher| {
            hasher.update(&(route.len() as u64).to_le_bytes());
            hasher.update(route.as_bytes());
            for value in values {
                // Formatting into a hasher cannot fail; a `Debug` impl that reports an error
                // still wrote the same bytes on both sides.
                let _ = fmt::write(&mut Writer(hasher), format_args!("{value:?}"));
                hasher.update(&[VALUE_END]);
            }
        })
    }

    /// A tag's counter.
    pub(crate) fn tag(tag: &str) -> GenId {
        GenId::hashed(TAG, |hasher| {
            hasher.update(tag.as_bytes());
        })
    }

    /// 32 lowercase hex digits, distinct per counter (the Memcached key's suffix).
    pub(crate) fn hex(&self) -> [u8; 32] {
        static EVERYTHING_ID: OnceLock<[u8; 16]> = OnceLock::new();
        static EPOCH_ID: OnceLock<[u8; 16]> = OnceLock::new();
        let id = match self.0 {
            Counter::Everything => *EVERYTHING_ID.get_or_init(|| digest(EVERYTHING, |_| {})),
            Counter::Epoch => *EPOCH_ID.get_or_init(|| digest(EPOCH, |_| {})),
            Counter::Shared(index) => digest(SHARED, |hasher| {
                hasher.update(&index.to_le_bytes());
            }),
        };
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0; 32];
        for (i, byte) in id.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
        }
        out
    }
}

/// The fingerprint of a lookup's counter values, in order. Each step is a bijection of the
/// running value and of the next counter, so changing any one counter always changes it.
pub(crate) fn stamp(values: impl IntoIterator<Item = u64>) -> u64 {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for value in values {
        state = (state ^ value).wrapping_mul(0xff51_afd7_ed55_8ccd);
        state ^= state >> 33;
    }
    state
}

/// A counter's first value: random, so that a counter created again (after an eviction, a
/// restart, an expiry) never repeats a value an old entry was stamped with.
pub(crate) fn fresh_generation() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new()
        .hash_one(COUNT.fetch_add(1, Ordering::Relaxed))
        .max(1)
}

/// What a cached handler's entries depend on besides their path: the handler and its parameter
/// values, and its tags. Built by the generated code before the handler runs.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Scope {
    pub(crate) route: GenId,
    pub(crate) tags: Vec<GenId>,
}

impl Scope {
    /// `route` names the handler (`module::path::name`), `values` are its route parameters in
    /// declaration order, `tags` its tags with parameters filled in.
    pub fn new(route: &str, values: &[&dyn fmt::Debug], tags: &[&str]) -> Scope {
        Scope {
            route: GenId::route(route, values),
            tags: tags.iter().map(|tag| GenId::tag(tag)).collect(),
        }
    }

    /// The counters a lookup for `request` reads, in stamp order. Computed on misses and after
    /// invalidations only: a hit in the current epoch reads the epoch alone.
    pub(crate) fn counters(&self, request: &Request<'_>) -> Vec<GenId> {
        let mut counters = Vec::with_capacity(4 + self.tags.len());
        counters.push(GenId::everything());
        counters.extend(crate::spelling::served_path_counters(request));
        counters.push(self.route);
        counters.extend_from_slice(&self.tags);
        counters
    }
}

/// Why an invalidation may not have taken effect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidationError {
    /// The text given to [`invalidate`] is not a URI.
    BadUri(String),
    /// These Memcached servers did not confirm it (down, stalled): the entries they hold may
    /// still be served until the call is repeated successfully or they expire.
    Unconfirmed(Vec<(String, String)>),
}

impl fmt::Display for InvalidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidationError::BadUri(why) => write!(f, "not a URI to invalidate: {why}"),
            InvalidationError::Unconfirmed(servers) => {
                f.write_str("invalidation not confirmed by ")?;
                for (i, (server, cause)) in servers.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{server} ({cause})")?;
                }
                f.write_str("; entries there may be served until it is repeated or they expire")
            }
        }
    }
}

impl std::error::Error for InvalidationError {}

/// A URI whose path [`invalidate`] drops: what `uri!` produces (`Origin`, `Absolute`,
/// `Reference`), or text parsed as a URI.
pub trait InvalidationUri {
    /// The counters of its path, in every spelling that reads as the same values.
    #[doc(hidden)]
    fn counters(&self) -> Result<Vec<GenId>, InvalidationError>;
}

impl InvalidationUri for Origin<'_> {
    fn counters(&self) -> Result<Vec<GenId>, InvalidationError> {
        Ok(crate::spelling::invalidated_path_counters(
            self.path().segments(),
        ))
    }
}

impl InvalidationUri for Absolute<'_> {
    fn counters(&self) -> Result<Vec<GenId>, InvalidationError> {
        Ok(crate::spelling::invalidated_path_counters(
            self.path().segments(),
        ))
    }
}

impl InvalidationUri for Reference<'_> {
    fn counters(&self) -> Result<Vec<GenId>, InvalidationError> {
        Ok(crate::spelling::invalidated_path_counters(
            self.path().segments(),
        ))
    }
}

/// Text: a path (`/articles/5?lang=fr`) or an `http(s)://` URI. Anything else is refused, so
/// that a tag given by mistake (`"article:5"`, which parses as a URI with scheme `article`)
/// is an error instead of invalidating an unrelated path.
impl InvalidationUri for str {
    fn counters(&self) -> Result<Vec<GenId>, InvalidationError> {
        let refused = |why: &str| {
            Err(InvalidationError::BadUri(format!(
                "`{self}` {why}; give a path such as `/articles/5` (for a tag, use \
                 `invalidate_tag`)"
            )))
        };
        match Uri::parse_any(self) {
            Ok(Uri::Origin(origin)) => origin.counters(),
            Ok(Uri::Absolute(absolute))
                if ["http", "https"]
                    .iter()
                    .any(|scheme| absolute.scheme().eq_ignore_ascii_case(scheme))
                    && absolute.authority().is_some() =>
            {
                absolute.counters()
            }
            Ok(Uri::Absolute(_)) => refused("is not an http(s) URI"),
            Ok(_) => refused("is not a path"),
            Err(error) => refused(&error.to_string()),
        }
    }
}

impl InvalidationUri for String {
    fn counters(&self) -> Result<Vec<GenId>, InvalidationError> {
        self.as_str().counters()
    }
}

impl<T: InvalidationUri + ?Sized> InvalidationUri for &T {
    fn counters(&self) -> Result<Vec<GenId>, InvalidationError> {
        (**self).counters()
    }
}

impl Cache {
    /// Drops every entry cached for `uri`'s path, on every instance sharing this cache: every
    /// host, query string, `vary` value, GET and HEAD, and every spelling of the path that
    /// Rocket's own parameter types read as the same values (`/articles/05` for
    /// `/articles/5`). Takes what `uri!` produces.
    pub async fn invalidate(&self, uri: impl InvalidationUri) -> Result<(), InvalidationError> {
        let counters = uri.counters()?;
        self.bump_each(&counters).await
    }

    /// Drops every entry whose route declares `tag` (`tags = ["articles", "article:{id}"]`,
    /// with the parameters filled in: `"article:5"`).
    pub async fn invalidate_tag(&self, tag: impl AsRef<str>) -> Result<(), InvalidationError> {
        self.bump(GenId::tag(tag.as_ref())).await
    }

    /// Drops every entry of this cache's namespace; other applications sharing the servers
    /// under other namespaces keep theirs.
    pub async fn invalidate_all(&self) -> Result<(), InvalidationError> {
        self.bump(GenId::everything()).await
    }

    async fn bump(&self, counter: GenId) -> Result<(), InvalidationError> {
        self.bump_each(&[counter]).await
    }

    /// Bumps each counter in turn: one invalidation, reported once, naming each server that
    /// did not confirm one of them.
    async fn bump_each(&self, counters: &[GenId]) -> Result<(), InvalidationError> {
        let mut failed: Vec<(String, String)> = Vec::new();
        for counter in counters {
            let unconfirmed = self
                .store()
                .bump(&self.config().namespace, *counter, self.config().op_timeout)
                .await;
            for (server, error) in unconfirmed {
                if !failed.iter().any(|(named, _)| *named == server) {
                    failed.push((server, error.to_string()));
                }
            }
        }
        crate::stats::GLOBAL.invalidation(failed.is_empty());
        if failed.is_empty() {
            return Ok(());
        }
        let error = InvalidationError::Unconfirmed(failed);
        // Also logged: a caller that drops the error still leaves a trace.
        crate::report::warn(
            &crate::report::INVALIDATION_UNCONFIRMED,
            format_args!("{error}"),
        );
        Err(error)
    }
}

/// Drops every entry cached for `uri`'s path (every host, query string, `vary` value, GET and
/// HEAD), on every instance sharing the global cache; with it, every other spelling of the path
/// that Rocket's own parameter types read as the same values (`/articles/05`, `/articles/+5`,
/// `/files/x/../b` for a `PathBuf`). A parameter type of your own whose `FromParam` accepts
/// several spellings of one value is not covered: use typed invalidation or a tag.
///
/// ```no_run
/// # use rocket::{get, uri};
/// # #[get("/articles/<id>")] fn article(id: u32) -> String { id.to_string() }
/// # async fn f() -> Result<(), cache_runtime::InvalidationError> {
/// cache_runtime::invalidate(uri!(article(5))).await?;
/// cache_runtime::invalidate("/articles/5").await?;
/// # Ok(()) }
/// ```
pub async fn invalidate(uri: impl InvalidationUri) -> Result<(), InvalidationError> {
    global().invalidate(uri).await
}

/// Drops every entry of the global cache whose route declares `tag`.
pub async fn invalidate_tag(tag: impl AsRef<str>) -> Result<(), InvalidationError> {
    global().invalidate_tag(tag).await
}

/// Drops every entry of the global cache's namespace.
pub async fn invalidate_all() -> Result<(), InvalidationError> {
    global().invalidate_all().await
}

/// The counter of a route's entries for these parameter values (in declaration order):
/// computed before anything is awaited, so that the generated future stays `Send`.
#[doc(hidden)]
pub fn route_counter(route: &str, values: &[&dyn fmt::Debug]) -> RouteCounter {
    RouteCounter(GenId::route(route, values))
}

/// See [`route_counter`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct RouteCounter(GenId);

/// Drops every entry counted by `counter`: what the generated `handler::invalidate(..)` calls.
#[doc(hidden)]
pub async fn invalidate_route(
    cache: &Cache,
    counter: RouteCounter,
) -> Result<(), InvalidationError> {
    cache.bump(counter.0).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_distinct_per_kind_and_input() {
        let path = GenId::path(["articles", "5"].into_iter());
        assert_eq!(path, GenId::path(["articles", "5"].into_iter()));
        assert_ne!(path, GenId::path(["articles5"].into_iter()));
        assert_ne!(path, GenId::path(["articles", "6"].into_iter()));
        assert_ne!(
            GenId::tag("articles"),
            GenId::path(["articles"].into_iter())
        );
        let five: &dyn fmt::Debug = &5u32;
        let none: &dyn fmt::Debug = &None::<u32>;
        assert_ne!(
            GenId::route("app::article", &[five, none]),
            GenId::route("app::article", &[none, five])
        );
        assert_ne!(
            GenId::route("app::article", &[five]),
            GenId::route("app::other", &[five])
        );
        assert_ne!(GenId::everything(), GenId::tag(""));
    }

    #[test]
    fn uris_of_one_path_share_a_counter() {
        let counter = |text: &str| text.counters().unwrap();
        let expected = vec![GenId::path(["articles", "caf\u{e9}"].into_iter())];
        for text in [
            "/articles/caf%C3%A9",
            "/articles/caf%C3%A9?lang=fr",
            "/articles/caf%C3%A9/",
            "/Articles/CAF%C3%A9",
            "https://example.com/articles/caf%C3%A9?x=1",
        ] {
            assert_eq!(counter(text), expected, "{text}");
        }
        assert_ne!(counter("/articles/cafe"), expected);
        for refused in [
            "not a uri at all \u{7f}",
            "article:5",
            "articles",
            "mailto:a@b.c",
            "*",
        ] {
            let error = refused.counters().unwrap_err();
            assert!(
                matches!(&error, InvalidationError::BadUri(why) if why.contains("invalidate_tag")),
                "{refused}: {error}"
            );
        }
    }

    /// What names a Memcached counter key (`{ns}:g:{hex}@{server}`): distinct URLs, parameter
    /// values and tags, however many, name at most `SHARED_COUNTERS` keys per server.
    #[test]
    fn distinct_names_share_a_bounded_set_of_counter_keys() {
        let mut keys = std::collections::HashSet::new();
        for i in 0..100_000u32 {
            let text = i.to_string();
            let value: &dyn fmt::Debug = &i;
            keys.insert(GenId::path(["missing", text.as_str()].into_iter()).hex());
            keys.insert(GenId::route("app::missing", &[value]).hex());
            keys.insert(GenId::tag(&text).hex());
        }
        assert!(keys.len() <= SHARED_COUNTERS, "{} keys", keys.len());
        // Spread over the whole set: few names share a counter by accident.
        assert!(keys.len() > SHARED_COUNTERS * 9 / 10, "{} keys", keys.len());
        assert!(!keys.contains(&GenId::everything().hex()));
        assert!(!keys.contains(&GenId::epoch().hex()));
    }

    #[test]
    fn changing_any_one_counter_changes_the_stamp() {
        let base = [7u64, 1 << 40, 99, 12_345];
        for i in 0..base.len() {
            for delta in [1u64, 2, u64::MAX] {
                let mut changed = base;
                changed[i] = changed[i].wrapping_add(delta);
                assert_ne!(stamp(changed), stamp(base), "counter {i} + {delta}");
            }
        }
        assert_ne!(stamp([1, 2]), stamp([2, 1]));
    }

    #[test]
    fn fresh_generations_differ() {
        let a = fresh_generation();
        let b = fresh_generation();
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }
}
