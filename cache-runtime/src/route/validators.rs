//! What a handler learns of the entry it revalidates: [`Validators`], and how the generated code
//! hands it over once the cache has decided ([`Rebind`]).

use std::cell::Cell;

use rocket::request::{FromRequest, Outcome};
use rocket::Request;

/// The validators of the stored entry a cached handler's run revalidates: take it as
/// `Option<Validators<'_>>`, `Some` only when the run revalidates a stored page. Answer
/// `Err(Status::NotModified)` (from a `Result<_, Status>`), or any response with status 304, when
/// the page has not changed: the stored entry is refreshed and served, its body never rendered
/// again. Any other response replaces the entry, as a miss does.
///
/// ```
/// use rocket::get;
/// use rocket::http::Status;
/// use rocket_route_cache::{cached_route, Validators};
///
/// # fn version_of(_: u32) -> &'static str { "\"v7\"" }
/// # fn render(_: u32) -> String { String::new() }
/// #[cached_route(ttl = 60, stale_if_error = 3600)]
/// #[get("/article/<id>")]
/// fn article(id: u32, stored: Option<Validators<'_>>) -> Result<String, Status> {
///     if stored.is_some_and(|stored| stored.etag() == Some(version_of(id))) {
///         return Err(Status::NotModified);
///     }
///     Ok(render(id))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Validators<'r> {
    request: &'r Request<'r>,
    stored: Option<&'r Stored>,
}

/// The validators of the entry a run revalidates, as stored.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stored {
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
}

impl Validators<'_> {
    /// Returns the stored `ETag` as it was sent (quotes, and `W/` for a weak one, included).
    pub fn etag(&self) -> Option<&str> {
        self.stored?.etag.as_deref()
    }

    /// Returns the stored `Last-Modified` as it was sent.
    pub fn last_modified(&self) -> Option<&str> {
        self.stored?.last_modified.as_deref()
    }

    /// Returns these validators when the request's run revalidates an entry, filled from it.
    fn resolved(mut self) -> Option<Self> {
        let request = self.request;
        self.stored = Some(request.local_cache(|| Revalidated(None)).0.as_ref()?);
        Some(self)
    }
}

/// The validators of the entry the request's handler run revalidates, for its [`Validators`];
/// set by the request path before the handler runs.
struct Revalidated(Option<Stored>);

/// Records that `request`'s handler run revalidates an entry with `stored` validators (before
/// the run starts).
pub(crate) fn revalidating(request: &Request<'_>, stored: Stored) {
    request.local_cache(|| Revalidated(Some(stored)));
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Validators<'r> {
    type Error = std::convert::Infallible;

    /// Always succeeds: whether the run revalidates is decided after the guards run; the
    /// generated handler then hands `Some` over only when it does (see [`Rebind`]).
    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Validators {
            request,
            stored: None,
        })
    }
}

/// One handler argument on its way from the guards to the handler's body, through the generated
/// code: unchanged, except `Option<Validators>`, which is `Some` only when the run revalidates.
/// Which applies is decided by the argument's resolved type (method resolution prefers
/// [`RebindValidators`], implemented for that type alone, over [`RebindAny`] through a
/// reference).
#[doc(hidden)]
pub struct Rebind<T>(Cell<Option<T>>);

impl<T> std::fmt::Debug for Rebind<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rebind(..)")
    }
}

impl<T> Rebind<T> {
    pub fn new(argument: T) -> Rebind<T> {
        Rebind(Cell::new(Some(argument)))
    }

    fn take(&self) -> T {
        self.0
            .take()
            .expect("the generated handler hands each argument over once")
    }
}

#[doc(hidden)]
pub trait RebindValidators<'r> {
    fn rebind(&self) -> Option<Validators<'r>>;
}

impl<'r> RebindValidators<'r> for Rebind<Option<Validators<'r>>> {
    fn rebind(&self) -> Option<Validators<'r>> {
        self.take().and_then(Validators::resolved)
    }
}

#[doc(hidden)]
pub trait RebindAny<T> {
    fn rebind(&self) -> T;
}

impl<T> RebindAny<T> for &Rebind<T> {
    fn rebind(&self) -> T {
        self.take()
    }
}

/// Reads nothing of the request: what is stored for its key, which every request with that key
/// shares.
impl super::guard_check::SharedGuard for Validators<'_> {}

/// That the handler's run answered `Err(Status::NotModified)`, which Rocket would otherwise turn
/// into a 500 (304 is no responder status).
struct SaidUnchanged(std::sync::atomic::AtomicBool);

/// Returns `request`'s mark of an `Err(Status::NotModified)` answer.
fn said<'r>(request: &'r Request<'_>) -> &'r std::sync::atomic::AtomicBool {
    &request.local_cache(|| SaidUnchanged(Default::default())).0
}

/// Returns whether `request`'s handler run answered `Err(Status::NotModified)`.
pub(crate) fn said_unchanged(request: &Request<'_>) -> bool {
    said(request).load(std::sync::atomic::Ordering::Relaxed)
}

/// A handler's answer on its way out of the generated code: an `Err(Status::NotModified)` from a
/// `Result<_, Status>` (by resolved type) is noted for the request path. Dispatched as
/// [`Rebind`] is.
#[doc(hidden)]
#[derive(Debug)]
pub struct Answer<'a, T>(pub &'a T);

#[doc(hidden)]
pub trait NoteUnchanged {
    fn note(&self, request: &Request<'_>);
}

impl<T> NoteUnchanged for Answer<'_, Result<T, rocket::http::Status>> {
    fn note(&self, request: &Request<'_>) {
        if matches!(self.0, Err(status) if *status == rocket::http::Status::NotModified) {
            said(request).store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[doc(hidden)]
pub trait NoteAny {
    fn note(&self, _request: &Request<'_>) {}
}

impl<T> NoteAny for &Answer<'_, T> {}
