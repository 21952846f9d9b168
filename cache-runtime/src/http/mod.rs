//! HTTP semantics, without I/O: what may be stored and served ([`policy`]), how long it stays
//! fresh ([`freshness`]), the responses built from stored entries ([`render`]) and what
//! `Cache-Status` says of them ([`status`]).

pub(crate) mod freshness;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod status;
