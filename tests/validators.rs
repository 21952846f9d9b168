//! Validators over the wire (RFC 9110 sections 8.8, 13 and 15.4.5): a real Rocket server on
//! 127.0.0.1, spoken to in raw HTTP/1.1, on the embedded store and on a real memcached. A
//! conditional GET or HEAD is answered `304 Not Modified` from the entry's `ETag`
//! (`If-None-Match`) or `Last-Modified` (`If-Modified-Since`), on hits and on the miss that
//! stores it; and the `ETag` the cache makes up stays true when a response fairing gzips the
//! body after the cache has stored it.

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use cached_route_suite::{
    http1, http1_bytes, loopback_config, MemcachedServer, RawReply as Reply, RunningApp,
};
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder};
use rocket::{get, routes, Request, Response};
use rocket_route_cache::{cached_route, Cache, Config};

/// The handler's own `Last-Modified`.
const MODIFIED: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// `MODIFIED` moved by `offset` seconds, as an HTTP date.
fn around_modified(offset: i64) -> String {
    let modified = httpdate::parse_http_date(MODIFIED).unwrap();
    let at = if offset >= 0 {
        modified + Duration::from_secs(offset.unsigned_abs())
    } else {
        modified - Duration::from_secs(offset.unsigned_abs())
    };
    httpdate::fmt_http_date(at)
}

/// A page with every header a 304 must repeat (RFC 9110 section 15.4.5) and its own
/// `Last-Modified` and `ETag`.
#[derive(Debug)]
struct Dated;

impl<'r> Responder<'r, 'static> for Dated {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let body = "modified long ago";
        let expires = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        Ok(Response::build()
            .status(Status::Ok)
            .header(ContentType::Plain)
            .raw_header("Last-Modified", MODIFIED)
            .raw_header("ETag", "\"m1\"")
            .raw_header("Cache-Control", "public, max-age=60")
            .raw_header("Expires", expires)
            .raw_header("Content-Location", "/documents/dated")
            .sized_body(body.len(), std::io::Cursor::new(body))
            .finalize())
    }
}

/// `tag` only tells entries apart.
#[cached_route(ttl = 60, vary = ["Accept-Language"])]
#[get("/dated?<tag>")]
fn dated(tag: &str) -> Dated {
    let _ = tag;
    Dated
}

/// No validator of its own: the cache adds both.
#[cached_route(ttl = 60)]
#[get("/plain?<tag>")]
fn plain(tag: &str) -> String {
    format!("plain page {tag}")
}

/// A page long enough to be worth compressing.
fn long_page(tag: &str) -> String {
    format!("{tag}: ").repeat(200)
}

#[cached_route(ttl = 60)]
#[get("/long?<tag>")]
fn long(tag: &str) -> String {
    long_page(tag)
}

/// A compression fairing as apps write them: it gzips a success's body when the client
/// accepts gzip, says so in `Content-Encoding` and `Vary`, and leaves every other header,
/// `ETag` included, as it found it. It runs after the cached handler has returned, as every
/// response fairing does.
#[derive(Debug)]
struct Gzip;

#[rocket::async_trait]
impl Fairing for Gzip {
    fn info(&self) -> Info {
        Info {
            name: "gzip bodies",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let accepts_gzip = request
            .headers()
            .get("Accept-Encoding")
            .any(|value| value.split(',').any(|coding| coding.trim() == "gzip"));
        let status = response.status();
        if status != Status::Ok && status != Status::NotModified {
            return;
        }
        response.adjoin_header(Header::new("Vary", "Accept-Encoding"));
        if !accepts_gzip || status != Status::Ok || response.headers().contains("Content-Encoding")
        {
            return;
        }
        let body = response.body_mut().to_bytes().await.expect("a body");
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&body).unwrap();
        let gzipped = encoder.finish().unwrap();
        response.set_raw_header("Content-Encoding", "gzip");
        response.set_sized_body(gzipped.len(), std::io::Cursor::new(gzipped));
    }
}

