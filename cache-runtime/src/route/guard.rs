//! The request guard `#[cached_route]` adds to a handler: it hands the request to the runtime.

use rocket::request::{FromRequest, Outcome};
use rocket::Request;

/// Gives the generated handler access to the request it serves. Never fails or forwards.
#[derive(Debug, Clone, Copy)]
pub struct CacheRequest<'r> {
    pub(crate) request: &'r Request<'r>,
}

impl<'r> CacheRequest<'r> {
    /// Returns the request, for the generated code.
    #[doc(hidden)]
    pub fn request(&self) -> &'r Request<'r> {
        self.request
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CacheRequest<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(CacheRequest { request })
    }
}
