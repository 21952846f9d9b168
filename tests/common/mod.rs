//! The app every integration test drives: one cached route per handler shape the README
//! promises, each counting how often its body runs, and the checks shared by the embedded and
//! the Memcached suites.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Mutex;

use cached_route_suite::MemcachedServer;
use rocket::http::uri::{fmt::Path, Segments};
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use rocket::request::{FromRequest, Outcome};
use rocket::response::stream::TextStream;
use rocket::response::{self, status, Redirect, Responder};
use rocket::serde::json::Json;
use rocket::serde::Serialize;
use rocket::{get, routes, Build, Request, Response, Rocket, State};
use rocket_route_cache::{cached_route, Cache};

/// How many times each handler body ran.
#[derive(Debug, Default)]
pub struct Runs(Mutex<HashMap<&'static str, usize>>);

impl Runs {
    pub fn bump(&self, route: &'static str) -> usize {
        let mut runs = self.0.lock().unwrap();
        let count = runs.entry(route).or_default();
        *count += 1;
        *count
    }

    pub fn of(&self, route: &'static str) -> usize {
        self.0.lock().unwrap().get(route).copied().unwrap_or(0)
    }
}

#[derive(Serialize)]
#[serde(crate = "rocket::serde")]
pub struct Article {
    id: u32,
    lang: String,
    run: usize,
}

#[cached_route(ttl = 60)]
#[get("/article/<id>?<lang>")]
async fn article(id: u32, lang: Option<&str>, runs: &State<Runs>) -> Json<Article> {
    let run = runs.bump("article");
    Json(Article {
        id,
        lang: lang.unwrap_or("en").to_owned(),
        run,
    })
}

#[cached_route(ttl = 60)]
#[get("/plain")]
fn plain(runs: &State<Runs>) -> &'static str {
    runs.bump("plain");
    "plain text"
}

#[cached_route(ttl = 60)]
#[get("/hello/<name>")]
fn hello<'a>(name: &'a str, runs: &'a State<Runs>) -> String {
    let run = runs.bump("hello");
    format!("hello {name} #{run}")
}

#[cached_route(ttl = 60)]
#[get("/tuple")]
fn tuple(runs: &State<Runs>) -> (ContentType, String) {
    let run = runs.bump("tuple");
    (ContentType::CSV, format!("a,b\n1,{run}\n"))
}

#[cached_route(ttl = 60)]
#[get("/custom/<code>")]
fn custom(code: u16, runs: &State<Runs>) -> status::Custom<String> {
    let run = runs.bump("custom");
    status::Custom(Status::new(code), format!("custom {code} #{run}"))
}

#[cached_route(ttl = 60)]
#[get("/maybe/<id>")]
async fn maybe(id: u32, runs: &State<Runs>) -> Option<String> {
    let run = runs.bump("maybe");
    (id != 0).then(|| format!("found {id} #{run}"))
}

#[cached_route(ttl = 60)]
#[get("/result/<id>")]
async fn result(id: u32, runs: &State<Runs>) -> Result<String, Status> {
    let run = runs.bump("result");
    match id {
        0 => Err(Status::ServiceUnavailable),
        _ => Ok(format!("ok {id} #{run}")),
    }
}

#[cached_route(ttl = 60)]
#[get("/redirect")]
fn redirect(runs: &State<Runs>) -> Redirect {
    runs.bump("redirect");
    Redirect::to("/plain")
}

/// A response with headers of its own, to check they are stored and replayed.
struct WithHeaders {
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// Its response is made of its own fields alone.
impl rocket_route_cache::SharedResponder for WithHeaders {}

impl<'r> Responder<'r, 'static> for WithHeaders {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        for (name, value) in self.headers {
            response.raw_header_adjoin(name, value);
        }
        response
            .header(ContentType::Plain)
            .sized_body(self.body.len(), Cursor::new(self.body))
            .ok()
    }
}

