//! What the cache is told: servers, namespace, deadlines, limits. Every knob has a safe default.

use std::fmt;
use std::time::Duration;

use rocket::serde::Deserialize;

/// The environment variable read when no configuration was installed: a comma-separated list of
/// `host:port` Memcached servers. Unset or empty selects the embedded store.
pub const SERVERS_ENV: &str = "MEMCACHED_SERVERS";

/// The name [`Config::cache_status`] gives the cache unless told otherwise.
pub const DEFAULT_CACHE_NAME: &str = "rocket-route-cache";

/// Memcached's default largest item (`-I 1m`).
const MEMCACHED_ITEM_LIMIT: usize = 1024 * 1024;

/// Configuration of a [`Cache`](crate::Cache), and the schema of the `cache` table of Rocket's
/// configuration, which [`CacheFairing`](crate::CacheFairing) reads: each field is a key of the
/// table, spelled as here. Durations are written with their unit (`"100ms"`, `"2s"`, `"1m"`),
/// `servers` as a list or a comma-separated string, `cache_status` as a name or `false`.
///
/// In code, start from [`Config::default()`] (embedded store) or [`Config::memcached`] and
/// adjust fields:
///
/// ```
/// use std::time::Duration;
/// use rocket_route_cache::Config;
///
/// let mut config = Config::memcached(["127.0.0.1:11211"]);
/// config.namespace = "shop-v2".into();
/// config.op_timeout = Duration::from_millis(50);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(crate = "rocket::serde", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Memcached servers as `host:port`. Empty selects the embedded in-process store.
    #[serde(deserialize_with = "schema::servers")]
    pub servers: Vec<String>,
    /// Prefix of every key, so that several applications can share one fleet. ASCII letters,
    /// digits, `-`, `_` and `.`, at most 64 bytes. Default `rc`.
    pub namespace: String,
    /// The most any one cache operation may take, dialing included. On expiry the operation
    /// counts as a miss and the handler runs. Default 100 ms.
    #[serde(deserialize_with = "schema::duration")]
    pub op_timeout: Duration,
    /// Idle connections kept per Memcached server. Default 64, so that 64 concurrent requests
    /// reuse connections instead of dialing new ones.
    pub pool_idle: usize,
    /// Largest stored entry (status, headers and body, encoded), in bytes. Default 1,000,000:
    /// just under Memcached's 1 MiB item limit once the key and item header are added.
    pub max_item_size: usize,
    /// Memory bound of the embedded store, in bytes of stored entries. Default 64 MiB.
    pub embedded_capacity: u64,
    /// Whether responses carry `X-Cache: HIT | MISS | STALE | BYPASS`. Default on. `Age` is always sent
    /// on hits.
    pub x_cache_header: bool,
    /// Failures in a row (timeouts, refused or broken connections) after which a Memcached
    /// server is skipped: its keys are misses at no cost. Default 3.
    pub breaker_failures: u32,
    /// How long a failing server is skipped before one request probes it. Default 2 s.
    #[serde(deserialize_with = "schema::duration")]
    pub breaker_cooldown: Duration,
    /// How long the request that recomputes a missing entry holds its lease, so that other
    /// instances wait for it instead of running the handler too. Default 5 s.
    #[serde(deserialize_with = "schema::duration")]
    pub lease_ttl: Duration,
    /// The most a request waits for another's recomputation (in this process or another)
    /// before running the handler itself. Default 2 s.
    #[serde(deserialize_with = "schema::duration")]
    pub lease_wait: Duration,
    /// Whether concurrent misses for one key wait for a single handler run (in this process,
    /// and across instances through leases). Default on; off only to measure what it saves.
    pub coalesce: bool,
    /// With Memcached: the memory bound of the near tier, an in-process copy of recent hits
    /// served without any network I/O, in bytes of stored entries. Default 16 MiB; `0` turns it
    /// off. Near hits keep the invalidation promise through the epoch polls (`epoch_poll`).
    pub near_capacity: u64,
    /// With Memcached: how often each server's invalidation epoch is read in the background.
    /// While a poll is recent, a hit is one Memcached operation (or none, from the near tier)
    /// instead of two; in exchange `invalidate*` returns only after `epoch_poll` plus the
    /// poll's deadline (the shorter of `epoch_poll` and `op_timeout`). Default 50 ms, from
    /// 10 ms to 1 s; zero turns polling (and so the near tier) off.
    #[serde(deserialize_with = "schema::duration")]
    pub epoch_poll: Duration,
    /// The cache's name in the `Cache-Status` field (RFC 9211) every response of a cached
    /// route carries, for example `rocket-route-cache; hit; ttl=42`; `None` sends no such
    /// field. 1 to 128 printable ASCII characters, sent as a token when it is one, else
    /// quoted. Default [`DEFAULT_CACHE_NAME`] (`rocket-route-cache`).
    #[serde(deserialize_with = "schema::cache_status")]
    pub cache_status: Option<String>,
    /// How long a key whose response was not storable (it set a cookie, was `private`, too
    /// large...) is remembered as such ("hit-for-pass"): meanwhile its requests run the handler
    /// at once instead of waiting for another request's, which would store nothing either.
    /// Capped by the route's `ttl`; a storable response ends it sooner. Default 120 s (as
    /// Varnish's hit-for-miss), at most 1 hour; zero turns it off.
    #[serde(deserialize_with = "schema::duration")]
    pub hit_for_pass: Duration,
    /// Whether cached routes use the cache at all. Off, every cached route runs its handler
    /// for every request, reads and stores nothing, and answers `X-Cache: BYPASS` (so that the
    /// switch can be checked on the wire). Default on.
    pub enabled: bool,
    /// The response header that carries each route's `tags`, so that a CDN in front can purge
    /// by the same tags: `Surrogate-Key` (Fastly; space-separated) or `Cache-Tag` (Cloudflare;
    /// comma-separated), each tag spelled by [`surrogate_key`](crate::invalidation::surrogate_key). In the
    /// `cache` table, `surrogate_keys = "Surrogate-Key"` or `"Cache-Tag"`. Default none.
    #[serde(deserialize_with = "schema::surrogate_keys")]
    pub surrogate_keys: Option<SurrogateKeys>,
}

