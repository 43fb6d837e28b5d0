//! Issuer/acquirer simulator for SUNBAY SoftPOS: the built-in processor the server's processor
//! connector calls when no real acquirer is configured.
//!
//! What it owns:
//! - the test BINs `476173` (Visa-like), `541333` (Mastercard-like) and `679999` (private label),
//!   whose TEST ONLY issuer master keys are those of the virtual cards in `emv-cards`; its card
//!   file holds every application of every card profile (PAN, PAN sequence number, expiry, PIN,
//!   cryptogram version);
//! - authorisation ([`IssuerSimulator::authorize`]): ICC data (field 55) checked against the
//!   request, the ARQC recomputed under the card's session key (EMV 4.4 Book 2 section 8.1.2,
//!   the input the card's cryptogram version defines in `emv_cards::cryptogram`), the PIN block
//!   deciphered under the zone PIN key and compared with the card's PIN inside `payment-crypto`
//!   (`pinblock::verify_pin`: the clear PIN never leaves it), the expiry, then the scenario table;
//!   the answer carries an ARPC (Book 2 section 8.2: method 1 with the ARC for M/Chip and EMV
//!   cryptogram versions, method 2 with a Card Status Update for Visa CVN 18 and 22);
//! - reversals and refunds ([`IssuerSimulator::reverse`], [`IssuerSimulator::refund`]): their
//!   inputs validated, answered with response codes; no ledger (the server enforces "never above
//!   the captured amount" and sends the captured amount, which is checked again here);
//! - follow-ups by reference ([`IssuerSimulator::reverse_referenced`],
//!   [`IssuerSimulator::refund_referenced`]): every approval carries an issuer reference bound to
//!   its card, authorisation code, amount and currency, so an acquirer refunds or reverses it
//!   without keeping the PAN (module `reference`).
//!
//! Keys, MACs, PIN blocks and TLV come from `payment-crypto` and `emv-kernel`; nothing is
//! re-implemented. No I/O, no clock ("today" is a field of the request), no randomness: the same
//! request always gets the same answer, including its authorisation code.
//!
//! # Order of the checks
//! 1. Malformed request (PAN, expiry `YYMM`, today `YYMMDD`, currency, ICC data that is not
//!    BER-TLV, lacks `9F26`, `9F36`, `9F37`, `82`, `9F02` or `5F2A`, or repeats a tag): `30`.
//! 2. No test card with this PAN and PAN sequence number: `14` (invalid card).
//! 3. Amount ending in `91`: `91` (issuer unavailable), before any other check.
//! 4. ICC data that disagrees with the request (amount `9F02`, currency `5F2A`, and when present
//!    PAN `5A`, PSN `5F34`, expiry `5F24`, a CID `9F27` that is not an ARQC): `82`
//!    (`icc_data_mismatch`); an ARQC that does not verify: `82` (`arqc_invalid`). No ARPC.
//! 5. Card expired on `today` (end of its expiry month), or a request expiry that is not the
//!    card's: `54`.
//! 6. PIN block present: invalid block under the zone PIN key `81`, wrong PIN `55`. No PIN block
//!    while field 55 shows the kernel chose enciphered PIN online (Kernel 2: CVM Results `9F34`;
//!    Kernel 3: CTQ `9F6C` "online PIN required" with TTQ `9F66` "online PIN supported"): `55`
//!    (`pin_required`).
//! 7. The scenario table, by the last two digits of the amount in minor units:
//!
//! | amount ends in | scenario | decision | DE 39 |
//! | --- | --- | --- | --- |
//! | `51` | `insufficient_funds` | declined | `51` |
//! | `05` | `do_not_honour` | declined | `05` |
//! | `55` | `incorrect_pin` | declined | `55` |
//! | `54` | `expired_card` | declined | `54` |
//! | `91` | `issuer_unavailable` | no answer (step 3) | `91` |
//! | anything else | `approve` | approved | `00` |
//!
//! Every answer after a verified ARQC carries an ARPC over it with the answer's response code
//! (declines too, as issuers do); approvals carry a 6-digit authorisation code derived from the
//! ARPC.
//!
//! ```
//! use issuer_sim::IssuerSimulator;
//! assert_eq!(IssuerSimulator::scenarios().len(), 6);
//! ```
//!
//! # Cost
//! One authorisation takes 31–43 µs on the project's 2-core machine (`cargo bench -p issuer-sim
//! --bench authorize`: M/Chip 33 µs, Visa CVN 18 38 µs, Visa with a format 0 PIN block 43 µs), so
//! it is a small share of an end-to-end payment.
//!
//! # Security
//! TEST ONLY: the issuer master keys and PINs are published in `emv-cards`. A deployment must
//! refuse to start this simulator outside test and demo environments. `Debug` of requests,
//! responses and the simulator never shows a PAN (first six and last four only), a PIN block or
//! key material, and no error carries them.

