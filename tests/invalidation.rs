//! Invalidation by URI, by tag, typed per handler and of everything: two app instances sharing
//! a real memcached (each with its own client, as two processes would have), and the embedded
//! store. Invalidating on one instance is seen by the other at its next request.

mod common;

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use cached_route_suite::MemcachedServer;
use common::{fetch_with, Runs};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::tokio::sync::Notify;
use rocket::{get, routes, uri, State};
use rocket_route_cache::invalidation::InvalidationError;
use rocket_route_cache::{cached_route, Cache, Config};

#[cached_route(ttl = 600, vary = ["Accept-Language"], tags = ["articles", "article:{id}"])]
#[get("/articles/<id>?<format>")]
fn article(id: u32, format: Option<&str>, runs: &State<Runs>) -> String {
    let run = runs.bump("article");
    format!(
        "article {id} as {} (render {run})",
        format.unwrap_or("html")
    )
}

#[cached_route(ttl = 600, tags = ["articles"])]
#[get("/articles")]
fn index(runs: &State<Runs>) -> String {
    let run = runs.bump("index");
    format!("index (render {run})")
}

#[cached_route(ttl = 600)]
#[get("/about")]
fn about(runs: &State<Runs>) -> String {
    let run = runs.bump("about");
    format!("about (render {run})")
}

#[cached_route(ttl = 600)]
#[get("/prices/<amount>")]
fn price(amount: f64, runs: &State<Runs>) -> String {
    let run = runs.bump("price");
    format!("price {amount} (render {run})")
}

#[cached_route(ttl = 600)]
#[get("/ratios/<ratio>")]
fn ratio(ratio: f32, runs: &State<Runs>) -> String {
    let run = runs.bump("ratio");
    format!("ratio {ratio} (render {run})")
}

#[cached_route(ttl = 600)]
#[get("/files/<path..>")]
fn file(path: PathBuf, runs: &State<Runs>) -> String {
    let run = runs.bump("file");
    format!("file {} (render {run})", path.display())
}

#[cached_route(ttl = 600)]
#[get("/hosts/<ip>")]
fn host(ip: Ipv6Addr, runs: &State<Runs>) -> String {
    let run = runs.bump("host");
    format!("host {ip} (render {run})")
}

/// Not found for every id: what a scan of made-up URLs gets.
#[cached_route(ttl = 600)]
#[get("/missing/<id>")]
fn missing(id: u64) -> Option<String> {
    (id == u64::MAX).then(String::new)
}

/// Holds a render until the test lets it go.
#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

#[cached_route(ttl = 600)]
#[get("/gated")]
async fn gated(gate: &State<Gate>, runs: &State<Runs>) -> String {
    let run = runs.bump("gated");
    gate.entered.notify_one();
    gate.release.notified().await;
    format!("gated (render {run})")
}

/// The "database" both instances read: the version the live page shows.
#[derive(Default, Clone)]
struct Live(Arc<AtomicU64>);

#[cached_route(ttl = 600, tags = ["live"])]
#[get("/live")]
fn live(version: &State<Live>) -> String {
    version.0.load(Ordering::SeqCst).to_string()
}

async fn client(cache: Cache) -> Client {
    client_sharing(cache, Live::default()).await
}

async fn client_sharing(cache: Cache, live: Live) -> Client {
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(Runs::default())
    .manage(Gate::default())
    .manage(live)
    .manage(cache)
    .mount(
        "/",
        routes![article, index, about, gated, live, price, ratio, file, host, missing],
    );
    Client::untracked(rocket).await.expect("valid rocket")
}

fn memcached(server: &MemcachedServer, namespace: &str) -> Cache {
    let mut config = Config::memcached([server.address()]);
    config.namespace = namespace.into();
    Cache::new(config).unwrap()
}

fn cache(client: &Client) -> &Cache {
    client.rocket().state::<Cache>().unwrap()
}

/// `X-Cache` of a GET for `uri` with `headers`, and the body.
async fn state(
    client: &Client,
    uri: &str,
    headers: &[(&'static str, &'static str)],
) -> (String, String) {
    let (seen, x_cache) = fetch_with(client, uri, headers).await;
    assert_eq!(seen.status, Status::Ok, "{uri}");
    (x_cache, seen.body)
}

async fn head_state(client: &Client, uri: &str) -> String {
    let response = client.head(uri.to_owned()).dispatch().await;
    assert_eq!(response.status(), Status::Ok, "HEAD {uri}");
    response
        .headers()
        .get_one("X-Cache")
        .unwrap_or("")
        .to_owned()
}

