use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, query = ["page"])]
#[get("/search?<q>&<page>")]
fn index(q: &str, page: u32) -> String {
    format!("{q}{page}")
}

fn main() {}
