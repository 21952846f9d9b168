use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, public = "yes")]
#[get("/")]
fn index() -> String {
    String::new()
}

fn main() {}
