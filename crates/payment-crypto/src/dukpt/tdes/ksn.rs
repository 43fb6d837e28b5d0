//! The 10-byte TDES DUKPT Key Serial Number (ANSI X9.24-1:2009 A.1, "Key Serial Number Register").

use core::fmt;

use super::TdesDukptError;

/// Length of a TDES DUKPT Key Serial Number in bytes (80 bits).
pub const KSN_LEN: usize = 10;

/// Number of bits of the encryption (transaction) counter: the 21 rightmost bits of the KSN.
pub const COUNTER_BITS: u32 = 21;

/// Mask of the 21-bit encryption counter.
pub const COUNTER_MASK: u32 = (1 << COUNTER_BITS) - 1;

/// The most "one" bits a counter value an originator uses may have (X9.24-1:2009 A.2, "New Key":
/// counter values with more than 10 one bits are skipped).
pub const MAX_COUNTER_ONE_BITS: u32 = 10;

/// A TDES DUKPT Key Serial Number: a 59-bit initial key serial number followed by the 21-bit
/// encryption counter (ANSI X9.24-1:2009 A.1).
///
/// The KSN is not secret; it travels in clear with every transaction. `Display` prints it as 20
/// uppercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ksn {
    bytes: [u8; KSN_LEN],
}

impl Ksn {
    /// A KSN from its 10 bytes.
    #[must_use]
    pub const fn new(bytes: [u8; KSN_LEN]) -> Self {
        Self { bytes }
    }

    /// Parses a KSN from exactly 10 bytes.
    ///
    /// # Errors
    /// [`TdesDukptError::KsnWrongLength`] when `bytes` is not 10 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TdesDukptError> {
        let bytes =
            <[u8; KSN_LEN]>::try_from(bytes).map_err(|_| TdesDukptError::KsnWrongLength {
                actual: bytes.len(),
            })?;
        Ok(Self { bytes })
    }

    /// The 10 bytes of the KSN.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KSN_LEN] {
        &self.bytes
    }

    /// The 21-bit encryption counter (the rightmost 21 bits).
    #[must_use]
    pub fn counter(&self) -> u32 {
        let [.., a, b, c] = self.bytes;
        u32::from_be_bytes([0, a, b, c]) & COUNTER_MASK
    }

    /// The leftmost 64 bits of the KSN with the counter bits cleared: the 59-bit initial key
    /// serial number followed by five zero bits.
    ///
    /// This is the value ANSI X9.24-1:2009 A.6 encrypts under the BDK to form the initial key.
    #[must_use]
    pub fn initial_key_serial(&self) -> [u8; 8] {
        let initial = self.with_counter_unchecked(0);
        let mut serial = [0u8; 8];
        serial.copy_from_slice(&initial.bytes[..8]);
        serial
    }

    /// The same initial key serial number with the counter replaced by `counter`.
    ///
    /// # Errors
    /// [`TdesDukptError::CounterOutOfRange`] when `counter` does not fit in 21 bits.
    pub fn with_counter(&self, counter: u32) -> Result<Self, TdesDukptError> {
        if counter > COUNTER_MASK {
            return Err(TdesDukptError::CounterOutOfRange { counter });
        }
        Ok(self.with_counter_unchecked(counter))
    }

    /// The KSN with its counter cleared (the "initial KSN" loaded with the initial key).
    #[must_use]
    pub fn initial(&self) -> Self {
        self.with_counter_unchecked(0)
    }

    /// The rightmost 64 bits: the value the non-reversible key generation process encrypts
    /// (X9.24-1:2009 A.2, "the 64 right-most bits of the Key Serial Number Register").
    pub(crate) fn rightmost_64_bits(&self) -> [u8; 8] {
        let mut right = [0u8; 8];
        right.copy_from_slice(&self.bytes[KSN_LEN - 8..]);
        right
    }

    /// Replaces the 21 counter bits; `counter` must already be masked to 21 bits.
    pub(crate) fn with_counter_unchecked(&self, counter: u32) -> Self {
        let counter = counter & COUNTER_MASK;
        let [_, a, b, c] = counter.to_be_bytes();
        let mut bytes = self.bytes;
        // The counter's top 5 bits share byte 7 with the 3 lowest serial number bits.
        bytes[7] = (bytes[7] & 0xE0) | a;
        bytes[8] = b;
        bytes[9] = c;
        Self { bytes }
    }
}

impl TryFrom<&[u8]> for Ksn {
    type Error = TdesDukptError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Self::from_bytes(bytes)
    }
}

impl fmt::Display for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bytes.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}
