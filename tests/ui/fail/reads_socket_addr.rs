use std::net::SocketAddr;

use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60)]
#[get("/")]
fn index(client: SocketAddr) -> String {
    format!("hello {client}")
}

fn main() {}
