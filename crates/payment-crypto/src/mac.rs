//! MACs: ISO/IEC 9797-1 algorithms 1 and 3 with padding methods 1 and 2, and CMAC.
//!
//! What it owns:
//! - ISO/IEC 9797-1:2011 MAC algorithm 1 (CBC-MAC, §7.2) under a TDES or AES key.
//! - ISO/IEC 9797-1:2011 MAC algorithm 3 (§7.4), the ANSI X9.19 "retail MAC": single DES CBC
//!   under the left half `K` of a double-length key, then decrypt with the right half `K'` and
//!   encrypt with `K` on the last block.
//! - Padding methods 1 (§6.3.1, zero bits) and 2 (§6.3.2, one `1` bit then zero bits).
//! - CMAC (NIST SP 800-38B, also ISO/IEC 9797-1 MAC algorithm 5) under TDES or AES keys, through
//!   RustCrypto's `cmac`.
//! - Truncation to the leftmost `m` bytes (ISO/IEC 9797-1 §7.1 output transformation; SP 800-38B
//!   §6.2 step 7 `MSB_Tlen`) and constant-time verification.
//!
//! Nothing here is a cipher: block encryption comes from `crate::primitives`.

use alloc::vec::Vec;
use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::ErrorCode;
use crate::key::{KeyAlgorithm, SecretKey};
use crate::primitives::{self, BlockCipher};

/// Shortest MAC this module produces or accepts, in bytes.
///
/// ANSI X9.19 and ISO/IEC 9797-1 Annex B publish 32-bit MACs; nothing shorter is used in payments.
pub const MIN_MAC_LEN: usize = 4;

/// ISO/IEC 9797-1 padding method (§6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Padding {
    /// Method 1 (§6.3.1): append as few zero bits as needed, possibly none, to fill the last
    /// block. The empty string becomes one block of zeros, since the padded length must be a
    /// positive multiple of the block length. Ambiguous by design: `D` and `D || 00` share a MAC.
    Method1,
    /// Method 2 (§6.3.2): append one `1` bit (byte `80`), then as few zero bits as needed.
    /// Always adds at least one byte, so it is unambiguous. EMV uses it (Book 2 Annex A1.2).
    Method2,
}

/// Which MAC to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MacAlgorithm {
    /// ISO/IEC 9797-1 MAC algorithm 1: CBC-MAC with a zero IV under the key's own block cipher
    /// (8-byte blocks for TDES, 16-byte blocks for AES).
    CbcMac(Padding),
    /// ISO/IEC 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC). Double-length TDES keys only: the
    /// left half is `K`, the right half `K'`.
    RetailMac(Padding),
    /// CMAC, NIST SP 800-38B (ISO/IEC 9797-1 MAC algorithm 5), under TDES or AES. It pads
    /// internally, so it takes no padding method.
    Cmac,
}

/// Errors computing or verifying a MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MacError {
    /// The requested MAC length is outside `MIN_MAC_LEN..=block length`.
    #[error("MAC length {requested} is outside {min}..={max} bytes")]
    InvalidLength {
        /// The length asked for (or the length of the MAC to verify).
        requested: usize,
        /// The shortest allowed length.
        min: usize,
        /// The longest allowed length: the cipher's block length.
        max: usize,
    },
    /// The algorithm cannot run under this kind of key (the retail MAC needs a double-length
    /// TDES key).
    #[error("{algorithm:?} keys are not supported by this MAC algorithm")]
    UnsupportedKey {
        /// The algorithm of the key given.
        algorithm: KeyAlgorithm,
    },
    /// The MAC does not match the data.
    #[error("MAC mismatch")]
    Mismatch,
}

impl ErrorCode for MacError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidLength { .. } => "mac_invalid_length",
            Self::UnsupportedKey { .. } => "mac_unsupported_key",
            Self::Mismatch => "mac_mismatch",
        }
    }
}

/// A computed MAC: between [`MIN_MAC_LEN`] and 16 bytes.
///
/// A MAC is not secret, so it prints in hex. It has no `PartialEq` on purpose: compare a received
/// MAC with [`Mac::verify`], which runs in constant time.
#[derive(Clone, Copy)]
pub struct Mac {
    bytes: [u8; 16],
    len: usize,
}

impl Mac {
    /// The MAC bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a MAC has at least [`MIN_MAC_LEN`] bytes. Present for symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Compares `received` with this MAC in constant time.
    ///
    /// # Errors
    /// [`MacError::Mismatch`] when the lengths or any byte differ.
    pub fn verify(&self, received: &[u8]) -> Result<(), MacError> {
        if bool::from(self.as_bytes().ct_eq(received)) {
            Ok(())
        } else {
            Err(MacError::Mismatch)
        }
    }

    /// The leftmost `len` bytes of a full MAC block.
    fn truncated(full: &[u8], len: usize) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..len].copy_from_slice(&full[..len]);
        Self { bytes, len }
    }
}

impl AsRef<[u8]> for Mac {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mac(")?;
        for byte in self.as_bytes() {
            write!(f, "{byte:02X}")?;
        }
        f.write_str(")")
    }
}

/// Computes the `mac_len`-byte MAC of `data` under `key`.
///
/// # Errors
/// - [`MacError::InvalidLength`] when `mac_len` is below [`MIN_MAC_LEN`] or above the block
///   length (8 for TDES, 16 for AES).
/// - [`MacError::UnsupportedKey`] for the retail MAC under anything but a double-length TDES key.
pub fn compute_mac(
    algorithm: MacAlgorithm,
    key: &SecretKey,
    data: &[u8],
    mac_len: usize,
) -> Result<Mac, MacError> {
    check_key(algorithm, key)?;
    check_len(mac_len, key.algorithm().block_len())?;
    let full = match algorithm {
        MacAlgorithm::CbcMac(padding) => cbc_mac_block(key, data, padding),
        MacAlgorithm::RetailMac(padding) => retail_mac_block(key, data, padding),
        MacAlgorithm::Cmac => primitives::cmac(key, data).0,
    };
    Ok(Mac::truncated(&full, mac_len))
}

