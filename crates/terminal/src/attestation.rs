//! Software attestation evidence over the server's registration challenge (format
//! `software`): an ECDSA P-256 / SHA-256 signature by the device key over
//! `softpos-device-registration-v1\n<challenge>\n<public key, base64 as sent>`. It proves
//! possession of the key, nothing about the hardware: the server's policy decides whether it
//! accepts the format at all (`ALLOW_SOFTWARE_ATTESTATION`).

use base64::Engine;
use serde::Serialize;

use crate::store::SecureStore;

/// First line of the signed registration message.
pub const REGISTRATION_DOMAIN: &str = "softpos-device-registration-v1";

/// The evidence as the registration body carries it (`attestation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttestationEvidence {
    /// `software`.
    pub format: String,
    /// Base64 DER signature.
    pub signature: String,
    /// Empty for the software format.
    pub certificate_chain: Vec<String>,
}

/// The message the device signs.
#[must_use]
pub fn registration_message(challenge: &str, public_key_b64: &str) -> String {
    format!("{REGISTRATION_DOMAIN}\n{challenge}\n{public_key_b64}")
}

/// Signs the challenge with the store's device key.
#[must_use]
pub fn software_evidence(store: &SecureStore, challenge: &str) -> AttestationEvidence {
    let message = registration_message(challenge, &store.public_key_b64());
    AttestationEvidence {
        format: "software".to_owned(),
        signature: base64::engine::general_purpose::STANDARD.encode(store.sign(message.as_bytes())),
        certificate_chain: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeviceConfig;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn evidence_verifies_over_the_challenge_and_key() {
        let store = SecureStore::in_memory(DeviceConfig::default());
        let evidence = software_evidence(&store, "challenge-123");
        assert_eq!(evidence.format, "software");
        let der = base64::engine::general_purpose::STANDARD
            .decode(&evidence.signature)
            .unwrap();
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&store.public_key_sec1()).unwrap();
        let message = format!(
            "softpos-device-registration-v1\nchallenge-123\n{}",
            store.public_key_b64()
        );
        assert!(key.verify(message.as_bytes(), &signature).is_ok());
        let other = registration_message("challenge-124", &store.public_key_b64());
        assert!(key.verify(other.as_bytes(), &signature).is_err());
    }
}
