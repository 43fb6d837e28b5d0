//! Key material: [`SecretKey`] and its [`KeyAlgorithm`].
//!
//! A `SecretKey` is the only way key bytes move through this crate. It zeroizes its buffer on drop,
//! prints as `SecretKey { algorithm: .., .. }` without its bytes, and compares in constant time.
//! Reading the bytes requires the explicit, greppable [`SecretKey::expose_secret`].

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::ErrorCode;

/// The algorithm (and so the length) of a symmetric key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// Double-length TDES (2TDEA), 16 bytes, keying option 2.
    Tdes2,
    /// Triple-length TDES (3TDEA), 24 bytes, keying option 1.
    Tdes3,
    /// AES with a 128-bit key.
    Aes128,
    /// AES with a 192-bit key.
    Aes192,
    /// AES with a 256-bit key.
    Aes256,
}

impl KeyAlgorithm {
    /// Key length in bytes.
    #[must_use]
    pub const fn key_len(self) -> usize {
        match self {
            Self::Tdes2 | Self::Aes128 => 16,
            Self::Tdes3 | Self::Aes192 => 24,
            Self::Aes256 => 32,
        }
    }

    /// Block length of the cipher in bytes: 8 for TDES, 16 for AES.
    #[must_use]
    pub const fn block_len(self) -> usize {
        if self.is_tdes() { 8 } else { 16 }
    }

    /// Whether this is a TDES key.
    #[must_use]
    pub const fn is_tdes(self) -> bool {
        matches!(self, Self::Tdes2 | Self::Tdes3)
    }

    /// The TDES algorithm for a key of `len` bytes (16 or 24).
    #[must_use]
    pub const fn tdes_for_len(len: usize) -> Option<Self> {
        match len {
            16 => Some(Self::Tdes2),
            24 => Some(Self::Tdes3),
            _ => None,
        }
    }

    /// The AES algorithm for a key of `len` bytes (16, 24 or 32).
    #[must_use]
    pub const fn aes_for_len(len: usize) -> Option<Self> {
        match len {
            16 => Some(Self::Aes128),
            24 => Some(Self::Aes192),
            32 => Some(Self::Aes256),
            _ => None,
        }
    }
}

/// Errors building a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The byte length does not match the algorithm.
    #[error("key length {actual} does not match {algorithm:?} ({expected} bytes)")]
    WrongLength {
        /// The algorithm asked for.
        algorithm: KeyAlgorithm,
        /// Its key length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// No key of this family has this length.
    #[error("no TDES or AES key is {0} bytes long")]
    UnsupportedLength(usize),
}

impl ErrorCode for KeyError {
    fn code(&self) -> &'static str {
        match self {
            Self::WrongLength { .. } => "key_wrong_length",
            Self::UnsupportedLength(_) => "key_unsupported_length",
        }
    }
}

/// Largest key this crate handles (AES-256).
const MAX_KEY_LEN: usize = 32;

/// A symmetric key: zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    #[zeroize(skip)]
    algorithm: KeyAlgorithm,
    bytes: [u8; MAX_KEY_LEN],
}

impl SecretKey {
    /// A key of `algorithm` from its raw bytes.
    ///
    /// # Errors
    /// [`KeyError::WrongLength`] when `bytes` is not `algorithm.key_len()` long.
    pub fn new(algorithm: KeyAlgorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        let expected = algorithm.key_len();
        if bytes.len() != expected {
            return Err(KeyError::WrongLength {
                algorithm,
                expected,
                actual: bytes.len(),
            });
        }
        let mut key = Self {
            algorithm,
            bytes: [0; MAX_KEY_LEN],
        };
        key.bytes[..expected].copy_from_slice(bytes);
        Ok(key)
    }

    /// A TDES key, double (16 bytes) or triple (24 bytes) length.
    ///
    /// # Errors
    /// [`KeyError::UnsupportedLength`] for any other length.
    pub fn tdes(bytes: &[u8]) -> Result<Self, KeyError> {
        let algorithm = KeyAlgorithm::tdes_for_len(bytes.len())
            .ok_or(KeyError::UnsupportedLength(bytes.len()))?;
        Self::new(algorithm, bytes)
    }

    /// An AES key of 16, 24 or 32 bytes.
    ///
    /// # Errors
    /// [`KeyError::UnsupportedLength`] for any other length.
    pub fn aes(bytes: &[u8]) -> Result<Self, KeyError> {
        let algorithm = KeyAlgorithm::aes_for_len(bytes.len())
            .ok_or(KeyError::UnsupportedLength(bytes.len()))?;
        Self::new(algorithm, bytes)
    }

    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Key length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.algorithm.key_len()
    }

    /// Always false: a key has at least 16 bytes. Present for API symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The raw key bytes.
    ///
    /// Named so that every place that touches clear key material is easy to find in review.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm
            && bool::from(self.expose_secret().ct_eq(other.expose_secret()))
    }
}

impl Eq for SecretKey {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_never_prints_key_bytes() {
        let key = SecretKey::aes(&[0xAB; 16]).unwrap();
        let printed = format!("{key:?}");
        assert!(!printed.to_lowercase().contains("ab"), "{printed}");
        assert!(printed.contains("Aes128"));
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(
            SecretKey::tdes(&[0; 8]).unwrap_err(),
            KeyError::UnsupportedLength(8)
        );
        assert_eq!(
            SecretKey::aes(&[0; 17]).unwrap_err(),
            KeyError::UnsupportedLength(17)
        );
        assert!(matches!(
            SecretKey::new(KeyAlgorithm::Aes256, &[0; 16]),
            Err(KeyError::WrongLength {
                expected: 32,
                actual: 16,
                ..
            })
        ));
        assert_eq!(
            SecretKey::tdes(&[1; 24]).unwrap().algorithm(),
            KeyAlgorithm::Tdes3
        );
    }

    #[test]
    fn equality_needs_same_algorithm_and_bytes() {
        let a = SecretKey::tdes(&[1; 16]).unwrap();
        let b = SecretKey::aes(&[1; 16]).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, SecretKey::tdes(&[1; 16]).unwrap());
        assert_ne!(a, SecretKey::tdes(&[2; 16]).unwrap());
    }
}
