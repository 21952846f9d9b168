//! The spelling of a path that names its invalidation counter.
//!
//! Keys stay exact: `/articles/05` and `/articles/5` are two entries. But for `id: u32` they
//! are the same page, and `invalidate("/articles/5")` must drop both. So the path counter is
//! named by a canonical spelling, the same at serve time and at invalidation time, under which
//! every spelling that Rocket's own parameter types read as one value is one spelling:
//!
//! - segments are percent-decoded and empty ones skipped (Rocket's `Path::segments`);
//! - ASCII letters are folded to lowercase (UUIDs, IPv6 addresses, `1E5`, `NaN`, `inf`);
//! - a UUID in any of the forms `uuid` parses (simple, hyphenated, braced, URN) is its 32 hex
//!   digits;
//! - a segment that parses as a float (every integer does) is its value in one notation: `5`,
//!   `05`, `+5`, `5.0`, `5e0` and `.5e1` are all `5e0`, `-0` is `0e0`. An `f32` parameter reads
//!   `0.30000001` as `0.3` where an `f64` does not: when the two readings differ, the path has
//!   two counters, one with each segment read as an `f64`, one with each read as an `f32`;
//! - an IP or socket address is its standard text (`0:0::A` is `::a`);
//! - for a route ending in `<path..>` (a `PathBuf`), `..` removes the segment before it, never
//!   one of the route's own prefix. At invalidation time the route is not known: a path with
//!   `..` bumps the counter of every place the route's prefix may end.
//!
//! Coarser is safe: two pages that share a counter are both dropped when it is bumped, so
//! `/Users/Bob` goes with `/users/bob`, `/p/16777217` with `/p/16777216` (the same `f32`). What
//! is not covered: a parameter type of your own whose `FromParam` accepts other spellings of one
//! value, and `Option<T>` / `Result<T, _>` parameters (every spelling `T` refuses is `None`).
//! Typed invalidation (`handler::invalidate(..)`, by the values the handler saw) and tags are
//! exact for those.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use rocket::Request;

use crate::invalidation::generation::CounterId;

/// Returns the path counters a request depends on: one, or two when an `f32` reads a segment
/// differently from an `f64`.
pub(crate) fn served_path_counters(request: &Request<'_>) -> Vec<CounterId> {
    let segments: Vec<&str> = request.uri().path().segments().collect();
    // Only a `..` makes the route matter: the common path costs no lookup.
    if segments.contains(&"..") {
        if let Some(prefix) = trailing_param_start(request) {
            return readings(&resolve_dot_dot(&segments, prefix));
        }
    }
    readings(&segments)
}

/// Returns the path counters an invalidation of `segments` bumps: those of every request it
/// names.
pub(crate) fn invalidated_path_counters<'a>(
    segments: impl Iterator<Item = &'a str>,
) -> Vec<CounterId> {
    let segments: Vec<&str> = segments.collect();
    if !segments.contains(&"..") {
        return readings(&segments);
    }
    // The route is unknown: its `<path..>` may start at any segment (or it has none).
    let mut counters = Vec::new();
    for prefix in 0..=segments.len() {
        for counter in readings(&resolve_dot_dot(&segments, prefix)) {
            if !counters.contains(&counter) {
                counters.push(counter);
            }
        }
    }
    counters
}

/// Returns where the matched route's trailing `<param..>` starts, in segments.
fn trailing_param_start(request: &Request<'_>) -> Option<usize> {
    let route = request.route()?;
    route
        .uri
        .origin
        .path()
        .segments()
        .position(|segment| segment.starts_with('<') && segment.ends_with("..>"))
}

/// Returns what Rocket's `PathBuf` reads from the segments after `prefix`: `..` pops the segment
/// before it, if that one is past the prefix.
fn resolve_dot_dot<'a>(segments: &[&'a str], prefix: usize) -> Vec<&'a str> {
    let prefix = prefix.min(segments.len());
    let mut resolved = segments[..prefix].to_vec();
    for segment in &segments[prefix..] {
        if *segment == ".." {
            if resolved.len() > prefix {
                resolved.pop();
            }
        } else {
            resolved.push(segment);
        }
    }
    resolved
}

/// Returns the counter of the canonical spelling, and of the `f32` one when it differs.
fn readings(segments: &[&str]) -> Vec<CounterId> {
    let spelled: Vec<Canonical> = segments.iter().map(|s| canonical(s)).collect();
    let wide = CounterId::path(spelled.iter().map(|c| c.wide.as_str()));
    if spelled.iter().all(|c| c.narrow.is_none()) {
        return vec![wide];
    }
    let narrow = CounterId::path(
        spelled
            .iter()
            .map(|c| c.narrow.as_deref().unwrap_or(&c.wide)),
    );
    if narrow == wide {
        vec![wide]
    } else {
        vec![wide, narrow]
    }
}

/// One segment's canonical spelling (read as an `f64` if it is a number), and its spelling
/// read as an `f32` when that differs.
#[derive(Debug, PartialEq)]
struct Canonical {
    wide: String,
    narrow: Option<String>,
}

fn canonical(segment: &str) -> Canonical {
    let folded = segment.to_ascii_lowercase();
    let folded = uuid_digits(&folded).unwrap_or(folded);
    if let (Ok(wide), Ok(narrow)) = (folded.parse::<f64>(), folded.parse::<f32>()) {
        let (wide, narrow) = (number(wide), number(narrow));
        let narrow = (narrow != wide).then_some(narrow);
        return Canonical { wide, narrow };
    }
    let wide = if let Ok(ip) = folded.parse::<IpAddr>() {
        ip.to_string()
    } else if let Ok(address) = folded.parse::<SocketAddr>() {
        address.to_string()
    } else {
        folded
    };
    Canonical { wide, narrow: None }
}

