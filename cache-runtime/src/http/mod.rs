//! HTTP semantics, without I/O: what may be stored and served ([`policy`]), how long it stays
//! fresh ([`freshness`]), and the responses built from stored entries ([`render`]).

pub(crate) mod freshness;
pub(crate) mod policy;
pub(crate) mod render;
pub(crate) mod targeted;
