//! What the virtual cards' application cryptograms cover, so an issuer host can rebuild the MAC
//! input from the data of an authorisation request.
//!
//! EMV Book 2 section 8.1.1 leaves the choice of data to the issuer, with a recommended minimum
//! set (Table 26): the terminal data below, then the card's AIP and ATC. The cards append what
//! their scheme's cryptogram versions append:
//! - Visa cryptogram versions: the whole Issuer Application Data (`9F10`), as CVN 18 and 22 do;
//! - M/Chip and the plain EMV version: the 6-byte Card Verification Results inside the Issuer
//!   Application Data (bytes 3 to 8 of `9F10`).
//!
//! Missing values count as zeros of their length, and values are fitted to their length as Book 3
//! section 5.4 prescribes for DOLs.

use alloc::vec::Vec;

use emv_kernel::dol::{DataSource, fit};
use emv_kernel::tags::{Format, format_of};
use emv_kernel::tlv::Tag;
use payment_crypto::emv::CryptogramVersion;

/// The terminal data at the start of every cryptogram input, with their lengths (Book 2
/// Table 26): amount authorised, amount other, terminal country code, TVR, transaction currency
/// code, transaction date, transaction type, unpredictable number.
pub const TERMINAL_DATA: [(Tag, usize); 8] = [
    (Tag::AmountAuthorised, 6),            // 9F02
    (Tag::AmountOther, 6),                 // 9F03
    (Tag::TerminalCountryCode, 2),         // 9F1A
    (Tag::TerminalVerificationResults, 5), // 95
    (Tag::TransactionCurrencyCode, 2),     // 5F2A
    (Tag::TransactionDate, 3),             // 9A
    (Tag::TransactionType, 1),             // 9C
    (Tag::UnpredictableNumber, 4),         // 9F37
];

/// Where the Card Verification Results sit in an M/Chip-style Issuer Application Data:
/// key derivation index (1), cryptogram version number (1), CVR (6), ...
const CVR_RANGE: core::ops::Range<usize> = 2..8;

/// Builds the cryptogram input of a card whose cryptogram version is `version` from the data of
/// a transaction: the [`TERMINAL_DATA`] values, the AIP (`82`), the ATC (`9F36`), then the Issuer
/// Application Data (`9F10`) or its CVR, as the module documentation describes.
///
/// `data` must give the values as the card saw them (the PDOL or CDOL1 data the terminal sent)
/// and as the card returned them (AIP, ATC, IAD).
#[must_use]
pub fn cryptogram_input(version: CryptogramVersion, data: &(impl DataSource + ?Sized)) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for (tag, len) in TERMINAL_DATA {
        fit(data.value(tag), format_of(tag), len, &mut out);
    }
    fit(
        data.value(Tag::ApplicationInterchangeProfile),
        Format::B,
        2,
        &mut out,
    );
    fit(
        data.value(Tag::ApplicationTransactionCounter),
        Format::B,
        2,
        &mut out,
    );
    let iad = data.value(Tag::IssuerApplicationData).unwrap_or_default();
    match version {
        CryptogramVersion::MChip | CryptogramVersion::Emv => {
            fit(iad.get(CVR_RANGE), Format::B, CVR_RANGE.len(), &mut out);
        }
        _ => out.extend_from_slice(iad),
    }
    out
}
