//! HTTP semantics, without I/O: what may be stored and served ([`policy`]), how long it stays
//! fresh ([`freshness`]), the responses built from stored entries ([`render`]), and the route's
//! tags for a CDN in front ([`surrogate`]).

pub(crate) mod freshness;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod targeted;
pub(crate) mod surrogate;
