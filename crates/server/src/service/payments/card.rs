//! Cardholder data and EMV data checks: pure functions, no I/O.
//!
//! The device sends the PAN, expiry and track 2 only inside the DUKPT-encrypted card data;
//! the EMV data (ISO 8583 DE 55) must carry no cardholder data in clear. After decryption
//! the PAN lives in a zeroizing buffer and leaves this module only masked (first six / last
//! four), as its last four digits, or as a keyed HMAC-SHA256 fingerprint.

use emv_kernel::Tag;
use emv_kernel::tlv;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Tags that carry cardholder data and must never arrive outside the encrypted card data:
/// Track 1 (56), Track 2 equivalent (57), PAN (5A), cardholder name (5F20), track 1 and 2
/// discretionary data (9F1F, 9F20), extended name (9F0B), Track 2 data (9F6B).
const CARDHOLDER_TAGS: [u32; 8] = [0x56, 0x57, 0x5A, 0x5F20, 0x9F1F, 0x9F20, 0x9F0B, 0x9F6B];

/// Why card or EMV data is refused; each has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardDataError {
    /// Decrypted card data is not the expected JSON.
    #[error("card data does not decrypt to the expected structure")]
    Undecryptable,
    /// PAN, expiry or sequence number malformed (the Luhn check included).
    #[error("card data has an invalid PAN, expiry or sequence number")]
    Invalid,
    /// The EMV data is not BER-TLV.
    #[error("EMV data is not valid BER-TLV")]
    EmvMalformed,
    /// The EMV data carries cardholder data in clear.
    #[error("EMV data must not contain cardholder data in clear")]
    EmvCardholderData,
    /// A required EMV data object is missing.
    #[error("EMV data lacks the application cryptogram, amount or currency")]
    EmvIncomplete,
    /// 9F02 differs from the request's amount.
    #[error("EMV amount authorised differs from the request amount")]
    EmvAmountMismatch,
    /// 5F2A differs from the request's currency.
    #[error("EMV transaction currency differs from the request currency")]
    EmvCurrencyMismatch,
}

impl CardDataError {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Undecryptable => "card_data_undecryptable",
            Self::Invalid => "card_data_invalid",
            Self::EmvMalformed => "emv_data_malformed",
            Self::EmvCardholderData => "emv_data_contains_cardholder_data",
            Self::EmvIncomplete => "emv_data_incomplete",
            Self::EmvAmountMismatch => "emv_amount_mismatch",
            Self::EmvCurrencyMismatch => "emv_currency_mismatch",
        }
    }
}

/// The plaintext of the encrypted card data (JSON, ISO/IEC 9797-1 method 2 padded).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CardDataJson {
    pan: String,
    expiry: String,
    #[serde(default)]
    pan_sequence_number: Option<u8>,
    /// Track 2 equivalent, hex; checked for shape, used for nothing, never stored.
    #[serde(default)]
    track2: Option<String>,
}

/// Decrypted card data. The PAN is zeroized on drop and never shown by `Debug`.
pub struct CardData {
    pan: Zeroizing<String>,
    /// Expiry `YYMM`.
    pub expiry_yymm: String,
    /// PAN sequence number (5F34), if any.
    pub pan_sequence_number: Option<u8>,
}

impl std::fmt::Debug for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardData")
            .field("pan", &mask_pan(&self.pan))
            .finish_non_exhaustive()
    }
}

impl CardData {
    /// Parses decrypted card data.
    ///
    /// # Errors
    /// [`CardDataError::Undecryptable`] for anything but the JSON shape,
    /// [`CardDataError::Invalid`] for a bad PAN (length, digits, Luhn), expiry or track 2.
    pub fn parse(plaintext: &[u8]) -> Result<Self, CardDataError> {
        let json: CardDataJson =
            serde_json::from_slice(plaintext).map_err(|_| CardDataError::Undecryptable)?;
        let json = ZeroizingJson(json);
        let pan = Zeroizing::new(json.0.pan.clone());
        if !(12..=19).contains(&pan.len())
            || !pan.bytes().all(|b| b.is_ascii_digit())
            || !luhn_ok(&pan)
        {
            return Err(CardDataError::Invalid);
        }
        let expiry = &json.0.expiry;
        let month = expiry.get(2..4).and_then(|m| m.parse::<u8>().ok());
        if expiry.len() != 4
            || !expiry.bytes().all(|b| b.is_ascii_digit())
            || !matches!(month, Some(1..=12))
        {
            return Err(CardDataError::Invalid);
        }
        if let Some(track2) = &json.0.track2
            && (track2.len() > 38 || hex::decode(track2.as_bytes()).is_err())
        {
            return Err(CardDataError::Invalid);
        }
        Ok(Self {
            pan,
            expiry_yymm: expiry.clone(),
            pan_sequence_number: json.0.pan_sequence_number,
        })
    }

