//! What a cached handler returns to Rocket, and the call that turns the handler's own responder
//! into a response.

use std::marker::PhantomData;

use rocket::http::Status;
use rocket::response::{self, Responder};
use rocket::{Request, Response};

/// What a cached handler returns: a finished response (hit or fresh) or an error status for
/// Rocket's catchers. `P` is the handler's own return type, kept so that Rocket still finds
/// its sentinels; `'o` is how long the response may borrow (a streamed body may borrow the
/// request).
pub struct Cached<'o, P> {
    outcome: Result<Response<'o>, Status>,
    _handler_returns: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for Cached<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Ok(response) => f.debug_tuple("Cached").field(&response.status()).finish(),
            Err(status) => f
                .debug_tuple("Cached")
                .field(&Err::<(), _>(status))
                .finish(),
        }
    }
}

impl<'o, P> Cached<'o, P> {
    pub(super) fn new(outcome: Result<Response<'o>, Status>) -> Cached<'o, P> {
        Cached {
            outcome,
            _handler_returns: PhantomData,
        }
    }
}

impl<'r, 'o: 'r, P> Responder<'r, 'o> for Cached<'o, P> {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'o> {
        self.outcome
    }
}

/// Stands in for a handler's `impl Responder` return type, which cannot be named.
#[derive(Debug)]
pub enum Opaque {}

/// Turns the handler's responder into a response. Generated code passes it to
/// [`serve`](super::serve) at the span of the handler's return type, so that a type that is not
/// a `Responder` is reported there, once.
pub fn respond<'r, 'o: 'r, R: Responder<'r, 'o>>(
    responder: R,
    request: &'r Request<'_>,
) -> response::Result<'o> {
    responder.respond_to(request)
}
