//! The stored response and its versioned binary frame.
//!
//! Frame, all integers little-endian:
//!
//! ```text
//! "RCF" version:u8 | created:u64 (unix s) | ttl:u32 | status:u16 | header count:u16
//! per header: name length:u16, name, value length:u32, value | body length:u32, body
//! ```
//!
//! Decoding checks every length, that names are HTTP tokens and values printable, and that
//! nothing trails the body. Whatever fails (another version, a foreign writer, corruption)
//! decodes to `None`: a miss, never a panic.

use bytes::Bytes;

const MAGIC: &[u8; 3] = b"RCF";
const VERSION: u8 = 1;
const FIXED_LEN: usize = 4 + 8 + 4 + 2 + 2 + 4;

/// A response as stored: status, end-to-end headers, body, and when and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// Header names and values in response order; repeated names stay repeated.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// Unix time, in seconds, when the response was produced.
    pub created: u64,
    pub ttl: u32,
}

impl StoredResponse {
    /// The encoded length, known before encoding (to refuse oversized entries cheaply).
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN
            + self
                .headers
                .iter()
                .map(|(n, v)| 2 + n.len() + 4 + v.len())
                .sum::<usize>()
            + self.body.len()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.created.to_le_bytes());
        out.extend_from_slice(&self.ttl.to_le_bytes());
        out.extend_from_slice(&self.status.to_le_bytes());
        // Header counts and lengths are bounded by construction (see `policy`), but saturating
        // here would corrupt the frame silently: the builder refuses such responses instead.
        out.extend_from_slice(&(self.headers.len() as u16).to_le_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(&(self.body.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Decodes a frame; the body shares `frame`'s allocation.
    pub fn decode(frame: Vec<u8>) -> Option<StoredResponse> {
        let frame = Bytes::from(frame);
        let mut reader = Reader {
            buf: &frame,
            pos: 0,
        };
        if reader.take(3)? != MAGIC || reader.u8()? != VERSION {
            return None;
        }
        let created = reader.u64()?;
        let ttl = reader.u32()?;
        let status = reader.u16()?;
        if !(100..=999).contains(&status) {
            return None;
        }
        let count = reader.u16()? as usize;
        // Each header takes at least 7 bytes: a claimed count the frame cannot hold is corrupt,
        // and checking it first keeps a hostile count from reserving memory.
        if count * 7 > reader.remaining() {
            return None;
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            let name_len = reader.u16()? as usize;
            let name = std::str::from_utf8(reader.take(name_len)?).ok()?;
            let value_len = reader.u32()? as usize;
            let value = std::str::from_utf8(reader.take(value_len)?).ok()?;
            if !is_token(name) || !is_field_value(value) {
                return None;
            }
            headers.push((name.to_owned(), value.to_owned()));
        }
        let body_len = reader.u32()? as usize;
        let start = reader.pos;
        reader.take(body_len)?;
        if reader.remaining() != 0 {
            return None;
        }
        Some(StoredResponse {
            status,
            headers,
            body: frame.slice(start..start + body_len),
            created,
            ttl,
        })
    }
}

/// An HTTP field name (RFC 9110 token).
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// An HTTP field value: visible characters, spaces and tabs, no CR, LF or NUL.
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

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
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

    fn sample() -> StoredResponse {
        StoredResponse {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/html; charset=utf-8".into()),
                ("X-Custom".into(), "a".into()),
                ("X-Custom".into(), "b".into()),
            ],
            body: Bytes::from_static(b"<h1>hello</h1>"),
            created: 1_700_000_000,
            ttl: 60,
        }
    }

    #[test]
    fn frames_round_trip() {
        let entry = sample();
        let frame = entry.encode();
        assert_eq!(frame.len(), entry.encoded_len());
        assert_eq!(StoredResponse::decode(frame), Some(entry));
    }

    #[test]
    fn every_truncation_and_extension_is_a_miss() {
        let frame = sample().encode();
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
        let mut frame = sample().encode();
        frame[3] = 2;
        assert_eq!(StoredResponse::decode(frame), None);
        assert_eq!(StoredResponse::decode(b"hello world".to_vec()), None);
        assert_eq!(StoredResponse::decode(Vec::new()), None);
    }

    #[test]
    fn corrupt_headers_are_misses() {
        let mut entry = sample();
        entry.headers[0].1 = "evil\r\nSet-Cookie: a=b".into();
        assert_eq!(StoredResponse::decode(entry.encode()), None);
        let mut entry = sample();
        entry.headers[0].0 = "Bad Name".into();
        assert_eq!(StoredResponse::decode(entry.encode()), None);
    }

    #[test]
    fn a_hostile_header_count_is_a_miss() {
        let mut frame = sample().encode();
        frame[18..20].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(StoredResponse::decode(frame), None);
    }

    #[test]
    fn every_single_byte_flip_decodes_or_misses_without_panicking() {
        let frame = sample().encode();
        for i in 0..frame.len() {
            for bit in 0..8 {
                let mut copy = frame.clone();
                copy[i] ^= 1 << bit;
                let _ = StoredResponse::decode(copy);
            }
        }
    }
}
