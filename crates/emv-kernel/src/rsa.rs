//! The RSA public operation `s^e mod n` used to recover certificates and signatures
//! (EMV 4.4 Book 2, Annex A2.1: the recovery function of ISO/IEC 9796-2 digital signatures with
//! message recovery).
//!
//! The arithmetic is `crypto-bigint`'s `BoxedUint` in Montgomery form (RustCrypto; no_std + alloc,
//! the same backend the `rsa` crate uses). Only public data flows through here, so the
//! constant-time guarantees of the crate are not needed, only its correctness.

use alloc::vec::Vec;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};

/// Largest modulus EMV allows (1984 bits, Book 2 Annex B2.1).
pub(crate) const MAX_MODULUS_LEN: usize = 248;

/// Why the RSA operation could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RsaError {
    /// Empty, even or over-long modulus, or a leading zero byte.
    Modulus,
    /// Exponent empty, zero or longer than 3 bytes.
    Exponent,
    /// The signature is not as long as the modulus, or not smaller than it.
    Signature,
}

/// Computes `signature^exponent mod modulus`, big-endian, as long as the modulus.
pub(crate) fn recover(
    signature: &[u8],
    modulus: &[u8],
    exponent: &[u8],
) -> Result<Vec<u8>, RsaError> {
    if modulus.is_empty()
        || modulus.len() > MAX_MODULUS_LEN
        || modulus[0] == 0
        || modulus[modulus.len() - 1] & 1 == 0
    {
        return Err(RsaError::Modulus);
    }
    if exponent.is_empty() || exponent.len() > 3 || exponent.iter().all(|&byte| byte == 0) {
        return Err(RsaError::Exponent);
    }
    if signature.len() != modulus.len() || signature >= modulus {
        // Equal lengths, so a byte-wise comparison is a numeric one.
        return Err(RsaError::Signature);
    }
    // Precision in whole 64-bit words, enough for every limb size.
    let bits = u32::try_from(modulus.len().div_ceil(8) * 64).map_err(|_| RsaError::Modulus)?;
    let modulus_uint = BoxedUint::from_be_slice(modulus, bits).map_err(|_| RsaError::Modulus)?;
    let odd = Odd::new(modulus_uint)
        .into_option()
        .ok_or(RsaError::Modulus)?;
    let params = BoxedMontyParams::new_vartime(odd);
    let base = BoxedUint::from_be_slice(signature, bits).map_err(|_| RsaError::Signature)?;
    let exponent_uint = BoxedUint::from_be_slice(exponent, 64).map_err(|_| RsaError::Exponent)?;
    let result = BoxedMontyForm::new(base, &params)
        .pow(&exponent_uint)
        .retrieve();
    let bytes = result.to_be_bytes();
    // `bytes` is `bits / 8` long; keep the modulus-length tail (the leading bytes are zero).
    let start = bytes.len().saturating_sub(modulus.len());
    Ok(bytes[start..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_numbers() {
        // 4^3 mod 0xC5 (197) = 64; 2^3 mod 197 = 8.
        assert_eq!(recover(&[4], &[0xC5], &[3]), Ok(alloc::vec![64]));
        assert_eq!(recover(&[0xC4], &[0xC5], &[1]), Ok(alloc::vec![0xC4]));
        assert_eq!(recover(&[0xC5], &[0xC5], &[3]), Err(RsaError::Signature));
        assert_eq!(recover(&[4, 0], &[0xC5], &[3]), Err(RsaError::Signature));
        assert_eq!(recover(&[4], &[0xC4], &[3]), Err(RsaError::Modulus));
        assert_eq!(recover(&[4], &[0xC5], &[0]), Err(RsaError::Exponent));
        assert_eq!(recover(&[0, 4], &[0, 0xC5], &[3]), Err(RsaError::Modulus));
    }
}
