use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, tags = ["article:{id:?}"])]
#[get("/articles/<id>")]
fn article(id: u32) -> String {
    id.to_string()
}

fn main() {}
