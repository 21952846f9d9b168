//! Soft purge: `Invalidation::soft()`, by URI, tag or `handler::entries(..)`, marks entries
//! stale instead of dropping them. Over the wire
//! with a real memcached (one instance, and two sharing it), and on the embedded store through
//! Rocket's local client. The handler can be held on an event the test controls, so that the
//! stale answers given while the one refresh runs are seen, not guessed from timing. Also the
//! route's tags in `Surrogate-Key` / `Cache-Tag` for a CDN in front.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cached_route_suite::{http1, launch, loopback_config, MemcachedServer, RunningApp};
use rocket::figment::providers::{Format, Toml};
use rocket::figment::Figment;
use rocket::http::uri::Host;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::tokio::sync::Notify;
use rocket::tokio::time::timeout;
use rocket::{get, routes, uri, State};
use rocket_route_cache::{
    cached_route, config::SurrogateKeys, Cache, CacheFairing, Config, Invalidation,
};

/// Counts the handlers' runs; while `hold` is set, each run says it started and waits for
/// `release`; while `fail` is set, `flaky` fails.
#[derive(Default)]
struct Gate {
    runs: AtomicUsize,
    hold: AtomicBool,
    fail: AtomicBool,
    entered: Notify,
    release: Notify,
}

impl Gate {
    async fn run(&self) -> usize {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        if self.hold.load(Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        run
    }

    fn runs(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    async fn entered(&self) {
        timeout(Duration::from_secs(10), self.entered.notified())
            .await
            .expect("a handler run started");
    }
}

#[cached_route(ttl = 600, stale = 60, tags = ["articles", "article:{id}"])]
#[get("/articles/<id>")]
async fn article(id: u32, gate: &State<Arc<Gate>>) -> String {
    format!("article {id} run {}", gate.run().await)
}

/// No stale window: a soft purge makes the next request render it, as an expiry would.
#[cached_route(ttl = 600, stale_if_error = 60, tags = ["flaky"])]
#[get("/flaky")]
async fn flaky(gate: &State<Arc<Gate>>) -> Result<String, Status> {
    let run = gate.run().await;
    if gate.fail.load(Ordering::SeqCst) {
        return Err(Status::InternalServerError);
    }
    Ok(format!("flaky run {run}"))
}

/// A tag with a parameter, so that its value can hold what a header cannot.
#[cached_route(ttl = 600, tags = ["authors", "author:{name}"])]
#[get("/by/<name>")]
async fn author(name: &str, gate: &State<Arc<Gate>>) -> String {
    format!("{name} run {}", gate.run().await)
}

fn app(cache: Cache, gate: &Arc<Gate>) -> rocket::Rocket<rocket::Build> {
    rocket::custom(loopback_config())
        .manage(cache)
        .manage(Arc::clone(gate))
        .mount("/", routes![article, flaky, author])
}

/// One answer: `X-Cache`, the body, and the surrogate headers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    x_cache: String,
    body: String,
    surrogate_key: Option<String>,
    cache_tag: Option<String>,
}

/// An app under test: served on 127.0.0.1, or through Rocket's local client.
#[derive(Clone)]
enum App {
    Wire(u16),
    Local(Arc<Client>),
}

impl App {
    /// `path`'s answer, within 10 s: a request stuck behind a held handler fails the test
    /// instead of hanging it.
    async fn get(&self, path: &str) -> Answer {
        timeout(Duration::from_secs(10), self.answer(path))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer within 10 s"))
    }

    async fn answer(&self, path: &str) -> Answer {
        match self {
            App::Wire(port) => {
                let reply =
                    http1(*port, &format!("GET {path} HTTP/1.1\r\nHost: example.com")).await;
                Answer {
                    status: reply.status,
                    x_cache: reply.x_cache().to_owned(),
                    surrogate_key: reply.one("Surrogate-Key").map(str::to_owned),
                    cache_tag: reply.one("Cache-Tag").map(str::to_owned),
                    body: reply.body,
                }
            }
            App::Local(client) => {
                // The same host as over the wire (header and parsed): two instances share entries.
                let mut request = client.get(path).header(Header::new("Host", "example.com"));
                request.set_host(Host::parse("example.com").unwrap());
                let response = request.dispatch().await;
                let headers = response.headers();
                let header = |name: &str| headers.get_one(name).map(str::to_owned);
                let (status, x_cache) = (response.status().code, header("X-Cache"));
                let (surrogate_key, cache_tag) = (header("Surrogate-Key"), header("Cache-Tag"));
                Answer {
                    status,
                    x_cache: x_cache.unwrap_or_default(),
                    surrogate_key,
                    cache_tag,
                    body: response.into_string().await.unwrap_or_default(),
                }
            }
        }
    }

