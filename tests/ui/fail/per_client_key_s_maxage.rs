//! A key holding a cookie or credentials says the page is one client's: `s-maxage` would hand
//! it to shared caches, which key by URL alone.
use rocket::get;
use rocket::http::CookieJar;
use rocket_route_cache::cached_route;

#[cached_route(ttl = 60, vary_cookies = ["user"], downstream = "s-maxage")]
#[get("/account")]
fn account(jar: &CookieJar<'_>) -> String {
    jar.get("user").map(|c| c.value().to_owned()).unwrap_or_default()
}

#[cached_route(ttl = 60, vary = ["authorization"], public, downstream = "s-maxage")]
#[get("/me")]
fn me() -> &'static str {
    "me"
}

fn main() {}
