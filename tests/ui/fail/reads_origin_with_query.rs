use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::uri::Origin;

#[cached_route(ttl = 60, query = false)]
#[get("/")]
fn index(origin: &Origin<'_>) -> String {
    origin.query().map(|q| q.to_string()).unwrap_or_default()
}

fn main() {}
