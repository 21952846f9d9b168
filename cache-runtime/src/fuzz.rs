//! Property-based fuzzing (proptest) of the two places hostile bytes reach: the key builder
//! (request data) and frame decoding (whatever a Memcached server returns).

use proptest::prelude::*;

use crate::entry::{Lifetime, StoredResponse};
use crate::invalidation::generation::{Deps, Generation};
use crate::key::{KeyParts, Varied};

fn parts<'a>(
    path: &'a str,
    query: Option<&'a str>,
    host: Option<&'a str>,
    host_headers: &'a [&'a str],
) -> KeyParts<'a> {
    KeyParts {
        route_name: Some("any"),
        host: host.map(|domain| (domain, None)),
        host_headers,
        query,
        ..KeyParts::fixture("/<path..>", path)
    }
}

/// What a handler can read from `query`, as Rocket parses it: each field (the name decoded,
/// `+` as a space, up to its first `.` or `[`, by Rocket's own `NameView`) with the raw pairs
/// that belong to it, in the order received. Two queries with the same view are the same page.
fn rocket_view(query: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut view: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let name = pair.split('=').next().unwrap_or("").replace('+', " ");
        let decoded = rocket::http::RawStr::new(&name).url_decode_lossy();
        let field = rocket::form::name::NameView::new(decoded.as_ref())
            .key_lossy()
            .as_str()
            .to_owned();
        view.entry(field).or_default().push(pair.to_owned());
    }
    view
}

