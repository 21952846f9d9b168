//! Range requests on a stored entry (RFC 9110 section 14), over the wire (a real server on
//! 127.0.0.1, HTTP/1.1), on Memcached and the embedded store: a single `bytes` range answers 206
//! with `Content-Range`, one past the end 416, several ranges or an `If-Range` the entry does not
//! match the whole entry; a conditional request is answered 304 first; HEAD keeps working.

use cached_route_suite::{http1, launch, launch_alone, loopback_config, MemcachedServer, RawReply};
use rocket::response::{self, Responder};
use rocket::{get, routes, Request};
use rocket_route_cache::{cached_route, Cache, Config};

/// Ten bytes with a strong validator.
struct Document;

impl<'r> Responder<'r, 'static> for Document {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let mut response = "0123456789".respond_to(request)?;
        response.set_raw_header("ETag", "\"v1\"");
        response.set_raw_header("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT");
        Ok(response)
    }
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for Document {}

#[cached_route(ttl = 600)]
#[get("/doc")]
fn doc() -> Document {
    Document
}

fn app(cache: Cache) -> rocket::Rocket<rocket::Build> {
    rocket::custom(loopback_config())
        .manage(cache)
        .mount("/", routes![doc])
}

async fn get(port: u16, extra: &str) -> RawReply {
    http1(
        port,
        &format!("GET /doc HTTP/1.1\r\nHost: localhost{extra}"),
    )
    .await
}

/// (status, X-Cache, Content-Range, body).
fn seen(reply: &RawReply) -> (u16, &str, Option<&str>, &str) {
    (
        reply.status,
        reply.x_cache(),
        reply.one("Content-Range"),
        reply.body.as_str(),
    )
}

async fn ranges_of_a_stored_entry(port: u16) {
    // The miss answers whole (a server may ignore `Range`); it stores the whole entry.
    let miss = get(port, "\r\nRange: bytes=2-5").await;
    assert_eq!(seen(&miss), (200, "MISS", None, "0123456789"));
    let part = get(port, "\r\nRange: bytes=2-5").await;
    assert_eq!(seen(&part), (206, "HIT", Some("bytes 2-5/10"), "2345"));
    assert_eq!(part.one("Content-Length"), Some("4"));
    assert_eq!(part.one("ETag"), Some("\"v1\""));
    let suffix = get(port, "\r\nRange: bytes=-3").await;
    assert_eq!(seen(&suffix), (206, "HIT", Some("bytes 7-9/10"), "789"));
    let open = get(port, "\r\nRange: bytes=8-").await;
    assert_eq!(seen(&open), (206, "HIT", Some("bytes 8-9/10"), "89"));
    let past = get(port, "\r\nRange: bytes=10-").await;
    assert_eq!(seen(&past), (416, "HIT", Some("bytes */10"), ""));
    let several = get(port, "\r\nRange: bytes=0-1,4-5").await;
    assert_eq!(seen(&several), (200, "HIT", None, "0123456789"));
    let other_unit = get(port, "\r\nRange: items=0-1").await;
    assert_eq!(seen(&other_unit), (200, "HIT", None, "0123456789"));
    // If-Range: the part only while the client's validator is the entry's.
    let current = get(port, "\r\nRange: bytes=0-1\r\nIf-Range: \"v1\"").await;
    assert_eq!(seen(&current), (206, "HIT", Some("bytes 0-1/10"), "01"));
    let by_date = "\r\nRange: bytes=0-1\r\nIf-Range: Tue, 01 Dec 2026 10:00:00 GMT";
    assert_eq!(seen(&get(port, by_date).await).0, 206);
    let changed = get(port, "\r\nRange: bytes=0-1\r\nIf-Range: \"v0\"").await;
    assert_eq!(seen(&changed), (200, "HIT", None, "0123456789"));
    // A conditional request the entry satisfies is a 304 before any range.
    let unchanged = get(port, "\r\nRange: bytes=0-1\r\nIf-None-Match: \"v1\"").await;
    assert_eq!((unchanged.status, unchanged.body.as_str()), (304, ""));
    // HEAD keeps working: the whole representation's head. (With a `Range`, Rocket runs the GET
    // route with the method rewritten to GET, so the route answers as for a GET: see the guide.)
    let head = http1(port, "HEAD /doc HTTP/1.1\r\nHost: localhost").await;
    assert_eq!((head.status, head.one("Content-Length")), (200, Some("10")));
    assert_eq!((head.x_cache(), head.body.as_str()), ("HIT", ""));
}

#[rocket::async_test]
async fn memcached_a_stored_entry_answers_byte_ranges() {
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let running = launch(app(cache), memcached).await;
    ranges_of_a_stored_entry(running.port).await;
}

#[rocket::async_test]
async fn embedded_a_stored_entry_answers_byte_ranges() {
    let running = launch_alone(app(Cache::new(Config::embedded()).unwrap())).await;
    ranges_of_a_stored_entry(running.port).await;
}
