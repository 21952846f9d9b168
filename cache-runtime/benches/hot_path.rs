//! Micro-benchmarks of the hit path's pure parts, in ns per operation:
//! building a key from a realistic request, and encoding and decoding a stored 2 KiB response.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rocket::http::{Header, Method};
use rocket::local::blocking::Client;
use rocket::route::{Handler, Outcome};
use rocket::{Data, Request, Route};
use rocket_route_cache::__private::bench::{key_for, RouteOptions, StoredResponse};
use rocket_route_cache::__private::GuardKey;

#[derive(Clone)]
struct Nothing;

#[rocket::async_trait]
impl Handler for Nothing {
    async fn handle<'r>(&self, request: &'r Request<'_>, _: Data<'r>) -> Outcome<'r> {
        Outcome::from(request, ())
    }
}

static OPTIONS: RouteOptions = RouteOptions::new(60);

fn key_building(c: &mut Criterion) {
    let client = Client::untracked(rocket::build()).expect("rocket");
    let mut route = Route::new(Method::Get, "/article/<id>?<lang>", Nothing);
    route.name = Some("article".into());
    let request = client
        .get("/article/1234?lang=en&utm_source=newsletter&utm_medium=email&page=2")
        .header(Header::new("Host", "www.example.com"))
        .header(Header::new("Accept", "text/html,application/xhtml+xml"))
        .header(Header::new(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
        ));
    let request: &Request<'_> = request.inner();
    c.bench_function("key: build from a realistic request", |b| {
        let guards = GuardKey::default();
        b.iter(|| {
            key_for(
                black_box(request),
                black_box(&route),
                "rc",
                &OPTIONS,
                &guards,
            )
        })
    });
}

fn frame(c: &mut Criterion) {
    let headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("ETag", "\"5f3a9c\""),
        ("Cache-Control", "public, max-age=3600"),
    ];
    let body = vec![b'x'; 2048];
    let build =
        || StoredResponse::build(200, headers.into_iter(), &body, 1_795_000_000, 3600).unwrap();
    let frame = build().frame().to_vec();
    c.bench_function("frame: encode 2 KiB response", |b| b.iter(build));
    c.bench_function("frame: decode 2 KiB response", |b| {
        b.iter(|| StoredResponse::decode(black_box(frame.clone())))
    });
    c.bench_function("frame: encode + decode 2 KiB response", |b| {
        b.iter(|| StoredResponse::decode(black_box(build().frame().to_vec())))
    });
}

/// The whole request as Rocket's local client dispatches it (routing, guards, handler,
/// response; no sockets): a plain route against the same body served from the embedded store.
fn through_rocket(c: &mut Criterion) {
    static BODY: &str = include_str!("hot_path.rs");

    #[rocket::get("/static")]
    fn fixed() -> &'static str {
        &BODY[..2048]
    }

    #[rocket_route_cache::cached_route(ttl = 3600)]
    #[rocket::get("/hit")]
    fn hit() -> &'static str {
        &BODY[..2048]
    }

    let cache = rocket_route_cache::Cache::new(rocket_route_cache::Config::embedded()).unwrap();
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::release_default()
    })
    .manage(cache)
    .mount("/", rocket::routes![fixed, hit]);
    let client = Client::untracked(rocket).expect("rocket");
    assert_eq!(
        client.get("/hit").dispatch().headers().get_one("X-Cache"),
        Some("MISS")
    );
    assert_eq!(
        client.get("/hit").dispatch().headers().get_one("X-Cache"),
        Some("HIT")
    );
    c.bench_function("rocket local: static 2 KiB", |b| {
        b.iter(|| client.get("/static").dispatch().into_bytes())
    });
    c.bench_function("rocket local: embedded hit 2 KiB", |b| {
        b.iter(|| client.get("/hit").dispatch().into_bytes())
    });
}

criterion_group!(benches, key_building, frame, through_rocket);
criterion_main!(benches);
