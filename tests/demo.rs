//! The examples as a user runs them: the built example binaries, real HTTP servers on
//! 127.0.0.1, configured only by the environment (the global cache, no setup call).

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

fn example_binary(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let binary = deps
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        binary.exists(),
        "{} is missing: run the whole suite (`cargo test`), which builds the examples",
        binary.display()
    );
    binary
}

/// Starts the demo and waits for its start-up line (read from its output, not a sleep).
fn start(servers: Option<&str>) -> Demo {
    start_example("demo", servers, &[])
}

/// Starts example `name`, which prints `{name}: serving ...` once it listens.
fn start_example(name: &str, servers: Option<&str>, env: &[(&str, &str)]) -> Demo {
    let port = free_port();
    let mut command = Command::new(example_binary(name));
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
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("the example starts");
    let stdout = child.stdout.take().unwrap();
    let (lines, banner) = mpsc::channel();
    let ready = format!("{name}: serving");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with(&ready) {
                let _ = lines.send(line);
            }
        }
    });
    let banner = banner
        .recv_timeout(Duration::from_secs(30))
        .expect("the example printed its start-up line");
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
    exchange(port, "GET", path, "")
}

/// One HTTP/1.1 POST of a urlencoded form over a fresh connection.
fn post(port: u16, path: &str, form: &str) -> Reply {
    exchange(port, "POST", path, form)
}

fn exchange(port: u16, method: &str, path: &str, form: &str) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
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

/// The articles example on two instances sharing one memcached: an update on one drops the
/// article's page and the listing on both, through the public functions and the typed one.
#[test]
fn the_articles_example_invalidates_on_every_instance() {
    let server = MemcachedServer::start();
    // The articles' shared "database": a directory both instances read and write.
    let dir = std::env::temp_dir().join(format!("articles-test-{}", free_port()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = [("ARTICLES_DIR", dir.to_str().unwrap())];
    let one = start_example("articles", Some(&server.address()), &env);
    let two = start_example("articles", Some(&server.address()), &env);
    assert!(
        one.banner.contains("namespace `articles-"),
        "{}",
        one.banner
    );
    let state = |reply: &Reply| reply.header("X-Cache").unwrap_or("").to_owned();

    for path in ["/", "/articles/1", "/articles/1/print", "/articles/2"] {
        assert_eq!(state(&get(one.port, path)), "MISS", "{path}");
        assert_eq!(state(&get(two.port, path)), "HIT", "{path}");
    }

    let updated = post(one.port, "/articles/1", "title=Renamed+on+one");
    assert_eq!(
        (updated.status, updated.header("Location")),
        (303, Some("/articles/1"))
    );

    // Instance two renders the new title at its next request; article 2 keeps its entry.
    let page = get(two.port, "/articles/1");
    assert_eq!(state(&page), "MISS");
    assert!(page.body.contains("Renamed on one"), "{}", page.body);
    let print = get(two.port, "/articles/1/print");
    assert_eq!(state(&print), "MISS");
    assert!(print.body.contains("Renamed on one"), "{}", print.body);
    let listing = get(two.port, "/");
    assert_eq!(state(&listing), "MISS");
    assert!(listing.body.contains("Renamed on one"), "{}", listing.body);
    assert_eq!(state(&get(two.port, "/articles/2")), "HIT");

    let flushed = post(two.port, "/flush", "");
    assert_eq!(flushed.status, 200);
    assert_eq!(state(&get(one.port, "/articles/2")), "MISS");
    let _ = std::fs::remove_dir_all(&dir);
}
