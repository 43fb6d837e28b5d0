//! The caller-supplied source of random bytes.
//!
//! The crate never draws randomness itself: PIN block fill digits and TR-31 padding come from a
//! [`RandomSource`] the caller passes in. Servers and terminals pass an OS-backed CSPRNG; tests pass
//! fixed bytes so published vectors can be reproduced exactly.

/// A cryptographically secure source of random bytes, supplied by the caller.
pub trait RandomSource {
    /// Fills `buf` entirely with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// Replays fixed bytes, for reproducing published vectors in tests and tools.
///
/// It repeats its bytes cyclically when asked for more than it holds.
/// Never use it outside tests and vector reproduction.
#[derive(Debug, Clone)]
pub struct FixedBytes<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> FixedBytes<'a> {
    /// A source that yields `bytes`, then starts again from the beginning.
    ///
    /// # Panics
    /// Panics if `bytes` is empty: a fixed source with nothing to give is a programming error.
    #[must_use]
    pub fn new(bytes: &'a [u8]) -> Self {
        assert!(!bytes.is_empty(), "FixedBytes needs at least one byte");
        Self { bytes, pos: 0 }
    }
}

impl RandomSource for FixedBytes<'_> {
    fn fill(&mut self, buf: &mut [u8]) {
        for out in buf {
            *out = self.bytes[self.pos];
            self.pos = (self.pos + 1) % self.bytes.len();
        }
    }
}
