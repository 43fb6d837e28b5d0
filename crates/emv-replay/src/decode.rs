//! The card data a run read, decoded for display.
//!
//! The kernel's outcome carries what an authorisation message needs; a person checking a replay
//! also wants what the card said along the way (label, AFL, CVM list, CA key index). This module
//! reads it from the answers the kernel received, with the kernel's own TLV, AFL and CVM parsers.
//! Malformed answers are skipped here: the kernel's outcome already says what was wrong.
//!
//! Only the masked PAN is kept; Track 2 and the clear PAN never leave [`CardData::from_steps`].

use std::collections::BTreeMap;

use emv_kernel::afl::{self, AflEntry};
use emv_kernel::apdu::{CryptogramType, PPSE_NAME, ins};
use emv_kernel::cvm::{CvmCode, CvmCondition, CvmList};
use emv_kernel::outcome::mask_pan;
use emv_kernel::tlv::{self, Tag};

use crate::replay::ReplayStep;

/// One rule of a CVM list, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvmRuleView {
    /// The two rule bytes in hex.
    pub hex: String,
    /// The method, e.g. `enciphered PIN online`.
    pub method: String,
    /// The condition, e.g. `if terminal supports the CVM`.
    pub condition: String,
    /// Whether the next rule applies when this one fails (byte 1 b7).
    pub continue_if_unsuccessful: bool,
}

/// A CVM list (`8E`), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvmListView {
    /// The raw value in hex.
    pub hex: String,
    /// Amount X (binary, in the application currency).
    pub amount_x: u32,
    /// Amount Y.
    pub amount_y: u32,
    /// The rules, in order.
    pub rules: Vec<CvmRuleView>,
}

/// The card data a run read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardData {
    /// The AID selected (DF Name of the application's FCI), hex.
    pub aid: Option<String>,
    /// Application Label (`50`), or the Application Preferred Name (`9F12`) when there is none.
    pub label: Option<String>,
    /// The PAN (`5A`, else from Track 2 `57`), first six and last four digits only.
    pub masked_pan: Option<String>,
    /// Application Expiration Date (`5F24`) as `YYYY-MM-DD`, else the Track 2 expiry as `YYYY-MM`.
    pub expiry: Option<String>,
    /// Application Interchange Profile (`82`), hex.
    pub aip: Option<String>,
    /// The AIP bits that are set, by name.
    pub aip_flags: Vec<&'static str>,
    /// Application File Locator (`94`), hex.
    pub afl: Option<String>,
    /// The AFL entries.
    pub afl_entries: Vec<AflEntry>,
    /// CVM list (`8E`).
    pub cvm_list: Option<CvmListView>,
    /// Card Transaction Qualifiers (`9F6C`, Kernel 3 only), hex.
    pub ctq: Option<String>,
    /// The CTQ bits that are set, by name.
    pub ctq_flags: Vec<&'static str>,
    /// Cryptogram Information Data (`9F27`) of the last cryptogram, hex.
    pub cid: Option<String>,
    /// The cryptogram type the card returned: `AAC`, `TC` or `ARQC`.
    pub cryptogram_type: Option<&'static str>,
    /// Application Transaction Counter (`9F36`), hex.
    pub atc: Option<String>,
    /// CA Public Key Index (`8F`) the card's certificates use, hex.
    pub ca_key_index: Option<String>,
}

const AIP_BYTE1: &[(u8, &str)] = &[
    (0x40, "SDA supported"),
    (0x20, "DDA supported"),
    (0x10, "cardholder verification supported"),
    (0x08, "terminal risk management to be performed"),
    (0x04, "issuer authentication supported"),
    (0x02, "on-device cardholder verification supported"),
    (0x01, "CDA supported"),
];

const CTQ_BITS: &[(usize, u8, &str)] = &[
    (0, 0x80, "online PIN required"),
    (0, 0x40, "signature required"),
    (0, 0x20, "go online if offline data authentication fails"),
    (
        0,
        0x10,
        "switch interface if offline data authentication fails",
    ),
    (0, 0x08, "go online if application expired"),
    (0, 0x04, "switch interface for cash"),
    (0, 0x02, "switch interface for cashback"),
    (1, 0x80, "consumer device CVM performed"),
    (1, 0x40, "card supports issuer update processing"),
];

