//! Micro-benchmarks of the hit path's pure parts, in ns per operation:
//! building a key from a realistic request, and encoding and decoding a stored 2 KiB response.

use std::hint::black_box;

use bytes::Bytes;
use cache_runtime::__private::bench::{key_for, StoredResponse};
use criterion::{criterion_group, criterion_main, Criterion};
use rocket::http::{Header, Method};
use rocket::local::blocking::Client;
use rocket::route::{Handler, Outcome};
use rocket::{Data, Request, Route};

#[derive(Clone)]
struct Nothing;

#[rocket::async_trait]
impl Handler for Nothing {
    async fn handle<'r>(&self, request: &'r Request<'_>, _: Data<'r>) -> Outcome<'r> {
        Outcome::from(request, ())
    }
}

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
        b.iter(|| key_for(black_box(request), black_box(&route), "rc"))
    });
}

fn frame(c: &mut Criterion) {
    let entry = StoredResponse {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "text/html; charset=utf-8".into()),
            ("ETag".into(), "\"5f3a9c\"".into()),
            ("Cache-Control".into(), "public, max-age=3600".into()),
        ],
        body: Bytes::from(vec![b'x'; 2048]),
        created: 1_795_000_000,
        ttl: 3600,
    };
    let frame = entry.encode();
    c.bench_function("frame: encode 2 KiB response", |b| {
        b.iter(|| black_box(&entry).encode())
    });
    c.bench_function("frame: decode 2 KiB response", |b| {
        b.iter(|| StoredResponse::decode(black_box(frame.clone())))
    });
    c.bench_function("frame: encode + decode 2 KiB response", |b| {
        b.iter(|| StoredResponse::decode(black_box(&entry).encode()))
    });
}

criterion_group!(benches, key_building, frame);
criterion_main!(benches);
