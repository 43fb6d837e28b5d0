//! Cardholder verification: the CVM List (`8E`), CVM Results (`9F34`) and the contactless CVM
//! selection of Kernels 2 and 3.
//!
//! Sources: EMV 4.4 Book 3 section 10.5 (Cardholder Verification) and Annex C3 (CV Rule coding,
//! Tables 39 and 40) for the list and its processing; Annex A (`9F34`: byte 1 CVM performed,
//! byte 2 CVM condition, byte 3 result `00` unknown, `01` failed, `02` successful); EMV
//! Contactless Book C-2 (Kernel 2) section 7.5 "CVM Selection" for on-device cardholder
//! verification and the choice of CVM capability by the Reader CVM Required Limit; Book C-3
//! (Kernel 3) for CVM selection from the Card Transaction Qualifiers (`9F6C`) against the Terminal
//! Transaction Qualifiers (`9F66`).
//!
//! Offline PIN is not offered: a contactless reader has no contact with the card's PIN
//! verification, so PIN CVMs verified by the ICC count as "not supported" and the list moves on.

use alloc::vec::Vec;

use crate::ErrorCode;
use crate::tvr::{Tvr, TvrBit};

/// CVM code (Book 3 Table 39, bits b6-b1 of the first byte of a CV Rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvmCode {
    /// `000000`: Fail CVM processing.
    Fail,
    /// `000001`: Plaintext PIN verification performed by ICC.
    PlaintextPinByIcc,
    /// `000010`: Enciphered PIN verified online.
    EncipheredPinOnline,
    /// `000011`: Plaintext PIN verification performed by ICC and signature (paper).
    PlaintextPinByIccAndSignature,
    /// `000100`: Enciphered PIN verification performed by ICC.
    EncipheredPinByIcc,
    /// `000101`: Enciphered PIN verification performed by ICC and signature (paper).
    EncipheredPinByIccAndSignature,
    /// `011110`: Signature (paper).
    Signature,
    /// `011111`: No CVM required.
    NoCvmRequired,
    /// Any other value: reserved or payment-system / issuer specific; unrecognised here.
    Other(u8),
}

impl CvmCode {
    /// The code in bits b6-b1 of `byte`.
    #[must_use]
    pub const fn from_byte(byte: u8) -> Self {
        match byte & 0x3F {
            0x00 => Self::Fail,
            0x01 => Self::PlaintextPinByIcc,
            0x02 => Self::EncipheredPinOnline,
            0x03 => Self::PlaintextPinByIccAndSignature,
            0x04 => Self::EncipheredPinByIcc,
            0x05 => Self::EncipheredPinByIccAndSignature,
            0x1E => Self::Signature,
            0x1F => Self::NoCvmRequired,
            other => Self::Other(other),
        }
    }
}

/// CVM condition code (Book 3 Table 40, second byte of a CV Rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvmCondition {
    /// `00`: Always.
    Always,
    /// `01`: If unattended cash.
    UnattendedCash,
    /// `02`: If not unattended cash and not manual cash and not purchase with cashback.
    NotCashOrCashback,
    /// `03`: If terminal supports the CVM.
    TerminalSupportsCvm,
    /// `04`: If manual cash.
    ManualCash,
    /// `05`: If purchase with cashback.
    PurchaseWithCashback,
    /// `06`: If transaction is in the application currency and is under X value.
    UnderX,
    /// `07`: If transaction is in the application currency and is over X value.
    OverX,
    /// `08`: If transaction is in the application currency and is under Y value.
    UnderY,
    /// `09`: If transaction is in the application currency and is over Y value.
    OverY,
    /// RFU or payment-system specific: not understood, so never satisfied.
    Other(u8),
}

