//! Rocket-native configuration (`CacheFairing` reading the `cache` table), the counters, and
//! the Prometheus route, against a real memcached.

use std::io::Cursor;

use cached_route_suite::MemcachedServer;
use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::response::{self, Responder};
use rocket::{get, routes, Build, Request, Response, Rocket};
use rocket_route_cache::{cached_route, CacheFairing};

#[cached_route(ttl = 60)]
#[get("/configured")]
fn configured() -> &'static str {
    "configured"
}

#[cached_route(ttl = 60)]
#[get("/counted")]
fn counted() -> &'static str {
    "counted"
}

/// A 200 that sets a cookie: served, never stored.
struct WithCookie;

impl<'r> Responder<'r, 'static> for WithCookie {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .raw_header("Set-Cookie", "seen=1")
            .sized_body(4, Cursor::new("seen"))
            .ok()
    }
}

#[cached_route(ttl = 60, tags = ["watched"])]
#[get("/watched")]
fn watched() -> &'static str {
    "watched"
}

#[cached_route(ttl = 60)]
#[get("/refused")]
fn refused() -> WithCookie {
    WithCookie
}

/// The tests of this binary run one at a time, so that the process-wide counters move only with
/// the test reading them: their differences are exact.
static SERIAL: rocket::tokio::sync::Mutex<()> = rocket::tokio::sync::Mutex::const_new(());

fn app(toml: &str) -> Rocket<Build> {
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(Toml::string(toml));
    rocket::custom(figment)
        .attach(CacheFairing)
        .mount("/", routes![configured, counted, refused])
        .mount("/internal", rocket_route_cache::metrics::metrics_routes())
}

#[rocket::async_test]
async fn the_cache_table_configures_the_instance() {
    let _serial = SERIAL.lock().await;
    let server = MemcachedServer::start();
    let toml = format!(
        "[cache]\nservers = [\"{}\"]\nnamespace = \"from-toml\"\nop_timeout = \"50ms\"\n",
        server.address()
    );
    let client = Client::untracked(app(&toml))
        .await
        .expect("valid configuration");
    let first = client.get("/configured").dispatch().await;
    assert_eq!(first.headers().get_one("X-Cache"), Some("MISS"));
    let keys = server.entry_keys();
    assert!(
        keys.len() == 1 && keys[0].starts_with("from-toml:"),
        "{keys:?}"
    );
    let cache = client
        .rocket()
        .state::<rocket_route_cache::Cache>()
        .unwrap();
    assert_eq!(
        cache.config().op_timeout,
        std::time::Duration::from_millis(50)
    );
    // The comma-separated form of `MEMCACHED_SERVERS` works too.
    let toml = format!("[cache]\nservers = \"{0},{0}\"\n", server.address());
    assert!(Client::untracked(app(&toml)).await.is_ok());
}

#[rocket::async_test]
async fn invalid_configuration_fails_at_ignite() {
    let _serial = SERIAL.lock().await;
    for toml in [
        "[cache]\nservers = [\"no-port\"]\n",
        "[cache]\nnamespace = \"has space\"\n",
        "[cache]\nop_timeout = 0\n",
        "[cache]\nop_timeout = 100\n",
        "[cache]\nsever = [\"127.0.0.1:11211\"]\n",
        "[cache]\npool_idle = \"many\"\n",
    ] {
        match Client::untracked(app(toml)).await {
            // Reading the kind marks the error handled (Rocket aborts on an unhandled one).
            Err(error) => assert!(
                matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
                "{toml}: {error}"
            ),
            Ok(_) => panic!("accepted: {toml}"),
        }
    }
}

