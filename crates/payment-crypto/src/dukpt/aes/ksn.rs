//! The AES DUKPT key serial number (X9.24-3:2017, 6.1): initial key ID and transaction counter.

use core::fmt;
use core::str::FromStr;

use super::AesDukptError;

/// Most one-bits a transaction counter may have (X9.24-3:2017, 6.1): this bounds the host's
/// work per derivation to 16 intermediate derivations.
pub const MAX_COUNTER_ONE_BITS: u32 = 16;

/// The 8-byte initial key ID: 4-byte BDK ID followed by the 4-byte derivation ID
/// (X9.24-3:2017, 6.1). It names the BDK and the device's initial key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InitialKeyId([u8; 8]);

impl InitialKeyId {
    /// An initial key ID from its 8 bytes.
    #[must_use]
    pub const fn new(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// An initial key ID from a slice.
    ///
    /// # Errors
    /// [`AesDukptError::InitialKeyIdLength`] unless `bytes` is 8 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, AesDukptError> {
        <[u8; 8]>::try_from(bytes)
            .map(Self)
            .map_err(|_| AesDukptError::InitialKeyIdLength(bytes.len()))
    }

    /// The 8 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// The leftmost 4 bytes: the BDK ID, which tells the host which BDK to use.
    #[must_use]
    pub const fn bdk_id(&self) -> [u8; 4] {
        let [a, b, c, d, ..] = self.0;
        [a, b, c, d]
    }

    /// The rightmost 4 bytes: the derivation ID, which goes into every derivation data block
    /// except the initial key's (X9.24-3:2017, 6.3.2).
    #[must_use]
    pub const fn derivation_id(&self) -> [u8; 4] {
        let [.., e, f, g, h] = self.0;
        [e, f, g, h]
    }
}

impl fmt::Display for InitialKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// Checks a transaction counter names a transaction: not zero and at most 16 one-bits
/// (X9.24-3:2017, 6.1).
///
/// # Errors
/// [`AesDukptError::ZeroCounter`] or [`AesDukptError::TooManyOneBits`].
pub fn validate_counter(counter: u32) -> Result<(), AesDukptError> {
    if counter == 0 {
        return Err(AesDukptError::ZeroCounter);
    }
    let ones = counter.count_ones();
    if ones > MAX_COUNTER_ONE_BITS {
        return Err(AesDukptError::TooManyOneBits(ones));
    }
    Ok(())
}

/// A 12-byte AES DUKPT key serial number: initial key ID (8 bytes) followed by the big-endian
/// 32-bit transaction counter (X9.24-3:2017, 6.1).
///
/// Building or parsing a KSN checks only its shape; whether its counter names a transaction is
/// checked where a key is derived for it ([`validate_counter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ksn {
    initial_key_id: InitialKeyId,
    counter: u32,
}

impl Ksn {
    /// KSN length in bytes.
    pub const LEN: usize = 12;

    /// A KSN from its parts.
    #[must_use]
    pub const fn new(initial_key_id: InitialKeyId, counter: u32) -> Self {
        Self {
            initial_key_id,
            counter,
        }
    }

    /// Parses the 12 bytes of a KSN.
    ///
    /// # Errors
    /// [`AesDukptError::KsnLength`] unless `bytes` is 12 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AesDukptError> {
        let bytes = <[u8; Self::LEN]>::try_from(bytes)
            .map_err(|_| AesDukptError::KsnLength(bytes.len()))?;
        let [a, b, c, d, e, f, g, h, c0, c1, c2, c3] = bytes;
        Ok(Self {
            initial_key_id: InitialKeyId([a, b, c, d, e, f, g, h]),
            counter: u32::from_be_bytes([c0, c1, c2, c3]),
        })
    }

    /// The 12 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut bytes = [0u8; Self::LEN];
        bytes[..8].copy_from_slice(self.initial_key_id.as_bytes());
        bytes[8..].copy_from_slice(&self.counter.to_be_bytes());
        bytes
    }

    /// The initial key ID.
    #[must_use]
    pub const fn initial_key_id(&self) -> &InitialKeyId {
        &self.initial_key_id
    }

    /// The transaction counter.
    #[must_use]
    pub const fn counter(&self) -> u32 {
        self.counter
    }
}

impl fmt::Display for Ksn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.to_bytes())
    }
}

impl FromStr for Ksn {
    type Err = AesDukptError;

    /// Parses 24 hex digits, upper or lower case.
    fn from_str(hex: &str) -> Result<Self, AesDukptError> {
        let digits = hex.as_bytes();
        if digits.len() != 2 * Self::LEN {
            return Err(AesDukptError::KsnHex);
        }
        let mut bytes = [0u8; Self::LEN];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Self::from_bytes(&bytes)
    }
}

fn hex_value(digit: u8) -> Result<u8, AesDukptError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(AesDukptError::KsnHex),
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|byte| write!(f, "{byte:02X}"))
}
