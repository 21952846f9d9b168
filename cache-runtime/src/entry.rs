//! The stored response: a versioned binary frame, kept whole. Header names, values and the body
//! are read in place, so serving a hit copies nothing and allocates no strings.
//!
//! Frame, all integers little-endian:
//!
//! ```text
//! "RCF" version:u8 | created:u64 (unix s) | ttl:u32 | epoch:u64 | fingerprint:u64 |
//! lineage:u64 | deps:u8 + 8 x u16 | age:u32 | stale:u32 | stale_if_error:u32 | status:u16 |
//! kind:u8 | header count:u16
//! per header: name length:u16, name, value length:u32, value | body length:u32, body
//! ```
//!
//! `kind` is 0 for a response the handler made, 1 for a handler whose responder failed with
//! `status` (`None`, `Err(Status)`): no response was made, Rocket's catcher renders one, so such
//! an entry holds no header and no body, and a hit hands `status` to the catcher again.
//!
//! The epoch, the fingerprint, the lineage and the deps (the entry's stamp) record the
//! invalidation counters the response was rendered under and which shared counters they are
//! (see `generation.rs`): an entry whose stamp no longer matches was invalidated. `created` is when the cache received the response and `ttl` how long from
//! then it is fresh; `age` is how old it already was then (RFC 9111 section 4.2.3, the
//! corrected initial age), so that a hit's `Age` counts the time before it was stored too.
//! `stale` and `stale_if_error` are the entry's own windows past `ttl`: the route's, or those
//! the response's `stale-while-revalidate` / `stale-if-error` set (RFC 5861).
//!
//! Decoding checks every length, that names are HTTP tokens and values printable, and that
//! nothing trails the body. Whatever fails (another version, a foreign writer, corruption)
//! decodes to `None`: a miss, never a panic.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::invalidation::generation::{Deps, Generation};
use crate::util::is_token;

const MAGIC: &[u8; 3] = b"RCF";
const VERSION: u8 = 6;
const FIXED_LEN: usize = 4 + 8 + 4 + 8 + 8 + 8 + Deps::ENCODED_LEN + 4 + 4 + 4 + 2 + 1 + 2 + 4;
/// Where the epoch is, for [`StoredResponse::with_epoch`].
const EPOCH_OFFSET: usize = 4 + 8 + 4;
/// Offset of the header count, for tests that corrupt it.
#[cfg(test)]
const COUNT_OFFSET: usize = 4 + 8 + 4 + 8 + 8 + 8 + Deps::ENCODED_LEN + 4 + 4 + 4 + 2 + 1;
/// What `kind` says.
const KIND_RESPONSE: u8 = 0;
const KIND_CATCHER: u8 = 1;

/// A response as stored: status, end-to-end headers, body, and when and for how long.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredResponse {
    frame: Bytes,
    status: u16,
    /// No response was made: Rocket's catcher renders `status`.
    for_catcher: bool,
    created: u64,
    ttl: u32,
    /// The namespace's invalidation epoch when it was rendered.
    epoch: u64,
    /// The invalidation counters it depends on, fingerprinted, when it was rendered.
    fingerprint: u64,
    /// Their upper halves, fingerprinted: what soft invalidations leave alone.
    lineage: u64,
    /// Which shared counters they are.
    deps: Deps,
    /// Seconds old when `created`.
    age: u32,
    /// Seconds past `ttl` it may be served while one request refreshes it.
    stale: u32,
    /// Seconds past `ttl` it may stand in for a failing handler.
    stale_if_error: u32,
    /// Name and value ranges within `frame`, in response order; repeated names stay repeated.
    headers: Vec<(Range<usize>, Range<usize>)>,
    body: Range<usize>,
}

impl fmt::Debug for StoredResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredResponse")
            .field("status", &self.status)
            .field("for_catcher", &self.for_catcher)
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("created", &self.created)
            .field("ttl", &self.ttl)
            .field("age", &self.age)
            .field("stale", &self.stale)
            .field("stale_if_error", &self.stale_if_error)
            .field("epoch", &self.epoch)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// When a stored response was received and how long it may be used: fresh for `ttl` seconds
/// from `created` (it arrived `age` seconds old), then served stale while refreshed for
/// `stale` more, and standing in for a failing handler for `stale_if_error` more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lifetime {
    pub(crate) created: u64,
    pub(crate) ttl: u32,
    pub(crate) age: u32,
    pub(crate) stale: u32,
    pub(crate) stale_if_error: u32,
}

