//! Requests built to break the key or the store, against a real memcached. Each case asserts
//! that nothing fails, that the request is stored and replayed under its own entry (no entry is
//! shared that should not be), and, at the end, that every key on the server is a namespace and
//! 32 hex digits and that a sentinel written beforehand is untouched (no protocol injection).

mod common;

use std::collections::HashSet;

use cached_route_suite::MemcachedServer;
use common::{assert_wire_is_clean, fetch_with, runs};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket_route_cache::{Cache, Config};

const SENTINEL: &[u8] = b"written before the attack";

async fn setup() -> (MemcachedServer, Client) {
    let server = MemcachedServer::start();
    server.set_raw("sentinel", SENTINEL, 300);
    let client = common::client(Cache::new(Config::memcached([server.address()])).unwrap()).await;
    (server, client)
}

/// Sends `request` twice: the first must be a miss that the handler answers, the second a hit
/// with the same body. Returns the body.
async fn miss_then_hit(
    client: &Client,
    uri: &str,
    headers: &[(&'static str, &'static str)],
) -> String {
    let (first, state) = fetch_with(client, uri, headers).await;
    assert!(first.status.code < 500, "{:.60}: {}", uri, first.status);
    assert_eq!(
        state, "MISS",
        "{:.60} {headers:?} shared an entry it should not",
        uri
    );
    let (second, state) = fetch_with(client, uri, headers).await;
    assert_eq!(state, "HIT", "{:.60} {headers:?}", uri);
    assert_eq!(second.body, first.body);
    first.body
}

#[rocket::async_test]
async fn crlf_and_nul_in_path_and_query() {
    let (server, client) = setup().await;
    for uri in [
        "/any/a%0d%0aset%20sentinel%200%200%201%0d%0aowned",
        "/any/a%0d%0adelete%20sentinel",
        "/any/nul%00byte",
        "/any/q?x=%0d%0aflush_all%0d%0a",
        "/any/q?x=%00&y=%0a",
        "/any/q?%0d%0a=1",
    ] {
        miss_then_hit(&client, uri, &[]).await;
    }
    assert_wire_is_clean(&server, SENTINEL);
}

#[rocket::async_test]
async fn very_long_paths_and_ten_thousand_parameters() {
    let (server, client) = setup().await;
    let path_8k = format!("/any/{}", "a".repeat(8 * 1024));
    let path_64k = format!("/any/{}", "b".repeat(64 * 1024));
    let params = (0..10_000)
        .map(|i| format!("p{i}={i}"))
        .collect::<Vec<_>>()
        .join("&");
    let many = format!("/any/q?{params}");
    for uri in [&path_8k, &path_64k, &many] {
        miss_then_hit(&client, uri, &[]).await;
    }
    // The same 10,000 parameters in another order are the same request.
    let reversed = (0..10_000)
        .rev()
        .map(|i| format!("p{i}={i}"))
        .collect::<Vec<_>>()
        .join("&");
    assert_eq!(
        fetch_with(&client, &format!("/any/q?{reversed}"), &[])
            .await
            .1,
        "HIT"
    );
    assert_wire_is_clean(&server, SENTINEL);
}

#[rocket::async_test]
async fn percent_encoding_variants_never_share_a_wrong_entry() {
    let (server, client) = setup().await;
    // Rocket decodes all three to `/any/abc`; each gets its own entry, and each entry holds
    // what the handler says for that path, so none can serve another a wrong page.
    let mut bodies = HashSet::new();
    for uri in ["/any/abc", "/any/a%62c", "/any/%61%62%63"] {
        let body = miss_then_hit(&client, uri, &[]).await;
        assert!(body.starts_with("1 segments"), "{body}");
        bodies.insert(body);
    }
    assert_eq!(bodies.len(), 3, "three misses, three handler runs");
    assert_eq!(runs(&client, "any"), 3);
    assert_wire_is_clean(&server, SENTINEL);
}

#[rocket::async_test]
async fn hosts_mixed_case_with_ports_and_injected_values() {
    let (server, client) = setup().await;
    miss_then_hit(&client, "/plain", &[("Host", "example.com")]).await;
    // Another case is another entry: a handler renders the host as sent.
    miss_then_hit(&client, "/plain", &[("Host", "EXAMPLE.Com")]).await;
    miss_then_hit(&client, "/plain", &[("Host", "example.com:8080")]).await;
    miss_then_hit(&client, "/plain", &[("Host", "evil.example")]).await;
    // A value that tries to smuggle a second header line, and one with a NUL.
    let (seen, state) = fetch_with(
        &client,
        "/plain",
        &[("Host", "example.com\r\nX-Injected: 1")],
    )
    .await;
    // Rendered for that value, in an entry of its own: never another host's page.
    assert_eq!((seen.status.code, state.as_str()), (200, "MISS"));
    let (seen, state) = fetch_with(&client, "/plain", &[("Host", "example.com\0")]).await;
    assert_eq!((seen.status.code, state.as_str()), (200, "MISS"));
    // Still the original entry for the plain host.
    assert_eq!(
        fetch_with(&client, "/plain", &[("Host", "example.com")])
            .await
            .1,
        "HIT"
    );
    assert_wire_is_clean(&server, SENTINEL);
}

#[rocket::async_test]
async fn duplicate_headers_named_in_vary() {
    let (server, client) = setup().await;
    let one = miss_then_hit(&client, "/localized", &[("Accept-Language", "en")]).await;
    let two = miss_then_hit(
        &client,
        "/localized",
        &[("Accept-Language", "en"), ("Accept-Language", "fr")],
    )
    .await;
    let swapped = miss_then_hit(
        &client,
        "/localized",
        &[("Accept-Language", "fr"), ("Accept-Language", "en")],
    )
    .await;
    assert_eq!(one, "page for [en] #1");
    assert_eq!(two, "page for [en|fr] #2");
    assert_eq!(swapped, "page for [fr|en] #3");
    // A value crafted to look like two values is one value.
    let joined = miss_then_hit(&client, "/localized", &[("Accept-Language", "en|fr")]).await;
    assert_eq!(joined, "page for [en|fr] #4");
    let (seen, _) = fetch_with(&client, "/localized", &[("Accept-Language", "en")]).await;
    assert_eq!(
        (seen.status, seen.body.as_str()),
        (Status::Ok, "page for [en] #1")
    );
    assert_wire_is_clean(&server, SENTINEL);
}

/// A route collecting the whole query (`?<rest..>` into a `Vec`) sees the pairs' order: a
/// reordered query is another entry, never the first order's page.
#[rocket::async_test]
async fn a_collected_query_keeps_its_order_in_the_key() {
    let (server, client) = setup().await;
    let forward = miss_then_hit(&client, "/collect?a=1&b=2", &[]).await;
    let (reversed, state) = fetch_with(&client, "/collect?b=2&a=1", &[]).await;
    assert_eq!(
        state, "MISS",
        "the reordered query was served the first order's entry"
    );
    assert!(forward.starts_with("1,2 #"), "{forward}");
    assert!(reversed.body.starts_with("2,1 #"), "{}", reversed.body);
    assert_wire_is_clean(&server, SENTINEL);
}
