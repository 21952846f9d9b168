//! The benchmark app (`scripts/bench` starts it; see README "Performance and benchmarks"). Every route answers
//! the same 2 KiB body:
//!
//! - `/static`: plain handler, no cache (the ceiling: Rocket itself);
//! - `/floor`: plain handler doing one raw get of a stored 2 KiB value through the cache's own
//!   backend client and settings (the floor under any hit from that backend);
//! - `/floor-counted`: `/floor`'s raw get batched with a read of one invalidation counter, as
//!   a hit reads its entry with the namespace's epoch (what invalidation adds to a hit on the
//!   wire);
//! - `/hit`: `#[cached_route]`, served from the cache once warm;
//! - `/work`: plain handler burning about 2 ms of CPU;
//! - `/miss?n=..`: `/work`'s cached twin; driven with a unique query per request, so every
//!   request is a miss (get, run, store);
//! - `/hot`: one key with a 1 s TTL, 2 ms of work per run; `/hot-runs` counts the runs;
//! - `/invalidate`: one `invalidate_tag`, answering how long it took in microseconds;
//! - `/polls`: how many epoch polls the cache has sent.
//!
//! The backend is the global cache: Memcached when `MEMCACHED_SERVERS` is set, else embedded.
//! `BENCH_NEAR=0` turns the near tier off (far hits only); `BENCH_COALESCE=0` turns coalescing
//! off.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rocket::fairing::AdHoc;
use rocket::{get, launch, routes};
use rocket_route_cache::__private::bench;
use rocket_route_cache::{cached_route, Config};

const BODY_LEN: usize = 2048;
const FLOOR_KEY: &str = "bench:floor";

fn body() -> &'static str {
    static BODY: OnceLock<String> = OnceLock::new();
    BODY.get_or_init(|| {
        let mut body = "cached_route benchmark body, 2 KiB of text.\n".repeat(BODY_LEN / 16);
        body.truncate(BODY_LEN);
        body
    })
}

/// CPU work that the optimizer cannot remove. Never inlined: `/work` and `/miss` must run the
/// same machine code, or the loop's codegen inside each handler decides the ratio (it did: the
/// copy inlined into the cached handler ran about 10% slower).
#[inline(never)]
fn burn(iterations: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    for i in 0..iterations {
        x = x.rotate_left(5) ^ black_box(i).wrapping_mul(0x0100_0000_01b3);
    }
    black_box(x)
}

/// Iterations of [`burn`] that take about 2 ms here, measured once at start.
fn two_ms() -> u64 {
    static ITERATIONS: OnceLock<u64> = OnceLock::new();
    *ITERATIONS.get_or_init(|| {
        let probe = 2_000_000;
        let started = Instant::now();
        burn(probe);
        let per_iteration = started.elapsed().as_secs_f64() / probe as f64;
        (Duration::from_millis(2).as_secs_f64() / per_iteration) as u64
    })
}

#[get("/static")]
fn fixed() -> &'static str {
    body()
}

#[get("/floor")]
async fn floor() -> &'static str {
    let found = bench::raw_get(rocket_route_cache::global(), FLOOR_KEY).await;
    debug_assert_eq!(found, Some(BODY_LEN));
    body()
}

#[get("/floor-counted")]
async fn floor_counted() -> &'static str {
    let found = bench::raw_get_counted(rocket_route_cache::global(), FLOOR_KEY, 1).await;
    debug_assert_eq!(found, Some(BODY_LEN));
    body()
}

#[cached_route(ttl = 3600)]
#[get("/hit")]
fn hit() -> &'static str {
    body()
}

#[get("/work")]
fn work() -> &'static str {
    burn(two_ms());
    body()
}

#[cached_route(ttl = 60)]
#[get("/miss?<n>")]
fn miss(n: Option<&str>) -> &'static str {
    let _ = n;
    burn(two_ms());
    body()
}

/// A hot key expiring every second: 2 ms of work per handler run, runs counted.
#[cached_route(ttl = 1)]
#[get("/hot")]
fn hot() -> &'static str {
    HOT_RUNS.fetch_add(1, Ordering::Relaxed);
    burn(two_ms());
    body()
}

static HOT_RUNS: AtomicU64 = AtomicU64::new(0);

#[get("/hot-runs")]
fn hot_runs() -> String {
    HOT_RUNS.load(Ordering::Relaxed).to_string()
}

/// One invalidation of a tag no route declares: what `invalidate*` costs its caller, the poll
/// horizon's wait included.
#[get("/invalidate")]
async fn invalidate() -> String {
    let started = Instant::now();
    rocket_route_cache::invalidate_tag("bench-unused")
        .await
        .expect("confirmed");
    started.elapsed().as_micros().to_string()
}

#[get("/polls")]
fn polls() -> String {
    rocket_route_cache::__private::epoch_polls(rocket_route_cache::global()).to_string()
}

#[launch]
fn rocket() -> _ {
    // `BENCH_COALESCE=0`: the same app without stampede protection, to measure what it saves.
    let mut config = Config::from_env().expect("MEMCACHED_SERVERS is valid");
    config.coalesce = std::env::var("BENCH_COALESCE").map_or(true, |v| v != "0");
    if std::env::var("BENCH_NEAR").is_ok_and(|v| v == "0") {
        config.near_capacity = 0;
    }
    rocket_route_cache::install(config).expect("installed before launch");
    let routes = routes![
        fixed,
        floor,
        floor_counted,
        hit,
        work,
        miss,
        hot,
        hot_runs,
        invalidate,
        polls
    ];
    rocket::build()
        .mount("/", routes)
        .attach(AdHoc::on_liftoff("bench setup", |rocket| {
            Box::pin(async move {
                let cache = rocket_route_cache::global();
                let seeded = bench::raw_set(cache, FLOOR_KEY, body().as_bytes()).await;
                println!(
                    "bench_app: port {} backend: {}; floor value seeded: {seeded}; 2 ms = {} iterations",
                    rocket.config().port,
                    cache.describe(),
                    two_ms()
                );
            })
        }))
}