mod adjust;
mod cards;
mod decision;
mod icc;
mod reference;
mod scenario;

use core::fmt;

use payment_crypto::SecretKey;
use payment_crypto::emv::{ArpcResponse, CryptogramVersion};
use payment_crypto::pinblock::{self, EncryptedPinBlock, PinBlockFormat};

pub use adjust::{
    FollowUpRequest, RefundRequest, RefundResponse, RequestError, ReversalRequest, ReversalResponse,
};
pub use decision::{Checks, Decision, DeclineReason};
pub use scenario::Scenario;

use cards::TestCard;
use icc::IccData;

/// Card Status Update of an ARPC method 2 answer (Visa VIS 1.6, Card Status Update: byte 2 bit 8
/// "issuer approves online transaction"); the other bits (PIN try counter, card and application
/// block, counter updates) are left at zero.
const CSU_APPROVED: [u8; 4] = [0x00, 0x80, 0x00, 0x00];
const CSU_DECLINED: [u8; 4] = [0x00; 4];

/// Errors configuring the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatorError {
    /// The zone PIN key cannot encipher blocks of the PIN block format (format 4 needs AES,
    /// formats 0, 1 and 3 need TDES).
    #[error("the zone PIN key's algorithm does not fit the PIN block format")]
    ZoneKeyFormatMismatch,
}

impl SimulatorError {
    /// Stable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::ZoneKeyFormatMismatch => "zone_key_format_mismatch",
        }
    }
}

/// The simulated issuer: its card file, and the zone PIN key shared with the acquirer.
pub struct IssuerSimulator {
    zpk: SecretKey,
    format: PinBlockFormat,
    cards: Vec<TestCard>,
}

impl fmt::Debug for IssuerSimulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerSimulator")
            .field("zpk", &self.zpk.algorithm())
            .field("format", &self.format)
            .field("cards", &self.cards.len())
            .finish()
    }
}

/// An authorisation request as the acquirer's connector sends it (the parts of an ISO 8583
/// 0100 message the simulator reads).
pub struct AuthorizationRequest<'a> {
    /// Primary account number, 12 to 19 decimal digits.
    pub pan: &'a str,
    /// PAN sequence number as a number (0–99; `Some(1)` for `5F34` = `01`); `None`: the ICC
    /// data's `5F34`, or 0 when it has none.
    pub pan_sequence_number: Option<u8>,
    /// Expiry date `YYMM`.
    pub expiry_yymm: &'a str,
    /// Amount in minor units of the currency.
    pub amount_minor: u64,
    /// ISO 4217 numeric currency code, e.g. 840.
    pub currency_numeric: u16,
    /// Field 55: BER-TLV from the kernel's online request.
    pub icc_data: &'a [u8],
    /// PIN block under the zone PIN key, in the simulator's format.
    pub pin_block: Option<&'a [u8]>,
    /// The issuer's business date `YYMMDD`.
    pub today_yymmdd: &'a str,
}