/// Where the app keeps its entries.
#[derive(Debug, Clone, Copy)]
enum Store {
    Embedded,
    Memcached,
}

const STORES: [Store; 2] = [Store::Embedded, Store::Memcached];

/// The app on 127.0.0.1, with its entries in `store`, the gzip fairing attached.
async fn launch(store: Store) -> RunningApp {
    let memcached = MemcachedServer::start();
    let config = match store {
        Store::Embedded => Config::embedded(),
        Store::Memcached => Config::memcached([memcached.address()]),
    };
    let app = rocket::custom(loopback_config())
        .manage(Cache::new(config).unwrap())
        .mount("/", routes![dated, plain, long])
        .attach(Gzip);
    cached_route_suite::launch(app, memcached).await
}

/// The request line for `target` with `method`, and these header lines.
fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> String {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: validators.example");
    for (name, value) in headers {
        head.push_str(&format!("\r\n{name}: {value}"));
    }
    head
}

/// One HTTP/1.1 request for `target` with `method` and these header lines.
async fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    http1(port, &head(method, target, headers)).await
}

async fn get(port: u16, target: &str, headers: &[(&str, &str)]) -> Reply {
    request(port, "GET", target, headers).await
}

/// Asserts a bare 304 with every header RFC 9110 section 15.4.5 asks of it, as the 200 had
/// them, and none of the content's.
fn assert_not_modified(reply: &Reply, full: &Reply, x_cache: &str, why: &str) {
    assert_eq!((reply.status, reply.x_cache()), (304, x_cache), "{why}");
    assert_eq!(reply.body, "", "{why}: a 304 has no body");
    for name in [
        "ETag",
        "Cache-Control",
        "Expires",
        "Date",
        "Content-Location",
        "Last-Modified",
    ] {
        assert!(reply.one(name).is_some(), "{why}: no {name}");
        assert_eq!(reply.one(name), full.one(name), "{why}: {name}");
    }
    assert!(
        reply.all("Vary").contains(&"Accept-Language"),
        "{why}: Vary {:?}",
        reply.all("Vary")
    );
    for content in ["Content-Type", "Content-Encoding"] {
        assert_eq!(reply.one(content), None, "{why}: {content} on a 304");
    }
    let length = reply.one("Content-Length");
    assert!(
        length.is_none() || length == full.one("Content-Length"),
        "{why}: Content-Length {length:?} on a 304"
    );
}

#[rocket::async_test]
async fn if_modified_since_is_answered_from_the_handlers_last_modified() {
    for store in STORES {
        let server = launch(store).await;
        let port = server.port;
        // Not modified since the date given, or since a later one: 304, on the miss that stores
        // the entry and on hits.
        let equal = [("If-Modified-Since", MODIFIED)];
        let miss = get(port, "/dated?tag=a", &equal).await;
        let full = get(port, "/dated?tag=a", &[]).await;
        assert_eq!((full.status, full.x_cache()), (200, "HIT"));
        assert_eq!(full.one("Last-Modified"), Some(MODIFIED));
        assert_not_modified(&miss, &full, "MISS", &format!("{store:?}: miss, equal"));
        let hit = get(port, "/dated?tag=a", &equal).await;
        assert_not_modified(&hit, &full, "HIT", &format!("{store:?}: hit, equal"));
        let later = around_modified(1);
        let hit = get(port, "/dated?tag=a", &[("If-Modified-Since", &later)]).await;
        assert_not_modified(&hit, &full, "HIT", &format!("{store:?}: hit, later"));
        // Modified since an earlier date, if only by a second: the full response.
        let earlier = around_modified(-1);
        let hit = get(port, "/dated?tag=a", &[("If-Modified-Since", &earlier)]).await;
        assert_eq!((hit.status, hit.x_cache()), (200, "HIT"), "{store:?}");
        assert_eq!(hit.body, "modified long ago");
        // HEAD is conditional too.
        let head = request(port, "HEAD", "/dated?tag=a", &equal).await;
        assert_eq!((head.status, head.x_cache()), (304, "HIT"), "{store:?}");
        let head = request(
            port,
            "HEAD",
            "/dated?tag=a",
            &[("If-Modified-Since", &earlier)],
        )
        .await;
        assert_eq!((head.status, head.body.as_str()), (200, ""), "{store:?}");
        // Only a success is answered so: with no entry to back it, a miss that is not stored
        // (the client said `no-store`) keeps its full response.
        let unstored = [
            ("If-Modified-Since", MODIFIED),
            ("Cache-Control", "no-store"),
        ];
        let reply = get(port, "/dated?tag=b", &unstored).await;
        assert_eq!(reply.status, 200, "{store:?}: not stored, yet a 304");
    }
}

