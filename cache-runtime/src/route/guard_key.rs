//! What a request's guards add to its key.

use std::fmt;

/// What a request's guards add to its key: each `KeyedGuard`'s value (or its absence), framed;
/// and whether a guard reads the query. Empty, and allocation-free, for routes without keyed
/// guards.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct GuardKey {
    bytes: Vec<u8>,
    keyed: bool,
    pub(crate) reads_query: bool,
}

impl GuardKey {
    /// Adds a keyed guard's value: a present flag, its length and its `Display` bytes.
    pub(crate) fn value(&mut self, value: &dyn fmt::Display) {
        struct Sink<'b>(&'b mut Vec<u8>);
        impl fmt::Write for Sink<'_> {
            fn write_str(&mut self, text: &str) -> fmt::Result {
                self.0.extend_from_slice(text.as_bytes());
                Ok(())
            }
        }
        self.keyed = true;
        self.bytes.push(1);
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        // A `Display` that fails leaves what it wrote: still its own variant.
        let _ = fmt::write(&mut Sink(&mut self.bytes), format_args!("{value}"));
        let len = u32::try_from(self.bytes.len() - at - 4).unwrap_or(u32::MAX);
        self.bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// Adds a keyed guard that is absent (`None`, `Err`): a variant of its own.
    pub(crate) fn absent(&mut self) {
        self.keyed = true;
        self.bytes.push(0);
    }

    /// Records a guard the route vouches for (`trusted_guards`): it may read the query.
    pub fn trusted(&mut self) {
        self.reads_query = true;
    }

    /// Returns the framed values, for the key.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Returns whether the route's key holds a keyed guard: the page is someone's own.
    pub(crate) fn keyed(&self) -> bool {
        self.keyed
    }

    /// Returns whether a guard may read the query.
    pub(crate) fn reads_query(&self) -> bool {
        self.reads_query
    }
}
