//! Where the cache's configuration comes from, and what wins: `Rocket.toml`, `ROCKET_CACHE`,
//! `MEMCACHED_SERVERS`, `enabled = false`, and the global cache meeting the fairing's.
//!
//! The environment and the global cache are process-wide: a test that sets variables or uses
//! the global cache runs its half in a child process of this binary (an ignored test named
//! `child_*`, run with `--ignored --exact`), where nothing else of this binary runs. The other
//! tests build their figment in code and never touch the global cache themselves.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use cached_route_suite::MemcachedServer;
use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::{get, routes, Build, Rocket};
use rocket_route_cache::{cached_route, Cache, CacheFairing};

static PAGE_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached_route(ttl = 60)]
#[get("/page")]
fn page() -> String {
    let run = PAGE_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("page, run {run}")
}

/// `enabled_false_applies_per_profile`'s own: no other test runs it, so its count is that
/// test's alone.
static PROFILED_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached_route(ttl = 60)]
#[get("/profiled")]
fn profiled() -> String {
    let run = PROFILED_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("profiled, run {run}")
}

/// `two_instances_with_their_own_fairings_keep_their_own_counters`' own routes: a route counts
/// per cache instance in a few slots (more instances share the last one), so these are mounted
/// by that test's two instances and by nothing else, however many caches other tests create.
#[cached_route(ttl = 60)]
#[get("/pair")]
fn pair() -> &'static str {
    "served by both"
}

#[cached_route(ttl = 60)]
#[get("/pair/first-only")]
fn first_only() -> &'static str {
    "served by the first"
}

fn x_cache(response: &LocalResponse<'_>) -> String {
    response
        .headers()
        .get_one("X-Cache")
        .unwrap_or("")
        .to_owned()
}

/// Two GETs of `/page`: their `X-Cache` values, and how many times the handler ran for them.
async fn twice(client: &Client) -> (String, String, usize) {
    twice_at(client, "/page", &PAGE_RUNS).await
}

/// Two GETs of `path`: their `X-Cache` values, and how many times its handler ran for them
/// (`runs` counts them).
async fn twice_at(client: &Client, path: &str, runs: &AtomicUsize) -> (String, String, usize) {
    let before = runs.load(Ordering::SeqCst);
    let first = client.get(path.to_owned()).dispatch().await;
    let first = x_cache(&first);
    let second = client.get(path.to_owned()).dispatch().await;
    let second = x_cache(&second);
    (first, second, runs.load(Ordering::SeqCst) - before)
}

/// Runs the ignored test `name` of this binary alone in a child process, with `env` added to
/// the environment, and checks that it passed.
fn in_child(name: &str, env: &[(&str, String)]) -> Output {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_remove("MEMCACHED_SERVERS")
        .env_remove("ROCKET_CACHE")
        .env_remove("ROCKET_PROFILE")
        .env("ROCKET_CLI_COLORS", "false");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} failed in its child process:\n{stdout}\n{stderr}"
    );
    output
}

/// A `Rocket.toml` for one child, removed when dropped.
struct RocketToml(PathBuf);

