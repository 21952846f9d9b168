//! Browsers and CDNs, over the wire: a real Rocket server on 127.0.0.1, with the embedded store
//! and with a real memcached, spoken to in raw HTTP/1.1. The handler stands for an app that
//! tells browsers one thing (`Cache-Control`) and the caches in front of it another
//! (`CDN-Cache-Control`, `Rocket-Route-Cache-Control`, RFC 9213), with the values the request's
//! query asks for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cached_route_suite::{http1, loopback_config, MemcachedServer, RawReply as Reply, RunningApp};
use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::tokio::sync::Notify;
use rocket::tokio::time::timeout;
use rocket::{get, routes, Request, Response, State};
use rocket_route_cache::{cached_route, Cache, Config};

/// What the handlers share with the test: how many times they ran, whether they fail, and a
/// gate that holds a run until the test opens it.
#[derive(Default)]
struct App {
    runs: AtomicUsize,
    failing: AtomicBool,
    hold: AtomicBool,
    started: Notify,
    release: Notify,
}

/// A 200 with the given header lines and a body naming the run that made it.
struct Upstream {
    headers: Vec<(&'static str, String)>,
    run: usize,
}

impl<'r> Responder<'r, 'static> for Upstream {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        for (name, value) in self.headers {
            response.raw_header_adjoin(name, value);
        }
        let body = format!("run #{}", self.run);
        response.sized_body(body.len(), std::io::Cursor::new(body));
        Ok(response.finalize())
    }
}

/// One run of a handler: counted, held at the gate when the test asks, failing when it asks.
async fn run(app: &App, fields: [(&'static str, Option<&str>); 3]) -> Result<Upstream, Status> {
    let run = app.runs.fetch_add(1, Ordering::SeqCst) + 1;
    if app.hold.load(Ordering::SeqCst) {
        app.started.notify_one();
        app.release.notified().await;
    }
    if app.failing.load(Ordering::SeqCst) {
        return Err(Status::ServiceUnavailable);
    }
    let headers = fields
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?.to_owned())))
        .collect();
    Ok(Upstream { headers, run })
}

/// `tag` only tells entries apart; the other parameters are the response's fields.
#[cached_route(ttl = 60)]
#[get("/page?<tag>&<cc>&<cdn>&<own>")]
async fn page(
    tag: &str,
    cc: Option<&str>,
    cdn: Option<&str>,
    own: Option<&str>,
    app: &State<Arc<App>>,
) -> Result<Upstream, Status> {
    let _ = tag;
    let fields = [
        ("Cache-Control", cc),
        ("CDN-Cache-Control", cdn),
        ("Rocket-Route-Cache-Control", own),
    ];
    run(app, fields).await
}

/// Tells browsers and shared caches how long the entry stays fresh here.
#[cached_route(ttl = 60, downstream = "max-age")]
#[get("/everyone?<tag>&<cc>")]
async fn everyone(tag: &str, cc: Option<&str>, app: &State<Arc<App>>) -> Result<Upstream, Status> {
    let _ = tag;
    run(
        app,
        [("Cache-Control", cc), ("X-None", None), ("X-None", None)],
    )
    .await
}

/// Tells shared caches only.
#[cached_route(ttl = 60, downstream = "s-maxage")]
#[get("/shared?<tag>")]
async fn shared(tag: &str, app: &State<Arc<App>>) -> Result<Upstream, Status> {
    let _ = tag;
    run(app, [("X-None", None), ("X-None", None), ("X-None", None)]).await
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Embedded,
    Memcached,
}

/// The app on 127.0.0.1 with `backend` (a memcached is started either way; the embedded
/// store does not use it), and its handlers' shared state.
async fn launch(backend: Backend) -> (RunningApp, Arc<App>) {
    let memcached = MemcachedServer::start();
    let config = match backend {
        Backend::Embedded => Config::embedded(),
        Backend::Memcached => Config::memcached([memcached.address()]),
    };
    let shared = Arc::new(App::default());
    let app = rocket::custom(loopback_config())
        .manage(Cache::new(config).unwrap())
        .manage(Arc::clone(&shared))
        .mount("/", routes![page, everyone, shared]);
    (cached_route_suite::launch(app, memcached).await, shared)
}

/// `value` as a query value: the bytes a field value holds that a query would read otherwise.
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'=' | b' ' | b',' | b';' | b'"' | b'&' | b'%' | b'+' => format!("%{b:02X}"),
            _ => char::from(b).to_string(),
        })
        .collect()
}

/// `/page` with these fields (name in the query, value) for the entry `tag`.
fn page_target(tag: &str, fields: &[(&str, &str)]) -> String {
    let mut target = format!("/page?tag={tag}");
    for (name, value) in fields {
        target.push_str(&format!("&{name}={}", encoded(value)));
    }
    target
}

async fn get(port: u16, target: &str) -> Reply {
    http1(port, &format!("GET {target} HTTP/1.1\r\nHost: cdn.example")).await
}

/// Seconds enough for an entry of `max-age=1` to expire, whatever the clock's second was.
async fn past_one_second() {
    cached_route_suite::next_second().await;
    cached_route_suite::next_second().await;
}

