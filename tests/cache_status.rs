//! `Cache-Status` (RFC 9211) over the wire: a real Rocket server on 127.0.0.1, backed by a real
//! memcached and by the embedded store, spoken to in raw HTTP/1.1. Every way a cached route can
//! answer says so in one list member named after the cache: a hit and the freshness it has
//! left, or why the request went to the handler, what the handler answered, and whether it was
//! stored (and if not, why).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cached_route_suite::{http1, loopback_config, Gate, MemcachedServer, RawReply, RunningApp};
use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::tokio::time::sleep;
use rocket::{get, routes, Request, Response, State};
use rocket_route_cache::{cached_route, Cache, Config};

/// A body with one extra header line and a status.
#[derive(Debug)]
struct Headed(Status, &'static str, &'static str);

impl<'r> Responder<'r, 'static> for Headed {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(self.0);
        if !self.1.is_empty() {
            response.raw_header(self.1, self.2);
        }
        response.sized_body(4, std::io::Cursor::new("body"));
        Ok(response.finalize())
    }
}

#[derive(Debug, Default, Clone)]
struct Failing(Arc<AtomicBool>);

#[cached_route(ttl = 60)]
#[get("/plain/<n>")]
fn plain(n: u32) -> String {
    format!("plain {n}")
}

/// Held at the gate when armed: a request that waits for it is collapsed into it.
#[cached_route(ttl = 60)]
#[get("/slow/<n>")]
async fn slow(n: u32, gate: &State<Gate>) -> String {
    gate.pass().await;
    format!("slow {n}")
}

#[cached_route(ttl = 1, stale = 30)]
#[get("/news/<n>")]
async fn news(n: u32, gate: &State<Gate>) -> String {
    gate.pass().await;
    format!("news {n}")
}

#[cached_route(ttl = 1, stale_if_error = 30)]
#[get("/prices/<n>")]
fn prices(n: u32, failing: &State<Failing>) -> Result<String, Status> {
    match failing.0.load(Ordering::SeqCst) {
        true => Err(Status::ServiceUnavailable),
        false => Ok(format!("prices {n}")),
    }
}

#[cached_route(ttl = 60, honor_no_cache)]
#[get("/fresh/<n>")]
fn fresh(n: u32) -> String {
    format!("fresh {n}")
}

/// `what` picks the response: one that sets a cookie, a private one, a 404, or one that
/// passes on the `Cache-Status` of a cache on the origin's side.
#[cached_route(ttl = 60, statuses = [200])]
#[get("/refused/<what>")]
fn refused(what: &str) -> Headed {
    match what {
        "cookie" => Headed(Status::Ok, "Set-Cookie", "session=1"),
        "private" => Headed(Status::Ok, "Cache-Control", "private"),
        "gone" => Headed(Status::NotFound, "", ""),
        _ => Headed(Status::Ok, "Cache-Status", "origin-cache; hit"),
    }
}

/// The app under test, with what its handlers share with the test.
struct App {
    running: RunningApp,
    gate: Gate,
    failing: Failing,
    backend: &'static str,
}

impl App {
    fn port(&self) -> u16 {
        self.running.port
    }
}

/// The app on 127.0.0.1 with `config` (its `servers` set to a memcached of its own when
/// `shared`).
async fn launch_with(mut config: Config, shared: bool) -> App {
    let memcached = MemcachedServer::start();
    if shared {
        config.servers = vec![memcached.address()];
    }
    let (gate, failing) = (Gate::default(), Failing::default());
    let app = rocket::custom(loopback_config())
        .manage(Cache::new(config).unwrap())
        .manage(gate.clone())
        .manage(failing.clone())
        .mount("/", routes![plain, slow, news, prices, fresh, refused]);
    App {
        running: cached_route_suite::launch(app, memcached).await,
        gate,
        failing,
        backend: if shared { "memcached" } else { "embedded" },
    }
}

/// The app once with memcached, once with the embedded store, with `config` otherwise.
async fn both(config: Config) -> [App; 2] {
    [
        launch_with(config.clone(), true).await,
        launch_with(config, false).await,
    ]
}

async fn get(port: u16, target: &str, headers: &str) -> RawReply {
    let head = format!("GET {target} HTTP/1.1\r\nHost: status.example{headers}");
    http1(port, &head).await
}

/// This cache's member of `Cache-Status` (the last), and the `ttl` it says, split off.
fn member(reply: &RawReply) -> (String, Option<i64>) {
    let all = reply.all("Cache-Status");
    let last = all.last().expect("a Cache-Status");
    match last.split_once("; ttl=") {
        Some((head, ttl)) => {
            let (ttl, rest) = ttl.split_once(';').unwrap_or((ttl, ""));
            (
                format!("{head}{rest}"),
                Some(ttl.parse().expect("an integer ttl")),
            )
        }
        None => (last.to_string(), None),
    }
}

