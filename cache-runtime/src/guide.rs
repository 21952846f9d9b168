//! The guide: everything the README leaves out, one chapter per module. The same chapters are
//! the Markdown files in the repository's `cache-runtime/guide/` folder; their Rust examples are
//! compiled (and most of them run) as this crate's doc tests.
//!
//! - [`attribute`]: every option of `#[cached_route]`, the compile errors, handlers and request
//!   guards.
//! - [`caching`]: what is cached and what never is, rule by rule (RFC 9110, 9111, 9211, 9213),
//!   with the test that covers each.
//! - [`configuration`]: the fairing, `Rocket.toml`, the environment, [`Config`](crate::Config).
//! - [`stampedes`]: coalescing, leases, stale entries.
//! - [`invalidation`]: by handler, URI, tag or everything; what it costs; what it promises.
//! - [`fleet`]: several Memcached servers, and what happens when one fails.
//! - [`observability`]: counters, Prometheus, logs.
//! - [`performance`]: the benchmark, its targets, and where the time goes.
//! - [`internals`]: limits, and the layout of the code.

#[doc = include_str!("../guide/attribute.md")]
pub mod attribute {}
#[doc = include_str!("../guide/caching.md")]
pub mod caching {}
#[doc = include_str!("../guide/configuration.md")]
pub mod configuration {}
#[doc = include_str!("../guide/stampedes.md")]
pub mod stampedes {}
#[doc = include_str!("../guide/invalidation.md")]
pub mod invalidation {}
#[doc = include_str!("../guide/fleet.md")]
pub mod fleet {}
#[doc = include_str!("../guide/observability.md")]
pub mod observability {}
#[doc = include_str!("../guide/performance.md")]
pub mod performance {}
#[doc = include_str!("../guide/internals.md")]
pub mod internals {}
