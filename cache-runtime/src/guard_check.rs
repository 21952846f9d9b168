//! Which request guards a cached handler may take, decided on each guard's resolved type.
//!
//! A request guard can read anything in the request. A guard whose value differs between two
//! requests that share a cache key would make the first request's page everyone's page. So
//! `#[cached_route]` asserts, for every guard parameter, a trait bound on its *type* (aliases,
//! renamed imports, re-exports and wrappers all resolve to it):
//!
//! - guards that are the same for every request ([`SharedGuard`]: `&State<T>`, `&Config`, ...);
//! - guards that read what the route's key holds only when the route says so (`&Accept` needs
//!   `vary = ["Accept"]`, `&CookieJar` needs `vary_cookies`, `&Origin` the whole query);
//! - `Option<G>`, `Result<G, E>` and `Outcome<G, E, F>` of any of those.
//!
//! Anything else (client addresses, TLS certificates, `Method`, the application's own guards)
//! does not compile until the route names the parameter in `trusted_guards = [".."]`, or the
//! guard's type implements [`SharedGuard`].
//!
//! How the check is built: [`Checked`] is implemented for a guard `G` when `G: Guard<V>` for
//! some `V` (inferred: the "via" parameter only keeps the impls apart, so that a blanket impl
//! over [`SharedGuard`] and the impls for Rocket's own guards never overlap) and the guard's
//! [`Guard::Needs`] is met by the route's [`Route`] flags. Each need has its own trait, so
//! the compiler's message says what to add.

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use rocket::http::uri::{Host, Origin};
use rocket::http::{Accept, ContentType, CookieJar, Method};
use rocket::outcome::Outcome;
use rocket::request::FlashMessage;
use rocket::{Config, Route as RocketRoute, Shutdown, State};

/// A request guard whose value does not depend on the request, or depends only on what every
/// cache key holds (the route and the host): a cached handler may take it without saying so.
///
/// Implemented for `&State<T>`, `&Config`, `&Limits`, `Shutdown`, `&Route`,
/// `&Host` and [`&Cache`](crate::Cache). Implement it for a guard of your own that is the same
/// for every request (a database pool's connection, a clock, a feature-flag snapshot):
///
/// ```
/// struct Db; // the application's handle, say
///
/// impl rocket_route_cache::SharedGuard for Db {}
/// ```
///
/// For a guard type defined in another crate, such as `rocket_db_pools::Connection<D>`, name
/// one of your own types as `Via`: the orphan rule allows the impl then, since `Via` is local.
///
/// ```ignore
/// impl rocket_route_cache::SharedGuard<Db> for rocket_db_pools::Connection<Db> {}
/// ```
///
/// A guard that reads per-request data is not a `SharedGuard`: put what it reads in the key
/// (`vary`, `vary_cookies`) and name the parameter in `trusted_guards` on each route instead.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a request guard the cache can share pages across",
    label = "may read data that the cache key does not hold",
    note = "implement `rocket_route_cache::SharedGuard` only for guards that are the same for every request"
)]
pub trait SharedGuard<Via = Builtin> {}

/// The default `Via` of [`SharedGuard`]: the impl names no type of the application's.
#[derive(Debug)]
pub enum Builtin {}

impl<T: Send + Sync + 'static> SharedGuard for &State<T> {}
impl SharedGuard for &Config {}
impl SharedGuard for &rocket::data::Limits {}
impl SharedGuard for Shutdown {}
impl SharedGuard for &RocketRoute {}
/// The host is in every key: the one the handler sees (HTTP/2 `:authority` included).
impl SharedGuard for &Host<'_> {}
impl SharedGuard for &crate::cache::Cache {}

/// What a request guard needs the route's key to hold. Rocket's own guards are listed here;
/// [`SharedGuard`]s need nothing.
// No message of its own: the compiler reports an unknown guard through `Checked`.
pub trait Guard<Via> {
    type Needs;
}