impl Lifetime {
    /// Returns a lifetime fresh for `ttl` seconds from `created`, with no age and no stale
    /// windows.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn fresh(created: u64, ttl: u32) -> Lifetime {
        Lifetime {
            created,
            ttl,
            ..Lifetime::default()
        }
    }
}

/// A response that cannot be framed: a count or length over its field, or a header that is not
/// a valid HTTP field (which no reader would accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unframeable;

impl StoredResponse {
    /// Returns the entry framed again from what it reads as: a decoded frame that says exactly
    /// what its bytes say gives them back.
    #[cfg(test)]
    pub(crate) fn reframed(&self) -> StoredResponse {
        let lifetime = Lifetime {
            created: self.created(),
            ttl: self.ttl(),
            age: self.initial_age(),
            stale: self.stale(),
            stale_if_error: self.stale_if_error(),
        };
        match self.for_catcher() {
            Some(status) => StoredResponse::catcher_page(status, lifetime, self.generation()),
            None => {
                let (status, headers, body) = (self.status(), self.headers(), self.body());
                StoredResponse::response(status, headers, body, lifetime, self.generation())
            }
        }
        .expect("a decoded entry frames again")
    }

    /// Returns the frame's length for these parts, known before building it.
    pub fn frame_len<'h>(
        headers: impl Iterator<Item = (&'h str, &'h str)>,
        body_len: usize,
    ) -> usize {
        FIXED_LEN
            + headers
                .map(|(n, v)| 2 + n.len() + 4 + v.len())
                .sum::<usize>()
            + body_len
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Frames a response fresh for `ttl` seconds from `created`, with no invalidation stamp.
    pub fn build<'h>(
        status: u16,
        headers: impl Iterator<Item = (&'h str, &'h str)> + Clone,
        body: &[u8],
        created: u64,
        ttl: u32,
    ) -> Result<StoredResponse, Unframeable> {
        let lifetime = Lifetime::fresh(created, ttl);
        StoredResponse::response(status, headers, body, lifetime, Generation::default())
    }

    /// Frames a response that lives `lifetime`, rendered under `stamp` (the invalidation epoch
    /// and counters).
    pub(crate) fn response<'h>(
        status: u16,
        headers: impl Iterator<Item = (&'h str, &'h str)> + Clone,
        body: &[u8],
        lifetime: Lifetime,
        stamp: Generation,
    ) -> Result<StoredResponse, Unframeable> {
        StoredResponse::encode(KIND_RESPONSE, status, headers, body, lifetime, stamp)
    }

    /// Frames a handler whose responder failed with `status`, for Rocket's catcher to render on
    /// every hit as it did on the miss.
    pub(crate) fn catcher_page(
        status: u16,
        lifetime: Lifetime,
        stamp: Generation,
    ) -> Result<StoredResponse, Unframeable> {
        let no_headers = std::iter::empty();
        StoredResponse::encode(KIND_CATCHER, status, no_headers, &[], lifetime, stamp)
    }

    fn encode<'h>(
        kind: u8,
        status: u16,
        headers: impl Iterator<Item = (&'h str, &'h str)> + Clone,
        body: &[u8],
        lifetime: Lifetime,
        stamp: Generation,
    ) -> Result<StoredResponse, Unframeable> {
        let Lifetime {
            created,
            ttl,
            age,
            stale,
            stale_if_error,
        } = lifetime;
        let count = u16::try_from(headers.clone().count()).map_err(|_| Unframeable)?;
        let body_len = u32::try_from(body.len()).map_err(|_| Unframeable)?;
        let mut out = Vec::with_capacity(StoredResponse::frame_len(headers.clone(), body.len()));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&created.to_le_bytes());
        out.extend_from_slice(&ttl.to_le_bytes());
        out.extend_from_slice(&stamp.epoch.to_le_bytes());
        out.extend_from_slice(&stamp.fingerprint.to_le_bytes());
        out.extend_from_slice(&stamp.lineage.to_le_bytes());
        stamp.deps.encode(&mut out);
        out.extend_from_slice(&age.to_le_bytes());
        out.extend_from_slice(&stale.to_le_bytes());
        out.extend_from_slice(&stale_if_error.to_le_bytes());
        out.extend_from_slice(&status.to_le_bytes());
        out.push(kind);
        out.extend_from_slice(&count.to_le_bytes());
        for (name, value) in headers {
            out.extend_from_slice(
                &u16::try_from(name.len())
                    .map_err(|_| Unframeable)?
                    .to_le_bytes(),
            );
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(
                &u32::try_from(value.len())
                    .map_err(|_| Unframeable)?
                    .to_le_bytes(),
            );
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(&body_len.to_le_bytes());
        out.extend_from_slice(body);
        // Parsing what was just written records the ranges and applies the same checks a
        // reader will (a header value with CR/LF is refused here, not stored and then missed).
        StoredResponse::decode(out).ok_or(Unframeable)
    }

    /// Decodes a frame, keeping it whole.
    pub fn decode(frame: impl Into<Bytes>) -> Option<StoredResponse> {
        let frame: Bytes = frame.into();
        let mut reader = Reader {
            buf: &frame,
            pos: 0,
        };
        if reader.take(3)? != MAGIC || reader.u8()? != VERSION {
            return None;
        }
        let created = reader.u64()?;
        let ttl = reader.u32()?;
        let epoch = reader.u64()?;
        let fingerprint = reader.u64()?;
        let lineage = reader.u64()?;
        let deps = Deps::decode(reader.take(Deps::ENCODED_LEN)?.try_into().ok()?)?;
        let age = reader.u32()?;
        let stale = reader.u32()?;
        let stale_if_error = reader.u32()?;
        let status = reader.u16()?;
        if !(100..=999).contains(&status) {
            return None;
        }
        let for_catcher = match reader.u8()? {
            KIND_RESPONSE => false,
            KIND_CATCHER => true,
            _ => return None,
        };
        let count = reader.u16()? as usize;
        // Each header takes at least 7 bytes: a claimed count the frame cannot hold is corrupt.
        if count * 7 > reader.remaining() {
            return None;
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let name_len = reader.u16()? as usize;
            let name = reader.range(name_len)?;
            let value_len = reader.u32()? as usize;
            let value = reader.range(value_len)?;
            let name_ok = std::str::from_utf8(&frame[name.clone()]).is_ok_and(is_token);
            let value_ok = std::str::from_utf8(&frame[value.clone()]).is_ok_and(is_field_value);
            if !name_ok || !value_ok {
                return None;
            }
            headers.push((name, value));
        }
        let body_len = reader.u32()? as usize;
        let body = reader.range(body_len)?;
        if reader.remaining() != 0 || (for_catcher && !(headers.is_empty() && body.is_empty())) {
            return None;
        }
        Some(StoredResponse {
            frame,
            status,
            for_catcher,
            created,
            ttl,
            epoch,
            fingerprint,
            lineage,
            deps,
            age,
            stale,
            stale_if_error,
            headers,
            body,
        })
    }

    /// Returns the encoded frame, as stored.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// Returns the status Rocket's catcher renders, when the handler's responder failed with it
    /// instead of making a response.
    pub fn for_catcher(&self) -> Option<u16> {
        self.for_catcher.then_some(self.status)
    }

    /// Returns the Unix time, in seconds, when the cache received the response.
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Returns seconds from `created` during which the entry is fresh.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    #[cfg(any(test, feature = "test-hooks"))]
    /// Returns how old the response already was when received, in seconds.
    pub fn initial_age(&self) -> u32 {
        self.age
    }

    /// Returns seconds past its ttl it may be served while one request refreshes it.
    pub fn stale(&self) -> u32 {
        self.stale
    }

    /// Returns seconds past its ttl it may stand in for a failing handler.
    pub fn stale_if_error(&self) -> u32 {
        self.stale_if_error
    }

    /// Returns how long it is kept past its ttl: the longer of its two windows.
    pub(crate) fn keep(&self) -> u32 {
        self.stale.max(self.stale_if_error)
    }

    /// Returns its `Age` at `now` (unix seconds): the age it arrived with plus the time since
    /// (RFC 9111 section 4.2.3, `current_age`).
    pub fn age_at(&self, now: u64) -> u64 {
        u64::from(self.age).saturating_add(now.saturating_sub(self.created))
    }

    /// Returns the invalidation epoch and counters it was rendered under.
    pub(crate) fn generation(&self) -> Generation {
        Generation {
            epoch: self.epoch,
            fingerprint: self.fingerprint,
            lineage: self.lineage,
            deps: self.deps,
        }
    }

    /// Returns the same entry, recorded as still valid in `epoch` (a copy of the frame).
    pub(crate) fn with_epoch(&self, epoch: u64) -> StoredResponse {
        let mut frame = self.frame.to_vec();
        frame[EPOCH_OFFSET..EPOCH_OFFSET + 8].copy_from_slice(&epoch.to_le_bytes());
        StoredResponse {
            frame: frame.into(),
            epoch,
            headers: self.headers.clone(),
            body: self.body.clone(),
            ..*self
        }
    }

    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.headers
            .iter()
            .map(|(name, value)| (self.text(name.clone()), self.text(value.clone())))
    }

    pub fn body(&self) -> &[u8] {
        &self.frame[self.body.clone()]
    }

    /// Returns the body, sharing the frame's allocation.
    pub fn body_bytes(&self) -> Bytes {
        self.frame.slice(self.body.clone())
    }

    fn text(&self, range: Range<usize>) -> &str {
        // Checked when the frame was decoded; the fallback is never reached.
        std::str::from_utf8(&self.frame[range]).unwrap_or("")
    }
}

