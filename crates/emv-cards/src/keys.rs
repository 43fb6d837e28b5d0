//! The TEST ONLY key material of the virtual cards that other components need: the CA public keys
//! a terminal must trust to authenticate the cards offline, and the issuer master keys an issuer
//! simulator needs to verify their cryptograms.
//!
//! # Security
//! Every key here is published test data. A production terminal must never load these CA keys
//! and a production issuer must never hold these master keys. The CA indices `E3` and `E4` were
//! chosen outside the ranges the payment systems publish for their own test keys, so a terminal
//! configured with both sets cannot confuse them.

use alloc::vec::Vec;

use payment_crypto::SecretKey;

use crate::rsa::RsaTestKey;
use crate::test_keys;

/// RID of Visa (`A000000003`).
pub const RID_VISA: [u8; 5] = [0xA0, 0x00, 0x00, 0x00, 0x03];
/// RID of Mastercard (`A000000004`).
pub const RID_MASTERCARD: [u8; 5] = [0xA0, 0x00, 0x00, 0x00, 0x04];

/// CA Public Key Index of the Visa-like test CA key (tag `8F` on the cards).
pub const CA_INDEX_VISA: u8 = 0xE3;
/// CA Public Key Index of the Mastercard-like test CA key.
pub const CA_INDEX_MASTERCARD: u8 = 0xE4;

/// A test CA public key as a terminal stores it (Book 2 section 11.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCaPublicKey {
    /// Registered Application Provider Identifier.
    pub rid: [u8; 5],
    /// CA Public Key Index.
    pub index: u8,
    /// Modulus, big-endian.
    pub modulus: Vec<u8>,
    /// Public exponent, big-endian.
    pub exponent: Vec<u8>,
}

impl TestCaPublicKey {
    /// The checksum payment systems publish with a CA key: SHA-1 over RID, index, modulus and
    /// exponent (Book 2 section 11.2.2).
    #[must_use]
    pub fn checksum(&self) -> [u8; 20] {
        crate::cert::sha1(&[&self.rid, &[self.index], &self.modulus, &self.exponent])
    }
}

/// The test CA public keys that certify the virtual cards' issuers. A terminal (or the kernel's
/// conformance suite) adds them to its CA key table to authenticate the cards offline.
#[must_use]
pub fn test_ca_public_keys() -> Vec<TestCaPublicKey> {
    [
        (RID_VISA, CA_INDEX_VISA, test_keys::CA_VISA),
        (
            RID_MASTERCARD,
            CA_INDEX_MASTERCARD,
            test_keys::CA_MASTERCARD,
        ),
    ]
    .into_iter()
    .map(|(rid, index, key)| ca_public_key(rid, index, &key))
    .collect()
}

fn ca_public_key(rid: [u8; 5], index: u8, key: &RsaTestKey) -> TestCaPublicKey {
    TestCaPublicKey {
        rid,
        index,
        modulus: key.modulus_bytes(),
        exponent: key.exponent_bytes(),
    }
}

/// Identifier of the Visa-like test issuer's application cryptogram master key.
pub const IMK_VISA: &str = "test-imk-ac-visa-1";
/// Identifier of the Mastercard-like test issuer's application cryptogram master key.
pub const IMK_MASTERCARD: &str = "test-imk-ac-mastercard-1";
/// Identifier of the master key of the test issuer whose AID no kernel supports.
pub const IMK_PRIVATE_LABEL: &str = "test-imk-ac-private-label-1";

/// TEST ONLY issuer master keys for application cryptograms (double-length TDES, odd parity),
/// by identifier. Generated once from a random source; published here as test data.
const ISSUER_MASTER_KEYS: &[(&str, &str)] = &[
    (IMK_VISA, "195E0B1686BA83DA4616EC7F682C0EA1"),
    (IMK_MASTERCARD, "54921C8315A2B902D5134A349E0B37B6"),
    (IMK_PRIVATE_LABEL, "1502EAEA46DFF7A252CE07E6522F9402"),
];

/// The identifiers of every test issuer master key.
pub fn issuer_master_key_ids() -> impl Iterator<Item = &'static str> {
    ISSUER_MASTER_KEYS.iter().map(|(id, _)| *id)
}

/// The TEST ONLY issuer master key (MK-AC) with identifier `id`, from which each card's ICC
/// master key is derived (Book 2 Annex A1.4). `None` for an unknown identifier.
///
/// An issuer simulator calls this with [`crate::Card::issuer_master_key_id`]; it must refuse to
/// run with these keys outside test and demo environments.
#[must_use]
pub fn issuer_master_key(id: &str) -> Option<SecretKey> {
    let (_, hex) = ISSUER_MASTER_KEYS
        .iter()
        .find(|(candidate, _)| *candidate == id)?;
    SecretKey::tdes(&crate::rsa::decode_hex(hex)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_master_key_decodes() {
        for (id, hex) in ISSUER_MASTER_KEYS {
            assert!(crate::rsa::is_hex(hex) && hex.len() == 32, "{id}");
            assert!(issuer_master_key(id).is_some(), "{id}");
        }
        assert!(issuer_master_key("production").is_none());
    }
}
