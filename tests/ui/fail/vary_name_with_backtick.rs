use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, vary = ["X-a`b", "X-a`B"])]
#[get("/")]
fn index() -> &'static str {
    ""
}

fn main() {}
