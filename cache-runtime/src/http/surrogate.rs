//! A route's tags in a response header for a CDN in front (`Surrogate-Key`, `Cache-Tag`), so
//! that it can purge by the same tags as [`invalidate_tag`](crate::invalidate_tag).

use rocket::Response;

use crate::settings::SurrogateKeys;

/// Adds `keys` (spelled tags separated by spaces) to `response` in `header`, after any value
/// the handler set there itself.
pub(crate) fn add(response: &mut Response<'_>, header: Option<SurrogateKeys>, keys: &str) {
    let Some(header) = header.filter(|_| !keys.is_empty()) else {
        return;
    };
    let separator = header.separator();
    let ours = keys.replace(' ', separator.encode_utf8(&mut [0; 4]));
    let existing: Vec<&str> = response.headers().get(header.header()).collect();
    let value = if existing.is_empty() {
        ours
    } else {
        format!("{}{separator}{ours}", existing.join(&separator.to_string()))
    };
    response.set_raw_header(header.header(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_with_the_headers_separator_after_the_handlers_own() {
        let mut response = Response::build().finalize();
        add(&mut response, Some(SurrogateKeys::CacheTag), "a b%2Cc");
        assert_eq!(response.headers().get_one("Cache-Tag"), Some("a,b%2Cc"));
        add(&mut response, Some(SurrogateKeys::CacheTag), "d");
        assert_eq!(response.headers().get_one("Cache-Tag"), Some("a,b%2Cc,d"));
        let mut response = Response::build().finalize();
        add(&mut response, Some(SurrogateKeys::SurrogateKey), "a b");
        assert_eq!(response.headers().get_one("Surrogate-Key"), Some("a b"));
        add(&mut response, None, "a b");
        add(&mut response, Some(SurrogateKeys::CacheTag), "");
        assert_eq!(response.headers().get_one("Cache-Tag"), None);
    }
}