#[cached_route(ttl = 60)]
#[get("/headers")]
fn headers(runs: &State<Runs>) -> WithHeaders {
    let run = runs.bump("headers");
    WithHeaders {
        headers: vec![
            ("ETag", format!("\"v{run}\"")),
            ("X-Custom", "one".into()),
            ("X-Custom", "two".into()),
            ("Cache-Control", "public, max-age=60".into()),
        ],
        body: format!("with headers #{run}"),
    }
}

/// `/refuse/<kind>`: a 200 response that must not be stored.
#[cached_route(ttl = 60)]
#[get("/refuse/<kind>")]
fn refuse(kind: &str, runs: &State<Runs>) -> WithHeaders {
    let run = runs.bump("refuse");
    let header = match kind {
        "cookie" => ("Set-Cookie", "session=abc; HttpOnly".to_owned()),
        "private" => ("Cache-Control", "Private".to_owned()),
        "private-spaced" => ("Cache-Control", "max-age=60 ,  PRIVATE ".to_owned()),
        "no-store" => ("Cache-Control", "NO-STORE".to_owned()),
        "vary-star" => ("Vary", "*".to_owned()),
        _ => ("X-Nothing", "storable".to_owned()),
    };
    WithHeaders {
        headers: vec![header],
        body: format!("refuse {kind} #{run}"),
    }
}

#[cached_route(ttl = 60)]
#[get("/big/<size>")]
fn big(size: usize, runs: &State<Runs>) -> String {
    let run = runs.bump("big");
    format!("{run:>8}").repeat(size / 8)
}

#[cached_route(ttl = 60)]
#[get("/stream")]
fn stream(runs: &State<Runs>) -> TextStream![String] {
    let run = runs.bump("stream");
    TextStream! {
        yield format!("streamed #{run}");
    }
}

#[cached_route(ttl = 3)]
#[get("/short")]
fn short(runs: &State<Runs>) -> String {
    format!("short #{}", runs.bump("short"))
}

/// Forwards unless `X-Admin: 1`: the same path then belongs to the next route.
struct Admin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Admin, ()> {
        match request.headers().get_one("X-Admin") {
            Some("1") => Outcome::Success(Admin),
            _ => Outcome::Forward(Status::Unauthorized),
        }
    }
}

#[cached_route(ttl = 60, trusted_guards = ["_admin"])]
#[get("/dashboard", rank = 1)]
fn admin_dashboard(_admin: Admin, runs: &State<Runs>) -> String {
    format!("admin dashboard #{}", runs.bump("admin_dashboard"))
}

#[cached_route(ttl = 60)]
#[get("/dashboard", rank = 2)]
fn public_dashboard(runs: &State<Runs>) -> String {
    format!("public dashboard #{}", runs.bump("public_dashboard"))
}

/// A guard that sets a cookie through the jar, as CSRF and session guards do: Rocket adds it
/// to the response after the handler returns.
struct Visitor;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Visitor {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Visitor, ()> {
        if request.headers().contains("X-New-Visitor") {
            request.cookies().add(("visitor", "v-123"));
        }
        Outcome::Success(Visitor)
    }
}

#[cached_route(ttl = 60, trusted_guards = ["_visitor"])]
#[get("/welcome")]
fn welcome(_visitor: Visitor, runs: &State<Runs>) -> String {
    format!("welcome #{}", runs.bump("welcome"))
}

/// Slower than the 100 ms cache deadline: the handler's time is not the cache's.
#[cached_route(ttl = 60)]
#[get("/slow")]
async fn slow(runs: &State<Runs>) -> String {
    rocket::tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    format!("slow #{}", runs.bump("slow"))
}

/// Any path, any query (every parameter counts): for requests built to break the key.
#[cached_route(ttl = 60, query = "all")]
#[get("/any/<path..>")]
fn any(path: Segments<'_, Path>, runs: &State<Runs>) -> String {
    format!("{} segments #{}", path.len(), runs.bump("any"))
}

