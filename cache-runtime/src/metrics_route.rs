//! The route that serves the counters in the Prometheus text format.

use rocket::http::{ContentType, Method};
use rocket::request::{self, FromRequest};
use rocket::response::{self, Responder};
use rocket::route::{Handler, Outcome};
use rocket::{Data, Request, Route};

use crate::backend::BreakerState;
use crate::cache::Cache;
use crate::counting::{instance_routes, prometheus, stats};

/// Returns routes to mount where you choose: `GET <base>/metrics` answers the counters of the
/// Rocket instance (the cached routes it mounts, its cache's invalidations and each Memcached
/// server's breaker state) in the Prometheus text format. Anyone who reaches the route reads
/// them, server addresses included: mount it where only your own network does, or serve a
/// [`Report`] from a route of your own behind your own guard.
///
/// ```no_run
/// # use rocket::launch;
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build().mount("/internal", rocket_route_cache::metrics::metrics_routes())
/// }
/// ```
pub fn metrics_routes() -> Vec<Route> {
    vec![Route::new(Method::Get, "/metrics", Metrics)]
}

#[derive(Clone)]
struct Metrics;

#[rocket::async_trait]
impl Handler for Metrics {
    async fn handle<'r>(&self, request: &'r Request<'_>, _: Data<'r>) -> Outcome<'r> {
        Outcome::from(request, Report::of(request))
    }
}

/// This Rocket instance's counters in the Prometheus text format, as the metrics route serves
/// them: a request guard and a responder, to serve from a route of your own, behind your own
/// guard. The report names each Memcached server, so it belongs behind one.
///
/// ```no_run
/// # use rocket::{get, routes, launch};
/// # use rocket::http::Status;
/// # use rocket::request::{self, FromRequest, Request};
/// use rocket_route_cache::metrics::Report;
///
/// struct Operator;
///
/// #[rocket::async_trait]
/// impl<'r> FromRequest<'r> for Operator {
///     type Error = ();
///     async fn from_request(request: &'r Request<'_>) -> request::Outcome<Self, ()> {
///         match request.headers().get_one("X-Ops-Token") {
///             Some("let-me-in") => request::Outcome::Success(Operator),
///             _ => request::Outcome::Error((Status::Unauthorized, ())),
///         }
///     }
/// }
///
/// // Guards run in order: without the token, no report is made.
/// #[get("/metrics")]
/// fn metrics(_operator: Operator, report: Report) -> Report {
///     report
/// }
///
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build().mount("/internal", routes![metrics])
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Report {
    text: String,
}

impl Report {
    /// Reads the counters of the instance serving `request`: its cache's invalidations, the
    /// cached routes it mounts as this instance served them (a route mounted by several
    /// instances of the process counts separately in each), and each server's breaker state.
    fn of(request: &Request<'_>) -> Report {
        let cache = Cache::for_request(request);
        let servers: Vec<(String, bool)> = cache
            .servers()
            .into_iter()
            .map(|server| (server.address, server.breaker == BreakerState::Closed))
            .collect();
        let mounted: Vec<String> = request
            .rocket()
            .routes()
            .map(|route| format!("{} {}", route.method, route.uri))
            .collect();
        let mut instance = stats();
        instance.global = cache.stats();
        instance.routes = instance_routes(cache.counters());
        instance.routes.retain(|(label, _)| mounted.contains(label));
        Report {
            text: prometheus::render(&instance, &servers),
        }
    }

    /// Returns the report's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Report {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> request::Outcome<Report, Self::Error> {
        request::Outcome::Success(Report::of(request))
    }
}

impl<'r> Responder<'r, 'static> for Report {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let content_type = ContentType::new("text", "plain").with_params([("version", "0.0.4")]);
        (content_type, self.text).respond_to(request)
    }
}