impl fmt::Debug for AuthorizationRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("pan", &mask(self.pan))
            .field("pan_sequence_number", &self.pan_sequence_number)
            .field("amount_minor", &self.amount_minor)
            .field("currency_numeric", &self.currency_numeric)
            .field("icc_data_len", &self.icc_data.len())
            .field("pin_block", &self.pin_block.map(|_| "<redacted>"))
            .field("today_yymmdd", &self.today_yymmdd)
            .finish_non_exhaustive()
    }
}

/// The issuer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    /// What it decided.
    pub decision: Decision,
    /// ISO 8583 field 39.
    pub response_code: &'static str,
    /// ARPC (8 bytes for method 1, 4 for method 2), whenever the ARQC verified and the issuer
    /// answered.
    pub arpc: Option<Vec<u8>>,
    /// Six digits, approvals only.
    pub authorisation_code: Option<String>,
    /// The issuer's reference of an approval (16 hex digits): refunds and reversals name the
    /// approval by it ([`FollowUpRequest`]) instead of the PAN. Approvals only.
    pub reference: Option<String>,
    /// What the issuer found.
    pub checks: Checks,
}

impl AuthorizationResponse {
    /// Issuer Authentication Data (tag `91`) to send to the card: ARPC || ARC for method 1,
    /// ARPC || CSU for method 2 (EMV 4.4 Book 2 section 8.2).
    #[must_use]
    pub fn issuer_authentication_data(&self) -> Option<Vec<u8>> {
        let arpc = self.arpc.as_ref()?;
        let mut data = arpc.clone();
        if arpc.len() == 8 {
            data.extend_from_slice(self.response_code.as_bytes());
        } else {
            data.extend_from_slice(&csu(self.decision));
        }
        Some(data)
    }

    fn new(decision: Decision, checks: Checks) -> Self {
        Self {
            decision,
            response_code: decision.response_code(),
            arpc: None,
            authorisation_code: None,
            reference: None,
            checks,
        }
    }
}

impl IssuerSimulator {
    /// `zpk`: the zone PIN key shared with the acquirer; `format`: the PIN block format under it
    /// (0 or 4). A key that does not fit the format makes every PIN block invalid (`81`); use
    /// [`IssuerSimulator::try_new`] to refuse it up front.
    ///
    /// Loads the card file: personalising the virtual cards costs a few RSA signatures, so build
    /// one simulator and share it.
    #[must_use]
    pub fn new(zpk: SecretKey, format: PinBlockFormat) -> Self {
        Self {
            zpk,
            format,
            cards: cards::load(),
        }
    }

    /// As [`IssuerSimulator::new`], refusing a zone PIN key that cannot serve `format`.
    ///
    /// # Errors
    /// [`SimulatorError::ZoneKeyFormatMismatch`].
    pub fn try_new(zpk: SecretKey, format: PinBlockFormat) -> Result<Self, SimulatorError> {
        let fits = if format == PinBlockFormat::Iso4 {
            !zpk.algorithm().is_tdes()
        } else {
            zpk.algorithm().is_tdes()
        };
        if !fits {
            return Err(SimulatorError::ZoneKeyFormatMismatch);
        }
        Ok(Self::new(zpk, format))
    }

