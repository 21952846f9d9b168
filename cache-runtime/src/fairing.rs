//! Configuration from Rocket's own configuration: a `cache` table in `Rocket.toml` (any
//! profile) or `ROCKET_CACHE`, read at ignite.

use std::time::Duration;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::serde::Deserialize;
use rocket::{Build, Orbit, Request, Response, Rocket};

use crate::cache::{adopt, Cache};
use crate::http::render::finish_catcher_page;
use crate::settings::{
    parse_servers, Config, ConfigError, SurrogateKeys, KEYS, SERVERS, SERVERS_ENV,
};

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
/// timeout_ms = 100
/// pool_idle = 64
/// breaker_failures = 3
/// breaker_cooldown_ms = 2000
/// max_item_size = 1000000
/// embedded_capacity = 67108864
/// x_cache_header = true
/// lease_ttl_ms = 5000
/// lease_wait_ms = 2000
/// coalesce = true
/// near_capacity = 16777216
/// epoch_poll_ms = 50
/// enabled = true           # false: every cached route runs its handler (X-Cache: BYPASS)
/// surrogate_keys = "Surrogate-Key"                  # or "Cache-Tag"; none by default
/// cache_status = "rocket-route-cache"            # the name in Cache-Status; false: no field
/// hit_for_pass_ms = 120000
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

/// The `cache` table, every key optional; its field names are the table names in
/// [`KEYS`](crate::settings::KEYS).
#[derive(Debug, Default, Deserialize)]
#[serde(crate = "rocket::serde", deny_unknown_fields)]
struct Table {
    servers: Option<Servers>,
    namespace: Option<String>,
    timeout_ms: Option<u64>,
    pool_idle: Option<usize>,
    breaker_failures: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
    max_item_size: Option<usize>,
    embedded_capacity: Option<u64>,
    x_cache_header: Option<bool>,
    lease_ttl_ms: Option<u64>,
    lease_wait_ms: Option<u64>,
    coalesce: Option<bool>,
    near_capacity: Option<u64>,
    epoch_poll_ms: Option<u64>,
    enabled: Option<bool>,
    surrogate_keys: Option<String>,
    cache_status: Option<CacheName>,
    hit_for_pass_ms: Option<u64>,
}

/// The cache's name in `Cache-Status`, or `false` for no such field (`true`: the default name).
#[derive(Debug, Deserialize)]
#[serde(crate = "rocket::serde", untagged)]
enum CacheName {
    Named(String),
    On(bool),
}

/// A list, or a comma-separated string as in `MEMCACHED_SERVERS`.
#[derive(Debug, Deserialize)]
#[serde(crate = "rocket::serde", untagged)]
enum Servers {
    List(Vec<String>),
    Text(String),
}

/// `MEMCACHED_SERVERS`, when set to something other than blanks.
fn servers_from_env() -> Result<Option<String>, ConfigError> {
    match std::env::var(SERVERS_ENV) {
        Ok(list) if !list.trim().is_empty() => Ok(Some(list)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::new(
            SERVERS_ENV,
            "a comma-separated list of host:port",
        )),
    }
}