/// The request's `Accept-Language` values, as a localizing handler reads them.
pub struct Languages(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Languages {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Languages, ()> {
        let values: Vec<&str> = request.headers().get("Accept-Language").collect();
        Outcome::Success(Languages(values.join("|")))
    }
}

#[cached_route(ttl = 60, vary = ["Accept-Language"], trusted_guards = ["languages"])]
#[get("/localized")]
fn localized(languages: Languages, runs: &State<Runs>) -> String {
    format!("page for [{}] #{}", languages.0, runs.bump("localized"))
}

/// Collects the whole query into a `Vec`, in the order the pairs arrive.
#[cached_route(ttl = 60)]
#[get("/collect?<rest..>")]
fn collect(rest: Vec<&str>, runs: &State<Runs>) -> String {
    format!("{} #{}", rest.join(","), runs.bump("collect"))
}

/// Not cached: used to show the executor keeps serving while the cache waits.
#[get("/ping")]
fn ping() -> &'static str {
    "pong"
}

pub fn routes() -> Vec<rocket::Route> {
    routes![
        article,
        plain,
        hello,
        tuple,
        custom,
        maybe,
        result,
        redirect,
        headers,
        refuse,
        big,
        stream,
        short,
        admin_dashboard,
        public_dashboard,
        any,
        collect,
        welcome,
        slow,
        localized,
        ping
    ]
}

/// The app with its own `cache`, so that tests running in parallel never share entries.
pub fn app(cache: Cache) -> Rocket<Build> {
    app_with(cache, routes())
}

/// An app of `routes` (a test file's own) with its own `cache` and `Runs`.
pub fn app_with(cache: Cache, routes: Vec<rocket::Route>) -> Rocket<Build> {
    rocket::custom(rocket::Config {
        log_level: rocket::config::LogLevel::Off,
        ..rocket::Config::debug_default()
    })
    .manage(Runs::default())
    .manage(cache)
    .mount("/", routes)
}

pub async fn client(cache: Cache) -> Client {
    Client::untracked(app(cache)).await.expect("valid rocket")
}

pub fn runs(client: &Client, route: &'static str) -> usize {
    client.rocket().state::<Runs>().unwrap().of(route)
}

pub fn x_cache(response: &LocalResponse<'_>) -> String {
    response
        .headers()
        .get_one("X-Cache")
        .unwrap_or("")
        .to_owned()
}

/// A response reduced to what a client sees, minus the headers that differ by design.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub status: Status,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub async fn fetch(client: &Client, uri: &str) -> (Seen, String) {
    fetch_with(client, uri, &[]).await
}

/// A GET with `headers`; `Cookie` values go into the jar, which the local client fills from
/// cookies, not from a raw header.
pub fn request<'c>(
    client: &'c Client,
    uri: &str,
    headers: &[(&'static str, &'static str)],
) -> LocalRequest<'c> {
    let mut request = client.get(uri.to_owned());
    for (name, value) in headers {
        if *name == "Cookie" {
            for pair in value.split("; ") {
                let (cookie, cookie_value) = pair.split_once('=').unwrap();
                request = request.cookie(rocket::http::Cookie::new(cookie, cookie_value));
            }
        } else {
            request.add_header(Header::new(*name, *value));
        }
    }
    request
}

/// Every key on `server` but the test's `sentinel` is `rc:` and 32 hex digits (an entry),
/// `rc:g:`, 32 hex digits, `@` and 8 (an invalidation counter) or `rc:h@` and 8 (the epoch
/// polls' horizon), and the sentinel still holds `expected`: nothing from a request reached the
/// wire unhashed.
pub fn assert_wire_is_clean(server: &MemcachedServer, expected: &[u8]) {
    let hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    for key in server.keys().iter().filter(|key| *key != "sentinel") {
        let digest = key
            .strip_prefix("rc:")
            .unwrap_or_else(|| panic!("unexpected key {key:?}"));
        let counter = digest
            .strip_prefix("g:")
            .and_then(|counter| counter.split_once('@'))
            .is_some_and(|(id, server)| hex(id, 32) && hex(server, 8));
        let horizon = digest
            .strip_prefix("h@")
            .is_some_and(|server| hex(server, 8));
        assert!(hex(digest, 32) || counter || horizon, "{key:?}");
    }
    assert_eq!(server.get_raw("sentinel").as_deref(), Some(expected));
}