fn method_name(code: CvmCode) -> String {
    match code {
        CvmCode::Fail => "fail CVM processing".to_owned(),
        CvmCode::PlaintextPinByIcc => "plaintext PIN verified by ICC".to_owned(),
        CvmCode::EncipheredPinOnline => "enciphered PIN verified online".to_owned(),
        CvmCode::PlaintextPinByIccAndSignature => {
            "plaintext PIN verified by ICC and signature".to_owned()
        }
        CvmCode::EncipheredPinByIcc => "enciphered PIN verified by ICC".to_owned(),
        CvmCode::EncipheredPinByIccAndSignature => {
            "enciphered PIN verified by ICC and signature".to_owned()
        }
        CvmCode::Signature => "signature".to_owned(),
        CvmCode::NoCvmRequired => "no CVM required".to_owned(),
        CvmCode::Other(other) => format!("method {other:02X}"),
    }
}

fn condition_name(condition: CvmCondition) -> String {
    match condition {
        CvmCondition::Always => "always".to_owned(),
        CvmCondition::UnattendedCash => "if unattended cash".to_owned(),
        CvmCondition::NotCashOrCashback => {
            "if not unattended cash, not manual cash and not cashback".to_owned()
        }
        CvmCondition::TerminalSupportsCvm => "if terminal supports the CVM".to_owned(),
        CvmCondition::ManualCash => "if manual cash".to_owned(),
        CvmCondition::PurchaseWithCashback => "if purchase with cashback".to_owned(),
        CvmCondition::UnderX => "if in application currency and under X".to_owned(),
        CvmCondition::OverX => "if in application currency and over X".to_owned(),
        CvmCondition::UnderY => "if in application currency and under Y".to_owned(),
        CvmCondition::OverY => "if in application currency and over Y".to_owned(),
        CvmCondition::Other(other) => format!("condition {other:02X}"),
    }
}

fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&byte| {
            if byte.is_ascii_graphic() || byte == b' ' {
                char::from(byte)
            } else {
                '?'
            }
        })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `YYMMDD` BCD as `20YY-MM-DD`.
fn date_text(bytes: &[u8]) -> Option<String> {
    let digits = hex::encode(bytes);
    if bytes.len() != 3 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "20{}-{}-{}",
        &digits[0..2],
        &digits[2..4],
        &digits[4..6]
    ))
}

/// The PAN digits and the `YYMM` expiry of Track 2 Equivalent Data.
fn track2_parts(track2: &[u8]) -> (Vec<u8>, Option<String>) {
    let digits = hex::encode_upper(track2);
    let Some((pan, rest)) = digits.split_once('D') else {
        return (Vec::new(), None);
    };
    let mut pan_nibbles = pan.to_owned();
    if pan_nibbles.len() % 2 != 0 {
        pan_nibbles.push('F');
    }
    let pan_bytes = hex::decode(&pan_nibbles).unwrap_or_default();
    let expiry = rest
        .get(..4)
        .filter(|yymm| yymm.chars().all(|c| c.is_ascii_digit()))
        .map(|yymm| format!("20{}-{}", &yymm[..2], &yymm[2..]));
    (pan_bytes, expiry)
}

