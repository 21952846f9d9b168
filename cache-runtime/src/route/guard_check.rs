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
//! - guards that key the page themselves ([`KeyedGuard`]: the signed-in user, say): their
//!   `cache_key` is written into the key, so two users never share an entry.
//!
//! Anything else (client addresses, TLS certificates, `Method`, the application's own guards)
//! does not compile until the guard's type implements [`KeyedGuard`] or [`SharedGuard`], or the
//! route names the parameter in `trusted_guards = [".."]`.
//!
//! How the check is built: [`Checked`] is implemented for a guard `G` when `G: Guard<V>` for
//! some `V` (inferred: the "via" parameter only keeps the impls apart, so that a blanket impl
//! over [`SharedGuard`] and the impls for Rocket's own guards never overlap) and the guard's
//! [`Guard::Needs`] is met by the route's [`Route`] flags. Each need has its own trait, so
//! the compiler's message says what to add.

use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};

use rocket::http::uri::{Host, Origin};
use rocket::http::{Accept, ContentType, CookieJar, Method};
use rocket::outcome::Outcome;
use rocket::request::FlashMessage;
use rocket::{Config, Route as RocketRoute, Shutdown, State};

use crate::route::guard_key::GuardKey;

/// A request guard that says which variant of a page it asks for: a cached handler may take it
/// with nothing else declared, and its [`cache_key`](KeyedGuard::cache_key) is part of the key.
/// The way to cache per-user pages: two users never share an entry, and one user shares one
/// entry across logins, instances and re-encrypted private cookies.
///
/// ```
/// use std::collections::HashMap;
/// use rocket::http::Status;
/// use rocket::request::{FromRequest, Outcome, Request};
///
/// /// Session tokens and the users they name (a database table, say).
/// struct Sessions(HashMap<String, u64>);
///
/// /// The signed-in user, from the `session` cookie.
/// struct User {
///     id: u64,
/// }
///
/// #[rocket::async_trait]
/// impl<'r> FromRequest<'r> for User {
///     type Error = ();
///
///     async fn from_request(request: &'r Request<'_>) -> Outcome<User, ()> {
///         let sessions = request.rocket().state::<Sessions>();
///         let token = request.cookies().get("session").map(|c| c.value().to_owned());
///         match (sessions, token) {
///             (Some(sessions), Some(token)) => match sessions.0.get(&token) {
///                 Some(id) => Outcome::Success(User { id: *id }),
///                 None => Outcome::Forward(Status::Unauthorized),
///             },
///             _ => Outcome::Forward(Status::Unauthorized),
///         }
///     }
/// }
///
/// impl rocket_route_cache::KeyedGuard for User {
///     fn cache_key(&self) -> impl std::fmt::Display + '_ {
///         self.id
///     }
/// }
///
/// #[rocket_route_cache::cached_route(ttl = 600, tags = ["user:{user}"])]
/// #[rocket::get("/dashboard")]
/// fn dashboard(user: User) -> String {
///     format!("the dashboard of user {}", user.id)
/// }
/// ```
///
/// `Option<User>` and `Result<User, E>` work too: an absent user is a variant of its own (the
/// anonymous page). A tag may name the parameter (`tags = ["user:{user}"]`, its `cache_key`),
/// so that one user's pages can be dropped alone with `invalidate_tag("user:42")`. Such a page
/// is never sent downstream as `public`: `downstream = "max-age"` sends `private, max-age=N`,
/// and `downstream = "s-maxage"` does not compile.
///
/// The value must identify everything the guard lets the page depend on: the user's id, not
/// the user's name if two users may share a name. For a guard defined in another crate, name
/// one of your own types as `Via`, as for [`SharedGuard`].
pub trait KeyedGuard<Via = Builtin> {
    /// Returns what identifies the page's variant for this guard's value, borrowed: `&self.id`.
    fn cache_key(&self) -> impl fmt::Display + '_;
}

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
/// A guard that reads per-request data is not a `SharedGuard`: implement [`KeyedGuard`] for it
/// instead.
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