    /// The documented scenario table (for docs and the console).
    #[must_use]
    pub fn scenarios() -> &'static [Scenario] {
        scenario::SCENARIOS
    }

    /// The cryptogram version of the test card with this PAN and PAN sequence number (0–99), if
    /// the issuer knows it.
    #[must_use]
    pub fn cryptogram_version(
        &self,
        pan: &str,
        pan_sequence_number: u8,
    ) -> Option<CryptogramVersion> {
        self.card(pan, pan_sequence_number)
            .map(|card| card.keys.version())
    }

    /// Authorises a sale; the order of the checks is in the crate documentation.
    #[must_use]
    pub fn authorize(&self, request: &AuthorizationRequest<'_>) -> AuthorizationResponse {
        let mut checks = Checks::default();
        let declined =
            |reason, checks| AuthorizationResponse::new(Decision::Declined(reason), checks);
        let (Some(expiry), Some(today), Some(icc), true) = (
            parse_yymm(request.expiry_yymm),
            parse_yymmdd(request.today_yymmdd),
            IccData::parse(request.icc_data),
            valid_pan(request.pan) && (1..=999).contains(&request.currency_numeric),
        ) else {
            return declined(DeclineReason::FormatError, checks);
        };
        let psn = match request.pan_sequence_number {
            Some(psn) if psn > 99 => return declined(DeclineReason::FormatError, checks),
            Some(psn) => Some(psn),
            None => match icc.get(emv_kernel::Tag::PanSequenceNumber) {
                Some([byte]) => cards::bcd_value(*byte),
                Some(_) => None,
                None => Some(0),
            },
        };
        let Some(psn) = psn else {
            return declined(DeclineReason::FormatError, checks);
        };
        let Some(card) = self.card(request.pan, psn) else {
            return declined(DeclineReason::InvalidCard, checks);
        };
        checks.card_known = true;
        let scenario = scenario::for_amount(request.amount_minor);
        if scenario.decision == Decision::IssuerUnavailable {
            return AuthorizationResponse::new(Decision::IssuerUnavailable, checks);
        }

        let verified = icc::verify_arqc(card, request, card.expiry, &icc);
        checks.arqc_valid = verified.is_ok();
        checks.expired = expiry != card.expiry || (today.0, today.1) > card.expiry;
        let pin = match request.pin_block {
            Some(block) => Some(self.verify_pin(card, block)),
            None if online_pin_chosen(&icc) => Some(Err(DeclineReason::PinRequired)),
            None => None,
        };
        checks.pin = pin.map(|result| result == Ok(true));

        let verified = match verified {
            Ok(verified) => verified,
            Err(reason) => return declined(reason, checks),
        };
        let decision = if checks.expired {
            Decision::Declined(DeclineReason::ExpiredCard)
        } else {
            match pin {
                Some(Err(reason)) => Decision::Declined(reason),
                Some(Ok(false)) => Decision::Declined(DeclineReason::IncorrectPin),
                None | Some(Ok(true)) => scenario.decision,
            }
        };
        let mut response = AuthorizationResponse::new(decision, checks);
        let code = response.response_code.as_bytes();
        let arpc_response = match card.keys.version() {
            CryptogramVersion::VisaCvn18 | CryptogramVersion::VisaCvn22 => ArpcResponse::Method2 {
                card_status_update: csu(decision),
                proprietary_data: &[],
            },
            _ => ArpcResponse::Method1 {
                response_code: [code[0], code[1]],
            },
        };
        // Fails only for key and method combinations the test cards do not use.
        if let Ok(arpc) = card
            .keys
            .generate_arpc(&verified.inputs, &verified.arqc, &arpc_response)
        {
            let bytes = arpc.as_bytes();
            if decision.is_approved() {
                let code = authorisation_code(bytes);
                response.reference = reference::compute(
                    card,
                    &reference::Original {
                        authorisation_code: &code,
                        amount_minor: request.amount_minor,
                        currency_numeric: request.currency_numeric,
                    },
                );
                response.authorisation_code = Some(code);
            }
            response.arpc = Some(bytes.to_vec());
        }
        response
    }

    fn card(&self, pan: &str, psn: u8) -> Option<&TestCard> {
        self.cards
            .iter()
            .find(|card| card.pan == pan && card.psn == psn)
    }

    /// `Ok(matches)`, or the decline for a block that is not a valid block under the zone key.
    fn verify_pin(&self, card: &TestCard, block: &[u8]) -> Result<bool, DeclineReason> {
        let block =
            EncryptedPinBlock::from_bytes(block).map_err(|_| DeclineReason::PinBlockInvalid)?;
        pinblock::verify_pin(
            &self.zpk,
            self.format,
            &block,
            Some(&card.pin_pan),
            &card.pin,
        )
        .map_err(|_| DeclineReason::PinBlockInvalid)
    }
}