    /// `path`, answered with `x_cache` and `body` once a refresh that runs after a stale
    /// reply has stored its entry: a store is no event a client can await, so ask until it is
    /// served (bounded), then check.
    async fn expect_refreshed(&self, path: &str, x_cache: &str, body: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            let answer = self.get(path).await;
            if answer.x_cache == x_cache && answer.body == body {
                break;
            }
            rocket::tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.expect(path, x_cache, body).await;
    }

    /// `path`, answered with `x_cache` and `body`.
    async fn expect(&self, path: &str, x_cache: &str, body: &str) {
        let answer = self.get(path).await;
        assert_eq!(
            (answer.x_cache.as_str(), answer.body.as_str()),
            (x_cache, body),
            "{path}"
        );
    }
}

async fn local(cache: Cache, gate: &Arc<Gate>) -> App {
    let client = Client::untracked(app(cache, gate))
        .await
        .expect("valid rocket");
    App::Local(Arc::new(client))
}

/// How a test soft-purges one article: by URI, by tag, through its handler.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Uri,
    Tag,
    Handler,
}

/// Soft-purges article `id` in `cache` alone, by URI, tag or handler.
async fn soft_purge(cache: &Cache, scope: Scope, id: u32) {
    let batch = Invalidation::new();
    let batch = match scope {
        Scope::Uri => batch.uri(uri!(article(id))),
        Scope::Tag => batch.tag(format!("article:{id}")),
        Scope::Handler => batch.route(article::entries(id)),
    };
    batch.soft().run_in(cache).await.expect("confirmed");
}

/// Soft-purges `tag` in `cache` alone.
async fn soft_purge_tag(cache: &Cache, tag: &str) {
    Invalidation::new()
        .tag(tag)
        .soft()
        .run_in(cache)
        .await
        .expect("confirmed");
}

/// The promise of a soft purge, on `served`, purged through `purger` (the same instance or
/// another sharing its servers) whose handlers count in `gate`: the entry is answered `STALE`
/// while one refresh runs (held until the test releases it), then the new one is a `HIT`.
async fn stale_while_one_refresh_runs(served: &App, gate: &Gate, purger: &Cache, scope: Scope) {
    let id = scope as u32 + 1;
    let path = format!("/articles/{id}");
    let old = format!("article {id} run {}", gate.runs() + 1);
    served.expect(&path, "MISS", &old).await;
    served.expect(&path, "HIT", &old).await;
    let runs = gate.runs();

    soft_purge(purger, scope, id).await;
    gate.hold.store(true, Ordering::SeqCst);
    let refresh = rocket::tokio::spawn({
        let (served, path) = (served.clone(), path.clone());
        async move { served.get(&path).await }
    });
    gate.entered().await;
    for _ in 0..3 {
        served.expect(&path, "STALE", &old).await;
    }
    assert_eq!(gate.runs(), runs + 1, "{scope:?}: one refresh");
    gate.hold.store(false, Ordering::SeqCst);
    gate.release.notify_one();
    let new = format!("article {id} run {}", runs + 1);
    let refreshed = refresh.await.unwrap();
    // The request that refreshes is answered with what it rendered (or, once the first stale
    // request answers at once, with the stale entry).
    assert!(
        (refreshed.x_cache == "MISS" && refreshed.body == new)
            || (refreshed.x_cache == "STALE" && refreshed.body == old),
        "{scope:?}: {refreshed:?}"
    );
    served.expect_refreshed(&path, "HIT", &new).await;
    assert_eq!(gate.runs(), runs + 1, "{scope:?}: one refresh in all");
}

fn memcached_cache(server: &MemcachedServer) -> Cache {
    Cache::new(Config::memcached([server.address()])).unwrap()
}