impl Table {
    /// The configuration, with `environment` (`MEMCACHED_SERVERS`, when it is to override the
    /// table's `servers`) in place of the table's servers.
    fn into_config(self, environment: Option<String>) -> Result<Config, ConfigError> {
        let servers = match (environment, self.servers) {
            (Some(list), _) => parse_servers(&list).map_err(|error| error.in_key(SERVERS_ENV))?,
            (None, None) => Vec::new(),
            (None, Some(servers)) => {
                let list = match servers {
                    Servers::List(list) => list.join(","),
                    Servers::Text(text) => text,
                };
                parse_servers(&list).map_err(|error| error.in_key(SERVERS.field))?
            }
        };
        let mut config = Config {
            servers,
            ..Config::default()
        };
        let ms = Duration::from_millis;
        if let Some(v) = self.namespace {
            config.namespace = v;
        }
        if let Some(v) = self.timeout_ms {
            config.op_timeout = ms(v);
        }
        if let Some(v) = self.pool_idle {
            config.pool_idle = v;
        }
        if let Some(v) = self.breaker_failures {
            config.breaker_failures = v;
        }
        if let Some(v) = self.breaker_cooldown_ms {
            config.breaker_cooldown = ms(v);
        }
        if let Some(v) = self.max_item_size {
            config.max_item_size = v;
        }
        if let Some(v) = self.embedded_capacity {
            config.embedded_capacity = v;
        }
        if let Some(v) = self.x_cache_header {
            config.x_cache_header = v;
        }
        if let Some(v) = self.lease_ttl_ms {
            config.lease_ttl = ms(v);
        }
        if let Some(v) = self.lease_wait_ms {
            config.lease_wait = ms(v);
        }
        if let Some(v) = self.coalesce {
            config.coalesce = v;
        }
        if let Some(v) = self.near_capacity {
            config.near_capacity = v;
        }
        if let Some(v) = self.epoch_poll_ms {
            config.epoch_poll = ms(v);
        }
        if let Some(v) = self.enabled {
            config.enabled = v;
        }
        if let Some(v) = self.surrogate_keys {
            config.surrogate_keys = Some(SurrogateKeys::from_name(&v)?);
        }
        match self.cache_status {
            Some(CacheName::Named(name)) => config.cache_status = Some(name),
            Some(CacheName::On(false)) => config.cache_status = None,
            Some(CacheName::On(true)) | None => {}
        }
        if let Some(v) = self.hit_for_pass_ms {
            config.hit_for_pass = ms(v);
        }
        config.validate()?;
        Ok(config)
    }
}

/// A field name of [`Config`] as it is spelled in the `cache` table.
fn table_key(config_key: &str) -> &str {
    KEYS.iter()
        .find(|key| key.field == config_key)
        .map_or(config_key, |key| key.table)
}

/// Whether the `servers` of the `cache` table came from an environment provider (`ROCKET_CACHE`
/// in Rocket's default figment): figment names every such provider "... environment
/// variable(s)", and files or code have other names.
fn servers_in_rocket_env(rocket: &Rocket<Build>) -> bool {
    rocket
        .figment()
        .find_metadata("cache.servers")
        .is_some_and(|metadata| metadata.name.ends_with("environment variable(s)"))
}