/// What a request guard needs the route's key to hold, and what it adds to it. Rocket's own
/// guards are listed here; [`SharedGuard`]s need nothing, [`KeyedGuard`]s add their value.
// No message of its own: the compiler reports an unknown guard through `Checked`.
pub trait Guard<Via> {
    type Needs;
    /// Whether the guard keys the page itself ([`KeyedGuard`], or a wrapper of one).
    const KEYED: bool = false;
    /// Whether the guard reads the query string: the key then holds it.
    const READS_QUERY: bool = false;
    /// Writes the guard's part of the key: nothing, but for [`KeyedGuard`]s.
    fn write_key(&self, _key: &mut GuardKey) {}
}

/// Keeps the impl for [`KeyedGuard`]s apart from the others.
#[derive(Debug)]
pub enum ViaKeyed {}

#[diagnostic::do_not_recommend]
impl<V, G: KeyedGuard<V>> Guard<(ViaKeyed, V)> for G {
    type Needs = PerClient;
    const KEYED: bool = true;
    fn write_key(&self, key: &mut GuardKey) {
        key.value(&self.cache_key());
    }
}

/// Keeps the impl for [`SharedGuard`]s apart from the others.
#[derive(Debug)]
pub enum ViaShared {}
/// Keeps the impls for `Option`, `Result` and `Outcome` apart from the others.
#[derive(Debug)]
pub enum ViaWrapper {}

#[diagnostic::do_not_recommend]
impl<V, G: SharedGuard<V>> Guard<(ViaShared, V)> for G {
    type Needs = Nothing;
}

/// Writes a wrapped guard's key part, or, for a keyed guard that is absent, a variant of its own.
fn write_wrapped<V, G: Guard<V>>(guard: Option<&G>, key: &mut GuardKey) {
    match guard {
        Some(guard) => guard.write_key(key),
        None if G::KEYED => key.absent(),
        None => {}
    }
}

#[diagnostic::do_not_recommend]
impl<V, G: Guard<V>> Guard<(ViaWrapper, V)> for Option<G> {
    type Needs = G::Needs;
    const KEYED: bool = G::KEYED;
    const READS_QUERY: bool = G::READS_QUERY;
    fn write_key(&self, key: &mut GuardKey) {
        write_wrapped(self.as_ref(), key);
    }
}

#[diagnostic::do_not_recommend]
impl<V, G: Guard<V>, E> Guard<(ViaWrapper, V)> for Result<G, E> {
    type Needs = G::Needs;
    const KEYED: bool = G::KEYED;
    const READS_QUERY: bool = G::READS_QUERY;
    fn write_key(&self, key: &mut GuardKey) {
        write_wrapped(self.as_ref().ok(), key);
    }
}

#[diagnostic::do_not_recommend]
impl<V, G: Guard<V>, E, F> Guard<(ViaWrapper, V)> for Outcome<G, E, F> {
    type Needs = G::Needs;
    const KEYED: bool = G::KEYED;
    const READS_QUERY: bool = G::READS_QUERY;
    fn write_key(&self, key: &mut GuardKey) {
        let guard = match self {
            Outcome::Success(guard) => Some(guard),
            _ => None,
        };
        write_wrapped(guard, key);
    }
}

#[diagnostic::do_not_recommend]
impl Guard<Builtin> for &Origin<'_> {
    type Needs = WholeQuery;
    const READS_QUERY: bool = true;
}
#[diagnostic::do_not_recommend]
impl Guard<Builtin> for &Accept {
    type Needs = AcceptHeader;
}
#[diagnostic::do_not_recommend]
impl Guard<Builtin> for &ContentType {
    type Needs = ContentTypeHeader;
}
#[diagnostic::do_not_recommend]
impl Guard<Builtin> for &CookieJar<'_> {
    type Needs = Cookies;
}
#[diagnostic::do_not_recommend]
impl Guard<Builtin> for FlashMessage<'_> {
    type Needs = FlashCookie;
}
#[diagnostic::do_not_recommend]
impl Guard<Builtin> for IpAddr {
    type Needs = ClientAddress;
}
#[diagnostic::do_not_recommend]
impl Guard<Builtin> for SocketAddr {
    type Needs = ClientAddress;
}
/// GET and HEAD share an entry: a handler that renders HEAD differently would hand GET
/// visitors its HEAD page.
#[diagnostic::do_not_recommend]
impl Guard<Builtin> for Method {
    type Needs = MethodInKey;
}

