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
    let exponent = exponent
        .iter()
        .fold(0_u32, |value, &byte| (value << 8) | u32::from(byte));
    let result = pow_public(&BoxedMontyForm::new(base, &params), exponent).retrieve();
    let bytes = result.to_be_bytes();
    // `bytes` is `bits / 8` long; keep the modulus-length tail (the leading bytes are zero).
    let start = bytes.len().saturating_sub(modulus.len());
    Ok(bytes[start..].to_vec())
}

/// `base^exponent` by left-to-right square-and-multiply over the exponent's significant bits:
/// `bits - 1` squarings and one multiplication per further set bit, so 2 Montgomery
/// multiplications for exponent 3 and 17 for 65537 (crypto-bigint's `pow` walks every bit of the
/// exponent's precision with a fixed window, about 80 for a 64-bit exponent).
///
/// Variable time on purpose: the running time depends on the exponent, which is public (it is
/// part of a public key), and on nothing secret; the base is a public certificate or signature.
/// Never use this with a private exponent.
fn pow_public(base: &BoxedMontyForm, exponent: u32) -> BoxedMontyForm {
    debug_assert!(exponent != 0, "the caller rejects a zero exponent");
    let mut result = base.clone();
    for bit in (0..exponent.ilog2()).rev() {
        result = result.square();
        if exponent >> bit & 1 == 1 {
            result = result.mul(base);
        }
    }
    result
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

    // Published inputs: the Visa test CA key 01 (1024 bits, exponent 3) and the issuer public key
    // certificate of the SDA example in emv-tools `sda_test.c` (the same values as
    // `tests/it/oda.rs`).
    const VSDC_01_MODULUS: [u8; 128] = hex_literal::hex!(
        "C696034213D7D8546984579D1D0F0EA519CFF8DEFFC429354CF3A871A6F7183F"
        "1228DA5C7470C055387100CB935A712C4E2864DF5D64BA93FE7E63E71F25B1E5"
        "F5298575EBE1C63AA617706917911DC2A75AC28B251C7EF40F2365912490B939"
        "BCA2124A30A28F54402C34AECA331AB67E1E79B285DD5771B5D9FF79EA630B75"
    );
    const SDA_ISSUER_CERT: [u8; 128] = hex_literal::hex!(
        "3C5FEAD4DD7BCA44F93E90C44F76EDE54A3288ECDC78469FCB1225C03B2C04F2"
        "C2F412281A0822DF14649230989FB1494070DAF8C9534A7881960148616ACE58"
        "1788120D3506ACE4CEE564FB27EE53341C22F0B45B31873D05DE545EFE33BCD2"
        "9B2185D035A806AD08C6976F3505A19999930CA8A03EFA321C486061F7DCEC9F"
    );

    #[test]
    fn exponent_3_recovers_the_published_issuer_certificate() {
        let recovered = recover(&SDA_ISSUER_CERT, &VSDC_01_MODULUS, &[0x03]).unwrap();
        // Header 6A, format 02, issuer identifier 427655FF, expiry 12/09, serial 0042B3, hash
        // and key algorithms 01 01, key length 0x80, exponent length 01, ..., trailer BC
        // (EMV Book 2 Table 6), as the example publishes it.
        let expected = hex_literal::hex!(
            "6A02427655FF12090042B301018001B405DE3A900F57C7C8192A59FC4905D359"
            "41C97D8733527941BD507425BB84D9D2EBEB5DDE57BD16B5C75360F6242B5013"
            "DE327144C569603F112298EA485A189830BD63B6FD4E418E9FF88BEE7B853937"
            "047A7A793519922901AE83F6DCD5C81327EE5802C46E8C240FD15BF6EF47F4BC"
        );
        assert_eq!(recovered, expected);
    }

    #[test]
    fn exponent_65537_matches_an_independent_computation() {
        // The same published certificate and modulus raised to 65537; the expected value was
        // computed independently with Python's `pow(c, 65537, n)`.
        let recovered = recover(&SDA_ISSUER_CERT, &VSDC_01_MODULUS, &[0x01, 0x00, 0x01]).unwrap();
        let expected = hex_literal::hex!(
            "6E7E9C21E9FB287D728AE826119BB472BC1C25FAE21090FB8B703D5A677A5DA6"
            "EDFA794B744045F49287DF8FFB73727AC06274ABB0D9B106838AECE2BF8E43C6"
            "0D3DE56F0A813F50DD76B7265CBEC3AB0E90CB2190C96DB4CAAE156BB42D5568"
            "33CEFA7888D2C18E81F0C9514FD5172B1B6C372D65B5AE600DA1B4D2F04859C6"
        );
        assert_eq!(recovered, expected);
    }

    #[test]
    fn square_and_multiply_agrees_with_the_generic_power() {
        let bits = 1024;
        let modulus = BoxedUint::from_be_slice(&VSDC_01_MODULUS, bits).unwrap();
        let params = BoxedMontyParams::new_vartime(Odd::new(modulus).unwrap());
        let base = BoxedMontyForm::new(
            BoxedUint::from_be_slice(&SDA_ISSUER_CERT, bits).unwrap(),
            &params,
        );
        for exponent in [1_u32, 2, 3, 4, 5, 17, 255, 256, 65_537, 0x00FF_FFFF] {
            let generic = base.pow(&BoxedUint::from(u64::from(exponent)));
            assert_eq!(
                pow_public(&base, exponent).retrieve(),
                generic.retrieve(),
                "exponent {exponent}"
            );
        }
    }
}
