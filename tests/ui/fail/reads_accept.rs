use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::Accept;

#[cached_route(ttl = 60)]
#[get("/")]
fn index(accept: &Accept) -> String {
    accept.to_string()
}

fn main() {}
