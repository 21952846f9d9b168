//! The key's host against the host the handler sees, over the wire: a real Rocket server on
//! 127.0.0.1 (HTTP/1.1 and cleartext HTTP/2 with prior knowledge on one port) backed by a real
//! memcached. A request may name its host in several places (`Host`, `:authority`, an
//! absolute-form target); whatever it sends, no visitor may be served a page rendered for
//! another host.

use std::time::Duration;

use cached_route_suite::{loopback_config, MemcachedServer, RunningApp};
use rocket::http::uri::Host;
use rocket::tokio::net::TcpStream;
use rocket::tokio::time::timeout;
use rocket::{get, routes};
use rocket_route_cache::{cached_route, Cache, Config};

/// The page for the host the handler sees, as a multi-tenant page renders its links.
fn page_for(host: Option<&Host<'_>>) -> String {
    match host {
        Some(host) => format!("page for {host}"),
        None => "page for no host".to_owned(),
    }
}

#[cached_route(ttl = 60)]
#[get("/")]
fn page(host: Option<&Host<'_>>) -> String {
    page_for(host)
}

/// The same page, never cached: what the handler renders for a request.
#[get("/fresh")]
fn fresh(host: Option<&Host<'_>>) -> String {
    page_for(host)
}

/// The same for a path: what the handler sees of both.
#[cached_route(ttl = 60)]
#[get("/p/<name>")]
fn named(name: &str, host: Option<&Host<'_>>) -> String {
    match host {
        Some(host) => format!("{name} on {host}"),
        None => format!("{name} on no host"),
    }
}

/// Collects the whole query in the order it arrives.
#[cached_route(ttl = 60)]
#[get("/collect?<rest..>")]
fn collect(rest: Vec<&str>) -> String {
    rest.join(",")
}

/// The app on 127.0.0.1, with a memcached of its own.
async fn launch() -> RunningApp {
    let memcached = MemcachedServer::start();
    let cache = Cache::new(Config::memcached([memcached.address()])).unwrap();
    let app = rocket::custom(loopback_config())
        .manage(cache)
        .mount("/", routes![page, fresh, named, collect]);
    cached_route_suite::launch(app, memcached).await
}

#[derive(Debug)]
struct Reply {
    status: u16,
    x_cache: String,
    body: String,
}

/// One HTTP/1.1 exchange over a fresh connection: `head` is the request line and headers,
/// without the blank line that ends them.
async fn http1(port: u16, head: &str) -> Reply {
    let reply = cached_route_suite::http1(port, head).await;
    Reply {
        status: reply.status,
        x_cache: reply
            .all("X-Cache")
            .first()
            .copied()
            .unwrap_or("")
            .to_owned(),
        body: reply.body,
    }
}