pub async fn fetch_with(
    client: &Client,
    uri: &str,
    headers: &[(&'static str, &'static str)],
) -> (Seen, String) {
    let response = request(client, uri, headers).dispatch().await;
    let state = x_cache(&response);
    let mut seen_headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|h| {
            !["X-Cache", "Cache-Status", "Age"]
                .iter()
                .any(|n| h.name() == *n)
        })
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    seen_headers.sort();
    let status = response.status();
    let body = body_text(response).await;
    (
        Seen {
            status,
            headers: seen_headers,
            body,
        },
        state,
    )
}

/// Every behaviour both backends must show; each returns after asserting.
pub mod checks {
    use super::*;

    /// MISS, then HIT with the same status, headers and body, `Age`, and no second run.
    pub async fn miss_then_hit(client: &Client) {
        let (first, state) = fetch(client, "/headers").await;
        assert_eq!(state, "MISS");
        assert_eq!(first.status, Status::Ok);
        assert_eq!(runs(client, "headers"), 1);

        let response = client.get("/headers").dispatch().await;
        assert_eq!(x_cache(&response), "HIT");
        let age: u64 = response
            .headers()
            .get_one("Age")
            .expect("a hit carries Age")
            .parse()
            .expect("Age is whole seconds");
        assert!(age <= 2, "fresh entry, Age {age}");
        drop(response);
        let (second, state) = fetch(client, "/headers").await;
        assert_eq!(state, "HIT");
        assert_eq!(second, first, "a hit replays status, headers and body");
        assert!(second.headers.contains(&("X-Custom".into(), "two".into())));
        assert!(second.headers.contains(&("ETag".into(), "\"v1\"".into())));
        assert_eq!(
            runs(client, "headers"),
            1,
            "the handler body did not run on hits"
        );
    }

