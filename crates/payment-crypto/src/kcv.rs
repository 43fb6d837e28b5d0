//! Key check values (KCVs): short, non-secret fingerprints that show two parties hold the same key.
//!
//! What it owns: computing a KCV with an explicitly chosen [`KcvMethod`], displaying it as hex,
//! parsing a KCV someone read out or typed in, and comparing KCVs in constant time.
//!
//! The two methods, both from ANSI X9.24-1:2017 (section 7.7.2 and Annex A):
//! - [`KcvMethod::EncryptZeros`], the legacy method: encrypt one block of binary zeros (8 bytes for
//!   TDES, 16 for AES) in ECB mode and keep the leftmost bytes, by convention 3 (six hex digits).
//! - [`KcvMethod::Cmac`], the CMAC method of X9.24-1:2017 Annex A.3, used for AES keys by
//!   ANSI X9.24-3:2017 and TR-31 / ANSI X9.143: the CMAC (NIST SP 800-38B) of one block of binary
//!   zeros under the key, leftmost 5 bytes (40 bits). Some services (e.g. AWS Payment Cryptography)
//!   show only the leftmost 3 bytes of the same CMAC; ask for that length explicitly.
//!
//! The method is always the caller's choice: the same AES key has different KCVs under the two
//! methods, and a silent default would make a key ceremony compare the wrong values.
//!
//! # Security
//! A KCV is a known-plaintext value under the key, so it is capped at [`MAX_KCV_LEN`] bytes.
//! Comparison ([`verify`], [`Kcv::ct_eq`]) runs in constant time.

use core::fmt;
use core::str::FromStr;

use subtle::ConstantTimeEq;

use crate::ErrorCode;
use crate::key::SecretKey;
use crate::primitives::{self, BlockCipher};

/// Shortest KCV accepted: 2 bytes (four hex digits, the shortest check value HSMs display).
pub const MIN_KCV_LEN: usize = 2;

/// Longest KCV produced or accepted: 8 bytes. Longer values would publish most of a cipher block
/// of known plaintext and no standard asks for them.
pub const MAX_KCV_LEN: usize = 8;

/// How a key check value is computed (ANSI X9.24-1:2017, 7.7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KcvMethod {
    /// Legacy method: ECB-encrypt one block of zeros, keep the leftmost bytes (default 3).
    EncryptZeros,
    /// CMAC method (X9.24-1:2017 Annex A.3): CMAC of one block of zeros, keep the leftmost bytes
    /// (default 5).
    Cmac,
}

impl KcvMethod {
    /// The conventional length in bytes: 3 for [`KcvMethod::EncryptZeros`], 5 for
    /// [`KcvMethod::Cmac`] (X9.24-1:2017 Annex A.3 keeps 40 bits).
    #[must_use]
    pub const fn default_len(self) -> usize {
        match self {
            Self::EncryptZeros => 3,
            Self::Cmac => 5,
        }
    }
}

/// Errors computing or parsing a key check value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KcvError {
    /// The requested or given KCV length is outside `MIN_KCV_LEN..=MAX_KCV_LEN`.
    #[error("KCV length {0} is outside {MIN_KCV_LEN}..={MAX_KCV_LEN} bytes")]
    LengthOutOfRange(usize),
    /// A KCV in hex has an odd number of digits.
    #[error("KCV hex has an odd number of digits")]
    OddHexLength,
    /// A KCV in hex contains a character that is not a hex digit.
    #[error("KCV hex contains a non-hex character")]
    InvalidHexDigit,
}

impl ErrorCode for KcvError {
    fn code(&self) -> &'static str {
        match self {
            Self::LengthOutOfRange(_) => "kcv_length_out_of_range",
            Self::OddHexLength => "kcv_odd_hex_length",
            Self::InvalidHexDigit => "kcv_invalid_hex_digit",
        }
    }
}

/// A key check value of 2 to 8 bytes. Displays as uppercase hex; parses from hex (either case).
#[derive(Clone, Copy)]
pub struct Kcv {
    bytes: [u8; MAX_KCV_LEN],
    len: usize,
}