type Variant = (&'static str, &'static [(&'static str, &'static str)]);

/// Every variant of article 5's path: query strings, a `vary` value, another host.
const ARTICLE_5: &[Variant] = &[
    ("/articles/5", &[]),
    ("/articles/5?format=amp", &[]),
    ("/articles/5?format=amp&utm=x", &[]),
    ("/articles/5", &[("Accept-Language", "fr")]),
    ("/articles/5", &[("Host", "other.example")]),
];

/// Renders each variant on `a` and checks that `b` is served it from the shared cache.
async fn warm(a: &Client, b: &Client, variants: &[Variant]) {
    for (uri, headers) in variants {
        assert_eq!(state(a, uri, headers).await.0, "MISS", "{uri} {headers:?}");
        assert_eq!(state(b, uri, headers).await.0, "HIT", "{uri} {headers:?}");
    }
}

async fn assert_states(client: &Client, variants: &[Variant], expected: &str) {
    for (uri, headers) in variants {
        assert_eq!(
            state(client, uri, headers).await.0,
            expected,
            "{uri} {headers:?}"
        );
    }
}

#[rocket::async_test]
async fn by_uri_drops_every_variant_on_every_instance() {
    let server = MemcachedServer::start();
    let a = client(memcached(&server, "rc")).await;
    let b = client(memcached(&server, "rc")).await;
    warm(&a, &b, ARTICLE_5).await;
    warm(&a, &b, &[("/articles/6", &[]), ("/articles", &[])]).await;
    assert_eq!(head_state(&b, "/articles/5").await, "HIT");

    // What `uri!` produces for the route, on instance A.
    cache(&a)
        .invalidate(uri!(article(5, _)))
        .await
        .expect("confirmed");

    // Instance B: HEAD first (GET and HEAD share the entry), then every variant.
    assert_eq!(head_state(&b, "/articles/5").await, "MISS");
    for (uri, headers) in ARTICLE_5 {
        let (x_cache, body) = state(&b, uri, headers).await;
        assert!(
            x_cache == "MISS" || (*uri == "/articles/5" && headers.is_empty()),
            "{uri} {headers:?}: {x_cache}"
        );
        assert!(body.contains("article 5"), "{body}");
    }
    assert_states(&a, ARTICLE_5, "HIT").await;
    // Other paths keep their entries.
    assert_states(&b, &[("/articles/6", &[]), ("/articles", &[])], "HIT").await;

    // Text works too, in any spelling of the same path.
    cache(&b).invalidate("/articles/%36/").await.unwrap();
    assert_states(&a, &[("/articles/6", &[])], "MISS").await;
    assert!(matches!(
        cache(&b).invalidate("no path \u{7f}").await,
        Err(InvalidationError::BadUri(_))
    ));
}

#[rocket::async_test]
async fn by_tag_drops_what_carries_the_tag_on_every_instance() {
    let server = MemcachedServer::start();
    let a = client(memcached(&server, "rc")).await;
    let b = client(memcached(&server, "rc")).await;
    let others: &[Variant] = &[("/articles/6", &[]), ("/articles", &[]), ("/about", &[])];
    warm(&a, &b, ARTICLE_5).await;
    warm(&a, &b, others).await;

    cache(&b).invalidate_tag("article:5").await.unwrap();
    assert_states(&a, ARTICLE_5, "MISS").await;
    assert_states(&a, others, "HIT").await;
    assert_states(&b, ARTICLE_5, "HIT").await;

    cache(&a).invalidate_tag("articles").await.unwrap();
    assert_states(&b, ARTICLE_5, "MISS").await;
    assert_states(&b, &others[..2], "MISS").await;
    assert_states(&b, &others[2..], "HIT").await;
}