    /// Every promised return shape: cached when 200, passed through otherwise.
    pub async fn handler_shapes(client: &Client) {
        for (uri, route, content_type) in [
            ("/article/7?lang=fr", "article", "application/json"),
            ("/plain", "plain", "text/plain; charset=utf-8"),
            ("/hello/ann", "hello", "text/plain; charset=utf-8"),
            ("/tuple", "tuple", "text/csv; charset=utf-8"),
            ("/custom/200", "custom", "text/plain; charset=utf-8"),
            ("/maybe/3", "maybe", "text/plain; charset=utf-8"),
            ("/result/4", "result", "text/plain; charset=utf-8"),
        ] {
            let (first, state) = fetch(client, uri).await;
            assert_eq!(
                (first.status, state.as_str()),
                (Status::Ok, "MISS"),
                "{uri}"
            );
            let (second, state) = fetch(client, uri).await;
            assert_eq!(state, "HIT", "{uri}");
            assert_eq!(second, first, "{uri}");
            assert!(
                second
                    .headers
                    .contains(&("Content-Type".into(), content_type.into())),
                "{uri}: {:?}",
                second.headers
            );
            assert_eq!(runs(client, route), 1, "{uri} ran on a hit");
        }
        let (article, _) = fetch(client, "/article/7?lang=fr").await;
        assert_eq!(article.body, r#"{"id":7,"lang":"fr","run":1}"#);
    }

    /// Non-200 outcomes are served, reach the catchers where Rocket sends them, and are never
    /// stored.
    pub async fn errors_and_redirects_are_not_stored(client: &Client) {
        // The handler runs each time: a response it made says MISS; one Rocket's catcher
        // rendered (from `None` or `Err(Status)`) carries no `X-Cache` at all.
        for (uri, route, status, expected) in [
            ("/maybe/0", "maybe", Status::NotFound, ""),
            ("/result/0", "result", Status::ServiceUnavailable, ""),
            ("/custom/201", "custom", Status::Created, "MISS"),
            ("/custom/500", "custom", Status::InternalServerError, "MISS"),
            ("/redirect", "redirect", Status::SeeOther, "MISS"),
        ] {
            let before = runs(client, route);
            for _ in 0..2 {
                let (seen, state) = fetch(client, uri).await;
                assert_eq!((seen.status, state.as_str()), (status, expected), "{uri}");
            }
            assert_eq!(runs(client, route), before + 2, "{uri} was stored");
        }
        // `None` and `Err(Status)` went through Rocket's default catcher (an HTML page).
        let (seen, _) = fetch(client, "/maybe/0").await;
        assert!(seen.body.contains("404"), "{}", seen.body);
        let (seen, _) = fetch(client, "/redirect").await;
        assert!(seen.headers.contains(&("Location".into(), "/plain".into())));
    }

    pub async fn unsafe_responses_are_not_stored(client: &Client) {
        for kind in [
            "cookie",
            "private",
            "private-spaced",
            "no-store",
            "vary-star",
        ] {
            let uri = format!("/refuse/{kind}");
            let before = runs(client, "refuse");
            let (first, state) = fetch(client, &uri).await;
            assert_eq!(
                (first.status, state.as_str()),
                (Status::Ok, "MISS"),
                "{uri}"
            );
            let (second, state) = fetch(client, &uri).await;
            assert_eq!(state, "MISS", "{uri} was stored");
            assert_ne!(second.body, first.body);
            assert_eq!(runs(client, "refuse"), before + 2);
        }
        // The same route stores a response without those headers.
        fetch(client, "/refuse/fine").await;
        let (_, state) = fetch(client, "/refuse/fine").await;
        assert_eq!(state, "HIT");
        // The cookie was served to the client that caused it.
        let (seen, _) = fetch(client, "/refuse/cookie").await;
        assert!(seen.headers.iter().any(|(n, _)| n == "Set-Cookie"));

        // A cookie set through the jar by a guard is added after the handler: still refused.
        let (seen, state) = fetch_with(client, "/welcome", &[("X-New-Visitor", "1")]).await;
        assert_eq!(state, "MISS");
        assert!(
            seen.headers
                .iter()
                .any(|(n, v)| n == "Set-Cookie" && v.starts_with("visitor=v-123")),
            "{:?}",
            seen.headers
        );
        let (seen, state) = fetch(client, "/welcome").await;
        assert_eq!(
            (seen.body.as_str(), state.as_str()),
            ("welcome #2", "MISS"),
            "the cookie response was stored"
        );
        assert_eq!(
            fetch(client, "/welcome").await.1,
            "HIT",
            "a response without cookies is stored"
        );
        // Regression: a client cookie whose value imitates the jar's `Debug` output
        // (`pending: []`) hid the cookie a guard added.
        let decoy = [("X-New-Visitor", "1"), ("Cookie", "x=pending: []")];
        for _ in 0..2 {
            let (seen, state) = fetch_with(client, "/welcome?decoy", &decoy).await;
            assert_eq!(state, "MISS", "a response that sets a cookie was stored");
            assert!(seen.headers.iter().any(|(n, _)| n == "Set-Cookie"));
        }
    }

    /// With `max_item_size` 4096: a larger body and a streamed one pass through, uncached.
    pub async fn oversized_and_streamed_bodies_pass_through(client: &Client) {
        let (small, _) = fetch(client, "/big/1024").await;
        assert_eq!(small.body.len(), 1024);
        assert_eq!(fetch(client, "/big/1024").await.1, "HIT");
        for _ in 0..2 {
            let (large, state) = fetch(client, "/big/8192").await;
            assert_eq!((large.body.len(), state.as_str()), (8192, "MISS"));
        }
        assert_eq!(runs(client, "big"), 3);
        for run in 1..=2 {
            let (streamed, state) = fetch(client, "/stream").await;
            assert_eq!(streamed.body, format!("streamed #{run}"));
            assert_eq!(state, "MISS");
        }
    }

    /// The key: query order, values, host, GET/HEAD sharing, route identity.
    pub async fn key_semantics(client: &Client) {
        fetch(client, "/article/1?lang=en&utm=x").await;
        assert_eq!(fetch(client, "/article/1?utm=x&lang=en").await.1, "HIT");
        assert_eq!(fetch(client, "/article/1?lang=de&utm=x").await.1, "MISS");
        assert_eq!(fetch(client, "/article/2?lang=en&utm=x").await.1, "MISS");
        assert_eq!(runs(client, "article"), 3);

        fetch_with(client, "/plain", &[("Host", "a.example")]).await;
        assert_eq!(
            fetch_with(client, "/plain", &[("Host", "a.example")])
                .await
                .1,
            "HIT"
        );
        // The host's case is kept: a handler renders the host as sent.
        assert_eq!(
            fetch_with(client, "/plain", &[("Host", "A.EXAMPLE")])
                .await
                .1,
            "MISS"
        );
        assert_eq!(
            fetch_with(client, "/plain", &[("Host", "b.example")])
                .await
                .1,
            "MISS"
        );
        assert_eq!(runs(client, "plain"), 3);

        // HEAD is answered from the GET entry, without a body; and a HEAD miss fills it.
        let head = client
            .head("/plain")
            .header(Header::new("Host", "a.example"))
            .dispatch()
            .await;
        assert_eq!(x_cache(&head), "HIT");
        assert_eq!(body_text(head).await, "");
        let head = client.head("/tuple").dispatch().await;
        assert_eq!(x_cache(&head), "MISS");
        let (get, state) = fetch(client, "/tuple").await;
        assert_eq!(state, "HIT");
        assert_eq!(get.body, "a,b\n1,1\n");

        // Same path, two routes: the one that forwards never serves the other's entry.
        let (admin, _) = fetch_with(client, "/dashboard", &[("X-Admin", "1")]).await;
        assert_eq!(admin.body, "admin dashboard #1");
        let (public, state) = fetch(client, "/dashboard").await;
        assert_eq!(
            (public.body.as_str(), state.as_str()),
            ("public dashboard #1", "MISS")
        );
        assert_eq!(
            fetch(client, "/dashboard").await.0.body,
            "public dashboard #1"
        );
        assert_eq!(
            fetch_with(client, "/dashboard", &[("X-Admin", "1")])
                .await
                .0
                .body,
            "admin dashboard #1"
        );
    }

    pub async fn authorization_bypasses(client: &Client) {
        for run in 1..=2 {
            let (seen, state) =
                fetch_with(client, "/hello/bob", &[("Authorization", "Bearer t")]).await;
            assert_eq!(state, "BYPASS");
            assert_eq!(seen.body, format!("hello bob #{run}"));
        }
        // Nothing was stored by the bypassed requests.
        assert_eq!(fetch(client, "/hello/bob").await.1, "MISS");
    }

    /// `/short` has `ttl = 3`: served from the cache within it, with a growing `Age`, and run
    /// again after it. Expiry and age are points in time that nothing signals: the test sleeps.
    pub async fn entries_expire(client: &Client) {
        use std::time::Duration;
        assert_eq!(fetch(client, "/short").await.1, "MISS");
        assert_eq!(fetch(client, "/short").await.1, "HIT");
        rocket::tokio::time::sleep(Duration::from_millis(1100)).await;
        let hit = client.get("/short").dispatch().await;
        assert_eq!(x_cache(&hit), "HIT");
        let age: u64 = hit.headers().get_one("Age").unwrap().parse().unwrap();
        assert!((1..=2).contains(&age), "Age {age} after 1.1 s");
        drop(hit);
        // 4.5 s after the store is past a 3 s TTL even with memcached's whole-second clock.
        rocket::tokio::time::sleep(Duration::from_millis(3400)).await;
        let (seen, state) = fetch(client, "/short").await;
        assert_eq!((seen.body.as_str(), state.as_str()), ("short #2", "MISS"));
        assert_eq!(runs(client, "short"), 2);
    }
}

/// Joins futures on the current task (keeps the test free of extra dependencies).
pub async fn join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|context| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(context) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

/// The body as text: empty when the response has none (HEAD, 304); a body that cannot be read
/// fails the test instead of reading as empty.
pub async fn body_text(response: LocalResponse<'_>) -> String {
    if response.body().is_none() {
        return String::new();
    }
    response.into_string().await.expect("a readable UTF-8 body")
}
