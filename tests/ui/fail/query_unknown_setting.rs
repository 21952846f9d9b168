use rocket::get;
use rocket_route_cache::cached_route;

#[cached_route(ttl = 60, query = "every")]
#[get("/")]
fn index() -> &'static str {
    "home"
}

fn main() {}