#[rocket::async_test]
async fn if_modified_since_is_ignored_when_invalid_or_when_if_none_match_is_present() {
    for store in STORES {
        let server = launch(store).await;
        let port = server.port;
        let later = around_modified(60);
        let earlier = around_modified(-60);
        let full = get(port, "/dated?tag=i", &[]).await;
        // The date alone would say "not modified".
        let valid = [("If-Modified-Since", MODIFIED)];
        assert_eq!(
            get(port, "/dated?tag=i", &valid).await.status,
            304,
            "{store:?}"
        );
        // Not a date, two of them, a list: ignored (RFC 9110 section 13.1.3).
        for invalid in [
            &[("If-Modified-Since", "yesterday")][..],
            &[("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37")],
            &[
                ("If-Modified-Since", MODIFIED),
                ("If-Modified-Since", MODIFIED),
            ],
            &[(
                "If-Modified-Since",
                "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
            )],
        ] {
            let reply = get(port, "/dated?tag=i", invalid).await;
            assert_eq!(reply.status, 200, "{store:?}: {invalid:?}");
        }
        // If-None-Match decides alone: another tag is a full response whatever the date says,
        // the entry's tag is a 304 whatever the date says.
        let reply = get(
            port,
            "/dated?tag=i",
            &[
                ("If-None-Match", "\"other\""),
                ("If-Modified-Since", &later),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{store:?}: If-None-Match was not alone");
        let reply = get(
            port,
            "/dated?tag=i",
            &[("If-None-Match", "\"m1\""), ("If-Modified-Since", &earlier)],
        )
        .await;
        assert_not_modified(&reply, &full, "HIT", &format!("{store:?}: tag matches"));
    }
}

#[rocket::async_test]
async fn without_a_last_modified_the_entry_is_dated_when_it_was_stored() {
    for store in STORES {
        let server = launch(store).await;
        let port = server.port;
        // The storing miss already says when, so that its client has a date to send back.
        let miss = get(port, "/plain?tag=s", &[]).await;
        assert_eq!(miss.x_cache(), "MISS");
        let stored = miss
            .one("Last-Modified")
            .expect("a Last-Modified")
            .to_owned();
        assert_eq!(Some(stored.as_str()), miss.one("Date"), "{store:?}");
        let hit = get(port, "/plain?tag=s", &[]).await;
        assert_eq!(hit.x_cache(), "HIT");
        assert_eq!(hit.one("Last-Modified"), Some(stored.as_str()), "{store:?}");
        let reply = get(port, "/plain?tag=s", &[("If-Modified-Since", &stored)]).await;
        assert_eq!((reply.status, reply.x_cache()), (304, "HIT"), "{store:?}");
        assert_eq!(reply.one("Last-Modified"), Some(stored.as_str()));
        let before = httpdate::parse_http_date(&stored).unwrap() - Duration::from_secs(1);
        let before = httpdate::fmt_http_date(before);
        let reply = get(port, "/plain?tag=s", &[("If-Modified-Since", &before)]).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "plain page s"));
        // A response the cache does not store gets no date of the cache's making.
        let unstored = get(port, "/plain?tag=u", &[("Cache-Control", "no-store")]).await;
        assert_eq!(unstored.one("Last-Modified"), None, "{store:?}");
    }
}

