//! A fleet of three real memcached servers on loopback ports, under concurrent load from the
//! test (a few thousand requests, bounded), while one server is killed, paused, restarted, or
//! down from the start. Each test prints what it saw: requests, failures, hits, p99.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use cached_route_suite::{free_port, MemcachedServer};
use common::fetch;
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_route_cache::{metrics::BreakerState, Cache, Config};

const URIS: usize = 60;

fn uris() -> Vec<String> {
    (0..URIS).map(|i| format!("/hello/user{i}")).collect()
}

fn config(addresses: &[String], cooldown: Duration) -> Config {
    let mut config = Config::memcached(addresses.iter().cloned());
    config.op_timeout = Duration::from_millis(100);
    config.breaker_failures = 3;
    config.breaker_cooldown = cooldown;
    // These tests count what each server is asked (its breaker, its deadline): the near tier,
    // which answers recent hits without asking, would hide that for one poll horizon after a
    // fault. tests/near.rs covers the near tier under the same faults.
    config.near_capacity = 0;
    config
}

/// Requests each URI once (a miss that stores it) and says which server took each entry.
async fn warm(client: &Client, servers: &[&MemcachedServer]) -> HashMap<String, usize> {
    let mut owner = HashMap::new();
    for uri in uris() {
        let before: Vec<usize> = servers.iter().map(|s| s.entry_keys().len()).collect();
        let (seen, state) = fetch(client, &uri).await;
        assert_eq!((seen.status, state.as_str()), (Status::Ok, "MISS"));
        for (index, server) in servers.iter().enumerate() {
            if server.entry_keys().len() > before[index] {
                owner.insert(uri.clone(), index);
            }
        }
    }
    owner
}

#[derive(Default, Debug)]
struct Tally {
    requests: usize,
    failures: usize,
    hits: usize,
    latencies: Vec<Duration>,
}

impl Tally {
    fn record(&mut self, status: Status, state: &str, took: Duration) {
        self.requests += 1;
        self.failures += usize::from(status != Status::Ok);
        self.hits += usize::from(state == "HIT");
        self.latencies.push(took);
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    }

    fn report(&self, what: &str) {
        println!(
            "{what}: {} requests, {} failures, {} hits, p99 {:?}, max {:?}",
            self.requests,
            self.failures,
            self.hits,
            self.percentile(0.99),
            self.percentile(1.0)
        );
    }
}

/// `workers` concurrent clients, each sending `per_worker` requests over `uris`; `after` is
/// called with the running count after every request (to inject a fault mid-run).
async fn drive(
    client: &Client,
    uris: &[String],
    workers: usize,
    per_worker: usize,
    tally: &RefCell<Tally>,
    after: &dyn Fn(usize),
) {
    let worker = |id: usize| async move {
        for n in 0..per_worker {
            let uri = &uris[(id * 7 + n) % uris.len()];
            let started = Instant::now();
            let (seen, state) = fetch(client, uri).await;
            let count = {
                let mut tally = tally.borrow_mut();
                tally.record(seen.status, &state, started.elapsed());
                tally.requests
            };
            after(count);
        }
    };
    common::join_all((0..workers).map(worker)).await;
}

struct Fleet {
    servers: Vec<MemcachedServer>,
    client: Client,
    owner: HashMap<String, usize>,
}

async fn fleet(cooldown: Duration) -> Fleet {
    let servers: Vec<MemcachedServer> = (0..3).map(|_| MemcachedServer::start()).collect();
    let addresses: Vec<String> = servers.iter().map(MemcachedServer::address).collect();
    let client = common::client(Cache::new(config(&addresses, cooldown)).unwrap()).await;
    let owner = warm(&client, &servers.iter().collect::<Vec<_>>()).await;
    assert_eq!(owner.len(), URIS, "every entry landed on one server");
    for index in 0..3 {
        let count = owner.values().filter(|o| **o == index).count();
        assert!(count >= 5, "server {index} holds {count} of {URIS} entries");
    }
    Fleet {
        servers,
        client,
        owner,
    }
}

fn breaker_of(client: &Client, server: &MemcachedServer) -> BreakerState {
    let cache = client.rocket().state::<Cache>().unwrap();
    cache
        .servers()
        .into_iter()
        .find(|status| status.address == server.address())
        .map(|status| status.breaker)
        .unwrap()
}

