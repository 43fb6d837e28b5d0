//! The kernels that run after final selection, and what they share: the data store, the
//! GET PROCESSING OPTIONS and READ RECORD responses, terminal action analysis and the outcome
//! data record.
//!
//! Sources: EMV 4.4 Book 3 section 6.5.8.4 (GPO response formats 1 and 2), 10.2 (reading records,
//! `70` templates), 10.4 (processing restrictions), 10.6 (terminal risk management: floor limit),
//! 10.7 (terminal action analysis with TAC/IAC, defaults when an IAC is absent), and Annex C1
//! (Application Interchange Profile bits); EMV Contactless Books C-2 and C-3 for the flows in
//! [`c2`] and [`c3`].
//!
//! Card data and terminal data live in separate maps. DOLs look up terminal data first, so a card
//! cannot supply values the terminal owns (amount, unpredictable number, TVR). A card that returns
//! the same primitive object twice ends the transaction (Book 3 7.5).

pub mod c2;
pub mod c3;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::ErrorCode;
use crate::afl::{self, AflEntry};
use crate::apdu::{Command, CryptogramType, Response};
use crate::cvm::{Cvm, CvmResults};
use crate::date::Date;
use crate::dol::DataSource;
use crate::entry_point::{AidConfig, Preprocessing};
use crate::oda::CaKeyTable;
use crate::outcome::{AuthorisationData, OdaStatus, Outcome, OutcomeKind, Phase, Reason};
use crate::tlv::{self, Tag};
use crate::tvr::{Tsi, Tvr};

/// AIP byte 1 bits (Book 3 Annex C1; b2 from Book C-2).
pub mod aip {
    /// Byte 1 b7: SDA supported.
    pub const SDA: u8 = 0x40;
    /// Byte 1 b6: DDA supported.
    pub const DDA: u8 = 0x20;
    /// Byte 1 b5: cardholder verification is supported.
    pub const CARDHOLDER_VERIFICATION: u8 = 0x10;
    /// Byte 1 b4: terminal risk management is to be performed.
    pub const TERMINAL_RISK_MANAGEMENT: u8 = 0x08;
    /// Byte 1 b3: issuer authentication is supported.
    pub const ISSUER_AUTHENTICATION: u8 = 0x04;
    /// Byte 1 b2: on device cardholder verification is supported (Book C-2).
    pub const ON_DEVICE_CVM: u8 = 0x02;
    /// Byte 1 b1: CDA supported.
    pub const CDA: u8 = 0x01;
    /// Byte 2 b8: EMV mode is supported (Book C-2).
    pub const EMV_MODE: u8 = 0x80;
}

/// The reader-wide configuration (terminal data of Book 4 Annex A and Book B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalConfig {
    /// Terminal Country Code (`9F1A`, n 3, e.g. `08 40`).
    pub country_code: [u8; 2],
    /// Terminal Type (`9F35`, e.g. `22` attended, online with offline capability, merchant).
    pub terminal_type: u8,
    /// Terminal Capabilities (`9F33`).
    pub terminal_capabilities: [u8; 3],
    /// Additional Terminal Capabilities (`9F40`).
    pub additional_terminal_capabilities: [u8; 5],
    /// Interface Device Serial Number (`9F1E`).
    pub ifd_serial_number: Option<[u8; 8]>,
    /// Merchant Category Code (`9F15`).
    pub merchant_category_code: Option<[u8; 2]>,
    /// Merchant Identifier (`9F16`).
    pub merchant_identifier: Option<Vec<u8>>,
    /// Terminal Identification (`9F1C`).
    pub terminal_identification: Option<[u8; 8]>,
    /// Merchant Name and Location (`9F4E`).
    pub merchant_name_and_location: Option<Vec<u8>>,
    /// Whether the reader can go online (a SoftPOS always can; `false` for offline-only readers).
    pub online_capable: bool,
    /// The AID + kernel combinations, in the reader's order.
    pub aids: Vec<AidConfig>,
    /// CA public keys and revocation list.
    pub ca_keys: CaKeyTable,
}

