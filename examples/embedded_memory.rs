//! Memory check for the embedded store (`scripts/bench` runs it): 100,000 distinct 2 KiB
//! responses go through a real cached route (Rocket's local client), into a store bounded at
//! 64 MiB. Prints one JSON line: RSS before and after, and what the store holds.

use rocket::local::blocking::Client;
use rocket::{get, routes};
use rocket_route_cache::{cached_route, Cache, Config};

const ENTRIES: u64 = 100_000;
const CAPACITY: u64 = 64 * 1024 * 1024;

#[cached_route(ttl = 3600)]
#[get("/item/<n>")]
fn item(n: u64) -> String {
    format!("{n:>16}").repeat(128)
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let mut config = Config::embedded();
    config.embedded_capacity = CAPACITY;
    let cache = Cache::new(config).expect("valid configuration");
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::release_default()
    })
    .manage(cache.clone())
    .mount("/", routes![item]);
    let client = Client::untracked(rocket).expect("valid rocket");
    // Warm the client and allocator so "before" is the app's own baseline.
    for n in 0..100 {
        client.get(format!("/item/{}", 1_000_000 + n)).dispatch();
    }
    let before = rss_kib("VmRSS:");
    for n in 0..ENTRIES {
        let response = client.get(format!("/item/{n}")).dispatch();
        assert_eq!(response.headers().get_one("X-Cache"), Some("MISS"));
    }
    let after = rss_kib("VmRSS:");
    let (entries, bytes) = cache.embedded_usage().expect("embedded store");
    println!(
        "{{\"inserted\": {ENTRIES}, \"capacity_bytes\": {CAPACITY}, \"held_entries\": {entries}, \
         \"held_bytes\": {bytes}, \"rss_before_kib\": {before}, \"rss_after_kib\": {after}, \
         \"rss_peak_kib\": {}}}",
        rss_kib("VmHWM:")
    );
    assert!(bytes <= CAPACITY, "the store exceeded its bound");
}
