//! Revalidation through the handler, over the wire (a real server on 127.0.0.1, HTTP/1.1), on
//! Memcached and the embedded store: a handler that takes `Option<Validators<'_>>` learns the
//! stored entry's validators when its run revalidates one, and answers 304 (`Err(NotModified)`
//! or a 304 response) when the page has not changed: the entry is refreshed (the 304's fields
//! merged in, freshness started again) and served, its body never rendered again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cached_route_suite::{
    http1, launch, launch_alone, loopback_config, next_second, MemcachedServer, RawReply,
};
use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::{get, routes, Request, State};
use rocket_route_cache::{cached_route, Cache, Config, Validators};

#[derive(Default)]
struct Site {
    /// The page's current version.
    version: AtomicUsize,
    /// Handler runs, and renders (runs that built the body).
    runs: AtomicUsize,
    renders: AtomicUsize,
    /// The `ETag` each run was told, in order (`None`: not revalidating).
    told: Mutex<Vec<Option<String>>>,
}

/// The page, fresh for one second, with its version as a strong `ETag`.
struct Page(usize);

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = format!("version {}", self.0).respond_to(request)?;
        response.set_raw_header("ETag", format!("\"v{}\"", self.0));
        response.set_raw_header("Cache-Control", "max-age=1");
        Ok(response)
    }
}

/// Made of its own fields alone.
impl rocket_route_cache::SharedResponder for Page {}

/// Answers 304 while the stored version is the current one; the expired entry is there to be
/// revalidated within its `stale_if_error` window.
#[cached_route(ttl = 60, stale_if_error = 600)]
#[get("/page")]
fn page(stored: Option<Validators<'_>>, site: &State<Arc<Site>>) -> Result<Page, Status> {
    answer(stored, site)
}

/// The same, the expired entry kept only to be revalidated (`keep`): without it, the entry is
/// gone once expired, and each run renders.
#[cached_route(ttl = 60, keep = 600)]
#[get("/kept")]
fn kept(stored: Option<Validators<'_>>, site: &State<Arc<Site>>) -> Result<Page, Status> {
    answer(stored, site)
}

fn answer(stored: Option<Validators<'_>>, site: &Site) -> Result<Page, Status> {
    site.runs.fetch_add(1, Ordering::SeqCst);
    let version = site.version.load(Ordering::SeqCst);
    let etag = stored.as_ref().and_then(|s| s.etag()).map(str::to_owned);
    site.told.lock().unwrap().push(etag.clone());
    if etag.as_deref() == Some(format!("\"v{version}\"").as_str()) {
        return Err(Status::NotModified);
    }
    site.renders.fetch_add(1, Ordering::SeqCst);
    Ok(Page(version))
}

fn app(cache: Cache, site: &Arc<Site>) -> rocket::Rocket<rocket::Build> {
    rocket::custom(loopback_config())
        .manage(cache)
        .manage(Arc::clone(site))
        .mount("/", routes![page, kept])
}

async fn get(port: u16, path: &str, extra: &str) -> RawReply {
    http1(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost{extra}"),
    )
    .await
}

/// Waits until an entry fresh for one second, stored now, has expired.
async fn expired() {
    next_second().await;
    next_second().await;
}

async fn the_handler_revalidates(port: u16, site: &Site, path: &str) {
    let get = |extra: &'static str| get(port, path, extra);
    site.version.store(1, Ordering::SeqCst);
    let first = get("").await;
    assert_eq!(
        (first.x_cache(), first.body.as_str()),
        ("MISS", "version 1")
    );
    expired().await;
    // Unchanged: the handler says so, and the stored body answers.
    let kept = get("").await;
    assert_eq!((kept.status, kept.body.as_str()), (200, "version 1"));
    assert_eq!(kept.one("ETag"), Some("\"v1\""));
    let cache_status = kept.one("Cache-Status").unwrap_or("");
    assert!(
        cache_status.contains("fwd=stale; fwd-status=304; stored"),
        "{cache_status}"
    );
    assert_eq!(
        (
            site.runs.load(Ordering::SeqCst),
            site.renders.load(Ordering::SeqCst)
        ),
        (2, 1),
        "one render"
    );
    // Fresh again, from the refresh; a client holding the version gets a 304.
    assert_eq!(get("").await.x_cache(), "HIT");
    let unchanged = get("\r\nIf-None-Match: \"v1\"").await;
    assert_eq!(unchanged.status, 304);
    // Changed: the handler renders, and the new version replaces the entry.
    site.version.store(2, Ordering::SeqCst);
    expired().await;
    let changed = get("").await;
    assert_eq!(changed.body, "version 2");
    assert_eq!(get("").await.body, "version 2");
    let told = site.told.lock().unwrap().clone();
    let v1 = Some("\"v1\"".to_owned());
    assert_eq!(told, [None, v1.clone(), v1], "what each run was told");
}

/// Both routes: revalidated within `stale_if_error`, and kept only to be revalidated (`keep`).
async fn both_routes_revalidate(port: u16, site: &Site) {
    for path in ["/page", "/kept"] {
        site.runs.store(0, Ordering::SeqCst);
        site.renders.store(0, Ordering::SeqCst);
        site.told.lock().unwrap().clear();
        the_handler_revalidates(port, site, path).await;
    }
}

#[rocket::async_test]
async fn memcached_the_handler_answers_304_and_the_entry_is_refreshed() {
    let memcached = MemcachedServer::start();
    let site = Arc::new(Site::default());
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let running = launch(app(cache, &site), memcached).await;
    both_routes_revalidate(running.port, &site).await;
}

#[rocket::async_test]
async fn embedded_the_handler_answers_304_and_the_entry_is_refreshed() {
    let site = Arc::new(Site::default());
    let running = launch_alone(app(Cache::new(Config::embedded()).unwrap(), &site)).await;
    both_routes_revalidate(running.port, &site).await;
}
