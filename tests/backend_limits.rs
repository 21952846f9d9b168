//! What a route or a configuration asks of Memcached that it cannot hold, against a real
//! memcached: a TTL longer than Memcached's expiry can say is stored for as long as it can
//! say, and a store refused for what it asks (not for the server's state) never counts as a
//! server failure, so it cannot switch the cache off for every other route.

mod common;

use std::time::Duration;

use cached_route_suite::MemcachedServer;
use common::{fetch, runs, Runs};
use rocket::local::asynchronous::Client;
use rocket::{get, routes, State};
use rocket_route_cache::metrics::{BreakerState, Refusal};
use rocket_route_cache::{cached_route, Cache, Config};

/// The largest `ttl` the attribute takes: past what the client sends as an expiry.
#[cached_route(ttl = 4294967295)]
#[get("/forever")]
fn forever(runs: &State<Runs>) -> String {
    format!("forever #{}", runs.bump("forever"))
}

/// About 12.7 years: fits the protocol's 32 bits, but ends after 2038-01-19, past memcached's
/// signed 32-bit expiry (it used to store the entry already expired).
#[cached_route(ttl = 400000000)]
#[get("/past-2038")]
fn past_2038(runs: &State<Runs>) -> String {
    format!("past 2038 #{}", runs.bump("past_2038"))
}

/// A short TTL, kept for a stale window whose sum with it does not fit in 32 bits.
#[cached_route(ttl = 60, stale = 4294967295)]
#[get("/long-stale")]
fn long_stale(runs: &State<Runs>) -> String {
    format!("long stale #{}", runs.bump("long_stale"))
}

#[cached_route(ttl = 60, stale_if_error = 4294967295)]
#[get("/long-stale-if-error")]
fn long_stale_if_error(runs: &State<Runs>) -> String {
    format!("long stale if error #{}", runs.bump("long_stale_if_error"))
}

#[cached_route(ttl = 60)]
#[get("/neighbour")]
fn neighbour(runs: &State<Runs>) -> String {
    format!("neighbour #{}", runs.bump("neighbour"))
}

/// 2 MiB: more than memcached's default 1 MiB item size (`-I`).
#[cached_route(ttl = 60)]
#[get("/two-mebibytes?<n>")]
fn two_mebibytes(n: u32, runs: &State<Runs>) -> String {
    runs.bump("two_mebibytes");
    format!("{n:>8}").repeat(2 * 1024 * 1024 / 8)
}

#[cached_route(ttl = 60)]
#[get("/sized/<n>")]
fn sized(n: usize, runs: &State<Runs>) -> String {
    runs.bump("sized");
    "x".repeat(n)
}

async fn client(config: Config) -> Client {
    let routes = routes![
        forever,
        past_2038,
        long_stale,
        long_stale_if_error,
        neighbour,
        two_mebibytes,
        sized
    ];
    let rocket = common::app_with(Cache::new(config).unwrap(), routes);
    Client::untracked(rocket).await.expect("valid rocket")
}

fn route_stats(label: &str) -> rocket_route_cache::metrics::Snapshot {
    let stats = rocket_route_cache::metrics::stats();
    stats
        .routes
        .into_iter()
        .find(|(route, _)| route == label)
        .map(|(_, snapshot)| snapshot)
        .unwrap_or_else(|| panic!("no counters for {label}"))
}

fn breaker(client: &Client) -> BreakerState {
    let cache = client.rocket().state::<Cache>().unwrap();
    cache.servers()[0].breaker
}

/// Regression: `ttl = 4294967295` (or a stale window that overflows the TTL) made the client
/// refuse every store as a usage error, and a TTL ending after 2038-01-19 was stored already
/// expired; either way the route never hit. Now each is stored with the longest expiry
/// memcached accepts and served from it.
#[rocket::async_test]
async fn a_ttl_longer_than_memcached_can_say_is_stored_and_hits() {
    let server = MemcachedServer::start();
    let client = client(Config::memcached([server.address()])).await;
    for (uri, route) in [
        ("/forever", "forever"),
        ("/past-2038", "past_2038"),
        ("/long-stale", "long_stale"),
        ("/long-stale-if-error", "long_stale_if_error"),
    ] {
        assert_eq!(fetch(&client, uri).await.1, "MISS", "{uri}");
        let (seen, state) = fetch(&client, uri).await;
        assert_eq!(state, "HIT", "{uri} was not stored");
        assert!(seen.body.ends_with("#1"), "{uri}: {}", seen.body);
        assert_eq!(runs(&client, route), 1, "{uri}");
    }
    assert_eq!(breaker(&client), BreakerState::Closed);
}

