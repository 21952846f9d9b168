use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, query = false)]
#[get("/search?<q>")]
fn index(q: &str) -> String {
    q.to_owned()
}

fn main() {}
