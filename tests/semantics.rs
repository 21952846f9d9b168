//! HTTP caching semantics and privacy rules, through Rocket's local client on the embedded
//! store: `vary`, `vary_cookies`, `public`, `query`, `statuses`, `honor_no_cache`, the
//! response's own `Cache-Control` and `Vary`, validators and `304 Not Modified`. The cases from
//! other frameworks' privacy fixes are named after what leaked there.

mod common;

use std::io::Cursor;
use std::time::Duration;

use common::{Languages, Runs};
use rocket::http::{CookieJar, Status};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::response::{self, status, Responder};
use rocket::{get, routes, Request, Response, State};
use rocket_route_cache::{cached_route, Cache, Config};

#[cached_route(ttl = 60, vary = ["Accept-Language"], trusted_guards = ["languages"])]
#[get("/localized")]
fn localized(languages: Languages, runs: &State<Runs>) -> String {
    format!("page for [{}] #{}", languages.0, runs.bump("localized"))
}

#[cached_route(ttl = 60, vary_cookies = ["lang"])]
#[get("/greeting")]
fn greeting(cookies: &CookieJar<'_>, runs: &State<Runs>) -> String {
    let lang = cookies.get("lang").map(|c| c.value().to_owned());
    format!("greeting in {lang:?} #{}", runs.bump("greeting"))
}

/// The same for everyone, and the response says it may be shared.
#[cached_route(ttl = 60, public)]
#[get("/handbook")]
fn handbook(runs: &State<Runs>) -> With {
    let run = runs.bump("handbook");
    ok_with(
        vec![("Cache-Control", "public, max-age=60".to_owned())],
        format!("handbook #{run}"),
    )
}

/// Declared public, but its responses do not say they may be shared.
#[cached_route(ttl = 60, public)]
#[get("/notes")]
fn notes(runs: &State<Runs>) -> String {
    format!("notes #{}", runs.bump("notes"))
}

/// Varies on one cookie, but its own `Vary` claims the whole `Cookie` header.
#[cached_route(ttl = 60, vary_cookies = ["lang"])]
#[get("/cookie-vary")]
fn cookie_vary(runs: &State<Runs>) -> With {
    let run = runs.bump("cookie_vary");
    ok_with(
        vec![("Vary", "Cookie".to_owned())],
        format!("cookie vary #{run}"),
    )
}

/// `/expires/<value>`: a 200 with `Expires: <value>`.
#[cached_route(ttl = 60)]
#[get("/expires/<value>")]
fn expires(value: &str, runs: &State<Runs>) -> With {
    let run = runs.bump("expires");
    ok_with(
        vec![("Expires", value.to_owned())],
        format!("expires #{run}"),
    )
}

#[cached_route(ttl = 60)]
#[get("/members")]
fn members(runs: &State<Runs>) -> String {
    format!("members #{}", runs.bump("members"))
}

/// A response with the given extra headers.
struct With {
    status: Status,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl<'r> Responder<'r, 'static> for With {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response.status(self.status);
        for (name, value) in self.headers {
            response.raw_header_adjoin(name, value);
        }
        response
            .sized_body(self.body.len(), Cursor::new(self.body))
            .ok()
    }
}

