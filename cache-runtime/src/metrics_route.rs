//! The route that serves the counters in the Prometheus text format.

use rocket::http::{ContentType, Method};
use rocket::route::{Handler, Outcome};
use rocket::{Data, Request, Route};

use crate::backend::BreakerState;
use crate::cache::Cache;
use crate::counting::{instance_routes, prometheus, stats};

/// Returns routes to mount where you choose: `GET <base>/metrics` answers the counters of the
/// Rocket instance (the cached routes it mounts, its cache's invalidations and each Memcached
/// server's breaker state) in the Prometheus text format.
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
        let cache = Cache::for_request(request);
        let servers: Vec<(String, bool)> = cache
            .servers()
            .into_iter()
            .map(|server| (server.address, server.breaker == BreakerState::Closed))
            .collect();
        // This instance's: its cache's invalidations, and the routes it mounts, as this
        // instance served them (a route mounted by several instances of the process counts
        // separately in each).
        let mounted: Vec<String> = request
            .rocket()
            .routes()
            .map(|route| format!("{} {}", route.method, route.uri))
            .collect();
        let mut instance = stats();
        instance.global = cache.stats();
        instance.routes = instance_routes(cache.counters());
        instance.routes.retain(|(label, _)| mounted.contains(label));
        let text = prometheus::render(&instance, &servers);
        let content_type = ContentType::new("text", "plain").with_params([("version", "0.0.4")]);
        Outcome::from(request, (content_type, text))
    }
}