#[rocket::async_test]
async fn a_miss_says_stored_and_a_hit_the_freshness_left() {
    for app in both(Config::default()).await {
        let (port, backend) = (app.port(), app.backend);
        let miss = get(port, "/plain/1", "").await;
        assert_eq!(miss.x_cache(), "MISS", "{backend}");
        assert_eq!(
            miss.one("Cache-Status"),
            Some("rocket-route-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"),
            "{backend}"
        );
        let hit = get(port, "/plain/1", "").await;
        assert_eq!(hit.x_cache(), "HIT", "{backend}");
        let (status, ttl) = member(&hit);
        assert_eq!(status, "rocket-route-cache; hit", "{backend}");
        assert!(
            matches!(ttl, Some(59..=60)),
            "{backend}: ttl {ttl:?} on a hit"
        );
        assert_eq!(
            hit.one("Age").map(str::parse::<i64>),
            Some(Ok(60 - ttl.unwrap()))
        );
    }
}

#[rocket::async_test]
async fn a_refused_response_says_why_it_was_not_stored() {
    for app in both(Config::default()).await {
        let (port, backend) = (app.port(), app.backend);
        for (target, expected) in [
            (
                "/refused/cookie",
                "rocket-route-cache; fwd=uri-miss; fwd-status=200; detail=set-cookie",
            ),
            (
                "/refused/private",
                "rocket-route-cache; fwd=uri-miss; fwd-status=200; detail=cache-control",
            ),
            (
                "/refused/gone",
                "rocket-route-cache; fwd=uri-miss; fwd-status=404; detail=status",
            ),
        ] {
            let reply = get(port, target, "").await;
            assert_eq!(reply.x_cache(), "MISS", "{backend} {target}");
            assert_eq!(
                reply.one("Cache-Status"),
                Some(expected),
                "{backend} {target}"
            );
        }
        // The client's own no-store: nothing is stored, and it says so.
        let reply = get(port, "/plain/2", "\r\nCache-Control: no-store").await;
        assert_eq!(
            reply.one("Cache-Status"),
            Some("rocket-route-cache; fwd=uri-miss; fwd-status=200; detail=request-no-store"),
            "{backend}"
        );
    }
}

#[rocket::async_test]
async fn members_from_caches_nearer_the_origin_come_first() {
    for app in both(Config::default()).await {
        let (port, backend) = (app.port(), app.backend);
        let miss = get(port, "/refused/upstream", "").await;
        assert_eq!(
            miss.all("Cache-Status"),
            [
                "origin-cache; hit",
                "rocket-route-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
            ],
            "{backend}"
        );
        let hit = get(port, "/refused/upstream", "").await;
        let all = hit.all("Cache-Status");
        assert_eq!(all.len(), 2, "{backend}: {all:?}");
        assert_eq!(all[0], "origin-cache; hit", "{backend}");
        assert!(
            all[1].starts_with("rocket-route-cache; hit; ttl="),
            "{backend}: {all:?}"
        );
    }
}

#[rocket::async_test]
async fn a_client_no_cache_and_a_per_principal_request_go_forward() {
    for app in both(Config::default()).await {
        let (port, backend) = (app.port(), app.backend);
        assert_eq!(get(port, "/fresh/1", "").await.x_cache(), "MISS");
        let refreshed = get(port, "/fresh/1", "\r\nCache-Control: no-cache").await;
        assert_eq!(refreshed.x_cache(), "MISS", "{backend}");
        assert_eq!(
            refreshed.one("Cache-Status"),
            Some("rocket-route-cache; fwd=request; fwd-status=200; stored; ttl=60"),
            "{backend}"
        );
        let bypass = get(port, "/plain/3", "\r\nAuthorization: Bearer x").await;
        assert_eq!(bypass.x_cache(), "BYPASS", "{backend}");
        assert_eq!(
            bypass.one("Cache-Status"),
            Some("rocket-route-cache; fwd=bypass; fwd-status=200; detail=authorization"),
            "{backend}"
        );
    }
}

/// The route's lookups so far (its counters are shared by every test of this file, but only
/// the test below requests it).
fn lookups_of(label: &str) -> u64 {
    rocket_route_cache::metrics::stats()
        .routes
        .into_iter()
        .find(|(route, _)| route == label)
        .map_or(0, |(_, counters)| counters.lookups)
}

#[rocket::async_test]
async fn a_request_that_waited_for_another_says_collapsed() {
    for app in both(Config::default()).await {
        let (port, backend) = (app.port(), app.backend);
        let target = format!("/slow/{}", u32::from(backend == "embedded"));
        let mut held = app.gate.arm();
        let before = lookups_of("GET /slow/<n>");
        let leader = spawn_get(port, &target);
        held.entered().await;
        let follower = spawn_get(port, &target);
        // The follower has looked the key up (and so joined the leader: no await between).
        let deadline = Instant::now() + Duration::from_secs(10);
        while lookups_of("GET /slow/<n>") < before + 2 {
            assert!(
                Instant::now() < deadline,
                "{backend}: the follower never looked up"
            );
            sleep(Duration::from_millis(1)).await;
        }
        held.release();
        let (leader, follower) = (leader.await.unwrap(), follower.await.unwrap());
        assert_eq!(
            leader.one("Cache-Status"),
            Some("rocket-route-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"),
            "{backend}"
        );
        assert_eq!(follower.x_cache(), "HIT", "{backend}");
        let (status, ttl) = member(&follower);
        assert_eq!(
            status, "rocket-route-cache; fwd=uri-miss; fwd-status=200; collapsed",
            "{backend}"
        );
        assert!(matches!(ttl, Some(59..=60)), "{backend}: {ttl:?}");
        assert_eq!(follower.body, leader.body);
    }
}