/// Figment's errors about the `cache` table, each naming the key as written (`cache.sevrers`,
/// where figment's own message says `default.sevrers.cache`, or `SEVRERS.CACHE` for
/// `ROCKET_CACHE`) and where it came from.
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
                Kind::UnknownField(_, expected) => {
                    format!("is not a setting; the settings are {}", expected.join(", "))
                }
                other => format!("is invalid: {other}"),
            };
            let source = match &error.metadata {
                Some(metadata) if metadata.name.contains("ROCKET_") => " (ROCKET_CACHE)".to_owned(),
                Some(metadata) => match &metadata.source {
                    Some(source) => format!(" (in {source})"),
                    None => format!(" (in {})", metadata.name),
                },
                None => String::new(),
            };
            format!("`{}` {what}{source}", keys.join("."))
        })
        .collect();
    described.join("; ")
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
        let table = match rocket.figment().find_value("cache") {
            Err(_) => Table::default(),
            Ok(_) => match rocket.figment().extract_inner::<Table>("cache") {
                Ok(table) => table,
                Err(error) => {
                    log::error!("invalid cache configuration {}", figment_errors(error));
                    return Err(rocket);
                }
            },
        };
        // `MEMCACHED_SERVERS` overrides the file, not `ROCKET_CACHE`: the environment beats the
        // file, and the variable meant for this one application beats the general one.
        let environment = match servers_in_rocket_env(&rocket) {
            true => Ok(None),
            false => servers_from_env(),
        };
        let config = match environment.and_then(|environment| table.into_config(environment)) {
            Ok(config) => config,
            Err(error) if error.key() == SERVERS_ENV => {
                log::error!("invalid cache configuration: {error}");
                return Err(rocket);
            }
            Err(error) => {
                log::error!(
                    "invalid cache configuration `cache.{}`: expected {}",
                    table_key(error.key()),
                    error.expected()
                );
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
    use super::*;

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

    /// Every key of the `cache` table reaches its own field of `Config`, and only that one: a
    /// key parsed but not applied, or applied to another field, fails here. (What each field
    /// does is tested where it acts.)
    #[test]
    fn every_table_key_sets_its_own_field() {
        let changed = [
            ("servers", "\"127.0.0.1:11212\""),
            ("namespace", "\"other\""),
            ("timeout_ms", "50"),
            ("pool_idle", "2"),
            ("max_item_size", "2048"),
            ("embedded_capacity", "2048"),
            ("x_cache_header", "false"),
            ("breaker_failures", "5"),
            ("breaker_cooldown_ms", "3000"),
            ("lease_ttl_ms", "2000"),
            ("lease_wait_ms", "500"),
            ("coalesce", "false"),
            ("near_capacity", "1024"),
            ("epoch_poll_ms", "20"),
            ("enabled", "false"),
            ("surrogate_keys", "\"Cache-Tag\""),
            ("cache_status", "\"edge\""),
            ("hit_for_pass_ms", "5000"),
        ];
        assert_eq!(changed.len(), KEYS.len(), "a value for every key");
        // Servers are always given: the environment never decides here.
        let config = |json: String| {
            let table: Table = rocket::serde::json::from_str(&json).unwrap();
            table.into_config(None).unwrap()
        };
        let servers = "\"servers\": \"127.0.0.1:11211\"";
        let reference = config(format!("{{{servers}}}"));
        for (table_key, value) in changed {
            let key = KEYS.iter().find(|key| key.table == table_key).unwrap();
            let json = match table_key {
                "servers" => format!("{{\"servers\": {value}}}"),
                _ => format!("{{{servers}, \"{table_key}\": {value}}}"),
            };
            let changed = config(json);
            for other in KEYS {
                let differs = field(&changed, other.field) != field(&reference, other.field);
                assert_eq!(
                    differs,
                    other == *key,
                    "`{table_key}` and `{}`",
                    other.field
                );
            }
        }
    }

    #[test]
    fn cache_status_takes_a_name_or_false() {
        let name = |json: &str| {
            let json = format!("{{\"servers\": \"127.0.0.1:11211\", \"cache_status\": {json}}}");
            let table: Table = rocket::serde::json::from_str(&json).unwrap();
            table.into_config(None).unwrap().cache_status
        };
        assert_eq!(name("false"), None);
        assert_eq!(name("true").as_deref(), Some("rocket-route-cache"));
        assert_eq!(name("\"edge-7\"").as_deref(), Some("edge-7"));
    }

    /// `MEMCACHED_SERVERS`, when it counts, replaces the table's `servers` and nothing else;
    /// a bad value names the variable, a bad table value the table's key.
    #[test]
    fn the_environment_servers_replace_the_tables() {
        let table = || Table {
            servers: Some(Servers::Text("127.0.0.1:11211, 127.0.0.1:11212".into())),
            namespace: Some("shop".into()),
            timeout_ms: Some(50),
            ..Table::default()
        };
        let config = table().into_config(None).expect("the table decides");
        assert_eq!(config.servers, ["127.0.0.1:11211", "127.0.0.1:11212"]);
        let config = table().into_config(Some("127.0.0.1:11213".into())).unwrap();
        assert_eq!(config.servers, ["127.0.0.1:11213"]);
        assert_eq!(
            (config.namespace.as_str(), config.op_timeout),
            ("shop", Duration::from_millis(50))
        );
        let error = table().into_config(Some("not a server list".into()));
        assert_eq!(error.unwrap_err().key(), SERVERS_ENV);
        assert!(Table::default()
            .into_config(None)
            .unwrap()
            .servers
            .is_empty());
        let bad = Table {
            servers: Some(Servers::List(vec!["no-port".into()])),
            ..Table::default()
        };
        assert_eq!(
            table_key(bad.into_config(None).unwrap_err().key()),
            "servers"
        );
    }

    /// The table accepts exactly the keys listed once for `Config`, the fairing and its errors.
    #[test]
    fn the_table_holds_every_listed_key_and_no_other() {
        for key in KEYS {
            let one = format!("{{\"{}\": null}}", key.table);
            let parsed = rocket::serde::json::from_str::<Table>(&one);
            assert!(parsed.is_ok(), "{}: {parsed:?}", key.table);
        }
        let unknown = rocket::serde::json::from_str::<Table>("{\"unknown\": null}").unwrap_err();
        let mut accepted: Vec<String> = unknown
            .to_string()
            .split('`')
            .skip(3)
            .step_by(2)
            .map(str::to_owned)
            .collect();
        let mut listed: Vec<String> = KEYS.iter().map(|key| key.table.to_owned()).collect();
        accepted.sort();
        listed.sort();
        assert_eq!(accepted, listed, "{unknown}");
    }
}
