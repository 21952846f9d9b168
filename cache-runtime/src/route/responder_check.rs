//! Which responders a cached handler may return, decided on the resolved return type.
//!
//! A responder's `respond_to` sees the request. One that reads a header (`Accept-Language`,
//! `X-Forwarded-Host`) or a cookie would make the first client's page everyone's, and a
//! header an attacker controls would be stored for every visitor. So `#[cached_route]` asserts
//! [`SharedResponder`] on the handler's return type: Rocket's own responders and the common
//! contrib ones, their wrappers, and the application's own responders that implement it.

use std::borrow::Cow;
use std::sync::Arc;

use rocket::http::{ContentType, Status};
use rocket::response::{content, status, stream, Flash, Redirect};

use crate::route::guard_check::Builtin;

/// A responder whose output depends on nothing of the request but what the cache key holds:
/// a cached handler may return it.
///
/// Implemented for Rocket's responders (`String`, `&str`, `Vec<u8>`, `()`, `Status`,
/// `Redirect`, `NamedFile`, `File`, the `content::Raw*` and `status::*` types, streams, which
/// are served and never stored), `Json<T>`, `Template` (with this crate's `templates` feature)
/// and `MsgPack<T>` (`msgpack`), and for `Option`, `Result`, `Either`, `Flash` and the
/// `(Status, R)` / `(ContentType, R)` tuples of such responders. A responder of your own
/// (`#[derive(Responder)]` included) needs one line, once you have checked that its
/// `respond_to` reads nothing of the request:
///
/// ```
/// #[derive(rocket::Responder)]
/// #[response(content_type = "html")]
/// struct Page(String);
///
/// impl rocket_route_cache::SharedResponder for Page {}
/// ```
///
/// For a responder defined in another crate, name one of your own types as `Via`, as for
/// [`SharedGuard`](crate::SharedGuard).
#[diagnostic::on_unimplemented(
    message = "#[cached_route] cannot tell whether the responder `{Self}` reads the request",
    label = "a return type the cache cannot vouch for",
    note = "a responder's `respond_to` sees the request; one reading a header (`Accept-Language`, \
            `X-Forwarded-Host`) or a cookie would store one client's page for every client",
    note = "if its output depends only on its own value, say so once, next to the type \
            (`#[derive(Responder)]` types too): `impl rocket_route_cache::SharedResponder for \
            {Self} {{}}`",
    note = "an `impl Responder` return type hides the responder: return the type itself",
    note = "for `Template` or `MsgPack`, enable rocket-route-cache's `templates` or `msgpack` feature"
)]
pub trait SharedResponder<Via = Builtin> {}

/// Keeps the impls for wrappers apart from the others.
#[derive(Debug)]
pub enum ViaWrapper {}

macro_rules! shared {
    ($($ty:ty),* $(,)?) => { $(impl SharedResponder for $ty {})* };
}

shared!(
    String,
    &str,
    Cow<'_, str>,
    Box<str>,
    Arc<str>,
    Vec<u8>,
    &[u8],
    Cow<'_, [u8]>,
    Box<[u8]>,
    Arc<[u8]>,
    (),
    Status,
    Redirect,
    status::NoContent,
    rocket::fs::NamedFile,
    rocket::tokio::fs::File,
    std::fs::File,
    rocket::response::Response<'_>,
    std::io::Error,
);

/// Wrappers whose output is the wrapped responder's plus fixed headers.
macro_rules! shared_wrapper {
    ($($ty:ident)::+) => {
        impl<V, R: SharedResponder<V>> SharedResponder<(ViaWrapper, V)> for $($ty)::+<R> {}
    };
}

shared_wrapper!(Option);
shared_wrapper!(Flash);
shared_wrapper!(Box);
shared_wrapper!(rocket::data::Capped);
shared_wrapper!(content::RawHtml);
shared_wrapper!(content::RawJson);
shared_wrapper!(content::RawText);
shared_wrapper!(content::RawCss);
shared_wrapper!(content::RawJavaScript);
shared_wrapper!(content::RawXml);
shared_wrapper!(content::RawMsgPack);
shared_wrapper!(status::Accepted);
shared_wrapper!(status::BadRequest);
shared_wrapper!(status::Unauthorized);
shared_wrapper!(status::Forbidden);
shared_wrapper!(status::NotFound);
shared_wrapper!(status::Conflict);
shared_wrapper!(status::Custom);

impl<V, R: SharedResponder<V>> SharedResponder<(ViaWrapper, V)> for status::Created<R> {}
impl<V, R: SharedResponder<V>> SharedResponder<(ViaWrapper, V)> for (Status, R) {}
impl<V, R: SharedResponder<V>> SharedResponder<(ViaWrapper, V)> for (ContentType, R) {}

impl<V, W, R: SharedResponder<V>, E: SharedResponder<W>> SharedResponder<(ViaWrapper, V, W)>
    for Result<R, E>
{
}

impl<V, W, L: SharedResponder<V>, R: SharedResponder<W>> SharedResponder<(ViaWrapper, V, W)>
    for rocket::Either<L, R>
{
}

/// `Debug<E>` answers 500 and logs the error: nothing of the request.
impl<E> SharedResponder for rocket::response::Debug<E> {}

/// Streams are served as they come and never stored.
impl<S> SharedResponder for stream::TextStream<S> {}
impl<S> SharedResponder for stream::ByteStream<S> {}
impl<S: rocket::futures::Stream> SharedResponder for stream::ReaderStream<S> {}
impl<S> SharedResponder for stream::EventStream<S> {}

#[cfg(feature = "json")]
impl<T> SharedResponder for rocket::serde::json::Json<T> {}
#[cfg(feature = "json")]
impl SharedResponder for rocket::serde::json::Value {}
#[cfg(feature = "msgpack")]
impl<T> SharedResponder for rocket::serde::msgpack::MsgPack<T> {}
#[cfg(feature = "templates")]
impl SharedResponder for rocket_dyn_templates::Template {}

/// Asserts at compile time that the handler's future returns a responder the cache can vouch
/// for; does nothing at run time.
#[inline(always)]
pub fn check_responder<V, F>(_handler: &F)
where
    F: std::future::Future,
    F::Output: SharedResponder<V>,
{
}
