//! Range requests on a stored entry (RFC 9110 section 14): a single `bytes` range of a stored
//! 200 answers 206 with that part, one past the end 416, and anything this cache does not serve
//! as a part (several ranges, another unit, a range it cannot read, an `If-Range` the entry does
//! not match) the whole entry, as a server may.

use rocket::Request;

/// What a request's `Range` asks of a stored 200 of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The whole entry: no range, or none this cache serves as a part.
    Whole,
    /// The bytes `first..=last`.
    Bytes { first: u64, last: u64 },
    /// A range that starts past the end (416).
    Unsatisfiable,
}

/// Returns the part of a stored 200 of `len` bytes, whose `ETag` and `Last-Modified` are
/// `validators` (read only for an `If-Range`), that `request` asks for. Only GET asks: Rocket answers HEAD with the GET
/// route, and a HEAD response describes the whole representation.
pub(crate) fn requested<'e>(
    request: &Request<'_>,
    len: u64,
    validators: impl FnOnce() -> (Option<&'e str>, Option<&'e str>),
) -> Part {
    let headers = request.headers();
    let Some(range) = headers.get_one("Range") else {
        return Part::Whole;
    };
    if request.method() != rocket::http::Method::Get || headers.get("Range").nth(1).is_some() {
        return Part::Whole;
    }
    if let Some(condition) = headers.get_one("If-Range") {
        let (etag, last_modified) = validators();
        if !if_range_matches(condition, etag, last_modified) {
            return Part::Whole;
        }
    }
    part_of(range, len)
}

/// Returns whether `If-Range` names this entry, by a strong comparison (RFC 9110 13.1.5): an
/// entity tag equal to a strong `ETag`, or a date equal to `Last-Modified`. A weak tag never
/// matches.
fn if_range_matches(condition: &str, etag: Option<&str>, last_modified: Option<&str>) -> bool {
    let condition = condition.trim();
    if condition.starts_with('"') {
        return etag.is_some_and(|etag| etag.trim() == condition);
    }
    if condition.starts_with("W/") {
        return false;
    }
    let date = |text: &str| httpdate::parse_http_date(text.trim()).ok();
    match (date(condition), last_modified.and_then(date)) {
        (Some(asked), Some(stored)) => asked == stored,
        _ => false,
    }
}

/// Reads `bytes=first-last`, `bytes=first-` or `bytes=-suffix` against `len` bytes; anything
/// else (another unit, several ranges, a malformed one) is the whole entry.
fn part_of(range: &str, len: u64) -> Part {
    let Some((unit, spec)) = range.trim().split_once('=') else {
        return Part::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return Part::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Part::Whole;
    };
    let number = |text: &str| {
        let text = text.trim();
        let digits =
            !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| text.parse::<u64>().ok()).flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // The last `suffix` bytes.
        (true, _, Some(suffix)) if suffix > 0 && len > 0 => Part::Bytes {
            first: len.saturating_sub(suffix),
            last: len - 1,
        },
        (true, _, Some(_)) => Part::Unsatisfiable,
        (false, Some(first), _) if first >= len => Part::Unsatisfiable,
        (false, Some(first), None) if last.trim().is_empty() => Part::Bytes {
            first,
            last: len - 1,
        },
        (false, Some(first), Some(last)) if first <= last => Part::Bytes {
            first,
            last: last.min(len - 1),
        },
        _ => Part::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_byte_ranges_read_as_rfc_9110_says() {
        let bytes = |first, last| Part::Bytes { first, last };
        let cases = [
            ("bytes=0-4", bytes(0, 4)),
            ("bytes=5-", bytes(5, 9)),
            ("bytes=-3", bytes(7, 9)),
            ("bytes=-30", bytes(0, 9)),
            ("bytes=8-100", bytes(8, 9)),
            (" Bytes = 2-2 ", bytes(2, 2)),
            ("bytes=10-", Part::Unsatisfiable),
            ("bytes=10-20", Part::Unsatisfiable),
            ("bytes=-0", Part::Unsatisfiable),
            ("bytes=0-1,3-4", Part::Whole),
            ("items=0-1", Part::Whole),
            ("bytes=4-2", Part::Whole),
            ("bytes=a-b", Part::Whole),
            ("bytes=-", Part::Whole),
            ("bytes=+1-2", Part::Whole),
            ("bytes=99999999999999999999-", Part::Whole),
            ("bytes", Part::Whole),
        ];
        for (range, part) in cases {
            assert_eq!(part_of(range, 10), part, "{range}");
        }
        assert_eq!(part_of("bytes=0-", 0), Part::Unsatisfiable);
        assert_eq!(part_of("bytes=-5", 0), Part::Unsatisfiable);
    }

    #[test]
    fn if_range_compares_strongly() {
        let etag = Some("\"v1\"");
        let date = Some("Tue, 08 Dec 2026 04:00:00 GMT");
        assert!(if_range_matches("\"v1\"", etag, date));
        assert!(!if_range_matches("\"v2\"", etag, date));
        assert!(!if_range_matches("W/\"v1\"", Some("W/\"v1\""), date));
        assert!(!if_range_matches("\"v1\"", Some("W/\"v1\""), date));
        assert!(if_range_matches(
            "Tue, 08 Dec 2026 04:00:00 GMT",
            etag,
            date
        ));
        assert!(!if_range_matches(
            "Tue, 08 Dec 2026 04:00:01 GMT",
            etag,
            date
        ));
        assert!(!if_range_matches("yesterday", etag, date));
    }
}
