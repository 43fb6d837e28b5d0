//! Data encryption under DUKPT data keys: CBC with ISO/IEC 9797-1 padding.
//!
//! Terminals encrypt card data (track data, PAN, EMV tags) under the data encryption key of a
//! DUKPT transaction: TDES DUKPT's data request/response keys (ANSI X9.24-1:2009 A.4.1) or an
//! AES DUKPT data key (ANSI X9.24-3:2017). This module is that last step, for a key of any
//! [`KeyAlgorithm`]:
//! - CBC mode (NIST SP 800-38A §6.2) with an IV the caller supplies; the all-zero IV most
//!   terminals use is [`zero_iv`], with the [`encrypt_with_zero_iv`] / [`decrypt_with_zero_iv`]
//!   shorthands.
//! - ISO/IEC 9797-1 padding method 1 (zero bytes up to a block boundary, none when the data
//!   already ends on one) or method 2 (one `80` byte, then zero bytes), chosen by [`Padding`].
//!
//! Deciphered data is returned in a zeroizing buffer because it is cardholder data.

use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::ErrorCode;
use crate::key::{KeyAlgorithm, SecretKey};
use crate::primitives::BlockCipher;

/// Padding byte that opens ISO/IEC 9797-1 padding method 2.
const METHOD_2_MARKER: u8 = 0x80;

/// All-zero IV, sliced to the block length.
const ZERO_IV: [u8; 16] = [0; 16];

/// ISO/IEC 9797-1 padding method used before encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Padding {
    /// Method 1: zero bytes up to the next block boundary; nothing when the data already ends on
    /// one. Decryption cannot tell padding zeros from data zeros, so it returns them.
    Iso9797Method1,
    /// Method 2: one `80` byte, then zero bytes up to the block boundary (always at least one
    /// byte). Decryption checks and removes it.
    Iso9797Method2,
}

/// Errors of data encryption and decryption. None carries key or data bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The IV is not one block long.
    #[error("IV is {actual} bytes, the cipher's block is {expected}")]
    WrongIvLength {
        /// The block length of the key's cipher.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// Ciphertext must be a whole number of blocks.
    #[error("ciphertext of {len} bytes is not a multiple of the {block_len}-byte block")]
    CiphertextNotBlockAligned {
        /// Length given.
        len: usize,
        /// Block length of the key's cipher.
        block_len: usize,
    },
    /// There is nothing to encrypt or decrypt.
    #[error("input is empty")]
    EmptyInput,
    /// Deciphered data does not end with valid ISO/IEC 9797-1 method 2 padding.
    #[error("padding is not ISO/IEC 9797-1 method 2")]
    BadPadding,
}

impl ErrorCode for DataError {
    fn code(&self) -> &'static str {
        match self {
            Self::WrongIvLength { .. } => "data_wrong_iv_length",
            Self::CiphertextNotBlockAligned { .. } => "data_ciphertext_not_block_aligned",
            Self::EmptyInput => "data_empty_input",
            Self::BadPadding => "data_bad_padding",
        }
    }
}

/// The all-zero IV for `algorithm`'s block length (8 bytes for TDES, 16 for AES).
#[must_use]
pub fn zero_iv(algorithm: KeyAlgorithm) -> &'static [u8] {
    &ZERO_IV[..algorithm.block_len()]
}

/// Pads `plaintext` with `padding` and CBC-encrypts it under `key` and `iv`.
///
/// # Errors
/// - [`DataError::EmptyInput`] when `plaintext` is empty.
/// - [`DataError::WrongIvLength`] when `iv` is not one block long.
pub fn encrypt(
    key: &SecretKey,
    iv: &[u8],
    padding: Padding,
    plaintext: &[u8],
) -> Result<Vec<u8>, DataError> {
    if plaintext.is_empty() {
        return Err(DataError::EmptyInput);
    }
    let block_len = check_iv(key, iv)?;
    let mut data = Vec::with_capacity(padded_len(plaintext.len(), block_len, padding));
    data.extend_from_slice(plaintext);
    pad(&mut data, block_len, padding);
    BlockCipher::new(key)
        .encrypt_cbc(iv, &mut data)
        .unwrap_or_else(|_| unreachable!("padded data is block aligned and the IV was checked"));
    Ok(data)
}

