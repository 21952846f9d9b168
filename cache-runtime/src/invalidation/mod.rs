//! What an invalidation names, and the shared counters and stamps that make it reach: URIs
//! (each spelling of a path), tags, a handler's entries; the counters each names
//! (`generation`), and the stamp an entry carries.
//!
//! Invalidations are run through [`Cache`](crate::Cache) or the free functions
//! ([`invalidate`](crate::invalidate) and the rest) and batched with
//! [`Invalidation`](crate::Invalidation).

pub(crate) mod generation;
mod spelling;
mod surrogate;
pub(crate) mod targets;

pub use self::surrogate::surrogate_key;
pub use self::targets::{InvalidationError, InvalidationUri, RouteEntries};