impl CvmCondition {
    /// The condition coded in `byte`.
    #[must_use]
    pub const fn from_byte(byte: u8) -> Self {
        match byte {
            0x00 => Self::Always,
            0x01 => Self::UnattendedCash,
            0x02 => Self::NotCashOrCashback,
            0x03 => Self::TerminalSupportsCvm,
            0x04 => Self::ManualCash,
            0x05 => Self::PurchaseWithCashback,
            0x06 => Self::UnderX,
            0x07 => Self::OverX,
            0x08 => Self::UnderY,
            0x09 => Self::OverY,
            other => Self::Other(other),
        }
    }
}

/// One Cardholder Verification Rule (two bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CvRule {
    /// First byte: b7 = apply the succeeding rule if this CVM is unsuccessful; b6-b1 = CVM code.
    pub method: u8,
    /// Second byte: the condition code.
    pub condition: u8,
}

impl CvRule {
    /// The CVM code.
    #[must_use]
    pub const fn code(&self) -> CvmCode {
        CvmCode::from_byte(self.method)
    }

    /// Whether the next rule applies when this one is unsuccessful (b7 of byte 1).
    #[must_use]
    pub const fn continue_if_unsuccessful(&self) -> bool {
        self.method & 0x40 != 0
    }

    /// The condition.
    #[must_use]
    pub const fn condition(&self) -> CvmCondition {
        CvmCondition::from_byte(self.condition)
    }
}

/// A parsed CVM List (`8E`): amounts X and Y, then the rules in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvmList {
    /// Amount X, in the application currency's minor units.
    pub amount_x: u32,
    /// Amount Y.
    pub amount_y: u32,
    /// The rules.
    pub rules: Vec<CvRule>,
}

/// A malformed CVM List.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CvmError {
    /// Shorter than the two amounts, or an odd number of rule bytes.
    #[error("CVM list of {0} bytes is malformed")]
    Length(usize),
}

impl ErrorCode for CvmError {
    fn code(&self) -> &'static str {
        match self {
            Self::Length(_) => "cvm_list_length",
        }
    }
}

impl CvmList {
    /// Parses a CVM List value.
    ///
    /// # Errors
    /// [`CvmError::Length`] when it is shorter than 8 bytes or the rules have an odd length.
    pub fn parse(value: &[u8]) -> Result<Self, CvmError> {
        if value.len() < 8 || !value.len().is_multiple_of(2) {
            return Err(CvmError::Length(value.len()));
        }
        let amount = |bytes: &[u8]| u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        Ok(Self {
            amount_x: amount(&value[0..4]),
            amount_y: amount(&value[4..8]),
            rules: value[8..]
                .chunks_exact(2)
                .map(|pair| CvRule {
                    method: pair[0],
                    condition: pair[1],
                })
                .collect(),
        })
    }
}

/// The CVM a contactless outcome asks the host to carry out (EMV Contactless Book A, outcome
/// parameter "CVM").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cvm {
    /// No cardholder verification.
    NoCvm,
    /// Ask for a signature.
    Signature,
    /// Capture the PIN and send it online, encrypted.
    OnlinePin,
    /// Verified on the consumer's device (CDCVM, "confirmation code verified").
    ConfirmationCodeVerified,
}

/// CVM Results (`9F34`): CVM performed, condition, result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CvmResults(pub [u8; 3]);

impl CvmResults {
    /// `3F 00 00`: no CVM performed, result unknown (cardholder verification not supported).
    pub const NOT_PERFORMED: Self = Self([0x3F, 0x00, 0x00]);
    /// `3F 00 01`: no CVM performed, failed.
    pub const FAILED: Self = Self([0x3F, 0x00, 0x01]);
    /// `3F 00 02`: no CVM performed below the CVM Required Limit (Book C-2).
    pub const NO_CVM_SUCCESSFUL: Self = Self([0x3F, 0x00, 0x02]);
    /// `01 00 02`: confirmation code verified on the device (Book C-2).
    pub const CONFIRMATION_CODE_VERIFIED: Self = Self([0x01, 0x00, 0x02]);
}

