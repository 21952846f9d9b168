//! A request whose answer the others cannot share never leads them, over the wire (a real
//! server on 127.0.0.1, HTTP/1.1): one with `Cache-Control: no-store`, or with credentials on a
//! `public` route, runs its handler alone (no flight leadership in its process, no lease in
//! the backend), and the requests after it coalesce on a run that stores. Before, the first
//! such request after an expiry led the others: its answer was not stored, and each of them
//! then ran the handler itself once `lease_wait` was out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cached_route_suite::{http1, launch, launch_alone, loopback_config, Gate, MemcachedServer};
use rocket::tokio::time::timeout;
use rocket::{get, routes, State};
use rocket_route_cache::{cached_route, Cache, Config};

#[derive(Default)]
struct Runs(AtomicUsize);

/// A page any client may be served (`public`: credentials do not bypass the cache); a run may
/// be held at the gate.
#[cached_route(ttl = 60, public)]
#[get("/page")]
async fn page(runs: &State<Arc<Runs>>, gate: &State<Gate>) -> String {
    let run = runs.0.fetch_add(1, Ordering::SeqCst) + 1;
    gate.pass().await;
    format!("page #{run}")
}

/// Waits that no request behind a held one can mistake for a short pause: with the old
/// behaviour, the followers of a held leader (or of its lease, until it expires) wait this
/// long before running the handler themselves, and the test's 10 s bound fails first.
fn patient(mut config: Config) -> Config {
    config.lease_wait = Duration::from_secs(30);
    config.lease_ttl = Duration::from_secs(60);
    config
}

fn app(cache: &Cache, runs: &Arc<Runs>, gate: &Gate) -> rocket::Rocket<rocket::Build> {
    rocket::custom(loopback_config())
        .manage(cache.clone())
        .manage(Arc::clone(runs))
        .manage(gate.clone())
        .mount("/", routes![page])
}

async fn get(port: u16, extra: &str) -> (String, String) {
    let reply = http1(
        port,
        &format!("GET /page HTTP/1.1\r\nHost: localhost{extra}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    (reply.x_cache().to_owned(), reply.body)
}

/// While a request that sends `unshared` (a header line) is held in the handler, 20 plain
/// requests are answered by one run of their own, stored and shared; the held one's answer is
/// not stored.
async fn the_others_coalesce_without_it(
    (port, cache): (u16, &Cache),
    runs: &Runs,
    gate: &Gate,
    unshared: &str,
) {
    let mut held = gate.arm();
    let unshared = unshared.to_owned();
    let first = rocket::tokio::spawn(async move { get(port, &unshared).await });
    held.entered().await;
    assert_eq!(runs.0.load(Ordering::SeqCst), 1);
    let others: Vec<_> = (0..20)
        .map(|_| rocket::tokio::spawn(async move { get(port, "").await }))
        .collect();
    for other in others {
        let (_, body) = timeout(Duration::from_secs(10), other)
            .await
            .expect("answered while the unshareable request is still held")
            .unwrap();
        assert_eq!(body, "page #2");
    }
    assert_eq!(runs.0.load(Ordering::SeqCst), 2, "one run for the 20");
    held.release();
    let (x_cache, body) = first.await.unwrap();
    assert_eq!((x_cache.as_str(), body.as_str()), ("MISS", "page #1"));
    assert_eq!(
        get(port, "").await,
        ("HIT".to_owned(), "page #2".to_owned())
    );
    // Nor did its refusal put the key in hit-for-pass, which would send the next miss to the
    // handler as a pass (`fwd=bypass`) instead of coalescing it.
    rocket_route_cache::Invalidation::new()
        .uri("/page")
        .run_in(cache)
        .await
        .unwrap();
    let next = http1(port, "GET /page HTTP/1.1\r\nHost: localhost").await;
    let cache_status = next.one("Cache-Status").unwrap_or("");
    assert!(cache_status.contains("fwd=uri-miss"), "{cache_status}");
}

#[rocket::async_test]
async fn memcached_a_no_store_request_does_not_lead_the_others() {
    let memcached = MemcachedServer::start();
    let (runs, gate) = (Arc::new(Runs::default()), Gate::default());
    let cache = Cache::new(patient(Config::memcached([memcached.address()]))).unwrap();
    let running = launch(app(&cache, &runs, &gate), memcached).await;
    let no_store = "\r\nCache-Control: no-store";
    the_others_coalesce_without_it((running.port, &cache), &runs, &gate, no_store).await;
}

#[rocket::async_test]
async fn memcached_credentials_on_a_public_route_do_not_lead_the_others() {
    let memcached = MemcachedServer::start();
    let (runs, gate) = (Arc::new(Runs::default()), Gate::default());
    let cache = Cache::new(patient(Config::memcached([memcached.address()]))).unwrap();
    let running = launch(app(&cache, &runs, &gate), memcached).await;
    let credentials = "\r\nAuthorization: Bearer mallory";
    the_others_coalesce_without_it((running.port, &cache), &runs, &gate, credentials).await;
}

#[rocket::async_test]
async fn embedded_a_no_store_request_does_not_lead_the_others() {
    let (runs, gate) = (Arc::new(Runs::default()), Gate::default());
    let cache = Cache::new(patient(Config::embedded())).unwrap();
    let running = launch_alone(app(&cache, &runs, &gate)).await;
    let no_store = "\r\nCache-Control: no-store";
    the_others_coalesce_without_it((running.port, &cache), &runs, &gate, no_store).await;
}

/// Across instances: the held request took no lease, so another instance's request runs the
/// handler at once instead of waiting for a lease nobody will fill.
#[rocket::async_test]
async fn an_unshareable_request_takes_no_lease() {
    let memcached = MemcachedServer::start();
    let (runs, gate) = (Arc::new(Runs::default()), Gate::default());
    let address = memcached.address();
    let caches = [(); 2].map(|()| Cache::new(patient(Config::memcached([&address]))).unwrap());
    let one = launch(app(&caches[0], &runs, &gate), memcached).await;
    let two = launch_alone(app(&caches[1], &runs, &gate)).await;
    for (unshared, stored) in [
        ("\r\nCache-Control: no-store", "page #2"),
        ("\r\nAuthorization: Bearer mallory", "page #2"),
    ] {
        let mut held = gate.arm();
        let (port, unshared) = (one.port, unshared.to_owned());
        let first = rocket::tokio::spawn(async move { get(port, &unshared).await });
        held.entered().await;
        let other = timeout(Duration::from_secs(10), get(two.port, ""))
            .await
            .expect("the other instance did not wait for a lease");
        assert_eq!(other.0, "MISS");
        held.release();
        first.await.unwrap();
        assert_eq!(get(one.port, "").await.1, stored);
        // The next round starts cold again.
        let cold = rocket_route_cache::Invalidation::new().uri("/page");
        cold.run_in(&caches[0]).await.unwrap();
        runs.0.store(0, Ordering::SeqCst);
    }
}