fn ok_with(headers: Vec<(&'static str, String)>, body: String) -> With {
    With {
        status: Status::Ok,
        headers,
        body,
    }
}

/// `/directive/<value>`: a 200 with `Cache-Control: <value>`.
#[cached_route(ttl = 60)]
#[get("/directive/<value>")]
fn directive(value: &str, runs: &State<Runs>) -> With {
    let run = runs.bump("directive");
    ok_with(
        vec![("Cache-Control", value.to_owned())],
        format!("{value} #{run}"),
    )
}

/// `/own-vary/<value>`: a 200 with `Vary: <value>`; the route varies on `Accept-Language`.
#[cached_route(ttl = 60, vary = ["Accept-Language"])]
#[get("/own-vary/<value>")]
fn own_vary(value: &str, runs: &State<Runs>) -> With {
    let run = runs.bump("own_vary");
    ok_with(vec![("Vary", value.to_owned())], format!("{value} #{run}"))
}

#[cached_route(ttl = 60, honor_no_cache)]
#[get("/refreshable")]
fn refreshable(runs: &State<Runs>) -> String {
    format!("refreshable #{}", runs.bump("refreshable"))
}

#[cached_route(ttl = 60, query = ["page", "sort"])]
#[get("/list?<page>&<sort>")]
fn list(page: Option<u32>, sort: Option<&str>, runs: &State<Runs>) -> String {
    format!("list page {page:?} sort {sort:?} #{}", runs.bump("list"))
}

#[cached_route(ttl = 60, query = false)]
#[get("/about")]
fn about(runs: &State<Runs>) -> String {
    format!("about #{}", runs.bump("about"))
}

#[cached_route(ttl = 60, statuses = [200, 404])]
#[get("/lookup/<id>")]
fn lookup(id: u32, runs: &State<Runs>) -> status::Custom<String> {
    let run = runs.bump("lookup");
    match id {
        0 => status::Custom(Status::NotFound, format!("no such item #{run}")),
        _ => status::Custom(Status::Ok, format!("item {id} #{run}")),
    }
}

#[cached_route(ttl = 60)]
#[get("/versioned")]
fn versioned(runs: &State<Runs>) -> With {
    let run = runs.bump("versioned");
    ok_with(
        vec![("ETag", "\"v1\"".to_owned())],
        format!("versioned #{run}"),
    )
}

/// Validated but not shareable: it sets a cookie.
#[cached_route(ttl = 60)]
#[get("/personal")]
fn personal(runs: &State<Runs>) -> With {
    let run = runs.bump("personal");
    ok_with(
        vec![
            ("ETag", "\"p1\"".to_owned()),
            ("Set-Cookie", "seen=1".to_owned()),
        ],
        format!("personal #{run}"),
    )
}

#[cached_route(ttl = 60)]
#[get("/hashed")]
fn hashed(runs: &State<Runs>) -> &'static str {
    runs.bump("hashed");
    "the same body every time"
}

async fn client() -> Client {
    let rocket = rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(Cache::new(Config::embedded()).unwrap())
    .manage(Runs::default())
    .mount(
        "/",
        routes![
            localized,
            greeting,
            handbook,
            notes,
            cookie_vary,
            expires,
            members,
            directive,
            own_vary,
            refreshable,
            list,
            about,
            lookup,
            versioned,
            personal,
            hashed
        ],
    );
    Client::untracked(rocket).await.unwrap()
}

fn runs(client: &Client, route: &'static str) -> usize {
    client.rocket().state::<Runs>().unwrap().of(route)
}

async fn get<'c>(
    client: &'c Client,
    uri: &str,
    headers: &[(&'static str, &'static str)],
) -> LocalResponse<'c> {
    common::request(client, uri, headers).dispatch().await
}

/// (X-Cache, body)
async fn fetch(
    client: &Client,
    uri: &str,
    headers: &[(&'static str, &'static str)],
) -> (String, String) {
    let response = get(client, uri, headers).await;
    let state = response
        .headers()
        .get_one("X-Cache")
        .unwrap_or("")
        .to_owned();
    (state, common::body_text(response).await)
}

#[rocket::async_test]
async fn vary_puts_header_values_in_the_key_and_absent_differs_from_empty() {
    let client = client().await;
    let (state, en) = fetch(&client, "/localized", &[("Accept-Language", "en")]).await;
    assert_eq!((state.as_str(), en.as_str()), ("MISS", "page for [en] #1"));
    assert_eq!(
        fetch(&client, "/localized", &[("Accept-Language", "en")])
            .await
            .0,
        "HIT"
    );
    let (_, fr) = fetch(&client, "/localized", &[("Accept-Language", "fr")]).await;
    assert_eq!(fr, "page for [fr] #2");
    // Django #11099-style: a request without the header must not get the entry of one with an
    // empty value, nor the reverse.
    let (_, absent) = fetch(&client, "/localized", &[]).await;
    assert_eq!(absent, "page for [] #3");
    let (state, empty) = fetch(&client, "/localized", &[("Accept-Language", "")]).await;
    assert_eq!((state.as_str(), empty.as_str()), ("MISS", "page for [] #4"));
    // Two values are not one.
    let (state, two) = fetch(
        &client,
        "/localized",
        &[("Accept-Language", "en"), ("Accept-Language", "fr")],
    )
    .await;
    assert_eq!(
        (state.as_str(), two.as_str()),
        ("MISS", "page for [en|fr] #5")
    );
    // Header names are case-insensitive on the wire.
    assert_eq!(
        fetch(&client, "/localized", &[("accept-language", "en")])
            .await
            .0,
        "HIT"
    );
    // The response says what it varies on, for caches downstream.
    let response = get(&client, "/localized", &[("Accept-Language", "en")]).await;
    assert_eq!(response.headers().get_one("Vary"), Some("Accept-Language"));
}

