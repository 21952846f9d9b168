//! Stampede protection and serve-stale against a real memcached: one cold key under
//! concurrent requests runs the handler once, in one instance and across three; an expired
//! entry is served stale while one request refreshes it, or stands in for a failing handler; a
//! paused server never turns coalescing into a queue.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cached_route_suite::MemcachedServer;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{get, routes, State};
use rocket_route_cache::{cached_route, Cache, Config};

/// Handler runs, shared by every app instance of a test; and for `/cold`, how many ran at once
/// (now, most).
#[derive(Clone, Default)]
struct Runs(
    Arc<Mutex<HashMap<&'static str, usize>>>,
    Arc<Mutex<(usize, usize)>>,
);

/// One `/cold` run in progress; counted down when dropped.
struct Running(Arc<Mutex<(usize, usize)>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

impl Runs {
    fn running(&self) -> Running {
        let mut gauge = self.1.lock().unwrap();
        gauge.0 += 1;
        gauge.1 = gauge.1.max(gauge.0);
        Running(Arc::clone(&self.1))
    }

    fn most_at_once(&self) -> usize {
        self.1.lock().unwrap().1
    }

    fn bump(&self, route: &'static str) -> usize {
        let mut runs = self.0.lock().unwrap();
        let count = runs.entry(route).or_default();
        *count += 1;
        *count
    }

    fn of(&self, route: &'static str) -> usize {
        self.0.lock().unwrap().get(route).copied().unwrap_or(0)
    }
}

#[derive(Clone, Default)]
struct Failing(Arc<AtomicBool>);

/// Expensive: 100 ms.
#[cached_route(ttl = 60)]
#[get("/cold/<n>")]
async fn cold(n: u32, runs: &State<Runs>) -> String {
    let run = runs.bump("cold");
    let _running = runs.running();
    rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    format!("cold {n} #{run}")
}

/// Sets a cookie through the jar (reads none), after 100 ms of work: never stored.
#[cached_route(ttl = 60, public, trusted_guards = ["cookies"])]
#[get("/personal-cookie")]
async fn personal_cookie(
    cookies: &rocket::http::CookieJar<'_>,
    runs: &State<Runs>,
) -> &'static str {
    runs.bump("personal_cookie");
    rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    cookies.add(("visited", "1"));
    "personal"
}

#[cached_route(ttl = 1, stale = 30)]
#[get("/news")]
async fn news(runs: &State<Runs>) -> String {
    let run = runs.bump("news");
    rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    format!("news #{run}")
}

#[cached_route(ttl = 1, stale_if_error = 30)]
#[get("/prices")]
fn prices(runs: &State<Runs>, failing: &State<Failing>) -> Result<String, Status> {
    let run = runs.bump("prices");
    if failing.0.load(Ordering::SeqCst) {
        return Err(Status::ServiceUnavailable);
    }
    Ok(format!("prices #{run}"))
}

async fn instance(server: &MemcachedServer, runs: &Runs, failing: &Failing) -> Client {
    instance_of(Config::memcached([server.address()]), runs, failing).await
}

async fn instance_of(config: Config, runs: &Runs, failing: &Failing) -> Client {
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(Cache::new(config).unwrap())
    .manage(runs.clone())
    .manage(failing.clone())
    .mount("/", routes![cold, news, prices, personal_cookie]);
    Client::untracked(rocket).await.unwrap()
}

/// (status, X-Cache, body) for `count` concurrent requests to `uri` on `client`.
async fn burst(client: &Client, uri: &str, count: usize) -> Vec<(Status, String, String)> {
    let requests = (0..count).map(|_| async {
        let response = client.get(uri.to_owned()).dispatch().await;
        let state = response
            .headers()
            .get_one("X-Cache")
            .unwrap_or("")
            .to_owned();
        let status = response.status();
        (status, state, common::body_text(response).await)
    });
    common::join_all(requests).await
}

