//! The near tier's memory bound, as the process's resident memory shows it (its own test binary:
//! no other test allocates meanwhile), and as the entries it holds add up (each at least its
//! body). 78 MiB of distinct responses go through a near tier
//! bounded at 8 MiB.

use std::time::Duration;

use cached_route_suite::MemcachedServer;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_route_cache::{cached_route, Cache, Config};

const ENTRIES: u64 = 20_000;
const BODY: usize = 4096;
const CAPACITY: u64 = 8 * 1024 * 1024;

#[cached_route(ttl = 3600)]
#[get("/item/<n>")]
fn item(n: u64) -> String {
    format!("{n:>16}").repeat(BODY / 16)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[rocket::async_test]
async fn the_near_tier_stays_within_its_bound() {
    let server = MemcachedServer::start();
    let mut config = Config::memcached([server.address()]);
    config.near_capacity = CAPACITY;
    config.op_timeout = Duration::from_secs(1);
    let cache = Cache::new(config).unwrap();
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(cache.clone())
    .mount("/", routes![item]);
    let client = Client::untracked(rocket).await.expect("valid rocket");
    // Warm the client, the connections and the allocator: "before" is the app's own baseline.
    for n in 0..200 {
        client
            .get(format!("/item/{}", 1_000_000 + n))
            .dispatch()
            .await;
    }
    let before = rss_kib();
    for n in 0..ENTRIES {
        let response = client.get(format!("/item/{n}")).dispatch().await;
        assert_eq!(response.headers().get_one("X-Cache"), Some("MISS"));
    }
    let grown = rss_kib().saturating_sub(before) * 1024;
    let (entries, bytes) = cache.near_usage().expect("a near tier");
    println!(
        "{} MiB through a near tier of {} MiB: it holds {entries} entries, {bytes} bytes; \
         resident memory grew {} KiB",
        (ENTRIES * BODY as u64) >> 20,
        CAPACITY >> 20,
        grown >> 10
    );
    assert!(bytes <= CAPACITY, "{bytes} bytes held");
    // Not only as the tier weighs them: each entry holds at least its body.
    assert!(
        entries as u64 * BODY as u64 <= CAPACITY,
        "{entries} entries of a {BODY}-byte body each in a tier of {CAPACITY} bytes"
    );
    assert!(entries > 500, "the near tier was used: {entries} entries");
    // Unbounded, the growth would be the 78 MiB that went through it.
    assert!(
        grown < 3 * CAPACITY,
        "resident memory grew {} KiB",
        grown >> 10
    );
}
