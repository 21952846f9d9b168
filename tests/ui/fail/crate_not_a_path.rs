use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, crate = "my cache")]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