#[rocket::async_test]
async fn vary_cookies_key_on_the_named_cookies_only() {
    let client = client().await;
    let (state, en) = fetch(&client, "/greeting", &[("Cookie", "lang=en; session=a")]).await;
    assert_eq!(
        (state.as_str(), en.as_str()),
        ("MISS", "greeting in Some(\"en\") #1")
    );
    // Another session, same language: the same page.
    let (state, again) = fetch(&client, "/greeting", &[("Cookie", "lang=en; session=b")]).await;
    assert_eq!(
        (state.as_str(), again.as_str()),
        ("HIT", "greeting in Some(\"en\") #1")
    );
    let (_, fr) = fetch(&client, "/greeting", &[("Cookie", "lang=fr")]).await;
    assert_eq!(fr, "greeting in Some(\"fr\") #2");
    let (_, none) = fetch(&client, "/greeting", &[]).await;
    assert_eq!(none, "greeting in None #3");
    let response = get(&client, "/greeting", &[("Cookie", "lang=fr")]).await;
    assert_eq!(response.headers().get_one("Vary"), Some("Cookie"));
}

#[rocket::async_test]
async fn authorization_bypasses_unless_the_route_is_public() {
    let client = client().await;
    // Django #28833-style: responses computed for an authorized request are never shared.
    for _ in 0..2 {
        let (state, _) = fetch(&client, "/members", &[("Authorization", "Bearer alice")]).await;
        assert_eq!(state, "BYPASS");
    }
    assert_eq!(fetch(&client, "/members", &[]).await.0, "MISS");
    // A `public` route is the same for everyone, credentials or not, when its response says
    // it may be shared (RFC 9111 section 3.5)...
    assert_eq!(
        fetch(&client, "/handbook", &[("Authorization", "Bearer alice")])
            .await
            .0,
        "MISS"
    );
    let (state, body) = fetch(&client, "/handbook", &[]).await;
    assert_eq!((state.as_str(), body.as_str()), ("HIT", "handbook #1"));
    // ...and not stored from an authorized request when it does not; served from the cache all
    // the same once an anonymous request stored it.
    assert_eq!(
        fetch(&client, "/notes", &[("Authorization", "Bearer alice")])
            .await
            .0,
        "MISS"
    );
    assert_eq!(fetch(&client, "/notes", &[]).await.0, "MISS");
    let (state, body) = fetch(&client, "/notes", &[("Authorization", "Bearer bob")]).await;
    assert_eq!((state.as_str(), body.as_str()), ("HIT", "notes #2"));
}

#[rocket::async_test]
async fn cache_control_from_the_handler_is_obeyed() {
    let client = client().await;
    // Django #22855 / #33343-style: `Private` in any case or spacing is never shared.
    for value in [
        "no-store",
        "Private",
        "public,%20PRIVATE",
        "no-cache",
        "max-age=0",
        "max-age=soon",
    ] {
        let uri = format!("/directive/{value}");
        assert_eq!(fetch(&client, &uri, &[]).await.0, "MISS", "{value}");
        assert_eq!(
            fetch(&client, &uri, &[]).await.0,
            "MISS",
            "{value} was stored"
        );
    }
    // A shorter max-age shortens the entry's life; s-maxage wins for a shared cache.
    assert_eq!(fetch(&client, "/directive/max-age=1", &[]).await.0, "MISS");
    assert_eq!(fetch(&client, "/directive/max-age=1", &[]).await.0, "HIT");
    assert_eq!(
        fetch(&client, "/directive/max-age=60,%20s-maxage=1", &[])
            .await
            .0,
        "MISS"
    );
    assert_eq!(
        fetch(&client, "/directive/max-age=60,%20s-maxage=1", &[])
            .await
            .0,
        "HIT"
    );
    assert_eq!(
        fetch(&client, "/directive/max-age=3600", &[]).await.0,
        "MISS"
    );
    // Repeated ages count at their smallest; commas inside quotes do not split directives.
    for value in [
        "max-age=0,%20max-age=60",
        "ext=%22a,%20s-maxage=3600%22,%20max-age=0",
    ] {
        let uri = format!("/directive/{value}");
        assert_eq!(fetch(&client, &uri, &[]).await.0, "MISS");
        assert_eq!(
            fetch(&client, &uri, &[]).await.0,
            "MISS",
            "{value} was stored"
        );
    }
    // `Expires` in the past, or not a date, is already expired.
    for value in ["0", "Thu,%2001%20Jan%201970%2000:00:00%20GMT"] {
        let uri = format!("/expires/{value}");
        assert_eq!(fetch(&client, &uri, &[]).await.0, "MISS");
        assert_eq!(
            fetch(&client, &uri, &[]).await.0,
            "MISS",
            "Expires: {value} was stored"
        );
    }
    // Expiry is a point in time: nothing signals it.
    rocket::tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        fetch(&client, "/directive/max-age=1", &[]).await.0,
        "MISS",
        "max-age=1 outlived 1 s"
    );
    assert_eq!(
        fetch(&client, "/directive/max-age=60,%20s-maxage=1", &[])
            .await
            .0,
        "MISS"
    );
    assert_eq!(
        fetch(&client, "/directive/max-age=3600", &[]).await.0,
        "HIT",
        "the route's ttl still holds"
    );
}

