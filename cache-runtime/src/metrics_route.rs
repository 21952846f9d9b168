//! The route that serves the counters in the Prometheus text format.

use rocket::http::{ContentType, Method};
use rocket::route::{Handler, Outcome};
use rocket::{Data, Request, Route};

use crate::backend::BreakerState;
use crate::cache::Cache;
use crate::metrics::{prometheus, stats};

/// Routes to mount where you choose: `GET <base>/metrics` answers the counters (and each
/// Memcached server's breaker state, for the cache of the Rocket instance) in the Prometheus
/// text format.
///
/// ```no_run
/// # use rocket::launch;
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build().mount("/internal", cache_runtime::metrics_routes())
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
        let cache = Cache::for_request(request);
        let servers: Vec<(String, bool)> = cache
            .servers()
            .into_iter()
            .map(|server| (server.address, server.breaker == BreakerState::Closed))
            .collect();
        let text = prometheus::render(&stats(), &servers);
        let content_type = ContentType::new("text", "plain").with_params([("version", "0.0.4")]);
        Outcome::from(request, (content_type, text))
    }
}
