//! Negative caching through Rocket's catchers, over the wire: a real Rocket server on 127.0.0.1,
//! with the embedded store and with a real memcached, spoken to in raw HTTP/1.1. A handler whose
//! responder fails with a listed status (`None`, `Err(Status)`) is stored; a hit skips the
//! handler and the application's own catcher renders the page again; `negative_ttl` serves
//! such entries for less time than `ttl`; invalidation drops them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cached_route_suite::{http1, loopback_config, MemcachedServer, RawReply, RunningApp};
use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::http::Status;
use rocket::response::status;
use rocket::tokio::time::sleep;
use rocket::{catch, catchers, get, post, routes, Build, Request, Rocket, State};
use rocket_route_cache::{cached_route, Cache, CacheFairing, Config};

/// Handler runs by route and page, shared by the app and the test.
#[derive(Clone, Debug, Default)]
struct Runs(Arc<Mutex<HashMap<String, usize>>>);

impl Runs {
    fn bump(&self, route: &str, page: &str) -> usize {
        let mut runs = self.0.lock().unwrap();
        let count = runs.entry(format!("{route}/{page}")).or_default();
        *count += 1;
        *count
    }

    fn of(&self, route: &str, page: &str) -> usize {
        let runs = self.0.lock().unwrap();
        runs.get(&format!("{route}/{page}")).copied().unwrap_or(0)
    }
}

#[catch(404)]
fn not_found(request: &Request<'_>) -> String {
    format!("custom 404: nothing at {}", request.uri().path())
}

#[catch(410)]
fn gone(request: &Request<'_>) -> String {
    format!("custom 410: {} is gone", request.uri().path())
}

/// The user guide's example (`rocket_route_cache::cached_route`): "404s cached too".
#[cached_route(ttl = 60, vary = ["Accept-Language"], statuses = [200, 404], honor_no_cache)]
#[get("/docs/<page>")]
fn docs(page: &str, runs: &State<Runs>) -> Option<String> {
    runs.bump("docs", page);
    (page == "intro").then(|| String::from("intro"))
}

#[cached_route(ttl = 60, statuses = [200, 410])]
#[get("/old/<slug>")]
fn old(slug: &str, runs: &State<Runs>) -> Result<String, Status> {
    runs.bump("old", slug);
    match slug {
        "kept" => Ok(String::from("still here")),
        "forbidden" => Err(Status::Forbidden),
        "unavailable" => Err(Status::ServiceUnavailable),
        _ => Err(Status::Gone),
    }
}

/// A 404 from the catcher, a 404 the handler made, and a page: the 404s are negative entries.
#[cached_route(ttl = 60, statuses = [200, 404], negative_ttl = 2)]
#[get("/short/<page>")]
fn short(page: &str, runs: &State<Runs>) -> Option<status::Custom<String>> {
    let run = runs.bump("short", page);
    match page {
        "none" => None,
        "explicit" => Some(status::Custom(
            Status::NotFound,
            format!("explicit 404 #{run}"),
        )),
        _ => Some(status::Custom(Status::Ok, format!("page #{run}"))),
    }
}

/// 100 ms of work before finding nothing.
#[cached_route(ttl = 60, statuses = [200, 404])]
#[get("/slow/<page>")]
async fn slow(page: &str, runs: &State<Runs>) -> Option<String> {
    runs.bump("slow", page);
    sleep(Duration::from_millis(100)).await;
    None
}

/// What an app does after deleting or creating a page: drop what showed it.
#[post("/drop/<page>")]
async fn drop_docs(page: &str, cache: &State<Cache>) -> &'static str {
    rocket_route_cache::Invalidation::new()
        .route(docs::entries(page))
        .run_in(cache)
        .await
        .expect("invalidated");
    "dropped"
}

#[derive(Debug, Clone, Copy)]
enum Store {
    Embedded,
    Memcached,
}

const STORES: [Store; 2] = [Store::Embedded, Store::Memcached];

fn app(rocket: Rocket<Build>, runs: &Runs) -> Rocket<Build> {
    rocket
        .manage(runs.clone())
        .mount("/", routes![docs, old, short, slow, drop_docs])
        .register("/", catchers![not_found, gone])
}

/// The app with `CacheFairing`, configured by its `cache` table, on `store`.
async fn launch(store: Store, runs: &Runs) -> RunningApp {
    let memcached = MemcachedServer::start();
    let servers = match store {
        Store::Embedded => String::new(),
        Store::Memcached => format!("\"{}\"", memcached.address()),
    };
    let table = format!("[cache]\nservers = [{servers}]\n");
    let figment = Figment::from(loopback_config()).merge(Toml::string(&table));
    let rocket = rocket::custom(figment).attach(CacheFairing);
    cached_route_suite::launch(app(rocket, runs), memcached).await
}

