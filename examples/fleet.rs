//! A fleet of three Memcached servers configured in Rocket's own configuration
//! (`examples/fleet.toml`, read as `Rocket.toml` would be) through `CacheFairing`.
//!
//! ```text
//! memcached -p 11211 & memcached -p 11212 & memcached -p 11213 &
//! cargo run --example fleet
//! curl -s http://127.0.0.1:8000/internal/metrics | grep server_up
//! ```
//!
//! With a server down its keys are misses and the page is still served; see README "Running on
//! a fleet".

use rocket::figment::providers::{Format, Toml};
use rocket::{get, launch, routes};
use rocket_route_cache::{cached_route, CacheFairing};

#[cached_route(ttl = 60)]
#[get("/page/<n>")]
fn page(n: u32) -> String {
    format!("page {n}, rendered once a minute at most, on whichever server its key routes to\n")
}

#[launch]
fn rocket() -> _ {
    let figment = rocket::Config::figment()
        .merge(Toml::file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleet.toml")).nested());
    rocket::custom(figment)
        .attach(CacheFairing)
        .mount("/", routes![page])
        .mount("/internal", rocket_route_cache::metrics::metrics_routes())
}
