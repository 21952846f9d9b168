//! Small rules several layers share, each written once: lowercase hex, the process's monotonic
//! clock, and what an HTTP token is.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use once_cell::sync::Lazy;

/// Returns the first `N / 2` bytes of `bytes` as `N` lowercase hex digits.
pub(crate) fn hex<const N: usize>(bytes: &[u8]) -> [u8; N] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; N];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    out
}

/// Returns milliseconds on a monotonic clock, plus one, so that 0 can stand for "never". Wall
/// time may jump; deadlines and intervals measured on it must not.
pub(crate) fn monotonic_ms() -> u64 {
    static START: Lazy<Instant> = Lazy::new(Instant::now);
    START.elapsed().as_millis() as u64 + 1
}

/// Returns whether `name` is an HTTP field name (RFC 9110 token).
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Returns wall-clock seconds since the Unix epoch (0 before it): what entries' ages are measured
/// in.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(&hex::<8>(&[0x01, 0xab, 0xff, 0x10, 0x99]), b"01abff10");
    }
}