/// Returns whether `value` is an HTTP field value: visible characters, spaces and tabs, no CR, LF
/// or NUL.
pub(crate) fn is_field_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn range(&mut self, n: usize) -> Option<Range<usize>> {
        let start = self.pos;
        let end = start.checked_add(n).filter(|end| *end <= self.buf.len())?;
        self.pos = end;
        Some(start..end)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let range = self.range(n)?;
        Some(&self.buf[range])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: [(&str, &str); 3] = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("X-Custom", "a"),
        ("X-Custom", "b"),
    ];

    fn sample() -> StoredResponse {
        let lifetime = Lifetime {
            created: 1_700_000_000,
            ttl: 60,
            age: 40,
            stale: 30,
            stale_if_error: 3600,
        };
        StoredResponse::response(
            200,
            HEADERS.into_iter(),
            b"<h1>hello</h1>",
            lifetime,
            Generation {
                epoch: 0xfeed,
                fingerprint: 0x0123_4567_89ab_cdef,
                lineage: 0x0fed_cba9_8765_4321,
                deps: Deps::default(),
            },
        )
        .unwrap()
    }

    #[test]
    fn frames_round_trip() {
        let entry = sample();
        assert_eq!(entry.status(), 200);
        assert_eq!(entry.created(), 1_700_000_000);
        assert_eq!(entry.initial_age(), 40);
        assert_eq!(
            entry.age_at(1_700_000_005),
            45,
            "the age it came with, plus time stored"
        );
        assert_eq!(entry.age_at(0), 40, "a clock set back never lowers it");
        assert_eq!(entry.generation().fingerprint, 0x0123_4567_89ab_cdef);
        assert_eq!(entry.generation().epoch, 0xfeed);
        let moved = entry.with_epoch(7);
        assert_eq!(moved.generation().epoch, 7);
        assert_eq!(moved.initial_age(), 40);
        assert_eq!(
            StoredResponse::decode(moved.frame().to_vec()),
            Some(moved.clone())
        );
        assert_eq!(
            (moved.generation().fingerprint, moved.body()),
            (entry.generation().fingerprint, entry.body())
        );
        assert_eq!(entry.ttl(), 60);
        assert_eq!((entry.stale(), entry.stale_if_error()), (30, 3600));
        assert_eq!(
            (moved.stale(), moved.stale_if_error(), moved.keep()),
            (30, 3600, 3600)
        );
        assert_eq!(entry.headers().collect::<Vec<_>>(), HEADERS);
        assert_eq!(entry.body(), b"<h1>hello</h1>");
        assert_eq!(
            entry.frame().len(),
            StoredResponse::frame_len(HEADERS.into_iter(), 14)
        );
        let decoded = StoredResponse::decode(entry.frame().to_vec()).unwrap();
        assert_eq!(decoded, entry);
        assert_eq!(&decoded.body_bytes()[..], b"<h1>hello</h1>");
    }

    #[test]
    fn every_truncation_and_extension_is_a_miss() {
        let frame = sample().frame().to_vec();
        for len in 0..frame.len() {
            assert_eq!(
                StoredResponse::decode(frame[..len].to_vec()),
                None,
                "prefix {len}"
            );
        }
        let mut longer = frame.clone();
        longer.push(0);
        assert_eq!(StoredResponse::decode(longer), None);
    }

    #[test]
    fn other_versions_and_foreign_values_are_misses() {
        for version in [VERSION - 1, VERSION + 1] {
            let mut frame = sample().frame().to_vec();
            frame[3] = version;
            assert_eq!(StoredResponse::decode(frame), None);
        }
        assert_eq!(StoredResponse::decode(b"hello world".to_vec()), None);
        assert_eq!(StoredResponse::decode(Vec::new()), None);
    }

    #[test]
    fn headers_that_could_inject_are_refused_when_built_and_when_read() {
        let injected = [("Content-Type", "evil\r\nSet-Cookie: a=b")];
        assert_eq!(
            StoredResponse::build(200, injected.into_iter(), b"", 0, 60),
            Err(Unframeable)
        );
        let bad_name = [("Bad Name", "x")];
        assert_eq!(
            StoredResponse::build(200, bad_name.into_iter(), b"", 0, 60),
            Err(Unframeable)
        );
        // A frame written by someone else with the same flaws.
        let mut frame = sample().frame().to_vec();
        let at = frame.windows(4).position(|w| w == b"text").unwrap();
        frame[at] = b'\n';
        assert_eq!(StoredResponse::decode(frame), None);
    }

    #[test]
    fn a_hostile_header_count_is_a_miss() {
        let mut frame = sample().frame().to_vec();
        frame[COUNT_OFFSET..COUNT_OFFSET + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(StoredResponse::decode(frame), None);
    }

    fn caught() -> StoredResponse {
        let stamp = Generation {
            epoch: 3,
            fingerprint: 0x0123_4567_89ab_cdef,
            lineage: 0x0fed_cba9_8765_4321,
            deps: Deps::default(),
        };
        let lifetime = Lifetime {
            created: 1_700_000_000,
            ttl: 30,
            age: 2,
            stale: 7,
            stale_if_error: 9,
        };
        StoredResponse::catcher_page(404, lifetime, stamp).unwrap()
    }

    #[test]
    fn an_entry_for_the_catcher_round_trips_and_says_so() {
        let entry = caught();
        assert_eq!((entry.status(), entry.for_catcher()), (404, Some(404)));
        assert_eq!(sample().for_catcher(), None);
        assert_eq!((entry.ttl(), entry.initial_age()), (30, 2));
        assert_eq!((entry.headers().count(), entry.body()), (0, &b""[..]));
        assert_eq!(
            entry.frame().len(),
            StoredResponse::frame_len(std::iter::empty(), 0)
        );
        let decoded = StoredResponse::decode(entry.frame().to_vec()).unwrap();
        assert_eq!(decoded, entry);
        let moved = entry.with_epoch(9);
        assert_eq!(
            (moved.generation().epoch, moved.for_catcher()),
            (9, Some(404))
        );
        // The same status, made by the handler with no header and no body, is another entry.
        let lifetime = Lifetime {
            age: 2,
            ..Lifetime::fresh(1, 30)
        };
        let made =
            StoredResponse::response(404, std::iter::empty(), b"", lifetime, entry.generation());
        assert_eq!(made.unwrap().for_catcher(), None);
    }

    /// A frame that says "for the catcher" and carries a header or a body is no writer's: a miss.
    #[test]
    fn an_entry_for_the_catcher_with_a_header_or_a_body_is_a_miss() {
        let kind_at = COUNT_OFFSET - 1;
        let mut with_headers = sample().frame().to_vec();
        with_headers[kind_at] = KIND_CATCHER;
        assert_eq!(StoredResponse::decode(with_headers), None);
        let no_headers = StoredResponse::response(
            404,
            std::iter::empty(),
            b"x",
            Lifetime::fresh(1, 30),
            Generation::default(),
        );
        let mut with_body = no_headers.unwrap().frame().to_vec();
        with_body[kind_at] = KIND_CATCHER;
        assert_eq!(StoredResponse::decode(with_body), None);
        let mut unknown = caught().frame().to_vec();
        unknown[kind_at] = 2;
        assert_eq!(StoredResponse::decode(unknown), None);
    }

    /// Every single-bit flip of a valid frame (one the handler made, one for the catcher): in
    /// the magic or the version, a miss; otherwise either a miss or an entry that is exactly
    /// what the flipped bytes say (framed again, it gives those bytes back), and a flip in the
    /// body reads back as that body byte changed.
    #[test]
    fn every_single_bit_flip_decodes_exactly_or_misses() {
        for original in [sample(), caught()] {
            let frame = original.frame().to_vec();
            let body_at = frame.len() - original.body().len();
            let mut decoded = 0;
            for i in 0..frame.len() {
                for bit in 0..8 {
                    let mut copy = frame.clone();
                    copy[i] ^= 1 << bit;
                    let Some(entry) = StoredResponse::decode(copy.clone()) else {
                        continue;
                    };
                    decoded += 1;
                    assert!(i > MAGIC.len(), "a flip in the magic or version decoded");
                    assert_eq!(entry.reframed().frame(), &copy[..], "byte {i} bit {bit}");
                    if i >= body_at {
                        assert_eq!(entry.body()[i - body_at], frame[i] ^ (1 << bit));
                    }
                }
            }
            // The fixed fields and the body hold most bits: most flips decode.
            assert!(
                decoded > frame.len() * 8 / 2,
                "{decoded} of {} flips",
                frame.len() * 8
            );
        }
    }
}
