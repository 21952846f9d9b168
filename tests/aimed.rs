//! Invalidation counters cannot be aimed, over the wire (a real server on 127.0.0.1). Paths,
//! parameter values and tags share 65,536 counters per store; which names share one depends on
//! a key clients never see (the store's epoch, see `invalidation/generation.rs`). Under the
//! public mapping every release before this one used, the tag `user:mallory144959` shared the
//! counter of the path `/` (found offline in under a second): a user allowed to invalidate
//! their own tag dropped the home page at will.

use cached_route_suite::{http1, launch, launch_alone, loopback_config, MemcachedServer};
use rocket::{get, post, routes};
use rocket_route_cache::{cached_route, Cache, Config};

#[cached_route(ttl = 600)]
#[get("/")]
fn home() -> &'static str {
    "home"
}

/// What a signed-in user may do to their own pages: drop them.
#[post("/users/<id>/refresh")]
async fn refresh(id: &str, cache: &Cache) -> &'static str {
    cache.invalidate_tag(&format!("user:{id}")).await.unwrap();
    "refreshed"
}

fn app(cache: Cache) -> rocket::Rocket<rocket::Build> {
    rocket::custom(loopback_config())
        .manage(cache)
        .mount("/", routes![home, refresh])
}

async fn home_x_cache(port: u16) -> String {
    let reply = http1(port, "GET / HTTP/1.1\r\nHost: localhost").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "home"));
    reply.x_cache().to_owned()
}

/// The attacker's move: invalidate their own tag, chosen to share the home page's counter
/// under the public mapping.
async fn aim(port: u16) {
    let head = "POST /users/mallory144959/refresh HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0";
    let reply = http1(port, head).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "refreshed"));
}

async fn the_home_page_survives(port: u16) {
    assert_eq!(home_x_cache(port).await, "MISS");
    assert_eq!(home_x_cache(port).await, "HIT");
    aim(port).await;
    assert_eq!(
        home_x_cache(port).await,
        "HIT",
        "the aimed tag dropped the home page"
    );
}

#[rocket::async_test]
async fn memcached_a_users_tag_cannot_be_aimed_at_another_page() {
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let running = launch(app(cache), memcached).await;
    the_home_page_survives(running.port).await;
}

#[rocket::async_test]
async fn embedded_a_users_tag_cannot_be_aimed_at_another_page() {
    let running = launch_alone(app(Cache::new(Config::embedded()).unwrap())).await;
    the_home_page_survives(running.port).await;
}
