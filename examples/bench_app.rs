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
//! - `/polls`: how many epoch polls the cache has sent;
//!
//! and, for the site-shaped traffic (`scripts/bench`, "A real site's traffic"):
//!
//! - `/site/<group>/<id>`: `#[cached_route]` tagged `group:{group}`, a page of 2 to 20 KiB (its
//!   size follows from `id`), rendered with about 2 ms of work (none while `/bench/work?on=0`,
//!   to fill the cache quickly); `/site-off/<group>/<id>`: the same page, uncached;
//! - `/bench/churn?rate=R&kind=unrelated|related`: from now on, R invalidations per second
//!   issued from inside the app, a task per call: of tags no page carries, or of `group:{n}`
//!   (1% of the pages each, n cycling over 0..100); `/bench/churned`: how many were issued and
//!   how many confirmed;
//! - `/bench/stats`: the cache's counters (`hits near_hits misses stale bypasses invalidated`).
//!
//! The backend is the global cache: Memcached when `MEMCACHED_SERVERS` is set, else embedded.
//! `BENCH_NEAR=0` turns the near tier off (far hits only); `BENCH_COALESCE=0` turns coalescing
//! off; `BENCH_POLL=0` turns the epoch polls off.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    let found = bench::raw_get(rocket_route_cache::config::global(), FLOOR_KEY).await;
    debug_assert_eq!(found, Some(BODY_LEN));
    body()
}

#[get("/floor-counted")]
async fn floor_counted() -> &'static str {
    let found = bench::raw_get_counted(rocket_route_cache::config::global(), FLOOR_KEY, 1).await;
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
    rocket_route_cache::__private::epoch_polls(rocket_route_cache::config::global()).to_string()
}

/// The largest page of the site-shaped traffic.
const PAGE_MAX: usize = 20 * 1024;

/// `PAGE_MAX` bytes of text, sliced for each page.
fn page_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut text =
            "A page of the benchmark site, its size set by its id.\n".repeat(PAGE_MAX / 32);
        text.truncate(PAGE_MAX);
        text
    })
}

/// Page `id`'s body: 2 to 20 KiB, the same for every request of it.
fn page(id: u32) -> &'static str {
    let mut x = u64::from(id).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let len = 2048 + (x % (PAGE_MAX as u64 - 2048 + 1)) as usize;
    &page_text()[..len]
}

/// Whether pages are rendered with their 2 ms of work.
static WORK: AtomicBool = AtomicBool::new(true);

fn render(id: u32) -> &'static str {
    if WORK.load(Ordering::Relaxed) {
        burn(two_ms());
    }
    page(id)
}

#[cached_route(ttl = 3600, tags = ["group:{group}"])]
#[get("/site/<group>/<id>")]
fn site(group: u32, id: u32) -> &'static str {
    let _ = group;
    render(id)
}

#[get("/site-off/<group>/<id>")]
fn site_off(group: u32, id: u32) -> &'static str {
    let _ = group;
    render(id)
}

#[get("/bench/work?<on>")]
fn work_switch(on: u8) -> &'static str {
    WORK.store(on != 0, Ordering::Relaxed);
    "ok"
}

/// Invalidations per second the churn task issues, and of what (`RELATED`: `group:{n}`).
static CHURN_RATE: AtomicU64 = AtomicU64::new(0);
static CHURN_RELATED: AtomicBool = AtomicBool::new(false);
static CHURN_ISSUED: AtomicU64 = AtomicU64::new(0);
static CHURN_CONFIRMED: AtomicU64 = AtomicU64::new(0);

#[get("/bench/churn?<rate>&<kind>")]
fn churn(rate: u64, kind: &str) -> &'static str {
    CHURN_RELATED.store(kind == "related", Ordering::Relaxed);
    CHURN_RATE.store(rate, Ordering::Relaxed);
    "ok"
}

#[get("/bench/churned")]
fn churned() -> String {
    format!(
        "{} {}",
        CHURN_ISSUED.load(Ordering::Relaxed),
        CHURN_CONFIRMED.load(Ordering::Relaxed)
    )
}

/// Issues `CHURN_RATE` invalidations per second, each in a task of its own (a call waits for
/// the poll horizon; calls overlap, as edits from many users would).
async fn churn_task() {
    let mut next = rocket::tokio::time::Instant::now();
    loop {
        let rate = CHURN_RATE.load(Ordering::Relaxed);
        if rate == 0 {
            rocket::tokio::time::sleep(Duration::from_millis(20)).await;
            next = rocket::tokio::time::Instant::now();
            continue;
        }
        next += Duration::from_secs(1) / u32::try_from(rate).unwrap_or(u32::MAX);
        rocket::tokio::time::sleep_until(next).await;
        let n = CHURN_ISSUED.fetch_add(1, Ordering::Relaxed);
        let tag = match CHURN_RELATED.load(Ordering::Relaxed) {
            true => format!("group:{}", n % 100),
            false => format!("unrelated:{n}"),
        };
        rocket::tokio::spawn(async move {
            if rocket_route_cache::invalidate_tag(tag).await.is_ok() {
                CHURN_CONFIRMED.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

#[get("/bench/stats")]
fn site_stats() -> String {
    let s = rocket_route_cache::config::global().stats();
    format!(
        "{} {} {} {} {} {}",
        s.hits, s.near_hits, s.misses, s.stale, s.bypasses, s.invalidated
    )
}

#[launch]
fn rocket() -> _ {
    // `BENCH_COALESCE=0`: the same app without stampede protection, to measure what it saves.
    let mut config = Config::from_env().expect("MEMCACHED_SERVERS is valid");
    config.coalesce = std::env::var("BENCH_COALESCE").map_or(true, |v| v != "0");
    if std::env::var("BENCH_NEAR").is_ok_and(|v| v == "0") {
        config.near_capacity = 0;
    }
    // `BENCH_POLL=0`: no epoch polls (and so no near tier), to measure what polls cost the wire.
    if std::env::var("BENCH_POLL").is_ok_and(|v| v == "0") {
        config.epoch_poll = Duration::ZERO;
    }
    rocket_route_cache::config::install(config).expect("installed before launch");
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
        polls,
        site,
        site_off,
        work_switch,
        churn,
        churned,
        site_stats
    ];
    rocket::build()
        .mount("/", routes)
        .attach(AdHoc::on_liftoff("bench setup", |rocket| {
            Box::pin(async move {
                rocket::tokio::spawn(churn_task());
                let cache = rocket_route_cache::config::global();
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