/// The transaction as the host starts it. Time and randomness come from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionParams {
    /// Amount, Authorised in minor units (at most 999 999 999 999).
    pub amount: u64,
    /// Amount, Other (cashback) in minor units.
    pub amount_other: u64,
    /// Transaction Currency Code (`5F2A`, n 3 BCD, e.g. `09 78` for EUR).
    pub currency_code: [u8; 2],
    /// Transaction Currency Exponent (`5F36`).
    pub currency_exponent: u8,
    /// Transaction Type (`9C`): `00` purchase, `01` cash, `09` cashback, `20` refund.
    pub transaction_type: u8,
    /// Transaction Date (`9A`), local.
    pub date: Date,
    /// Transaction Time (`9F21`, `HHMMSS` BCD), local.
    pub time: [u8; 3],
    /// Unpredictable Number (`9F37`) from the host's random source.
    pub unpredictable_number: [u8; 4],
    /// The reader configuration.
    pub config: TerminalConfig,
}

/// An amount as `n 12` BCD; `None` above 999 999 999 999.
#[must_use]
pub fn amount_n12(amount: u64) -> Option<[u8; 6]> {
    if amount > 999_999_999_999 {
        return None;
    }
    let mut out = [0u8; 6];
    let mut rest = amount;
    for byte in out.iter_mut().rev() {
        let low = (rest % 10) as u8;
        rest /= 10;
        let high = (rest % 10) as u8;
        rest /= 10;
        *byte = (high << 4) | low;
    }
    Some(out)
}

/// Reads a binary amount of up to 8 bytes.
fn binary_amount(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .take(8)
        .rev()
        .fold(0, |acc, &byte| (acc << 8) | u64::from(byte))
}

/// Terminal and card data of one kernel run.
#[derive(Debug, Clone, Default)]
pub(crate) struct KernelData {
    pub(crate) terminal: BTreeMap<Tag, Vec<u8>>,
    pub(crate) card: BTreeMap<Tag, Vec<u8>>,
}

impl DataSource for KernelData {
    fn value(&self, tag: Tag) -> Option<&[u8]> {
        self.terminal
            .get(&tag)
            .or_else(|| self.card.get(&tag))
            .map(Vec::as_slice)
    }
}

impl KernelData {
    pub(crate) fn card(&self, tag: Tag) -> Option<&[u8]> {
        self.card.get(&tag).map(Vec::as_slice)
    }

    /// Adds every primitive object of `template_value` as card data; a repeated tag is an error.
    pub(crate) fn add_card_objects(
        &mut self,
        template_value: &[u8],
        phase: Phase,
    ) -> Result<(), Reason> {
        let mut objects = Vec::new();
        tlv::for_each_primitive(template_value, &mut |object| {
            objects.push((object.tag, object.value));
        })
        .map_err(|error| Reason::MalformedResponse {
            phase,
            error: error.code(),
        })?;
        for (tag, value) in objects {
            if self.card.contains_key(&tag) {
                return Err(Reason::RedundantData { tag });
            }
            self.card.insert(tag, value.to_vec());
        }
        Ok(())
    }
}

