use rocket_route_cache::cached_route;
use rocket::get;

const DISABLED: u32 = 0;

#[cached_route(ttl = DISABLED)]
#[get("/")]
fn index() -> &'static str {
    "hello"
}

fn main() {}
