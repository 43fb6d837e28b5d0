//! Raw RSA for personalisation and card signatures: `m^d mod n` over the recovered-data frames of
//! EMV 4.4 Book 2 (Annex A2.1, digital signature scheme giving message recovery).
//!
//! EMV signatures are "raw": the signer builds the whole frame (header `6A`, format, data, hash,
//! trailer `BC`) as long as the modulus and applies the private key to it, so no padding scheme of
//! a general RSA library applies. The arithmetic is `crypto-bigint` (`BoxedUint` in Montgomery
//! form), the crate the kernel uses to recover the same frames. Signing uses the Chinese remainder
//! theorem and checks its result with the public exponent before returning it, so a faulty
//! computation never leaves the card.
//!
//! Every key here is TEST ONLY data ([`crate::test_keys`]); nothing in this module is meant to
//! protect a secret, so constant-time behaviour is not a goal.

use alloc::vec::Vec;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero, Odd, Resize};

/// An RSA key pair of the test PKI, as upper-case hex strings (big-endian).
///
/// The private parts are TEST ONLY: they are published in this repository.
#[derive(Clone, Copy)]
pub(crate) struct RsaTestKey {
    pub(crate) modulus: &'static str,
    pub(crate) public_exponent: &'static str,
    /// Kept for completeness of the published key; signing uses the CRT parts below.
    #[allow(dead_code)]
    pub(crate) private_exponent: &'static str,
    pub(crate) prime_p: &'static str,
    pub(crate) prime_q: &'static str,
    pub(crate) exponent_p: &'static str,
    pub(crate) exponent_q: &'static str,
    pub(crate) coefficient: &'static str,
}

impl core::fmt::Debug for RsaTestKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "RsaTestKey({} bits)", self.modulus.len() * 4)
    }
}

/// Why a signature could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignError {
    /// The frame is not as long as the modulus, or not below it.
    Message,
    /// The key constants are unusable (caught by the crate's tests).
    Key,
    /// The CRT result did not verify with the public exponent.
    Fault,
}

impl RsaTestKey {
    /// The modulus bytes.
    pub(crate) fn modulus_bytes(&self) -> Vec<u8> {
        decode_hex(self.modulus)
    }

    /// The public exponent bytes (`03` or `01 00 01`).
    pub(crate) fn exponent_bytes(&self) -> Vec<u8> {
        decode_hex(self.public_exponent)
    }

    /// Modulus length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.modulus.len() / 2
    }

    /// Decodes the key and precomputes its Montgomery parameters, once per card.
    pub(crate) fn prepare(&self) -> Result<SigningKey, SignError> {
        let modulus = self.modulus_bytes();
        let bits = precision(modulus.len());
        let p = decode_hex(self.prime_p);
        let q = decode_hex(self.prime_q);
        let half_bits = precision(p.len().max(q.len()));
        let uint = |bytes: &[u8], bits: u32| {
            BoxedUint::from_be_slice(bytes, bits).map_err(|_| SignError::Key)
        };
        let odd = |value: BoxedUint| Odd::new(value).into_option().ok_or(SignError::Key);
        let p_uint = uint(&p, half_bits)?;
        let q_uint = uint(&q, half_bits)?;
        Ok(SigningKey {
            n_params: BoxedMontyParams::new_vartime(odd(uint(&modulus, bits)?)?),
            p_params: BoxedMontyParams::new_vartime(odd(p_uint.clone())?),
            q_params: BoxedMontyParams::new_vartime(odd(q_uint.clone())?),
            p: NonZero::new(p_uint).into_option().ok_or(SignError::Key)?,
            q_nonzero: NonZero::new(q_uint.clone())
                .into_option()
                .ok_or(SignError::Key)?,
            q: q_uint,
            exponent_p: uint(&decode_hex(self.exponent_p), half_bits)?,
            exponent_q: uint(&decode_hex(self.exponent_q), half_bits)?,
            coefficient: uint(&decode_hex(self.coefficient), half_bits)?,
            public_exponent: uint(&self.exponent_bytes(), 64)?,
            modulus,
            bits,
            half_bits,
        })
    }

    /// Applies the private key to `message`, a frame exactly as long as the modulus.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.prepare()?.sign_raw(message)
    }
}

/// A test key decoded into big integers with its Montgomery parameters, ready to sign.
#[derive(Clone)]
pub(crate) struct SigningKey {
    modulus: Vec<u8>,
    bits: u32,
    half_bits: u32,
    n_params: BoxedMontyParams,
    p_params: BoxedMontyParams,
    q_params: BoxedMontyParams,
    p: NonZero<BoxedUint>,
    q_nonzero: NonZero<BoxedUint>,
    q: BoxedUint,
    exponent_p: BoxedUint,
    exponent_q: BoxedUint,
    coefficient: BoxedUint,
    public_exponent: BoxedUint,
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SigningKey({} bits)", self.modulus.len() * 8)
    }
}

