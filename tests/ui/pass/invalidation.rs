//! Tags and typed invalidation compile warning-free, used from a handler and from a task.
#![deny(warnings, unused, nonstandard_style, rust_2018_idioms)]

use rocket_route_cache::invalidation::InvalidationError;
use rocket_route_cache::{cached_route, Cache, Invalidation};
use rocket::http::Status;
use rocket::{get, post, routes, uri};

#[cached_route(ttl = 600, tags = ["articles", "article:{id}", "{{literal}}:{id}:{id}"])]
#[get("/articles/<id>?<lang>")]
fn article(id: u32, lang: Option<&str>) -> String {
    format!("{id} {lang:?}")
}

#[cached_route(ttl = 600, tags = ["articles"])]
#[get("/articles")]
fn index() -> &'static str {
    "index"
}

/// A handler with a named lifetime: typed invalidation takes the same types.
#[cached_route(ttl = 600, tags = ["user:{name}"])]
#[get("/users/<name>")]
pub fn user<'a>(name: &'a str) -> String {
    name.to_owned()
}

#[post("/articles/<id>")]
async fn update(id: u32, cache: &Cache) -> Result<&'static str, Status> {
    let invalidated: Result<(), InvalidationError> = async {
        Invalidation::new()
            .route(article::entries(id, None))
            .route(user::entries("ann"))
            .run_in(cache)
            .await?;
        cache.invalidate(uri!(article(id, _))).await?;
        cache.invalidate_tag(format!("article:{id}")).await?;
        cache.invalidate_tag("articles").await
    }
    .await;
    invalidated.map(|()| "updated").map_err(|_| Status::ServiceUnavailable)
}

async fn nightly() -> Result<(), InvalidationError> {
    article::invalidate(5, Some("fr")).await?;
    user::invalidate("ann").await?;
    rocket_route_cache::invalidate("/articles").await?;
    rocket_route_cache::invalidate_tag("articles").await?;
    rocket_route_cache::invalidate_all().await
}

fn is_send<T: Send>(_: T) {}

fn main() {
    is_send(nightly());
    let _ = rocket::build().mount("/", routes![article, index, user, update]);
}
