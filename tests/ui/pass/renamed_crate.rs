//! `crate = ".."`: the generated code reaches the runtime through the path given, as when
//! Cargo.toml renames the dependency (`my_cache = { package = "rocket-route-cache" }`) or an
//! application re-exports it from a module.
#![deny(warnings, unused, nonstandard_style, rust_2018_idioms)]

extern crate rocket_route_cache as my_cache;

use rocket::{get, routes};

mod web {
    /// The application's own facade over its dependencies.
    pub mod cache {
        pub use my_cache::*;
    }
}

#[my_cache::cached_route(ttl = 60, crate = "my_cache", tags = ["article:{id}"])]
#[get("/article/<id>")]
fn article(id: u32) -> String {
    id.to_string()
}

#[web::cache::cached_route(ttl = 60, crate = "crate::web::cache", stale = 30)]
#[get("/list/<page>")]
async fn list(page: u32, cache: &web::cache::Cache) -> String {
    let _ = cache;
    page.to_string()
}

async fn invalidate() {
    let _: Result<(), my_cache::invalidation::InvalidationError> = article::invalidate(1).await;
    let _ = list::invalidate(2).await;
}

fn main() {
    let _ = invalidate();
    let _ = rocket::build().mount("/", routes![article, list]);
}
