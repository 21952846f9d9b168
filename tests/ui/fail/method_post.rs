use rocket_route_cache::cached_route;
use rocket::post;

#[cached_route(ttl = 60)]
#[post("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
