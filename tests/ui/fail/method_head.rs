use rocket_route_cache::cached_route;
use rocket::head;

#[cached_route(ttl = 60)]
#[head("/")]
fn index() -> &'static str {
    ""
}

fn main() {}
