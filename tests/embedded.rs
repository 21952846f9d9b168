//! The behaviour of cached routes on the embedded store, through Rocket's local client.

mod common;

use common::checks;
use rocket_route_cache::{Cache, Config};

fn cache() -> Cache {
    let mut config = Config::embedded();
    config.max_item_size = 4096;
    Cache::new(config).unwrap()
}

#[rocket::async_test]
async fn miss_then_hit() {
    checks::miss_then_hit(&common::client(cache()).await).await;
}

#[rocket::async_test]
async fn handler_shapes() {
    checks::handler_shapes(&common::client(cache()).await).await;
}

#[rocket::async_test]
async fn errors_and_redirects_are_not_stored() {
    checks::errors_and_redirects_are_not_stored(&common::client(cache()).await).await;
}

#[rocket::async_test]
async fn unsafe_responses_are_not_stored() {
    checks::unsafe_responses_are_not_stored(&common::client(cache()).await).await;
}

#[rocket::async_test]
async fn oversized_and_streamed_bodies_pass_through() {
    checks::oversized_and_streamed_bodies_pass_through(&common::client(cache()).await).await;
}

#[rocket::async_test]
async fn key_semantics() {
    checks::key_semantics(&common::client(cache()).await).await;
}

#[rocket::async_test]
async fn authorization_bypasses() {
    checks::authorization_bypasses(&common::client(cache()).await).await;
}

#[rocket::async_test]
async fn entries_expire() {
    checks::entries_expire(&common::client(cache()).await).await;
}

/// `x_cache_header = false`: no `X-Cache`, but hits still carry `Age`.
#[rocket::async_test]
async fn the_x_cache_header_can_be_turned_off() {
    let mut config = Config::embedded();
    config.x_cache_header = false;
    let client = common::client(Cache::new(config).unwrap()).await;
    let first = client.get("/plain").dispatch().await;
    assert_eq!(first.headers().get_one("X-Cache"), None);
    assert_eq!(first.headers().get_one("Age"), None);
    let second = client.get("/plain").dispatch().await;
    assert_eq!(second.headers().get_one("X-Cache"), None);
    assert!(second.headers().get_one("Age").is_some());
    assert_eq!(common::runs(&client, "plain"), 1);
}
