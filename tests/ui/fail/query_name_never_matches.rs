use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, query = ["page.x"])]
#[get("/?<page>")]
fn index(page: Option<u32>) -> String {
    format!("{page:?}")
}

fn main() {}
