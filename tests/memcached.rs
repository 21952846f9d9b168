//! Cached routes on a real `memcached` each test starts on a free loopback port: the same
//! behaviour as on the embedded store, entries really in memcached, and outages that never
//! become failed requests.

mod common;

use std::time::{Duration, Instant};

use cached_route_suite::{free_port, MemcachedServer};
use common::{checks, fetch, runs};
use rocket::http::Status;
use rocket_route_cache::{Cache, Config};

fn cache_for(address: String) -> Cache {
    let mut config = Config::memcached([address]);
    config.max_item_size = 4096;
    Cache::new(config).unwrap()
}

/// The deadline alone, with the circuit breaker out of the way (it has tests of its own in
/// `tests/fleet.rs`), and every hit asking the server (see [`far_only`]).
fn cache_with_deadline(address: String, op_timeout: Duration) -> Cache {
    let mut config = Config::memcached([address]);
    config.op_timeout = op_timeout;
    config.breaker_failures = u32::MAX;
    config.near_capacity = 0;
    Cache::new(config).unwrap()
}

async fn client_for(server: &MemcachedServer) -> rocket::local::asynchronous::Client {
    common::client(cache_for(server.address())).await
}

/// A client whose hits all ask the server: the tests of what the server answers (garbage, a
/// refusal, silence) would otherwise be answered by the near tier for up to one poll horizon
/// after the fault, which is its promise (`tests/near.rs` covers it under the same faults).
async fn far_only(server: &MemcachedServer) -> rocket::local::asynchronous::Client {
    let mut config = Config::memcached([server.address()]);
    config.max_item_size = 4096;
    config.near_capacity = 0;
    common::client(Cache::new(config).unwrap()).await
}

#[rocket::async_test]
async fn miss_then_hit() {
    let server = MemcachedServer::start();
    checks::miss_then_hit(&client_for(&server).await).await;
}

#[rocket::async_test]
async fn handler_shapes() {
    let server = MemcachedServer::start();
    checks::handler_shapes(&client_for(&server).await).await;
}

#[rocket::async_test]
async fn errors_and_redirects_are_not_stored() {
    let server = MemcachedServer::start();
    checks::errors_and_redirects_are_not_stored(&client_for(&server).await).await;
}

#[rocket::async_test]
async fn unsafe_responses_are_not_stored() {
    let server = MemcachedServer::start();
    checks::unsafe_responses_are_not_stored(&client_for(&server).await).await;
}

#[rocket::async_test]
async fn oversized_and_streamed_bodies_pass_through() {
    let server = MemcachedServer::start();
    checks::oversized_and_streamed_bodies_pass_through(&client_for(&server).await).await;
}

#[rocket::async_test]
async fn key_semantics() {
    let server = MemcachedServer::start();
    checks::key_semantics(&client_for(&server).await).await;
}

#[rocket::async_test]
async fn authorization_bypasses() {
    let server = MemcachedServer::start();
    checks::authorization_bypasses(&client_for(&server).await).await;
}

#[rocket::async_test]
async fn entries_expire() {
    let server = MemcachedServer::start();
    checks::entries_expire(&client_for(&server).await).await;
}

/// The entry lives in memcached under `namespace:32-hex`, and a second app instance with its
/// own client is served from it.
#[rocket::async_test]
async fn entries_are_in_memcached_and_shared_between_instances() {
    let server = MemcachedServer::start();
    let one = client_for(&server).await;
    let two = client_for(&server).await;
    assert!(server.entry_keys().is_empty());
    let (first, state) = fetch(&one, "/hello/ann").await;
    assert_eq!(state, "MISS");
    let keys = server.entry_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (namespace, digest) = keys[0].split_once(':').unwrap();
    assert_eq!(namespace, "rc");
    assert!(digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()));

    let (second, state) = fetch(&two, "/hello/ann").await;
    assert_eq!(state, "HIT");
    assert_eq!(second, first);
    assert_eq!(
        runs(&two, "hello"),
        0,
        "the second instance never ran the handler"
    );
}

/// A value under our key that is not our frame (another writer, an old version, corruption)
/// is a miss; the fresh response then replaces it.
#[rocket::async_test]
async fn an_undecodable_entry_is_a_miss_and_is_replaced() {
    let server = MemcachedServer::start();
    let client = far_only(&server).await;
    fetch(&client, "/plain").await;
    let key = server.entry_keys().pop().expect("stored");
    for garbage in [
        &b"not a frame"[..],
        b"RCF\x01\xff",
        b"RCF\x09 from a future version",
    ] {
        server.set_raw(&key, garbage, 60);
        let (seen, state) = fetch(&client, "/plain").await;
        assert_eq!(
            (seen.status, seen.body.as_str(), state.as_str()),
            (Status::Ok, "plain text", "MISS")
        );
        assert_eq!(
            fetch(&client, "/plain").await.1,
            "HIT",
            "the garbage was replaced"
        );
    }
    assert_eq!(runs(&client, "plain"), 4);
}

/// Memcached killed mid-run: every request is still answered, by the handler.
#[rocket::async_test]
async fn a_stopped_server_is_a_miss_not_an_error() {
    let mut server = MemcachedServer::start();
    let client = far_only(&server).await;
    fetch(&client, "/plain").await;
    assert_eq!(fetch(&client, "/plain").await.1, "HIT");
    server.stop();
    // A stopped server refuses at once; what a silent one costs is the paused-server test's.
    for _ in 0..5 {
        let (seen, state) = fetch(&client, "/plain").await;
        assert_eq!(
            (seen.status, seen.body.as_str(), state.as_str()),
            (Status::Ok, "plain text", "MISS")
        );
    }
    assert_eq!(runs(&client, "plain"), 6);
}