/// One HTTP/2 GET (prior knowledge, cleartext) of `uri`, whose authority becomes
/// `:authority`, with extra `headers` (a `host` header among them, as any client may send).
async fn http2(port: u16, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.expect("an h2 handshake");
    let driver = rocket::tokio::spawn(connection);
    let mut request = rocket::http::hyper::Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(()).unwrap();
    let mut client = client.ready().await.unwrap();
    let (response, _) = client.send_request(request, true).expect("request sent");
    let response = timeout(Duration::from_secs(10), response)
        .await
        .expect("the server answered")
        .expect("an h2 response");
    let status = response.status().as_u16();
    let x_cache = response
        .headers()
        .get("x-cache")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("a body chunk");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    drop(client);
    driver.abort();
    Reply {
        status,
        x_cache,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[rocket::async_test]
async fn an_http2_authority_never_fills_the_entry_of_the_host_header() {
    let server = launch().await;
    // The attack: `:authority` says evil.example (what the handler renders), `host` says
    // shop-a.example.
    let attack = http2(
        server.port,
        "http://evil.example/",
        &[("host", "shop-a.example")],
    )
    .await;
    assert_eq!(
        (attack.status, attack.body.as_str()),
        (200, "page for evil.example"),
        "Rocket's handler sees `:authority` over HTTP/2"
    );
    assert_eq!(attack.x_cache, "MISS");
    // An HTTP/1.1 visitor of shop-a.example.
    let visitor = http1(server.port, "GET / HTTP/1.1\r\nHost: shop-a.example").await;
    assert_eq!(
        (visitor.status, visitor.body.as_str()),
        (200, "page for shop-a.example"),
        "served a page rendered for another host ({})",
        visitor.x_cache
    );
    assert_eq!(visitor.x_cache, "MISS");
    assert_eq!(
        http1(server.port, "GET / HTTP/1.1\r\nHost: shop-a.example")
            .await
            .x_cache,
        "HIT"
    );
    // The attacker's own repeat still gets its own page, and a plain HTTP/2 visitor of
    // shop-a.example (no `host` header) is never served the attacker's.
    let again = http2(
        server.port,
        "http://evil.example/",
        &[("host", "shop-a.example")],
    )
    .await;
    assert_eq!(
        (again.body.as_str(), again.x_cache.as_str()),
        ("page for evil.example", "HIT")
    );
    let plain = http2(server.port, "http://shop-a.example/", &[]).await;
    assert_eq!(plain.body, "page for shop-a.example");
}

#[rocket::async_test]
async fn an_http2_host_header_never_takes_the_place_of_the_authority() {
    let server = launch().await;
    // The reverse: `:authority` is shop-a.example, `host` evil.example; the handler renders
    // shop-a.example and the entry must not be served to an HTTP/1.1 evil.example visitor, nor
    // an evil.example page to this request.
    let evil_first = http1(server.port, "GET /p/x HTTP/1.1\r\nHost: evil.example").await;
    assert_eq!(evil_first.body, "x on evil.example");
    let reverse = http2(
        server.port,
        "http://shop-a.example/p/x",
        &[("host", "evil.example")],
    )
    .await;
    assert_eq!(reverse.body, "x on shop-a.example");
    let evil_again = http1(server.port, "GET /p/x HTTP/1.1\r\nHost: evil.example").await;
    assert_eq!(
        (evil_again.body.as_str(), evil_again.x_cache.as_str()),
        ("x on evil.example", "HIT")
    );
}

/// One way of sending a request for `{}` (the target path, replaced before sending).
#[derive(Debug, Clone, Copy)]
enum Ask {
    /// An HTTP/1.x request line and headers.
    Http1(&'static str),
    /// An HTTP/2 request of this URI (its authority becomes `:authority`) with these headers.
    Http2(&'static str, &'static [(&'static str, &'static str)]),
}

async fn ask(port: u16, how: Ask, target: &str) -> Reply {
    match how {
        Ask::Http1(head) => http1(port, &head.replace("{}", target)).await,
        Ask::Http2(uri, headers) => http2(port, &uri.replace("{}", target), headers).await,
    }
}

/// Every way a request can name its host, over both protocols: each, sent after all the others,
/// must get exactly what the handler renders for it (the uncached twin route is the oracle).
const WAYS_TO_NAME_A_HOST: &[Ask] = &[
    Ask::Http1("GET {} HTTP/1.1\r\nHost: shop-a.example"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: SHOP-A.example"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: shop-a.example."),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: shop-a.example:80"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: shop-a.example:080"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: user@shop-a.example"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: evil.example\r\nHost: shop-a.example"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: shop-a.example\r\nHost: evil.example"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: shop-a.example, evil.example"),
    Ask::Http1("GET {} HTTP/1.1\r\nHost: "),
    Ask::Http1("GET {} HTTP/1.0"),
    // Absolute-form targets: the authority in the request line against `Host`.
    Ask::Http1("GET http://evil.example{} HTTP/1.1\r\nHost: shop-a.example"),
    Ask::Http1("GET http://shop-a.example{} HTTP/1.1\r\nHost: evil.example"),
    Ask::Http1("GET http://shop-a.example{} HTTP/1.1\r\nHost: SHOP-A.example"),
    Ask::Http1("GET http://evil.example{} HTTP/1.1"),
    Ask::Http1("GET http://evil.example{} HTTP/1.0"),
    Ask::Http2("http://shop-a.example{}", &[]),
    Ask::Http2("http://SHOP-A.example{}", &[]),
    Ask::Http2("http://shop-a.example.{}", &[]),
    Ask::Http2("http://shop-a.example:80{}", &[]),
    Ask::Http2("http://evil.example{}", &[("host", "shop-a.example")]),
    Ask::Http2("http://shop-a.example{}", &[("host", "evil.example")]),
    Ask::Http2("http://shop-a.example{}", &[("host", "shop-a.example")]),
    Ask::Http2("http://user@shop-a.example{}", &[]),
    // No `:authority` at all: the handler sees no host, whatever `host` says.
    Ask::Http2("{}", &[("host", "shop-a.example")]),
];

#[rocket::async_test]
async fn every_way_of_naming_the_host_gets_the_page_rendered_for_it() {
    let server = launch().await;
    // Twice round: the second pass finds every entry the first stored.
    for round in 0..2 {
        for how in WAYS_TO_NAME_A_HOST {
            let rendered = ask(server.port, *how, "/fresh").await;
            let served = ask(server.port, *how, "/").await;
            assert_eq!(
                (served.status, &served.body),
                (rendered.status, &rendered.body),
                "round {round}, {how:?}: served ({}) is not what the handler renders",
                served.x_cache
            );
            if round == 1 && served.status == 200 {
                assert_eq!(served.x_cache, "HIT", "{how:?}");
            }
        }
    }
}

/// A route that collects the whole query sees the pairs' order: over HTTP/1.1 and HTTP/2, a
/// reordered query is another entry, never the first order's page.
#[rocket::async_test]
async fn a_collected_query_keeps_its_order_over_the_wire() {
    let server = launch().await;
    let forward = http1(
        server.port,
        "GET /collect?a=1&b=2 HTTP/1.1\r\nHost: shop.example",
    )
    .await;
    assert_eq!(
        (forward.body.as_str(), forward.x_cache.as_str()),
        ("1,2", "MISS")
    );
    // The same host both ways (`:authority` and `host` agree), so only the order differs.
    let reversed = http2(
        server.port,
        "http://shop.example/collect?b=2&a=1",
        &[("host", "shop.example")],
    )
    .await;
    assert_eq!(
        reversed.body, "2,1",
        "a reordered query was served the first order's page ({})",
        reversed.x_cache
    );
    let again = http1(
        server.port,
        "GET /collect?b=2&a=1 HTTP/1.1\r\nHost: shop.example",
    )
    .await;
    assert_eq!(
        (again.body.as_str(), again.x_cache.as_str()),
        ("2,1", "HIT")
    );
}