/// Checks in constant time that `received` is the MAC of `data` under `key`, truncated to its
/// own length.
///
/// # Errors
/// - [`MacError::InvalidLength`] when `received` is shorter than [`MIN_MAC_LEN`] or longer than
///   the block length.
/// - [`MacError::UnsupportedKey`] as for [`compute_mac`].
/// - [`MacError::Mismatch`] when the MAC is wrong.
pub fn verify_mac(
    algorithm: MacAlgorithm,
    key: &SecretKey,
    data: &[u8],
    received: &[u8],
) -> Result<(), MacError> {
    compute_mac(algorithm, key, data, received.len())?.verify(received)
}

/// `data` padded to a whole number of blocks of `cipher` (8 bytes for TDES, 16 for AES;
/// ISO/IEC 9797-1 §6.3).
#[must_use]
pub fn pad(data: &[u8], cipher: KeyAlgorithm, padding: Padding) -> Vec<u8> {
    let block_len = cipher.block_len();
    let mut padded = Vec::with_capacity(data.len() + block_len);
    padded.extend_from_slice(data);
    if padding == Padding::Method2 {
        // §6.3.2: a single '1' bit first; the zero bits below complete the block.
        padded.push(0x80);
    }
    // §6.3.1 (and the tail of §6.3.2): zero bits up to a positive multiple of the block length.
    // The empty string under method 1 becomes one zero block.
    let target = padded.len().div_ceil(block_len).max(1) * block_len;
    padded.resize(target, 0);
    padded
}

fn check_key(algorithm: MacAlgorithm, key: &SecretKey) -> Result<(), MacError> {
    match (algorithm, key.algorithm()) {
        (MacAlgorithm::RetailMac(_), KeyAlgorithm::Tdes2) => Ok(()),
        (MacAlgorithm::RetailMac(_), other) => Err(MacError::UnsupportedKey { algorithm: other }),
        _ => Ok(()),
    }
}

fn check_len(mac_len: usize, block_len: usize) -> Result<(), MacError> {
    if (MIN_MAC_LEN..=block_len).contains(&mac_len) {
        Ok(())
    } else {
        Err(MacError::InvalidLength {
            requested: mac_len,
            min: MIN_MAC_LEN,
            max: block_len,
        })
    }
}

/// MAC algorithm 1 (§7.2): CBC with a zero IV; the last ciphertext block is the MAC before
/// truncation (output transformation 1).
fn cbc_mac_block(key: &SecretKey, data: &[u8], padding: Padding) -> [u8; 16] {
    let cipher = BlockCipher::new(key);
    let block_len = cipher.block_len();
    let mut padded = pad(data, key.algorithm(), padding);
    let iv = [0u8; 16];
    // `pad` returns whole blocks and the IV is one block, so CBC cannot refuse them.
    if cipher.encrypt_cbc(&iv[..block_len], &mut padded).is_err() {
        unreachable!("padded data is block aligned");
    }
    let mut out = [0u8; 16];
    out[..block_len].copy_from_slice(&padded[padded.len() - block_len..]);
    out
}

/// MAC algorithm 3 (§7.4, ANSI X9.19) under a double-length key `K || K'`.
///
/// Every block is chained with single DES under `K` (initial transformation 1 and the
/// iteration of §7.1); output transformation 3 then decrypts the last chaining value with `K'`
/// and encrypts it again with `K`.
fn retail_mac_block(key: &SecretKey, data: &[u8], padding: Padding) -> [u8; 16] {
    let padded = pad(data, KeyAlgorithm::Tdes2, padding);
    let mut k = Zeroizing::new([0u8; 8]);
    let mut k_prime = Zeroizing::new([0u8; 8]);
    k.copy_from_slice(&key.expose_secret()[..8]);
    k_prime.copy_from_slice(&key.expose_secret()[8..16]);
    let mut chain = [0u8; 8];
    for block in padded.chunks_exact(8) {
        xor_into(&mut chain, block);
        primitives::des_encrypt_block(&k, &mut chain);
    }
    primitives::des_decrypt_block(&k_prime, &mut chain);
    primitives::des_encrypt_block(&k, &mut chain);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&chain);
    out
}

fn xor_into(acc: &mut [u8], other: &[u8]) {
    acc.iter_mut().zip(other).for_each(|(a, b)| *a ^= b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_method_1_keeps_aligned_data_and_fills_empty_input() {
        assert_eq!(pad(&[1; 8], KeyAlgorithm::Tdes2, Padding::Method1), [1; 8]);
        assert_eq!(pad(&[], KeyAlgorithm::Tdes2, Padding::Method1), [0; 8]);
        assert_eq!(
            pad(&[1; 3], KeyAlgorithm::Tdes2, Padding::Method1),
            [1, 1, 1, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn padding_method_2_always_adds_a_byte() {
        assert_eq!(
            pad(&[], KeyAlgorithm::Tdes2, Padding::Method2),
            [0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        let aligned = pad(&[1; 16], KeyAlgorithm::Aes128, Padding::Method2);
        assert_eq!(aligned.len(), 32);
        assert_eq!(aligned[16], 0x80);
    }
}
