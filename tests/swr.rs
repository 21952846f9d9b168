//! Stale while revalidating, over the wire: a real Rocket server on 127.0.0.1 (HTTP/1.1 and
//! cleartext HTTP/2 on one port), with a real memcached or the embedded store. The handler is
//! held on a gate the test opens, so "answered before the refresh finished" is an observed
//! order of events, not a timing.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cached_route_suite::{http1, loopback_config, MemcachedServer, RawReply, RunningApp};
use rocket::response::{self, Responder};
use rocket::tokio::net::TcpStream;
use rocket::tokio::sync::{Notify, Semaphore};
use rocket::tokio::time::timeout;
use rocket::{get, routes, Request, State};
use rocket_route_cache::{cached_route, Cache, Config};

/// Holds every handler run after the first until the test lets it through.
struct Gate {
    runs: AtomicUsize,
    finished: AtomicUsize,
    /// One permit lets one held run finish.
    open: Semaphore,
    /// A held run has started.
    started: Notify,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            runs: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            open: Semaphore::new(0),
            started: Notify::new(),
        }
    }
}

impl Gate {
    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.finished.load(Ordering::SeqCst)
    }
}

/// The page, and how long it stays fresh when shorter than the route's `ttl`.
struct Page(String, Option<u32>);

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = self.0.respond_to(request)?;
        if let Some(max_age) = self.1 {
            response.set_raw_header("Cache-Control", format!("max-age={max_age}"));
        }
        Ok(response)
    }
}

/// Version 1 is fresh for 1 s, every later one for the route's 60 s: the test reaches the
/// stale window soon, and the refreshed entry stays a hit for the rest of the test.
#[cached_route(ttl = 60, stale = 60)]
#[get("/page")]
async fn page(gate: &State<Arc<Gate>>) -> Page {
    versioned(gate).await
}

/// Version 1 fresh for 1 s, the later ones for the route's `ttl`; every run after the first
/// held at the gate.
async fn versioned(gate: &Gate) -> Page {
    let run = gate.runs.fetch_add(1, Ordering::SeqCst) + 1;
    if run > 1 {
        gate.started.notify_one();
        gate.open
            .acquire()
            .await
            .expect("the gate is open")
            .forget();
    }
    gate.finished.fetch_add(1, Ordering::SeqCst);
    Page(format!("version {run}"), (run == 1).then_some(1))
}

/// `/page`, 900 KB: more than an HTTP/2 stream holds before its window opens.
#[cached_route(ttl = 60, stale = 60)]
#[get("/large")]
async fn large(gate: &State<Arc<Gate>>) -> Page {
    let Page(body, max_age) = versioned(gate).await;
    Page(format!("{body}\n{}", "x".repeat(900_000)), max_age)
}

