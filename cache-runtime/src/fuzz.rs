//! Property-based fuzzing (proptest) of the two places hostile bytes reach: the key builder
//! (request data) and frame decoding (whatever a Memcached server returns).

use proptest::prelude::*;

use crate::entry::StoredResponse;
use crate::key::{KeyParts, Varied};
use crate::options::QueryKey;

fn parts<'a>(
    path: &'a str,
    query: Option<&'a str>,
    host: Option<&'a str>,
    host_headers: &'a [&'a str],
) -> KeyParts<'a> {
    KeyParts {
        route_uri: "/<path..>",
        route_rank: 0,
        route_format: None,
        route_name: Some("any"),
        host: host.map(|domain| (domain, None)),
        host_headers,
        path,
        query,
        query_key: QueryKey::All,
        varied: &[],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Any request data gives a key of the namespace, a colon and 32 hex digits.
    #[test]
    fn any_request_gives_a_safe_key(
        path in any::<String>(),
        query in proptest::option::of(any::<String>()),
        host in proptest::option::of(any::<String>()),
        host_headers in proptest::collection::vec(any::<String>(), 0..3),
        header in proptest::collection::vec(any::<String>(), 0..4),
    ) {
        let varied = [Varied { cookie: false, name: "Accept-Language", present: !header.is_empty(),
            values: header.iter().map(String::as_str).collect() }];
        let host_headers: Vec<&str> = host_headers.iter().map(String::as_str).collect();
        let mut p = parts(&path, query.as_deref(), host.as_deref(), &host_headers);
        p.varied = &varied;
        let key = p.build("rc");
        let text = key.as_str();
        prop_assert!(text.len() == 3 + 32, "{text:?}");
        prop_assert!(text.starts_with("rc:"));
        prop_assert!(text[3..].bytes().all(|b| b.is_ascii_hexdigit()));
        prop_assert_eq!(key, p.build("rc"), "deterministic");
    }

    /// Reordering plain, distinct parameter names never changes the key; changing a value does.
    #[test]
    fn parameter_order_is_normalized(
        pairs in proptest::collection::btree_map("[a-z][a-z0-9_]{0,8}", "[a-zA-Z0-9]{0,8}", 1..12),
        rotate in 0usize..12,
    ) {
        let mut list: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let sorted = list.join("&");
        let len = list.len();
        list.rotate_left(rotate % len);
        let rotated = list.join("&");
        prop_assert_eq!(parts("/a", Some(&sorted), None, &[]).build("rc"), parts("/a", Some(&rotated), None, &[]).build("rc"));
        let changed = format!("{sorted}&zzzz_extra=1");
        prop_assert_ne!(parts("/a", Some(&sorted), None, &[]).build("rc"), parts("/a", Some(&changed), None, &[]).build("rc"));
    }

    /// Arbitrary bytes never panic the decoder; whatever decodes re-encodes to the same frame.
    #[test]
    fn arbitrary_frames_decode_or_miss(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Some(entry) = StoredResponse::decode(bytes.clone()) {
            let rebuilt = StoredResponse::build(
                entry.status(), entry.headers(), entry.body(), entry.created(), entry.ttl(),
            ).expect("a decoded entry is frameable");
            prop_assert_eq!(rebuilt.frame(), &bytes[..]);
        }
    }

    /// Mutations of a valid frame never panic the decoder.
    #[test]
    fn mutated_frames_decode_or_miss(
        position in 0usize..200,
        value in any::<u8>(),
        cut in 0usize..200,
    ) {
        let entry = StoredResponse::build(
            200, [("Content-Type", "text/plain"), ("ETag", "\"1\"")].into_iter(), b"hello", 1, 60,
        ).unwrap();
        let mut frame = entry.frame().to_vec();
        let position = position % frame.len();
        frame[position] = value;
        frame.truncate(frame.len() - cut % frame.len());
        let _ = StoredResponse::decode(frame);
    }

    /// Every valid response survives the frame unchanged.
    #[test]
    fn valid_responses_round_trip(
        status in 100u16..1000,
        headers in proptest::collection::vec(("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}", "[ -~\t]{0,40}"), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        created in any::<u64>(),
        ttl in any::<u32>(),
    ) {
        let pairs = || headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        let entry = StoredResponse::build(status, pairs(), &body, created, ttl).unwrap();
        let decoded = StoredResponse::decode(entry.frame().to_vec()).unwrap();
        prop_assert_eq!(decoded.headers().collect::<Vec<_>>(), pairs().collect::<Vec<_>>());
        prop_assert_eq!(decoded.body(), &body[..]);
        prop_assert_eq!((decoded.status(), decoded.created(), decoded.ttl()), (status, created, ttl));
    }
}