impl RocketToml {
    fn new(name: &str, text: &str) -> RocketToml {
        let path = std::env::temp_dir().join(format!("{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        RocketToml(path)
    }

    fn env(&self) -> (&'static str, String) {
        ("ROCKET_CONFIG", self.0.display().to_string())
    }
}

impl Drop for RocketToml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a Rocket app does: `rocket::build()`, configured by `Rocket.toml` and `ROCKET_*`.
async fn built_app() -> Client {
    let app = rocket::build()
        .attach(CacheFairing)
        .mount("/", routes![page]);
    Client::untracked(app).await.expect("ignites")
}

fn servers_of(client: &Client) -> Vec<String> {
    client
        .rocket()
        .state::<Cache>()
        .unwrap()
        .config()
        .servers
        .clone()
}

#[test]
fn memcached_servers_override_rocket_toml() {
    let (file, environment) = (MemcachedServer::start(), MemcachedServer::start());
    let toml = RocketToml::new(
        "memcached_servers_override",
        &format!("[default.cache]\nservers = [\"{}\"]\n", file.address()),
    );
    in_child(
        "child_serves_from_the_environments_servers",
        &[toml.env(), ("MEMCACHED_SERVERS", environment.address())],
    );
    assert_eq!(
        environment.entry_keys().len(),
        1,
        "stored in MEMCACHED_SERVERS"
    );
    assert!(
        file.entry_keys().is_empty(),
        "nothing in Rocket.toml's server"
    );
}

#[rocket::async_test]
#[ignore = "run by its parent test in a child process"]
async fn child_serves_from_the_environments_servers() {
    let client = built_app().await;
    let expected = std::env::var("MEMCACHED_SERVERS").unwrap();
    assert_eq!(servers_of(&client), [expected]);
    let (first, second, runs) = twice(&client).await;
    assert_eq!((first.as_str(), second.as_str(), runs), ("MISS", "HIT", 1));
}

#[test]
fn rocket_cache_overrides_rocket_toml_and_memcached_servers() {
    let (file, general, specific) = (
        MemcachedServer::start(),
        MemcachedServer::start(),
        MemcachedServer::start(),
    );
    let toml = RocketToml::new(
        "rocket_cache_overrides",
        &format!(
            "[default.cache]\nservers = [\"{}\"]\nnamespace = \"from-file\"\nop_timeout = \"80ms\"\n",
            file.address()
        ),
    );
    let rocket_cache = format!(
        "{{servers=[\"{}\"],namespace=\"from-env\"}}",
        specific.address()
    );
    in_child(
        "child_serves_from_rocket_caches_servers",
        &[
            toml.env(),
            ("MEMCACHED_SERVERS", general.address()),
            ("ROCKET_CACHE", rocket_cache),
        ],
    );
    let keys = specific.entry_keys();
    assert!(
        keys.len() == 1 && keys[0].starts_with("from-env:"),
        "{keys:?}"
    );
    assert!(file.entry_keys().is_empty() && general.entry_keys().is_empty());
}

#[rocket::async_test]
#[ignore = "run by its parent test in a child process"]
async fn child_serves_from_rocket_caches_servers() {
    let client = built_app().await;
    let config = client.rocket().state::<Cache>().unwrap().config().clone();
    // The keys ROCKET_CACHE does not name keep the file's values.
    assert_eq!(config.op_timeout, std::time::Duration::from_millis(80));
    assert_eq!(config.namespace, "from-env");
    let (first, second, _) = twice(&client).await;
    assert_eq!((first.as_str(), second.as_str()), ("MISS", "HIT"));
}

#[test]
fn enabled_false_in_rocket_cache_passes_every_request_through() {
    let server = MemcachedServer::start();
    let toml = RocketToml::new(
        "enabled_false_env",
        &format!("[default.cache]\nservers = [\"{}\"]\n", server.address()),
    );
    in_child(
        "child_runs_the_handler_every_time",
        &[toml.env(), ("ROCKET_CACHE", "{enabled=false}".into())],
    );
    let stats = server.stats();
    assert_eq!(
        (stats["cmd_get"], stats["cmd_set"], stats["curr_items"]),
        (0, 0, 0),
        "nothing read or stored"
    );
}

#[rocket::async_test]
#[ignore = "run by its parent test in a child process"]
async fn child_runs_the_handler_every_time() {
    let client = built_app().await;
    let (first, second, runs) = twice(&client).await;
    assert_eq!(
        (first.as_str(), second.as_str(), runs),
        ("BYPASS", "BYPASS", 2)
    );
    let counted = client.rocket().state::<Cache>().unwrap().stats();
    assert_eq!((counted.bypasses, counted.lookups), (2, 0));
}

/// An app reading `toml` as its `Rocket.toml`, in `profile`, serving `/page` and the metrics.
fn app_logging(toml: &str, profile: &str, log_level: &str) -> Rocket<Build> {
    let figment = Figment::from(rocket::Config::debug_default())
        .merge(("log_level", log_level))
        .merge(Toml::string(toml).nested())
        .select(profile);
    rocket::custom(figment)
        .attach(CacheFairing)
        .mount("/", routes![page])
        .mount("/internal", rocket_route_cache::metrics::metrics_routes())
}

#[rocket::async_test]
async fn enabled_false_applies_per_profile() {
    let toml = "[default.cache]\nnamespace = \"profiles\"\n[debug.cache]\nenabled = false\n";
    let app = |profile| app_logging(toml, profile, "off").mount("/", routes![profiled]);
    let debug = Client::untracked(app("debug")).await.unwrap();
    let (first, second, runs) = twice_at(&debug, "/profiled", &PROFILED_RUNS).await;
    assert_eq!(
        (first.as_str(), second.as_str(), runs),
        ("BYPASS", "BYPASS", 2)
    );
    assert_eq!(
        debug.rocket().state::<Cache>().unwrap().embedded_usage(),
        Some((0, 0))
    );
    let release = Client::untracked(app("release")).await.unwrap();
    let (first, second, runs) = twice_at(&release, "/profiled", &PROFILED_RUNS).await;
    assert_eq!((first.as_str(), second.as_str(), runs), ("MISS", "HIT", 1));
}

#[test]
fn a_bad_memcached_servers_is_never_served_from_another_store() {
    let bad = [("MEMCACHED_SERVERS", "not a host".to_owned())];
    let output = in_child("child_without_the_fairing_the_cache_is_disabled", &bad);
    let logged = String::from_utf8_lossy(&output.stdout);
    assert!(
        logged.contains("MEMCACHED_SERVERS") && logged.contains("disabled"),
        "{logged}"
    );
    let output = in_child("child_with_the_fairing_ignite_fails", &bad);
    let logged = String::from_utf8_lossy(&output.stdout);
    assert!(
        logged.contains("invalid cache configuration `MEMCACHED_SERVERS`"),
        "{logged}"
    );
}

#[rocket::async_test]
#[ignore = "run by its parent test in a child process"]
async fn child_without_the_fairing_the_cache_is_disabled() {
    let client = Client::untracked(rocket::build().mount("/", routes![page]))
        .await
        .unwrap();
    let (first, second, runs) = twice(&client).await;
    assert_eq!(
        (first.as_str(), second.as_str(), runs),
        ("BYPASS", "BYPASS", 2)
    );
}

#[rocket::async_test]
#[ignore = "run by its parent test in a child process"]
async fn child_with_the_fairing_ignite_fails() {
    let app = rocket::build()
        .attach(CacheFairing)
        .mount("/", routes![page]);
    match Client::untracked(app).await {
        Err(error) => assert!(matches!(
            error.kind(),
            rocket::error::ErrorKind::FailedFairings(_)
        )),
        Ok(_) => panic!("ignited with MEMCACHED_SERVERS=\"not a host\""),
    }
}

#[test]
fn a_global_cache_in_use_with_another_configuration_fails_ignite() {
    let server = MemcachedServer::start();
    let output = in_child(
        "child_global_in_use_before_the_fairing",
        &[("CACHE_TEST_SERVER", server.address())],
    );
    let logged = String::from_utf8_lossy(&output.stdout);
    assert!(
        logged.contains("global cache is already in use"),
        "{logged}"
    );
}

#[rocket::async_test]
#[ignore = "run by its parent test in a child process"]
async fn child_global_in_use_before_the_fairing() {
    // Used before ignite: configured from the (empty) environment, the embedded store.
    assert!(!rocket_route_cache::config::global().is_shared());
    let server = std::env::var("CACHE_TEST_SERVER").unwrap();
    let toml = format!("[default.cache]\nservers = [\"{server}\"]\n");
    match Client::untracked(app_logging(&toml, "debug", "critical")).await {
        Err(error) => assert!(matches!(
            error.kind(),
            rocket::error::ErrorKind::FailedFairings(_)
        )),
        Ok(_) => panic!("ignited on another store than the global cache's"),
    }
    // The same configuration as the global cache's is that cache: invalidating through the
    // global functions drops what the instance's routes stored.
    let client = Client::untracked(app_logging("", "debug", "off"))
        .await
        .unwrap();
    let (first, second, _) = twice(&client).await;
    assert_eq!((first.as_str(), second.as_str()), ("MISS", "HIT"));
    rocket_route_cache::invalidate("/page").await.unwrap();
    let after = client.get("/page").dispatch().await;
    assert_eq!(x_cache(&after), "MISS");
}

/// Each instance counts what it served, and its metrics list its own routes; a route both
/// mount counts, in each, what that one served. The routes are this test's alone (see `pair`).
#[rocket::async_test]
async fn two_instances_with_their_own_fairings_keep_their_own_counters() {
    let one = app_logging("[default.cache]\nnamespace = \"one\"\n", "debug", "off")
        .mount("/", routes![pair, first_only]);
    let one = Client::untracked(one).await.expect("first instance");
    let two = app_logging("[default.cache]\nnamespace = \"two\"\n", "debug", "off")
        .mount("/", routes![pair]);
    let two = Client::untracked(two)
        .await
        .expect("a second instance is not refused");
    for (client, path, expected) in [
        (&one, "/pair", "MISS"),
        (&one, "/pair", "HIT"),
        (&one, "/pair", "HIT"),
        (&one, "/pair/first-only", "MISS"),
        (&two, "/pair", "MISS"),
        (&two, "/pair", "HIT"),
    ] {
        let response = client.get(path).dispatch().await;
        assert_eq!(x_cache(&response), expected, "{path}");
    }
    let counted = |client: &Client| client.rocket().state::<Cache>().unwrap().stats();
    let (of_one, of_two) = (counted(&one), counted(&two));
    assert_eq!((of_one.misses, of_one.hits), (2, 2));
    assert_eq!((of_two.misses, of_two.hits), (1, 1));
    one.rocket()
        .state::<Cache>()
        .unwrap()
        .invalidate_tag("nothing")
        .await
        .unwrap();
    assert_eq!(counted(&one).invalidations, 1);
    assert_eq!(counted(&two).invalidations, 0);
    let metrics = two.get("/internal/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains("cached_route_invalidations_total{result=\"confirmed\"} 0"),
        "{text}"
    );
    // The routes of another instance are not this one's, and a route both mount counts what
    // each served: one miss and one hit here, one miss and two hits in the other.
    assert!(!text.contains("GET /pair/first-only"), "{text}");
    let pair = |result: &str, n: u32| {
        format!("cached_route_requests_total{{route=\"GET /pair\",result=\"{result}\"}} {n}\n")
    };
    assert!(
        text.contains(&pair("hit", 1)) && text.contains(&pair("miss", 1)),
        "{text}"
    );
    let metrics = one.get("/internal/metrics").dispatch().await;
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains("cached_route_invalidations_total{result=\"confirmed\"} 1"),
        "{text}"
    );
    assert!(text.contains("GET /pair/first-only"), "{text}");
    assert!(
        text.contains(&pair("hit", 2)) && text.contains(&pair("miss", 1)),
        "{text}"
    );
}

/// A typo in the `cache` table is reported at the key as written, from the file or from
/// `ROCKET_CACHE` (figment's own message reverses it: `default.sevrers.cache`, `SEVRERS.CACHE`).
#[test]
fn a_misspelled_cache_key_is_named_as_written() {
    let toml = RocketToml::new(
        "misspelled",
        "[default.cache]\nsevrers = [\"127.0.0.1:11211\"]\n",
    );
    let rocket_cache = ("ROCKET_CACHE", "{sevrers=[\"127.0.0.1:11211\"]}".to_owned());
    for (env, origin) in [(toml.env(), "misspelled"), (rocket_cache, "(ROCKET_CACHE)")] {
        let output = in_child("child_with_the_fairing_ignite_fails", &[env]);
        let logged = String::from_utf8_lossy(&output.stdout);
        let line = logged
            .lines()
            .find(|line| line.contains("invalid cache configuration"))
            .unwrap_or_else(|| panic!("no configuration error logged: {logged}"));
        assert!(
            line.contains("`cache.sevrers` is not a setting; the settings are servers,"),
            "{line}"
        );
        assert!(line.contains(origin), "{line}");
        assert!(!line.contains("``") && !line.contains(".cache"), "{line}");
    }
}

/// The two mistakes a table written for an earlier release makes: a key that lost its `_ms`
/// (named, with what to write now), and a duration without its unit (the expected form, and
/// what was found).
#[test]
fn an_old_key_or_a_bare_duration_says_what_to_write() {
    for (table, expected) in [
        (
            "[default.cache]\ntimeout_ms = 100\n",
            "`cache.timeout_ms` is not a setting: it is `op_timeout` now, and takes a duration \
             with its unit (`op_timeout = \"100ms\"`)",
        ),
        (
            "[default.cache]\nlease_wait_ms = 100\n",
            "`cache.lease_wait_ms` is not a setting: it is `lease_wait` now",
        ),
        (
            "[default.cache]\nop_timeout = 100\n",
            "invalid cache configuration `cache.op_timeout`: expected a duration with its unit, \
             such as \"100ms\", \"2s\" or \"5m\", found",
        ),
    ] {
        let toml = RocketToml::new("old-table", table);
        let output = in_child("child_with_the_fairing_ignite_fails", &[toml.env()]);
        let logged = String::from_utf8_lossy(&output.stdout);
        let line = logged
            .lines()
            .find(|line| line.contains("invalid cache configuration"))
            .unwrap_or_else(|| panic!("no configuration error logged: {logged}"));
        assert!(line.contains(expected), "{line}");
    }
}