/// What the CVM selection needs to know about the transaction and the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CvmContext {
    /// Amount, Authorised in minor units.
    pub amount: u64,
    /// Whether the transaction currency equals the Application Currency Code (`9F42`); the X and Y
    /// conditions only apply then.
    pub in_application_currency: bool,
    /// Cash transaction (transaction type `01`).
    pub cash: bool,
    /// Purchase with cashback (transaction type `09`).
    pub cashback: bool,
    /// Unattended terminal.
    pub unattended: bool,
    /// CVM capability: byte 2 of Terminal Capabilities (`9F33`) or the C-2 CVM Capability
    /// (`DF8118` / `DF8119`): b7 enciphered PIN online, b6 signature, b4 no CVM required.
    pub capability: u8,
}

/// Terminal capability bits of byte 2 of `9F33` (Book 4 Annex A2).
pub mod capability {
    /// b7: enciphered PIN for online verification.
    pub const ONLINE_PIN: u8 = 0x40;
    /// b6: signature (paper).
    pub const SIGNATURE: u8 = 0x20;
    /// b4: no CVM required.
    pub const NO_CVM: u8 = 0x08;
}

/// The result of CVM List processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CvmDecision {
    /// The CVM for the outcome.
    pub cvm: Cvm,
    /// CVM Results (`9F34`).
    pub results: CvmResults,
    /// Whether cardholder verification failed (TVR byte 3 b8 is then set).
    pub failed: bool,
}

fn condition_satisfied(rule: &CvRule, list: &CvmList, ctx: &CvmContext) -> bool {
    let amount = ctx.amount;
    match rule.condition() {
        CvmCondition::Always => true,
        CvmCondition::UnattendedCash => ctx.unattended && ctx.cash,
        CvmCondition::NotCashOrCashback => !ctx.cash && !ctx.cashback,
        CvmCondition::TerminalSupportsCvm => supported(rule.code(), ctx.capability),
        CvmCondition::ManualCash => !ctx.unattended && ctx.cash,
        CvmCondition::PurchaseWithCashback => ctx.cashback,
        CvmCondition::UnderX => ctx.in_application_currency && amount < u64::from(list.amount_x),
        CvmCondition::OverX => ctx.in_application_currency && amount > u64::from(list.amount_x),
        CvmCondition::UnderY => ctx.in_application_currency && amount < u64::from(list.amount_y),
        CvmCondition::OverY => ctx.in_application_currency && amount > u64::from(list.amount_y),
        CvmCondition::Other(_) => false,
    }
}

fn supported(code: CvmCode, capability_byte: u8) -> bool {
    match code {
        CvmCode::EncipheredPinOnline => capability_byte & capability::ONLINE_PIN != 0,
        CvmCode::Signature => capability_byte & capability::SIGNATURE != 0,
        CvmCode::NoCvmRequired => capability_byte & capability::NO_CVM != 0,
        // "Fail CVM processing" is always understood.
        CvmCode::Fail => true,
        // Offline PIN needs the contact interface.
        _ => false,
    }
}

const fn recognised(code: CvmCode) -> bool {
    !matches!(code, CvmCode::Other(_))
}