const BACKENDS: [Backend; 2] = [Backend::Embedded, Backend::Memcached];

#[rocket::async_test]
async fn a_browser_no_cache_with_a_cdn_max_age_is_stored() {
    for backend in BACKENDS {
        let (server, _) = launch(backend).await;
        let target = page_target("a", &[("cc", "no-cache"), ("cdn", "max-age=30")]);
        let miss = get(server.port, &target).await;
        assert_eq!((miss.status, miss.x_cache()), (200, "MISS"), "{backend:?}");
        let hit = get(server.port, &target).await;
        assert_eq!(
            (hit.x_cache(), hit.body.as_str()),
            ("HIT", "run #1"),
            "{backend:?}"
        );
        // Both fields go on unchanged: the browser's, and the CDN's for a CDN in front.
        for reply in [&miss, &hit] {
            assert_eq!(reply.one("Cache-Control"), Some("no-cache"), "{backend:?}");
            assert_eq!(reply.one("CDN-Cache-Control"), Some("max-age=30"));
        }
    }
}

#[rocket::async_test]
async fn the_caches_own_field_beats_cdn_cache_control_and_is_not_sent_on() {
    for backend in BACKENDS {
        let (server, _) = launch(backend).await;
        // The CDN may keep it an hour; this cache is told not to store it.
        let refused = page_target("b", &[("cdn", "max-age=3600"), ("own", "no-store")]);
        for _ in 0..2 {
            let reply = get(server.port, &refused).await;
            assert_eq!(reply.x_cache(), "MISS", "{backend:?}");
            assert_eq!(reply.one("Rocket-Route-Cache-Control"), None);
            assert_eq!(reply.one("CDN-Cache-Control"), Some("max-age=3600"));
        }
        // This cache is told one second, the CDN an hour.
        let short = page_target("c", &[("cdn", "max-age=3600"), ("own", "max-age=1")]);
        let miss = get(server.port, &short).await;
        let hit = get(server.port, &short).await;
        assert_eq!(
            (miss.x_cache(), hit.x_cache()),
            ("MISS", "HIT"),
            "{backend:?}"
        );
        assert_eq!(hit.one("Rocket-Route-Cache-Control"), None, "not stored");
        past_one_second().await;
        let later = get(server.port, &short).await;
        assert_eq!(
            (later.x_cache(), later.body.as_str()),
            ("MISS", "run #4"),
            "{backend:?}"
        );
    }
}

#[rocket::async_test]
async fn a_browser_max_age_does_not_shorten_a_targeted_one() {
    for backend in BACKENDS {
        let (server, _) = launch(backend).await;
        let target = page_target("d", &[("cc", "max-age=1"), ("cdn", "max-age=3600")]);
        assert_eq!(get(server.port, &target).await.x_cache(), "MISS");
        past_one_second().await;
        let later = get(server.port, &target).await;
        assert_eq!(
            (later.x_cache(), later.body.as_str()),
            ("HIT", "run #1"),
            "{backend:?}: the browser's max-age=1 shortened it"
        );
        assert_eq!(later.one("Cache-Control"), Some("max-age=1"));
    }
}

#[rocket::async_test]
async fn an_invalid_targeted_field_falls_back_to_the_next() {
    for backend in BACKENDS {
        let (server, _) = launch(backend).await;
        // A trailing comma is a Structured Fields error: the CDN's `no-store` decides.
        let target = page_target("e", &[("own", "max-age=3600,"), ("cdn", "no-store")]);
        for _ in 0..2 {
            assert_eq!(
                get(server.port, &target).await.x_cache(),
                "MISS",
                "{backend:?}"
            );
        }
        // Upper case is not a key: `Cache-Control` decides.
        let target = page_target("f", &[("cdn", "Max-Age=3600"), ("cc", "max-age=1")]);
        assert_eq!(get(server.port, &target).await.x_cache(), "MISS");
        assert_eq!(get(server.port, &target).await.x_cache(), "HIT");
        past_one_second().await;
        assert_eq!(
            get(server.port, &target).await.x_cache(),
            "MISS",
            "{backend:?}"
        );
    }
}

/// RFC 9213 2.1: a targeted field that parses, but holds a member of the wrong type, is ignored
/// as a whole (the cache-tests suite's `cdn-cc-invalid-sh-type-wrong`): `max-age="10000"` (a
/// String) does not store a response whose `Cache-Control` says `no-store`.
#[rocket::async_test]
async fn a_targeted_member_of_the_wrong_type_voids_the_field() {
    for backend in BACKENDS {
        let (server, _) = launch(backend).await;
        for (tag, cdn) in [("w1", "max-age=\"10000\""), ("w2", "max-age=1.5, public")] {
            let target = page_target(tag, &[("cdn", cdn), ("cc", "no-store")]);
            for _ in 0..2 {
                let reply = get(server.port, &target).await;
                assert_eq!(reply.x_cache(), "MISS", "{backend:?} {cdn}");
            }
        }
    }
}

