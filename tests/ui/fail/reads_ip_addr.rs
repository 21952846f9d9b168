use std::net::IpAddr;

use rocket_route_cache::cached_route;
use rocket::get;

#[cached_route(ttl = 60)]
#[get("/")]
fn index(client: IpAddr) -> String {
    format!("hello {client}")
}

fn main() {}