/// Processes a CVM List (Book 3 10.5), updating `tvr`.
///
/// Rules whose condition is not understood or not satisfied are skipped; the first applicable
/// rule that is recognised and supported is performed. An unrecognised or unsupported CVM (or
/// "Fail CVM processing") moves to the next rule only when its b7 says so; otherwise
/// verification fails. Reaching the end of the list fails verification with CVM Results
/// `3F 00 01`.
pub fn process_list(list: &CvmList, ctx: &CvmContext, tvr: &mut Tvr) -> CvmDecision {
    let fail = |tvr: &mut Tvr, results: CvmResults| {
        tvr.set(TvrBit::CardholderVerificationNotSuccessful);
        CvmDecision {
            cvm: Cvm::NoCvm,
            results,
            failed: true,
        }
    };
    for rule in &list.rules {
        if !condition_satisfied(rule, list, ctx) {
            continue;
        }
        let code = rule.code();
        let unsuccessful_results = CvmResults([rule.method, rule.condition, 0x01]);
        if !recognised(code) {
            tvr.set(TvrBit::UnrecognisedCvm);
            if rule.continue_if_unsuccessful() {
                continue;
            }
            return fail(tvr, unsuccessful_results);
        }
        let (cvm, result) = match code {
            CvmCode::EncipheredPinOnline if supported(code, ctx.capability) => {
                tvr.set(TvrBit::OnlinePinEntered);
                (Cvm::OnlinePin, 0x00)
            }
            CvmCode::Signature if supported(code, ctx.capability) => (Cvm::Signature, 0x00),
            CvmCode::NoCvmRequired if supported(code, ctx.capability) => (Cvm::NoCvm, 0x02),
            _ => {
                // "Fail CVM processing", or a CVM this reader does not support.
                if rule.continue_if_unsuccessful() {
                    continue;
                }
                return fail(tvr, unsuccessful_results);
            }
        };
        return CvmDecision {
            cvm,
            results: CvmResults([rule.method, rule.condition, result]),
            failed: false,
        };
    }
    fail(tvr, CvmResults::FAILED)
}

/// Kernel 2 CVM selection (Book C-2 7.5).
///
/// `aip` is the Application Interchange Profile, `on_device_cvm_supported` the reader's Kernel
/// Configuration bit, `cvm_list` the card's list if it returned one, and `above_cvm_limit`
/// whether the amount exceeds the Reader CVM Required Limit. `ctx.capability` must already be the
/// CVM Capability for that case (`DF8118` above the limit, `DF8119` otherwise).
pub fn select_c2(
    aip: [u8; 2],
    on_device_cvm_supported: bool,
    cvm_list: Option<&CvmList>,
    above_cvm_limit: bool,
    ctx: &CvmContext,
    tvr: &mut Tvr,
) -> CvmDecision {
    // AIP byte 1 b2: on device cardholder verification is supported.
    if aip[0] & 0x02 != 0 && on_device_cvm_supported {
        return if above_cvm_limit {
            CvmDecision {
                cvm: Cvm::ConfirmationCodeVerified,
                results: CvmResults::CONFIRMATION_CODE_VERIFIED,
                failed: false,
            }
        } else {
            CvmDecision {
                cvm: Cvm::NoCvm,
                results: CvmResults::NO_CVM_SUCCESSFUL,
                failed: false,
            }
        };
    }
    // AIP byte 1 b5: cardholder verification is supported.
    if aip[0] & 0x10 == 0 {
        return CvmDecision {
            cvm: Cvm::NoCvm,
            results: CvmResults::NOT_PERFORMED,
            failed: false,
        };
    }
    match cvm_list {
        Some(list) if !list.rules.is_empty() => process_list(list, ctx, tvr),
        _ => {
            tvr.set(TvrBit::IccDataMissing);
            CvmDecision {
                cvm: Cvm::NoCvm,
                results: CvmResults::NOT_PERFORMED,
                failed: false,
            }
        }
    }
}

/// Terminal Transaction Qualifiers bits used by CVM selection (Book C-3 Annex A).
pub mod ttq {
    /// Byte 1 b3: online PIN supported.
    pub const ONLINE_PIN_SUPPORTED: (usize, u8) = (0, 0x04);
    /// Byte 1 b2: signature supported.
    pub const SIGNATURE_SUPPORTED: (usize, u8) = (0, 0x02);
    /// Byte 2 b7: CVM required.
    pub const CVM_REQUIRED: (usize, u8) = (1, 0x40);
    /// Byte 3 b7: consumer device CVM supported.
    pub const CDCVM_SUPPORTED: (usize, u8) = (2, 0x40);
}