/// Regression: a store memcached refuses for its size (`max_item_size` configured above the
/// server's `-I`) counted as a server failure, so enough of them in a row (under load, the
/// lookups of concurrent misses succeed first and the refused stores follow) opened the
/// server's breaker, and every other route on it became a miss. With `breaker_failures = 1`
/// one is enough to show it. A refused request is a usage error: the breaker stays closed and
/// the neighbour keeps hitting.
#[rocket::async_test]
async fn refused_stores_do_not_open_the_breaker() {
    let server = MemcachedServer::start();
    let mut config = Config::memcached([server.address()]);
    config.max_item_size = 4 * 1024 * 1024;
    config.op_timeout = Duration::from_secs(2);
    config.breaker_failures = 1;
    config.breaker_cooldown = Duration::from_secs(60);
    let client = client(config).await;
    fetch(&client, "/neighbour").await;
    assert_eq!(fetch(&client, "/neighbour").await.1, "HIT");
    for n in 0..3 {
        let (seen, state) = fetch(&client, &format!("/two-mebibytes?n={n}")).await;
        assert_eq!((seen.body.len(), state.as_str()), (2 * 1024 * 1024, "MISS"));
        assert_eq!(
            breaker(&client),
            BreakerState::Closed,
            "after {} refused",
            n + 1
        );
    }
    assert_eq!(
        fetch(&client, "/two-mebibytes?n=0").await.1,
        "MISS",
        "never stored"
    );
    let (seen, state) = fetch(&client, "/neighbour").await;
    assert_eq!(
        (seen.body.as_str(), state.as_str()),
        ("neighbour #1", "HIT")
    );
}

/// Regression: the size limit was checked before the generated `ETag` was added, so a body just
/// under `max_item_size` made a frame over it, which was stored anyway (or, against a server
/// whose item limit is `max_item_size`, refused as a backend error). Now the frame is counted
/// with its `ETag`: the body that fits only without it is refused as too large, counted as a
/// refusal and not as a backend error, and one just small enough with it is stored.
#[rocket::async_test]
async fn the_generated_etag_counts_in_the_size_limit() {
    use rocket_route_cache::__private::bench::StoredResponse;
    let server = MemcachedServer::start();
    let mut config = Config::memcached([server.address()]);
    config.max_item_size = 4096;
    let client = client(config).await;
    let content_type = ("Content-Type", "text/plain; charset=utf-8");
    let etag = ("ETag", "W/\"0123456789abcdef0123456789abcdef\"");
    // The handler sets no `Date` nor `Last-Modified`: the entry keeps the time it was
    // generated, as both, always this long.
    let date = ("Date", "Thu, 01 Jan 1970 00:00:00 GMT");
    let modified = ("Last-Modified", "Thu, 01 Jan 1970 00:00:00 GMT");
    let headers = [content_type, date, modified];
    let without_etag = 4096 - StoredResponse::frame_len(headers.into_iter(), 0);
    let with_etag = 4096 - StoredResponse::frame_len(headers.into_iter().chain([etag]), 0);

    // Just small enough with its `ETag`: stored (this also registers the route's counters).
    assert_eq!(
        fetch(&client, &format!("/sized/{with_etag}")).await.1,
        "MISS"
    );
    assert_eq!(
        fetch(&client, &format!("/sized/{with_etag}")).await.1,
        "HIT"
    );

    let before = route_stats("GET /sized/<n>");
    for _ in 0..2 {
        let (seen, state) = fetch(&client, &format!("/sized/{without_etag}")).await;
        assert_eq!((seen.body.len(), state.as_str()), (without_etag, "MISS"));
    }
    let after = route_stats("GET /sized/<n>");
    assert_eq!(
        after.refused(Refusal::TooLarge) - before.refused(Refusal::TooLarge),
        2
    );
    assert_eq!(after.stores - before.stores, 0);
    assert_eq!(after.backend_errors - before.backend_errors, 0);
    assert_eq!(runs(&client, "sized"), 3);
}
