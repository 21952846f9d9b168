use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60, trusted_guards = ["id"])]
#[get("/<id>")]
fn index(id: u32) -> String {
    id.to_string()
}

fn main() {}