#[rocket::async_test]
async fn killing_one_of_three_mid_run_fails_no_request() {
    let Fleet {
        mut servers,
        client,
        owner,
    } = fleet(Duration::from_secs(30)).await;
    let victim = 1;
    let killed_at = RefCell::new(None::<usize>);
    let tally = RefCell::new(Tally::default());
    let to_kill = RefCell::new(Some(servers.remove(victim)));
    let uris = uris();
    drive(&client, &uris, 16, 150, &tally, &|count| {
        if count == 800 {
            if let Some(mut server) = to_kill.borrow_mut().take() {
                server.stop();
                *killed_at.borrow_mut() = Some(count);
            }
        }
    })
    .await;
    let tally = tally.into_inner();
    tally.report("kill one of three");
    assert_eq!(tally.failures, 0, "a cache outage failed a request");
    assert!(killed_at.borrow().is_some());
    // After the kill, keys on the two survivors keep hitting; the victim's are misses.
    let mut survivors_missed = 0;
    for uri in uris.iter() {
        let (seen, state) = fetch(&client, uri).await;
        assert_eq!(seen.status, Status::Ok);
        if owner[uri] != victim && state != "HIT" {
            survivors_missed += 1;
        }
        if owner[uri] == victim {
            assert_eq!(state, "MISS");
        }
    }
    assert_eq!(
        survivors_missed, 0,
        "keys on the other two servers stopped hitting"
    );
}

#[rocket::async_test]
async fn a_paused_server_costs_one_deadline_then_nothing() {
    let Fleet {
        servers,
        client,
        owner,
    } = fleet(Duration::from_secs(30)).await;
    let victim = 2;
    servers[victim].pause();
    let tally = RefCell::new(Tally::default());
    drive(&client, &uris(), 16, 100, &tally, &|_| {}).await;
    let tally = tally.into_inner();
    tally.report("pause one of three");
    assert_eq!(tally.failures, 0);
    // Deadline 100 ms, handler ~0: no request waits for the client's own 1 s default. The
    // bound is generous on purpose (16 concurrent clients on one test thread, next to other
    // test binaries on two cores: 318 ms was seen once under a 250 ms bound); "one deadline,
    // not two" is measured precisely by `memcached: a_paused_server_costs_at_most_the_deadline`.
    assert!(
        tally.percentile(1.0) < Duration::from_millis(600),
        "a request waited {:?}",
        tally.percentile(1.0)
    );
    assert_eq!(breaker_of(&client, &servers[victim]), BreakerState::Open);

    // With the breaker open, the paused server's keys cost nothing.
    let victim_uris: Vec<String> = uris().into_iter().filter(|u| owner[u] == victim).collect();
    let after = RefCell::new(Tally::default());
    drive(&client, &victim_uris, 4, 50, &after, &|_| {}).await;
    let after = after.into_inner();
    after.report("pause one of three, breaker open, its keys only");
    assert_eq!(after.failures, 0);
    // A request that asked the paused server would wait its whole 100 ms deadline.
    assert!(
        after.percentile(0.99) < Duration::from_millis(100),
        "skipped server still cost {:?}",
        after.percentile(0.99)
    );
    servers[victim].resume();
}

#[rocket::async_test]
async fn a_restarted_server_is_used_again_without_restarting_the_app() {
    let Fleet {
        mut servers,
        client,
        owner,
    } = fleet(Duration::from_millis(500)).await;
    let victim = 0;
    let port = servers[victim].port();
    let victim_uri = uris().into_iter().find(|u| owner[u] == victim).unwrap();
    servers[victim].stop();
    for _ in 0..3 {
        assert_eq!(fetch(&client, &victim_uri).await.0.status, Status::Ok);
    }
    assert_eq!(breaker_of(&client, &servers[victim]), BreakerState::Open);

    servers[victim] = MemcachedServer::start_on(port).expect("the port is free again");
    let restarted = Instant::now();
    // The breaker probes after its cool-down; the first miss after that stores the entry.
    // Nothing signals that from outside: poll with requests, bounded.
    let mut requests = 0;
    let recovered = loop {
        requests += 1;
        let (seen, state) = fetch(&client, &victim_uri).await;
        assert_eq!(seen.status, Status::Ok);
        if state == "HIT" {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "no hit 10 s after the restart"
        );
        rocket::tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("restart: hits resumed {recovered:?} after the restart ({requests} requests)");
    assert!(recovered < Duration::from_secs(5));
    assert_eq!(breaker_of(&client, &servers[victim]), BreakerState::Closed);
}

#[rocket::async_test]
async fn an_app_started_with_one_server_down_serves_and_uses_the_others() {
    let up: Vec<MemcachedServer> = (0..2).map(|_| MemcachedServer::start()).collect();
    let down = format!("127.0.0.1:{}", free_port());
    let addresses = vec![up[0].address(), down.clone(), up[1].address()];
    let client =
        common::client(Cache::new(config(&addresses, Duration::from_secs(30))).unwrap()).await;
    let tally = RefCell::new(Tally::default());
    drive(&client, &uris(), 8, 60, &tally, &|_| {}).await;
    let tally = tally.into_inner();
    tally.report("start with one of three down");
    assert_eq!(tally.failures, 0);
    let stored: usize = up.iter().map(|s| s.entry_keys().len()).sum();
    assert!(stored >= URIS / 3, "the live servers hold {stored} entries");
    assert!(tally.hits > 0, "entries on the live servers are served");
    let cache = client.rocket().state::<Cache>().unwrap();
    let states: Vec<_> = cache
        .servers()
        .into_iter()
        .map(|s| (s.address, s.breaker))
        .collect();
    assert!(states.contains(&(down, BreakerState::Open)), "{states:?}");
}
