//! The simulated issuer's card file: every application of every `emv-cards` profile, with the
//! keys derived from the TEST ONLY issuer master key its BIN belongs to, its expiry and its PIN.

use core::fmt;

use emv_cards::Card;
use emv_cards::keys::issuer_master_key;
use emv_kernel::apdu::{Command, Occurrence};
use payment_crypto::emv::{CardKeys, Pan, PanSequenceNumber};
use payment_crypto::pinblock::{self, ClearPin};

/// One card account the issuer knows.
pub(crate) struct TestCard {
    pub(crate) pan: &'static str,
    /// PAN sequence number as a number (0–99).
    pub(crate) psn: u8,
    /// Expiry as (year within the century, month).
    pub(crate) expiry: (u8, u8),
    pub(crate) keys: CardKeys,
    /// The PIN reference: what a real issuer keeps as a PIN verification value, kept in clear
    /// here because these are published test cards.
    pub(crate) pin: ClearPin,
    pub(crate) pin_pan: pinblock::Pan,
}

impl fmt::Debug for TestCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCard")
            .field("pan", &crate::mask(self.pan))
            .field("psn", &self.psn)
            .field("version", &self.keys.version())
            .finish_non_exhaustive()
    }
}

/// Builds the card file from every profile of `emv-cards`; an application listed by two profiles
/// (the multi-application card reuses the private-label one) is kept once.
pub(crate) fn load() -> Vec<TestCard> {
    let mut cards: Vec<TestCard> = Vec::new();
    for profile in emv_cards::profiles() {
        let Some(mut card) = Card::profile(profile.name) else {
            continue;
        };
        for app in card.applications() {
            // The expiry accessor answers for the selected application.
            if let Ok(select) = Command::select_by_name(app.aid, Occurrence::First) {
                card.transmit(&select.to_bytes());
            }
            let psn = bcd_value(app.pan_sequence_number);
            if cards.iter().any(|c| c.pan == app.pan && Some(c.psn) == psn) {
                continue;
            }
            if let Some(entry) = entry(&card, &app, psn) {
                cards.push(entry);
            }
        }
    }
    cards
}

fn entry(card: &Card, app: &emv_cards::Application, psn: Option<u8>) -> Option<TestCard> {
    let imk = issuer_master_key(app.issuer_master_key_id)?;
    let keys = CardKeys::derive(
        app.cryptogram_version,
        &imk,
        &Pan::from_digits(app.pan).ok()?,
        PanSequenceNumber::from_bcd(app.pan_sequence_number).ok()?,
    )
    .ok()?;
    let expiry = card.expiry();
    Some(TestCard {
        pan: app.pan,
        psn: psn?,
        expiry: (bcd_value(expiry[0])?, bcd_value(expiry[1])?),
        keys,
        pin: ClearPin::new(app.test_pin).ok()?,
        pin_pan: pinblock::Pan::new(app.pan).ok()?,
    })
}

/// The value of one byte of BCD (`0x25` → 25); `None` when a nibble is not a digit.
pub(crate) fn bcd_value(byte: u8) -> Option<u8> {
    let (high, low) = (byte >> 4, byte & 0x0F);
    (high < 10 && low < 10).then_some(high * 10 + low)
}
