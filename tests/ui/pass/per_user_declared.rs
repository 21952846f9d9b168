//! Per-user parameter types are accepted once the route says how it varies or vouches for them.
#![deny(warnings)]

use rocket_route_cache::cached_route;
use rocket::http::CookieJar;
use rocket::request::FlashMessage;
use rocket::response::Flash;
use rocket::{get, routes};

#[cached_route(ttl = 60, vary_cookies = ["lang"])]
#[get("/greeting")]
fn greeting(cookies: &CookieJar<'_>) -> String {
    cookies.get("lang").map(|c| c.value().to_owned()).unwrap_or_default()
}

#[cached_route(ttl = 60, public = true)]
#[get("/flash")]
fn flash() -> Flash<String> {
    Flash::success(String::from("page"), "note")
}

#[cached_route(
    ttl = 60,
    vary = ["Accept-Language", "X-Tenant"],
    query = ["page", "sort"],
    statuses = [200, 404, 410],
    honor_no_cache
)]
#[get("/list?<page>&<sort>")]
fn list(page: Option<u32>, sort: Option<&str>) -> String {
    format!("{page:?} {sort:?}")
}

#[cached_route(ttl = 60, vary_cookies = ["_flash"])]
#[get("/flash-keyed")]
fn flash_keyed(flash: Option<FlashMessage<'_>>) -> String {
    flash.map(|f| f.message().to_owned()).unwrap_or_default()
}

#[cached_route(ttl = 60, vary = ["accept"])]
#[get("/negotiated")]
fn negotiated(accept: &rocket::http::Accept) -> String {
    accept.to_string()
}

/// Logs the address; the page does not depend on it.
#[cached_route(ttl = 60, trusted_guards = ["client"])]
#[get("/address")]
fn address(client: std::net::IpAddr) -> &'static str {
    let _logged = client;
    "the same for everyone"
}

#[cached_route(ttl = 60, query = false, honor_no_cache = false)]
#[get("/about")]
fn about() -> &'static str {
    "about"
}

fn main() {
    let _ = rocket::build().mount("/", routes![greeting, flash, list, about, flash_keyed, negotiated, address]);
}