#[rocket::async_test]
async fn typed_invalidation_takes_the_handlers_parameter_values() {
    let server = MemcachedServer::start();
    let a = client(memcached(&server, "rc")).await;
    let b = client(memcached(&server, "rc")).await;
    let plain: &[Variant] = &[
        ("/articles/5", &[]),
        ("/articles/5", &[("Accept-Language", "fr")]),
    ];
    let amp: &[Variant] = &[
        ("/articles/5?format=amp", &[]),
        ("/articles/5?utm=1&format=amp", &[]),
    ];
    warm(&a, &b, plain).await;
    warm(&a, &b, amp).await;
    warm(&a, &b, &[("/articles/6", &[])]).await;

    // The values the handler saw: `id = 5`, `format = Some("amp")`.
    rocket_route_cache::Invalidation::new()
        .route(article::entries(5, Some("amp")))
        .run_in(cache(&b))
        .await
        .unwrap();
    assert_states(&a, amp, "MISS").await;
    assert_states(&a, plain, "HIT").await;

    rocket_route_cache::Invalidation::new()
        .route(article::entries(5, None))
        .run_in(cache(&b))
        .await
        .unwrap();
    assert_states(&a, plain, "MISS").await;
    assert_states(&a, amp, "HIT").await;
    assert_states(&a, &[("/articles/6", &[])], "HIT").await;

    // A route without parameters takes none.
    warm(&a, &b, &[("/about", &[])]).await;
    rocket_route_cache::Invalidation::new()
        .route(about::entries())
        .run_in(cache(&a))
        .await
        .unwrap();
    assert_states(&b, &[("/about", &[])], "MISS").await;
}

#[rocket::async_test]
async fn everything_at_once_spares_other_namespaces() {
    let server = MemcachedServer::start();
    let a = client(memcached(&server, "blog")).await;
    let b = client(memcached(&server, "blog")).await;
    let shop = client(memcached(&server, "shop")).await;
    let pages: &[Variant] = &[("/articles/5", &[]), ("/articles", &[]), ("/about", &[])];
    warm(&a, &b, pages).await;
    assert_states(&shop, pages, "MISS").await;
    assert_states(&shop, pages, "HIT").await;

    cache(&a).invalidate_all().await.unwrap();
    assert_states(&b, pages, "MISS").await;
    assert_states(&a, pages, "HIT").await;
    assert_states(&shop, pages, "HIT").await;
}

/// A deploy that puts its version in the namespace never serves the old release's entries,
/// while both run side by side.
#[rocket::async_test]
async fn a_versioned_namespace_isolates_releases() {
    let server = MemcachedServer::start();
    let old = client(memcached(&server, "blog-1.4.2")).await;
    let new = client(memcached(&server, "blog-1.5.0")).await;
    assert_states(&old, &[("/about", &[])], "MISS").await;
    assert_states(&new, &[("/about", &[])], "MISS").await;
    assert_states(&old, &[("/about", &[])], "HIT").await;
    assert_states(&new, &[("/about", &[])], "HIT").await;
}

/// A render that started before an invalidation is stored stamped with the counters it read:
/// the next request does not get it.
#[rocket::async_test]
async fn a_render_racing_an_invalidation_is_not_served_after_it() {
    let server = MemcachedServer::start();
    let a = client(memcached(&server, "rc")).await;
    let b = client(memcached(&server, "rc")).await;
    let gate = a.rocket().state::<Gate>().unwrap();
    let racing = async {
        let (x_cache, body) = state(&a, "/gated", &[]).await;
        assert_eq!(
            (x_cache.as_str(), body.as_str()),
            ("MISS", "gated (render 1)")
        );
    };
    let invalidating = async {
        gate.entered.notified().await;
        cache(&b).invalidate("/gated").await.unwrap();
        gate.release.notify_one();
    };
    rocket::tokio::join!(racing, invalidating);

    // B's next request renders again (its own render 1), then serves that.
    let b_gate = b.rocket().state::<Gate>().unwrap();
    b_gate.release.notify_one();
    assert_eq!(
        state(&b, "/gated", &[]).await,
        ("MISS".to_owned(), "gated (render 1)".to_owned())
    );
    assert_eq!(state(&a, "/gated", &[]).await.0, "HIT");
}

/// Counters are created with random values: one that is evicted comes back as another value,
/// which drops the entries that read it instead of reviving them.
/// An invalidated entry stays dead when the counters it was checked against are evicted after
/// the invalidation: they come back with new random values, which drop entries, never revive
/// one (with values that started again from a fixed number, the entry rendered before the
/// invalidation would match them again). Both instances, near tiers on.
#[rocket::async_test]
async fn an_evicted_counter_never_revives_an_invalidated_entry() {
    let server = MemcachedServer::start();
    let a = client(memcached(&server, "rc")).await;
    let b = client(memcached(&server, "rc")).await;
    warm(&a, &b, &[("/about", &[])]).await;
    assert_eq!(state(&b, "/about", &[]).await.1, "about (render 1)");
    cache(&a).invalidate("/about").await.expect("confirmed");

    let counters: Vec<String> = server
        .keys()
        .into_iter()
        .filter(|key| key.starts_with("rc:g:"))
        .collect();
    assert_eq!(
        counters.len(),
        4,
        "epoch, namespace, path, route: {counters:?}"
    );
    for key in &counters {
        let value = server.get_raw(key).unwrap();
        let value: u64 = std::str::from_utf8(&value).unwrap().parse().unwrap();
        assert!(value > 1_000, "random start, not 0 or 1: {value}");
        assert!(server.delete_raw(key));
    }
    let expected = |state: &str| (state.to_owned(), "about (render 2)".to_owned());
    assert_eq!(state(&a, "/about", &[]).await, expected("MISS"));
    assert_eq!(state(&b, "/about", &[]).await, expected("HIT"));
    assert_eq!(state(&a, "/about", &[]).await, expected("HIT"));
}

