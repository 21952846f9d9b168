//! Invalidation that names no cache: the free `invalidate*` functions and [`Invalidation`], a
//! batch of them paid for together. Each reaches every cache of the process (see
//! [`every_cache`]): over-invalidating is harmless, missing the cache a page is served from is
//! not.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use super::{every_cache, Cache};
use crate::counting::PROCESS;
use crate::invalidation::generation::{CounterId, Purge};
use crate::invalidation::targets::{InvalidationError, InvalidationUri, RouteEntries};
use crate::rate_limited_log;

/// Several invalidations at once: URIs, tags and handlers' entries, dropped (or, with
/// [`soft`](Invalidation::soft), marked stale) together, paying one wait for every instance to
/// see them instead of one per call. Awaiting it runs it in every cache of the process.
///
/// ```no_run
/// # use rocket::{get, post, uri};
/// # use rocket_route_cache::{cached_route, Invalidation};
/// # #[cached_route(ttl = 60)] #[get("/articles/<id>")] fn article(id: u32) -> String { id.to_string() }
/// # #[get("/")] fn index() -> &'static str { "" }
/// #[post("/articles/<id>")]
/// async fn update(id: u32) -> Result<&'static str, rocket::http::Status> {
///     // ... save the change first, then:
///     Invalidation::new()
///         .route(article::entries(id))
///         .tag("articles")
///         .uri(uri!(index))
///         .await
///         .map(|()| "saved")
///         .map_err(|_| rocket::http::Status::ServiceUnavailable)
/// }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "an invalidation does nothing until it is awaited"]
pub struct Invalidation {
    counters: Vec<CounterId>,
    purge: Option<Purge>,
    /// A URI that did not parse: reported when run, and nothing is invalidated.
    refused: Option<InvalidationError>,
}

impl Invalidation {
    /// Creates an empty batch: add what to drop, then await it.
    pub fn new() -> Invalidation {
        Invalidation::default()
    }

    /// Drops every entry cached for `uri`'s path, as [`invalidate`] does.
    pub fn uri(mut self, uri: impl InvalidationUri) -> Invalidation {
        match uri.counters() {
            Ok(counters) => self.counters.extend(counters),
            Err(error) => {
                self.refused.get_or_insert(error);
            }
        }
        self
    }

    /// Drops every entry whose route declares `tag`, as [`invalidate_tag`] does.
    pub fn tag(mut self, tag: impl AsRef<str>) -> Invalidation {
        self.counters.push(CounterId::tag(tag.as_ref()));
        self
    }

    /// Drops the entries a cached handler stored for some parameter values:
    /// `handler::entries(params)`, generated for each cached handler.
    pub fn route(mut self, entries: RouteEntries) -> Invalidation {
        self.counters.push(entries.0);
        self
    }

    /// Drops every entry of the namespace, as [`invalidate_all`] does.
    pub fn all(mut self) -> Invalidation {
        self.counters.push(CounterId::everything());
        self
    }

    /// Marks the entries stale instead of dropping them (a soft purge): each is then served as
    /// if it had just expired. Within its route's `stale` window it is answered `STALE` while
    /// one request renders it again; otherwise the next request renders it (concurrent ones
    /// wait for that one), and within `stale_if_error` it stands in if the handler fails. Once
    /// the batch returns `Ok`, no instance serves an entry rendered before it as fresh.
    pub fn soft(mut self) -> Invalidation {
        self.purge = Some(Purge::Soft);
        self
    }

    /// Runs the batch in `cache` alone (a Rocket instance's managed one).
    ///
    /// # Errors
    /// A URI that is not one (nothing is invalidated then), or a Memcached server that did not
    /// confirm: entries there may be served until it is repeated or they expire.
    pub async fn run_in(self, cache: &Cache) -> Result<(), InvalidationError> {
        self.run_on(std::slice::from_ref(cache)).await
    }

    /// Runs the batch in every cache of the process (what awaiting it does).
    ///
    /// # Errors
    /// As [`run_in`](Invalidation::run_in), for any of them.
    pub async fn run(self) -> Result<(), InvalidationError> {
        self.run_on(&every_cache()).await
    }

    async fn run_on(self, caches: &[Cache]) -> Result<(), InvalidationError> {
        if let Some(error) = self.refused {
            return Err(error);
        }
        let purge = self.purge.unwrap_or(Purge::Hard);
        let mut bumps = Vec::with_capacity(caches.len());
        let mut wait = Duration::ZERO;
        for cache in caches {
            let bumped = cache.bump_counters(&self.counters, purge).await;
            wait = wait.max(bumped.settle);
            bumps.push(bumped.failed);
        }
        settle(wait).await;
        let mut outcome = Ok(());
        for (cache, failed) in caches.iter().zip(bumps) {
            match (cache.report(failed), &mut outcome) {
                (
                    Err(InvalidationError::Unconfirmed(more)),
                    Err(InvalidationError::Unconfirmed(all)),
                ) => {
                    all.extend(more);
                }
                (Err(error), Ok(())) => outcome = Err(error),
                _ => {}
            }
        }
        outcome
    }
}