async fn launch(cache: Cache, memcached: MemcachedServer, gate: &Arc<Gate>) -> RunningApp {
    let app = rocket::custom(loopback_config())
        .manage(cache)
        .manage(Arc::clone(gate))
        .mount("/", routes![page, large]);
    cached_route_suite::launch(app, memcached).await
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls the clock until the entry stored at or before `stored_by` (whole seconds) is past its
/// 1 s TTL: the expiry is a time, not an event.
async fn until_expired(stored_by: u64) {
    while unix_now() < stored_by + 1 {
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a held run to start, for at most 10 s.
async fn held(started: &Notify) {
    timeout(Duration::from_secs(10), started.notified())
        .await
        .expect("a refresh started");
}

async fn get(port: u16) -> RawReply {
    http1(port, "GET /page HTTP/1.1\r\nHost: localhost").await
}

/// Requests until the refresh's entry is served: a store is not an event the test can await,
/// so each try is a real request, bounded in count and time.
async fn until_refreshed(port: u16) -> RawReply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(port).await;
        if reply.x_cache() == "HIT" || Instant::now() > deadline {
            return reply;
        }
        rocket::tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Caches version 1 and waits until it is stale; returns when that was.
async fn cached_then_stale(port: u16) {
    let first = get(port).await;
    assert_eq!(
        (first.x_cache(), first.body.as_str()),
        ("MISS", "version 1")
    );
    until_expired(unix_now()).await;
}

/// (1) The request that finds the stale entry is answered with it while the refresh it started
/// is still held; (2) concurrent stale requests start no other run; (3) once the refresh ends,
/// the next request is a fresh hit with the new body.
async fn stale_answers_at_once(port: u16, gate: &Gate) {
    cached_then_stale(port).await;
    let started = Instant::now();
    let stale = get(port).await;
    let stale_latency = started.elapsed();
    assert_eq!(
        (stale.x_cache(), stale.body.as_str()),
        ("STALE", "version 1")
    );
    assert_eq!(stale.one("Content-Length"), Some("9"));
    held(&gate.started).await;
    assert_eq!(
        (gate.runs(), gate.finished()),
        (2, 1),
        "answered while the refresh is held"
    );
    let others = common::join_all((0..8).map(|_| get(port))).await;
    assert!(others
        .iter()
        .all(|r| r.x_cache() == "STALE" && r.body == "version 1"));
    assert_eq!(gate.runs(), 2, "one refresh for every stale request");
    gate.open.add_permits(1);
    let refreshed = until_refreshed(port).await;
    assert_eq!(
        (refreshed.x_cache(), refreshed.body.as_str()),
        ("HIT", "version 2")
    );
    assert_eq!(gate.runs(), 2);
    let mut hits = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(get(port).await.x_cache(), "HIT");
        hits.push(started.elapsed());
    }
    hits.sort();
    println!(
        "latency over loopback, a new connection each: the stale reply {stale_latency:?} \
         (its refresh held), hits median {:?}, max {:?} (20)",
        hits[hits.len() / 2],
        hits[hits.len() - 1]
    );
}

#[rocket::async_test]
async fn memcached_the_stale_request_is_answered_while_the_refresh_runs() {
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let gate = Arc::new(Gate::default());
    let app = launch(cache, memcached, &gate).await;
    stale_answers_at_once(app.port, &gate).await;
}

#[rocket::async_test]
async fn embedded_the_stale_request_is_answered_while_the_refresh_runs() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let gate = Arc::new(Gate::default());
    // The app's memcached is unused here; the launcher owns one for every app.
    let app = launch(cache, MemcachedServer::start(), &gate).await;
    stale_answers_at_once(app.port, &gate).await;
}

/// (5) Rocket answers HEAD by running the GET route with the method changed to GET, then drops
/// the body unread: the HEAD request is answered stale at once and cannot refresh (the refresh
/// is the body's tail); the leases it took go back, and a later GET refreshes.
#[rocket::async_test]
async fn head_is_answered_stale_at_once_and_a_later_get_refreshes() {
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let gate = Arc::new(Gate::default());
    let app = launch(cache, memcached, &gate).await;
    cached_then_stale(app.port).await;
    let head = http1(app.port, "HEAD /page HTTP/1.1\r\nHost: localhost").await;
    assert_eq!(
        (head.status, head.x_cache(), head.body.as_str()),
        (200, "STALE", "")
    );
    assert_eq!(head.one("Content-Length"), Some("9"));
    assert_eq!(gate.runs(), 1, "the HEAD reply did not wait for a refresh");
    // The HEAD request's lease is given back from a task: GETs until one takes it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gate.runs() < 2 && Instant::now() < deadline {
        assert_eq!(get(app.port).await.x_cache(), "STALE");
    }
    held(&gate.started).await;
    gate.open.add_permits(1);
    let next = until_refreshed(app.port).await;
    assert_eq!((next.x_cache(), next.body.as_str()), ("HIT", "version 2"));
    assert_eq!(gate.runs(), 2);
}