/// The terminal data of a transaction for one AID combination.
pub(crate) fn terminal_data(
    params: &TransactionParams,
    config: &AidConfig,
    pre: &Preprocessing,
    adf_name: &[u8],
) -> Option<BTreeMap<Tag, Vec<u8>>> {
    let terminal = &params.config;
    let mut data = BTreeMap::new();
    let mut put = |tag: Tag, value: &[u8]| {
        data.insert(tag, value.to_vec());
    };
    put(Tag::AmountAuthorised, &amount_n12(params.amount)?);
    put(Tag::AmountOther, &amount_n12(params.amount_other)?);
    let binary = u32::try_from(params.amount).unwrap_or(u32::MAX);
    put(Tag::AmountAuthorisedBinary, &binary.to_be_bytes());
    put(Tag::TransactionCurrencyCode, &params.currency_code);
    put(
        Tag::TransactionCurrencyExponent,
        &[params.currency_exponent],
    );
    put(Tag::TransactionDate, &params.date.to_yymmdd());
    put(Tag::TransactionTime, &params.time);
    put(Tag::TransactionType, &[params.transaction_type]);
    put(Tag::UnpredictableNumber, &params.unpredictable_number);
    put(Tag::TerminalCountryCode, &terminal.country_code);
    put(Tag::TerminalType, &[terminal.terminal_type]);
    put(Tag::TerminalCapabilities, &terminal.terminal_capabilities);
    put(
        Tag::AdditionalTerminalCapabilities,
        &terminal.additional_terminal_capabilities,
    );
    put(Tag::TerminalVerificationResults, &[0; 5]);
    put(Tag::CvmResults, &[0; 3]);
    put(
        Tag::ApplicationVersionNumberTerminal,
        &config.application_version,
    );
    if config.kernel == crate::entry_point::Kernel::C3 {
        put(Tag::TerminalTransactionQualifiers, &pre.ttq);
    }
    put(Tag::AidTerminal, adf_name);
    put(Tag::PosEntryMode, &[0x07]);
    put(Tag::TerminalActionCodeDefault, &config.tac_default);
    put(Tag::TerminalActionCodeDenial, &config.tac_denial);
    put(Tag::TerminalActionCodeOnline, &config.tac_online);
    put(Tag::KernelConfiguration, &[config.c2.kernel_configuration]);
    put(Tag::SecurityCapability, &[config.c2.security_capability]);
    put(
        Tag::CardDataInputCapability,
        &[config.c2.card_data_input_capability],
    );
    if let Some(value) = terminal.ifd_serial_number {
        put(Tag::IfdSerialNumber, &value);
    }
    if let Some(value) = terminal.merchant_category_code {
        put(Tag::MerchantCategoryCode, &value);
    }
    if let Some(value) = &terminal.merchant_identifier {
        put(Tag::MerchantIdentifier, value);
    }
    if let Some(value) = terminal.terminal_identification {
        put(Tag::TerminalIdentification, &value);
    }
    if let Some(value) = &terminal.merchant_name_and_location {
        put(Tag::MerchantNameAndLocation, value);
    }
    Some(data)
}

/// A parsed GET PROCESSING OPTIONS response (Book 3 6.5.8.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GpoResponse {
    pub(crate) aip: [u8; 2],
    pub(crate) afl: Vec<AflEntry>,
    /// Whether the response used format 2 (`77`).
    pub(crate) format2: bool,
}

/// Parses a GPO response into `data`: format 1 (`80`: AIP then AFL) or format 2 (`77`).
pub(crate) fn parse_gpo(response: &[u8], data: &mut KernelData) -> Result<GpoResponse, Reason> {
    let phase = Phase::GetProcessingOptions;
    let malformed = |error: &'static str| Reason::MalformedResponse { phase, error };
    let template = tlv::parse_single(response).map_err(|error| malformed(error.code()))?;
    let format2 = match template.tag {
        Tag::ResponseMessageTemplateFormat1 => {
            let value = template.value;
            if value.len() < 2 {
                return Err(malformed("gpo_format1_length"));
            }
            data.card
                .insert(Tag::ApplicationInterchangeProfile, value[..2].to_vec());
            if value.len() > 2 {
                data.card
                    .insert(Tag::ApplicationFileLocator, value[2..].to_vec());
            }
            false
        }
        Tag::ResponseMessageTemplateFormat2 => {
            data.add_card_objects(template.value, phase)?;
            true
        }
        _ => return Err(malformed("gpo_template")),
    };
    let aip: [u8; 2] = data
        .card(Tag::ApplicationInterchangeProfile)
        .and_then(|value| value.try_into().ok())
        .ok_or(Reason::MissingData {
            phase,
            tag: Tag::ApplicationInterchangeProfile,
        })?;
    let afl = match data.card(Tag::ApplicationFileLocator) {
        None | Some([]) => Vec::new(),
        Some(value) => afl::parse(value).map_err(|error| malformed(error.code()))?,
    };
    Ok(GpoResponse { aip, afl, format2 })
}

/// The records to read: SFI, record number, and whether the record is signed for ODA.
pub(crate) fn record_list(afl: &[AflEntry]) -> Vec<(u8, u8, bool)> {
    afl.iter()
        .flat_map(|entry| {
            entry
                .records()
                .map(move |(record, oda)| (entry.sfi, record, oda))
        })
        .collect()
}

