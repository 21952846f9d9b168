use rocket_route_cache::cached_route;
use rocket::route;

#[cached_route(ttl = 60)]
#[route(POST, uri = "/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
