//! Integration tests of the issuer simulator: the real kernel (`emv_kernel::Transaction`) runs
//! against the virtual cards of `emv-cards`, and its online request goes to the simulator.

mod adjust;
mod authorize;
mod scenarios;

use std::sync::OnceLock;

use emv_cards::Card;
use emv_cards::keys::issuer_master_key;
use emv_kernel::{Date, Outcome, OutcomeKind, Step, Tag, Transaction, TransactionParams};
use hex_literal::hex;
use issuer_sim::{AuthorizationRequest, AuthorizationResponse, IssuerSimulator};
use payment_crypto::SecretKey;
use payment_crypto::emv::{
    ArpcResponse, Atc, CardKeys, Cryptogram, CryptogramVersion, Pan, PanSequenceNumber,
    TransactionInputs, UnpredictableNumber,
};
use payment_crypto::pinblock::{self, ClearPin, PinBlockFormat};
use payment_crypto::random::FixedBytes;

/// The issuer's business date of every test, matching the kernel's transaction date.
pub(crate) const TODAY: &str = "261126";

/// TEST ONLY zone PIN keys: double-length TDES for format 0, AES-128 for format 4.
pub(crate) fn zpk_tdes() -> SecretKey {
    SecretKey::tdes(&hex!("0123456789ABCDEFFEDCBA9876543210")).unwrap()
}

pub(crate) fn zpk_aes() -> SecretKey {
    SecretKey::aes(&hex!("00112233445566778899AABBCCDDEEFF")).unwrap()
}

/// One simulator for format 0 under a TDES zone key, built once (personalisation signs).
pub(crate) fn simulator() -> &'static IssuerSimulator {
    static SIM: OnceLock<IssuerSimulator> = OnceLock::new();
    SIM.get_or_init(|| IssuerSimulator::new(zpk_tdes(), PinBlockFormat::Iso0))
}

/// One simulator for format 4 under an AES zone key.
pub(crate) fn simulator_iso4() -> &'static IssuerSimulator {
    static SIM: OnceLock<IssuerSimulator> = OnceLock::new();
    SIM.get_or_init(|| IssuerSimulator::try_new(zpk_aes(), PinBlockFormat::Iso4).unwrap())
}

/// Runs one transaction of `amount` US cents on 26 November 2026 with a fresh card.
pub(crate) fn run_kernel(profile: &str, amount: u64, un: [u8; 4]) -> (Card, Outcome) {
    let mut card = Card::profile(profile).unwrap();
    let (mut transaction, mut step) = Transaction::new(TransactionParams {
        amount,
        amount_other: 0,
        currency_code: [0x08, 0x40],
        currency_exponent: 2,
        transaction_type: 0x00,
        date: Date::new(2026, 11, 26).unwrap(),
        time: [0x12, 0x00, 0x00],
        unpredictable_number: un,
        config: emv_cards::reader_config(),
    });
    loop {
        match step {
            Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)),
            Step::Done(outcome) => return (card, outcome),
        }
    }
}

/// The online request of a card: what the connector would send.
#[derive(Debug)]
pub(crate) struct Online {
    pub(crate) profile: &'static str,
    pub(crate) card: Card,
    pub(crate) outcome: Outcome,
    pub(crate) pan: String,
    pub(crate) psn: u8,
    pub(crate) expiry_yymm: String,
    pub(crate) amount: u64,
    pub(crate) icc: Vec<u8>,
}

impl Online {
    /// Runs the kernel and expects an online request.
    pub(crate) fn new(profile: &'static str, amount: u64) -> Self {
        Self::try_new(profile, amount).unwrap_or_else(|| panic!("{profile} did not go online"))
    }

    pub(crate) fn try_new(profile: &'static str, amount: u64) -> Option<Self> {
        let (card, outcome) = run_kernel(profile, amount, [0x1A, 0x2B, 0x3C, 0x4D]);
        if outcome.kind != OutcomeKind::OnlineRequest {
            return None;
        }
        let data = &outcome.data;
        let pan = cn_digits(data.get(Tag::ApplicationPan).unwrap());
        let psn = data.get(Tag::PanSequenceNumber).map_or(0, |v| bcd(v[0]));
        let expiry = data.get(Tag::ApplicationExpirationDate).unwrap();
        let expiry_yymm = format!("{:02X}{:02X}", expiry[0], expiry[1]);
        let icc = data.to_tlv();
        Some(Self {
            profile,
            card,
            outcome,
            pan,
            psn,
            expiry_yymm,
            amount,
            icc,
        })
    }

