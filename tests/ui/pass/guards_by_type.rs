//! Shared guards are accepted by type, however they are spelled or wrapped; an application's
//! own guards once they implement `SharedGuard` (a generic one from another crate through a
//! local `Via` type) or the route names them in `trusted_guards`.
#![deny(warnings)]

use rocket_route_cache::{cached_route, Cache, SharedGuard};
use cached_route_suite::guards::Pooled;
use rocket::http::uri::Host as Authority;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, routes, Shutdown, State as Managed};

type Counter<'a> = &'a Managed<u32>;

/// The same for every request: a clock, say.
struct Clock;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Clock {
    type Error = ();

    async fn from_request(_: &'r Request<'_>) -> Outcome<Clock, ()> {
        Outcome::Success(Clock)
    }
}

impl SharedGuard for Clock {}

/// The application's database, for the generic guard from another crate.
struct Db;

impl SharedGuard<Db> for Pooled<Db> {}

/// Reads `X-Tenant`, which the route puts in the key.
struct Tenant(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Tenant {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Tenant, ()> {
        let tenant = request.headers().get_one("X-Tenant").unwrap_or("none");
        Outcome::Success(Tenant(tenant.to_owned()))
    }
}

#[cached_route(ttl = 60)]
#[get("/shared")]
fn shared<'a>(
    counter: Counter<'a>,
    host: Option<&Authority<'_>>,
    stop: Result<Shutdown, std::convert::Infallible>,
    cache: &Cache,
    clock: Clock,
    db: Pooled<Db>,
) -> String {
    let _ = (stop, cache, clock, db);
    format!("{} {host:?}", **counter)
}

#[cached_route(ttl = 60, vary = ["X-Tenant"], trusted_guards = ["tenant"])]
#[get("/tenant")]
fn tenant(tenant: Tenant) -> String {
    tenant.0
}

/// A route parameter is in the key whatever its type: only guards are checked.
#[cached_route(ttl = 60)]
#[get("/hosts/<ip>")]
fn host(ip: std::net::IpAddr) -> String {
    ip.to_string()
}

fn main() {
    let _ = rocket::build()
        .manage(0u32)
        .mount("/", routes![shared, tenant, host]);
}