/// The response header a route's tags are sent in (see [`Config::surrogate_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SurrogateKeys {
    /// `Surrogate-Key: a b` (Fastly, Varnish with xkey).
    SurrogateKey,
    /// `Cache-Tag: a,b` (Cloudflare).
    CacheTag,
}

impl SurrogateKeys {
    /// Returns the header's name.
    pub fn header(self) -> &'static str {
        match self {
            SurrogateKeys::SurrogateKey => "Surrogate-Key",
            SurrogateKeys::CacheTag => "Cache-Tag",
        }
    }

    /// Returns what separates two tags in the header's value.
    pub(crate) fn separator(self) -> char {
        match self {
            SurrogateKeys::SurrogateKey => ' ',
            SurrogateKeys::CacheTag => ',',
        }
    }

    /// Returns the header named `name`, in any case.
    fn from_name(name: &str) -> Option<SurrogateKeys> {
        [SurrogateKeys::SurrogateKey, SurrogateKeys::CacheTag]
            .into_iter()
            .find(|keys| keys.header().eq_ignore_ascii_case(name))
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            servers: Vec::new(),
            namespace: "rc".into(),
            op_timeout: Duration::from_millis(100),
            pool_idle: 64,
            max_item_size: 1_000_000,
            embedded_capacity: 64 * 1024 * 1024,
            x_cache_header: true,
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(2),
            lease_ttl: Duration::from_secs(5),
            lease_wait: Duration::from_secs(2),
            coalesce: true,
            near_capacity: 16 * 1024 * 1024,
            epoch_poll: Duration::from_millis(50),
            enabled: true,
            surrogate_keys: None,
            cache_status: Some(DEFAULT_CACHE_NAME.to_owned()),
            hit_for_pass: Duration::from_secs(120),
        }
    }
}

impl Config {
    /// Returns a configuration of the embedded store, with defaults.
    pub fn embedded() -> Config {
        Config::default()
    }

    /// Returns a configuration of Memcached at these `host:port` addresses, with defaults.
    pub fn memcached<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> Config {
        Config {
            servers: servers.into_iter().map(Into::into).collect(),
            ..Config::default()
        }
    }

    /// Reads the configuration from the environment: [`SERVERS_ENV`] (`MEMCACHED_SERVERS`), else
    /// the embedded store.
    pub fn from_env() -> Result<Config, ConfigError> {
        let servers = match std::env::var(SERVERS_ENV) {
            Ok(list) => parse_servers(&list).map_err(|error| error.in_key(SERVERS_ENV))?,
            Err(std::env::VarError::NotPresent) => Vec::new(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(ConfigError::new(
                    SERVERS_ENV,
                    "a comma-separated list of host:port",
                ))
            }
        };
        Ok(Config {
            servers,
            ..Config::default()
        })
    }

