//! Freshness as RFC 9111 section 4.2 computes it, over the wire: a real Rocket server on
//! 127.0.0.1 backed by a real memcached, spoken to in raw HTTP/1.1. The handler stands for an
//! app that passes on what it fetched elsewhere: it answers with the `Age`, `Date`, `Expires`,
//! `Cache-Control` and `Connection` the request's query asks for.

use std::time::{Duration, SystemTime};

use cached_route_suite::{http1, loopback_config, MemcachedServer, RawReply as Reply, RunningApp};
use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::{get, routes, Request, Response};
use rocket_route_cache::{cached_route, Cache, Config};

/// A response with the given status, header lines (in order, repeated names kept) and body.
#[derive(Debug)]
struct Upstream {
    status: Status,
    headers: Vec<(&'static str, String)>,
}

impl<'r> Responder<'r, 'static> for Upstream {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(self.status);
        for (name, value) in self.headers {
            response.raw_header_adjoin(name, value);
        }
        let body = "upstream body";
        response.sized_body(body.len(), std::io::Cursor::new(body));
        Ok(response.finalize())
    }
}

/// `now` moved by `offset` seconds, as an HTTP date.
fn http_date(offset: i64) -> String {
    let now = SystemTime::now();
    let at = if offset >= 0 {
        now + Duration::from_secs(offset.unsigned_abs())
    } else {
        now - Duration::from_secs(offset.unsigned_abs())
    };
    httpdate::fmt_http_date(at)
}

/// `date`: the `Date`, seconds from now; `expires`: the `Expires`, seconds from that `Date`
/// (from now without one); `age` and `connection`: one line each; with `connection`, the
/// response also carries `X-Hop` (to be named there) and `X-Kept`. `tag` only tells entries
/// apart.
#[cached_route(ttl = 60)]
#[get("/upstream?<tag>&<cc>&<age>&<date>&<expires>&<connection>")]
fn upstream(
    tag: &str,
    cc: Option<&str>,
    age: Vec<&str>,
    date: Option<i64>,
    expires: Option<i64>,
    connection: Vec<&str>,
) -> Upstream {
    let _ = tag;
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    headers.extend(cc.map(|cc| ("Cache-Control", cc.to_owned())));
    headers.extend(age.iter().map(|age| ("Age", (*age).to_owned())));
    headers.extend(date.map(|date| ("Date", http_date(date))));
    headers.extend(expires.map(|expires| ("Expires", http_date(date.unwrap_or(0) + expires))));
    if !connection.is_empty() {
        headers.extend(connection.iter().map(|c| ("Connection", (*c).to_owned())));
        headers.push(("X-Hop", "for this connection only".to_owned()));
        headers.push(("X-Kept", "end to end".to_owned()));
    }
    Upstream {
        status: Status::Ok,
        headers,
    }
}

/// A route that varies on a header and a handler that says `Vary: *`.
#[cached_route(ttl = 60, vary = ["Accept-Language"])]
#[get("/vary-star")]
fn vary_star() -> Upstream {
    Upstream {
        status: Status::Ok,
        headers: vec![("Vary", "*".to_owned())],
    }
}

/// 300 Multiple Choices, listed in `statuses`.
#[cached_route(ttl = 60, statuses = [200, 300])]
#[get("/choices")]
fn choices() -> Upstream {
    Upstream {
        status: Status::MultipleChoices,
        headers: vec![("Link", "</a>; rel=\"alternate\"".to_owned())],
    }
}

/// The app on 127.0.0.1, with a memcached of its own.
async fn launch() -> RunningApp {
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let app = rocket::custom(loopback_config())
        .manage(cache)
        .mount("/", routes![upstream, vary_star, choices]);
    cached_route_suite::launch(app, memcached).await
}

/// The `Age` of `reply`.
fn age(reply: &Reply) -> u64 {
    reply.one("Age").expect("an Age").parse().expect("a number")
}

/// One HTTP/1.1 GET of `target` over a fresh connection.
async fn get(port: u16, target: &str) -> Reply {
    http1(
        port,
        &format!("GET {target} HTTP/1.1\r\nHost: fresh.example"),
    )
    .await
}

/// The same target twice: the first runs the handler; the second, if it may, is a hit.
async fn twice(port: u16, target: &str) -> (Reply, Reply) {
    let first = get(port, target).await;
    assert_eq!((first.status, first.x_cache()), (200, "MISS"), "{target}");
    (first, get(port, target).await)
}

#[rocket::async_test]
async fn a_received_age_counts_against_the_lifetime_and_in_the_age_of_hits() {
    let server = launch().await;
    let port = server.port;
    // Older than its max-age, or exactly as old: stale on arrival, never reused.
    for age in ["40", "30"] {
        let target = format!("/upstream?tag=a&cc=max-age%3D30&age={age}");
        let (_, second) = twice(port, &target).await;
        assert_eq!(second.x_cache(), "MISS", "Age {age} > max-age was reused");
    }
    // Younger: reused, and the hit's Age is the received one plus the time stored.
    let (_, hit) = twice(port, "/upstream?tag=a&cc=max-age%3D30&age=10").await;
    assert_eq!(hit.x_cache(), "HIT");
    assert!(
        (10..=11).contains(&age(&hit)),
        "Age on the hit: {}",
        age(&hit)
    );
    cached_route_suite::next_second().await;
    let later = get(port, "/upstream?tag=a&cc=max-age%3D30&age=10").await;
    assert_eq!(later.x_cache(), "HIT");
    assert!(
        (11..=12).contains(&age(&later)),
        "Age a second later: {}",
        age(&later)
    );
    // Without a lifetime of its own, the route's ttl counts from when the entry is stored;
    // the Age it arrived with still shows.
    let (_, hit) = twice(port, "/upstream?tag=a&age=70").await;
    assert_eq!(hit.x_cache(), "HIT");
    assert!((70..=71).contains(&age(&hit)), "Age {}", age(&hit));
}

