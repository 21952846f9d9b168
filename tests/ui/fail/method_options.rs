use rocket_route_cache::cached_route;
use rocket::options;

#[cached_route(ttl = 60)]
#[options("/")]
fn index() -> &'static str {
    ""
}

fn main() {}
