//! Leases against real memcached servers, where the lease and the request disagree: a lease
//! `add` that times out is not a lease won.

mod common;

use std::time::Duration;

use cache_runtime::{cached_route, Cache, Config};
use cached_route_suite::MemcachedServer;
use common::{fetch, runs, Runs};
use memcache::exp::{Rendezvous, Router};
use rocket::local::asynchronous::Client;
use rocket::{get, routes, State};

/// Expires at once, then may be served stale for a minute while one request refreshes it.
#[cached_route(ttl = 1, stale = 60)]
#[get("/refreshed/<n>")]
fn refreshed(n: u32, runs: &State<Runs>) -> String {
    format!("refreshed {n} #{}", runs.bump("refreshed"))
}

async fn client(config: Config) -> Client {
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(Runs::default())
    .manage(Cache::new(config).unwrap())
    .mount("/", routes![refreshed]);
    Client::untracked(rocket).await.expect("valid rocket")
}

/// The entry keys `server` holds that are not in `before`.
fn new_keys(server: &MemcachedServer, before: &[String]) -> Vec<String> {
    let mut keys = server.entry_keys();
    keys.retain(|key| !before.contains(key));
    keys
}

/// A URI of `/refreshed/<n>` whose entry landed on one server and whose stale-refresh lease
/// key (the entry key and `~l`) routes to the other, with the index of that other server.
async fn entry_and_lease_apart(client: &Client, servers: &[MemcachedServer; 2]) -> (String, usize) {
    let addresses: Vec<String> = servers.iter().map(|s| s.address()).collect();
    for n in 0..64 {
        let uri = format!("/refreshed/{n}");
        let before: Vec<Vec<String>> = servers.iter().map(|s| s.entry_keys()).collect();
        assert_eq!(fetch(client, &uri).await.1, "MISS");
        for (holder, server) in servers.iter().enumerate() {
            for key in new_keys(server, &before[holder]) {
                let lease = format!("{key}~l");
                let lease_server = Rendezvous::new().route(lease.as_bytes(), &addresses);
                if lease_server != holder {
                    return (uri, lease_server);
                }
            }
        }
    }
    panic!("no entry in 64 had its lease on the other server");
}

/// Regression: when the stale-refresh lease's `add` timed out, the lease was reported won, so
/// the request ran the handler (and, as memcached may still apply the `add`, nobody held what
/// it held). Now a timed-out `add` is not a win: the stale entry is served, the handler does
/// not run. The lease key lives on a server that is paused (`SIGSTOP`) while the entry's
/// server answers.
#[rocket::async_test]
async fn a_lease_add_that_times_out_is_not_won() {
    let servers = [MemcachedServer::start(), MemcachedServer::start()];
    let mut config = Config::memcached(servers.iter().map(|s| s.address()));
    // The deadline alone: the breaker would otherwise skip the paused server after failures.
    config.breaker_failures = u32::MAX;
    let client = client(config).await;
    let (uri, lease_server) = entry_and_lease_apart(&client, &servers).await;
    let runs_before = runs(&client, "refreshed");
    // Past the 1 s TTL (entry ages are whole seconds): expiry is a point in time nothing
    // signals, so the test sleeps.
    rocket::tokio::time::sleep(Duration::from_millis(2100)).await;

    servers[lease_server].pause();
    let (seen, state) = fetch(&client, &uri).await;
    servers[lease_server].resume();
    assert_eq!(
        state, "STALE",
        "a timed-out lease add was taken as won: {}",
        seen.body
    );
    assert_eq!(runs(&client, "refreshed"), runs_before, "the handler ran");
}
