use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