#[rocket::async_test]
async fn a_response_varying_outside_the_key_is_not_stored() {
    let client = client().await;
    // Django #15855-style: `Vary: *` and headers the key does not hold are never stored.
    for value in ["*", "Accept-Encoding", "Accept-Language,%20*"] {
        let uri = format!("/own-vary/{value}");
        assert_eq!(fetch(&client, &uri, &[]).await.0, "MISS");
        assert_eq!(
            fetch(&client, &uri, &[]).await.0,
            "MISS",
            "Vary: {value} was stored"
        );
    }
    // Regression: the handler's own `Vary: Cookie` on a `vary_cookies` route (only `lang` is in
    // the key) was stored.
    assert_eq!(fetch(&client, "/cookie-vary", &[]).await.0, "MISS");
    assert_eq!(fetch(&client, "/cookie-vary", &[]).await.0, "MISS");
    // Varying on what the key holds is fine, and the merged Vary names it once.
    let uri = "/own-vary/accept-language";
    assert_eq!(fetch(&client, uri, &[]).await.0, "MISS");
    let response = get(&client, uri, &[]).await;
    assert_eq!(response.headers().get_one("X-Cache"), Some("HIT"));
    assert_eq!(response.headers().get_one("Vary"), Some("accept-language"));
}

#[rocket::async_test]
async fn a_client_no_cache_refreshes_only_where_the_route_allows_it() {
    let client = client().await;
    fetch(&client, "/members", &[]).await;
    // By default anyone could otherwise force the origin to work on every request.
    assert_eq!(
        fetch(&client, "/members", &[("Cache-Control", "no-cache")])
            .await
            .0,
        "HIT"
    );
    assert_eq!(
        fetch(&client, "/members", &[("Pragma", "no-cache")])
            .await
            .0,
        "HIT"
    );
    fetch(&client, "/refreshable", &[]).await;
    let (state, body) = fetch(
        &client,
        "/refreshable",
        &[("Cache-Control", "max-age=0, No-Cache")],
    )
    .await;
    assert_eq!((state.as_str(), body.as_str()), ("MISS", "refreshable #2"));
    let (state, body) = fetch(&client, "/refreshable", &[]).await;
    assert_eq!(
        (state.as_str(), body.as_str()),
        ("HIT", "refreshable #2"),
        "the refresh was stored"
    );
    // A client's `no-store` keeps its exchange out of the cache.
    let (state, _) = fetch(&client, "/about?first", &[("Cache-Control", "no-store")]).await;
    assert_eq!(state, "MISS");
    assert_eq!(
        fetch(&client, "/about", &[]).await.0,
        "MISS",
        "a no-store exchange was stored"
    );
}

#[rocket::async_test]
async fn query_lists_and_ignores_parameters() {
    let client = client().await;
    let (_, first) = fetch(&client, "/list?page=2&utm_source=mail", &[]).await;
    let (state, same) = fetch(&client, "/list?utm_campaign=x&page=2", &[]).await;
    assert_eq!((state.as_str(), same), ("HIT", first));
    assert_eq!(fetch(&client, "/list?page=3", &[]).await.0, "MISS");
    assert_eq!(
        fetch(&client, "/list?sort=name&page=2", &[]).await.0,
        "MISS"
    );
    // Rocket reads `p%61ge` as `page`: it must not be served the entry without a page.
    fetch(&client, "/list", &[]).await;
    let (state, encoded) = fetch(&client, "/list?p%61ge=9", &[]).await;
    assert_eq!(state, "MISS");
    assert!(encoded.starts_with("list page Some(9)"), "{encoded}");
    // Regression: pairs of one field keep their order; Rocket reads the field from them in
    // order, so the two spellings below are two requests, never one entry.
    fetch(&client, "/list?page=1&p%61ge=2", &[]).await;
    assert_eq!(fetch(&client, "/list?p%61ge=2&page=1", &[]).await.0, "MISS");
    // Regression: Rocket drops a leading `.` or brackets from a field name, so these feed
    // `?<page>` too; they were left out of the key (their first key read as empty), and the
    // page they rendered was stored as the page without `page`.
    for (spelling, page) in [(".page=4", 4), ("%2Epage=5", 5), ("%5Bpage%5D=6", 6)] {
        let (state, body) = fetch(&client, &format!("/list?{spelling}"), &[]).await;
        assert_eq!(state, "MISS", "{spelling} was served another page: {body}");
        assert!(
            body.starts_with(&format!("list page Some({page})")),
            "{spelling}: {body}"
        );
    }
    for hidden in ["pa+ge=7", "page[0]=7", "PAGE=7"] {
        assert_eq!(
            fetch(&client, &format!("/list?{hidden}"), &[]).await.0,
            "MISS",
            "{hidden} shared an entry"
        );
    }
    // `query = false`: the route declared that nothing in the query matters.
    fetch(&client, "/about?a=1", &[]).await;
    assert_eq!(fetch(&client, "/about?b=2", &[]).await.0, "HIT");
    assert_eq!(fetch(&client, "/about", &[]).await.0, "HIT");
}

