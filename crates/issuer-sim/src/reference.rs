//! Issuer references: how a refund or reversal names the approved authorisation it follows
//! without the PAN, so an acquirer never has to keep cardholder data for follow-ups.
//!
//! Every approval carries a reference (as networks return a transaction identifier): the
//! leftmost 8 bytes of an AES-CMAC (NIST SP 800-38B, through `payment-crypto`) under the
//! simulator's reference key over the card (PAN, PAN sequence number), the authorisation code,
//! the amount and the currency, in 16 upper-case hex digits. The simulator keeps no ledger: it
//! finds the card of a follow-up by recomputing the reference for each card of its file, so a
//! follow-up that changes the original amount, currency or authorisation code names no
//! authorisation and is refused.
//!
//! TEST ONLY: the reference key is published below, as the issuer master keys are in
//! `emv-cards`; it makes references unguessable for nobody, only unambiguous.

use payment_crypto::SecretKey;
use payment_crypto::mac::{MacAlgorithm, compute_mac};

use crate::cards::TestCard;

/// TEST ONLY AES-128 reference key.
const REFERENCE_KEY: [u8; 16] = [
    0x53, 0x55, 0x4E, 0x42, 0x41, 0x59, 0x2D, 0x53, 0x49, 0x4D, 0x2D, 0x52, 0x45, 0x46, 0x2D, 0x31,
];
const DOMAIN: &[u8] = b"softpos-issuer-sim-reference-v1";
/// Reference length in bytes (hex digits / 2).
const LEN: usize = 8;

/// What a reference binds.
pub(crate) struct Original<'a> {
    pub(crate) authorisation_code: &'a str,
    pub(crate) amount_minor: u64,
    pub(crate) currency_numeric: u16,
}

/// The reference of an approval of `original` on `card`.
pub(crate) fn compute(card: &TestCard, original: &Original<'_>) -> Option<String> {
    let key = SecretKey::aes(&REFERENCE_KEY).ok()?;
    let mut data = Vec::with_capacity(96);
    data.extend_from_slice(DOMAIN);
    // Length-prefixed fields: no two inputs share an encoding.
    for field in [card.pan.as_bytes(), original.authorisation_code.as_bytes()] {
        data.push(u8::try_from(field.len()).ok()?);
        data.extend_from_slice(field);
    }
    data.push(card.psn);
    data.extend_from_slice(&original.amount_minor.to_be_bytes());
    data.extend_from_slice(&original.currency_numeric.to_be_bytes());
    let mac = compute_mac(MacAlgorithm::Cmac, &key, &data, LEN).ok()?;
    Some(
        mac.as_bytes()
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect(),
    )
}

/// Whether `text` has the shape of a reference (16 upper-case hex digits).
pub(crate) fn well_formed(text: &str) -> bool {
    text.len() == 2 * LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
}

/// The card whose approval of `original` has `reference`, if any.
pub(crate) fn find<'c>(
    cards: &'c [TestCard],
    reference: &str,
    original: &Original<'_>,
) -> Option<&'c TestCard> {
    // References are not secret (the key is published), so a plain comparison is enough.
    cards
        .iter()
        .find(|card| compute(card, original).as_deref() == Some(reference))
}
