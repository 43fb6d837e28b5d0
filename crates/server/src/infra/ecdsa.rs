//! P-256 ECDSA with SHA-256 on the request path, through `ring` (already linked as rustls's
//! crypto provider). Every device request and every sale checks one or two signatures and
//! every token issuance makes one; the pure-Rust `p256` crate took about a fifth of the
//! server's CPU per payment there, ring's assembly does the same checks several times faster.
//! `p256` stays for what is not per request: key generation, parsing, JWK export.

use p256::elliptic_curve::sec1::ToSec1Point;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

/// A P-256 public key that verifies signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct P256Verifier {
    /// SEC1 uncompressed: `04 ‖ X ‖ Y`.
    point: [u8; 65],
}

impl std::fmt::Debug for P256Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P256Verifier").finish_non_exhaustive()
    }
}

impl P256Verifier {
    /// A SEC1 public key, compressed or not; `None` when it is not a point of the curve.
    pub fn from_sec1(bytes: &[u8]) -> Option<Self> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).ok()?;
        let encoded = key.to_sec1_point(false);
        let point: [u8; 65] = encoded.as_bytes().try_into().ok()?;
        Some(Self { point })
    }

    /// SEC1 uncompressed bytes.
    pub fn sec1(&self) -> &[u8; 65] {
        &self.point
    }

    /// Checks a signature over `message`, given as ASN.1 DER or as the 64-byte `r ‖ s`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let der = UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.point);
        if der.verify(message, signature).is_ok() {
            return true;
        }
        signature.len() == 64 && self.verify_fixed(message, signature)
    }

    /// Checks a 64-byte `r ‖ s` signature (JWS ES256, RFC 7518 §3.4) over `message`.
    pub fn verify_fixed(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.point)
            .verify(message, signature)
            .is_ok()
    }
}

/// A P-256 private key that signs (JWS ES256 form).
pub struct P256Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for P256Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P256Signer").finish_non_exhaustive()
    }
}

impl P256Signer {
    /// From the 32-byte private scalar; `None` when it is not a valid key.
    pub fn from_scalar(scalar: &[u8]) -> Option<Self> {
        let secret = p256::SecretKey::from_slice(scalar).ok()?;
        let public = secret.public_key().to_sec1_point(false);
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            public.as_bytes(),
            &rng,
        )
        .ok()?;
        Some(Self { pair, rng })
    }

    /// The public key.
    pub fn verifier(&self) -> P256Verifier {
        let mut point = [0u8; 65];
        point.copy_from_slice(self.pair.public_key().as_ref());
        P256Verifier { point }
    }

    /// Signs `message`: 64 bytes `r ‖ s`.
    ///
    /// # Errors
    /// Only when the system random source fails.
    pub fn sign_fixed(&self, message: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        Ok(self.pair.sign(&self.rng, message)?.as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};

    use super::*;

    #[test]
    fn ring_and_p256_agree_both_ways() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let verifier = P256Verifier::from_sec1(&key.verifying_key().to_sec1_bytes()).unwrap();
        let signature: Signature = key.sign(b"message");
        assert!(verifier.verify(b"message", signature.to_der().as_bytes()));
        assert!(verifier.verify(b"message", &signature.to_bytes()));
        assert!(verifier.verify_fixed(b"message", &signature.to_bytes()));
        assert!(!verifier.verify(b"messagf", signature.to_der().as_bytes()));
        assert!(!verifier.verify_fixed(b"message", signature.to_der().as_bytes()));
        assert!(!verifier.verify(b"message", &[]));

        let signer = P256Signer::from_scalar(&[7u8; 32]).unwrap();
        assert_eq!(signer.verifier(), verifier);
        let made = signer.sign_fixed(b"message").unwrap();
        let parsed = Signature::from_slice(&made).unwrap();
        use p256::ecdsa::signature::Verifier;
        assert!(key.verifying_key().verify(b"message", &parsed).is_ok());
        assert!(key.verifying_key().verify(b"other", &parsed).is_err());
    }

    #[test]
    fn compressed_keys_are_accepted_and_junk_is_not() {
        let key = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let compressed = key.verifying_key().to_sec1_point(true);
        let uncompressed = key.verifying_key().to_sec1_bytes();
        assert_eq!(
            P256Verifier::from_sec1(compressed.as_bytes())
                .unwrap()
                .sec1()[..],
            uncompressed[..]
        );
        assert!(P256Verifier::from_sec1(&[4u8; 65]).is_none());
        assert!(P256Verifier::from_sec1(&[]).is_none());
        assert!(P256Signer::from_scalar(&[0u8; 32]).is_none());
        assert!(P256Signer::from_scalar(&[1u8; 31]).is_none());
    }

    /// RFC 6979 A.2.5 (P-256, SHA-256, message "sample"): the published signature verifies.
    #[test]
    fn rfc6979_p256_sha256_sample_verifies() {
        let public = hex::decode(
            "0460FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6\
             7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299",
        )
        .unwrap();
        let signature = hex::decode(
            "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716\
             F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
        )
        .unwrap();
        let verifier = P256Verifier::from_sec1(&public).unwrap();
        assert!(verifier.verify_fixed(b"sample", &signature));
        assert!(!verifier.verify_fixed(b"test", &signature));
    }
}
