//! The demo as a user runs it: the built example binary, a real HTTP server on 127.0.0.1,
//! configured only by the environment (the global cache, no setup call).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cached_route_suite::{free_port, MemcachedServer};

struct Demo {
    child: Child,
    port: u16,
    banner: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo_binary() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let binary = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("demo");
    assert!(
        binary.exists(),
        "{} is missing: run the whole suite (`cargo test`), which builds the examples",
        binary.display()
    );
    binary
}

/// Starts the demo and waits for its start-up line (read from its output, not a sleep).
fn start(servers: Option<&str>) -> Demo {
    let port = free_port();
    let mut command = Command::new(demo_binary());
    command
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_CLI_COLORS", "false")
        .env_remove("MEMCACHED_SERVERS")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(servers) = servers {
        command.env("MEMCACHED_SERVERS", servers);
    }
    let mut child = command.spawn().expect("demo starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, banner) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("demo: serving") {
                let _ = lines.send(line);
            }
        }
    });
    let banner = banner
        .recv_timeout(Duration::from_secs(30))
        .expect("the demo printed its start-up line");
    Demo {
        child,
        port,
        banner,
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 GET over a fresh connection.
fn get(port: u16, path: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn slow_then_instant(demo: &Demo) {
    let started = Instant::now();
    let first = get(demo.port, "/slow");
    let first_took = started.elapsed();
    assert_eq!((first.status, first.header("X-Cache")), (200, Some("MISS")));
    assert!(
        first_took >= Duration::from_millis(200),
        "the handler ran: {first_took:?}"
    );

    let started = Instant::now();
    let second = get(demo.port, "/slow");
    let second_took = started.elapsed();
    assert_eq!(
        (second.status, second.header("X-Cache")),
        (200, Some("HIT"))
    );
    assert!(second.header("Age").is_some());
    assert_eq!(
        second.body, first.body,
        "the same rendering, from the cache"
    );
    println!("demo /slow: miss {first_took:?}, hit {second_took:?}");

    let index = get(demo.port, "/");
    assert!(
        index.body.contains("X-Cache: HIT"),
        "the index explains the header"
    );
}

#[test]
fn the_demo_runs_on_the_embedded_store_with_no_setup() {
    let demo = start(None);
    assert!(
        demo.banner.contains("embedded in-process store"),
        "{}",
        demo.banner
    );
    slow_then_instant(&demo);
}

#[test]
fn memcached_servers_switches_the_demo_to_memcached() {
    let server = MemcachedServer::start();
    let demo = start(Some(&server.address()));
    assert!(
        demo.banner
            .contains(&format!("memcached at {}", server.address())),
        "{}",
        demo.banner
    );
    slow_then_instant(&demo);
    assert_eq!(server.entry_keys().len(), 1, "the entry is in memcached");

    // A second instance of the app shares the entry: its first request is a hit.
    let other = start(Some(&server.address()));
    let reply = get(other.port, "/slow");
    assert_eq!(reply.header("X-Cache"), Some("HIT"));
}
