//! A route's tags in a response header for a CDN in front (`Surrogate-Key`, `Cache-Tag`), so
//! that it can purge by the same tags as [`invalidate_tag`](crate::invalidate_tag).

use rocket::Response;

use crate::settings::SurrogateKeys;

/// How `tag` is spelled in a `Surrogate-Key` or `Cache-Tag` header, and so in a CDN purge by
/// tag: visible ASCII as is, except `%`, `,` and `"`; those, spaces, control characters and
/// every byte of a non-ASCII character as `%XX` (uppercase hex, as in a URI). Both headers
/// separate tags with a character that never appears in a spelled tag (a space, a comma), and
/// two distinct tags never share a spelling.
///
/// ```
/// assert_eq!(rocket_route_cache::invalidation::surrogate_key("article:5"), "article:5");
/// assert_eq!(rocket_route_cache::invalidation::surrogate_key("café au lait"), "caf%C3%A9%20au%20lait");
/// assert_eq!(rocket_route_cache::invalidation::surrogate_key("a,b%"), "a%2Cb%25");
/// ```
pub fn surrogate_key(tag: &str) -> String {
    let mut spelled = String::with_capacity(tag.len());
    for byte in tag.bytes() {
        if byte.is_ascii_graphic() && !matches!(byte, b'%' | b',' | b'"') {
            spelled.push(char::from(byte));
        } else {
            spelled.push('%');
            for nibble in [byte >> 4, byte & 0xf] {
                spelled.push(char::from(b"0123456789ABCDEF"[usize::from(nibble)]));
            }
        }
    }
    spelled
}

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
    fn spelled_tags_are_distinct_and_hold_no_separator() {
        let tags = [
            "a b",
            "a,b",
            "a%20b",
            "a%2Cb",
            "a\"b",
            "caf\u{e9}",
            "cafe",
            "",
            "x\r\ny",
            "\u{7f}",
        ];
        let spelled: Vec<String> = tags.iter().map(|tag| surrogate_key(tag)).collect();
        for (i, one) in spelled.iter().enumerate() {
            assert!(
                one.bytes().all(|b| b.is_ascii_graphic() && b != b','),
                "{one}"
            );
            for other in &spelled[i + 1..] {
                assert_ne!(one, other);
            }
        }
        assert_eq!(surrogate_key("x\r\ny"), "x%0D%0Ay");
    }

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
