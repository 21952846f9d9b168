use rocket_route_cache::cached_route;
use rocket::{get, routes};

#[get("/")]
#[cached_route(ttl = 60)]
fn index() -> &'static str {
    "hello"
}

fn main() {
    let _ = rocket::build().mount("/", routes![index]);
}
