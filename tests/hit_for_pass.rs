//! Hit-for-pass over the wire, on a real memcached and on the embedded store: once a key's
//! response was not storable, its requests run the handler at once instead of queueing behind
//! a request whose response will not be stored either; until the period ends, or a storable
//! response ends it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cached_route_suite::{http1, loopback_config, Gate, MemcachedServer, RawReply, RunningApp};
use rocket::response::{self, Responder};
use rocket::tokio::task::JoinHandle;
use rocket::tokio::time::{sleep, timeout};
use rocket::{get, routes, Request, Response, State};
use rocket_route_cache::{cached_route, Cache, Config};

/// Whether the handlers' responses set a cookie (the default) or may be stored.
#[derive(Debug, Default, Clone)]
struct Storable(Arc<AtomicBool>);

/// Handler runs.
#[derive(Debug, Default, Clone)]
struct Runs(Arc<AtomicUsize>);

/// A body, with `Set-Cookie` unless storable.
#[derive(Debug)]
struct Personal(bool);

impl<'r> Responder<'r, 'static> for Personal {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        if !self.0 {
            response.raw_header("Set-Cookie", "session=1");
        }
        response.sized_body(4, std::io::Cursor::new("body"));
        Ok(response.finalize())
    }
}

async fn personal(gate: &Gate, storable: &Storable, runs: &Runs) -> Personal {
    runs.0.fetch_add(1, Ordering::SeqCst);
    gate.pass().await;
    Personal(storable.0.load(Ordering::SeqCst))
}

#[cached_route(ttl = 60)]
#[get("/cookie/<n>")]
async fn cookie(
    n: u32,
    gate: &State<Gate>,
    storable: &State<Storable>,
    runs: &State<Runs>,
) -> Personal {
    let _ = n;
    personal(gate, storable, runs).await
}

/// An entry of this route would live one second: so does its pass.
#[cached_route(ttl = 1)]
#[get("/brief")]
async fn brief(gate: &State<Gate>, storable: &State<Storable>, runs: &State<Runs>) -> Personal {
    personal(gate, storable, runs).await
}

struct App {
    running: RunningApp,
    cache: Cache,
    gate: Gate,
    storable: Storable,
    runs: Runs,
    backend: &'static str,
}

impl App {
    fn port(&self) -> u16 {
        self.running.port
    }

    fn runs(&self) -> usize {
        self.runs.0.load(Ordering::SeqCst)
    }
}

/// The app on 127.0.0.1, with memcached (`shared`) or the embedded store. A request waiting
/// for another would wait up to 8 s (`lease_wait`): far longer than any bound below.
async fn launch(shared: bool, hit_for_pass: Option<Duration>) -> App {
    let memcached = MemcachedServer::start();
    let mut config = match shared {
        true => Config::memcached([memcached.address()]),
        false => Config::embedded(),
    };
    config.lease_wait = Duration::from_secs(8);
    if let Some(period) = hit_for_pass {
        config.hit_for_pass = period;
    }
    let cache = Cache::new(config).unwrap();
    let (gate, storable, runs) = (Gate::default(), Storable::default(), Runs::default());
    let app = rocket::custom(loopback_config())
        .manage(cache.clone())
        .manage(gate.clone())
        .manage(storable.clone())
        .manage(runs.clone())
        .mount("/", routes![cookie, brief]);
    App {
        running: cached_route_suite::launch(app, memcached).await,
        cache,
        gate,
        storable,
        runs,
        backend: if shared { "memcached" } else { "embedded" },
    }
}

async fn both(hit_for_pass: Option<Duration>) -> [App; 2] {
    [
        launch(true, hit_for_pass).await,
        launch(false, hit_for_pass).await,
    ]
}

async fn get(port: u16, target: &str) -> RawReply {
    http1(
        port,
        &format!("GET {target} HTTP/1.1\r\nHost: pass.example"),
    )
    .await
}

fn spawn_get(port: u16, target: &str) -> JoinHandle<RawReply> {
    let target = target.to_owned();
    rocket::tokio::spawn(async move { get(port, &target).await })
}

const REFUSED: &str = "rocket-route-cache; fwd=uri-miss; fwd-status=200; detail=set-cookie";
const PASSED: &str = "rocket-route-cache; fwd=bypass; fwd-status=200; detail=hit-for-pass";