fn count(answers: &[(Status, String, String)], state: &str) -> usize {
    answers.iter().filter(|(_, s, _)| s == state).count()
}

#[rocket::async_test]
async fn fifty_concurrent_misses_run_the_handler_once() {
    let server = MemcachedServer::start();
    let runs = Runs::default();
    let client = instance(&server, &runs, &Failing::default()).await;
    let answers = burst(&client, "/cold/1", 50).await;
    println!(
        "one instance, 50 concurrent on a cold key: {} handler run(s), {} MISS, {} HIT",
        runs.of("cold"),
        count(&answers, "MISS"),
        count(&answers, "HIT")
    );
    assert!(answers
        .iter()
        .all(|(status, _, body)| *status == Status::Ok && body == "cold 1 #1"));
    assert_eq!(runs.of("cold"), 1);
    assert_eq!((count(&answers, "MISS"), count(&answers, "HIT")), (1, 49));
}

#[rocket::async_test]
async fn three_instances_share_one_handler_run() {
    let server = MemcachedServer::start();
    let runs = Runs::default();
    let failing = Failing::default();
    let instances = [
        instance(&server, &runs, &failing).await,
        instance(&server, &runs, &failing).await,
        instance(&server, &runs, &failing).await,
    ];
    let bursts = instances.iter().map(|client| burst(client, "/cold/2", 20));
    let answers: Vec<_> = common::join_all(bursts)
        .await
        .into_iter()
        .flatten()
        .collect();
    println!(
        "three instances (separate clients), 20 concurrent each on one cold key: {} handler run(s)",
        runs.of("cold")
    );
    assert_eq!(answers.len(), 60);
    assert!(answers
        .iter()
        .all(|(status, _, body)| *status == Status::Ok && body == "cold 2 #1"));
    assert_eq!(
        runs.of("cold"),
        1,
        "the lease let one instance run the handler"
    );
}

#[rocket::async_test]
async fn a_stale_entry_is_served_while_one_request_refreshes_it() {
    let server = MemcachedServer::start();
    let runs = Runs::default();
    let client = instance(&server, &runs, &Failing::default()).await;
    assert_eq!(burst(&client, "/news", 1).await[0].2, "news #1");
    // Past the 1 s TTL (ages are whole seconds): nothing signals it, so the test sleeps.
    rocket::tokio::time::sleep(Duration::from_millis(2100)).await;
    let answers = burst(&client, "/news", 10).await;
    println!(
        "stale: 10 concurrent after expiry: {} STALE, {} MISS",
        count(&answers, "STALE"),
        count(&answers, "MISS")
    );
    assert_eq!(runs.of("news"), 2, "one refresh");
    // The request that refreshes is answered stale too (the refresh runs after its body).
    assert_eq!((count(&answers, "STALE"), count(&answers, "MISS")), (10, 0));
    for (status, _, body) in &answers {
        assert_eq!(*status, Status::Ok);
        assert_eq!(body, "news #1");
    }
    let after = burst(&client, "/news", 1).await;
    assert_eq!(
        (after[0].1.as_str(), after[0].2.as_str()),
        ("HIT", "news #2")
    );
}

/// Two instances with their own clients and in-process coalescing: only the companion lease
/// in memcached makes one refresh, across both, while every other request is answered stale.
#[rocket::async_test]
async fn a_stale_refresh_runs_once_across_instances() {
    let server = MemcachedServer::start();
    let runs = Runs::default();
    let one = instance(&server, &runs, &Failing::default()).await;
    let two = instance(&server, &runs, &Failing::default()).await;
    assert_eq!(burst(&one, "/news", 1).await[0].2, "news #1");
    assert_eq!(burst(&two, "/news", 1).await[0].1, "HIT");
    // Past the 1 s TTL (ages are whole seconds): nothing signals it, so the test sleeps.
    rocket::tokio::time::sleep(Duration::from_millis(2100)).await;
    let both = common::join_all([burst(&one, "/news", 5), burst(&two, "/news", 5)]).await;
    let answers: Vec<_> = both.into_iter().flatten().collect();
    assert_eq!(runs.of("news"), 2, "one refresh across both instances");
    assert_eq!((count(&answers, "STALE"), count(&answers, "MISS")), (10, 0));
}

