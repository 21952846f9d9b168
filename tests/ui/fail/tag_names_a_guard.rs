use rocket_route_cache::cached_route;
use rocket::{get, State};

struct Site(String);

#[cached_route(ttl = 60, tags = ["site:{site}"])]
#[get("/")]
fn index(site: &State<Site>) -> String {
    site.0.clone()
}

fn main() {}