    /// Checks every field; the error names the field and the expected form.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for server in &self.servers {
            check_server(server).map_err(|error| error.in_key("servers"))?;
        }
        let namespace_ok = !self.namespace.is_empty()
            && self.namespace.len() <= 64
            && self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !namespace_ok {
            return Err(ConfigError::new(
                "namespace",
                "1 to 64 ASCII letters, digits, '-', '_' or '.'",
            ));
        }
        if self.op_timeout.is_zero() || self.op_timeout > Duration::from_secs(10) {
            return Err(ConfigError::new(
                "op_timeout",
                "a duration above 0 and at most 10 s",
            ));
        }
        if self.pool_idle == 0 {
            return Err(ConfigError::new("pool_idle", "at least 1"));
        }
        if self.max_item_size < 1024 || self.max_item_size > MEMCACHED_ITEM_LIMIT * 128 {
            return Err(ConfigError::new(
                "max_item_size",
                "between 1024 and 134217728 bytes",
            ));
        }
        if self.breaker_failures == 0 {
            return Err(ConfigError::new("breaker_failures", "at least 1"));
        }
        if self.breaker_cooldown < Duration::from_millis(100)
            || self.breaker_cooldown > Duration::from_secs(600)
        {
            return Err(ConfigError::new(
                "breaker_cooldown",
                "a duration from 100 ms to 10 minutes",
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) || self.lease_ttl > Duration::from_secs(600) {
            return Err(ConfigError::new(
                "lease_ttl",
                "a duration from 1 s to 10 minutes",
            ));
        }
        if self.lease_wait > Duration::from_secs(60) {
            return Err(ConfigError::new("lease_wait", "a duration up to 60 s"));
        }
        let poll = self.epoch_poll;
        if !poll.is_zero() && (poll < Duration::from_millis(10) || poll > Duration::from_secs(1)) {
            return Err(ConfigError::new(
                "epoch_poll",
                "zero (off), or a duration from 10 ms to 1 s",
            ));
        }
        self.validate_request_path()?;
        if self.embedded_capacity < 1024 {
            return Err(ConfigError::new("embedded_capacity", "at least 1024 bytes"));
        }
        Ok(())
    }
}

impl Config {
    /// Checks the keys the request path reads on its own: the `Cache-Status` name and
    /// hit-for-pass.
    fn validate_request_path(&self) -> Result<(), ConfigError> {
        if self
            .cache_status
            .as_deref()
            .is_some_and(|name| !valid_cache_name(name))
        {
            return Err(ConfigError::new(
                "cache_status",
                "1 to 128 printable ASCII characters, or none",
            ));
        }
        if self.hit_for_pass > Duration::from_secs(3600) {
            return Err(ConfigError::new("hit_for_pass", "a duration up to 1 hour"));
        }
        Ok(())
    }
}

/// Returns whether `name` can name the cache in `Cache-Status`: 1 to 128 printable ASCII
/// characters (what a Structured Fields string holds).
fn valid_cache_name(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Parses `host:port[,host:port...]`; blanks around entries and empty entries are ignored.
pub(crate) fn parse_servers(list: &str) -> Result<Vec<String>, ConfigError> {
    let servers = schema::split_servers(list);
    servers.iter().try_for_each(|server| check_server(server))?;
    Ok(servers)
}

fn check_server(server: &str) -> Result<(), ConfigError> {
    let expected = "host:port, for example 127.0.0.1:11211 or [::1]:11211";
    let (host, port) = server
        .rsplit_once(':')
        .ok_or_else(|| ConfigError::new("servers", expected))?;
    let host_ok = !host.is_empty()
        && !host.contains(char::is_whitespace)
        && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')));
    if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(ConfigError::new("servers", expected));
    }
    Ok(())
}

/// How the `cache` table spells the values whose Rust types say too little: durations with
/// their unit, server lists, the `Cache-Status` name, the surrogate-key header.
mod schema {
    use std::fmt;
    use std::time::Duration;

    use rocket::serde::de::{self, Deserializer, Visitor};
    use rocket::serde::Deserialize;

    use super::{SurrogateKeys, DEFAULT_CACHE_NAME};