/// Whether the kernel chose enciphered PIN online, from field 55: Kernel 2 reports it in the CVM
/// Results (`9F34` byte 1 bits 6–1 = `02`, Book 4 Annex A4); Kernel 3 reports no CVM Results and
/// chooses online PIN when the card's CTQ (`9F6C`) byte 1 b8 "online PIN required" meets the
/// reader's TTQ (`9F66`) byte 1 b3 "online PIN supported" on an online transaction (Book C-3,
/// cardholder verification).
fn online_pin_chosen(icc: &IccData<'_>) -> bool {
    const ENCIPHERED_PIN_ONLINE: u8 = 0x02;
    let bit = |tag, mask| {
        icc.get(tag)
            .and_then(|value| value.first())
            .is_some_and(|byte| byte & mask != 0)
    };
    let kernel2 = icc
        .get(emv_kernel::Tag::CvmResults)
        .and_then(|results| results.first())
        .is_some_and(|method| method & 0x3F == ENCIPHERED_PIN_ONLINE);
    let kernel3 = bit(emv_kernel::Tag::CardTransactionQualifiers, 0x80)
        && bit(emv_kernel::Tag::TerminalTransactionQualifiers, 0x04);
    kernel2 || kernel3
}

fn csu(decision: Decision) -> [u8; 4] {
    if decision.is_approved() {
        CSU_APPROVED
    } else {
        CSU_DECLINED
    }
}

/// Six decimal digits from the first four bytes of the ARPC: deterministic, and different for
/// every ARQC.
fn authorisation_code(arpc: &[u8]) -> String {
    let mut word = [0u8; 4];
    word.copy_from_slice(&arpc[..4]);
    format!("{:06}", u32::from_be_bytes(word) % 1_000_000)
}

pub(crate) fn valid_pan(pan: &str) -> bool {
    (12..=19).contains(&pan.len()) && pan.bytes().all(|c| c.is_ascii_digit())
}

fn digits<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (pair[0] - b'0') * 10 + (pair[1] - b'0');
    }
    Some(out)
}

/// `YYMM` → (year, month).
fn parse_yymm(text: &str) -> Option<(u8, u8)> {
    let [yy, mm] = digits::<2>(text)?;
    (1..=12).contains(&mm).then_some((yy, mm))
}

/// `YYMMDD` → (year, month, day).
fn parse_yymmdd(text: &str) -> Option<(u8, u8, u8)> {
    let [yy, mm, dd] = digits::<3>(text)?;
    ((1..=12).contains(&mm) && (1..=31).contains(&dd)).then_some((yy, mm, dd))
}

/// First six and last four digits, the rest `*`.
pub(crate) fn mask(pan: &str) -> String {
    if !pan.is_ascii() || pan.len() < 10 {
        return "*".repeat(pan.len().min(19));
    }
    format!(
        "{}{}{}",
        &pan[..6],
        "*".repeat(pan.len() - 10),
        &pan[pan.len() - 4..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<IssuerSimulator>();
    }

    #[test]
    fn dates_and_masks() {
        assert_eq!(parse_yymm("2911"), Some((29, 11)));
        assert_eq!(parse_yymm("2913"), None);
        assert_eq!(parse_yymm("291"), None);
        assert_eq!(parse_yymmdd("261126"), Some((26, 11, 26)));
        assert_eq!(parse_yymmdd("261100"), None);
        assert_eq!(mask("4761739001010010"), "476173******0010");
        assert_eq!(mask("12345"), "*****");
        assert_eq!(
            authorisation_code(&[0, 0, 0x30, 0x39, 9, 9, 9, 9]),
            "012345"
        );
    }
}
