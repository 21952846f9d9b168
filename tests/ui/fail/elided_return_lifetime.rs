use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60)]
#[get("/<name>")]
fn echo(name: &str) -> &str {
    name
}

fn main() {}