/// Two servers, one down: the invalidation says which did not confirm it, and the other's
/// entries are dropped.
#[rocket::async_test]
async fn an_unreachable_server_is_reported_and_the_rest_invalidated() {
    let up = MemcachedServer::start();
    let mut down = MemcachedServer::start();
    let fleet = || {
        let mut config = Config::memcached([up.address(), down.address()]);
        config.breaker_failures = u32::MAX;
        Cache::new(config).unwrap()
    };
    let a = client(fleet()).await;
    let b = client(fleet()).await;
    let pages: Vec<String> = (0..20).map(|i| format!("/articles/{i}")).collect();
    for page in &pages {
        assert_eq!(state(&a, page, &[]).await.0, "MISS");
        assert_eq!(state(&b, page, &[]).await.0, "HIT");
    }
    let down_address = down.address();
    down.stop();

    let error = cache(&a).invalidate_tag("articles").await.unwrap_err();
    match &error {
        InvalidationError::Unconfirmed(servers) => {
            let named: Vec<&str> = servers.iter().map(|(s, _)| s.as_str()).collect();
            assert_eq!(named, [down_address.as_str()], "{error}");
        }
        other => panic!("{other:?}"),
    }
    println!("{error}");
    // Entries on the live server are dropped; those on the dead one are not reachable.
    for page in &pages {
        assert_eq!(state(&b, page, &[]).await.0, "MISS", "{page}");
    }
}

async fn hit(client: &Client, uri: &'static str) -> String {
    state(client, uri, &[]).await.0
}

#[rocket::async_test]
async fn the_embedded_store_supports_every_form() {
    let a = client(Cache::new(Config::embedded()).unwrap()).await;
    for uri in [
        "/articles/5",
        "/articles/5?format=amp",
        "/articles/6",
        "/about",
    ] {
        assert_eq!(hit(&a, uri).await, "MISS");
        assert_eq!(hit(&a, uri).await, "HIT");
    }
    cache(&a).invalidate(uri!(article(5, _))).await.unwrap();
    assert_eq!(hit(&a, "/articles/5?format=amp").await, "MISS");
    assert_eq!(hit(&a, "/articles/6").await, "HIT");

    rocket_route_cache::Invalidation::new()
        .route(article::entries(6, None))
        .run_in(cache(&a))
        .await
        .unwrap();
    assert_eq!(hit(&a, "/articles/6").await, "MISS");
    assert_eq!(hit(&a, "/articles/5?format=amp").await, "HIT");

    cache(&a).invalidate_tag("article:5").await.unwrap();
    assert_eq!(hit(&a, "/articles/5?format=amp").await, "MISS");
    assert_eq!(hit(&a, "/about").await, "HIT");

    cache(&a).invalidate_all().await.unwrap();
    for uri in ["/articles/5", "/articles/6", "/about"] {
        assert_eq!(hit(&a, uri).await, "MISS", "{uri}");
    }
    // The counters these move are checked exactly in `observability`
    // (`invalidations_are_counted_exactly`): here other tests move them in parallel.
}

