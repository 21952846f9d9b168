//! Support for the workspace's integration tests and examples: a real `memcached` each test
//! starts on a free loopback port, can pause, resume or kill, and stops on drop; a few raw
//! protocol calls to look behind the cache's back; and a Rocket app served on 127.0.0.1 for the
//! tests that speak to it over the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `memcached` process owned by a test.
#[derive(Debug)]
pub struct MemcachedServer {
    child: Option<Child>,
    addr: SocketAddr,
}

impl MemcachedServer {
    /// Starts `memcached` on a free port of 127.0.0.1 and waits until it accepts connections.
    ///
    /// # Panics
    /// When `memcached` is not installed (the README's test command installs it) or does not
    /// come up within 10 seconds.
    pub fn start() -> MemcachedServer {
        for _ in 0..5 {
            let port = free_port();
            if let Some(server) = MemcachedServer::start_on(port) {
                return server;
            }
        }
        panic!("memcached did not start on a free loopback port after 5 attempts");
    }

    /// Starts on `port`; `None` when the process exits at once (the port was taken meanwhile).
    pub fn start_on(port: u16) -> Option<MemcachedServer> {
        let child = Command::new("memcached")
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-m",
                "64",
                "-t",
                "2",
            ])
            // Ignored unless running as root, where memcached refuses to start without it.
            .args(["-u", "root"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run `memcached` ({error}); the README's test command installs it")
            });
        let mut server = MemcachedServer {
            child: Some(child),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_ok() {
                return Some(server);
            }
            let exited = server
                .child
                .as_mut()
                .map(|c| c.try_wait().ok().flatten().is_some());
            if exited == Some(true) {
                server.child = None;
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "memcached on port {port} did not come up in 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `127.0.0.1:PORT`, as `MEMCACHED_SERVERS` and `Config::memcached` take it.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("server is running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Freezes the server (`SIGSTOP`): connections are accepted by the kernel, never answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Undoes [`pause`](Self::pause).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kills the server and waits for it to exit; its port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn connect(&self) -> TcpStream {
        let stream =
            TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        stream
    }

    /// Stores raw bytes under `key` with the classic text protocol, bypassing the cache.
    pub fn set_raw(&self, key: &str, value: &[u8], ttl: u32) {
        let mut stream = self.connect();
        write!(stream, "set {key} 0 {ttl} {}\r\n", value.len()).unwrap();
        stream.write_all(value).unwrap();
        stream.write_all(b"\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        assert_eq!(line, "STORED\r\n", "raw set of {key}");
    }

    /// Every key but the cache's invalidation counters (`{namespace}:g:...`) and the horizon
    /// of its epoch polls (`{namespace}:h@...`): the entries, and whatever a test stored itself.
    pub fn entry_keys(&self) -> Vec<String> {
        self.keys()
            .into_iter()
            .filter(|key| {
                !key.split_once(':')
                    .is_some_and(|(_, rest)| rest.starts_with("g:") || rest.starts_with("h@"))
            })
            .collect()
    }

    /// Deletes `key` (as an eviction would); whether it was there.
    pub fn delete_raw(&self, key: &str) -> bool {
        let mut stream = self.connect();
        write!(stream, "delete {key}\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        line == "DELETED\r\n"
    }

    /// Reads the raw bytes under `key`.
    pub fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        let mut stream = self.connect();
        write!(stream, "get {key}\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header == "END\r\n" {
            return None;
        }
        let len: usize = header
            .trim_end()
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected reply {header:?}"));
        let mut value = vec![0; len + 2];
        reader.read_exact(&mut value).unwrap();
        value.truncate(len);
        Some(value)
    }

    /// Every key the server holds (memcached's `lru_crawler metadump`), with its value size.
    ///
    /// A crawl is not a snapshot: an item that memcached's LRU maintainer is moving between
    /// its segments at that moment can be skipped (seen as an entry missing right after the
    /// request that stored it was answered with a HIT). So the crawl is made three times and
    /// the keys of all three are listed, each once, in the order first seen.
    pub fn keys(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut keys = Vec::new();
        for _ in 0..3 {
            for key in self.crawl() {
                if seen.insert(key.clone()) {
                    keys.push(key);
                }
            }
        }
        keys
    }

    /// The server's counters (`stats`), by name: `cmd_get`, `incr_misses`, `incr_hits`...
    pub fn stats(&self) -> std::collections::HashMap<String, u64> {
        let mut stream = self.connect();
        stream.write_all(b"stats\r\n").unwrap();
        let mut stats = std::collections::HashMap::new();
        for line in BufReader::new(stream).lines() {
            let line = line.unwrap();
            if line == "END" {
                break;
            }
            let mut fields = line.split(' ').skip(1);
            if let (Some(name), Some(Ok(value))) = (fields.next(), fields.next().map(str::parse)) {
                stats.insert(name.to_owned(), value);
            }
        }
        stats
    }

    /// One `lru_crawler metadump all`.
    fn crawl(&self) -> Vec<String> {
        let mut stream = self.connect();
        stream.write_all(b"lru_crawler metadump all\r\n").unwrap();
        let mut keys = Vec::new();
        for line in BufReader::new(stream).lines() {
            let line = line.unwrap();
            if line == "END" {
                break;
            }
            if let Some(key) = line.strip_prefix("key=") {
                keys.push(percent_decode(key.split(' ').next().unwrap_or("")));
            }
        }
        keys
    }
}

impl Drop for MemcachedServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A paused process still dies from SIGKILL.
            self.stop();
        }
    }
}