#[rocket::async_test]
async fn soft_purge_by_uri_tag_and_handler_serves_stale_while_one_refresh_runs_memcached() {
    let memcached = MemcachedServer::start();
    let cache = memcached_cache(&memcached);
    let gate = Arc::new(Gate::default());
    let running: RunningApp = launch(app(cache.clone(), &gate), memcached).await;
    let served = App::Wire(running.port);
    for scope in [Scope::Uri, Scope::Tag, Scope::Handler] {
        stale_while_one_refresh_runs(&served, &gate, &cache, scope).await;
    }
}

#[rocket::async_test]
async fn soft_purge_by_uri_tag_and_handler_serves_stale_while_one_refresh_runs_embedded() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let gate = Arc::new(Gate::default());
    let served = local(cache.clone(), &gate).await;
    for scope in [Scope::Uri, Scope::Tag, Scope::Handler] {
        stale_while_one_refresh_runs(&served, &gate, &cache, scope).await;
    }
}

/// Another instance sharing the servers purges: this one answers `STALE` while it refreshes,
/// and the other, asked meanwhile, answers `STALE` too instead of rendering it again; then
/// both serve the new entry.
#[rocket::async_test]
async fn a_soft_purge_on_one_instance_is_seen_stale_by_another() {
    let memcached = MemcachedServer::start();
    let other_cache = memcached_cache(&memcached);
    let gate = Arc::new(Gate::default());
    let other_gate = Arc::new(Gate::default());
    let other = local(other_cache.clone(), &other_gate).await;
    let running = launch(app(memcached_cache(&memcached), &gate), memcached).await;
    let served = App::Wire(running.port);

    served
        .expect("/articles/1", "MISS", "article 1 run 1")
        .await;
    other.expect("/articles/1", "HIT", "article 1 run 1").await;
    soft_purge_tag(&other_cache, "articles").await;
    gate.hold.store(true, Ordering::SeqCst);
    let refresh = rocket::tokio::spawn({
        let served = served.clone();
        async move { served.get("/articles/1").await }
    });
    gate.entered().await;
    other
        .expect("/articles/1", "STALE", "article 1 run 1")
        .await;
    served
        .expect("/articles/1", "STALE", "article 1 run 1")
        .await;
    gate.hold.store(false, Ordering::SeqCst);
    gate.release.notify_one();
    refresh.await.unwrap();
    other
        .expect_refreshed("/articles/1", "HIT", "article 1 run 2")
        .await;
    served.expect("/articles/1", "HIT", "article 1 run 2").await;
    assert_eq!((gate.runs(), other_gate.runs()), (2, 0));
}

/// A hard purge after a soft one drops the entry: while the next request renders it again,
/// another one waits for that rendering instead of being answered with the dropped entry.
#[rocket::async_test]
async fn a_hard_purge_after_a_soft_one_is_a_miss() {
    let memcached = MemcachedServer::start();
    let cache = memcached_cache(&memcached);
    let gate = Arc::new(Gate::default());
    let running = launch(app(cache.clone(), &gate), memcached).await;
    let served = App::Wire(running.port);
    for (id, hard_first) in [(1, false), (2, true)] {
        let path = format!("/articles/{id}");
        let old = format!("article {id} run {}", gate.runs() + 1);
        served.expect(&path, "MISS", &old).await;
        if hard_first {
            Invalidation::new()
                .route(article::entries(id))
                .run_in(&cache)
                .await
                .unwrap();
            soft_purge(&cache, Scope::Handler, id).await;
        } else {
            soft_purge(&cache, Scope::Tag, id).await;
            cache.invalidate(path.as_str()).await.unwrap();
        }
        gate.hold.store(true, Ordering::SeqCst);
        let rendering = rocket::tokio::spawn({
            let (served, path) = (served.clone(), path.clone());
            async move { served.get(&path).await }
        });
        gate.entered().await;
        let waiting = rocket::tokio::spawn({
            let (served, path) = (served.clone(), path.clone());
            async move { served.get(&path).await }
        });
        // No event says the second request is waiting for the first; a stale answer would
        // come at once, well within this bound.
        rocket::tokio::time::sleep(Duration::from_millis(300)).await;
        gate.hold.store(false, Ordering::SeqCst);
        gate.release.notify_one();
        let new = format!("article {id} run {}", gate.runs());
        let (rendered, waited) = (rendering.await.unwrap(), waiting.await.unwrap());
        assert_eq!(
            (rendered.x_cache.as_str(), rendered.body.as_str()),
            ("MISS", new.as_str())
        );
        assert_eq!(
            (waited.x_cache.as_str(), waited.body.as_str()),
            ("HIT", new.as_str()),
            "{id}"
        );
        served.expect(&path, "HIT", &new).await;
    }
}