/// Under load, on two instances: a writer commits version i, invalidates (by tag, by URI or
/// typed, in turn) and then publishes i; readers on both instances note the published version
/// before each request and must never be answered with an older one, while invalidations of
/// other names run all along. Bounded in count.
#[rocket::async_test]
async fn no_request_started_after_an_invalidation_sees_what_it_dropped() {
    const VERSIONS: u64 = 60;
    const MAX_REQUESTS: usize = 200_000;
    let server = MemcachedServer::start();
    let live = Live::default();
    let a = client_sharing(memcached(&server, "rc"), live.clone()).await;
    let b = client_sharing(memcached(&server, "rc"), live.clone()).await;
    let published = AtomicU64::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (requests, hits) = (AtomicUsize::new(0), AtomicUsize::new(0));

    // Invalidations of other names, interleaved with the writer's: the log the pollers read
    // holds records that concern the page and records that do not.
    let noise = async {
        let mut n = 0u64;
        while !done.load(Ordering::SeqCst) {
            let cache = cache(if n.is_multiple_of(2) { &a } else { &b });
            match n % 2 {
                0 => cache.invalidate_tag(&format!("elsewhere-{n}")).await,
                _ => cache.invalidate(&format!("/elsewhere/{n}")).await,
            }
            .expect("confirmed");
            n += 1;
        }
        n
    };
    let writer = async {
        for version in 1..=VERSIONS {
            live.0.store(version, Ordering::SeqCst);
            let cache = cache(if version % 2 == 0 { &a } else { &b });
            match version % 3 {
                0 => cache.invalidate_tag("live").await,
                1 => cache.invalidate("/live").await,
                _ => {
                    rocket_route_cache::Invalidation::new()
                        .route(live::entries())
                        .run_in(cache)
                        .await
                }
            }
            .expect("confirmed");
            published.store(version, Ordering::SeqCst);
            // Let the readers serve some hits of this version.
            for _ in 0..20 {
                rocket::tokio::task::yield_now().await;
            }
        }
        done.store(true, Ordering::SeqCst);
        requests.load(Ordering::SeqCst)
    };
    let reader = |client: &'static str| {
        let (a, b) = (&a, &b);
        let (published, done, requests, hits) = (&published, &done, &requests, &hits);
        async move {
            let client = if client == "a" { a } else { b };
            while !done.load(Ordering::SeqCst)
                && requests.fetch_add(1, Ordering::SeqCst) < MAX_REQUESTS
            {
                let floor = published.load(Ordering::SeqCst);
                let (x_cache, body) = state(client, "/live", &[]).await;
                let seen: u64 = body.parse().unwrap();
                assert!(
                    seen >= floor,
                    "version {floor} was published before the request, {seen} ({x_cache}) served"
                );
                hits.fetch_add(usize::from(x_cache == "HIT"), Ordering::SeqCst);
                // A near hit completes without waiting on anything: give the writer, the other
                // readers and the epoch poller their turn, as separate connections would get.
                rocket::tokio::task::yield_now().await;
            }
        }
    };
    let (read_while_writing, unrelated, ..) = rocket::tokio::join!(
        writer,
        noise,
        reader("a"),
        reader("b"),
        reader("a"),
        reader("b")
    );
    let (requests, hits) = (requests.into_inner(), hits.into_inner());
    println!(
        "{VERSIONS} invalidations of the page and {unrelated} of other names under {requests} \
         requests on two instances: {hits} hits"
    );
    assert!(
        unrelated > VERSIONS / 2,
        "{unrelated} unrelated invalidations"
    );
    assert!(
        read_while_writing < MAX_REQUESTS,
        "the readers ran until the last version was published"
    );
    assert!(
        hits > requests / 4,
        "the page was served from the cache: {hits} of {requests}"
    );
}

/// An invalidation gets at least 500 ms, however short the per-request deadline: a server that
/// stalls for 200 ms still confirms it, where a lookup would have given up after 50 ms.
#[rocket::async_test]
async fn an_invalidation_outlasts_a_short_request_deadline() {
    let server = MemcachedServer::start();
    let mut config = Config::memcached([server.address()]);
    config.op_timeout = std::time::Duration::from_millis(50);
    config.breaker_failures = u32::MAX;
    let a = client(Cache::new(config).unwrap()).await;
    assert_eq!(state(&a, "/about", &[]).await.0, "MISS");

    server.pause();
    let started = std::time::Instant::now();
    let invalidation = async {
        let invalidated = cache(&a).invalidate("/about").await;
        (invalidated, started.elapsed())
    };
    let ((invalidated, took), resumed) = rocket::tokio::join!(invalidation, async {
        // The stall under test: the server answers again 200 ms later.
        rocket::tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        server.resume();
        started.elapsed()
    });
    // Confirmed by the server once it answered again, not given up on at the 50 ms deadline.
    invalidated.expect("confirmed after the stall");
    assert!(
        took >= resumed,
        "returned after {took:?}, the server answered after {resumed:?}"
    );
    println!("invalidation confirmed after a 200 ms stall, in {took:?}");
    assert_eq!(state(&a, "/about", &[]).await.0, "MISS");
}