/// Keeps the impl for [`SharedGuard`]s apart from the others.
#[derive(Debug)]
pub enum ViaShared {}
/// Keeps the impls for `Option`, `Result` and `Outcome` apart from the others.
#[derive(Debug)]
pub enum ViaWrapper {}

impl<V, G: SharedGuard<V>> Guard<(ViaShared, V)> for G {
    type Needs = Nothing;
}

impl<V, G: Guard<V>> Guard<(ViaWrapper, V)> for Option<G> {
    type Needs = G::Needs;
}

impl<V, G: Guard<V>, E> Guard<(ViaWrapper, V)> for Result<G, E> {
    type Needs = G::Needs;
}

impl<V, G: Guard<V>, E, F> Guard<(ViaWrapper, V)> for Outcome<G, E, F> {
    type Needs = G::Needs;
}

impl Guard<Builtin> for &Origin<'_> {
    type Needs = WholeQuery;
}
impl Guard<Builtin> for &Accept {
    type Needs = AcceptHeader;
}
impl Guard<Builtin> for &ContentType {
    type Needs = ContentTypeHeader;
}
impl Guard<Builtin> for &CookieJar<'_> {
    type Needs = Cookies;
}
impl Guard<Builtin> for FlashMessage<'_> {
    type Needs = FlashCookie;
}
impl Guard<Builtin> for IpAddr {
    type Needs = ClientAddress;
}
impl Guard<Builtin> for SocketAddr {
    type Needs = ClientAddress;
}
/// GET and HEAD share an entry: a handler that renders HEAD differently would hand GET
/// visitors its HEAD page.
impl Guard<Builtin> for Method {
    type Needs = MethodInKey;
}

/// What a route's key holds beyond the path and host, as type-level flags ([`Yes`] / [`No`]):
/// the whole query, `Accept`, `Content-Type`, any cookie, Rocket's flash cookie.
#[derive(Debug)]
pub struct Route<Query, Accept, ContentType, Cookies, Flash>(
    PhantomData<(Query, Accept, ContentType, Cookies, Flash)>,
);
#[derive(Debug)]
pub enum Yes {}
#[derive(Debug)]
pub enum No {}

/// A need of a guard, met by some routes' keys.
pub trait MetBy<R> {}

#[derive(Debug)]
pub enum Nothing {}
impl<R> MetBy<R> for Nothing {}

#[derive(Debug)]
pub enum WholeQuery {}
#[diagnostic::on_unimplemented(
    message = "this handler reads the raw query through `&Origin`, and `query = ..` keeps part of it out of the cache key",
    label = "reads the whole query",
    note = "one client's unkeyed query parameter would then decide every client's page",
    note = "remove `query = ..` (every parameter is then in the key), or read the parameters \
            as route parameters (`#[get(\"/path?<page>\")]`)"
)]
pub trait KeysWholeQuery {}
impl<A, T, C, F> KeysWholeQuery for Route<Yes, A, T, C, F> {}
impl<R: KeysWholeQuery> MetBy<R> for WholeQuery {}

#[derive(Debug)]
pub enum AcceptHeader {}
#[diagnostic::on_unimplemented(
    message = "this handler reads `&Accept`, and the route's cache key does not hold the `Accept` header",
    label = "reads the `Accept` header",
    note = "add `vary = [\"Accept\"]` to #[cached_route]: one entry per `Accept` value"
)]
pub trait KeysAccept {}
impl<Q, T, C, F> KeysAccept for Route<Q, Yes, T, C, F> {}
impl<R: KeysAccept> MetBy<R> for AcceptHeader {}

#[derive(Debug)]
pub enum ContentTypeHeader {}
#[diagnostic::on_unimplemented(
    message = "this handler reads `&ContentType`, and the route's cache key does not hold the `Content-Type` header",
    label = "reads the request's `Content-Type` header",
    note = "add `vary = [\"Content-Type\"]` to #[cached_route]"
)]
pub trait KeysContentType {}
impl<Q, A, C, F> KeysContentType for Route<Q, A, Yes, C, F> {}
impl<R: KeysContentType> MetBy<R> for ContentTypeHeader {}