#[rocket::async_test]
async fn statuses_widen_what_is_stored() {
    let client = client().await;
    let response = get(&client, "/lookup/0", &[]).await;
    assert_eq!(
        (response.status(), response.headers().get_one("X-Cache")),
        (Status::NotFound, Some("MISS"))
    );
    let response = get(&client, "/lookup/0", &[]).await;
    assert_eq!(
        (response.status(), response.headers().get_one("X-Cache")),
        (Status::NotFound, Some("HIT"))
    );
    assert_eq!(response.into_string().await.unwrap(), "no such item #1");
    // Conditional requests apply to successes only: a stored 404 is never a 304.
    let response = get(&client, "/lookup/0", &[("If-None-Match", "*")]).await;
    assert_eq!(response.status(), Status::NotFound);
}

#[rocket::async_test]
async fn validators_answer_304_on_hits_and_misses() {
    let client = client().await;
    // A miss whose fresh response matches: 304, and the full response is still stored.
    let response = get(&client, "/versioned", &[("If-None-Match", "\"v1\"")]).await;
    assert_eq!(response.status(), Status::NotModified);
    assert_eq!(response.headers().get_one("X-Cache"), Some("MISS"));
    assert_eq!(response.headers().get_one("ETag"), Some("\"v1\""));
    assert_eq!(common::body_text(response).await, "");
    let response = get(&client, "/versioned", &[]).await;
    assert_eq!(
        (response.status(), response.headers().get_one("X-Cache")),
        (Status::Ok, Some("HIT"))
    );
    assert_eq!(response.into_string().await.unwrap(), "versioned #1");
    // Hits: weak comparison, lists and `*` match; another tag gets the full response.
    for matching in ["W/\"v1\"", "\"x\", \"v1\"", "*"] {
        let response = get(&client, "/versioned", &[("If-None-Match", matching)]).await;
        assert_eq!(response.status(), Status::NotModified, "{matching}");
        assert_eq!(response.headers().get_one("X-Cache"), Some("HIT"));
        assert!(response.headers().get_one("Age").is_some());
    }
    let response = get(&client, "/versioned", &[("If-None-Match", "\"v2\"")]).await;
    assert_eq!(response.status(), Status::Ok);
    // Without one from the handler, the stored entry gets a weak ETag from its body (a
    // response fairing may still rewrite the bytes: see tests/validators.rs).
    let first = get(&client, "/hashed", &[]).await;
    let etag = first.headers().get_one("ETag").expect("an ETag").to_owned();
    assert!(etag.starts_with("W/\"") && etag.len() == 36, "{etag}");
    drop(first);
    let hit = get(&client, "/hashed", &[]).await;
    assert_eq!(hit.headers().get_one("ETag"), Some(etag.as_str()));
    drop(hit);
    let if_none_match: &'static str = Box::leak(etag.into_boxed_str());
    let response = get(&client, "/hashed", &[("If-None-Match", if_none_match)]).await;
    assert_eq!(response.status(), Status::NotModified);
    // A response that is not fit to share keeps its headers (its cookie) instead of a bare 304.
    let response = get(&client, "/personal", &[("If-None-Match", "\"p1\"")]).await;
    assert_eq!(response.status(), Status::Ok);
    assert_eq!(response.headers().get_one("Set-Cookie"), Some("seen=1"));
    assert_eq!(runs(&client, "versioned"), 1, "the handler ran once");
    assert_eq!(runs(&client, "hashed"), 1, "the handler ran once");
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for With {}