/// What a route's key holds beyond the path and host, as type-level flags ([`Yes`] / [`No`]):
/// the whole query, `Accept`, `Content-Type`, any cookie, Rocket's flash cookie; and whether
/// its pages go to shared caches downstream (`downstream = "s-maxage"`).
#[derive(Debug)]
pub struct Route<Query, Accept, ContentType, Cookies, Flash, Shared>(
    PhantomData<(Query, Accept, ContentType, Cookies, Flash, Shared)>,
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
#[diagnostic::do_not_recommend]
impl<A, T, C, F, S> KeysWholeQuery for Route<Yes, A, T, C, F, S> {}
impl<R: KeysWholeQuery> MetBy<R> for WholeQuery {}

#[derive(Debug)]
pub enum AcceptHeader {}
#[diagnostic::on_unimplemented(
    message = "this handler reads `&Accept`, and the route's cache key does not hold the `Accept` header",
    label = "reads the `Accept` header",
    note = "add `vary = [\"Accept\"]` to #[cached_route]: one entry per `Accept` value"
)]
pub trait KeysAccept {}
#[diagnostic::do_not_recommend]
impl<Q, T, C, F, S> KeysAccept for Route<Q, Yes, T, C, F, S> {}
impl<R: KeysAccept> MetBy<R> for AcceptHeader {}

#[derive(Debug)]
pub enum ContentTypeHeader {}
#[diagnostic::on_unimplemented(
    message = "this handler reads `&ContentType`, and the route's cache key does not hold the `Content-Type` header",
    label = "reads the request's `Content-Type` header",
    note = "add `vary = [\"Content-Type\"]` to #[cached_route]"
)]
pub trait KeysContentType {}
#[diagnostic::do_not_recommend]
impl<Q, A, C, F, S> KeysContentType for Route<Q, A, Yes, C, F, S> {}
impl<R: KeysContentType> MetBy<R> for ContentTypeHeader {}

#[derive(Debug)]
pub enum Cookies {}
#[diagnostic::on_unimplemented(
    message = "this handler reads `&CookieJar`, and the route's cache key holds no cookie",
    label = "reads the client's cookies",
    note = "a cached copy would serve one client's page to others; `public` does not change that",
    note = "for a per-user page, take a guard that implements `rocket_route_cache::KeyedGuard` \
            (the signed-in user) instead of the jar: its value keys the page",
    note = "otherwise list the cookies the page reads in `vary_cookies`, by the names your code \
            reads; if the handler only sets cookies (a response that sets one is never \
            stored), name the parameter in `trusted_guards`"
)]
pub trait KeysCookies {}
#[diagnostic::do_not_recommend]
impl<Q, A, T, F, S> KeysCookies for Route<Q, A, T, Yes, F, S> {}
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
#[diagnostic::do_not_recommend]
impl<Q, A, T, C, S> KeysFlashCookie for Route<Q, A, T, C, Yes, S> {}
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

#[derive(Debug)]
pub enum PerClient {}
#[diagnostic::on_unimplemented(
    message = "this handler takes a `KeyedGuard`, so its pages belong to one user each, and \
               `downstream = \"s-maxage\"` lets shared caches serve them to everyone",
    label = "keys the page per user",
    note = "a CDN or proxy keeps a page by its URL; the next user asking would get this one's",
    note = "use `downstream = \"max-age\"` (sent as `private, max-age=N`: browsers only), or \
            remove `downstream`"
)]
pub trait KeysPerClientPrivately {}
#[diagnostic::do_not_recommend]
impl<Q, A, T, C, F> KeysPerClientPrivately for Route<Q, A, T, C, F, No> {}
impl<R: KeysPerClientPrivately> MetBy<R> for PerClient {}

