use rocket_route_cache::cached_route;
use rocket::get;

const MINUTE: f64 = 60.0;

#[cached_route(ttl = MINUTE)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
