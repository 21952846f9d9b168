//! `ttl` and the stale windows take constant expressions of any integer type, checked by the
//! compiler; the generated code stays warning-free.
#![deny(warnings, unused, nonstandard_style, rust_2018_idioms)]

use rocket_route_cache::cached_route;
use rocket::{get, routes};

const MINUTE: u32 = 60;

mod limits {
    pub const HOUR: u64 = 3600;
    pub const DAY: usize = 86_400;
}

#[cached_route(ttl = 15 * 60)]
#[get("/product")]
fn arithmetic() -> &'static str {
    "product"
}

#[cached_route(ttl = MINUTE, stale = MINUTE / 2, stale_if_error = limits::DAY)]
#[get("/named")]
fn named() -> &'static str {
    "named"
}

#[cached_route(ttl = limits::HOUR, stale = (MINUTE * 5))]
#[get("/wide")]
async fn wide() -> String {
    String::from("wide")
}

fn main() {
    let _ = rocket::build().mount("/", routes![arithmetic, named, wide]);
}
