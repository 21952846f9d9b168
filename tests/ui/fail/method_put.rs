use rocket_route_cache::cached_route;
use rocket::put;

#[cached_route(ttl = 60)]
#[put("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