#[rocket::async_test]
async fn counters_follow_a_scripted_sequence_and_render_as_prometheus_text() {
    let _serial = SERIAL.lock().await;
    let before = rocket_route_cache::metrics::stats().global;
    let server = MemcachedServer::start();
    let toml = format!("[cache]\nservers = [\"{}\"]\n", server.address());
    let client = Client::untracked(app(&toml)).await.unwrap();
    // MISS (stored), HIT, HIT, BYPASS; a refusal.
    for _ in 0..3 {
        client.get("/counted").dispatch().await;
    }
    let bypass = client
        .get("/counted")
        .header(Header::new("Authorization", "Bearer x"))
        .dispatch()
        .await;
    assert_eq!(bypass.headers().get_one("X-Cache"), Some("BYPASS"));
    client.get("/refused").dispatch().await;

    let stats = rocket_route_cache::metrics::stats();
    let route = |label: &str| {
        stats
            .routes
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no counters for {label}: {:?}", stats.routes))
    };
    let counted = route("GET /counted");
    assert_eq!(
        (
            counted.misses,
            counted.hits,
            counted.bypasses,
            counted.stale
        ),
        (1, 2, 1, 0)
    );
    assert_eq!(
        (counted.stores, counted.lookups, counted.backend_errors),
        (1, 3, 0)
    );
    assert!(counted.bytes_stored > "counted".len() as u64);
    assert_eq!(
        counted.lookup_buckets.iter().map(|(_, n)| n).sum::<u64>(),
        3
    );
    let refused = route("GET /refused");
    assert_eq!(
        (
            refused.misses,
            refused.stores,
            refused.refused(rocket_route_cache::metrics::Refusal::SetCookie)
        ),
        (1, 0, 1)
    );
    // The process-wide counters moved with this test's requests only (the tests run one at a
    // time): every route's events, summed.
    let global = &stats.global;
    assert_eq!(
        (
            global.hits - before.hits,
            global.misses - before.misses,
            global.bypasses - before.bypasses,
            global.stores - before.stores
        ),
        (2, 2, 1, 1)
    );

    let metrics = client.get("/internal/metrics").dispatch().await;
    assert_eq!(metrics.status(), Status::Ok);
    assert!(metrics.content_type().unwrap().is_plain());
    let text = metrics.into_string().await.unwrap();
    for line in [
        "cached_route_requests_total{route=\"GET /counted\",result=\"hit\"} 2",
        "cached_route_requests_total{route=\"GET /counted\",result=\"bypass\"} 1",
        "cached_route_stores_total{route=\"GET /counted\"} 1",
        "cached_route_refusals_total{route=\"GET /refused\",reason=\"set_cookie\"} 1",
        "cached_route_lookup_seconds_count{route=\"GET /counted\"} 3",
        "# TYPE cached_route_lookup_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains(&format!(
        "cached_route_server_up{{server=\"{}\"}} 1",
        server.address()
    )));
}

/// Invalidation calls, those a server did not confirm, and lookups that found an invalidated
/// entry are counted exactly (the tests of this binary run one at a time, and `/watched` is
/// this test's own route; the process-wide counters are read as differences).
#[rocket::async_test]
async fn invalidations_are_counted_exactly() {
    let _serial = SERIAL.lock().await;
    let server = MemcachedServer::start();
    let mut config = rocket_route_cache::Config::memcached([server.address()]);
    config.namespace = "watched".into();
    let cache = rocket_route_cache::Cache::new(config).unwrap();
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(cache.clone())
    .mount("/", routes![watched]);
    let client = Client::untracked(rocket).await.unwrap();
    let before = rocket_route_cache::metrics::stats().global;
    let x_cache = |response: &rocket::local::asynchronous::LocalResponse<'_>| {
        response.headers().get_one("X-Cache").map(str::to_owned)
    };
    assert_eq!(
        x_cache(&client.get("/watched").dispatch().await).as_deref(),
        Some("MISS")
    );
    assert_eq!(
        x_cache(&client.get("/watched").dispatch().await).as_deref(),
        Some("HIT")
    );
    cache.invalidate_tag("watched").await.expect("confirmed");
    cache.invalidate("/elsewhere").await.expect("confirmed");
    assert_eq!(
        x_cache(&client.get("/watched").dispatch().await).as_deref(),
        Some("MISS")
    );

    // One invalidation no server confirms: a cache whose only server is gone.
    let mut gone = MemcachedServer::start();
    let unreachable =
        rocket_route_cache::Cache::new(rocket_route_cache::Config::memcached([gone.address()]))
            .unwrap();
    gone.stop();
    assert!(unreachable.invalidate_tag("watched").await.is_err());

    let stats = rocket_route_cache::metrics::stats();
    let after = &stats.global;
    assert_eq!(after.invalidations - before.invalidations, 3, "calls");
    assert_eq!(
        after.invalidations_unconfirmed - before.invalidations_unconfirmed,
        1,
        "unconfirmed"
    );
    let route = &stats
        .routes
        .iter()
        .find(|(name, _)| name == "GET /watched")
        .expect("the route is listed")
        .1;
    assert_eq!((route.invalidated, route.misses, route.hits), (1, 2, 1));
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for WithCookie {}

