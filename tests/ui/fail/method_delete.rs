use rocket_route_cache::cached_route;
use rocket::delete;

#[cached_route(ttl = 60)]
#[delete("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
