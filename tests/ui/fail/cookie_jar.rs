use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::CookieJar;

#[cached_route(ttl = 60)]
#[get("/")]
fn index(cookies: &CookieJar<'_>) -> String {
    cookies.get("name").map(|c| c.value().to_owned()).unwrap_or_default()
}

fn main() {}
