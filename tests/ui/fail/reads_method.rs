use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::Method;

#[cached_route(ttl = 60)]
#[get("/")]
fn index(method: Method) -> String {
    method.to_string()
}

fn main() {}