/// Nothing ever listened on the configured port.
#[rocket::async_test]
async fn an_unreachable_server_is_a_miss_not_an_error() {
    let client = common::client(cache_for(format!("127.0.0.1:{}", free_port()))).await;
    for run in 1..=3 {
        let (seen, state) = fetch(&client, "/hello/ann").await;
        assert_eq!((seen.status, state.as_str()), (Status::Ok, "MISS"));
        assert_eq!(seen.body, format!("hello ann #{run}"));
    }
}

/// `kill -STOP`: the server accepts connections and never answers. Each request waits one
/// operation deadline (the lookup; nothing is stored after a failed lookup, so not two), and
/// the cache recovers when the server does. The deadline is 250 ms here so that "one, not
/// two" stays measurable on a loaded machine.
#[rocket::async_test]
async fn a_paused_server_costs_at_most_the_deadline() {
    let server = MemcachedServer::start();
    let deadline = Duration::from_millis(250);
    let client = common::client(cache_with_deadline(server.address(), deadline)).await;
    fetch(&client, "/plain").await;
    assert_eq!(fetch(&client, "/plain").await.1, "HIT");

    server.pause();
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let (seen, state) = fetch(&client, "/plain").await;
        slowest = slowest.max(started.elapsed());
        assert_eq!(
            (seen.status, seen.body.as_str(), state.as_str()),
            (Status::Ok, "plain text", "MISS")
        );
    }
    println!("paused server: slowest of 5 sequential requests {slowest:?} (deadline {deadline:?})");
    assert!(
        slowest >= deadline - Duration::from_millis(10),
        "the deadline did not bound the wait: {slowest:?}"
    );
    assert!(
        slowest < deadline * 2,
        "a request waited {slowest:?}: more than one deadline"
    );

    // Concurrent requests each wait on their own deadline, not in a queue.
    let started = Instant::now();
    let requests = (0..20).map(|_| fetch(&client, "/plain"));
    let answers = common::join_all(requests).await;
    assert!(answers.iter().all(|(seen, _)| seen.status == Status::Ok));
    println!(
        "paused server: 20 concurrent requests took {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < deadline * 2,
        "20 concurrent requests took {:?}",
        started.elapsed()
    );

    server.resume();
    fetch(&client, "/plain").await;
    assert_eq!(
        fetch(&client, "/plain").await.1,
        "HIT",
        "the cache works again after the pause"
    );
}

/// Cache I/O yields to the executor: while a cached request waits on a paused server, an
/// uncached request on the same (single-worker) runtime completes first.
#[rocket::async_test]
async fn waiting_on_the_cache_does_not_block_the_executor() {
    let server = MemcachedServer::start();
    let client = client_for(&server).await;
    server.pause();
    let cached = client.get("/plain").dispatch();
    let uncached = client.get("/ping").dispatch();
    rocket::tokio::pin!(cached, uncached);
    let first = rocket::tokio::select! {
        biased;
        _ = &mut cached => "cached",
        _ = &mut uncached => "uncached",
    };
    assert_eq!(first, "uncached");
    assert_eq!(cached.await.status(), Status::Ok);
    server.resume();
}

/// Regression: the store's share of the deadline once included the handler's own run time,
/// so a handler slower than `op_timeout` was never stored.
#[rocket::async_test]
async fn a_handler_slower_than_the_deadline_is_still_stored() {
    let server = MemcachedServer::start();
    let client = client_for(&server).await;
    assert_eq!(fetch(&client, "/slow").await.1, "MISS");
    let (seen, state) = fetch(&client, "/slow").await;
    assert_eq!((seen.body.as_str(), state.as_str()), ("slow #1", "HIT"));
}

/// Requests built to break the key reach memcached only as `rc:` and 32 hex digits, never
/// share an entry with each other, and leave an unrelated entry intact (no protocol injection).
#[rocket::async_test]
async fn hostile_requests_never_reach_the_wire_unhashed() {
    let server = MemcachedServer::start();
    let client = client_for(&server).await;
    server.set_raw("sentinel", b"untouched", 300);
    let long_path = format!("/any/{}", "a".repeat(8 * 1024));
    let many_params = format!(
        "/any/q?{}",
        (0..10_000)
            .map(|i| format!("p{i}={i}"))
            .collect::<Vec<_>>()
            .join("&")
    );
    let uris = [
        long_path.as_str(),
        "/any/a%0d%0aset%20sentinel%200%200%201%0d%0ax",
        "/any/a%0d%0adelete%20sentinel",
        "/any/nul%00byte?x=%00",
        "/any/with%20spaces?q=a%20b+c",
        "/any/%ff%fe%fd?bad=%c3%28",
        "/any/q?key=a%0d%0aflush_all",
        "/any/v?v[1]=a&v[0]=b",
        "/any/v?v[0]=b&v[1]=a",
        many_params.as_str(),
    ];
    for uri in uris {
        let (first, state) = fetch(&client, uri).await;
        assert_eq!(
            (first.status, state.as_str()),
            (Status::Ok, "MISS"),
            "{:.80}",
            uri
        );
        let (second, state) = fetch(&client, uri).await;
        assert_eq!(state, "HIT", "{:.80}", uri);
        assert_eq!(second.body, first.body);
    }
    assert_eq!(
        runs(&client, "any"),
        uris.len(),
        "no two hostile requests shared an entry"
    );
    let keys = server.entry_keys();
    assert_eq!(keys.len(), uris.len() + 1);
    common::assert_wire_is_clean(&server, b"untouched");
}
