//! The demo: a slow page that is instant from the second request on.
//!
//! ```text
//! cargo run --example demo                                       # embedded store
//! MEMCACHED_SERVERS=127.0.0.1:11211 cargo run --example demo     # Memcached
//! curl -i http://127.0.0.1:8000/slow      # X-Cache: MISS, about 200 ms
//! curl -i http://127.0.0.1:8000/slow      # X-Cache: HIT, Age: 0, instant
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocket::fairing::AdHoc;
use rocket::response::content::RawHtml;
use rocket::{get, launch, routes};
use rocket_route_cache::cached_route;

/// About 200 ms of work, then a page that says when it was rendered.
#[cached_route(ttl = 30)]
#[get("/slow")]
async fn slow() -> String {
    rocket::tokio::time::sleep(Duration::from_millis(200)).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "Rendered at unix time {}.{:03}, after 200 ms of work.\n\
         Reload within 30 s: the same text comes back at once, from the cache.\n",
        now.as_secs(),
        now.subsec_millis()
    )
}

/// The same, per article: every id (and query) has its own entry.
#[cached_route(ttl = 30)]
#[get("/article/<id>?<lang>")]
async fn article(id: u32, lang: Option<&str>) -> String {
    rocket::tokio::time::sleep(Duration::from_millis(200)).await;
    format!("Article {id} in {}.\n", lang.unwrap_or("en"))
}

/// Not cached: explains what to look at.
#[get("/")]
fn index() -> RawHtml<&'static str> {
    RawHtml(
        r#"<!doctype html>
<title>cached_route demo</title>
<h1>cached_route demo</h1>
<p><a href="/slow">/slow</a> takes about 200 ms to render and is cached for 30 seconds.
Open it twice, or run <code>curl -i http://127.0.0.1:8000/slow</code> twice, and look at the
response headers:</p>
<ul>
<li><code>X-Cache: MISS</code>: the handler ran (200 ms) and its response was stored.</li>
<li><code>X-Cache: HIT</code> with <code>Age: N</code>: served from the cache, N seconds old;
the handler did not run.</li>
<li><code>X-Cache: BYPASS</code>: the request carried <code>Authorization</code>, so the cache
was not used for it.</li>
</ul>
<p>Each article has its own entry: <a href="/article/1">/article/1</a>,
<a href="/article/1?lang=fr">/article/1?lang=fr</a>, <a href="/article/2">/article/2</a>.</p>
<p>Entries live in Memcached when <code>MEMCACHED_SERVERS</code> is set, otherwise in memory.</p>
"#,
    )
}

#[launch]
fn rocket() -> _ {
    rocket::build()
        .mount("/", routes![index, slow, article])
        .attach(AdHoc::on_liftoff("cache backend", |rocket| {
            Box::pin(async move {
                let config = rocket.config();
                println!(
                    "demo: serving http://{}:{}/ with cache backend: {}",
                    config.address,
                    config.port,
                    rocket_route_cache::config::global().describe()
                );
            })
        }))
}
