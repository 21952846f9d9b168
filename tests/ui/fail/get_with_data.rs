use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60)]
#[get("/", data = "<body>")]
fn index(body: String) -> String {
    body
}

fn main() {}