    /// The clear PAN, for the PIN translation and the processor message only.
    pub fn expose_pan(&self) -> &str {
        &self.pan
    }

    /// First six and last four digits, the rest `*`.
    pub fn masked(&self) -> String {
        mask_pan(&self.pan)
    }

    /// The last four digits.
    pub fn last4(&self) -> String {
        self.pan[self.pan.len() - 4..].to_owned()
    }

    /// HMAC-SHA256 of the PAN under `key`, hex: searchable, not reversible without the key.
    pub fn fingerprint(&self, key: &[u8]) -> String {
        pan_fingerprint(key, &self.pan)
    }

    /// Card scheme from the BIN, when the EMV data names no known AID.
    pub fn scheme_from_bin(&self) -> &'static str {
        scheme_from_bin(&self.pan)
    }
}

/// Wipes the PAN and track 2 strings of the parsed JSON.
struct ZeroizingJson(CardDataJson);

impl Drop for ZeroizingJson {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.0.pan.zeroize();
        if let Some(track2) = self.0.track2.as_mut() {
            track2.zeroize();
        }
    }
}

/// HMAC-SHA256 of `pan` under `key`, lowercase hex.
pub fn pan_fingerprint(key: &[u8], pan: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(pan.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// First six and last four digits kept, the rest `*`.
pub fn mask_pan(pan: &str) -> String {
    let len = pan.len();
    pan.char_indices()
        .map(|(i, c)| if i < 6 || i + 4 >= len { c } else { '*' })
        .collect()
}

/// ISO/IEC 7812-1 Annex B check digit.
fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn scheme_from_bin(pan: &str) -> &'static str {
    let prefix2: u32 = pan.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    let prefix4: u32 = pan.get(..4).and_then(|p| p.parse().ok()).unwrap_or(0);
    match prefix2 {
        _ if pan.starts_with('4') => "visa",
        51..=55 => "mastercard",
        _ if (2221..=2720).contains(&prefix4) => "mastercard",
        34 | 37 => "amex",
        62 => "unionpay",
        35 => "jcb",
        _ => "other",
    }
}

/// Card scheme from a registered application provider identifier (the AID's first 5 bytes).
fn scheme_from_aid(aid: &[u8]) -> Option<&'static str> {
    match aid.get(..5)? {
        [0xA0, 0x00, 0x00, 0x00, 0x03] => Some("visa"),
        [0xA0, 0x00, 0x00, 0x00, 0x04] => Some("mastercard"),
        [0xA0, 0x00, 0x00, 0x00, 0x25] => Some("amex"),
        [0xA0, 0x00, 0x00, 0x03, 0x33] => Some("unionpay"),
        [0xA0, 0x00, 0x00, 0x00, 0x65] => Some("jcb"),
        _ => None,
    }
}

/// What the server reads from the EMV data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmvSummary {
    /// Scheme from the AID, if the AID is known.
    pub scheme: Option<&'static str>,
}

/// Checks the EMV data: BER-TLV, no cardholder data in clear, an application cryptogram,
/// and amount (9F02, n12) and currency (5F2A, n3) equal to the request's.
///
/// # Errors
/// The [`CardDataError`] naming the first problem.
pub fn check_emv_data(
    emv: &[u8],
    amount_minor: u64,
    currency_numeric: u16,
) -> Result<EmvSummary, CardDataError> {
    let objects = tlv::parse_all(emv).map_err(|_| CardDataError::EmvMalformed)?;
    let mut scheme = None;
    let mut cryptogram = false;
    let mut amount = None;
    let mut currency = None;
    for object in &objects {
        let tag = object.tag;
        if CARDHOLDER_TAGS
            .iter()
            .any(|raw| tag.to_vec() == tag_bytes(*raw))
        {
            return Err(CardDataError::EmvCardholderData);
        }
        if tag == Tag::ApplicationCryptogram {
            cryptogram = object.value.len() == 8;
        } else if tag == Tag::AmountAuthorised {
            amount = bcd_value(object.value);
        } else if tag == Tag::TransactionCurrencyCode {
            currency = bcd_value(object.value);
        } else if tag == Tag::AdfName || tag == Tag::DfName || tag == Tag::AidTerminal {
            scheme = scheme.or_else(|| scheme_from_aid(object.value));
        }
    }
    let (true, Some(amount), Some(currency)) = (cryptogram, amount, currency) else {
        return Err(CardDataError::EmvIncomplete);
    };
    if amount != amount_minor {
        return Err(CardDataError::EmvAmountMismatch);
    }
    if currency != u64::from(currency_numeric) {
        return Err(CardDataError::EmvCurrencyMismatch);
    }
    Ok(EmvSummary { scheme })
}