impl Kcv {
    /// A KCV from its raw bytes, e.g. read from a key block or a database.
    ///
    /// # Errors
    /// [`KcvError::LengthOutOfRange`] unless `bytes` is 2 to 8 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KcvError> {
        check_len(bytes.len())?;
        let mut kcv = Self {
            bytes: [0; MAX_KCV_LEN],
            len: bytes.len(),
        };
        kcv.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(kcv)
    }

    /// The KCV bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Length in bytes (2 to 8).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a KCV has at least [`MIN_KCV_LEN`] bytes. Present for symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Constant-time equality: same length and same bytes.
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.len == other.len && bool::from(self.as_bytes().ct_eq(other.as_bytes()))
    }
}

impl PartialEq for Kcv {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for Kcv {}

impl fmt::Display for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes()
            .iter()
            .try_for_each(|byte| write!(f, "{byte:02X}"))
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kcv({self})")
    }
}

impl FromStr for Kcv {
    type Err = KcvError;

    /// Parses a KCV from 4 to 16 hex digits, upper or lower case.
    fn from_str(hex: &str) -> Result<Self, KcvError> {
        let digits = hex.as_bytes();
        if !digits.len().is_multiple_of(2) {
            return Err(KcvError::OddHexLength);
        }
        check_len(digits.len() / 2)?;
        let mut bytes = [0u8; MAX_KCV_LEN];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Self::from_bytes(&bytes[..digits.len() / 2])
    }
}

fn hex_value(digit: u8) -> Result<u8, KcvError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(KcvError::InvalidHexDigit),
    }
}

fn check_len(len: usize) -> Result<(), KcvError> {
    if (MIN_KCV_LEN..=MAX_KCV_LEN).contains(&len) {
        Ok(())
    } else {
        Err(KcvError::LengthOutOfRange(len))
    }
}

/// The KCV of `key` under `method`, at the method's conventional length
/// ([`KcvMethod::default_len`]: 3 bytes for encrypt-zeros, 5 for CMAC).
#[must_use]
pub fn kcv(key: &SecretKey, method: KcvMethod) -> Kcv {
    let full = full_check_block(key, method);
    let len = method.default_len();
    let mut bytes = [0u8; MAX_KCV_LEN];
    bytes[..len].copy_from_slice(&full[..len]);
    Kcv { bytes, len }
}

/// The KCV of `key` under `method`, keeping the leftmost `len` bytes.
///
/// # Errors
/// [`KcvError::LengthOutOfRange`] unless `len` is 2 to 8.
pub fn kcv_with_len(key: &SecretKey, method: KcvMethod, len: usize) -> Result<Kcv, KcvError> {
    check_len(len)?;
    let full = full_check_block(key, method);
    Kcv::from_bytes(&full[..len])
}

/// Whether `expected` is the KCV of `key` under `method`, compared in constant time over
/// `expected`'s length (so a 3-byte and a 5-byte CMAC KCV of the same key both verify).
#[must_use]
pub fn verify(key: &SecretKey, method: KcvMethod, expected: &Kcv) -> bool {
    let full = full_check_block(key, method);
    bool::from(full[..expected.len()].ct_eq(expected.as_bytes()))
}

/// The whole check block: one cipher block (8 bytes for TDES, 16 for AES), so always at least
/// [`MAX_KCV_LEN`] bytes are meaningful.
fn full_check_block(key: &SecretKey, method: KcvMethod) -> [u8; 16] {
    let block_len = key.algorithm().block_len();
    match method {
        // X9.24-1:2017 7.7.2: ECB-encrypt a block of binary zeros.
        KcvMethod::EncryptZeros => {
            let mut block = [0u8; 16];
            BlockCipher::new(key)
                .encrypt_ecb(&mut block[..block_len])
                .unwrap_or_else(|_| unreachable!("one whole block of the key's cipher"));
            block
        }
        // X9.24-1:2017 Annex A.3: CMAC over a block of binary zeros.
        KcvMethod::Cmac => primitives::cmac(key, &[0u8; 16][..block_len]).0,
    }
}
