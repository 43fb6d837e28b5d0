//! Reading the ICC data (ISO 8583 field 55) of an authorisation request and checking its ARQC
//! against the card's keys.

use emv_cards::cryptogram::cryptogram_input;
use emv_kernel::tlv::{self, Tag};
use payment_crypto::emv::{Atc, Cryptogram, TransactionInputs, UnpredictableNumber};

use crate::AuthorizationRequest;
use crate::cards::{TestCard, bcd_value};
use crate::decision::DeclineReason;

/// Cryptogram Information Data (`9F27`) bits 8–7 for an ARQC (Book 3 Table 14).
const CID_TYPE_MASK: u8 = 0xC0;
const CID_ARQC: u8 = 0x80;

/// The primitive data objects of field 55, each tag once.
#[derive(Debug)]
pub(crate) struct IccData<'a> {
    items: Vec<(Tag, &'a [u8])>,
}

impl<'a> IccData<'a> {
    /// Parses field 55; `None` for malformed BER-TLV or a tag given twice (which value the card
    /// signed would be ambiguous).
    pub(crate) fn parse(input: &'a [u8]) -> Option<Self> {
        let mut items: Vec<(Tag, &'a [u8])> = Vec::with_capacity(32);
        let mut duplicate = false;
        tlv::for_each_primitive(input, &mut |object| {
            if items.iter().any(|(tag, _)| *tag == object.tag) {
                duplicate = true;
            }
            items.push((object.tag, object.value));
        })
        .ok()?;
        (!duplicate && !items.is_empty()).then_some(Self { items })
    }

    pub(crate) fn get(&self, tag: Tag) -> Option<&'a [u8]> {
        self.items
            .iter()
            .find(|(candidate, _)| *candidate == tag)
            .map(|(_, value)| *value)
    }
}

/// What the issuer needs to answer once the ARQC has verified.
#[derive(Debug)]
pub(crate) struct VerifiedArqc {
    pub(crate) arqc: Cryptogram,
    pub(crate) inputs: TransactionInputs,
}

/// Checks that the ICC data belongs to this request and card, then recomputes the ARQC over the
/// data the card's cryptogram version covers (`emv_cards::cryptogram`) and compares it with `9F26`.
pub(crate) fn verify_arqc(
    card: &TestCard,
    request: &AuthorizationRequest<'_>,
    expiry: (u8, u8),
    icc: &IccData<'_>,
) -> Result<VerifiedArqc, DeclineReason> {
    let required = |tag: Tag| icc.get(tag).ok_or(DeclineReason::FormatError);
    let arqc = Cryptogram::from_bytes(required(Tag::ApplicationCryptogram)?)
        .map_err(|_| DeclineReason::FormatError)?;
    let atc = Atc::from_bytes(required(Tag::ApplicationTransactionCounter)?)
        .map_err(|_| DeclineReason::FormatError)?;
    let un = UnpredictableNumber::from_bytes(required(Tag::UnpredictableNumber)?)
        .map_err(|_| DeclineReason::FormatError)?;
    required(Tag::ApplicationInterchangeProfile)?;
    let amount = bcd_number(required(Tag::AmountAuthorised)?).ok_or(DeclineReason::FormatError)?;
    let currency =
        bcd_number(required(Tag::TransactionCurrencyCode)?).ok_or(DeclineReason::FormatError)?;

    let mut consistent = amount == request.amount_minor
        && currency == u64::from(request.currency_numeric)
        && icc
            .get(Tag::CryptogramInformationData)
            .is_none_or(|cid| cid.len() == 1 && cid[0] & CID_TYPE_MASK == CID_ARQC);
    if let Some(pan) = icc.get(Tag::ApplicationPan) {
        consistent &= cn_digits_equal(pan, card.pan);
    }
    if let Some(psn) = icc.get(Tag::PanSequenceNumber) {
        consistent &= psn.len() == 1 && bcd_value(psn[0]) == Some(card.psn);
    }
    if let Some(date) = icc.get(Tag::ApplicationExpirationDate) {
        consistent &= date.len() == 3
            && (bcd_value(date[0]), bcd_value(date[1])) == (Some(expiry.0), Some(expiry.1));
    }
    if !consistent {
        return Err(DeclineReason::IccDataMismatch);
    }

    let inputs = TransactionInputs {
        atc,
        unpredictable_number: Some(un),
    };
    let input = cryptogram_input(card.keys.version(), icc.items.as_slice());
    card.keys
        .verify_cryptogram(&inputs, &input, &arqc)
        .map_err(|_| DeclineReason::ArqcInvalid)?;
    Ok(VerifiedArqc { arqc, inputs })
}

/// A BCD number of up to 12 digits (`n` format: amounts, currency codes); `None` when a nibble is
/// not a digit.
fn bcd_number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 6 {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, byte| {
        bcd_value(*byte).map(|value| acc * 100 + u64::from(value))
    })
}

/// Whether a `cn` value (digits, then `F` padding) holds exactly `digits`.
fn cn_digits_equal(cn: &[u8], digits: &str) -> bool {
    let nibbles = cn
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .take_while(|nibble| *nibble != 0x0F);
    let mut expected = digits.bytes().map(|c| c.wrapping_sub(b'0'));
    let mut equal = true;
    let mut count = 0;
    for nibble in nibbles {
        equal &= expected.next() == Some(nibble);
        count += 1;
    }
    equal && expected.next().is_none() && count > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcd_numbers_and_cn_digits() {
        assert_eq!(
            bcd_number(&[0x00, 0x00, 0x00, 0x00, 0x25, 0x51]),
            Some(2551)
        );
        assert_eq!(bcd_number(&[0x08, 0x40]), Some(840));
        assert_eq!(bcd_number(&[0x0A]), None);
        assert!(cn_digits_equal(&[0x47, 0x61, 0x73, 0x9F], "4761739"));
        assert!(!cn_digits_equal(&[0x47, 0x61, 0x73, 0x9F], "476173"));
        assert!(!cn_digits_equal(&[0x47, 0x61, 0x73, 0x90], "4761739"));
    }

    #[test]
    fn duplicate_tags_and_bad_tlv_are_refused() {
        assert!(IccData::parse(&[0x9F, 0x36, 0x02, 0x00, 0x01]).is_some());
        assert!(
            IccData::parse(&[0x9F, 0x36, 0x02, 0x00, 0x01, 0x9F, 0x36, 0x02, 0x00, 0x02]).is_none()
        );
        assert!(IccData::parse(&[0x9F, 0x36, 0x05, 0x00]).is_none());
        assert!(IccData::parse(&[]).is_none());
    }
}