impl SigningKey {
    /// Modulus length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.modulus.len()
    }

    /// Applies the private key to `message`, a frame exactly as long as the modulus.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        if message.len() != self.modulus.len() || message >= self.modulus.as_slice() {
            // Equal lengths, so the byte-wise comparison is a numeric one.
            return Err(SignError::Message);
        }
        let m = BoxedUint::from_be_slice(message, self.bits).map_err(|_| SignError::Message)?;
        // s_p = m^dP mod p, s_q = m^dQ mod q (PKCS #1 v2.2 RSASP1, CRT representation).
        let s_p = BoxedMontyForm::new(m.rem_vartime(&self.p), &self.p_params)
            .pow(&self.exponent_p)
            .retrieve();
        let s_q = BoxedMontyForm::new(m.rem_vartime(&self.q_nonzero), &self.q_params)
            .pow(&self.exponent_q)
            .retrieve();
        // h = qInv * (s_p - s_q) mod p; s = s_q + q * h.
        let h = s_p
            .sub_mod(&s_q.rem_vartime(&self.p), &self.p)
            .mul_mod(&self.coefficient, &self.p);
        let s = s_q
            .try_resize(2 * self.half_bits)
            .ok_or(SignError::Fault)?
            .wrapping_add(h.concatenating_mul(&self.q));
        let signature = fit(&s.to_be_bytes(), self.modulus.len()).ok_or(SignError::Fault)?;
        // Fault check: the signature must recover the message under the public key.
        let base = BoxedUint::from_be_slice(&signature, self.bits).map_err(|_| SignError::Fault)?;
        // The exponent is public: walk only its own bits (`pow` walks all 64, which cost
        // about a fifth of a signature).
        let recovered = BoxedMontyForm::new(base, &self.n_params)
            .pow_bounded_exp(
                &self.public_exponent,
                self.public_exponent.bit_width_vartime(),
            )
            .retrieve();
        if fit(&recovered.to_be_bytes(), self.modulus.len()).as_deref() != Some(message) {
            return Err(SignError::Fault);
        }
        Ok(signature)
    }
}

/// `signature^e mod n`, for the self-tests.
#[cfg(test)]
fn public_op(signature: &[u8], modulus: &[u8], exponent: &[u8]) -> Option<Vec<u8>> {
    let bits = precision(modulus.len());
    let n = Odd::new(BoxedUint::from_be_slice(modulus, bits).ok()?).into_option()?;
    let base = BoxedUint::from_be_slice(signature, bits).ok()?;
    let exponent = BoxedUint::from_be_slice(exponent, 64).ok()?;
    let result = BoxedMontyForm::new(base, &BoxedMontyParams::new_vartime(n))
        .pow(&exponent)
        .retrieve();
    fit(&result.to_be_bytes(), modulus.len())
}

/// Precision in whole 64-bit words for a number of `len` bytes.
fn precision(len: usize) -> u32 {
    u32::try_from(len.div_ceil(8) * 64).unwrap_or(u32::MAX)
}

/// The big-endian `bytes` as exactly `len` bytes, if the leading bytes it drops are zero.
fn fit(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    let start = bytes.len().checked_sub(len)?;
    if bytes[..start].iter().any(|&byte| byte != 0) {
        return None;
    }
    Some(bytes[start..].to_vec())
}

/// Decodes the crate's own hex constants. Every constant is checked by a unit test, so a
/// non-hex character (which would decode as zero) cannot ship.
pub(crate) fn decode_hex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let nibble = |c: u8| match c {
                b'0'..=b'9' => c - b'0',
                b'A'..=b'F' => c - b'A' + 10,
                b'a'..=b'f' => c - b'a' + 10,
                _ => 0,
            };
            (nibble(pair[0]) << 4) | pair.get(1).map_or(0, |&c| nibble(c))
        })
        .collect()
}

/// Whether `text` is an even number of hex digits.
#[cfg(test)]
pub(crate) fn is_hex(text: &str) -> bool {
    text.len().is_multiple_of(2) && text.bytes().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    #[test]
    fn every_test_key_is_well_formed_and_signs() {
        for key in test_keys::ALL {
            for field in [
                key.modulus,
                key.public_exponent,
                key.private_exponent,
                key.prime_p,
                key.prime_q,
                key.exponent_p,
                key.exponent_q,
                key.coefficient,
            ] {
                assert!(is_hex(field), "{key:?}");
            }
            let mut message = alloc::vec![0x6A; key.len()];
            message[key.len() - 1] = 0xBC;
            let signature = key.sign_raw(&message).unwrap();
            assert_eq!(
                public_op(&signature, &key.modulus_bytes(), &key.exponent_bytes()).unwrap(),
                message
            );
        }
    }

    #[test]
    fn refuses_a_message_not_below_the_modulus() {
        let key = test_keys::ICC_ROGUE;
        assert_eq!(
            key.sign_raw(&alloc::vec![0xFF; key.len()]),
            Err(SignError::Message)
        );
        assert_eq!(key.sign_raw(&[0x6A]), Err(SignError::Message));
    }
}
