//! HTTP semantics, without I/O: what may be stored and served ([`policy`]), and the responses
//! built from stored entries ([`render`]).

pub(crate) mod policy;
pub(crate) mod render;
