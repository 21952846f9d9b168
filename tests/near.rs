//! The near tier and the epoch polls, against real memcached servers: a near hit needs no
//! server, stops by itself within the poll horizon when the server stops answering, stays
//! within its memory bound, and never outlives an invalidation (see `backend/watch.rs`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cached_route_suite::MemcachedServer;
use rocket::local::asynchronous::Client;
use rocket::{get, routes, State};
use rocket_route_cache::{cached_route, Cache, Config};

/// The version the page shows, as a "database" shared by the instances.
#[derive(Default, Clone)]
struct Live(Arc<AtomicU64>);

#[cached_route(ttl = 600, tags = ["live"])]
#[get("/live")]
fn live(version: &State<Live>) -> String {
    version.0.load(Ordering::SeqCst).to_string()
}

#[cached_route(ttl = 600)]
#[get("/sized/<id>")]
fn sized(id: u32) -> String {
    format!("{id:>8}").repeat(256)
}

async fn instance(config: Config, live: Live) -> Client {
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(live)
    .manage(Cache::new(config).unwrap())
    .mount("/", routes![live, sized]);
    Client::untracked(rocket).await.expect("valid rocket")
}

fn cache(client: &Client) -> &Cache {
    client.rocket().state::<Cache>().unwrap()
}

/// Until every server's epoch was polled recently enough to be relied on.
async fn polled(client: &Client) {
    let polled = rocket_route_cache::__private::epochs_polled(cache(client));
    rocket::tokio::time::timeout(Duration::from_secs(5), polled)
        .await
        .expect("the epochs were polled");
}

/// `X-Cache` and body of a GET.
async fn get(client: &Client, uri: &str) -> (String, String) {
    let response = client.get(uri.to_owned()).dispatch().await;
    let x_cache = response
        .headers()
        .get_one("X-Cache")
        .unwrap_or("")
        .to_owned();
    let body = response.into_string().await.expect("a body");
    (x_cache, body)
}

/// A hit answered while the only server is frozen came from the near tier: no I/O. Once the
/// last poll answered before the freeze is older than the horizon (`epoch_poll` plus the poll's
/// deadline), the near tier stops answering: every request that starts later waits for the
/// server (the lookup's deadline) and runs the handler.
#[rocket::async_test]
async fn near_hits_need_no_server_and_stop_within_the_horizon_when_it_freezes() {
    let server = MemcachedServer::start();
    let mut config = Config::memcached([server.address()]);
    config.epoch_poll = Duration::from_millis(400);
    config.op_timeout = Duration::from_millis(300);
    config.breaker_failures = u32::MAX;
    let horizon = Duration::from_millis(700);
    let client = instance(config, Live::default()).await;
    assert_eq!(get(&client, "/live").await.0, "MISS");
    assert_eq!(get(&client, "/live").await.0, "HIT");
    assert_eq!(cache(&client).near_usage().map(|(len, _)| len), Some(1));

    polled(&client).await;
    server.pause();
    let paused = Instant::now();
    let mut near_hits = 0;
    let stopped = loop {
        let started = Instant::now();
        let (x_cache, _) = get(&client, "/live").await;
        if x_cache != "HIT" {
            assert_eq!(
                x_cache, "MISS",
                "a frozen server's lookup times out: a miss"
            );
            break started - paused;
        }
        near_hits += 1;
        assert!(
            started - paused < horizon,
            "a near hit {:?} after the freeze, past the horizon",
            started - paused
        );
        assert!(
            paused.elapsed() < Duration::from_secs(5),
            "near hits never stopped"
        );
    };
    server.resume();
    println!(
        "{near_hits} near hits with the server frozen; the first miss started {stopped:?} after"
    );
    assert!(near_hits > 0, "no hit answered without the server");
}

/// The invalidation counters read on `server` so far (meta arithmetic, `ma`, counts as an
/// increment, found or created) and the gets.
fn counter_reads_and_gets(server: &MemcachedServer) -> (u64, u64) {
    let stats = server.stats();
    let of = |name: &str| stats.get(name).copied().unwrap_or(0);
    (of("incr_hits") + of("incr_misses"), of("cmd_get"))
}