/// The first response of `target` is refused: the key is in hit-for-pass from then on.
async fn refuse_once(app: &App, target: &str) {
    let first = get(app.port(), target).await;
    assert_eq!(first.x_cache(), "MISS", "{}", app.backend);
    assert_eq!(first.one("Cache-Status"), Some(REFUSED), "{}", app.backend);
}

#[rocket::async_test]
async fn requests_for_an_unstorable_key_run_at_once_while_one_is_held() {
    for app in both(None).await {
        let (port, backend) = (app.port(), app.backend);
        refuse_once(&app, "/cookie/1").await;
        // One request is held in the handler; five more arrive meanwhile.
        let mut held = app.gate.arm();
        let first = spawn_get(port, "/cookie/1");
        held.entered().await;
        let others: Vec<_> = (0..5).map(|_| spawn_get(port, "/cookie/1")).collect();
        for other in others {
            let reply = timeout(Duration::from_secs(4), other)
                .await
                .unwrap_or_else(|_| panic!("{backend}: a request waited for the held one"))
                .unwrap();
            // MISS, as Varnish's hit-for-miss reports: the response may still be stored.
            assert_eq!(reply.x_cache(), "MISS", "{backend}");
            assert_eq!(reply.one("Cache-Status"), Some(PASSED), "{backend}");
        }
        assert!(
            !first.is_finished(),
            "{backend}: the held request is still held"
        );
        assert_eq!(app.runs(), 7, "{backend}: every request ran the handler");
        held.release();
        let first = first.await.unwrap();
        assert_eq!(first.one("Cache-Status"), Some(PASSED), "{backend}");
    }
}

/// Shows that requests for `target` coalesce again: a second request waits for one held in
/// the handler (it is not answered in 300 ms), then runs the handler itself when the held one
/// stored nothing.
async fn coalesces(app: &App, target: &str) {
    let (port, backend) = (app.port(), app.backend);
    let mut held = app.gate.arm();
    let first = spawn_get(port, target);
    held.entered().await;
    let mut second = spawn_get(port, target);
    let waited = timeout(Duration::from_millis(300), &mut second).await;
    assert!(
        waited.is_err(),
        "{backend}: {target} did not wait: {waited:?}"
    );
    held.release();
    for reply in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(
            reply.one("Cache-Status"),
            Some(REFUSED),
            "{backend} {target}"
        );
    }
}

#[rocket::async_test]
async fn the_pass_ends_after_its_period_or_the_route_ttl() {
    // One second of hit-for-pass on a 60 s route; the default (120 s) on a 1 s route.
    let apps = [
        (
            launch(true, Some(Duration::from_secs(1))).await,
            "/cookie/2",
        ),
        (
            launch(false, Some(Duration::from_secs(1))).await,
            "/cookie/2",
        ),
        (launch(true, None).await, "/brief"),
        (launch(false, None).await, "/brief"),
    ];
    for (app, target) in &apps {
        refuse_once(app, target).await;
        let passed = get(app.port(), target).await;
        assert_eq!(passed.one("Cache-Status"), Some(PASSED), "{}", app.backend);
    }
    // The period is time passing: nothing signals its end.
    sleep(Duration::from_millis(1100)).await;
    for (app, target) in &apps {
        coalesces(app, target).await;
    }
}

#[rocket::async_test]
async fn a_storable_response_ends_the_pass() {
    for app in both(None).await {
        let (port, backend) = (app.port(), app.backend);
        refuse_once(&app, "/cookie/3").await;
        assert_eq!(
            get(port, "/cookie/3").await.one("Cache-Status"),
            Some(PASSED)
        );
        // The handler stops setting the cookie: the next response is stored.
        app.storable.0.store(true, Ordering::SeqCst);
        let stored = get(port, "/cookie/3").await;
        assert_eq!(
            stored.one("Cache-Status"),
            Some("rocket-route-cache; fwd=bypass; fwd-status=200; stored; ttl=60"),
            "{backend}"
        );
        assert_eq!(get(port, "/cookie/3").await.x_cache(), "HIT", "{backend}");
        // Gone again, and unstorable again: the key is no longer in hit-for-pass, so its
        // requests coalesce (and the first is a plain miss, not a pass).
        app.cache.invalidate_all().await.unwrap();
        app.storable.0.store(false, Ordering::SeqCst);
        coalesces(&app, "/cookie/3").await;
    }
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for Personal {}
