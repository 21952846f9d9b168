//! Configuration from Rocket's own configuration: a `cache` table in `Rocket.toml` (any
//! profile) or `ROCKET_CACHE`, read at ignite.

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::{Build, Orbit, Request, Response, Rocket};

use crate::cache::{adopt, Cache};
use crate::http::render::finish_catcher_page;
use crate::settings::{parse_servers, Config, ConfigError, SERVERS_ENV};

/// Reads the `cache` table of Rocket's configuration at ignite and gives the instance that
/// cache (its routes use it; the global cache is installed from it too when still unused).
/// Invalid configuration fails ignite with a message naming the key and the expected form, and
/// so does a global cache already in use with another configuration (see [`install`](crate::config::install)):
/// routes and `invalidate*` would use different stores. At liftoff, one line says which backend
/// is in use.
///
/// ```toml
/// # Rocket.toml
/// [default.cache]
/// servers = ["10.0.0.5:11211", "10.0.0.6:11211"]   # or "a:11211,b:11211"; none: embedded
/// namespace = "shop-v2"
/// op_timeout = "100ms"      # durations carry their unit: "250ms", "2s", "5m", "1h"
/// pool_idle = 64
/// breaker_failures = 3
/// breaker_cooldown = "2s"
/// max_item_size = 1000000
/// embedded_capacity = 67108864
/// x_cache_header = true
/// lease_ttl = "5s"
/// lease_wait = "2s"
/// coalesce = true
/// near_capacity = 16777216
/// epoch_poll = "50ms"
/// enabled = true           # false: every cached route runs its handler (X-Cache: BYPASS)
/// surrogate_keys = "Surrogate-Key"                  # or "Cache-Tag"; none by default
/// cache_status = "rocket-route-cache"            # the name in Cache-Status; false: no field
/// hit_for_pass = "2m"
/// ```
///
/// The environment overrides the file, as everywhere in Rocket's configuration: `ROCKET_CACHE`
/// (`ROCKET_CACHE='{servers=["10.0.0.7:11211"],enabled=false}'`) sets the keys it names over
/// the table's, and the servers are, first to last: `servers` given in `ROCKET_CACHE`, then
/// `MEMCACHED_SERVERS` when set and not empty, then `servers` in `Rocket.toml`.
///
/// ```no_run
/// # use rocket::launch;
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build().attach(rocket_route_cache::CacheFairing)
/// }
/// ```
///
/// Without a `cache` table the environment decides, as without the fairing
/// (`MEMCACHED_SERVERS`, else the embedded store).
///
/// It also completes the pages Rocket's catchers render for cached routes (a handler returning
/// `None` or `Err(Status)`, stored or not): the catcher runs after the handler returned, so only
/// a fairing can give its page the route's `Vary`, `X-Cache`, `Cache-Status` and, on a hit, `Age`. Without it,
/// such pages carry none of these.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheFairing;

/// Returns `MEMCACHED_SERVERS`, when set to something other than blanks.
fn servers_from_env() -> Result<Option<Vec<String>>, ConfigError> {
    match std::env::var(SERVERS_ENV) {
        Ok(list) if !list.trim().is_empty() => parse_servers(&list)
            .map(Some)
            .map_err(|error| error.in_key(SERVERS_ENV)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(
            SERVERS_ENV,
            "a comma-separated list of host:port",
        )),
    }
}

/// Reads the configuration from Rocket's: the `cache` table (every key optional), its servers
/// replaced by `MEMCACHED_SERVERS` when that counts; an error says what is wrong, naming the
/// key as written.
fn read_config(rocket: &Rocket<Build>) -> Result<Config, String> {
    let figment = rocket.figment();
    let mut config = match figment.find_value("cache") {
        Err(_) => Config::default(),
        Ok(_) => figment
            .extract_inner::<Config>("cache")
            .map_err(figment_errors)?,
    };
    // `MEMCACHED_SERVERS` overrides the file, not `ROCKET_CACHE`: the environment beats the
    // file, and the variable meant for this one application beats the general one.
    let described =
        |error: ConfigError| format!("`{}`: expected {}", error.key(), error.expected());
    if !servers_in_rocket_env(rocket) {
        if let Some(servers) = servers_from_env().map_err(described)? {
            config.servers = servers;
        }
    }
    let in_table = |error: ConfigError| {
        let key = format!("cache.{}", error.key());
        described(error.in_key(&key))
    };
    config.validate().map_err(in_table)?;
    Ok(config)
}

/// Returns whether the `servers` of the `cache` table came from an environment provider
/// (`ROCKET_CACHE` in Rocket's default figment): figment names every such provider "...
/// environment variable(s)", and files or code have other names.
fn servers_in_rocket_env(rocket: &Rocket<Build>) -> bool {
    rocket
        .figment()
        .find_metadata("cache.servers")
        .is_some_and(|metadata| metadata.name.ends_with("environment variable(s)"))
}