/// `hits` far hits (near tier off) with polling at `epoch_poll`: how many counter reads and gets
/// the server saw, how many polls the cache sent meanwhile, and how long that took.
async fn far_hits(epoch_poll: Duration, hits: u64) -> (u64, u64, u64, Duration) {
    let server = MemcachedServer::start();
    let mut config = Config::memcached([server.address()]);
    config.near_capacity = 0;
    config.epoch_poll = epoch_poll;
    let client = instance(config, Live::default()).await;
    assert_eq!(get(&client, "/live").await.0, "MISS");
    if !epoch_poll.is_zero() {
        polled(&client).await;
    }
    let started = Instant::now();
    let polls = rocket_route_cache::__private::epoch_polls(cache(&client));
    let (counters, gets) = counter_reads_and_gets(&server);
    for _ in 0..hits {
        assert_eq!(get(&client, "/live").await.0, "HIT");
    }
    let (counters_after, gets_after) = counter_reads_and_gets(&server);
    let polls = rocket_route_cache::__private::epoch_polls(cache(&client)) - polls;
    let took = started.elapsed();
    (counters_after - counters, gets_after - gets, polls, took)
}

/// While a poll is recent, a far hit is one get: the epoch is not read with it. Polls read it
/// (one counter read each, one server here), and are sent at their interval, not more often:
/// the polls themselves are bounded by the time the hits took, so a poller that spun would
/// not hide its reads behind its own count. Without polling, each hit reads the epoch.
#[rocket::async_test]
async fn a_far_hit_is_one_operation_while_the_poll_is_recent() {
    const HITS: u64 = 200;
    let interval = Duration::from_millis(1000);
    let (counters, gets, polls, took) = far_hits(interval, HITS).await;
    println!(
        "{HITS} far hits in {took:?}, polling: {counters} counter reads, {gets} gets, \
         {polls} polls"
    );
    // One poll may start at each end of the measured span, and one per interval between.
    let most = took.as_millis() as u64 / interval.as_millis() as u64 + 2;
    assert!(polls <= most, "{polls} polls in {took:?}");
    assert!(
        counters <= polls,
        "{counters} counter reads for {polls} polls"
    );
    assert!(gets >= HITS && gets <= HITS + polls, "{gets} gets");

    let (counters, _, polls, _) = far_hits(Duration::ZERO, HITS).await;
    println!("{HITS} far hits, not polling: {counters} counter reads");
    assert_eq!(polls, 0);
    assert!(counters >= HITS, "each hit read the epoch: {counters}");
}

/// Instances polling at different rates: an invalidation waits for the longest horizon any of
/// them relies on (each server holds it), so the slow poller never serves the dropped version
/// to a request that starts after the invalidation returned.
#[rocket::async_test]
async fn an_invalidation_waits_for_the_slowest_pollers_horizon() {
    let server = MemcachedServer::start();
    let live = Live::default();
    let fast = {
        let mut config = Config::memcached([server.address()]);
        config.epoch_poll = Duration::from_millis(50);
        instance(config, live.clone()).await
    };
    let slow = {
        let mut config = Config::memcached([server.address()]);
        config.epoch_poll = Duration::from_millis(1000);
        config.op_timeout = Duration::from_millis(100);
        instance(config, live.clone()).await
    };
    let slow_horizon = Duration::from_millis(1100);
    assert_eq!(get(&fast, "/live").await, ("MISS".into(), "0".into()));
    polled(&fast).await;
    polled(&slow).await;
    assert_eq!(get(&slow, "/live").await, ("HIT".into(), "0".into()));
    assert_eq!(get(&slow, "/live").await, ("HIT".into(), "0".into()));

    live.0.store(1, Ordering::SeqCst);
    let started = Instant::now();
    cache(&fast)
        .invalidate_tag("live")
        .await
        .expect("confirmed");
    let took = started.elapsed();
    println!("the invalidation returned after {took:?}");
    assert!(took >= slow_horizon, "returned after {took:?}");
    assert_eq!(
        get(&slow, "/live").await.1,
        "1",
        "the slow poller served the old version"
    );
    assert_eq!(get(&fast, "/live").await.1, "1");
}

