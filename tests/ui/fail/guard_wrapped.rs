//! `Option`, `Result` and `Outcome` of a per-user guard are per-user too.
use rocket_route_cache::cached_route;
use rocket::get;
use rocket::http::Accept;
use rocket::request::Outcome;
use std::net::SocketAddr;

#[cached_route(ttl = 60)]
#[get("/maybe")]
fn maybe(client: Option<std::net::IpAddr>) -> String {
    format!("{client:?}")
}

#[cached_route(ttl = 60)]
#[get("/result")]
fn result(accept: Result<&Accept, std::convert::Infallible>) -> String {
    format!("{accept:?}")
}

#[cached_route(ttl = 60)]
#[get("/outcome")]
fn outcome(peer: Outcome<SocketAddr, std::convert::Infallible>) -> String {
    format!("{:?}", peer.succeeded())
}

fn main() {}