#[rocket::async_test]
async fn a_stale_entry_stands_in_for_a_failing_handler() {
    let server = MemcachedServer::start();
    let runs = Runs::default();
    let failing = Failing::default();
    let client = instance(&server, &runs, &failing).await;
    stands_in_for_a_failing_handler(&client, &runs, &failing).await;
}

#[rocket::async_test]
async fn a_stale_entry_stands_in_for_a_failing_handler_on_the_embedded_store() {
    let runs = Runs::default();
    let failing = Failing::default();
    let client = instance_of(Config::embedded(), &runs, &failing).await;
    stands_in_for_a_failing_handler(&client, &runs, &failing).await;
}

async fn stands_in_for_a_failing_handler(client: &Client, runs: &Runs, failing: &Failing) {
    assert_eq!(burst(client, "/prices", 1).await[0].2, "prices #1");
    failing.0.store(true, Ordering::SeqCst);
    rocket::tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = burst(client, "/prices", 1).await.remove(0);
    assert_eq!(
        answer,
        (Status::Ok, "STALE".to_owned(), "prices #1".to_owned())
    );
    assert_eq!(runs.of("prices"), 2, "the handler was tried");
    failing.0.store(false, Ordering::SeqCst);
    let answer = burst(client, "/prices", 1).await.remove(0);
    assert_eq!(
        answer,
        (Status::Ok, "MISS".to_owned(), "prices #3".to_owned())
    );
}

#[rocket::async_test]
async fn a_paused_server_never_queues_coalesced_requests() {
    let server = MemcachedServer::start();
    let runs = Runs::default();
    let client = instance(&server, &runs, &Failing::default()).await;
    server.pause();
    let started = Instant::now();
    let answers = burst(&client, "/cold/3", 20).await;
    let took = started.elapsed();
    println!(
        "paused server, 20 concurrent on one key: all answered in {took:?}, {} handler runs",
        runs.of("cold")
    );
    assert!(answers.iter().all(|(status, _, _)| *status == Status::Ok));
    // A failed lookup does not coalesce: nobody waited for a leader, all 20 ran at once.
    assert_eq!(count(&answers, "MISS"), 20);
    assert_eq!((runs.of("cold"), runs.most_at_once()), (20, 20));
    // One 100 ms lookup deadline plus the 100 ms handler, not 20 of either in a row.
    assert!(took < Duration::from_millis(600), "{took:?}");
    server.resume();
}

/// A lease holder whose response is not storable gives the placeholder back at once: the other
/// instance does not wait out `lease_wait` (2 s).
#[rocket::async_test]
async fn a_holder_that_stores_nothing_does_not_hold_others_up() {
    let server = MemcachedServer::start();
    let runs = Runs::default();
    let failing = Failing::default();
    let one = instance(&server, &runs, &failing).await;
    let two = instance(&server, &runs, &failing).await;
    let started = Instant::now();
    let both = common::join_all([
        burst(&one, "/personal-cookie", 1),
        burst(&two, "/personal-cookie", 1),
    ])
    .await;
    let took = started.elapsed();
    println!(
        "two instances, one unstorable key: both answered in {took:?}, {} runs",
        runs.of("personal_cookie")
    );
    assert!(both
        .iter()
        .flatten()
        .all(|(status, state, _)| *status == Status::Ok && state == "MISS"));
    assert_eq!(
        runs.of("personal_cookie"),
        2,
        "each ran the handler: nothing could be shared"
    );
    assert!(
        took < Duration::from_millis(1000),
        "the second waited {took:?}"
    );
}