impl IntoFuture for Invalidation {
    type Output = Result<(), InvalidationError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl Cache {
    /// Drops every entry cached for `uri`'s path in this cache, on every instance sharing it:
    /// every host, query string, `vary` value, GET and HEAD, and every spelling of the path that
    /// Rocket's own parameter types read as the same values (`/articles/05` for
    /// `/articles/5`). Takes what `uri!` produces. Several targets, or a soft purge:
    /// [`Invalidation::run_in`].
    ///
    /// # Errors
    /// A URI that is not one, or a Memcached server that did not confirm.
    pub async fn invalidate(&self, uri: impl InvalidationUri) -> Result<(), InvalidationError> {
        Invalidation::new().uri(uri).run_in(self).await
    }

    /// Drops every entry of this cache whose route declares `tag` (`tags = ["articles",
    /// "article:{id}"]`, with the parameters filled in: `"article:5"`).
    ///
    /// # Errors
    /// A Memcached server that did not confirm.
    pub async fn invalidate_tag(&self, tag: impl AsRef<str>) -> Result<(), InvalidationError> {
        Invalidation::new().tag(tag).run_in(self).await
    }

    /// Drops every entry of this cache's namespace; other applications sharing the servers
    /// under other namespaces keep theirs.
    ///
    /// # Errors
    /// A Memcached server that did not confirm.
    pub async fn invalidate_all(&self) -> Result<(), InvalidationError> {
        Invalidation::new().all().run_in(self).await
    }
}

/// Drops every entry cached for `uri`'s path (every host, query string, `vary` value, GET and
/// HEAD), in every cache of the process, so on every instance sharing them; with it, every
/// other spelling of the path that Rocket's own parameter types read as the same values
/// (`/articles/05`, `/articles/+5`, `/files/x/../b` for a `PathBuf`). A parameter type of your
/// own whose `FromParam` accepts several spellings of one value is not covered: use typed
/// invalidation or a tag. Several at once: [`Invalidation`].
///
/// ```no_run
/// # use rocket::{get, uri};
/// # #[get("/articles/<id>")] fn article(id: u32) -> String { id.to_string() }
/// # async fn f() -> Result<(), rocket_route_cache::invalidation::InvalidationError> {
/// rocket_route_cache::invalidate(uri!(article(5))).await?;
/// rocket_route_cache::invalidate("/articles/5").await?;
/// # Ok(()) }
/// ```
pub async fn invalidate(uri: impl InvalidationUri) -> Result<(), InvalidationError> {
    Invalidation::new().uri(uri).run().await
}

/// Drops every entry whose route declares `tag`, in every cache of the process.
pub async fn invalidate_tag(tag: impl AsRef<str>) -> Result<(), InvalidationError> {
    Invalidation::new().tag(tag).run().await
}

/// Drops every entry of every cache of the process (each in its own namespace).
pub async fn invalidate_all() -> Result<(), InvalidationError> {
    Invalidation::new().all().run().await
}

impl Cache {
    /// Bumps each counter in turn, without waiting for instances to see them.
    pub(crate) async fn bump_counters(&self, counters: &[CounterId], purge: Purge) -> Bumps {
        let mut bumps = Bumps::default();
        let (namespace, deadline) = (&self.config().namespace, self.config().op_timeout);
        for counter in counters {
            let bumped = self
                .store()
                .bump(namespace, *counter, purge, deadline)
                .await;
            bumps.settle = bumps.settle.max(bumped.settle);
            for (server, error) in bumped.unconfirmed {
                if !bumps.failed.iter().any(|(named, _)| *named == server) {
                    bumps.failed.push((server, error.to_string()));
                }
            }
        }
        bumps
    }

    /// Counts an invalidation whose bumps left `failed` unconfirmed, and says so.
    pub(crate) fn report(&self, failed: Vec<(String, String)>) -> Result<(), InvalidationError> {
        PROCESS.invalidation(failed.is_empty());
        self.inner.counters.invalidation(failed.is_empty());
        if failed.is_empty() {
            return Ok(());
        }
        let error = InvalidationError::Unconfirmed(failed);
        // Also logged: a caller that drops the error still leaves a trace.
        rate_limited_log::warn(
            &rate_limited_log::INVALIDATION_UNCONFIRMED,
            format_args!("{error}"),
        );
        Err(error)
    }
}

/// What bumping an invalidation's counters in one cache left to do.
#[derive(Debug, Default)]
pub(crate) struct Bumps {
    /// Servers that did not confirm a bump, and why.
    pub(crate) failed: Vec<(String, String)>,
    /// How long to wait before every instance relying on an epoch polled before the bumps
    /// stops doing so: the longest horizon in use (see `backend/watch.rs`). Only then may a
    /// request that starts after the invalidation returns expect the new version.
    pub(crate) settle: Duration,
}

/// Waits for the instances to have seen an invalidation (see [`Bumps::settle`]).
pub(crate) async fn settle(settle: Duration) {
    if !settle.is_zero() {
        tokio::time::sleep(settle).await;
    }
}
