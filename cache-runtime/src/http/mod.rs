//! HTTP semantics, without I/O: what may be stored and served ([`policy`]), how long it stays
//! fresh ([`freshness`]), the responses built from stored entries ([`render`]), what
//! `Cache-Status` says of them ([`status`]), and the route's tags for a CDN in front
//! ([`surrogate`]).

pub(crate) mod freshness;
pub(crate) mod policy;
pub(crate) mod range;
pub(crate) mod render;
pub(crate) mod status;
pub(crate) mod surrogate;
pub(crate) mod targeted;