/// Spellings of one value, as the route's parameter type reads them, and the path invalidated.
const SPELLINGS: &[(&[&str], &str)] = &[
    // `id: u32`: leading zeros, a sign, an encoded sign.
    (
        &[
            "/articles/05",
            "/articles/+5",
            "/articles/%2B5",
            "/articles/5",
        ],
        "/articles/5",
    ),
    // `amount: f64`: any float notation; -0 is 0.
    (
        &["/prices/5.0", "/prices/5e0", "/prices/.5E1", "/prices/+5."],
        "/prices/5",
    ),
    (&["/prices/-0", "/prices/0.000"], "/prices/0"),
    // `ratio: f32`: more digits than an f32 holds.
    (&["/ratios/0.30000001", "/ratios/0.3"], "/ratios/0.3"),
    // `path: PathBuf`: `..` pops a segment (never past the route's prefix), empty ones vanish.
    (
        &[
            "/files/x/../b",
            "/files/../b",
            "/files/x/y/../../b",
            "/files//b/",
        ],
        "/files/b",
    ),
    // `ip: Ipv6Addr`: IPv6 has many spellings.
    (
        &["/hosts/0:0:0:0:0:0:0:A", "/hosts/::A", "/hosts/0::a"],
        "/hosts/::a",
    ),
];

/// Paths near each group's value, which its invalidation leaves cached.
const NEIGHBOURS: &[&str] = &[
    "/articles/50",
    "/prices/5.5",
    "/ratios/0.4",
    "/files/x/b",
    "/hosts/::b",
];

async fn invalidating_one_spelling_drops_the_others(a: &Client) {
    for uri in SPELLINGS
        .iter()
        .flat_map(|(spellings, _)| *spellings)
        .chain(NEIGHBOURS)
    {
        assert_eq!(state(a, uri, &[]).await.0, "MISS", "{uri}");
        assert_eq!(state(a, uri, &[]).await.0, "HIT", "{uri}");
    }
    for (spellings, target) in SPELLINGS {
        cache(a).invalidate(*target).await.unwrap();
        for uri in *spellings {
            assert_eq!(state(a, uri, &[]).await.0, "MISS", "{uri} after {target}");
        }
    }
    for uri in NEIGHBOURS {
        assert_eq!(state(a, uri, &[]).await.0, "HIT", "{uri}");
    }
}

/// Another spelling of the same value (`/articles/05` for `id: u32`, `/files/x/../b` for a
/// `PathBuf`) serves the same page under its own key: invalidating one spelling drops them all.
#[rocket::async_test]
async fn uri_invalidation_reaches_every_spelling_of_the_value() {
    let server = MemcachedServer::start();
    invalidating_one_spelling_drops_the_others(&client(memcached(&server, "rc")).await).await;
    invalidating_one_spelling_drops_the_others(
        &client(Cache::new(Config::embedded()).unwrap()).await,
    )
    .await;
}

/// A scan of made-up URLs on a cached route (each a 404 miss) creates no counters: the
/// embedded store's counters stay few, and a targeted invalidation afterwards drops what it
/// targets, not every entry whose counters the scan would have pushed out of a bounded table.
#[rocket::async_test]
async fn a_404_scan_neither_grows_counters_nor_widens_the_next_invalidation() {
    const SCANNED: u64 = 70_000;
    let a = client(Cache::new(Config::embedded()).unwrap()).await;
    let pages: &[Variant] = &[("/about", &[]), ("/articles/6", &[]), ("/files/a/b", &[])];
    for (uri, _) in pages {
        assert_eq!(state(&a, uri, &[]).await.0, "MISS", "{uri}");
    }
    // Each path twice, with another query string (another key, the same path): a counter read
    // twice is one an LRU-like table keeps over those read once.
    for id in 0..SCANNED {
        for uri in [format!("/missing/{id}"), format!("/missing/{id}?again")] {
            let response = a.get(uri).dispatch().await;
            assert_eq!(response.status(), Status::NotFound);
        }
    }
    let held = rocket_route_cache::__private::counters_held(cache(&a)).expect("embedded");
    assert!(held < 100, "{SCANNED} misses left {held} counters");

    cache(&a).invalidate("/articles/5").await.unwrap();
    assert_states(&a, pages, "HIT").await;
    assert_states(&a, &[("/articles/5", &[])], "MISS").await;
}
