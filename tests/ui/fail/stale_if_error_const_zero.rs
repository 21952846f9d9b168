use rocket_route_cache::cached_route;
use rocket::get;

const MINUTE: i32 = 60;

#[cached_route(ttl = 60, stale_if_error = MINUTE - 60)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