/// Card Transaction Qualifiers bits (Book C-3 Annex A).
pub mod ctq {
    /// Byte 1 b8: online PIN required.
    pub const ONLINE_PIN_REQUIRED: (usize, u8) = (0, 0x80);
    /// Byte 1 b7: signature required.
    pub const SIGNATURE_REQUIRED: (usize, u8) = (0, 0x40);
    /// Byte 1 b6: go online if offline data authentication fails and the reader is online capable.
    pub const ONLINE_IF_ODA_FAILS: (usize, u8) = (0, 0x20);
    /// Byte 1 b5: switch interface if offline data authentication fails and the reader supports
    /// contact chip.
    pub const SWITCH_INTERFACE_IF_ODA_FAILS: (usize, u8) = (0, 0x10);
    /// Byte 1 b4: go online if the application has expired.
    pub const ONLINE_IF_EXPIRED: (usize, u8) = (0, 0x08);
    /// Byte 2 b8: consumer device CVM performed.
    pub const CDCVM_PERFORMED: (usize, u8) = (1, 0x80);
}

/// Whether a `(byte, mask)` bit is set in `bytes` (false when the byte is missing).
#[must_use]
pub fn has_bit(bytes: &[u8], (byte, mask): (usize, u8)) -> bool {
    bytes.get(byte).is_some_and(|value| value & mask != 0)
}

/// Kernel 3 CVM selection from the CTQ and TTQ (Book C-3, "Cardholder Verification").
///
/// Returns `None` when the reader asked for a CVM (TTQ byte 2 b7) and none could be agreed: the
/// transaction must then end (declined, or another interface).
#[must_use]
pub fn select_c3(ttq_bytes: &[u8; 4], ctq_bytes: Option<&[u8]>, online: bool) -> Option<Cvm> {
    let cvm_required = has_bit(ttq_bytes, ttq::CVM_REQUIRED);
    let reader_online_pin = has_bit(ttq_bytes, ttq::ONLINE_PIN_SUPPORTED);
    let reader_signature = has_bit(ttq_bytes, ttq::SIGNATURE_SUPPORTED);
    match ctq_bytes {
        Some(card) => {
            if has_bit(card, ctq::ONLINE_PIN_REQUIRED) && reader_online_pin && online {
                return Some(Cvm::OnlinePin);
            }
            if has_bit(card, ctq::CDCVM_PERFORMED) && has_bit(ttq_bytes, ttq::CDCVM_SUPPORTED) {
                return Some(Cvm::ConfirmationCodeVerified);
            }
            if has_bit(card, ctq::SIGNATURE_REQUIRED) && reader_signature {
                return Some(Cvm::Signature);
            }
        }
        None if cvm_required => {
            // Without a CTQ the reader picks a CVM it supports: signature, else online PIN.
            if reader_signature {
                return Some(Cvm::Signature);
            }
            if reader_online_pin && online {
                return Some(Cvm::OnlinePin);
            }
        }
        None => {}
    }
    if cvm_required { None } else { Some(Cvm::NoCvm) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_conditions() {
        assert_eq!(CvmCode::from_byte(0x42), CvmCode::EncipheredPinOnline);
        assert_eq!(CvmCode::from_byte(0x5E), CvmCode::Signature);
        assert_eq!(CvmCode::from_byte(0x1F), CvmCode::NoCvmRequired);
        assert_eq!(CvmCode::from_byte(0x3F), CvmCode::Other(0x3F));
        assert_eq!(
            CvmCondition::from_byte(0x03),
            CvmCondition::TerminalSupportsCvm
        );
        assert_eq!(CvmCondition::from_byte(0x0A), CvmCondition::Other(0x0A));
        let rule = CvRule {
            method: 0x42,
            condition: 0x03,
        };
        assert!(rule.continue_if_unsuccessful());
    }
}
