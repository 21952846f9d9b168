//! Route-level response caching for [Rocket] 0.5, backed by Memcached.
//!
//! ```no_run
//! use rocket_route_cache::cached_route;
//! use rocket::{get, launch, routes};
//!
//! #[cached_route(ttl = 60)]
//! #[get("/article/<id>")]
//! async fn article(id: u32) -> String {
//!     format!("article {id}, rendered once a minute at most")
//! }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket::build().mount("/", routes![article])
//! }
//! ```
//!
//! The first GET runs the handler and answers `X-Cache: MISS`; the same GET within the TTL is
//! answered from the cache with `X-Cache: HIT` and an `Age` header, without running the
//! handler. See [`cached_route`] for the options and what is and is not stored.
//!
//! # Setting it up
//!
//! An application attaches [`CacheFairing`], which reads the `cache` table of `Rocket.toml`
//! (or `ROCKET_CACHE`; `MEMCACHED_SERVERS` names the servers too):
//! `rocket::build().attach(CacheFairing)`. Without servers, entries live in a bounded
//! in-process store and one warning says they are not shared between instances. A test or a
//! library that wants a cache of its own manages one instead:
//! `rocket::build().manage(Cache::new(Config::memcached(["127.0.0.1:11211"]))?)`. Those are
//! the two ways; the [`config`] module holds the rest.
//!
//! Read the counters with [`metrics::stats`], or mount [`metrics::metrics_routes`] for
//! Prometheus.
//!
//! # Invalidation
//!
//! After a change is committed, drop what showed it, in one [`Invalidation`]: the handler's
//! own entries (`article::entries(5)`, generated for each cached handler and checked by the
//! compiler), URIs (`uri!(index)`), tags (for routes declaring `tags = ["article:{id}"]`), or
//! everything of the namespace. Awaiting it reaches every cache of the process, so every
//! instance sharing them, and waits once for them all to see it. One target alone has its
//! shorthand: `article::invalidate(5)`, [`invalidate`], [`invalidate_tag`], [`invalidate_all`].
//!
//! ```no_run
//! use rocket_route_cache::{cached_route, Invalidation};
//! use rocket::http::Status;
//! use rocket::{get, post, uri};
//!
//! #[cached_route(ttl = 3600, tags = ["article:{id}"])]
//! #[get("/articles/<id>")]
//! fn article(id: u32) -> String {
//!     format!("article {id}")
//! }
//!
//! #[cached_route(ttl = 3600)]
//! #[get("/")]
//! fn index() -> &'static str {
//!     "the list"
//! }
//!
//! #[post("/articles/<id>/publish")]
//! async fn publish(id: u32) -> Result<&'static str, Status> {
//!     // ... save the change first, then:
//!     Invalidation::new()
//!         .route(article::entries(id))
//!         .uri(uri!(index))
//!         .await
//!         // `Err`: a server did not confirm; its copies may lag until this is repeated.
//!         .map(|()| "published")
//!         .map_err(|_| Status::ServiceUnavailable)
//! }
//! ```
//!
//! # Failure policy
//!
//! The cache can only make a request faster. A backend error, an operation past its deadline
//! ([`Config::op_timeout`], 100 ms by default) or an entry that does not decode is a miss: the
//! handler runs and the request is answered. Errors are logged at most once per cause every
//! ten seconds.
//!
//! [Rocket]: https://rocket.rs

// Modules by feature. `cache` is the handle (with the global one and invalidation through
// it); `serve` the request path; `route` what generated code uses; `invalidation` what an
// invalidation names and the counters and stamps behind it; `backend` the stores; `http` the
// protocol rules; `counting` the counters behind `metrics`.
mod backend;
mod cache;
mod counting;
mod entry;
mod fairing;
mod flight;
#[cfg(test)]
mod fuzz;
pub mod guide;
mod http;
pub mod invalidation;
mod key;
mod lookup;
mod metrics_route;
mod near;
mod outcome;
mod rate_limited_log;
mod route;
mod serve;
mod settings;
mod util;

pub use cache::{invalidate, invalidate_all, invalidate_tag, Cache, Invalidation};
pub use fairing::CacheFairing;
pub use route::guard_check::{KeyedGuard, SharedGuard};
pub use route::responder_check::SharedResponder;
pub use route::validators::Validators;
pub use settings::Config;