/// One GET of `target` with the extra header lines `headers`.
async fn get(port: u16, target: &str, headers: &[&str]) -> RawReply {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: negative.example");
    for header in headers {
        head.push_str("\r\n");
        head.push_str(header);
    }
    http1(port, &head).await
}

/// (status, X-Cache, body) of one GET.
async fn seen(port: u16, target: &str) -> (u16, String, String) {
    let reply = get(port, target, &[]).await;
    (reply.status, reply.x_cache().to_owned(), reply.body)
}

#[rocket::async_test]
async fn a_none_is_stored_and_the_apps_catcher_renders_every_hit() {
    for store in STORES {
        let runs = Runs::default();
        let server = launch(store, &runs).await;
        let page = "custom 404: nothing at /docs/missing";
        for expected in ["MISS", "HIT", "HIT"] {
            let reply = get(server.port, "/docs/missing", &[]).await;
            assert_eq!(
                (reply.status, reply.x_cache(), reply.body.as_str()),
                (404, expected, page),
                "{store:?}"
            );
            // The route's `Vary` on the catcher's page: its status depended on the header.
            assert_eq!(reply.one("Vary"), Some("Accept-Language"), "{store:?}");
            // Cache-Status (RFC 9211) on the catcher's page, as on any response of the route.
            let status = reply.one("Cache-Status").unwrap_or_default();
            if expected == "HIT" {
                let age: u64 = reply.one("Age").expect("Age on a hit").parse().unwrap();
                assert!(age <= 1, "{store:?}: Age {age}");
                assert!(
                    status.starts_with("rocket-route-cache; hit; ttl="),
                    "{status}"
                );
            } else {
                assert!(
                    status.starts_with("rocket-route-cache; fwd=uri-miss; fwd-status=404; stored"),
                    "{store:?}: {status}"
                );
            }
        }
        assert_eq!(runs.of("docs", "missing"), 1, "{store:?}: ran on a hit");
        // Another language is another entry; a client's no-cache refreshes it.
        let french = ["Accept-Language: fr"];
        let states = [&french[..], &french[..], &["Cache-Control: no-cache"][..]];
        let mut seen_states = Vec::new();
        for headers in states {
            let reply = get(server.port, "/docs/missing", headers).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (404, page),
                "{store:?}"
            );
            seen_states.push(reply.x_cache().to_owned());
        }
        assert_eq!(seen_states, ["MISS", "HIT", "MISS"], "{store:?}");
        assert_eq!(runs.of("docs", "missing"), 3, "{store:?}");
        // A found page is stored as before.
        assert_eq!(seen(server.port, "/docs/intro").await.1, "MISS");
        assert_eq!(
            seen(server.port, "/docs/intro").await,
            (200, "HIT".into(), "intro".into())
        );
    }
}

/// Without `CacheFairing`, nothing can add headers to the catcher's page; the entry is stored
/// and served all the same.
#[rocket::async_test]
async fn without_the_fairing_the_catcher_renders_every_hit_without_x_cache() {
    let runs = Runs::default();
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let rocket = rocket::custom(loopback_config()).manage(cache);
    let server = cached_route_suite::launch(app(rocket, &runs), memcached).await;
    for _ in 0..3 {
        let reply = get(server.port, "/docs/missing", &[]).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (404, "custom 404: nothing at /docs/missing")
        );
        assert_eq!((reply.one("X-Cache"), reply.one("Vary")), (None, None));
    }
    assert_eq!(runs.of("docs", "missing"), 1, "ran on a hit");
}

#[rocket::async_test]
async fn an_err_status_that_is_listed_is_stored_for_its_catcher() {
    for store in STORES {
        let runs = Runs::default();
        let server = launch(store, &runs).await;
        let page = "custom 410: /old/removed is gone";
        for expected in ["MISS", "HIT", "HIT"] {
            assert_eq!(
                seen(server.port, "/old/removed").await,
                (410, expected.into(), page.into()),
                "{store:?}"
            );
        }
        assert_eq!(runs.of("old", "removed"), 1, "{store:?}: ran on a hit");
        assert_eq!(seen(server.port, "/old/kept").await.1, "MISS");
        assert_eq!(
            seen(server.port, "/old/kept").await,
            (200, "HIT".into(), "still here".into())
        );
    }
}