/// CBC-decrypts `ciphertext` under `key` and `iv`, then removes `padding`.
///
/// With [`Padding::Iso9797Method1`] the result keeps the trailing zeros, which cannot be told
/// apart from data; with [`Padding::Iso9797Method2`] the `80 00..` suffix is checked and removed.
///
/// # Errors
/// - [`DataError::EmptyInput`] when `ciphertext` is empty.
/// - [`DataError::WrongIvLength`] when `iv` is not one block long.
/// - [`DataError::CiphertextNotBlockAligned`] when `ciphertext` is not whole blocks.
/// - [`DataError::BadPadding`] when method 2 padding is missing or malformed.
pub fn decrypt(
    key: &SecretKey,
    iv: &[u8],
    padding: Padding,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DataError> {
    if ciphertext.is_empty() {
        return Err(DataError::EmptyInput);
    }
    let block_len = check_iv(key, iv)?;
    if !ciphertext.len().is_multiple_of(block_len) {
        return Err(DataError::CiphertextNotBlockAligned {
            len: ciphertext.len(),
            block_len,
        });
    }
    let mut data = Zeroizing::new(ciphertext.to_vec());
    BlockCipher::new(key)
        .decrypt_cbc(iv, &mut data)
        .unwrap_or_else(|_| unreachable!("length and IV were checked"));
    if padding == Padding::Iso9797Method2 {
        let unpadded_len = method_2_data_len(&data, block_len)?;
        data.truncate(unpadded_len);
    }
    Ok(data)
}

/// [`encrypt`] with the all-zero IV.
///
/// # Errors
/// As [`encrypt`]: [`DataError::EmptyInput`] for empty `plaintext`.
pub fn encrypt_with_zero_iv(
    key: &SecretKey,
    padding: Padding,
    plaintext: &[u8],
) -> Result<Vec<u8>, DataError> {
    encrypt(key, zero_iv(key.algorithm()), padding, plaintext)
}

/// [`decrypt`] with the all-zero IV.
///
/// # Errors
/// As [`decrypt`], except that the IV is always right.
pub fn decrypt_with_zero_iv(
    key: &SecretKey,
    padding: Padding,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DataError> {
    decrypt(key, zero_iv(key.algorithm()), padding, ciphertext)
}

/// Checks that `iv` is one block of `key`'s cipher; returns the block length.
fn check_iv(key: &SecretKey, iv: &[u8]) -> Result<usize, DataError> {
    let block_len = key.algorithm().block_len();
    if iv.len() == block_len {
        Ok(block_len)
    } else {
        Err(DataError::WrongIvLength {
            expected: block_len,
            actual: iv.len(),
        })
    }
}

fn padded_len(len: usize, block_len: usize, padding: Padding) -> usize {
    let minimum = match padding {
        Padding::Iso9797Method1 => len,
        Padding::Iso9797Method2 => len + 1,
    };
    minimum.div_ceil(block_len) * block_len
}

/// ISO/IEC 9797-1 §6.1.1 (method 1) and §6.1.2 (method 2).
fn pad(data: &mut Vec<u8>, block_len: usize, padding: Padding) {
    let target = padded_len(data.len(), block_len, padding);
    if padding == Padding::Iso9797Method2 {
        data.push(METHOD_2_MARKER);
    }
    data.resize(target, 0);
}

/// Length of the data before method 2 padding: the padding is the last `80` byte followed only by
/// zeros, and it lies within the last block (it is never longer than one block).
fn method_2_data_len(data: &[u8], block_len: usize) -> Result<usize, DataError> {
    let marker = data
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(DataError::BadPadding)?;
    let within_last_block = data.len() - marker <= block_len;
    if data.get(marker) == Some(&METHOD_2_MARKER) && within_last_block {
        Ok(marker)
    } else {
        Err(DataError::BadPadding)
    }
}