/// Served only by `the_report_serves_behind_the_apps_own_guard`: a route keeps counters for
/// four cache instances of the process, and the other tests' instances must not take them.
#[cached_route(ttl = 60)]
#[get("/reported")]
fn reported() -> &'static str {
    "reported"
}

/// Lets through requests with the operators' token; refuses the others.
struct Operator;

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for Operator {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> rocket::request::Outcome<Self, ()> {
        match request.headers().get_one("X-Ops-Token") {
            Some("let-me-in") => rocket::request::Outcome::Success(Operator),
            _ => rocket::request::Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

#[get("/metrics")]
fn guarded_metrics(
    _operator: Operator,
    report: rocket_route_cache::metrics::Report,
) -> rocket_route_cache::metrics::Report {
    report
}

/// Over the wire (a real server on 127.0.0.1): the report served from the app's own route is
/// the metrics route's, and a request without the app's token gets the guard's 401 and nothing
/// of the report (no server address, no counter).
#[rocket::async_test]
async fn the_report_serves_behind_the_apps_own_guard() {
    let _serial = SERIAL.lock().await;
    let server = MemcachedServer::start();
    let address = server.address();
    let app = rocket::custom(cached_route_suite::loopback_config())
        .manage(
            rocket_route_cache::Cache::new(rocket_route_cache::Config::memcached([&address]))
                .unwrap(),
        )
        .mount("/", routes![reported])
        .mount("/ops", routes![guarded_metrics])
        .mount("/internal", rocket_route_cache::metrics::metrics_routes());
    let running = cached_route_suite::launch(app, server).await;
    let get = |head: &'static str| cached_route_suite::http1(running.port, head);
    assert_eq!(
        get("GET /reported HTTP/1.1\r\nHost: localhost")
            .await
            .x_cache(),
        "MISS"
    );
    let refused = get("GET /ops/metrics HTTP/1.1\r\nHost: localhost").await;
    assert_eq!(refused.status, 401);
    assert!(!refused.body.contains(&address) && !refused.body.contains("cached_route_"));
    let wrong = get("GET /ops/metrics HTTP/1.1\r\nHost: localhost\r\nX-Ops-Token: guess").await;
    assert_eq!(wrong.status, 401);
    let head = "GET /ops/metrics HTTP/1.1\r\nHost: localhost\r\nX-Ops-Token: let-me-in";
    let report = get(head).await;
    assert_eq!(report.status, 200);
    assert_eq!(
        report.one("Content-Type"),
        Some("text/plain; version=0.0.4")
    );
    let served = format!("cached_route_server_up{{server=\"{address}\"}} 1");
    assert!(report.body.contains(&served), "{}", report.body);
    let route_miss = "cached_route_requests_total{route=\"GET /reported\",result=\"miss\"} 1";
    assert!(report.body.contains(route_miss), "{}", report.body);
    let open = get("GET /internal/metrics HTTP/1.1\r\nHost: localhost").await;
    assert_eq!(
        open.body, report.body,
        "the same report as the metrics route's"
    );
}
