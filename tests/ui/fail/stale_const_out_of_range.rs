use rocket_route_cache::cached_route;
use rocket::get;

const YEAR: u64 = 365 * 86_400;

#[cached_route(ttl = 60, stale = 200 * YEAR)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
