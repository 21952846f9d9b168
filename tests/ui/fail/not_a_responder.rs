use rocket_route_cache::cached_route;
use rocket::get;

struct Page;

#[cached_route(ttl = 60)]
#[get("/")]
fn index() -> Page {
    Page
}

fn main() {}
