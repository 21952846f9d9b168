//! `rocket_route_cache::config::install`: the global cache configured in code before launch, used by routes
//! of an app that manages no cache of its own. One test: the global can be installed once.

use cached_route_suite::MemcachedServer;
use rocket::local::asynchronous::Client;
use rocket::{get, routes};
use rocket_route_cache::{cached_route, config::InstallError, Config};

#[cached_route(ttl = 60)]
#[get("/")]
fn index() -> &'static str {
    "index"
}

#[rocket::async_test]
async fn an_installed_configuration_is_used_and_installed_once() {
    let server = MemcachedServer::start();

    let mut invalid = Config::memcached([server.address()]);
    invalid.namespace = "two words".into();
    assert!(
        matches!(rocket_route_cache::config::install(invalid), Err(InstallError::Invalid(e)) if e.key() == "namespace")
    );

    let mut config = Config::memcached([server.address()]);
    config.namespace = "installed".into();
    rocket_route_cache::config::install(config).expect("first install");
    assert_eq!(
        rocket_route_cache::config::install(Config::embedded()),
        Err(InstallError::AlreadyInitialized)
    );
    assert!(rocket_route_cache::config::global().is_shared());

    let client = Client::untracked(rocket::build().mount("/", routes![index]))
        .await
        .unwrap();
    let first = client.get("/").dispatch().await;
    assert_eq!(first.headers().get_one("X-Cache"), Some("MISS"));
    let second = client.get("/").dispatch().await;
    assert_eq!(second.headers().get_one("X-Cache"), Some("HIT"));
    let keys = server.entry_keys();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("installed:"), "{keys:?}");
}
