use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, query = ["page"])]
#[get("/search?<params..>")]
fn index(params: std::collections::HashMap<String, String>) -> String {
    format!("{params:?}")
}

fn main() {}