/// A route whose lookups keep finding nothing (a long tail, each URL requested once) reads its
/// entry with the counters and the lease in one round trip (one get per miss, the lease read),
/// not two; an entry that is there after all is still found, and checked against the counters.
#[rocket::async_test]
async fn a_route_that_keeps_missing_looks_up_in_one_round_trip() {
    let server = MemcachedServer::start();
    let mut config = Config::memcached([server.address()]);
    config.epoch_poll = Duration::from_millis(1000);
    config.near_capacity = 0;
    let client = instance(config, Live::default()).await;
    assert_eq!(get(&client, "/sized/0").await.0, "MISS");
    polled(&client).await;
    let gets = |server: &MemcachedServer| counter_reads_and_gets(server).1;
    let mut gets_per_miss = Vec::new();
    for id in 1..=12 {
        let before = gets(&server);
        assert_eq!(get(&client, &format!("/sized/{id}")).await.0, "MISS");
        gets_per_miss.push(gets(&server) - before);
    }
    println!("gets per miss: {gets_per_miss:?}");
    // After eight misses in a row (/sized/0 to /sized/7: the entry, then the lease read with
    // the counters), the ninth lookup (/sized/8) and every one after it expect a miss: the
    // lease read with the counters and the entry, in one get.
    assert_eq!(
        gets_per_miss,
        [2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1],
        "gets for /sized/1 to /sized/12"
    );

    // Expecting a miss, the route still finds what is there...
    assert_eq!(get(&client, "/sized/3").await.0, "HIT");
    // ...and, after an invalidation, not what it dropped.
    for id in 13..=22 {
        assert_eq!(get(&client, &format!("/sized/{id}")).await.0, "MISS");
    }
    cache(&client)
        .invalidate("/sized/5")
        .await
        .expect("confirmed");
    assert_eq!(get(&client, "/sized/5").await.0, "MISS");
}

/// What `hits` requests of `/live` cost `server` while nothing is invalidated: (gets, counter
/// reads, polls sent, time taken). Every request must be a hit.
async fn hits_cost(
    client: &Client,
    server: &MemcachedServer,
    hits: u64,
) -> (u64, u64, u64, Duration) {
    let polls = rocket_route_cache::__private::epoch_polls(cache(client));
    let (counters, gets) = counter_reads_and_gets(server);
    let started = Instant::now();
    for _ in 0..hits {
        assert_eq!(get(client, "/live").await, ("HIT".into(), "0".into()));
    }
    let took = started.elapsed();
    let (counters_after, gets_after) = counter_reads_and_gets(server);
    let polls = rocket_route_cache::__private::epoch_polls(cache(client)) - polls;
    (gets_after - gets, counters_after - counters, polls, took)
}

/// Invalidations of other tags and paths (each confirmed, so every poll after it has read its
/// record) cost the page nothing: with the near tier, its hits need no Memcached operation at
/// all; without it, each is one get. Only polls reach the server: one get (the horizon) and one
/// counter read (the epoch) each, and polls are sent at their interval, not more often. An
/// invalidation of the page's own tag still drops it.
#[rocket::async_test]
async fn an_unrelated_invalidation_costs_a_near_entry_no_memcached_operation() {
    const HITS: u64 = 50;
    let interval = Duration::from_millis(50);
    for near_capacity in [16 << 20, 0] {
        let server = MemcachedServer::start();
        let mut config = Config::memcached([server.address()]);
        config.epoch_poll = interval;
        config.near_capacity = near_capacity;
        let live = Live::default();
        let client = instance(config, live.clone()).await;
        assert_eq!(get(&client, "/live").await.0, "MISS");
        polled(&client).await;
        for round in 0..4 {
            let unrelated = cache(&client);
            match round % 2 {
                0 => {
                    unrelated
                        .invalidate_tag(&format!("elsewhere-{round}"))
                        .await
                }
                _ => unrelated.invalidate(&format!("/elsewhere/{round}")).await,
            }
            .expect("confirmed");
            let near_hits = cache(&client).stats().near_hits;
            let (gets, counters, polls, took) = hits_cost(&client, &server, HITS).await;
            let near_hits = cache(&client).stats().near_hits - near_hits;
            let expected = if near_capacity == 0 { 0 } else { HITS };
            assert_eq!(near_hits, expected, "hits the near tier answered");
            println!(
                "near_capacity {near_capacity}, after unrelated invalidation {round}: {HITS} hits \
                 in {took:?}, {gets} gets, {counters} counter reads, {polls} polls"
            );
            let per_hit = u64::from(near_capacity == 0);
            assert!(
                gets <= HITS * per_hit + polls,
                "{gets} gets for {HITS} hits and {polls} polls"
            );
            assert!(counters <= polls, "{counters} counter reads, {polls} polls");
            let most = took.as_millis() as u64 / interval.as_millis() as u64 + 2;
            assert!(polls <= most, "{polls} polls in {took:?}");
        }
        live.0.store(1, Ordering::SeqCst);
        cache(&client)
            .invalidate_tag("live")
            .await
            .expect("confirmed");
        assert_eq!(get(&client, "/live").await, ("MISS".into(), "1".into()));
    }
}
