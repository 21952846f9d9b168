//! What an invalidation names: a handler's scope (its route's parameter values and tags), a
//! URI's path, a tag; each as the generation counters it bumps (see `generation.rs`).

use std::fmt;

use rocket::http::uri::{Absolute, Origin, Reference, Uri};
use rocket::Request;

use super::surrogate::surrogate_key;
use crate::invalidation::generation::CounterId;
use crate::route::guard_key::GuardKey;

/// What a cached handler's entries depend on besides their path: the handler and its parameter
/// values, and its tags. Built by the generated code before the handler runs.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Scope {
    pub(crate) route: CounterId,
    pub(crate) tags: Vec<CounterId>,
    /// The tags as a CDN reads them (see [`surrogate_key`]), separated by spaces.
    pub(crate) surrogate_keys: String,
    /// What the handler's request guards add to the key.
    pub(crate) guards: GuardKey,
}

impl Scope {
    /// Creates a scope: `route` names the handler (`module::path::name`), `values` are its route
    /// parameters in declaration order, `tags` its tags with parameters filled in, `guards` what
    /// its request guards add to the key.
    pub fn new(route: &str, values: &[&dyn fmt::Debug], tags: &[&str], guards: GuardKey) -> Scope {
        Scope {
            route: CounterId::route(route, values),
            tags: tags.iter().map(|tag| CounterId::tag(tag)).collect(),
            surrogate_keys: tags
                .iter()
                .map(|tag| surrogate_key(tag))
                .collect::<Vec<_>>()
                .join(" "),
            guards,
        }
    }

    /// Returns the counters a lookup for `request` reads, in the order their values are
    /// fingerprinted. Computed on misses and after invalidations only: a hit in the current epoch
    /// reads the epoch alone.
    pub(crate) fn counters(&self, request: &Request<'_>) -> Vec<CounterId> {
        let mut counters = Vec::with_capacity(4 + self.tags.len());
        counters.push(CounterId::everything());
        counters.extend(super::spelling::served_path_counters(request));
        counters.push(self.route);
        counters.extend_from_slice(&self.tags);
        counters
    }
}

/// Why an invalidation may not have taken effect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidationError {
    /// The text given to [`invalidate`](crate::invalidate) is not a URI.
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

/// A URI whose path [`invalidate`](crate::invalidate) drops: what `uri!` produces (`Origin`,
/// `Absolute`, `Reference`), or text parsed as a URI.
pub trait InvalidationUri {
    /// Returns the counters of its path, in every spelling that reads as the same values.
    #[doc(hidden)]
    fn counters(&self) -> Result<Vec<CounterId>, InvalidationError>;
}

impl InvalidationUri for Origin<'_> {
    fn counters(&self) -> Result<Vec<CounterId>, InvalidationError> {
        Ok(super::spelling::invalidated_path_counters(
            self.path().segments(),
        ))
    }
}

impl InvalidationUri for Absolute<'_> {
    fn counters(&self) -> Result<Vec<CounterId>, InvalidationError> {
        Ok(super::spelling::invalidated_path_counters(
            self.path().segments(),
        ))
    }
}

impl InvalidationUri for Reference<'_> {
    fn counters(&self) -> Result<Vec<CounterId>, InvalidationError> {
        Ok(super::spelling::invalidated_path_counters(
            self.path().segments(),
        ))
    }
}

/// Accepts text that is a path (`/articles/5?lang=fr`) or an `http(s)://` URI. Anything else is
/// refused, so that a tag given by mistake (`"article:5"`, which parses as a URI with scheme
/// `article`) is an error instead of invalidating an unrelated path.
impl InvalidationUri for str {
    fn counters(&self) -> Result<Vec<CounterId>, InvalidationError> {
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
    fn counters(&self) -> Result<Vec<CounterId>, InvalidationError> {
        self.as_str().counters()
    }
}

impl<T: InvalidationUri + ?Sized> InvalidationUri for &T {
    fn counters(&self) -> Result<Vec<CounterId>, InvalidationError> {
        (**self).counters()
    }
}

/// The entries a cached handler stored for some route parameter values:
/// `handler::entries(params)`, generated for each cached handler (the parameters in the
/// handler's order and types), for [`Invalidation::route`](crate::Invalidation::route).
#[derive(Debug, Clone, Copy)]
pub struct RouteEntries(pub(crate) CounterId);

/// Returns [`RouteEntries`] of `route` for these parameter values (in declaration order):
/// computed before anything is awaited, so that the generated future stays `Send`.
#[doc(hidden)]
pub fn route_entries(route: &str, values: &[&dyn fmt::Debug]) -> RouteEntries {
    RouteEntries(CounterId::route(route, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_of_one_path_share_a_counter() {
        let counter = |text: &str| text.counters().unwrap();
        let expected = vec![CounterId::path(["articles", "caf\u{e9}"].into_iter())];
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
}