/// Returns figment's errors about the `cache` table, each naming the key as written
/// (`cache.sevrers`, where figment's own message says `default.sevrers.cache`, or `SEVRERS.CACHE`
/// for `ROCKET_CACHE`) and where it came from.
fn figment_errors(error: rocket::figment::Error) -> String {
    use rocket::figment::error::Kind;
    let described: Vec<String> = error
        .into_iter()
        .map(|error| {
            // Figment records the path innermost first.
            let mut keys: Vec<String> = error.path.iter().rev().map(|k| k.to_lowercase()).collect();
            if keys.first().map(String::as_str) != Some("cache") {
                keys.insert(0, "cache".to_owned());
            }
            let what = match &error.kind {
                Kind::UnknownField(field, expected) => match renamed(field, expected) {
                    Some(hint) => format!("is not a setting: {hint}"),
                    None => format!("is not a setting; the settings are {}", expected.join(", ")),
                },
                Kind::InvalidType(found, expected) | Kind::InvalidValue(found, expected) => {
                    format!(": expected {expected}, found {found}")
                }
                other => format!(": {other}"),
            };
            let source = match &error.metadata {
                Some(metadata) if metadata.name.contains("ROCKET_") => " (ROCKET_CACHE)".to_owned(),
                Some(metadata) => match &metadata.source {
                    Some(source) => format!(" (in {source})"),
                    None => format!(" (in {})", metadata.name),
                },
                None => String::new(),
            };
            let space = if what.starts_with(':') { "" } else { " " };
            format!("`{}`{space}{what}{source}", keys.join("."))
        })
        .collect();
    described.join("; ")
}

/// Returns what to write instead of `field`, a key an earlier release read: the durations lost
/// their `_ms` suffix and carry their unit.
fn renamed(field: &str, settings: &[&str]) -> Option<String> {
    let now = match field {
        "timeout_ms" => "op_timeout",
        other => other.strip_suffix("_ms")?,
    };
    settings.contains(&now).then(|| {
        format!("it is `{now}` now, and takes a duration with its unit (`{now} = \"100ms\"`)")
    })
}

