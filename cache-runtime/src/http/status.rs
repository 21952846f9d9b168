//! `Cache-Status` (RFC 9211): how the cache handled a request, as one member of a Structured
//! Fields list (RFC 8941) named after the cache, for example `rocket-route-cache; hit; ttl=42`
//! or `rocket-route-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60`.

use std::fmt::Write;

/// Why a request went to the handler (RFC 9211 section 2.2, `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardReason {
    /// The cache was told not to handle it: a per-principal request, or a key in hit-for-pass.
    Bypass,
    /// Nothing was stored under the key.
    UriMiss,
    /// The lookup failed: whether something was stored is unknown.
    Miss,
    /// The client asked for a fresh response (`no-cache`).
    Request,
    /// An entry was there, expired.
    Stale,
}

impl ForwardReason {
    fn token(self) -> &'static str {
        match self {
            ForwardReason::Bypass => "bypass",
            ForwardReason::UriMiss => "uri-miss",
            ForwardReason::Miss => "miss",
            ForwardReason::Request => "request",
            ForwardReason::Stale => "stale",
        }
    }
}

/// A request that went forward (to the handler, or to another request running it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Forwarded {
    pub(crate) fwd: ForwardReason,
    /// The status the handler produced (a 304 sent to the client says 200 here).
    pub(crate) status: u16,
    /// The response was written to the cache.
    pub(crate) stored: bool,
    /// The response is another request's, which this one waited for.
    pub(crate) collapsed: bool,
    /// Seconds of freshness left in what was served, when it comes from an entry.
    pub(crate) ttl: Option<i64>,
    /// Why it was not stored, as a token.
    pub(crate) detail: Option<&'static str>,
}

/// The tokens `detail` carries besides [`Refusal::token`].
pub(crate) mod detail {
    /// The key was recently found not storable: the request did not wait for another.
    pub(crate) const HIT_FOR_PASS: &str = "hit-for-pass";
    /// The request carried `Authorization` on a route not declared public.
    pub(crate) const AUTHORIZATION: &str = "authorization";
    /// The lookup failed, so the store was not tried either.
    pub(crate) const BACKEND_ERROR: &str = "backend-error";
    /// Storable, but the backend did not take it.
    pub(crate) const STORE_FAILED: &str = "store-failed";
    /// The client's `Cache-Control: no-store`.
    pub(crate) const REQUEST_NO_STORE: &str = "request-no-store";
    /// The configuration switched the cache off (`enabled = false`).
    pub(crate) const DISABLED: &str = "disabled";
}

/// The cache's `Cache-Status` member, built once per cache: a hit only appends its `ttl`.
#[derive(Debug, Clone)]
pub(crate) struct CacheStatus {
    /// The text `{name}; hit; ttl=`.
    hit: Box<str>,
    /// How long the name is in `hit`.
    name: usize,
}

impl CacheStatus {
    /// Builds the member for a cache named `name` (checked by `Config::validate`).
    pub(crate) fn new(name: &str) -> CacheStatus {
        let mut hit = String::new();
        push_item(&mut hit, name);
        let name = hit.len();
        hit.push_str("; hit; ttl=");
        CacheStatus {
            hit: hit.into(),
            name,
        }
    }

    /// Returns the member for a response served from the cache with `ttl` seconds of freshness
    /// left (negative once stale).
    pub(crate) fn hit(&self, ttl: i64) -> String {
        let mut value = String::with_capacity(self.hit.len() + 8);
        value.push_str(&self.hit);
        let _ = write!(value, "{ttl}");
        value
    }

    /// Returns the member for a response the handler produced for this request or for the one it
    /// waited on.
    pub(crate) fn forwarded(&self, forwarded: &Forwarded) -> String {
        let mut value = String::with_capacity(self.name + 64);
        value.push_str(&self.hit[..self.name]);
        let _ = write!(
            value,
            "; fwd={}; fwd-status={}",
            forwarded.fwd.token(),
            forwarded.status
        );
        if forwarded.stored {
            value.push_str("; stored");
        }
        if forwarded.collapsed {
            value.push_str("; collapsed");
        }
        if let Some(ttl) = forwarded.ttl {
            let _ = write!(value, "; ttl={ttl}");
        }
        if let Some(detail) = forwarded.detail {
            value.push_str("; detail=");
            value.push_str(detail);
        }
        value
    }
}

/// Appends `text` as an sf-token when it is one (`rocket-route-cache`), else as an sf-string.
fn push_item(out: &mut String, text: &str) {
    if is_token(text) {
        out.push_str(text);
        return;
    }
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Returns whether `text` is a token (RFC 8941 section 3.3.4):
/// `( ALPHA / "*" ) *( tchar / ":" / "/" )`.
fn is_token(text: &str) -> bool {
    let mut bytes = text.bytes();
    let first = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'*');
    first && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Refusal;

    fn forwarded(fwd: ForwardReason) -> Forwarded {
        Forwarded {
            fwd,
            status: 200,
            stored: false,
            collapsed: false,
            ttl: None,
            detail: None,
        }
    }

    #[test]
    fn members_are_structured_field_list_members() {
        let status = CacheStatus::new("rocket-route-cache");
        assert_eq!(status.hit(42), "rocket-route-cache; hit; ttl=42");
        assert_eq!(status.hit(-3), "rocket-route-cache; hit; ttl=-3");
        let stored = Forwarded {
            stored: true,
            ttl: Some(60),
            ..forwarded(ForwardReason::UriMiss)
        };
        assert_eq!(
            status.forwarded(&stored),
            "rocket-route-cache; fwd=uri-miss; fwd-status=200; stored; ttl=60"
        );
        let refused = Forwarded {
            detail: Some(Refusal::SetCookie.token()),
            ..forwarded(ForwardReason::Bypass)
        };
        assert_eq!(
            status.forwarded(&refused),
            "rocket-route-cache; fwd=bypass; fwd-status=200; detail=set-cookie"
        );
    }

    #[test]
    fn a_name_that_is_not_a_token_is_a_quoted_string() {
        assert_eq!(CacheStatus::new("edge/1:a").hit(1), "edge/1:a; hit; ttl=1");
        assert_eq!(
            CacheStatus::new("my \"app\" \\ cache").hit(1),
            r#""my \"app\" \\ cache"; hit; ttl=1"#
        );
        assert_eq!(CacheStatus::new("1st").hit(1), "\"1st\"; hit; ttl=1");
    }

    #[test]
    fn every_detail_is_a_token() {
        let refusals = [
            Refusal::Status,
            Refusal::SetCookie,
            Refusal::CacheControl,
            Refusal::Vary,
            Refusal::Streamed,
            Refusal::TooLarge,
            Refusal::Unframeable,
        ];
        let others = [
            detail::HIT_FOR_PASS,
            detail::AUTHORIZATION,
            detail::BACKEND_ERROR,
            detail::STORE_FAILED,
            detail::REQUEST_NO_STORE,
            detail::DISABLED,
        ];
        for token in refusals.iter().map(|r| r.token()).chain(others) {
            assert!(is_token(token), "{token}");
        }
    }
}