/// The rest of the configuration: what [`Config`] is checked against, the CDN header for
/// tags, and the global cache the free `invalidate*` functions and [`CacheFairing`] share.
pub mod config {
    pub use crate::cache::{global, install, InstallError};
    pub use crate::settings::{ConfigError, SurrogateKeys, DEFAULT_CACHE_NAME, SERVERS_ENV};
}

/// What the cache did: counters per process, per cache and per route, a Prometheus route, and
/// the state of each Memcached server.
pub mod metrics {
    pub use crate::backend::BreakerState;
    pub use crate::cache::ServerStatus;
    pub use crate::counting::{stats, Snapshot, Stats};
    pub use crate::metrics_route::{metrics_routes, Report};
    pub use crate::outcome::Refusal;
}

/// Caches a Rocket GET route's responses. Place it **above** the route attribute.
///
/// ```no_run
/// use rocket_route_cache::cached_route;
/// use rocket::get;
///
/// #[cached_route(ttl = 3600)]
/// #[get("/about")]
/// fn about() -> &'static str {
///     "About us"
/// }
/// ```
///
/// # Options
///
/// `ttl = N` is required. Every option, with its default and what it does, is in the table of
/// [the attribute chapter](crate::guide::attribute) of the guide.
///
/// For each cached handler `name`, `name::entries(params)` names the entries it cached for
/// those route parameter values (in the handler's order and types) in an [`Invalidation`], and
/// `name::invalidate(params)` drops them, on every instance.
///
/// Concurrent misses for one key run the handler once (in this process, and across instances
/// through a lease in Memcached); see [`Config::lease_wait`].
///
/// ```no_run
/// use rocket_route_cache::cached_route;
/// use rocket::get;
/// use rocket::http::Status;
///
/// /// The same page for everyone, even with credentials; any query string shares the entry.
/// #[cached_route(ttl = 3600, public, query = false)]
/// #[get("/terms")]
/// fn terms() -> &'static str {
///     "terms of service"
/// }
///
/// /// Served up to 5 minutes past its TTL while one request refreshes it, and up to an hour
/// /// past it when the handler fails.
/// #[cached_route(ttl = 60, stale = 300, stale_if_error = 3600)]
/// #[get("/dashboard")]
/// async fn dashboard() -> Result<String, Status> {
///     Ok(String::from("numbers"))
/// }
/// ```
///
/// ```no_run
/// use rocket_route_cache::cached_route;
/// use rocket::get;
/// use rocket::http::CookieJar;
///
/// /// One entry per language cookie; other cookies (a session) do not split the cache.
/// #[cached_route(ttl = 600, vary_cookies = ["lang"], query = ["page"])]
/// #[get("/news?<page>")]
/// fn news(page: Option<u32>, cookies: &CookieJar<'_>) -> String {
///     let lang = cookies.get("lang").map(|c| c.value()).unwrap_or("en");
///     format!("news page {} in {lang}", page.unwrap_or(1))
/// }
///
/// /// One entry per `Accept-Language`, 404s cached too, clients may force a refresh.
/// #[cached_route(ttl = 60, vary = ["Accept-Language"], statuses = [200, 404], honor_no_cache)]
/// #[get("/docs/<page>")]
/// fn docs(page: &str) -> Option<String> {
///     (page == "intro").then(|| String::from("intro"))
/// }
/// ```
///
/// # Negative caching
///
/// A status listed in `statuses` is stored whether the handler made the response
/// (`status::NotFound(page)`, stored and replayed like any other) or its responder failed with
/// it (`None` is a 404, `Err(Status::Gone)` a 410). For a failure, the entry records only the
/// status: a hit skips the handler and hands the status to Rocket, whose catcher renders the
/// page exactly as on the miss (the one registered for that status and path, the application's
/// own included). [`CacheFairing`], when attached, gives that page the route's `Vary`,
/// `X-Cache`, `Cache-Status` and, on a hit, `Age`; without it the catcher's page carries none of them. A status
/// not listed is never stored, a 5xx included.
///
/// A status from 400 says the page is missing or failed, which tends to change sooner than a
/// page (the article gets written, the fault fixed): `negative_ttl` serves those entries for a
/// shorter time than `ttl` (or longer). Invalidation drops them like any other entry.
///
/// ```no_run
/// use rocket_route_cache::cached_route;
/// use rocket::get;
/// use rocket::http::Status;
///
/// /// Articles for an hour; an unknown id's 404, rendered by the app's 404 catcher, for 30 s.
/// #[cached_route(ttl = 3600, statuses = [200, 404], negative_ttl = 30)]
/// #[get("/articles/<id>")]
/// fn article(id: u32) -> Option<String> {
///     (id < 100).then(|| format!("article {id}"))
/// }
///
/// /// A removed page answers 410 Gone, stored too.
/// #[cached_route(ttl = 600, statuses = [200, 410])]
/// #[get("/old/<slug>")]
/// fn old(slug: &str) -> Result<String, Status> {
///     match slug {
///         "kept" => Ok(String::from("still here")),
///         _ => Err(Status::Gone),
///     }
/// }
/// ```
///
/// # Handlers
///
/// Sync and async handlers, path and query parameters, request guards (`&State<T>`, ...) and
/// explicit lifetimes all work. The handler must return an owned response (a type
/// implementing `Responder<'r, 'static>`): `&'static str`, `String`, `Json<T>`,
/// `(ContentType, String)`, `status::Custom<T>`, `Option<T>`, `Result<T, E>`, `Redirect`,
/// `impl Responder<'r, 'static>`, ...
///
/// # Request guards
///
/// Every request guard parameter is checked on its resolved type (aliases, renamed imports and
/// `Option` / `Result` / `Outcome` wrappers included), because a guard may read what the key
/// does not hold and make one client's page everyone's:
///
/// - **per-user pages**: a guard whose type implements [`KeyedGuard`] (the signed-in user) keys
///   the page itself, with nothing to declare: its `cache_key` is part of the key, so two users
///   never share an entry and one user keeps one entry across logins and instances; `Option` /
///   `Result` of it make the absent user a variant of its own; a tag may name it
///   (`tags = ["user:{user}"]`);
/// - accepted as they are: [`SharedGuard`]s, the same for every request (`&State<T>`, `&Config`,
///   `&Limits`, `Shutdown`, `&Route`, `&Host` (the host is in every key), `&Cache`);
/// - accepted when the key holds what they read: `&Accept` with `vary = ["Accept"]`,
///   `&ContentType` with `vary = ["Content-Type"]`, `&CookieJar` with `vary_cookies`,
///   `FlashMessage` with `vary_cookies = ["_flash"]`, `&Origin` with the whole query in the key;
/// - everything else (`IpAddr`, `SocketAddr`, `Method`, mTLS `Certificate`, the application's
///   own guards) is a compile error naming the guard, until its type implements [`KeyedGuard`]
///   or [`SharedGuard`], or the route names the parameter in `trusted_guards` (the escape
///   hatch: the route then vouches that the key holds what the guard reads).
///
/// ```no_run
/// use rocket_route_cache::{cached_route, KeyedGuard};
/// use rocket::get;
/// use rocket::http::Status;
/// use rocket::request::{FromRequest, Outcome, Request};
///
/// /// The signed-in user (how it is found is the application's business).
/// struct User {
///     id: u64,
/// }
///
/// #[rocket::async_trait]
/// impl<'r> FromRequest<'r> for User {
///     type Error = ();
///
///     async fn from_request(request: &'r Request<'_>) -> Outcome<User, ()> {
///         # let id: Option<u64> = None;
///         match id {
///             Some(id) => Outcome::Success(User { id }),
///             None => Outcome::Forward(Status::Unauthorized),
///         }
///     }
/// }
///
/// impl KeyedGuard for User {
///     fn cache_key(&self) -> impl std::fmt::Display + '_ {
///         self.id
///     }
/// }
///
/// /// One entry per user; `invalidate_tag("user:42")` drops user 42's pages alone.
/// #[cached_route(ttl = 600, tags = ["user:{user}"])]
/// #[get("/dashboard")]
/// fn dashboard(user: User) -> String {
///     format!("the dashboard of user {}", user.id)
/// }
/// ```
///
/// ```compile_fail
/// use rocket_route_cache::cached_route;
/// use rocket::get;
/// use rocket::http::CookieJar as Jar;
///
/// #[cached_route(ttl = 60, public)] // error: reads `&CookieJar`, and the key holds no cookie
/// #[get("/account")]
/// fn account(jar: &Jar<'_>) -> String {
///     jar.get("user").map(|c| c.value().to_owned()).unwrap_or_default()
/// }
/// ```
///
/// # Misuse is a compile error
///
/// A missing or non-positive `ttl` (a constant expression out of range too, reported where the
/// compiler evaluates it), an unknown or repeated option, an invalid or repeated
/// header, cookie or parameter name, a `query` list that leaves out a parameter the route
/// reads, a status that may not be stored, a `negative_ttl` with no status from 400 in
/// `statuses`, the attribute on anything but a function, no route
/// attribute below it (including writing it *below* `#[get]`), a route whose method is not GET
/// or that reads a body (`data = ..`), a request guard the key does not cover (above), a
/// `trusted_guards` name that is not a guard parameter, a `query` name that can never match
/// (`"page.x"`), a handler returning `Flash` without `vary_cookies` or `public`, a return type
/// with an elided lifetime.
///
/// ```compile_fail
/// use rocket_route_cache::cached_route;
/// use rocket::post;
///
/// #[cached_route(ttl = 60)] // error: caches GET routes only
/// #[post("/comments")]
/// fn comment() -> &'static str {
///     "posted"
/// }
/// ```
pub use rocket_route_cache_macros::cached_route;

