//! What Rocket apps respond with, on cached routes, over the wire: a `Template` page and files
//! (`NamedFile`), against a real memcached.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use cached_route_suite::{http1, launch, loopback_config, MemcachedServer, RawReply, RunningApp};
use rocket::fs::NamedFile;
use rocket::{get, routes};
use rocket_dyn_templates::{context, Template};
use rocket_route_cache::{cached_route, Cache, Config};

static PAGE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached_route(ttl = 60)]
#[get("/page")]
fn page() -> Template {
    let run = PAGE_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    Template::render("page", context! { title: "Cached <page>", run })
}

/// The directory of the templates and files, written once per process (the tests run at the
/// same time: a file rewritten while another test serves it could be read half written).
fn files() -> &'static Path {
    static FILES: OnceLock<PathBuf> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("apps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("page.html.tera"),
            "<h1>{{ title }}</h1><p>run {{ run }}</p>\n",
        )
        .unwrap();
        std::fs::write(dir.join("small.css"), "body { color: teal }\n").unwrap();
        std::fs::write(dir.join("big.txt"), big_text()).unwrap();
        dir
    })
}

/// Twice the largest stored entry.
fn big_text() -> String {
    "0123456789abcdef".repeat(2 * MAX_ITEM / 16)
}

/// The largest entry the app's cache stores; `big.txt` is over it.
const MAX_ITEM: usize = 4096;

#[cached_route(ttl = 60)]
#[get("/small.css")]
async fn small() -> Option<NamedFile> {
    NamedFile::open(files().join("small.css")).await.ok()
}

#[cached_route(ttl = 60)]
#[get("/big.txt")]
async fn big() -> Option<NamedFile> {
    NamedFile::open(files().join("big.txt")).await.ok()
}

async fn app() -> RunningApp {
    let dir = files();
    let memcached = MemcachedServer::start();
    let mut config = Config::memcached([memcached.address()]);
    config.max_item_size = MAX_ITEM;
    let figment = rocket::figment::Figment::from(loopback_config())
        .merge(("template_dir", dir.display().to_string()));
    let app = rocket::custom(figment)
        .attach(Template::fairing())
        .manage(Cache::new(config).unwrap())
        .mount("/", routes![page, small, big]);
    launch(app, memcached).await
}

async fn get(server: &RunningApp, path: &str) -> RawReply {
    http1(
        server.port,
        &format!("GET {path} HTTP/1.1\r\nHost: apps.example"),
    )
    .await
}

#[rocket::async_test]
async fn a_template_page_is_stored_and_replayed_with_its_content_type() {
    let server = app().await;
    let before = PAGE_RUNS.load(Ordering::SeqCst);
    let first = get(&server, "/page").await;
    let second = get(&server, "/page").await;
    assert_eq!((first.status, first.x_cache()), (200, "MISS"));
    assert_eq!((second.status, second.x_cache()), (200, "HIT"));
    assert_eq!(
        PAGE_RUNS.load(Ordering::SeqCst) - before,
        1,
        "rendered once"
    );
    assert_eq!(first.body, "<h1>Cached &lt;page&gt;</h1><p>run 1</p>\n");
    assert_eq!(second.body, first.body, "the same bytes");
    assert_eq!(first.one("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(second.one("Content-Type"), first.one("Content-Type"));
    assert_eq!(second.one("Content-Length"), first.one("Content-Length"));
}

#[rocket::async_test]
async fn a_file_is_stored_with_its_type_and_length_when_it_fits() {
    let server = app().await;
    let first = get(&server, "/small.css").await;
    let second = get(&server, "/small.css").await;
    assert_eq!((first.status, first.x_cache()), (200, "MISS"));
    assert_eq!((second.status, second.x_cache()), (200, "HIT"));
    assert_eq!(second.body, "body { color: teal }\n");
    assert_eq!(second.one("Content-Type"), Some("text/css; charset=utf-8"));
    assert_eq!(second.one("Content-Length"), Some("21"));
    assert_eq!(
        first.one("Content-Length"),
        Some("21"),
        "sized, not chunked"
    );
}

#[rocket::async_test]
async fn a_file_over_the_item_size_is_served_whole_and_not_stored() {
    let server = app().await;
    let expected = big_text();
    for _ in 0..2 {
        let reply = get(&server, "/big.txt").await;
        assert_eq!((reply.status, reply.x_cache()), (200, "MISS"));
        assert_eq!(reply.body, expected, "the whole file");
        assert_eq!(
            reply.one("Content-Length"),
            Some(expected.len().to_string().as_str())
        );
        assert_eq!(reply.one("Transfer-Encoding"), None);
    }
    let stats = rocket_route_cache::metrics::stats();
    let (_, route) = stats
        .routes
        .iter()
        .find(|(label, _)| label == "GET /big.txt")
        .expect("counted");
    assert_eq!(
        (
            route.stores,
            route.refused(rocket_route_cache::metrics::Refusal::TooLarge)
        ),
        (0, 2)
    );
}
