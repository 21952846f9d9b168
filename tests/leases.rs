//! Leases against real memcached servers, where the lease and the request disagree: a lease
//! `add` that times out is not a lease won, and a request dropped while its lease read is in
//! flight does not leave the lease held until `lease_ttl`.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cached_route_suite::MemcachedServer;
use common::{fetch, runs, Runs};
use memcache::exp::{Rendezvous, Router};
use rocket::local::asynchronous::Client;
use rocket::tokio::sync::Notify;
use rocket::{get, routes, State};
use rocket_route_cache::{cached_route, Cache, Config};

/// Expires at once, then may be served stale for a minute while one request refreshes it.
#[cached_route(ttl = 1, stale = 60)]
#[get("/refreshed/<n>")]
fn refreshed(n: u32, runs: &State<Runs>) -> String {
    format!("refreshed {n} #{}", runs.bump("refreshed"))
}

#[cached_route(ttl = 60)]
#[get("/leased")]
fn leased(runs: &State<Runs>) -> String {
    format!("leased #{}", runs.bump("leased"))
}

async fn client(config: Config) -> Client {
    let rocket = common::app_with(Cache::new(config).unwrap(), routes![refreshed, leased]);
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

/// Where a [`GatedProxy`] is: waiting for the first lease read, holding memcached's answer to
/// it, or forwarding everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateState {
    Armed,
    Holding,
    Open,
}

#[derive(Debug)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    /// Told when the lease read has been forwarded to memcached.
    lease_read_sent: Notify,
}

/// A TCP proxy on 127.0.0.1 in front of memcached that, from the first lease read
/// (`mg <key> ... N<ttl>`) it forwards, holds memcached's answers until released: the request
/// that sent it can be dropped while the read is in flight, after memcached created the
/// placeholder.
struct GatedProxy {
    address: String,
    gate: Arc<Gate>,
}

impl GatedProxy {
    fn start(upstream: String) -> GatedProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let gate = Arc::new(Gate {
            state: Mutex::new(GateState::Armed),
            changed: Condvar::new(),
            lease_read_sent: Notify::new(),
        });
        let accepting = Arc::clone(&gate);
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let server = TcpStream::connect(&upstream).unwrap();
                let gate = Arc::clone(&accepting);
                let (client_in, server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || to_server(client_in, server_out, &gate));
                let gate = Arc::clone(&accepting);
                std::thread::spawn(move || to_client(server, client, &gate));
            }
        });
        GatedProxy { address, gate }
    }

    fn release(&self) {
        *self.gate.state.lock().unwrap() = GateState::Open;
        self.gate.changed.notify_all();
    }
}

fn is_lease_read(chunk: &[u8]) -> bool {
    chunk.split(|&b| b == b'\n').any(|line| {
        line.starts_with(b"mg ")
            && line
                .split(|&b| b == b' ')
                .skip(2)
                .any(|flag| flag.starts_with(b"N"))
    })
}

/// Forwards requests; the first lease read arms the hold on this connection's answers.
fn to_server(mut client: TcpStream, mut server: TcpStream, gate: &Gate) {
    let mut buffer = [0; 64 * 1024];
    let mut holding_here = false;
    while let Ok(n @ 1..) = client.read(&mut buffer) {
        let mut state = gate.state.lock().unwrap();
        if *state == GateState::Armed && is_lease_read(&buffer[..n]) {
            *state = GateState::Holding;
            holding_here = true;
        }
        drop(state);
        if server.write_all(&buffer[..n]).is_err() {
            break;
        }
        if std::mem::take(&mut holding_here) {
            gate.lease_read_sent.notify_one();
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Forwards answers, except while the gate holds them.
fn to_client(mut server: TcpStream, mut client: TcpStream, gate: &Gate) {
    let mut buffer = [0; 64 * 1024];
    while let Ok(n @ 1..) = server.read(&mut buffer) {
        let mut state = gate.state.lock().unwrap();
        while *state == GateState::Holding {
            state = gate.changed.wait(state).unwrap();
        }
        drop(state);
        if client.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}

/// Waits, up to `limit`, until `done` holds; whether it did.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        rocket::tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// Regression: a request dropped (its client gone) while its lookup's lease read was in flight
/// left the placeholder memcached created for it until `lease_ttl` (5 s), and every other
/// instance that missed the key waited `lease_wait` for an entry that would never come. Now
/// the read completes in a task of its own and the placeholder it won is deleted at once.
#[rocket::async_test]
async fn a_request_dropped_during_its_lease_read_gives_the_lease_back() {
    let server = MemcachedServer::start();
    let proxy = GatedProxy::start(server.address());
    let gated = client(Config::memcached([proxy.address.clone()])).await;
    let direct_config = Config::memcached([server.address()]);
    let lease_wait = direct_config.lease_wait;
    let direct = client(direct_config).await;

    // The request is dropped once its lease read has reached memcached, before the answer.
    rocket::tokio::select! {
        _ = gated.get("/leased").dispatch() => panic!("answered through a held lease read"),
        _ = proxy.gate.lease_read_sent.notified() => {}
    }
    assert!(
        eventually(Duration::from_secs(2), || server.entry_keys().len() == 1).await,
        "memcached created no placeholder: {:?}",
        server.entry_keys()
    );
    proxy.release();
    assert!(
        eventually(Duration::from_secs(2), || server.entry_keys().is_empty()).await,
        "the placeholder is still held: {:?}",
        server.entry_keys()
    );

    // Another instance is not kept waiting for it.
    let started = Instant::now();
    let (seen, state) = fetch(&direct, "/leased").await;
    assert_eq!((seen.body.as_str(), state.as_str()), ("leased #1", "MISS"));
    assert!(
        started.elapsed() < lease_wait,
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        runs(&gated, "leased"),
        0,
        "the dropped request never ran the handler"
    );
}