/// (4) HTTP/2: the stale bytes arrive while the refresh is held, but the stream ends only when
/// the body does, after the refresh. This records that limit.
#[rocket::async_test]
async fn http2_gets_the_bytes_at_once_and_the_end_after_the_refresh() {
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let gate = Arc::new(Gate::default());
    let app = launch(cache, memcached, &gate).await;
    cached_then_stale(app.port).await;
    let tcp = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.expect("an h2 handshake");
    let driver = rocket::tokio::spawn(connection);
    let request = rocket::http::hyper::Request::builder()
        .uri("http://localhost/page")
        .header("host", "localhost")
        .body(())
        .unwrap();
    let mut client = client.ready().await.unwrap();
    let started = Instant::now();
    let (response, _) = client.send_request(request, true).expect("request sent");
    let response = timeout(Duration::from_secs(10), response)
        .await
        .expect("the server answered")
        .expect("an h2 response");
    assert_eq!(response.headers()["x-cache"], "STALE");
    assert_eq!(response.headers()["content-length"], "9");
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < 9 {
        let chunk = timeout(Duration::from_secs(10), body.data())
            .await
            .expect("the bytes came")
            .expect("more data")
            .expect("a chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let bytes_after = started.elapsed();
    assert_eq!(bytes, b"version 1");
    held(&gate.started).await;
    assert_eq!(
        (gate.runs(), gate.finished()),
        (2, 1),
        "the bytes came first"
    );
    assert!(!body.is_end_stream(), "END_STREAM waits for the refresh");
    gate.open.add_permits(1);
    let mut rest = Vec::new();
    while let Some(chunk) = timeout(Duration::from_secs(10), body.data())
        .await
        .expect("the stream ends after the refresh")
    {
        rest.extend_from_slice(&chunk.expect("a chunk"));
    }
    let ended_after = started.elapsed();
    assert!(rest.is_empty(), "nothing after the stored bytes");
    println!(
        "HTTP/2: the stale bytes after {bytes_after:?}, END_STREAM after {ended_after:?} \
         (once the held refresh was let through)"
    );
    drop(client);
    driver.abort();
    let next = get(app.port).await;
    assert_eq!((next.x_cache(), next.body.as_str()), ("HIT", "version 2"));
}

/// (5) A stalled reader cannot keep a page stale. An HTTP/2 client that opens its stream with a
/// zero flow-control window, and never sends `WINDOW_UPDATE`, is never sent a byte of its stale
/// reply, so the refresh that follows those bytes never starts. Its flight is given up after
/// `lease_wait`: the next request that finds the page stale refreshes it. Before, the stalled
/// stream held the refresh for the whole `stale` window (60 s here), every request STALE.
#[rocket::async_test]
async fn a_stalled_http2_reader_does_not_hold_the_refresh() {
    let memcached = MemcachedServer::start();
    let mut config = Config::memcached([memcached.address()]);
    config.lease_wait = Duration::from_millis(500);
    let cache = Cache::new(config).unwrap();
    let gate = Arc::new(Gate::default());
    // Refreshes are not held here.
    gate.open.add_permits(10);
    let app = launch(cache, memcached, &gate).await;
    let port = app.port;
    let get_large = || http1(port, "GET /large HTTP/1.1\r\nHost: localhost");
    assert_eq!(get_large().await.x_cache(), "MISS");
    until_expired(unix_now()).await;
    let tcp = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, rocket::http::hyper::body::Bytes>(tcp)
        .await
        .expect("an h2 handshake");
    let driver = rocket::tokio::spawn(connection);
    let request = rocket::http::hyper::Request::builder()
        .uri("http://localhost/large")
        .header("host", "localhost")
        .body(())
        .unwrap();
    let mut client = client.ready().await.unwrap();
    let (response, _) = client.send_request(request, true).expect("request sent");
    let response = timeout(Duration::from_secs(10), response)
        .await
        .expect("the headers came: they are not flow-controlled")
        .expect("an h2 response");
    assert_eq!(response.headers()["x-cache"], "STALE");
    let body = response.into_body();
    assert_eq!(
        gate.runs(),
        1,
        "the stalled reply's refresh has not started"
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    let refreshed = loop {
        let reply = get_large().await;
        if reply.x_cache() == "HIT" || Instant::now() > deadline {
            break reply;
        }
        rocket::tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        refreshed.x_cache(),
        "HIT",
        "another request refreshed the page"
    );
    assert!(refreshed.body.starts_with("version 2\n"));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "the flight was held: {waited:?}"
    );
    println!("a stalled HTTP/2 reader held the refresh for {waited:?} (lease_wait 500 ms)");
    assert!(!body.is_end_stream(), "the stalled stream is still open");
    assert_eq!(gate.runs(), 2, "one refresh, not the stalled one's");
    drop(body);
    drop(client);
    driver.abort();
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for Page {}
