//! The Prometheus text exposition of the counters: a table of families, each rendered the same
//! way.

use std::fmt::Write as _;

use super::{Snapshot, Stats};

/// A label beyond `route`, and its value.
type Label = Option<(&'static str, &'static str)>;

/// A counter family with one or more samples per route.
struct RouteFamily {
    name: &'static str,
    help: &'static str,
    samples: fn(&Snapshot) -> Vec<(Label, u64)>,
}

/// Per route only: the process-wide figures are their sum, and one family holding both would
/// count everything twice in `sum(...)`.
const ROUTE_FAMILIES: [RouteFamily; 7] = [
    RouteFamily {
        name: "cached_route_requests_total",
        help: "Requests to cached routes, by result.",
        samples: |s| {
            vec![
                (Some(("result", "hit")), s.hits),
                (Some(("result", "miss")), s.misses),
                (Some(("result", "stale")), s.stale),
                (Some(("result", "bypass")), s.bypasses),
            ]
        },
    },
    RouteFamily {
        name: "cached_route_stores_total",
        help: "Entries written to the cache.",
        samples: |s| vec![(None, s.stores)],
    },
    RouteFamily {
        name: "cached_route_stored_bytes_total",
        help: "Bytes of the entries written.",
        samples: |s| vec![(None, s.bytes_stored)],
    },
    RouteFamily {
        name: "cached_route_refusals_total",
        help: "Responses served but not stored, by reason.",
        samples: |s| {
            s.refusals
                .iter()
                .map(|(reason, n)| (Some(("reason", *reason)), *n))
                .collect()
        },
    },
    RouteFamily {
        name: "cached_route_backend_errors_total",
        help: "Cache operations that failed.",
        samples: |s| vec![(None, s.backend_errors)],
    },
    RouteFamily {
        name: "cached_route_near_hits_total",
        help: "Hits the near tier answered, without a Memcached operation.",
        samples: |s| vec![(None, s.near_hits)],
    },
    RouteFamily {
        name: "cached_route_invalidated_total",
        help: "Lookups that found an entry rendered before an invalidation.",
        samples: |s| vec![(None, s.invalidated)],
    },
];

/// Returns the Prometheus text exposition of `stats` and of `servers` (address, whether it is
/// used).
pub(crate) fn render(stats: &Stats, servers: &[(String, bool)]) -> String {
    let mut out = String::new();
    for family in &ROUTE_FAMILIES {
        header(&mut out, family.name, family.help, "counter");
        for (route, snapshot) in &stats.routes {
            for (label, n) in (family.samples)(snapshot) {
                let extra = label.map_or(String::new(), |(name, value)| {
                    format!(",{name}=\"{value}\"")
                });
                let _ = writeln!(out, "{}{{{}{extra}}} {n}", family.name, route_label(route));
            }
        }
    }
    invalidations(&mut out, &stats.global);
    lookup_histogram(&mut out, &stats.routes);
    servers_up(&mut out, servers);
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn route_label(route: &str) -> String {
    format!("route=\"{}\"", label_value(route))
}

/// Writes the invalidation family, process-wide: an invalidation belongs to no route.
fn invalidations(out: &mut String, global: &Snapshot) {
    let name = "cached_route_invalidations_total";
    let help = "Invalidation calls, by whether every server confirmed them.";
    header(out, name, help, "counter");
    let (calls, unconfirmed) = (global.invalidations, global.invalidations_unconfirmed);
    let _ = writeln!(
        out,
        "{name}{{result=\"confirmed\"}} {}",
        calls - unconfirmed
    );
    let _ = writeln!(out, "{name}{{result=\"unconfirmed\"}} {unconfirmed}");
}

fn lookup_histogram(out: &mut String, routes: &[(String, Snapshot)]) {
    let name = "cached_route_lookup_seconds";
    header(out, name, "Latency of cache lookups.", "histogram");
    for (route, s) in routes {
        let route = route_label(route);
        let mut cumulative = 0;
        for (bound, n) in &s.lookup_buckets {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{route},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{route},le=\"+Inf\"}} {}", s.lookups);
        let _ = writeln!(out, "{name}_sum{{{route}}} {}", s.lookup_seconds_total);
        let _ = writeln!(out, "{name}_count{{{route}}} {}", s.lookups);
    }
}

fn servers_up(out: &mut String, servers: &[(String, bool)]) {
    let name = "cached_route_server_up";
    let help = "Whether a Memcached server is used (its circuit breaker is closed).";
    header(out, name, help, "gauge");
    for (address, up) in servers {
        let _ = writeln!(
            out,
            "{name}{{server=\"{}\"}} {}",
            label_value(address),
            u8::from(*up)
        );
    }
}
