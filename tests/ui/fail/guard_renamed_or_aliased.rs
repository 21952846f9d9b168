//! Per-user guards are found by their resolved type, whatever the spelling.
use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::CookieJar as Jar;

type Session<'a> = &'a rocket::http::CookieJar<'a>;

#[cached_route(ttl = 60)]
#[get("/renamed")]
fn renamed(jar: &Jar<'_>) -> String {
    jar.get("user").map(|c| c.value().to_owned()).unwrap_or_default()
}

#[cached_route(ttl = 60)]
#[get("/aliased")]
fn aliased<'a>(session: Session<'a>) -> String {
    session.get("user").map(|c| c.value().to_owned()).unwrap_or_default()
}

fn main() {}