/// A responder's failure with a status the route does not list (a 4xx, a 5xx) is handed to the
/// catcher each time, never stored, next to a listed one that is.
#[rocket::async_test]
async fn statuses_not_listed_are_never_stored() {
    for store in STORES {
        let runs = Runs::default();
        let server = launch(store, &runs).await;
        for (slug, status) in [("forbidden", 403), ("unavailable", 503)] {
            let target = format!("/old/{slug}");
            for _ in 0..2 {
                let (seen_status, x_cache, body) = seen(server.port, &target).await;
                assert_eq!(
                    (seen_status, x_cache.as_str()),
                    (status, "MISS"),
                    "{store:?}"
                );
                // Rocket's default catcher: no catcher of the app's handles these.
                assert!(body.contains(&status.to_string()), "{store:?}: {body}");
            }
            assert_eq!(runs.of("old", slug), 2, "{store:?}: {slug} was stored");
        }
        seen(server.port, "/old/removed").await;
        assert_eq!(seen(server.port, "/old/removed").await.1, "HIT");
        assert_eq!(runs.of("old", "removed"), 1, "{store:?}");
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Waits until the wall clock shows `second` (unix): what is measured here is time passing.
async fn until_second(second: u64) {
    let at = UNIX_EPOCH + Duration::from_secs(second) + Duration::from_millis(20);
    if let Ok(left) = at.duration_since(SystemTime::now()) {
        sleep(left).await;
    }
}

/// `negative_ttl = 2` next to `ttl = 60`: a 404 the catcher renders and one the handler made
/// are served 2 seconds, the page a minute.
#[rocket::async_test]
async fn negative_entries_expire_after_negative_ttl_while_pages_stay() {
    for store in STORES {
        let runs = Runs::default();
        let server = launch(store, &runs).await;
        // From the start of a second, so that the hits below fall within the 2 seconds.
        let start = unix_now() + 1;
        until_second(start).await;
        let targets = [
            ("none", 404, "custom 404: nothing at /short/none"),
            ("explicit", 404, "explicit 404 #1"),
            ("page", 200, "page #1"),
        ];
        for expected in ["MISS", "HIT"] {
            for (page, status, body) in targets {
                assert_eq!(
                    seen(server.port, &format!("/short/{page}")).await,
                    (status, expected.into(), body.into()),
                    "{store:?} {page}"
                );
            }
        }
        assert!(
            unix_now() < start + 2,
            "{store:?}: too slow to measure a 2 s TTL"
        );
        // Stored during `start` (or the second after, on a slow machine): stale by `start + 3`.
        until_second(start + 3).await;
        let late: Vec<(u16, String)> = {
            let mut late = Vec::new();
            for (page, _, _) in targets {
                let (status, x_cache, _) = seen(server.port, &format!("/short/{page}")).await;
                late.push((status, x_cache));
            }
            late
        };
        assert_eq!(
            late,
            [
                (404, "MISS".into()),
                (404, "MISS".into()),
                (200, "HIT".into())
            ],
            "{store:?}"
        );
        let ran: Vec<usize> = ["none", "explicit", "page"]
            .map(|page| runs.of("short", page))
            .into();
        assert_eq!(ran, [2, 2, 1], "{store:?}");
    }
}

#[rocket::async_test]
async fn invalidation_drops_a_negative_entry() {
    for store in STORES {
        let runs = Runs::default();
        let server = launch(store, &runs).await;
        let states = |replies: &[RawReply]| -> Vec<String> {
            replies.iter().map(|r| r.x_cache().to_owned()).collect()
        };
        let before = [
            get(server.port, "/docs/draft", &[]).await,
            get(server.port, "/docs/draft", &[]).await,
        ];
        assert_eq!(states(&before), ["MISS", "HIT"], "{store:?}");
        let dropped = http1(
            server.port,
            "POST /drop/draft HTTP/1.1\r\nHost: negative.example\r\nContent-Length: 0",
        )
        .await;
        assert_eq!((dropped.status, dropped.body.as_str()), (200, "dropped"));
        let after = [
            get(server.port, "/docs/draft", &[]).await,
            get(server.port, "/docs/draft", &[]).await,
        ];
        assert_eq!(states(&after), ["MISS", "HIT"], "{store:?}");
        assert!(after.iter().all(|reply| reply.status == 404), "{store:?}");
        assert_eq!(runs.of("docs", "draft"), 2, "{store:?}");
    }
}

/// Concurrent misses of one key wait for the request that runs the handler, and take the
/// failure it stored: every client gets the catcher's page, the handler ran once.
#[rocket::async_test]
async fn concurrent_misses_of_a_404_run_the_handler_once() {
    for store in STORES {
        let runs = Runs::default();
        let server = launch(store, &runs).await;
        let port = server.port;
        let requests: Vec<_> = (0..6)
            .map(|_| rocket::tokio::spawn(async move { seen(port, "/slow/nothing").await }))
            .collect();
        for request in requests {
            let (status, _, body) = request.await.unwrap();
            assert_eq!(
                (status, body.as_str()),
                (404, "custom 404: nothing at /slow/nothing"),
                "{store:?}"
            );
        }
        assert_eq!(runs.of("slow", "nothing"), 1, "{store:?}");
    }
}
