//! Per-user pages by type, and invalidation without traps, over the wire (HTTP/1.1 on
//! 127.0.0.1, and HTTP/2 where a client picks it): a guard implementing `KeyedGuard` keys the
//! page itself (each user an entry, one entry per user across logins and instances), a tag may
//! name it, such pages never go downstream as `public`, a query string nothing reads does not
//! split entries, and the free `invalidate*` functions and `Invalidation` batches reach every
//! cache of the process, paying one wait for several targets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cached_route_suite::{launch, launch_alone, loopback_config, MemcachedServer, RawReply};
use rocket::http::uri::Origin;
use rocket::http::{CookieJar, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{get, post, routes, uri, State};
use rocket_route_cache::{cached_route, Cache, Config, Invalidation, KeyedGuard};

/// Sessions: a token, new at every login, names a user. Shared by the instances of a test,
/// as a database would be.
#[derive(Debug, Default, Clone)]
struct Sessions(Arc<Mutex<HashMap<String, String>>>);

/// Handler runs, counted across the routes of an instance.
#[derive(Debug, Default)]
struct Runs(AtomicUsize);

impl Runs {
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// The signed-in user, from the `session` cookie: what an app's own guard looks like.
#[derive(Debug)]
struct User {
    id: String,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for User {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<User, ()> {
        let sessions = request.rocket().state::<Sessions>().expect("managed");
        let token = request
            .cookies()
            .get("session")
            .map(|c| c.value().to_owned());
        let user = token.and_then(|token| sessions.0.lock().unwrap().get(&token).cloned());
        match user {
            Some(id) => Outcome::Success(User { id }),
            None => Outcome::Forward(Status::Unauthorized),
        }
    }
}

impl KeyedGuard for User {
    fn cache_key(&self) -> impl std::fmt::Display + '_ {
        &self.id
    }
}

/// Renamed, as users do: the check goes by the resolved type.
type Visitor = User;

/// A new session at each login: the cookie's value changes, the user does not.
#[post("/login/<id>")]
fn login(id: &str, jar: &CookieJar<'_>, sessions: &State<Sessions>) -> &'static str {
    static TOKENS: AtomicUsize = AtomicUsize::new(0);
    let token = format!("t{}", TOKENS.fetch_add(1, Ordering::SeqCst));
    sessions
        .0
        .lock()
        .unwrap()
        .insert(token.clone(), id.to_owned());
    jar.add(("session", token));
    "signed in"
}

#[cached_route(ttl = 600, tags = ["user:{user}"], downstream = "max-age")]
#[get("/dashboard")]
fn dashboard(user: Visitor, runs: &State<Runs>) -> String {
    format!("dashboard of {} #{}", user.id, runs.next())
}

#[cached_route(ttl = 600)]
#[get("/home")]
fn home(user: Option<User>, runs: &State<Runs>) -> String {
    let who = user.map_or("nobody".to_owned(), |user| user.id);
    format!("home of {who} #{}", runs.next())
}

#[cached_route(ttl = 600, vary_cookies = ["lang"], downstream = "max-age")]
#[get("/news")]
fn news(jar: &CookieJar<'_>, runs: &State<Runs>) -> String {
    let lang = jar.get("lang").map_or("en", |c| c.value());
    format!("news in {lang} #{}", runs.next())
}

#[cached_route(ttl = 600, public, downstream = "max-age", tags = ["articles"])]
#[get("/article/<id>")]
fn article(id: u32, runs: &State<Runs>) -> String {
    format!("article {id} #{}", runs.next())
}

#[cached_route(ttl = 600)]
#[get("/list?<page>")]
fn list(page: Option<u32>, runs: &State<Runs>) -> String {
    format!("list page {} #{}", page.unwrap_or(1), runs.next())
}

#[cached_route(ttl = 600, query = "all")]
#[get("/search")]
fn search(runs: &State<Runs>) -> String {
    format!("search #{}", runs.next())
}

#[cached_route(ttl = 600)]
#[get("/echo")]
fn echo(origin: &Origin<'_>, runs: &State<Runs>) -> String {
    format!(
        "echo {} #{}",
        origin.query().map_or("", |q| q.as_str()),
        runs.next()
    )
}

#[cached_route(ttl = 600, tags = ["index"])]
#[get("/")]
fn index(runs: &State<Runs>) -> String {
    format!("index #{}", runs.next())
}

/// A page edits drop, for the test of the free functions alone: they reach every cache of
/// the process, so the other tests of this binary use routes no free invalidation names.
#[cached_route(ttl = 600, tags = ["edited"])]
#[get("/edited/<id>")]
fn edited(id: u32, runs: &State<Runs>) -> String {
    format!("edited {id} #{}", runs.next())
}

/// An edit: drops what showed it through the free functions, as the README shows.
#[post("/edit/<id>")]
async fn edit(id: u32) -> Result<&'static str, Status> {
    rocket_route_cache::invalidate_tag("edited")
        .await
        .and(edited::invalidate(id).await)
        .map(|()| "edited")
        .map_err(|_| Status::ServiceUnavailable)
}

fn app(cache: Cache, sessions: Sessions) -> rocket::Rocket<rocket::Build> {
    rocket::custom(loopback_config())
        .manage(cache)
        .manage(sessions)
        .manage(Runs::default())
        .mount(
            "/",
            routes![login, dashboard, home, news, article, list, search, echo, index, edited, edit],
        )
}

async fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> RawReply {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    cached_route_suite::http1(port, head.trim_end()).await
}

async fn post(port: u16, path: &str) -> RawReply {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close"
    );
    cached_route_suite::http1(port, &head).await
}

/// Signs `user` in on the instance at `port`: a new session cookie, `session=<token>`.
async fn sign_in(port: u16, user: &str) -> String {
    let reply = post(port, &format!("/login/{user}")).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let cookie = reply.one("Set-Cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_owned()
}

fn memcached_cache(memcached: &MemcachedServer) -> Cache {
    Cache::new(Config::memcached([memcached.address()])).unwrap()
}

#[rocket::async_test]
async fn a_keyed_guard_gives_each_user_an_entry_shared_across_logins_and_instances() {
    let memcached = MemcachedServer::start();
    let sessions = Sessions::default();
    let first = launch_alone(app(memcached_cache(&memcached), sessions.clone())).await;
    let second = launch(app(memcached_cache(&memcached), sessions), memcached).await;

    let alice = sign_in(first.port, "alice").await;
    let page = get(first.port, "/dashboard", &[("Cookie", &alice)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("MISS", "dashboard of alice #1")
    );

    // Bob never gets alice's page, on either instance.
    let bob = sign_in(first.port, "bob").await;
    let page = get(first.port, "/dashboard", &[("Cookie", &bob)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("MISS", "dashboard of bob #2")
    );

    // Alice signs in again on the other instance: a new cookie value, the same entry.
    let again = sign_in(second.port, "alice").await;
    assert_ne!(again, alice, "a new session");
    let page = get(second.port, "/dashboard", &[("Cookie", &again)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("HIT", "dashboard of alice #1")
    );
    let page = get(second.port, "/dashboard", &[("Cookie", &bob)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("HIT", "dashboard of bob #2")
    );

    // Without a session the guard forwards: no page, and no entry is touched.
    let page = get(first.port, "/dashboard", &[]).await;
    assert_eq!(page.status, 401);
}

#[rocket::async_test]
async fn an_absent_keyed_guard_is_a_variant_of_its_own() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let server = launch_alone(app(cache, Sessions::default())).await;
    let page = get(server.port, "/home", &[]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("MISS", "home of nobody #1")
    );
    let alice = sign_in(server.port, "alice").await;
    let page = get(server.port, "/home", &[("Cookie", &alice)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("MISS", "home of alice #2")
    );
    // A cookie that names no session is the anonymous variant.
    let page = get(server.port, "/home", &[("Cookie", "session=forged")]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("HIT", "home of nobody #1")
    );
    let page = get(server.port, "/home", &[("Cookie", &alice)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("HIT", "home of alice #2")
    );
}

#[rocket::async_test]
async fn a_tag_naming_a_keyed_guard_drops_one_users_pages() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let server = launch_alone(app(cache.clone(), Sessions::default())).await;
    let (alice, bob) = (
        sign_in(server.port, "alice").await,
        sign_in(server.port, "bob").await,
    );
    for cookie in [&alice, &bob] {
        let page = get(server.port, "/dashboard", &[("Cookie", cookie)]).await;
        assert_eq!(page.x_cache(), "MISS");
    }
    cache.invalidate_tag("user:alice").await.unwrap();
    let page = get(server.port, "/dashboard", &[("Cookie", &alice)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("MISS", "dashboard of alice #3")
    );
    let page = get(server.port, "/dashboard", &[("Cookie", &bob)]).await;
    assert_eq!(
        (page.x_cache(), page.body.as_str()),
        ("HIT", "dashboard of bob #2")
    );
}

#[rocket::async_test]
async fn per_user_pages_never_go_downstream_as_public() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let server = launch_alone(app(cache, Sessions::default())).await;
    let alice = sign_in(server.port, "alice").await;
    let cache_control = |reply: &RawReply| reply.one("Cache-Control").unwrap_or("").to_owned();

    // A keyed guard: private, on the miss and on the hit; and varying on the credentials, so
    // that a browser never shows it to whoever signs in next on it.
    for expected in ["MISS", "HIT"] {
        let page = get(server.port, "/dashboard", &[("Cookie", &alice)]).await;
        assert_eq!(page.x_cache(), expected);
        assert!(
            cache_control(&page).starts_with("private, max-age="),
            "{expected}: {page:?}"
        );
        let vary = page.all("Vary").join(", ");
        assert!(
            vary.contains("Cookie") && vary.contains("Authorization"),
            "{expected}: {page:?}"
        );
    }
    // `vary_cookies`: private.
    let page = get(server.port, "/news", &[("Cookie", "lang=fr")]).await;
    assert!(
        cache_control(&page).starts_with("private, max-age="),
        "{page:?}"
    );
    // A `public` route: public, but private for a request with credentials.
    let page = get(server.port, "/article/1", &[]).await;
    assert!(
        cache_control(&page).starts_with("public, max-age="),
        "{page:?}"
    );
    let page = get(server.port, "/article/1", &[("Authorization", "Bearer x")]).await;
    assert_eq!(page.x_cache(), "HIT");
    assert!(
        cache_control(&page).starts_with("private, max-age="),
        "{page:?}"
    );
}

#[rocket::async_test]
async fn the_query_counts_only_where_it_is_read() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let server = launch_alone(app(cache, Sessions::default())).await;
    let body = |reply: RawReply| (reply.x_cache().to_owned(), reply.body);
    let port = server.port;

    // Nothing reads the query: a marketing link or a cache-buster is a hit.
    assert_eq!(body(get(port, "/article/3", &[]).await).0, "MISS");
    for query in ["?utm_source=x", "?x=1&y=2", "?"] {
        let page = body(get(port, &format!("/article/3{query}"), &[]).await);
        assert_eq!(
            page,
            ("HIT".to_owned(), "article 3 #1".to_owned()),
            "{query}"
        );
    }
    // Declared parameters count.
    assert_eq!(body(get(port, "/list?page=1", &[]).await).0, "MISS");
    let page = body(get(port, "/list?page=2", &[]).await);
    assert_eq!(page, ("MISS".to_owned(), "list page 2 #3".to_owned()));
    // `query = "all"`, and a guard that reads the whole query (`&Origin`), count it all.
    for path in ["/search", "/echo"] {
        assert_eq!(body(get(port, &format!("{path}?x=1"), &[]).await).0, "MISS");
        assert_eq!(body(get(port, &format!("{path}?x=2"), &[]).await).0, "MISS");
        assert_eq!(body(get(port, &format!("{path}?x=1"), &[]).await).0, "HIT");
    }
}

#[rocket::async_test]
async fn a_free_invalidation_reaches_the_cache_of_every_instance() {
    // Two instances in one process, each with its own cache: the usual shape of a test suite.
    let first_cache = Cache::new(Config::embedded()).unwrap();
    let second_cache = Cache::new(Config::embedded()).unwrap();
    let first = launch_alone(app(first_cache, Sessions::default())).await;
    let second = launch_alone(app(second_cache, Sessions::default())).await;
    for port in [first.port, second.port] {
        assert_eq!(get(port, "/edited/7", &[]).await.x_cache(), "MISS");
        assert_eq!(get(port, "/edited/7", &[]).await.x_cache(), "HIT");
    }
    // The edit goes through the second instance, whose fairing never ran.
    assert_eq!(post(second.port, "/edit/7").await.status, 200);
    for port in [second.port, first.port] {
        let page = get(port, "/edited/7", &[]).await;
        assert_eq!(page.x_cache(), "MISS", "instance on {port}: {page:?}");
    }
}

#[rocket::async_test]
async fn a_batch_drops_every_target_and_waits_once() {
    let memcached = MemcachedServer::start();
    let mut config = Config::memcached([memcached.address()]);
    // A long poll interval makes each invalidation's wait for the instances stand out.
    config.epoch_poll = Duration::from_millis(400);
    let cache = Cache::new(config).unwrap();
    let server = launch(app(cache.clone(), Sessions::default()), memcached).await;
    let port = server.port;
    let pages = ["/article/1", "/article/2", "/"];
    let warm = || async {
        for page in pages {
            get(port, page, &[]).await;
            assert_eq!(get(port, page, &[]).await.x_cache(), "HIT", "{page}");
        }
        // Hits rely on the epoch (and wait for it) only after a poll.
        rocket_route_cache::__private::epochs_polled(&cache).await;
    };

    warm().await;
    let started = Instant::now();
    cache.invalidate(uri!(article(1))).await.unwrap();
    rocket_route_cache::Invalidation::new()
        .route(article::entries(2))
        .run_in(&cache)
        .await
        .unwrap();
    cache.invalidate_tag("index").await.unwrap();
    let one_by_one = started.elapsed();
    for page in pages {
        assert_eq!(get(port, page, &[]).await.x_cache(), "MISS", "{page}");
    }

    warm().await;
    let started = Instant::now();
    Invalidation::new()
        .uri(uri!(article(1)))
        .route(article::entries(2))
        .tag("index")
        .run_in(&cache)
        .await
        .unwrap();
    let batched = started.elapsed();
    for page in pages {
        assert_eq!(get(port, page, &[]).await.x_cache(), "MISS", "{page}");
    }
    println!("three invalidations: {one_by_one:?} one by one, {batched:?} in one batch");
    assert!(
        batched * 2 < one_by_one,
        "a batch waits once: {batched:?} against {one_by_one:?} for three calls"
    );
}

#[rocket::async_test]
async fn a_bad_uri_in_a_batch_invalidates_nothing() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let server = launch_alone(app(cache.clone(), Sessions::default())).await;
    assert_eq!(get(server.port, "/", &[]).await.x_cache(), "MISS");
    let refused = Invalidation::new()
        .tag("index")
        .uri("article:5")
        .run_in(&cache)
        .await;
    assert!(
        matches!(
            refused,
            Err(rocket_route_cache::invalidation::InvalidationError::BadUri(
                _
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(get(server.port, "/", &[]).await.x_cache(), "HIT");
}

/// Reads the session cookie, and a route vouches for it: the trap `KeyedGuard` replaces.
struct Session(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Session {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Session, ()> {
        let user = request.cookies().get("user").map(|c| c.value().to_owned());
        Outcome::Success(Session(user.unwrap_or_default()))
    }
}

/// `vary_cookies` copied from another app: this one's cookie is `user`.
#[cached_route(ttl = 60, vary_cookies = ["session"], trusted_guards = ["session"])]
#[get("/copied")]
fn copied(session: Session) -> String {
    format!("the page of {}", session.0)
}

/// Debug builds say once per route that requests carry cookies the key does not hold, on a
/// route that vouches for its guards (run in a child process, whose log this test reads).
#[test]
fn a_route_trusting_guards_warns_once_about_cookies_its_key_does_not_hold() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "child_serves_cookies_the_key_does_not_hold",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ROCKET_CLI_COLORS", "false")
        .output()
        .expect("the test binary runs");
    let logged = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && logged.contains("1 passed"),
        "{logged}"
    );
    let warnings = logged.matches("none of which its key holds").count();
    assert_eq!(warnings, usize::from(cfg!(debug_assertions)), "{logged}");
    if cfg!(debug_assertions) {
        assert!(
            logged.contains("/copied") && logged.contains("KeyedGuard"),
            "{logged}"
        );
    }
}

#[rocket::async_test]
#[ignore = "run by its parent test in a child process"]
async fn child_serves_cookies_the_key_does_not_hold() {
    let cache = Cache::new(Config::embedded()).unwrap();
    let app = rocket::build().manage(cache).mount("/", routes![copied]);
    let client = rocket::local::asynchronous::Client::untracked(app)
        .await
        .unwrap();
    for user in ["alice", "bob", "carol"] {
        let response = client
            .get("/copied")
            .cookie(rocket::http::Cookie::new("user", user))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok);
    }
}
