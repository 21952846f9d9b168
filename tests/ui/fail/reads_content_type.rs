use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::ContentType;

#[cached_route(ttl = 60, vary = ["Accept"])]
#[get("/")]
fn index(content_type: &ContentType) -> String {
    content_type.to_string()
}

fn main() {}
