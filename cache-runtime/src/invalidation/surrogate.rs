//! How a tag is spelled for a CDN in front, so that it can purge by the same tags.

/// Returns how `tag` is spelled in a `Surrogate-Key` or `Cache-Tag` header, and so in a CDN purge
/// by tag: visible ASCII as is, except `%`, `,` and `"`; those, spaces, control characters and
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
}
