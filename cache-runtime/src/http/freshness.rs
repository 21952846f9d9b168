//! How old a response is and how long it stays fresh, read from its own `Cache-Control`, `Age`,
//! `Date` and `Expires` when the cache receives it from the handler (RFC 9111 section 4.2).
//!
//! The cache is the first one the response meets: `response_time` (RFC 9111 section 4.2.3) is
//! when the handler returned it. The handler's own running time is not counted as
//! `response_delay`: it is the origin's time to produce the response, and a response without
//! `Age` that the handler made itself is new when it returns, whatever it waited for.

use std::time::{Duration, SystemTime};

/// What a delta-seconds value too large to represent reads as (RFC 9111 section 1.2.2).
pub(crate) const DELTA_SECONDS_MAX: u64 = 1 << 31;

/// Parses a `delta-seconds` value (`1*DIGIT`, RFC 9111 section 1.2.2), surrounding spaces aside;
/// one too large reads as 2^31. `None` when it is not one (a sign, a suffix, a fraction,
/// nothing).
pub(crate) fn delta_seconds(text: &str) -> Option<u64> {
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        text.parse::<u64>()
            .map_or(DELTA_SECONDS_MAX, |n| n.min(DELTA_SECONDS_MAX)),
    )
}

/// What a response's headers say of its freshness, as the cache stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Seconds from its receipt during which it may be served: the route's `ttl`, or less when
    /// less is left of the response's own freshness lifetime once its age is spent. 0: stale
    /// on arrival.
    pub ttl: u32,
    /// How old it is when received (RFC 9111 section 4.2.3, `corrected_initial_age`).
    pub age: u32,
    /// It has no valid `Date`: the time it was received stands in (RFC 9110 section 6.6.1),
    /// and is stored as its `Date`.
    pub undated: bool,
    /// Seconds past `ttl` it may be served stale: the route's windows, or the response's own.
    pub windows: StaleWindows,
}

/// Seconds past its ttl an entry may be served while one request refreshes it (`stale`) and
/// may stand in for a failing handler (`stale_if_error`); 0: not at all.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StaleWindows {
    pub stale: u32,
    pub stale_if_error: u32,
}

impl StaleWindows {
    /// Returns the windows of a response that says `response` of its own (RFC 5861) under a route
    /// that says `route`. Like `max-age` against `ttl`, the response's can only shorten what
    /// the route declares; where the route declares nothing, the response's stand.
    fn of(route: u32, response: Option<u64>) -> u32 {
        match (route, response) {
            (route, None) => route,
            (0, Some(seconds)) => seconds.min(u64::from(u32::MAX)) as u32,
            (route, Some(seconds)) => seconds.min(u64::from(route)) as u32,
        }
    }
}

/// The response's `Date`.
#[derive(Debug, Default, Clone, Copy)]
enum Dated {
    #[default]
    Absent,
    At(SystemTime),
    /// Not a date, or several lines that disagree.
    Invalid,
}