    pub(crate) fn request(&self) -> AuthorizationRequest<'_> {
        AuthorizationRequest {
            pan: &self.pan,
            pan_sequence_number: Some(self.psn),
            expiry_yymm: &self.expiry_yymm,
            amount_minor: self.amount,
            currency_numeric: 840,
            icc_data: &self.icc,
            pin_block: None,
            today_yymmdd: TODAY,
        }
    }

    /// The card's own keys (from the issuer master key its application names), as the card
    /// itself holds them.
    fn card_keys(&self) -> CardKeys {
        let aid = self.outcome.data.get(Tag::DfName).unwrap();
        let app = self.card.application(aid).unwrap();
        let imk = issuer_master_key(app.issuer_master_key_id).unwrap();
        CardKeys::derive(
            app.cryptogram_version,
            &imk,
            &Pan::from_digits(app.pan).unwrap(),
            PanSequenceNumber::from_bcd(app.pan_sequence_number).unwrap(),
        )
        .unwrap()
    }

    /// Checks the response's ARPC as the card would (EMV 4.4 Book 2 section 8.2), with the
    /// ARC or CSU the response carries, under the card's own session key.
    pub(crate) fn card_accepts_arpc(&self, response: &AuthorizationResponse) -> bool {
        let Some(arpc) = response.arpc.as_deref() else {
            return false;
        };
        let data = &self.outcome.data;
        let inputs = TransactionInputs {
            atc: Atc::from_bytes(data.get(Tag::ApplicationTransactionCounter).unwrap()).unwrap(),
            unpredictable_number: Some(
                UnpredictableNumber::from_bytes(data.get(Tag::UnpredictableNumber).unwrap())
                    .unwrap(),
            ),
        };
        let arqc = Cryptogram::from_bytes(data.get(Tag::ApplicationCryptogram).unwrap()).unwrap();
        let keys = self.card_keys();
        let iad = response.issuer_authentication_data().unwrap();
        let arpc_response = match keys.version() {
            CryptogramVersion::VisaCvn18 | CryptogramVersion::VisaCvn22 => {
                assert_eq!(arpc.len(), 4, "method 2 for {}", self.profile);
                ArpcResponse::Method2 {
                    card_status_update: iad[4..8].try_into().unwrap(),
                    proprietary_data: &[],
                }
            }
            _ => {
                assert_eq!(arpc.len(), 8, "method 1 for {}", self.profile);
                assert_eq!(&iad[8..], response.response_code.as_bytes());
                ArpcResponse::Method1 {
                    response_code: iad[8..10].try_into().unwrap(),
                }
            }
        };
        keys.verify_arpc(&inputs, &arqc, &arpc_response, arpc)
            .is_ok()
    }

    /// The test PIN of the card's application.
    pub(crate) fn test_pin(&self) -> &'static str {
        let aid = self.outcome.data.get(Tag::DfName).unwrap();
        self.card.application(aid).unwrap().test_pin
    }
}

/// An enciphered PIN block of `pin` for `pan` under `zpk`, built by payment-crypto.
pub(crate) fn pin_block(zpk: &SecretKey, format: PinBlockFormat, pin: &str, pan: &str) -> Vec<u8> {
    let pan = pinblock::Pan::new(pan).unwrap();
    let mut rng = FixedBytes::new(&[0x5A, 0xC3, 0x96, 0x0F, 0x71]);
    pinblock::encrypt_pin(
        zpk,
        format,
        &ClearPin::new(pin).unwrap(),
        Some(&pan),
        &mut rng,
    )
    .unwrap()
    .as_bytes()
    .to_vec()
}

fn cn_digits(cn: &[u8]) -> String {
    cn.iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .take_while(|nibble| *nibble != 0x0F)
        .map(|nibble| char::from(b'0' + nibble))
        .collect()
}

fn bcd(byte: u8) -> u8 {
    (byte >> 4) * 10 + (byte & 0x0F)
}

/// Replaces the value of `tag` in field 55 (same length), re-encoding the whole field.
pub(crate) fn with_value(icc: &[u8], tag: Tag, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut found = false;
    for object in emv_kernel::tlv::parse_all(icc).unwrap() {
        if object.tag == tag {
            found = true;
            emv_kernel::tlv::encode(tag, value, &mut out);
        } else {
            out.extend_from_slice(object.raw);
        }
    }
    assert!(found, "{tag:?} not in the ICC data");
    out
}
