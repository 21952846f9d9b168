//! What the code `#[cached_route]` generates uses: the route's options, the guard that hands
//! the request over, the checks on guards, parameters and the responder (by resolved type),
//! and what keyed guards add to the key.

pub(crate) mod guard;
pub(crate) mod guard_check;
pub(crate) mod guard_key;
pub(crate) mod options;
pub(crate) mod param_check;
pub(crate) mod responder_check;
pub(crate) mod validators;