/// The freshness headers of one response, read one field at a time.
#[derive(Debug, Default)]
pub(crate) struct FreshnessHeaders {
    max_age: Option<u64>,
    s_maxage: Option<u64>,
    /// `Some(None)`: an `Expires` that is not a date, which means already expired.
    expires: Option<Option<SystemTime>>,
    date: Dated,
    /// The first member of the `Age` field (its first line); `Some(None)`: not delta-seconds.
    age: Option<Option<u64>>,
    stale_while_revalidate: Option<u64>,
    stale_if_error: Option<u64>,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage` (which carries `proxy-revalidate`
    /// for a shared cache, RFC 9111 5.2.2.10): once stale, never served without revalidation.
    revalidate: bool,
}

impl FreshnessHeaders {
    /// Reads a `Cache-Control` directive. A malformed age reads as 0 (stale: RFC 9111 section
    /// 4.2.1 encourages treating invalid freshness information so); a repeated one counts at its
    /// smallest.
    pub(crate) fn directive(&mut self, name: &str, argument: Option<&str>) {
        let seconds = || argument.and_then(delta_seconds).unwrap_or(0);
        let smallest =
            |seen: Option<u64>, seconds: u64| Some(seen.map_or(seconds, |s| s.min(seconds)));
        if name.eq_ignore_ascii_case("s-maxage") {
            self.s_maxage = smallest(self.s_maxage, seconds());
        } else if name.eq_ignore_ascii_case("max-age") {
            self.max_age = smallest(self.max_age, seconds());
        } else if name.eq_ignore_ascii_case("stale-while-revalidate") {
            self.stale_while_revalidate = smallest(self.stale_while_revalidate, seconds());
        } else if name.eq_ignore_ascii_case("stale-if-error") {
            self.stale_if_error = smallest(self.stale_if_error, seconds());
        }
        if ["s-maxage", "must-revalidate", "proxy-revalidate"]
            .iter()
            .any(|directive| name.eq_ignore_ascii_case(directive))
        {
            self.revalidate = true;
        }
    }

    /// Reads a header line other than `Cache-Control` (names as Rocket spells them, any case).
    pub(crate) fn header(&mut self, name: &str, value: &str) {
        if name.eq_ignore_ascii_case("Expires") {
            // An invalid date means "already expired" (RFC 9111 section 5.3).
            let at = httpdate::parse_http_date(value.trim()).ok();
            self.expires = Some(match (self.expires, at) {
                (Some(Some(seen)), Some(at)) => Some(seen.min(at)),
                (Some(None), _) | (_, None) => None,
                (None, Some(at)) => Some(at),
            });
        } else if name.eq_ignore_ascii_case("Date") {
            let at = httpdate::parse_http_date(value.trim()).ok();
            self.date = match (self.date, at) {
                (Dated::Absent, Some(at)) => Dated::At(at),
                (Dated::At(seen), Some(at)) if seen == at => Dated::At(at),
                _ => Dated::Invalid,
            };
        } else if name.eq_ignore_ascii_case("Age") && self.age.is_none() {
            // A list (or several lines, which are one list) counts by its first member; an
            // invalid value is ignored (RFC 9111 section 5.1).
            let first = value.split(',').next().unwrap_or("");
            self.age = Some(delta_seconds(first));
        }
    }

    /// Returns the freshness of the response received at `received`, under a route whose `ttl`
    /// caps how long it is kept (RFC 9111 sections 4.2.1 and 4.2.3) and whose stale windows are
    /// `route_windows`.
    pub(crate) fn freshness(
        &self,
        (route_ttl, route_windows): (u32, StaleWindows),
        received: SystemTime,
    ) -> Freshness {
        let seconds = |elapsed: Duration| elapsed.as_secs();
        let date = match self.date {
            Dated::At(at) => at,
            Dated::Absent | Dated::Invalid => received,
        };
        // A `Date` ahead of the cache's clock is no age at all.
        let apparent_age = received.duration_since(date).map_or(0, seconds);
        let age_value = self.age.flatten().unwrap_or(0);
        let age = apparent_age.max(age_value).min(DELTA_SECONDS_MAX);
        let lifetime = match (self.s_maxage.or(self.max_age), self.expires) {
            (Some(seconds), _) => Some(seconds),
            // From the origin's own clock: an `Expires` at or before its `Date` is stale on
            // arrival, whatever the cache's clock says.
            (None, Some(Some(expires))) => Some(expires.duration_since(date).map_or(0, seconds)),
            (None, Some(None)) => Some(0),
            (None, None) => None,
        };
        // The response's own lifetime counts from its origin, so its age is spent; the route's
        // `ttl` counts from now, as the cache's promise to keep it that long at most.
        let ttl = lifetime.map_or(u64::from(route_ttl), |lifetime| {
            lifetime.saturating_sub(age).min(u64::from(route_ttl))
        });
        // Stale, it is served by no window, the route's or its own (RFC 9111 5.2.2.2, 4.2.4).
        let windows = match self.revalidate {
            true => StaleWindows::default(),
            false => StaleWindows {
                stale: StaleWindows::of(route_windows.stale, self.stale_while_revalidate),
                stale_if_error: StaleWindows::of(route_windows.stale_if_error, self.stale_if_error),
            },
        };
        Freshness {
            ttl: ttl as u32,
            age: age as u32,
            undated: !matches!(self.date, Dated::At(_)),
            windows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[(&str, &str)], received: SystemTime) -> Freshness {
        let mut seen = FreshnessHeaders::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("Cache-Control") {
                for directive in value.split(',') {
                    let (name, argument) = match directive.split_once('=') {
                        Some((name, argument)) => (name.trim(), Some(argument)),
                        None => (directive.trim(), None),
                    };
                    seen.directive(name, argument);
                }
            } else {
                seen.header(name, value);
            }
        }
        seen.freshness((60, StaleWindows::default()), received)
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn date(seconds: u64) -> String {
        httpdate::fmt_http_date(at(seconds))
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn delta_seconds_are_digits_and_overflow_to_two_to_the_31() {
        assert_eq!(delta_seconds("0"), Some(0));
        assert_eq!(delta_seconds(" 42 "), Some(42));
        assert_eq!(delta_seconds("2147483647"), Some(2_147_483_647));
        assert_eq!(delta_seconds("2147483648"), Some(DELTA_SECONDS_MAX));
        assert_eq!(delta_seconds("4294967296"), Some(DELTA_SECONDS_MAX));
        assert_eq!(
            delta_seconds("99999999999999999999999999"),
            Some(DELTA_SECONDS_MAX)
        );
        for invalid in ["", " ", "-1", "+1", "10s", "1.5", "0x10", "1 2", "soon"] {
            assert_eq!(delta_seconds(invalid), None, "{invalid:?}");
        }
    }

    #[test]
    fn age_counts_against_the_lifetime_and_is_read_as_rfc_9111_says() {
        let fresh = |age: &str| read(&[("Cache-Control", "max-age=30"), ("Age", age)], at(NOW));
        assert_eq!(
            fresh("10"),
            Freshness {
                ttl: 20,
                age: 10,
                undated: true,
                windows: StaleWindows::default(),
            }
        );
        assert_eq!(fresh("30").ttl, 0, "as old as its max-age: stale");
        assert_eq!(fresh("40").ttl, 0);
        assert_eq!(fresh("40, 5").ttl, 0, "a list counts by its first member");
        assert_eq!(fresh("5, 40").age, 5);
        assert_eq!(fresh("40s"), fresh(""), "invalid: ignored");
        assert_eq!(fresh("40s").age, 0);
        assert_eq!(fresh("-5").age, 0);
        let huge = fresh("99999999999999999999");
        assert_eq!((huge.ttl, u64::from(huge.age)), (0, DELTA_SECONDS_MAX));
        // Two lines: the first counts.
        let lines = read(
            &[("Cache-Control", "max-age=30"), ("Age", "40"), ("Age", "1")],
            at(NOW),
        );
        assert_eq!(lines.ttl, 0);
        // Without a lifetime of its own, the route's ttl counts from when it is stored.
        assert_eq!(
            read(&[("Age", "70")], at(NOW)),
            Freshness {
                ttl: 60,
                age: 70,
                undated: true,
                windows: StaleWindows::default(),
            }
        );
        // With one, what is left of it, never more than the route's ttl.
        assert_eq!(
            read(&[("Cache-Control", "max-age=100"), ("Age", "70")], at(NOW)).ttl,
            30
        );
        assert_eq!(
            read(&[("Cache-Control", "max-age=100"), ("Age", "10")], at(NOW)).ttl,
            60
        );
    }

    #[test]
    fn stale_windows_are_the_routes_shortened_or_the_responses_when_it_has_none() {
        assert_eq!(StaleWindows::of(0, None), 0);
        assert_eq!(StaleWindows::of(30, None), 30);
        assert_eq!(StaleWindows::of(0, Some(45)), 45);
        assert_eq!(StaleWindows::of(30, Some(45)), 30);
        assert_eq!(StaleWindows::of(30, Some(10)), 10);
        assert_eq!(StaleWindows::of(0, Some(DELTA_SECONDS_MAX)), 1 << 31);
        let mut seen = FreshnessHeaders::default();
        for (name, argument) in [
            ("Stale-While-Revalidate", Some("20")),
            ("stale-while-revalidate", Some("50")),
            ("stale-if-error", Some("x")),
        ] {
            seen.directive(name, argument);
        }
        let read = seen.freshness((60, StaleWindows::default()), at(NOW));
        assert_eq!(
            read.windows,
            StaleWindows {
                stale: 20,
                stale_if_error: 0
            },
            "repeated: the smallest; malformed: 0"
        );
    }

    #[test]
    fn an_old_date_is_age_and_a_future_one_is_none() {
        let old = date(NOW - 20);
        let read_old = read(&[("Date", &old)], at(NOW));
        assert_eq!(
            read_old,
            Freshness {
                ttl: 60,
                age: 20,
                undated: false,
                windows: StaleWindows::default(),
            }
        );
        let with_max_age = read(&[("Date", &old), ("Cache-Control", "max-age=30")], at(NOW));
        assert_eq!(with_max_age.ttl, 10);
        // The larger of the apparent age and the received `Age`.
        assert_eq!(read(&[("Date", &old), ("Age", "5")], at(NOW)).age, 20);
        assert_eq!(read(&[("Date", &old), ("Age", "25")], at(NOW)).age, 25);
        let ahead = date(NOW + 100);
        assert_eq!(read(&[("Date", &ahead)], at(NOW)).age, 0);
        // Unusable dates stand for the time received.
        for dates in [
            vec![("Date", "yesterday")],
            vec![("Date", old.as_str()), ("Date", ahead.as_str())],
        ] {
            let read = read(&dates, at(NOW));
            assert_eq!((read.age, read.undated), (0, true), "{dates:?}");
        }
        let same = read(&[("Date", &old), ("Date", &old)], at(NOW));
        assert!(!same.undated);
    }

    #[test]
    fn expires_counts_from_date_not_from_the_cache_clock() {
        // The origin's clock is 100 s ahead of the cache's.
        let date = date(NOW + 100);
        let expires = |offset: i64| super::tests::date((NOW as i64 + 100 + offset) as u64);
        let with = |e: &str| read(&[("Date", &date), ("Expires", e)], at(NOW));
        assert_eq!(with(&expires(30)).ttl, 30);
        assert_eq!(with(&expires(0)).ttl, 0, "Expires = Date: stale on arrival");
        assert_eq!(with(&expires(-10)).ttl, 0, "Expires before Date");
        assert_eq!(with("0").ttl, 0, "not a date: already expired");
        let aged = read(
            &[("Date", &date), ("Expires", &expires(30)), ("Age", "40")],
            at(NOW),
        );
        assert_eq!(aged.ttl, 0, "older than Expires - Date");
        // Without `Date`, from the time received.
        let soon = super::tests::date(NOW + 20);
        assert_eq!(read(&[("Expires", &soon)], at(NOW)).ttl, 20);
        // max-age and s-maxage win over Expires (RFC 9111 section 5.3).
        let expired = read(
            &[("Expires", "0"), ("Cache-Control", "max-age=50")],
            at(NOW),
        );
        assert_eq!(expired.ttl, 50);
    }
}