    /// Reads a duration written with its unit: `"250ms"`, `"2s"`, `"5m"`, `"1h"` (or `"0"`).
    pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct WithUnit;
        impl Visitor<'_> for WithUnit {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration with its unit, such as \"100ms\", \"2s\" or \"5m\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                parse_duration(text)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
                match n {
                    0 => Ok(Duration::ZERO),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(n), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
                match n {
                    0 => Ok(Duration::ZERO),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(n), &self)),
                }
            }
        }
        d.deserialize_any(WithUnit)
    }

    /// Parses a whole number followed by `ms`, `s`, `m` or `h` (blanks allowed around it).
    pub(super) fn parse_duration(text: &str) -> Option<Duration> {
        let text = text.trim();
        let digits = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let millis = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" if number == 0 => 0,
            _ => return None,
        };
        number.checked_mul(millis).map(Duration::from_millis)
    }

    /// Reads servers as a list or as one comma-separated string (as in `MEMCACHED_SERVERS`);
    /// blanks and empty entries are dropped. Each is checked by `Config::validate`.
    pub(super) fn servers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(crate = "rocket::serde", untagged)]
        enum Servers {
            List(Vec<String>),
            Text(String),
        }
        let joined = match Servers::deserialize(d)? {
            Servers::List(list) => list.join(","),
            Servers::Text(text) => text,
        };
        Ok(split_servers(&joined))
    }

    /// Splits a comma-separated server list, dropping blanks and empty entries.
    pub(super) fn split_servers(list: &str) -> Vec<String> {
        let entries = list.split(',').map(str::trim).filter(|e| !e.is_empty());
        entries.map(str::to_owned).collect()
    }

    /// Reads the cache's name in `Cache-Status`: a name, `false` for no field, `true` for the
    /// default name.
    pub(super) fn cache_status<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        #[derive(Deserialize)]
        #[serde(crate = "rocket::serde", untagged)]
        enum Name {
            Named(String),
            On(bool),
        }
        Ok(match Name::deserialize(d)? {
            Name::Named(name) => Some(name),
            Name::On(true) => Some(DEFAULT_CACHE_NAME.to_owned()),
            Name::On(false) => None,
        })
    }

    /// Reads the surrogate-key header's name, in any case.
    pub(super) fn surrogate_keys<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SurrogateKeys>, D::Error> {
        let name = String::deserialize(d)?;
        match SurrogateKeys::from_name(&name) {
            Some(keys) => Ok(Some(keys)),
            None => Err(de::Error::invalid_value(
                de::Unexpected::Str(&name),
                &"\"Surrogate-Key\" or \"Cache-Tag\"",
            )),
        }
    }
}

/// A configuration value that cannot be used: which key, and what form it must take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    expected: &'static str,
}

impl ConfigError {
    pub(crate) fn new(key: &str, expected: &'static str) -> ConfigError {
        ConfigError {
            key: key.to_owned(),
            expected,
        }
    }

    pub(crate) fn in_key(mut self, key: &str) -> ConfigError {
        self.key = key.to_owned();
        self
    }

    /// Returns the offending key (`servers`, `namespace`, ... or `MEMCACHED_SERVERS`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Returns the form the value must take.
    pub fn expected(&self) -> &str {
        self.expected
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid cache configuration `{}`: expected {}",
            self.key, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_parse_and_reject_garbage() {
        assert_eq!(
            parse_servers(" 127.0.0.1:11211, cache-b:11212 ,,").unwrap(),
            vec!["127.0.0.1:11211", "cache-b:11212"]
        );
        assert_eq!(parse_servers("[::1]:11211").unwrap(), vec!["[::1]:11211"]);
        assert!(parse_servers("").unwrap().is_empty());
        for bad in [
            "localhost",
            "host:0",
            "host:99999",
            ":11211",
            "::1:11211",
            "a b:1",
        ] {
            assert!(parse_servers(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn defaults_are_safe() {
        let config = Config::default();
        assert!(config.servers.is_empty(), "no servers: the embedded store");
        assert!(config.op_timeout <= Duration::from_millis(100));
        assert!(
            config.pool_idle >= 64,
            "64 concurrent clients reuse connections"
        );
        assert!(config.max_item_size < MEMCACHED_ITEM_LIMIT - 250 - 64);
        assert!(config.x_cache_header);
    }

    #[test]
    fn validate_names_the_offending_key() {
        let mut config = Config::default();
        assert!(config.validate().is_ok());
        config.namespace = "has space".into();
        let error = config.validate().unwrap_err();
        assert_eq!(error.key(), "namespace");
        assert!(error.to_string().contains("ASCII letters"));
        let mut config = Config::memcached(["nope"]);
        assert_eq!(config.validate().unwrap_err().key(), "servers");
        config.servers.clear();
        config.op_timeout = Duration::ZERO;
        assert_eq!(config.validate().unwrap_err().key(), "op_timeout");
    }

    #[test]
    fn a_cache_name_is_printable_ascii() {
        let named = |name: &str| Config {
            cache_status: Some(name.to_owned()),
            ..Config::default()
        };
        for good in ["rocket-route-cache", "edge 1", "\"quoted\""] {
            assert!(named(good).validate().is_ok(), "{good:?}");
        }
        let long = "x".repeat(129);
        for bad in ["", "caf\u{e9}", "a\tb", "a\r\nb", long.as_str()] {
            assert_eq!(named(bad).validate().unwrap_err().key(), "cache_status");
        }
        let config = Config {
            hit_for_pass: Duration::from_secs(3601),
            ..Config::default()
        };
        assert_eq!(config.validate().unwrap_err().key(), "hit_for_pass");
    }
}