/// Checks that a READ RECORD response is one `70` template and stores its objects.
pub(crate) fn store_record(response: &[u8], data: &mut KernelData) -> Result<(), Reason> {
    let phase = Phase::ReadRecord;
    let objects = tlv::parse_all(response).map_err(|error| Reason::MalformedResponse {
        phase,
        error: error.code(),
    })?;
    match objects.as_slice() {
        [record] if record.tag == Tag::ReadRecordResponseTemplate => {
            data.add_card_objects(record.value, phase)
        }
        _ => Err(Reason::MalformedResponse {
            phase,
            error: "record_not_70_template",
        }),
    }
}

/// A command the kernel wants sent, or its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KernelStep {
    Send(Command, Phase),
    Done(Outcome),
    /// Back to Entry Point to try the next candidate (Book B 3.4, e.g. GPO `6985`).
    SelectNext,
}

/// Terminal action analysis (Book 3 10.7): the cryptogram to ask for.
pub(crate) fn terminal_action_analysis(
    tvr: &Tvr,
    config: &AidConfig,
    card: &KernelData,
    online_capable: bool,
) -> CryptogramType {
    let tvr = tvr.bytes();
    // An absent IAC Denial is all zeros; absent IAC Online and Default are all ones.
    let iac = |tag: Tag, default: u8| -> [u8; 5] {
        card.card(tag)
            .and_then(|value| value.try_into().ok())
            .unwrap_or([default; 5])
    };
    let matches = |tac: &[u8; 5], iac: &[u8; 5]| {
        tvr.iter()
            .zip(tac.iter().zip(iac.iter()))
            .any(|(bits, (tac, iac))| bits & (tac | iac) != 0)
    };
    if matches(&config.tac_denial, &iac(Tag::IssuerActionCodeDenial, 0x00)) {
        return CryptogramType::Aac;
    }
    if online_capable {
        if matches(&config.tac_online, &iac(Tag::IssuerActionCodeOnline, 0xFF)) {
            CryptogramType::Arqc
        } else {
            CryptogramType::Tc
        }
    } else if matches(
        &config.tac_default,
        &iac(Tag::IssuerActionCodeDefault, 0xFF),
    ) {
        CryptogramType::Aac
    } else {
        CryptogramType::Tc
    }
}

/// Processing restrictions on dates and versions (Book 3 10.4.2, 10.4.3).
pub(crate) fn processing_restrictions(data: &KernelData, today: Date, tvr: &mut Tvr) {
    if let (Some(card), Some(terminal)) = (
        data.card(Tag::ApplicationVersionNumberIcc),
        data.terminal.get(&Tag::ApplicationVersionNumberTerminal),
    ) && card != terminal.as_slice()
    {
        tvr.set(crate::tvr::TvrBit::DifferentApplicationVersions);
    }
    if let Some(effective) = data.card(Tag::ApplicationEffectiveDate) {
        match Date::from_yymmdd(effective) {
            Some(date) if date > today => {
                tvr.set(crate::tvr::TvrBit::ApplicationNotYetEffective);
            }
            Some(_) => {}
            None => tvr.set(crate::tvr::TvrBit::ApplicationNotYetEffective),
        }
    }
    if is_expired(data, today) {
        tvr.set(crate::tvr::TvrBit::ExpiredApplication);
    }
}

/// Whether the Application Expiration Date (`5F24`) is before `today` (an unreadable date counts
/// as expired).
pub(crate) fn is_expired(data: &KernelData, today: Date) -> bool {
    match data.card(Tag::ApplicationExpirationDate) {
        Some(expiry) => Date::from_yymmdd(expiry).is_none_or(|date| date < today),
        None => false,
    }
}

/// What the outcome reports of a kernel run.
pub(crate) struct OutcomeParts {
    pub(crate) kind: OutcomeKind,
    pub(crate) reason: Reason,
    pub(crate) cvm: Option<Cvm>,
    pub(crate) cvm_results: Option<CvmResults>,
    pub(crate) oda: OdaStatus,
    pub(crate) tvr: Tvr,
    pub(crate) tsi: Tsi,
    pub(crate) kernel: u8,
}