/// What came back from one raw HTTP/1.1 exchange, its body as bytes (a gzipped body is not
/// text).
struct Bytes {
    reply: Reply,
    body: Vec<u8>,
}

impl Bytes {
    /// The body, gunzipped when `Content-Encoding` says gzip.
    fn decoded(&self) -> String {
        let mut text = String::new();
        match self.reply.one("Content-Encoding") {
            Some("gzip") => {
                GzDecoder::new(self.body.as_slice())
                    .read_to_string(&mut text)
                    .expect("a gzip body");
            }
            None => text = String::from_utf8(self.body.clone()).unwrap(),
            Some(other) => panic!("Content-Encoding: {other}"),
        }
        text
    }
}

/// One GET of `target` over a fresh connection, the body kept as bytes.
async fn get_bytes(port: u16, target: &str, headers: &[(&str, &str)]) -> Bytes {
    let (reply, body) = http1_bytes(port, &head("GET", target, headers)).await;
    Bytes { reply, body }
}

#[rocket::async_test]
async fn a_gzipping_fairing_gets_a_weak_etag_valid_for_both_encodings() {
    for store in STORES {
        let server = launch(store).await;
        let port = server.port;
        let gzip = ("Accept-Encoding", "gzip");
        // A gzip client stores the entry: the fairing runs after the cache, so what is stored
        // is the handler's identity body, and the gzipped bytes go out under a weak tag (a
        // strong one would claim they are the identity bytes).
        let zipped = get_bytes(port, "/long?tag=z", &[gzip]).await;
        assert_eq!(zipped.reply.x_cache(), "MISS");
        assert_eq!(zipped.reply.one("Content-Encoding"), Some("gzip"));
        assert_eq!(zipped.decoded(), long_page("z"));
        assert!(zipped.body.len() < long_page("z").len(), "not compressed");
        let etag = zipped.reply.one("ETag").expect("an ETag").to_owned();
        assert!(etag.starts_with("W/\""), "{store:?}: {etag} is strong");
        // An identity client is served that entry as identity, under the same weak tag.
        let identity = get_bytes(port, "/long?tag=z", &[]).await;
        assert_eq!(identity.reply.x_cache(), "HIT");
        assert_eq!(identity.reply.one("Content-Encoding"), None);
        assert_eq!(identity.decoded(), long_page("z"));
        assert_eq!(identity.reply.one("ETag"), Some(etag.as_str()));
        let zipped_hit = get_bytes(port, "/long?tag=z", &[gzip]).await;
        assert_eq!(zipped_hit.reply.one("Content-Encoding"), Some("gzip"));
        assert_eq!(zipped_hit.reply.one("ETag"), Some(etag.as_str()));
        // The tag revalidates either encoding: If-None-Match compares weakly (RFC 9110
        // section 8.8.3.2), and both are the same content.
        for headers in [
            &[gzip, ("If-None-Match", &etag)][..],
            &[("If-None-Match", &etag)],
        ] {
            let reply = get_bytes(port, "/long?tag=z", headers).await;
            assert_eq!(
                (reply.reply.status, reply.body.len()),
                (304, 0),
                "{headers:?}"
            );
            assert_eq!(reply.reply.one("ETag"), Some(etag.as_str()));
            assert_eq!(reply.reply.one("Content-Encoding"), None);
        }
        // And on the miss that stores the entry for a gzip client: a second server computes
        // the same tag for the same content, and a client holding it gets a 304 from the miss.
        let other = launch(store).await;
        let reply = get_bytes(other.port, "/long?tag=z", &[gzip, ("If-None-Match", &etag)]).await;
        assert_eq!((reply.reply.status, reply.reply.x_cache()), (304, "MISS"));
        assert_eq!(reply.reply.one("ETag"), Some(etag.as_str()));
    }
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for Dated {}