/// Spells a float in one notation: the shortest digits that read back as it in its own type, `-0`
/// as `0`, every NaN as one.
fn number<F: Into<f64> + Copy + fmt::LowerExp>(value: F) -> String {
    let widened: f64 = value.into();
    if widened == 0.0 {
        "0e0".to_owned()
    } else if widened.is_nan() {
        "nan".to_owned()
    } else {
        format!("{value:e}")
    }
}

/// Returns the 32 hex digits of a (lowercase) UUID in a form the `uuid` crate parses; a few more
/// forms are accepted (braces around the simple form), which only merges more spellings.
fn uuid_digits(segment: &str) -> Option<String> {
    let bare = segment.strip_prefix("urn:uuid:").unwrap_or(segment);
    let bare = bare
        .strip_prefix('{')
        .and_then(|inner| inner.strip_suffix('}'))
        .unwrap_or(bare);
    let digits = match bare.len() {
        32 => bare.to_owned(),
        36 if [8, 13, 18, 23]
            .iter()
            .all(|&at| bare.as_bytes()[at] == b'-') =>
        {
            bare.chars().filter(|&c| c != '-').collect()
        }
        _ => return None,
    };
    (digits.len() == 32 && digits.bytes().all(|b| b.is_ascii_hexdigit())).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(segment: &str) -> String {
        canonical(segment).wide
    }

    #[test]
    fn every_spelling_of_a_number_is_one() {
        for five in [
            "5", "05", "+5", "0005", "5.0", "5.", "5e0", "5E0", ".5e1", "50e-1",
        ] {
            assert_eq!(canonical(five), canonical("5"), "{five}");
        }
        for zero in ["0", "-0", "+0", "0.000", "-0e5"] {
            assert_eq!(wide(zero), "0e0", "{zero}");
        }
        assert_eq!(wide("NaN"), wide("nan"));
        assert_eq!(wide("-NaN"), wide("nan"));
        assert_eq!(wide("INF"), wide("infinity"));
        assert_ne!(wide("inf"), wide("-inf"));
        assert_ne!(wide("5"), wide("50"));
        assert_ne!(wide("5"), wide("-5"));
        // Integers past 2^53 that an `f64` cannot tell apart share a counter: more is dropped.
        assert_eq!(wide("9007199254740993"), wide("9007199254740992"));
    }

    #[test]
    fn an_f32_reading_is_kept_when_it_differs() {
        let long = canonical("0.30000001");
        assert_ne!(long.wide, wide("0.3"));
        assert_eq!(long.narrow.as_deref(), Some(wide("0.3").as_str()));
        assert_eq!(canonical("0.3").narrow, None);
        assert_eq!(canonical("16777217").narrow.as_deref(), Some("1.6777216e7"));
    }

    #[test]
    fn uuids_and_addresses_have_one_spelling() {
        let digits = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        let simple = wide("67e5504410b1426f9247bb680e5fe0c8");
        for form in [
            digits.to_owned(),
            digits.to_ascii_uppercase(),
            format!("{{{digits}}}"),
            format!("urn:uuid:{digits}"),
        ] {
            assert_eq!(wide(&form), simple, "{form}");
        }
        assert_eq!(wide("0:0:0:0:0:0:0:A"), "::a");
        assert_eq!(wide("0::a"), "::a");
        assert_eq!(wide("[::A]:0080"), wide("[::a]:80"));
        assert_eq!(wide("Caf\u{e9}"), "caf\u{e9}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// Any segments (request data) give counters without panicking, and a path is always
        /// among the ones its own invalidation bumps.
        #[test]
        fn any_path_spells_and_invalidates_itself(
            segments in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<String>(),
                    "[-+.eE0-9]{0,12}",
                    proptest::prelude::Just("..".to_owned()),
                    "[{}:a-fA-F0-9-]{30,45}",
                ],
                0..6,
            ),
        ) {
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            let invalidated = invalidated_path_counters(segments.iter().copied());
            for prefix in 0..=segments.len() {
                let served = readings(&resolve_dot_dot(&segments, prefix));
                proptest::prop_assert!(served.iter().any(|c| invalidated.contains(c)));
            }
        }
    }

    #[test]
    fn dot_dot_pops_only_past_the_prefix() {
        let segments = ["files", "x", "..", "..", "b"];
        assert_eq!(resolve_dot_dot(&segments, 1), ["files", "b"]);
        assert_eq!(resolve_dot_dot(&segments, 0), ["b"]);
        assert_eq!(resolve_dot_dot(&segments, 5), segments);
        assert_eq!(resolve_dot_dot(&["..", "a"], 0), ["a"]);
    }

    #[test]
    fn an_invalidation_with_dot_dot_covers_every_prefix() {
        let counters = invalidated_path_counters(["files", "x", "..", "b"].into_iter());
        for served in [&["files", "b"][..], &["files", "x", "b"]] {
            let served = readings(served);
            assert!(served.iter().any(|c| counters.contains(c)), "{served:?}");
        }
        assert!(counters.contains(&readings(&["files", "x", "..", "b"])[0]));
    }

    #[test]
    fn invalidating_one_spelling_reaches_the_served_ones() {
        let invalidated = invalidated_path_counters(["prices", "0.3"].into_iter());
        for served in [
            ["prices", "0.30000001"],
            ["PRICES", "3e-1"],
            ["prices", ".3"],
        ] {
            let served = readings(&served);
            assert!(served.iter().any(|c| invalidated.contains(c)), "{served:?}");
        }
        let other = readings(&["prices", "0.4"]);
        assert!(other.iter().all(|c| !invalidated.contains(c)));
    }
}