/// Data elements of the outcome data record, in message order (Book C-2 and C-3 online data;
/// Book 4 Annex for the authorisation request).
const RECORD_TAGS: &[Tag] = &[
    Tag::ApplicationCryptogram,
    Tag::CryptogramInformationData,
    Tag::IssuerApplicationData,
    Tag::UnpredictableNumber,
    Tag::ApplicationTransactionCounter,
    Tag::TerminalVerificationResults,
    Tag::TransactionDate,
    Tag::TransactionType,
    Tag::AmountAuthorised,
    Tag::AmountOther,
    Tag::TransactionCurrencyCode,
    Tag::ApplicationInterchangeProfile,
    Tag::TerminalCountryCode,
    Tag::DfName,
    Tag::AdfName,
    Tag::TerminalCapabilities,
    Tag::TerminalTransactionQualifiers,
    Tag::CvmResults,
    Tag::TerminalType,
    Tag::ApplicationVersionNumberTerminal,
    Tag::IfdSerialNumber,
    Tag::TransactionStatusInformation,
    Tag::PosEntryMode,
    Tag::ApplicationPan,
    Tag::PanSequenceNumber,
    Tag::Track2EquivalentData,
    Tag::ApplicationExpirationDate,
    Tag::CardTransactionQualifiers,
    Tag::FormFactorIndicator,
    Tag::CustomerExclusiveData,
    Tag::IccDynamicNumber,
    Tag::AvailableOfflineSpendingAmount,
    Tag::PaymentAccountReference,
    Tag::TokenRequestorId,
];

/// Builds the outcome with its data record.
pub(crate) fn outcome(parts: OutcomeParts, data: &mut KernelData, adf_name: &[u8]) -> Outcome {
    data.terminal
        .insert(Tag::TerminalVerificationResults, parts.tvr.bytes().to_vec());
    data.terminal.insert(
        Tag::TransactionStatusInformation,
        parts.tsi.bytes().to_vec(),
    );
    if let Some(results) = parts.cvm_results {
        data.terminal.insert(Tag::CvmResults, results.0.to_vec());
    }
    data.terminal.insert(Tag::DfName, adf_name.to_vec());
    let mut record = AuthorisationData::new();
    for tag in RECORD_TAGS {
        if let Some(value) = data.value(*tag) {
            record.set(*tag, value);
        }
    }
    Outcome {
        kind: parts.kind,
        reason: parts.reason,
        cvm: parts.cvm,
        cvm_results: parts.cvm_results,
        oda: parts.oda,
        tvr: parts.tvr,
        tsi: parts.tsi,
        kernel: Some(parts.kernel),
        data: record,
    }
}

/// The outcome for a response the card should not have sent.
pub(crate) fn card_error(
    response: &Response<'_>,
    phase: Phase,
    tvr: Tvr,
    tsi: Tsi,
    kernel: u8,
) -> Outcome {
    Outcome {
        tvr,
        tsi,
        kernel: Some(kernel),
        ..Outcome::without_data(
            OutcomeKind::EndApplication,
            Reason::CardError {
                phase,
                sw: response.sw,
            },
        )
    }
}

/// The outcome when the kernel must stop for `reason` before it has an answer.
pub(crate) fn end_application(reason: Reason, tvr: Tvr, tsi: Tsi, kernel: u8) -> Outcome {
    Outcome {
        tvr,
        tsi,
        kernel: Some(kernel),
        ..Outcome::without_data(OutcomeKind::EndApplication, reason)
    }
}

/// Reads a binary amount such as Available Offline Spending Amount.
#[must_use]
pub fn read_binary_amount(bytes: &[u8]) -> u64 {
    binary_amount(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(amount_n12(0), Some([0; 6]));
        assert_eq!(amount_n12(1234), Some([0, 0, 0, 0, 0x12, 0x34]));
        assert_eq!(
            amount_n12(999_999_999_999),
            Some([0x99, 0x99, 0x99, 0x99, 0x99, 0x99])
        );
        assert_eq!(amount_n12(1_000_000_000_000), None);
        assert_eq!(read_binary_amount(&[0x01, 0x00]), 256);
    }
}
