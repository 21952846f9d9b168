use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 0)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