fn tag_bytes(raw: u32) -> Vec<u8> {
    raw.to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect()
}

/// A packed-BCD numeric (format n) value, `None` when a nibble is not a digit.
fn bcd_value(bytes: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for byte in bytes {
        for nibble in [byte >> 4, byte & 0x0F] {
            if nibble > 9 {
                return None;
            }
            value = value.checked_mul(10)?.checked_add(u64::from(nibble))?;
        }
    }
    Some(value)
}

/// ISO 4217 currencies the processor connection accepts: alpha code → numeric code.
pub fn currency_numeric(alpha: &str) -> Option<u16> {
    Some(match alpha {
        "EUR" => 978,
        "USD" => 840,
        "GBP" => 826,
        "CHF" => 756,
        "CNY" => 156,
        "HKD" => 344,
        "SGD" => 702,
        "JPY" => 392,
        "AUD" => 36,
        "CAD" => 124,
        "SEK" => 752,
        "PLN" => 985,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(pan: &str, expiry: &str) -> Result<CardData, CardDataError> {
        CardData::parse(format!(r#"{{"pan":"{pan}","expiry":"{expiry}"}}"#).as_bytes())
    }

    #[test]
    fn pan_is_checked_masked_and_fingerprinted() {
        // 4111 1111 1111 1111: the well-known Luhn-valid test PAN.
        let data = card("4111111111111111", "2812").unwrap();
        assert_eq!(data.masked(), "411111******1111");
        assert_eq!(data.last4(), "1111");
        assert_eq!(data.scheme_from_bin(), "visa");
        assert!(!format!("{data:?}").contains("4111111111111111"));
        let a = data.fingerprint(b"key one");
        assert_eq!(a.len(), 64);
        assert_ne!(a, data.fingerprint(b"key two"));
        assert_eq!(
            card("4111111111111112", "2812").err(),
            Some(CardDataError::Invalid)
        );
        assert_eq!(
            card("4111111111111111", "2813").err(),
            Some(CardDataError::Invalid)
        );
        assert_eq!(
            card("41111111x1111111", "2812").err(),
            Some(CardDataError::Invalid)
        );
        assert_eq!(
            CardData::parse(b"not json").err(),
            Some(CardDataError::Undecryptable)
        );
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        // RFC 4231 section 4.3, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            pan_fingerprint(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn emv_data_is_checked() {
        let mut emv = Vec::new();
        tlv::encode(
            Tag::ApplicationCryptogram,
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &mut emv,
        );
        tlv::encode(Tag::AmountAuthorised, &[0, 0, 0, 0, 0x12, 0x34], &mut emv);
        tlv::encode(Tag::TransactionCurrencyCode, &[0x09, 0x78], &mut emv);
        tlv::encode(Tag::AdfName, &[0xA0, 0, 0, 0, 4, 0x10, 0x10], &mut emv);
        assert_eq!(
            check_emv_data(&emv, 1234, 978).unwrap().scheme,
            Some("mastercard")
        );
        assert_eq!(
            check_emv_data(&emv, 1235, 978),
            Err(CardDataError::EmvAmountMismatch)
        );
        assert_eq!(
            check_emv_data(&emv, 1234, 840),
            Err(CardDataError::EmvCurrencyMismatch)
        );
        let mut with_pan = emv.clone();
        tlv::encode(Tag::ApplicationPan, &[0x41, 0x11], &mut with_pan);
        assert_eq!(
            check_emv_data(&with_pan, 1234, 978),
            Err(CardDataError::EmvCardholderData)
        );
        assert_eq!(
            check_emv_data(&emv[..emv.len() - 3], 1234, 978),
            Err(CardDataError::EmvMalformed)
        );
        assert_eq!(
            check_emv_data(&emv[11..], 1234, 978),
            Err(CardDataError::EmvIncomplete)
        );
    }
}