#[rocket::async_test]
async fn age_is_read_as_rfc_9111_says() {
    let server = launch().await;
    let port = server.port;
    let with = |age: &str| format!("/upstream?tag=p&cc=max-age%3D30&{age}");
    // A list counts by its first member; several lines are one list.
    for stale in ["age=40%2C%205", "age=40&age=5"] {
        let (_, second) = twice(port, &with(stale)).await;
        assert_eq!(
            second.x_cache(),
            "MISS",
            "{stale}: the first member, 40, counts"
        );
    }
    let (_, hit) = twice(port, &with("age=5%2C%2040")).await;
    assert_eq!(hit.x_cache(), "HIT");
    assert!((5..=6).contains(&age(&hit)), "Age {}", age(&hit));
    // Not delta-seconds (a suffix): the field is ignored, not read as 40.
    let (_, hit) = twice(port, &with("age=40s")).await;
    assert_eq!(hit.x_cache(), "HIT");
    assert!(age(&hit) <= 1, "Age {}", age(&hit));
    // 2^31 and beyond (past what u32 or u64 hold too) are the largest age, not an error that
    // leaves the response fresh.
    for huge in [
        "2147483648",
        "4294967296",
        "18446744073709551616",
        "99999999999999999999999",
    ] {
        let (_, second) = twice(port, &with(&format!("age={huge}"))).await;
        assert_eq!(second.x_cache(), "MISS", "Age {huge} was reused");
    }
}

#[rocket::async_test]
async fn a_hit_carries_the_origin_date_and_its_apparent_age() {
    let server = launch().await;
    let port = server.port;
    // The handler's own Date, 20 seconds old: replayed as is, and its age counts.
    let (miss, hit) = twice(port, "/upstream?tag=d&date=-20").await;
    assert_eq!(hit.x_cache(), "HIT");
    assert_eq!(
        hit.one("Date"),
        miss.one("Date"),
        "the hit's Date is the origin's"
    );
    assert!(
        (20..=21).contains(&age(&hit)),
        "apparent age: Age {}",
        age(&hit)
    );
    // Without one: the time it was generated, on the miss and on every hit.
    let miss = get(port, "/upstream?tag=d").await;
    let generated = miss.one("Date").expect("a Date").to_owned();
    cached_route_suite::next_second().await;
    let hit = get(port, "/upstream?tag=d").await;
    assert_eq!(hit.x_cache(), "HIT");
    assert_eq!(
        hit.one("Date"),
        Some(generated.as_str()),
        "a hit's Date is the generation time"
    );
    assert!(age(&hit) >= 1);
}

#[rocket::async_test]
async fn expires_counts_from_date_not_from_the_cache_clock() {
    let server = launch().await;
    let port = server.port;
    // The origin's clock runs 100 s ahead: `Expires - now` would be 100 s more than it said.
    for (expires, why) in [(0, "Expires = Date"), (-10, "Expires before Date")] {
        let target = format!("/upstream?tag=e&date=100&expires={expires}");
        let (_, second) = twice(port, &target).await;
        assert_eq!(
            second.x_cache(),
            "MISS",
            "{why}: stale on arrival, yet reused"
        );
    }
    let (_, second) = twice(port, "/upstream?tag=e&date=100&expires=30&age=40").await;
    assert_eq!(
        second.x_cache(),
        "MISS",
        "Age 40 > Expires - Date = 30, yet reused"
    );
    let (_, hit) = twice(port, "/upstream?tag=e&date=100&expires=30&age=10").await;
    assert_eq!(hit.x_cache(), "HIT");
    assert!((10..=11).contains(&age(&hit)));
    // The origin's clock runs 100 s behind: a lifetime of 130 s, of which 100 s have gone.
    let (_, hit) = twice(port, "/upstream?tag=e&date=-100&expires=130").await;
    assert_eq!(hit.x_cache(), "HIT");
    assert!((100..=101).contains(&age(&hit)), "Age {}", age(&hit));
}

#[rocket::async_test]
async fn vary_star_stays_star_on_a_route_that_varies() {
    let server = launch().await;
    for _ in 0..2 {
        let reply = get(server.port, "/vary-star").await;
        assert_eq!(reply.x_cache(), "MISS", "Vary: * is never stored");
        assert_eq!(reply.all("Vary"), ["*"]);
    }
}

#[rocket::async_test]
async fn multiple_choices_is_stored_when_listed() {
    let server = launch().await;
    let first = get(server.port, "/choices").await;
    assert_eq!((first.status, first.x_cache()), (300, "MISS"));
    let second = get(server.port, "/choices").await;
    assert_eq!((second.status, second.x_cache()), (300, "HIT"));
    assert_eq!(second.one("Link"), Some("</a>; rel=\"alternate\""));
}

#[rocket::async_test]
async fn headers_named_in_connection_are_neither_stored_nor_replayed() {
    let server = launch().await;
    let port = server.port;
    for connection in [
        "connection=X-Hop",
        "connection=close%2C%20x-hop",
        "connection=close&connection=X-HOP",
    ] {
        let (_, hit) = twice(port, &format!("/upstream?tag=c&{connection}")).await;
        assert_eq!(hit.x_cache(), "HIT");
        assert_eq!(hit.one("X-Kept"), Some("end to end"), "{connection}");
        assert_eq!(
            hit.one("X-Hop"),
            None,
            "{connection}: a hop-by-hop header was replayed"
        );
    }
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for Upstream {}