#[rocket::async_test]
async fn downstream_sends_the_remaining_freshness_unless_the_handler_said_its_own() {
    for backend in BACKENDS {
        let (server, _) = launch(backend).await;
        let miss = get(server.port, "/everyone?tag=g").await;
        assert_eq!(miss.x_cache(), "MISS");
        assert_eq!(
            miss.one("Cache-Control"),
            Some("public, max-age=60"),
            "{backend:?}"
        );
        cached_route_suite::next_second().await;
        let hit = get(server.port, "/everyone?tag=g").await;
        assert_eq!(hit.x_cache(), "HIT");
        let remaining: u64 = hit
            .one("Cache-Control")
            .and_then(|value| value.strip_prefix("public, max-age="))
            .and_then(|seconds| seconds.parse().ok())
            .expect("a max-age");
        assert!((58..=59).contains(&remaining), "{backend:?}: {remaining}");
        // The handler's own word for browsers stands, on the miss and on hits.
        let own = "/everyone?tag=h&cc=max-age%3D5";
        assert_eq!(
            get(server.port, own).await.one("Cache-Control"),
            Some("max-age=5")
        );
        let hit = get(server.port, own).await;
        assert_eq!(
            (hit.x_cache(), hit.one("Cache-Control")),
            ("HIT", Some("max-age=5"))
        );
        // Shared caches only: browsers revalidate.
        let miss = get(server.port, "/shared?tag=i").await;
        assert_eq!(
            miss.one("Cache-Control"),
            Some("public, max-age=0, s-maxage=60"),
            "{backend:?}"
        );
        // Nothing is said of what was not stored.
        let refused = get(server.port, "/everyone?tag=j&cc=no-store").await;
        assert_eq!(refused.one("Cache-Control"), Some("no-store"));
    }
}

#[rocket::async_test]
async fn stale_while_revalidate_from_the_response_serves_the_expired_entry() {
    for backend in BACKENDS {
        let (server, app) = launch(backend).await;
        let target = page_target("k", &[("cdn", "max-age=1, stale-while-revalidate=30")]);
        assert_eq!(get(server.port, &target).await.x_cache(), "MISS");
        past_one_second().await;
        // One request refreshes it and is held at the gate; meanwhile another is answered.
        app.hold.store(true, Ordering::SeqCst);
        let port = server.port;
        let refresh = rocket::tokio::spawn({
            let target = target.clone();
            async move { get(port, &target).await }
        });
        timeout(Duration::from_secs(10), app.started.notified())
            .await
            .expect("the refresh ran the handler");
        let during = get(server.port, &target).await;
        assert_eq!(
            (during.x_cache(), during.body.as_str()),
            ("STALE", "run #1"),
            "{backend:?}"
        );
        app.hold.store(false, Ordering::SeqCst);
        app.release.notify_one();
        refresh.await.unwrap();
    }
}

#[rocket::async_test]
async fn stale_if_error_from_the_response_stands_in_for_a_failing_handler() {
    for backend in BACKENDS {
        let (server, app) = launch(backend).await;
        let target = page_target("l", &[("cc", "max-age=1, stale-if-error=60")]);
        assert_eq!(get(server.port, &target).await.x_cache(), "MISS");
        past_one_second().await;
        app.failing.store(true, Ordering::SeqCst);
        let failed = get(server.port, &target).await;
        assert_eq!(
            (failed.status, failed.x_cache(), failed.body.as_str()),
            (200, "STALE", "run #1"),
            "{backend:?}"
        );
        assert_eq!(
            app.runs.load(Ordering::SeqCst),
            2,
            "the handler ran, and failed"
        );
    }
}

/// RFC 9111 5.2.2.2: a response that says `must-revalidate` is, once stale, never served
/// without revalidation: no `stale-while-revalidate` window, no `stale-if-error` stand-in (the
/// handler's failure is answered). `proxy-revalidate`, and `s-maxage`, which carries it for a
/// shared cache (5.2.2.10), do the same here.
#[rocket::async_test]
async fn a_stale_response_that_must_revalidate_is_never_served() {
    for backend in BACKENDS {
        let (server, app) = launch(backend).await;
        let windows = "stale-while-revalidate=30, stale-if-error=60";
        for (tag, field, directive) in [
            ("m1", "cc", "must-revalidate"),
            ("m2", "cdn", "proxy-revalidate"),
            ("m3", "cc", "s-maxage=1"),
        ] {
            app.failing.store(false, Ordering::SeqCst);
            let value = format!("max-age=1, {windows}, {directive}");
            let target = page_target(tag, &[(field, &value)]);
            let first = get(server.port, &target).await;
            assert_eq!(first.x_cache(), "MISS", "{backend:?} {directive}");
            past_one_second().await;
            let next = get(server.port, &target).await;
            assert_eq!(next.x_cache(), "MISS", "{backend:?} {directive}: not STALE");
            assert_ne!(
                next.body, first.body,
                "{backend:?} {directive}: rendered again"
            );
            past_one_second().await;
            app.failing.store(true, Ordering::SeqCst);
            let failed = get(server.port, &target).await;
            assert_eq!(failed.status, 503, "{backend:?} {directive}: no stand-in");
        }
    }
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for Upstream {}