/// metadump prints keys URL-encoded.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("bind an ephemeral loopback port")
}

/// Request guards defined outside the crates that use them, as `rocket_db_pools` defines its
/// connection guard: what the compile tests use to show how such a guard is declared shared.
pub mod guards {
    use std::marker::PhantomData;

    use rocket::request::{FromRequest, Outcome, Request};

    /// A pooled connection to the database `D`, generic like `rocket_db_pools::Connection<D>`.
    #[derive(Debug)]
    pub struct Pooled<D>(PhantomData<D>);

    #[rocket::async_trait]
    impl<'r, D: 'static> FromRequest<'r> for Pooled<D> {
        type Error = ();

        async fn from_request(_: &'r Request<'_>) -> Outcome<Pooled<D>, ()> {
            Outcome::Success(Pooled(PhantomData))
        }
    }
}

/// A Rocket app serving on 127.0.0.1 (with the memcached it uses): shut down when dropped.
#[derive(Debug)]
pub struct RunningApp {
    /// The port the OS picked.
    pub port: u16,
    shutdown: rocket::Shutdown,
    _memcached: Option<MemcachedServer>,
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        self.shutdown.clone().notify();
    }
}

/// Rocket's configuration for an app under test: 127.0.0.1, a port the OS picks, no logs.
pub fn loopback_config() -> rocket::Config {
    rocket::Config {
        address: [127, 0, 0, 1].into(),
        port: 0,
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    }
}

/// Launches `app` (built on [`loopback_config`]), which uses `memcached`, and waits for its
/// liftoff (an event, not a sleep).
pub async fn launch(app: rocket::Rocket<rocket::Build>, memcached: MemcachedServer) -> RunningApp {
    let mut running = launch_alone(app).await;
    running._memcached = Some(memcached);
    running
}

/// Launches `app` (built on [`loopback_config`]), which owns no memcached of its own (it uses
/// the embedded store, or another app's), and waits for its liftoff.
pub async fn launch_alone(app: rocket::Rocket<rocket::Build>) -> RunningApp {
    let (ready, lifted) = rocket::tokio::sync::oneshot::channel();
    let ready = std::sync::Mutex::new(Some(ready));
    let app = app.attach(rocket::fairing::AdHoc::on_liftoff(
        "report the port",
        move |rocket| {
            Box::pin(async move {
                let ready = ready.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(ready) = ready {
                    let _ = ready.send((rocket.config().port, rocket.shutdown()));
                }
            })
        },
    ));
    rocket::tokio::spawn(app.launch());
    let (port, shutdown) = rocket::tokio::time::timeout(Duration::from_secs(30), lifted)
        .await
        .expect("the server lifted off")
        .expect("the server reported its port");
    RunningApp {
        port,
        shutdown,
        _memcached: None,
    }
}