/// Without a `stale` window the next request renders the entry, as after its expiry; with
/// `stale_if_error` the soft-purged entry stands in for a failing handler, which a dropped
/// one cannot.
#[rocket::async_test]
async fn without_a_stale_window_the_next_request_refreshes_and_errors_fall_back() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let gate = Arc::new(Gate::default());
    let served = local(cache.clone(), &gate).await;
    served.expect("/flaky", "MISS", "flaky run 1").await;
    soft_purge_tag(&cache, "flaky").await;
    served.expect("/flaky", "MISS", "flaky run 2").await;
    served.expect("/flaky", "HIT", "flaky run 2").await;

    soft_purge_tag(&cache, "flaky").await;
    gate.fail.store(true, Ordering::SeqCst);
    served.expect("/flaky", "STALE", "flaky run 2").await;
    cache.invalidate_tag("flaky").await.unwrap();
    assert_eq!(served.get("/flaky").await.status, 500);
    assert_eq!(gate.runs(), 4);
}

/// Surrogate keys are off unless configured: a route with tags, under the default
/// configuration (in code, or through the fairing without `surrogate_keys`), sends neither
/// header, on a miss or a hit.
#[rocket::async_test]
async fn surrogate_keys_are_off_by_default() {
    let gate = Arc::new(Gate::default());
    let in_code = local(Cache::new(Config::default()).unwrap(), &gate).await;
    let figment = Figment::from(loopback_config())
        .merge(Toml::string("[default.cache]\nnamespace = \"defaults\"\n").nested())
        .select("debug");
    let from_table = rocket::custom(figment)
        .attach(CacheFairing)
        .manage(Arc::clone(&gate))
        .mount("/", routes![article]);
    let from_table = App::Local(Arc::new(Client::untracked(from_table).await.unwrap()));
    for app in [in_code, from_table] {
        for x_cache in ["MISS", "HIT"] {
            let answer = app.get("/articles/11").await;
            assert_eq!(answer.x_cache, x_cache);
            assert_eq!(
                (answer.surrogate_key, answer.cache_tag),
                (None, None),
                "{x_cache}"
            );
        }
    }
}

/// The route's tags reach a CDN in front in the configured header, each spelled so that it
/// holds no separator and nothing a header cannot carry; on misses and hits alike; and not at
/// all by default.
#[rocket::async_test]
async fn surrogate_keys_carry_the_routes_tags() {
    let gate = Arc::new(Gate::default());
    let path = "/by/caf%C3%A9%20au%20lait,%20s.v.p.";
    let with = |header| {
        let mut config = Config::embedded();
        config.surrogate_keys = header;
        Cache::new(config).unwrap()
    };

    let fastly = local(with(Some(SurrogateKeys::SurrogateKey)), &gate).await;
    for x_cache in ["MISS", "HIT"] {
        let answer = fastly.get(path).await;
        assert_eq!(answer.x_cache, x_cache);
        assert_eq!(
            answer.surrogate_key.as_deref(),
            Some("authors author:caf%C3%A9%20au%20lait%2C%20s.v.p.")
        );
        assert_eq!(answer.cache_tag, None);
    }
    let tagged = fastly.get("/articles/7").await;
    assert_eq!(tagged.surrogate_key.as_deref(), Some("articles article:7"));

    let cloudflare = local(with(Some(SurrogateKeys::CacheTag)), &gate).await;
    for x_cache in ["MISS", "HIT"] {
        let answer = cloudflare.get(path).await;
        assert_eq!(answer.x_cache, x_cache);
        assert_eq!(
            answer.cache_tag.as_deref(),
            Some("authors,author:caf%C3%A9%20au%20lait%2C%20s.v.p.")
        );
        assert_eq!(answer.surrogate_key, None);
    }
    assert_eq!(
        rocket_route_cache::invalidation::surrogate_key("author:caf\u{e9} au lait, s.v.p."),
        "author:caf%C3%A9%20au%20lait%2C%20s.v.p."
    );

    let plain = local(with(None), &gate).await;
    let answer = plain.get(path).await;
    assert_eq!((answer.surrogate_key, answer.cache_tag), (None, None));
}