/// Spawns a GET of `target`.
fn spawn_get(port: u16, target: &str) -> rocket::tokio::task::JoinHandle<RawReply> {
    let target = target.to_owned();
    rocket::tokio::spawn(async move { get(port, &target, "").await })
}

#[rocket::async_test]
async fn stale_entries_say_how_stale_and_their_refresh_says_why_it_went_forward() {
    let apps = both(Config::default()).await;
    for app in &apps {
        let port = app.port();
        assert_eq!(get(port, "/news/1", "").await.x_cache(), "MISS");
        assert_eq!(get(port, "/prices/1", "").await.x_cache(), "MISS");
    }
    // Past the 1 s TTL (entry ages are whole seconds): time passing is what is tested.
    sleep(Duration::from_millis(2100)).await;
    for app in &apps {
        let (port, backend) = (app.port(), app.backend);
        // One request refreshes (held, after its own stale answer), another is served the
        // stale entry meanwhile: both are hits from the cache, the refresh went forward after.
        let mut held = app.gate.arm();
        let refresh = spawn_get(port, "/news/1");
        held.entered().await;
        let stale = get(port, "/news/1", "").await;
        assert_eq!(stale.x_cache(), "STALE", "{backend}");
        let (status, ttl) = member(&stale);
        assert_eq!(status, "rocket-route-cache; hit", "{backend}");
        assert!(matches!(ttl, Some(-4..=-1)), "{backend}: stale ttl {ttl:?}");
        held.release();
        let refresh = refresh.await.unwrap();
        assert_eq!(refresh.x_cache(), "STALE", "{backend}");
        let (status, ttl) = member(&refresh);
        assert_eq!(status, "rocket-route-cache; hit", "{backend}");
        assert!(
            matches!(ttl, Some(-4..=-1)),
            "{backend}: refresher ttl {ttl:?}"
        );
        // The refresh is stored after the refresher's reply: a store is no event a client can
        // await, so ask until the new entry is served (bounded).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let fresh = loop {
            let reply = get(port, "/news/1", "").await;
            if reply.x_cache() == "HIT" || std::time::Instant::now() > deadline {
                break reply;
            }
            sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(fresh.x_cache(), "HIT", "{backend}");
        assert!(matches!(member(&fresh).1, Some(0..=1)), "{backend}");
        // A failing handler: the expired entry stands in, and says what the handler said.
        app.failing.0.store(true, Ordering::SeqCst);
        let stand_in = get(port, "/prices/1", "").await;
        assert_eq!(
            (stand_in.status, stand_in.x_cache()),
            (200, "STALE"),
            "{backend}"
        );
        let (status, ttl) = member(&stand_in);
        assert_eq!(
            status, "rocket-route-cache; fwd=stale; fwd-status=503",
            "{backend}"
        );
        assert!(
            matches!(ttl, Some(-4..=-1)),
            "{backend}: stand-in ttl {ttl:?}"
        );
    }
}

#[rocket::async_test]
async fn the_cache_is_named_as_configured_or_not_at_all() {
    for (name, expected) in [
        (Some("edge-7"), Some("edge-7")),
        (Some("edge \"seven\""), Some("\"edge \\\"seven\\\"\"")),
        (None, None),
    ] {
        let mut config = Config::default();
        config.cache_status = name.map(str::to_owned);
        for app in both(config).await {
            let (port, backend) = (app.port(), app.backend);
            let miss = get(port, "/plain/9", "").await;
            let hit = get(port, "/plain/9", "").await;
            // X-Cache is as configured on its own, whatever Cache-Status is.
            assert_eq!(
                (miss.x_cache(), hit.x_cache()),
                ("MISS", "HIT"),
                "{backend}"
            );
            match expected {
                Some(prefix) => {
                    assert_eq!(
                        miss.one("Cache-Status"),
                        Some(
                            format!("{prefix}; fwd=uri-miss; fwd-status=200; stored; ttl=60")
                                .as_str()
                        ),
                        "{backend}"
                    );
                    assert_eq!(member(&hit).0, format!("{prefix}; hit"), "{backend}");
                }
                None => {
                    assert_eq!(miss.one("Cache-Status"), None, "{backend}");
                    assert_eq!(hit.one("Cache-Status"), None, "{backend}");
                }
            }
        }
    }
    // And X-Cache off leaves Cache-Status on.
    let mut config = Config::default();
    config.x_cache_header = false;
    for app in both(config).await {
        let reply = get(app.port(), "/plain/10", "").await;
        assert_eq!(reply.one("X-Cache"), None);
        assert!(reply.one("Cache-Status").is_some());
    }
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for Headed {}