/// Items used by the code `#[cached_route]` generates; not a public API. The hooks for this
/// repository's tests and benchmarks are compiled only with the `test-hooks` feature.
#[doc(hidden)]
pub mod __private {
    pub use crate::invalidation::targets::{route_entries, Scope};
    pub use crate::route::guard::CacheRequest;
    pub use crate::route::guard_check::{check_guard, tag_guard, Builtin, No, Route, Yes};
    pub use crate::route::guard_key::GuardKey;
    pub use crate::route::options::RouteOptions;
    pub use crate::route::param_check::{key_part, seconds, tag_part};
    pub use crate::route::responder_check::check_responder;
    pub use crate::route::validators::{
        Answer, NoteAny, NoteUnchanged, Rebind, RebindAny, RebindValidators,
    };
    pub use crate::serve::responder::{respond, Cached, Opaque};
    pub use crate::serve::serve;

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns how many invalidation counters the embedded store holds (`None` for Memcached):
    /// for the tests that check a flood of distinct URLs creates none.
    pub fn counters_held(cache: &crate::Cache) -> Option<usize> {
        cache.store().counters_held()
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Waits for the next epoch poll that leaves every Memcached server's epoch fit for hits to
    /// rely on (forever when polling is off or a server does not answer: bound it): for tests
    /// that need the near tier and one-operation hits in force for about a horizon.
    pub async fn epochs_polled(cache: &crate::Cache) {
        cache.polled().await;
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns how many epoch polls `cache` has sent.
    pub fn epoch_polls(cache: &crate::Cache) -> u64 {
        cache.polls()
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Hooks for the benchmarks (`scripts/bench`): the same code paths, reachable from outside.
    pub mod bench {
        pub use crate::entry::StoredResponse;
        pub use crate::key::key_for;
        pub use crate::route::options::RouteOptions;

        /// Runs one raw get through the cache's own backend client and settings: the floor any
        /// hit served from that backend stands on. The length of the value, if any.
        pub async fn raw_get(cache: &crate::Cache, key: &str) -> Option<usize> {
            cache.store().raw_get(key).await
        }

        /// Runs [`raw_get`] batched with reads of `counters` invalidation counters, as a hit
        /// reads the entry with its counters: the cost invalidation adds to a hit's wire time.
        pub async fn raw_get_counted(
            cache: &crate::Cache,
            key: &str,
            counters: usize,
        ) -> Option<usize> {
            let counters: Vec<crate::invalidation::generation::CounterId> = (0..counters)
                .map(|i| crate::invalidation::generation::CounterId::tag(&format!("bench-{i}")))
                .collect();
            cache.store().raw_get_counted(key, &counters).await
        }

        /// Stores raw bytes under `key` through the cache's backend, for [`raw_get`].
        pub async fn raw_set(cache: &crate::Cache, key: &str, value: &[u8]) -> bool {
            cache.store().raw_set(key, value).await
        }
    }
}
