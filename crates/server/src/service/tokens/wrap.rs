//! Sealing under a key derived from the server secret (`JWT_SECRET`), for two uses only:
//! short-lived values that never reach storage (the live-events stream tickets), and
//! reading the token signing keys and webhook secrets that older versions stored this way,
//! once, when `service::keys::legacy` moves them under the master keyring at start. No
//! stored value is written with it any more: keys at rest belong to the key store.
//!
//! The wrapping key is HMAC-SHA256(server secret, label) — one PRF block, as HKDF-Expand
//! with a single output block (RFC 5869 §2.3) — so each use gets its own key and rotating
//! the server secret makes old wraps unreadable (the process refuses them instead of
//! using a wrong key). The AAD binds a wrap to its row id, so a wrapped value copied to
//! another row does not open. Form: base64(nonce(12) ‖ ciphertext ‖ tag(16)).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::infra::keys::random_bytes;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// An AES-256-GCM wrapping key for one purpose.
#[derive(Clone)]
pub struct Wrapper {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Wrapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Wrapper(<redacted>)")
    }
}

/// A wrapped value that does not open: wrong server secret, altered row, or another row's
/// value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("wrapped secret does not open under this server secret")]
pub struct UnwrapError;

impl Wrapper {
    /// Derives the wrapping key for `label` from the server secret.
    pub fn derive(server_secret: &[u8], label: &str) -> Self {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(server_secret)
            .expect("HMAC accepts keys of any length");
        mac.update(b"softpos-wrap-v1\0");
        mac.update(label.as_bytes());
        let key = mac.finalize().into_bytes();
        let cipher = Aes256Gcm::new_from_slice(&key).expect("32-byte key");
        Self { cipher }
    }

    /// Wraps `secret`, bound to `aad`, as base64.
    pub fn wrap(&self, secret: &[u8], aad: &str) -> String {
        B64.encode(self.seal(secret, aad))
    }

    /// Opens a base64 wrapped value bound to `aad`.
    ///
    /// # Errors
    /// [`UnwrapError`] when it is malformed or does not authenticate.
    pub fn unwrap(&self, wrapped: &str, aad: &str) -> Result<Vec<u8>, UnwrapError> {
        let bytes = B64.decode(wrapped).map_err(|_| UnwrapError)?;
        self.open(&bytes, aad)
    }

    /// Seals `secret` bound to `aad`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, secret: &[u8], aad: &str) -> Vec<u8> {
        let nonce_bytes = random_bytes::<12>();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: secret,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short secret cannot fail");
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Wrapper::seal`] produced.
    ///
    /// # Errors
    /// [`UnwrapError`] when it is malformed or does not authenticate.
    pub fn open(&self, bytes: &[u8], aad: &str) -> Result<Vec<u8>, UnwrapError> {
        if bytes.len() < 12 + 16 {
            return Err(UnwrapError);
        }
        let (nonce_bytes, sealed) = bytes.split_at(12);
        let nonce_arr: [u8; 12] = nonce_bytes.try_into().map_err(|_| UnwrapError)?;
        self.cipher
            .decrypt(
                &Nonce::from(nonce_arr),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| UnwrapError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_round_trip_and_refuse_other_secret_label_or_row() {
        let wrapper = Wrapper::derive(&[7u8; 32], "token-signing-key");
        let wrapped = wrapper.wrap(b"secret scalar", "kid-1");
        assert!(!wrapped.contains("secret"));
        assert_eq!(wrapper.unwrap(&wrapped, "kid-1").unwrap(), b"secret scalar");
        assert_eq!(wrapper.unwrap(&wrapped, "kid-2"), Err(UnwrapError));
        let other_label = Wrapper::derive(&[7u8; 32], "webhook-secret");
        assert_eq!(other_label.unwrap(&wrapped, "kid-1"), Err(UnwrapError));
        let other_secret = Wrapper::derive(&[8u8; 32], "token-signing-key");
        assert_eq!(other_secret.unwrap(&wrapped, "kid-1"), Err(UnwrapError));
        assert_eq!(wrapper.unwrap("AAAA", "kid-1"), Err(UnwrapError));
        // Two wraps of one value differ (fresh nonce).
        assert_ne!(wrapper.wrap(b"x", "a"), wrapper.wrap(b"x", "a"));
    }

    /// AES-256-GCM itself against NIST's published vector: "The Galois/Counter Mode of
    /// Operation (GCM)", McGrew & Viega, Appendix B, Test Case 16 (256-bit key, with AAD).
    #[test]
    fn aes_256_gcm_matches_the_gcm_spec_test_case_16() {
        let key = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .unwrap();
        let nonce: [u8; 12] = hex::decode("cafebabefacedbaddecaf888")
            .unwrap()
            .try_into()
            .unwrap();
        let plaintext = hex::decode(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        )
        .unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(
            hex::encode(sealed),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
             76fc6ece0f4e1768cddf8853bb2d551b"
        );
    }
}