/// What came back from one raw HTTP/1.1 exchange: the status, every header line in order
/// (repeated names kept) and the body.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawReply {
    /// Every value of the header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The one value of `name` (panics when there are several).
    pub fn one(&self, name: &str) -> Option<&str> {
        let all = self.all(name);
        assert!(all.len() <= 1, "several {name}: {all:?}");
        all.first().copied()
    }

    /// `X-Cache`, empty when absent.
    pub fn x_cache(&self) -> &str {
        self.one("X-Cache").unwrap_or("")
    }
}

/// Waits until the wall clock shows the next second: for tests of what whole-second HTTP times
/// (`Age`, `Date`, ttl) do as time passes.
pub async fn next_second() {
    let into = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let rest = Duration::from_nanos(u64::from(1_000_000_000 - into));
    rocket::tokio::time::sleep(rest + Duration::from_millis(20)).await;
}

/// One HTTP/1.1 exchange with 127.0.0.1:`port` over a fresh connection: `head` is the request
/// line and headers, without the blank line that ends them. The bytes go out as written, so
/// that a test can send what a client library would refuse to.
pub async fn http1(port: u16, head: &str) -> RawReply {
    let (mut reply, body) = http1_bytes(port, head).await;
    reply.body = String::from_utf8_lossy(&body).into_owned();
    reply
}

/// [`http1`], the body kept as the bytes received (a compressed body is not text); the
/// reply's `body` is empty.
pub async fn http1_bytes(port: u16, head: &str) -> (RawReply, Vec<u8>) {
    use rocket::tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = rocket::tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let request = format!("{head}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    rocket::tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("the server answered")
        .unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect();
    let reply = RawReply {
        status: status.parse().unwrap(),
        headers,
        body: String::new(),
    };
    (reply, raw[end + 4..].to_vec())
}

/// Holds one handler run until the test lets it go: armed, the next run that calls
/// [`pass`](Gate::pass) waits there (and says it arrived); every other run passes at once.
/// Managed as Rocket state, it lets a test show what other requests do while one is held.
#[derive(Debug, Default, Clone)]
pub struct Gate(std::sync::Arc<std::sync::Mutex<Option<Armed>>>);

type Armed = (
    rocket::tokio::sync::oneshot::Sender<()>,
    rocket::tokio::sync::oneshot::Receiver<()>,
);

/// The run a [`Gate`] holds, seen from the test.
#[derive(Debug)]
pub struct Held {
    entered: rocket::tokio::sync::oneshot::Receiver<()>,
    release: rocket::tokio::sync::oneshot::Sender<()>,
}

impl Held {
    /// Waits until a run is held at the gate (at most 10 s).
    pub async fn entered(&mut self) {
        rocket::tokio::time::timeout(Duration::from_secs(10), &mut self.entered)
            .await
            .expect("a run reached the gate")
            .expect("the gate is still armed");
    }

    /// Lets the held run go on.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

impl Gate {
    /// Arms the gate for the next run.
    pub fn arm(&self) -> Held {
        let (entered_tx, entered) = rocket::tokio::sync::oneshot::channel();
        let (release, release_rx) = rocket::tokio::sync::oneshot::channel();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((entered_tx, release_rx));
        Held { entered, release }
    }

    /// Called by a handler: held while the gate is armed for it, else returns at once.
    pub async fn pass(&self) {
        let armed = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((entered, release)) = armed {
            let _ = entered.send(());
            let _ = release.await;
        }
    }
}

/// The README's examples, compiled as doc tests: the quick start must build as written.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub mod readme {}
