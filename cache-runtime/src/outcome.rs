//! What a request came to, and why a response was not stored: the words the policy, the
//! request path and the counters share.

use std::fmt;

/// What a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Served {
    Hit,
    Miss,
    Stale,
    Bypass,
}

impl Served {
    /// Returns the `X-Cache` value that says so.
    pub(crate) fn x_cache(self) -> &'static str {
        match self {
            Served::Hit => "HIT",
            Served::Miss => "MISS",
            Served::Stale => "STALE",
            Served::Bypass => "BYPASS",
        }
    }
}

/// Why a response was served but not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The status is not one the route may store (default: only 200).
    Status,
    /// `Set-Cookie`: storing it would hand one client's cookie to every other client.
    SetCookie,
    /// The response's own caching headers forbid it: `Cache-Control: private`, `no-store` or
    /// `no-cache` (which asks for revalidation with the origin before every use, and this cache
    /// does not revalidate), or a lifetime already spent (`max-age=0`, `Expires` at or before
    /// `Date`, an `Age` that reaches the lifetime).
    CacheControl,
    /// `Vary` on a header the key does not include (or `Vary: *`).
    Vary,
    /// A streamed body, whose size is unknown before it is sent.
    Streamed,
    /// The response is larger than the configured item size.
    TooLarge,
    /// A header that is not a valid HTTP field, or more headers than a frame holds.
    Unframeable,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Status => "status is not cacheable",
            Refusal::SetCookie => "response sets a cookie",
            Refusal::CacheControl => "Cache-Control forbids storing or the lifetime is spent",
            Refusal::Vary => "response varies on headers outside the key",
            Refusal::Streamed => "body is streamed",
            Refusal::TooLarge => "larger than the item size limit",
            Refusal::Unframeable => "a header is not a valid HTTP field",
        })
    }
}

impl Refusal {
    /// Returns the reason as an sf-token, for `Cache-Status`'s `detail` (RFC 9211).
    pub(crate) fn token(self) -> &'static str {
        match self {
            Refusal::Status => "status",
            Refusal::SetCookie => "set-cookie",
            Refusal::CacheControl => "cache-control",
            Refusal::Vary => "vary",
            Refusal::Streamed => "streamed",
            Refusal::TooLarge => "too-large",
            Refusal::Unframeable => "unframeable",
        }
    }
}