/// Any entry the builders accept: status, token header names with field values, body, times
/// and stamp; one in eight is a responder's failure, for the catcher (no header, no body).
fn entry() -> impl Strategy<Value = StoredResponse> {
    (
        100u16..1000,
        proptest::collection::vec(("[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}", "[ -~]{0,24}"), 0..5),
        proptest::collection::vec(any::<u8>(), 0..64),
        (
            any::<(u64, u32, u32)>(),
            any::<(u32, u32)>(),
            any::<(u64, u64, u64)>(),
        ),
        0u8..8,
    )
        .prop_map(
            |(status, headers, body, (times, windows, (epoch, fingerprint, lineage)), kind)| {
                let pairs = headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                let stamp = Generation {
                    epoch,
                    fingerprint,
                    lineage,
                    deps: Deps::default(),
                };
                let ((created, ttl, age), (stale, stale_if_error)) = (times, windows);
                let lifetime = Lifetime {
                    created,
                    ttl,
                    age,
                    stale,
                    stale_if_error,
                };
                match kind {
                    0 => StoredResponse::catcher_page(status, lifetime, stamp),
                    _ => StoredResponse::response(status, pairs, &body, lifetime, stamp),
                }
                .expect("valid parts frame")
            },
        )
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
        // One value changed (a character appended to the first pair's value).
        let changed = {
            let mut pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs[0].push('x');
            pairs.join("&")
        };
        prop_assert_ne!(parts("/a", Some(&sorted), None, &[]).build("rc"), parts("/a", Some(&changed), None, &[]).build("rc"));
    }

    /// Query pairs spelled with what the normalisation must read as Rocket does (`%`, `+`, `.`,
    /// `[`, `]`, `:`, both cases), in any two orders: the key is the same only when every field
    /// Rocket reads sees the same pairs in the same order (order between fields may differ, and
    /// the key may split more than that, never less). The oracle is Rocket's own name parser.
    #[test]
    fn reordered_queries_share_a_key_only_when_rocket_reads_the_same(
        pairs in proptest::collection::vec(("[aAbB%+.\\[\\]:0-9]{1,5}", "[ab0-9%+]{0,3}"), 1..7),
        swaps in proptest::collection::vec((0usize..7, 0usize..7), 0..4),
    ) {
        let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut reordered = raw.clone();
        for (i, j) in swaps {
            let len = reordered.len();
            reordered.swap(i % len, j % len);
        }
        let (first, second) = (raw.join("&"), reordered.join("&"));
        let key = |query: &str| parts("/a", Some(query), None, &[]).build("rc");
        if key(&first) == key(&second) {
            prop_assert_eq!(rocket_view(&first), rocket_view(&second), "{} / {}", first, second);
        }
        // A value changed in one pair always changes the key.
        let mut changed = raw.clone();
        changed[0].push('x');
        prop_assert_ne!(key(&first), key(&changed.join("&")));
    }

    /// Valid frames with bytes flipped anywhere never panic the decoder, and whatever decodes
    /// is consistent: re-encoded, stamp included, it is exactly the bytes read (a flip in the
    /// body or in a fixed field decodes; one in a length or a name mostly does not).
    #[test]
    fn mutated_frames_decode_consistently_or_miss(
        entry in entry(),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 1u8..), 1..4),
    ) {
        let mut frame = entry.frame().to_vec();
        for (index, mask) in flips {
            let at = index.index(frame.len());
            frame[at] ^= mask;
        }
        if let Some(decoded) = StoredResponse::decode(frame.clone()) {
            prop_assert_eq!(decoded.reframed().frame().to_vec(), frame);
        }
    }

    /// The fixed fields (creation time, TTL, stamp, initial age) rewritten to any value decode and read back
    /// as written, with the status, headers and body untouched.
    #[test]
    fn rewritten_fields_read_back(
        entry in entry(),
        created in any::<u64>(),
        ttl in any::<u32>(),
        epoch in any::<u64>(),
        fingerprint in any::<u64>(),
        lineage in any::<u64>(),
        age in any::<u32>(),
    ) {
        let mut frame = entry.frame().to_vec();
        frame[4..12].copy_from_slice(&created.to_le_bytes());
        frame[12..16].copy_from_slice(&ttl.to_le_bytes());
        frame[16..24].copy_from_slice(&epoch.to_le_bytes());
        frame[24..32].copy_from_slice(&fingerprint.to_le_bytes());
        frame[32..40].copy_from_slice(&lineage.to_le_bytes());
        frame[40 + Deps::ENCODED_LEN..44 + Deps::ENCODED_LEN].copy_from_slice(&age.to_le_bytes());
        let decoded = StoredResponse::decode(frame);
        prop_assert!(decoded.is_some(), "a frame with rewritten fixed fields did not decode");
        let decoded = decoded.unwrap();
        prop_assert_eq!((decoded.created(), decoded.ttl(), decoded.initial_age()), (created, ttl, age));
        prop_assert_eq!(decoded.generation(), Generation { epoch, fingerprint, lineage, deps: entry.generation().deps });
        prop_assert_eq!((decoded.status(), decoded.for_catcher()), (entry.status(), entry.for_catcher()));
        prop_assert_eq!(decoded.headers().collect::<Vec<_>>(), entry.headers().collect::<Vec<_>>());
        prop_assert_eq!(decoded.body(), entry.body());
    }

    /// A body byte changed (the frame has no checksum) decodes with exactly that byte changed;
    /// a frame cut short or extended never decodes.
    #[test]
    fn body_changes_read_back_and_length_changes_miss(
        entry in entry(),
        index in any::<proptest::sample::Index>(),
        mask in 1u8..,
        cut in any::<proptest::sample::Index>(),
        extra in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        let frame = entry.frame().to_vec();
        if !entry.body().is_empty() {
            let at = index.index(entry.body().len());
            let mut changed = frame.clone();
            changed[frame.len() - entry.body().len() + at] ^= mask;
            let decoded = StoredResponse::decode(changed);
            prop_assert!(decoded.is_some(), "a frame with a changed body byte did not decode");
            let decoded = decoded.unwrap();
            let mut body = entry.body().to_vec();
            body[at] ^= mask;
            prop_assert_eq!(decoded.body(), &body[..]);
        }
        let short = frame[..cut.index(frame.len())].to_vec();
        prop_assert!(StoredResponse::decode(short).is_none());
        let mut long = frame.clone();
        long.extend_from_slice(&extra);
        prop_assert!(StoredResponse::decode(long).is_none());
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
