//! `public` says "the same page for every client"; it never lets a handler read request data
//! the key leaves out.
use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::uri::Origin;
use rocket::http::{Accept, CookieJar};

#[cached_route(ttl = 60, public, query = ["page"])]
#[get("/echo?<page>")]
fn echo(page: Option<u32>, origin: &Origin<'_>) -> String {
    format!("{page:?} {origin}")
}

#[cached_route(ttl = 60, public)]
#[get("/negotiated")]
fn negotiated(accept: &Accept) -> String {
    accept.to_string()
}

#[cached_route(ttl = 60, public)]
#[get("/greeting")]
fn greeting(cookies: &CookieJar<'_>) -> String {
    cookies.get("lang").map(|c| c.value().to_owned()).unwrap_or_default()
}

fn main() {}
