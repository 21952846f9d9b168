use rocket_route_cache::cached_route;
use rocket::get;
use rocket::State;

#[cached_route(ttl = 60, trusted_guards = ["dbb"])]
#[get("/")]
fn index(db: &State<u32>) -> String {
    db.to_string()
}

fn main() {}