#[rocket::async_trait]
impl Fairing for CacheFairing {
    fn info(&self) -> Info {
        Info {
            name: "cached_route",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let config = match read_config(&rocket) {
            Ok(config) => config,
            Err(error) => {
                log::error!("invalid cache configuration {error}");
                return Err(rocket);
            }
        };
        let cache = match Cache::new(config).map(adopt) {
            Ok(Ok(cache)) => cache,
            Ok(Err(conflict)) => {
                log::error!("cache: {conflict}");
                return Err(rocket);
            }
            Err(error) => {
                log::error!("invalid cache configuration: {error}");
                return Err(rocket);
            }
        };
        Ok(rocket.manage(cache))
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        finish_catcher_page(request, response);
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        // The same once-only line a cache without the fairing logs on first use.
        if let Some(cache) = rocket.state::<Cache>() {
            cache.announce();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Reads `json` as the `cache` table.
    fn table(json: &str) -> Result<Config, String> {
        rocket::serde::json::from_str::<Config>(json).map_err(|error| error.to_string())
    }

    /// `field` of `config`, as text.
    fn field(config: &Config, field: &str) -> String {
        match field {
            "servers" => format!("{:?}", config.servers),
            "namespace" => config.namespace.clone(),
            "op_timeout" => format!("{:?}", config.op_timeout),
            "pool_idle" => config.pool_idle.to_string(),
            "max_item_size" => config.max_item_size.to_string(),
            "embedded_capacity" => config.embedded_capacity.to_string(),
            "x_cache_header" => config.x_cache_header.to_string(),
            "breaker_failures" => config.breaker_failures.to_string(),
            "breaker_cooldown" => format!("{:?}", config.breaker_cooldown),
            "lease_ttl" => format!("{:?}", config.lease_ttl),
            "lease_wait" => format!("{:?}", config.lease_wait),
            "coalesce" => config.coalesce.to_string(),
            "near_capacity" => config.near_capacity.to_string(),
            "epoch_poll" => format!("{:?}", config.epoch_poll),
            "enabled" => config.enabled.to_string(),
            "surrogate_keys" => format!("{:?}", config.surrogate_keys),
            "cache_status" => format!("{:?}", config.cache_status),
            "hit_for_pass" => format!("{:?}", config.hit_for_pass),
            other => panic!("a configuration key this test does not know: {other}"),
        }
    }

    /// The keys the table accepts, as its unknown-key error lists them.
    fn accepted_keys() -> Vec<String> {
        let unknown = table("{\"unknown\": null}").unwrap_err();
        unknown
            .split('`')
            .skip(3)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    /// Every key of the `cache` table reaches its own field of `Config`, and only that one: a
    /// key parsed but not applied, or applied to another field, fails here. (What each field
    /// does is tested where it acts.)
    #[test]
    fn every_table_key_sets_its_own_field() {
        let changed = [
            ("servers", "\"127.0.0.1:11212\""),
            ("namespace", "\"other\""),
            ("op_timeout", "\"50ms\""),
            ("pool_idle", "2"),
            ("max_item_size", "2048"),
            ("embedded_capacity", "2048"),
            ("x_cache_header", "false"),
            ("breaker_failures", "5"),
            ("breaker_cooldown", "\"3s\""),
            ("lease_ttl", "\"2s\""),
            ("lease_wait", "\"500ms\""),
            ("coalesce", "false"),
            ("near_capacity", "1024"),
            ("epoch_poll", "\"20ms\""),
            ("enabled", "false"),
            ("surrogate_keys", "\"Cache-Tag\""),
            ("cache_status", "\"edge\""),
            ("hit_for_pass", "\"5s\""),
        ];
        let mut listed: Vec<&str> = changed.iter().map(|(key, _)| *key).collect();
        let mut accepted = accepted_keys();
        listed.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(accepted, listed, "a value for every key, and no other");
        let servers = "\"servers\": \"127.0.0.1:11211\"";
        let reference = table(&format!("{{{servers}}}")).unwrap();
        for (key, value) in changed {
            let json = match key {
                "servers" => format!("{{\"servers\": {value}}}"),
                _ => format!("{{{servers}, \"{key}\": {value}}}"),
            };
            let changed = table(&json).unwrap();
            changed.validate().unwrap();
            for other in &listed {
                let differs = field(&changed, other) != field(&reference, other);
                assert_eq!(differs, other == &key, "`{key}` and `{other}`");
            }
        }
    }

    #[test]
    fn durations_are_written_with_their_unit() {
        let op_timeout = |value: &str| {
            table(&format!("{{\"op_timeout\": {value}}}")).map(|config| config.op_timeout)
        };
        assert_eq!(op_timeout("\"250ms\""), Ok(Duration::from_millis(250)));
        assert_eq!(op_timeout("\" 2 s \""), Ok(Duration::from_secs(2)));
        assert_eq!(op_timeout("\"5m\""), Ok(Duration::from_secs(300)));
        assert_eq!(op_timeout("\"1h\""), Ok(Duration::from_secs(3600)));
        assert_eq!(op_timeout("0"), Ok(Duration::ZERO));
        // A bare number would be read in some unit or other: refused, with the expected form.
        for bad in [
            "100",
            "\"100\"",
            "\"1.5s\"",
            "\"2 days\"",
            "\"-1s\"",
            "true",
        ] {
            let error = op_timeout(bad).unwrap_err();
            assert!(
                error.contains("a duration with its unit, such as \"100ms\""),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn cache_status_takes_a_name_or_false() {
        let name = |json: &str| {
            let json = format!("{{\"cache_status\": {json}}}");
            table(&json).unwrap().cache_status
        };
        assert_eq!(name("false"), None);
        assert_eq!(name("true").as_deref(), Some("rocket-route-cache"));
        assert_eq!(name("\"edge-7\"").as_deref(), Some("edge-7"));
    }

    /// Servers come as a list or as one comma-separated string; a bad one is named by
    /// `validate` (as the fairing reports it).
    #[test]
    fn servers_are_a_list_or_a_comma_separated_string() {
        let servers = |json: &str| table(&format!("{{\"servers\": {json}}}")).unwrap();
        let text = servers("\"127.0.0.1:11211, 127.0.0.1:11212,\"");
        let list = servers("[\"127.0.0.1:11211\", \" 127.0.0.1:11212\"]");
        assert_eq!(text.servers, ["127.0.0.1:11211", "127.0.0.1:11212"]);
        assert_eq!(list.servers, text.servers);
        assert!(servers("[]").servers.is_empty());
        let bad = servers("[\"no-port\"]").validate().unwrap_err();
        assert_eq!(bad.key(), "servers");
    }

    #[test]
    fn surrogate_keys_names_a_header_in_any_case() {
        let keys = |json: &str| table(&format!("{{\"surrogate_keys\": {json}}}"));
        let cache_tag = Some(crate::config::SurrogateKeys::CacheTag);
        assert_eq!(keys("\"cache-tag\"").unwrap().surrogate_keys, cache_tag);
        let error = keys("\"X-Tags\"").unwrap_err();
        assert!(
            error.contains("\"Surrogate-Key\" or \"Cache-Tag\""),
            "{error}"
        );
    }
}
