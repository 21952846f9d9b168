use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, stale_if_error = "1h")]
#[get("/")]
fn index() -> String {
    String::new()
}

fn main() {}