/// A guard type that route `R` may take: the single bound generated code asserts. It also
/// writes the guard's part of the key.
#[diagnostic::on_unimplemented(
    message = "#[cached_route] cannot tell whether the request guard `{Self}` changes the page",
    label = "a guard the cache cannot vouch for",
    note = "a guard may read a cookie, a header or the client's address; if it does, the first \
            client's page would be served to every other client",
    note = "if the page depends on who asks or what the guard reads (a signed-in user, a \
            tenant, a language), implement `rocket_route_cache::KeyedGuard` for `{Self}`: \
            `fn cache_key(&self) -> impl Display + '_ {{ &self.id }}`; its value is then part of \
            the key",
    note = "if the guard is the same for every request (a database connection, say), implement \
            `rocket_route_cache::SharedGuard` for its type once",
    note = "if a header the guard reads is already in `vary`, the route may vouch for it instead: \
            `trusted_guards = [\"name\"]`"
)]
pub trait Checked<R, Via> {
    /// Whether the guard reads the query string.
    const READS_QUERY: bool;
    /// Writes the guard's part of the key.
    fn write(&self, key: &mut GuardKey);
}

impl<R, V, G: Guard<V>> Checked<R, V> for G
where
    G::Needs: MetBy<R>,
{
    const READS_QUERY: bool = G::READS_QUERY;
    fn write(&self, key: &mut GuardKey) {
        self.write_key(key);
    }
}

/// Asserts at compile time that `guard` may be taken by a route whose key holds `R`, and
/// writes its part of the key (nothing, unless it is a [`KeyedGuard`]).
#[inline(always)]
pub fn check_guard<R, V, G: Checked<R, V>>(guard: &G, key: &mut GuardKey) {
    guard.write(key);
    if G::READS_QUERY {
        key.trusted();
    }
}

/// A request guard a tag may name (`tags = ["user:{user}"]`): a [`KeyedGuard`], whose
/// `cache_key` the tag holds, or an `Option` / `Result` of one (absent: empty).
#[diagnostic::on_unimplemented(
    message = "a tag names the request guard `{Self}`, which is not a `KeyedGuard`",
    label = "its value is not part of the key",
    note = "a tag may name the route's parameters and request guards that implement \
            `rocket_route_cache::KeyedGuard`, whose value is part of the key"
)]
pub trait TagGuard<Via> {
    fn write_tag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<V, G: KeyedGuard<V>> TagGuard<(ViaKeyed, V)> for G {
    fn write_tag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cache_key())
    }
}

impl<V, G: TagGuard<V>> TagGuard<(ViaWrapper, V)> for Option<G> {
    fn write_tag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().map_or(Ok(()), |guard| guard.write_tag(f))
    }
}

impl<V, G: TagGuard<V>, E> TagGuard<(ViaWrapper, V)> for Result<G, E> {
    fn write_tag(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().map_or(Ok(()), |guard| guard.write_tag(f))
    }
}

/// A keyed guard as a tag writes it.
struct TagValue<'g, G, V>(&'g G, PhantomData<V>);

impl<V, G: TagGuard<V>> fmt::Display for TagValue<'_, G, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_tag(f)
    }
}

/// Returns `guard` as a tag holds it. A trait object, so that a guard that is no `KeyedGuard` is
/// reported once, here, and not again by the tag's `format!` (which allocates anyway).
pub fn tag_guard<'g, V: 'static, G: TagGuard<V>>(guard: &'g G) -> Box<dyn fmt::Display + 'g> {
    Box::new(TagValue(guard, PhantomData))
}