impl CardData {
    /// Decodes what the card returned in `steps`. `kernel` is the kernel that ran (2 or 3), which
    /// decides how kernel-specific tags are read (`9F6C` is the CTQ only in Kernel 3).
    #[must_use]
    pub fn from_steps(steps: &[ReplayStep], kernel: Option<u8>) -> Self {
        let mut objects: BTreeMap<Tag, Vec<u8>> = BTreeMap::new();
        let mut data = Self::default();
        let mut chained: Vec<u8> = Vec::new();
        let mut chain_instruction: Option<u8> = None;
        for step in steps {
            let Some((sw, body)) = step
                .response
                .len()
                .checked_sub(2)
                .map(|split| (&step.response[split..], &step.response[..split]))
            else {
                continue;
            };
            let instruction = step.command.get(1).copied().unwrap_or_default();
            // 61xx: more data follows with GET RESPONSE; decode once the chain ends.
            if instruction != ins::GET_RESPONSE {
                chained.clear();
                chain_instruction = Some(instruction);
            }
            chained.extend_from_slice(body);
            if sw[0] == 0x61 || sw != [0x90, 0x00] {
                continue;
            }
            let response = std::mem::take(&mut chained);
            let instruction = chain_instruction.unwrap_or(instruction);
            let mut latest: Vec<(Tag, Vec<u8>)> = Vec::new();
            let mut collect = |found: tlv::Tlv<'_>| latest.push((found.tag, found.value.to_vec()));
            match instruction {
                ins::SELECT => {
                    let is_ppse = step
                        .command
                        .get(5..)
                        .is_some_and(|data| data.starts_with(PPSE_NAME));
                    if is_ppse {
                        continue;
                    }
                    let _ = tlv::for_each_primitive(&response, &mut collect);
                }
                ins::GET_PROCESSING_OPTIONS | ins::GENERATE_AC => {
                    match tlv::parse_single(&response) {
                        Ok(template) if template.tag == Tag::ResponseMessageTemplateFormat1 => {
                            let value = template.value;
                            if instruction == ins::GET_PROCESSING_OPTIONS {
                                if let Some(aip) = value.get(..2) {
                                    latest.push((Tag::ApplicationInterchangeProfile, aip.to_vec()));
                                }
                                if let Some(afl) = value.get(2..).filter(|afl| !afl.is_empty()) {
                                    latest.push((Tag::ApplicationFileLocator, afl.to_vec()));
                                }
                            } else {
                                if let Some(cid) = value.first() {
                                    latest.push((Tag::CryptogramInformationData, vec![*cid]));
                                }
                                if let Some(atc) = value.get(1..3) {
                                    latest.push((Tag::ApplicationTransactionCounter, atc.to_vec()));
                                }
                            }
                        }
                        Ok(_) => {
                            let _ = tlv::for_each_primitive(&response, &mut collect);
                        }
                        Err(_) => {}
                    }
                }
                _ => {
                    let _ = tlv::for_each_primitive(&response, &mut collect);
                }
            }
            // Later answers win: the CID and ATC of GENERATE AC over those of GPO.
            for (tag, value) in latest {
                objects.insert(tag, value);
            }
        }
        let get = |tag: Tag| objects.get(&tag).map(Vec::as_slice);
        data.aid = get(Tag::DfName).map(hex::encode_upper);
        data.label = get(Tag::ApplicationLabel)
            .or_else(|| get(Tag::ApplicationPreferredName))
            .map(printable);
        let (track2_pan, track2_expiry) = get(Tag::Track2EquivalentData)
            .map(track2_parts)
            .unwrap_or_default();
        data.masked_pan = get(Tag::ApplicationPan)
            .map(mask_pan)
            .or_else(|| (!track2_pan.is_empty()).then(|| mask_pan(&track2_pan)));
        data.expiry = get(Tag::ApplicationExpirationDate)
            .and_then(date_text)
            .or(track2_expiry);
        if let Some(aip) = get(Tag::ApplicationInterchangeProfile) {
            data.aip = Some(hex::encode_upper(aip));
            let byte1 = aip.first().copied().unwrap_or_default();
            data.aip_flags = AIP_BYTE1
                .iter()
                .filter(|(mask, _)| byte1 & mask != 0)
                .map(|(_, name)| *name)
                .collect();
            if kernel == Some(2) && aip.get(1).is_some_and(|byte2| byte2 & 0x80 != 0) {
                data.aip_flags.push("EMV mode supported");
            }
        }
        if let Some(value) = get(Tag::ApplicationFileLocator) {
            data.afl = Some(hex::encode_upper(value));
            data.afl_entries = afl::parse(value).unwrap_or_default();
        }
        if let Some(value) = get(Tag::CvmList)
            && let Ok(list) = CvmList::parse(value)
        {
            data.cvm_list = Some(CvmListView {
                hex: hex::encode_upper(value),
                amount_x: list.amount_x,
                amount_y: list.amount_y,
                rules: list
                    .rules
                    .iter()
                    .map(|rule| CvmRuleView {
                        hex: format!("{:02X}{:02X}", rule.method, rule.condition),
                        method: method_name(rule.code()),
                        condition: condition_name(rule.condition()),
                        continue_if_unsuccessful: rule.continue_if_unsuccessful(),
                    })
                    .collect(),
            });
        }
        if kernel == Some(3)
            && let Some(ctq) = get(Tag::CardTransactionQualifiers)
        {
            data.ctq = Some(hex::encode_upper(ctq));
            data.ctq_flags = CTQ_BITS
                .iter()
                .filter(|(byte, mask, _)| ctq.get(*byte).is_some_and(|value| value & mask != 0))
                .map(|(_, _, name)| *name)
                .collect();
        }
        if let Some(&[cid]) = get(Tag::CryptogramInformationData) {
            data.cid = Some(format!("{cid:02X}"));
            data.cryptogram_type = CryptogramType::from_bits(cid).map(|kind| match kind {
                CryptogramType::Aac => "AAC",
                CryptogramType::Tc => "TC",
                CryptogramType::Arqc => "ARQC",
            });
        }
        data.atc = get(Tag::ApplicationTransactionCounter).map(hex::encode_upper);
        data.ca_key_index = get(Tag::CaPublicKeyIndexIcc).map(hex::encode_upper);
        data
    }
}
