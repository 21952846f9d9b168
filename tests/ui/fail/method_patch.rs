use rocket_route_cache::cached_route;
use rocket::patch;

#[cached_route(ttl = 60)]
#[patch("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