#[derive(Debug)]
pub enum Cookies {}
#[diagnostic::on_unimplemented(
    message = "this handler reads `&CookieJar`, and the route's cache key holds no cookie",
    label = "reads the client's cookies",
    note = "a cached copy would serve one client's page to others; `public` does not change that",
    note = "put the cookies the page reads in the key: `vary_cookies = [\"lang\"]`; if the \
            handler only sets cookies (a response that sets one is never stored), name the \
            parameter in `trusted_guards = [\"name\"]`"
)]
pub trait KeysCookies {}
impl<Q, A, T, F> KeysCookies for Route<Q, A, T, Yes, F> {}
impl<R: KeysCookies> MetBy<R> for Cookies {}

#[derive(Debug)]
pub enum FlashCookie {}
#[diagnostic::on_unimplemented(
    message = "this handler reads a `FlashMessage`, and the route's cache key does not hold Rocket's flash cookie",
    label = "reads the client's flash message",
    note = "the message belongs to one client; a cached copy would show it to every client",
    note = "add Rocket's flash cookie to the key: put \"_flash\" in `vary_cookies`, next to the \
            cookies already listed (`vary_cookies = [\"_flash\"]` if none)"
)]
pub trait KeysFlashCookie {}
impl<Q, A, T, C> KeysFlashCookie for Route<Q, A, T, C, Yes> {}
impl<R: KeysFlashCookie> MetBy<R> for FlashCookie {}

#[derive(Debug)]
pub enum ClientAddress {}
#[diagnostic::on_unimplemented(
    message = "this handler reads the client's address, which no cache key holds",
    label = "reads the client's address",
    note = "a page rendered for one client's address would be served to every client; \
            `public` does not change that",
    note = "if the page does not depend on the address (it is only logged, say), name the \
            parameter in `trusted_guards = [\"name\"]`; otherwise remove #[cached_route]"
)]
pub trait KeysClientAddress {}
impl<R: KeysClientAddress> MetBy<R> for ClientAddress {}

#[derive(Debug)]
pub enum MethodInKey {}
#[diagnostic::on_unimplemented(
    message = "this handler reads the request `Method`, and GET and HEAD share one cache entry",
    label = "reads the method",
    note = "a page rendered for HEAD would be served to GET visitors",
    note = "if the page is the same for GET and HEAD, name the parameter in \
            `trusted_guards = [\"name\"]`; otherwise remove #[cached_route]"
)]
pub trait KeysMethod {}
impl<R: KeysMethod> MetBy<R> for MethodInKey {}

/// A guard type that route `R` may take: the single bound generated code asserts.
#[diagnostic::on_unimplemented(
    message = "#[cached_route] cannot tell whether the request guard `{Self}` changes the page",
    label = "a guard the cache cannot vouch for",
    note = "a guard may read the session cookie, a header or the client's address; if it does, \
            the first client's page would be served to every other client",
    note = "if the page depends on what this guard reads, put that in the key (`vary = [\"Header\"]`, \
            `vary_cookies = [\"session\"]`) and then name the parameter in \
            `trusted_guards = [\"name\"]` on this route",
    note = "if the guard is the same for every request (a database connection, say), name the \
            parameter in `trusted_guards = [\"name\"]`, or implement \
            `rocket_route_cache::SharedGuard` for its type once"
)]
pub trait Checked<R, Via> {}

impl<R, V, G: Guard<V>> Checked<R, V> for G where G::Needs: MetBy<R> {}

/// Asserts at compile time that the guard `_guard` may be taken by a route whose key holds
/// `R`; does nothing at run time.
#[inline(always)]
pub fn check_guard<R, V, G: Checked<R, V>>(_guard: &G) {}
