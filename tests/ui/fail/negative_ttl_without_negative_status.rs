use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, statuses = [200, 301], negative_ttl = 30)]
#[get("/")]
fn index() -> Option<String> {
    None
}

fn main() {}
