//! The outcome of a transaction and the record of why.
//!
//! Sources: EMV Contactless Book A, section 6.2 (Outcomes: Approved, Declined, Online Request,
//! Try Another Interface, End Application, Select Next, Try Again) and the Outcome Parameter Set
//! (CVM, data record); EMV 4.4 Book 4 Annex for the authorisation request data elements, and the
//! data elements listed for the online message in Books C-2 and C-3 (the "data record").
//!
//! An [`Outcome`] always says why it ended ([`Reason`], with a stable [`ErrorCode`] string) and
//! carries the TVR, TSI and CVM. For an online request it carries the data an authorisation
//! message needs ([`AuthorisationData`]), including the clear PAN and Track 2 that the host must
//! encrypt before anything leaves the device. `Debug` output masks them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::ErrorCode;
use crate::apdu::StatusWord;
use crate::cvm::{Cvm, CvmResults};
use crate::oda::OdaError;
use crate::tlv::{self, Tag};
use crate::tvr::{Tsi, Tvr};

/// The kind of outcome (Book A 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// The card approved offline (TC).
    Approved,
    /// The card or the reader declined.
    Declined,
    /// The card asks for online authorisation (ARQC): send [`Outcome::data`] to the issuer.
    OnlineRequest,
    /// Use another interface (contact chip or magnetic stripe).
    TryAnotherInterface,
    /// The transaction ended without a result (card error, removed card, no application).
    EndApplication,
    /// Present the card again (the card asked for it, e.g. status `6986` "see phone").
    TryAgain,
}

/// The processing phase where something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// SELECT of the PPSE.
    SelectPpse,
    /// SELECT of an application.
    SelectApplication,
    /// GET PROCESSING OPTIONS.
    GetProcessingOptions,
    /// READ RECORD.
    ReadRecord,
    /// GENERATE AC.
    GenerateAc,
    /// Processing between commands (restrictions, risk management).
    Processing,
}

impl Phase {
    /// A stable lowercase name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::SelectPpse => "select_ppse",
            Self::SelectApplication => "select_application",
            Self::GetProcessingOptions => "get_processing_options",
            Self::ReadRecord => "read_record",
            Self::GenerateAc => "generate_ac",
            Self::Processing => "processing",
        }
    }
}

/// Why the transaction ended as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The card returned a TC.
    CardApproved,
    /// The card returned an AAC.
    CardDeclined,
    /// The card returned an ARQC.
    CardRequestedOnline,
    /// Terminal action analysis asked for a decline (TAC/IAC Denial), and the card agreed.
    TerminalDeclined,
    /// The reader is offline-only and the card asked to go online.
    OnlineNotPossible,
    /// The card answered a command with an error status word.
    CardError {
        /// The phase.
        phase: Phase,
        /// The status word.
        sw: StatusWord,
    },
    /// The card's response could not be parsed or broke the rules.
    MalformedResponse {
        /// The phase.
        phase: Phase,
        /// The stable code of the parsing error.
        error: &'static str,
    },
    /// A mandatory data object is missing.
    MissingData {
        /// The phase.
        phase: Phase,
        /// The missing tag.
        tag: Tag,
    },
    /// The same data object was returned twice (Book 3 7.5: redundant objects).
    RedundantData {
        /// The tag.
        tag: Tag,
    },
    /// No application on the card matches the reader's configuration.
    NoMutualApplication,
    /// The amount is at or above the Reader Contactless Transaction Limit (Book B 3.1.1).
    ContactlessLimitExceeded,
    /// The selected kernel is not supported by this reader.
    UnsupportedKernel(u8),
    /// Offline data authentication failed where the outcome had to be offline.
    OdaFailed(OdaError),
    /// The reader asked for a CVM and none could be agreed with the card.
    CvmNotSatisfied,
    /// The card asked to switch interface (C-3 CTQ or status word `6986`).
    CardAskedOtherInterface,
    /// The card's cryptogram type was invalid or not allowed (e.g. TC when ARQC was asked).
    InvalidCryptogramType(u8),
    /// The application has expired and the card did not allow going online.
    ApplicationExpired,
    /// The exchange needed more commands than the kernel allows.
    TooManyCommands,
    /// The card only supports the magnetic stripe mode of the kernel, which is out of scope.
    MagstripeModeOnly,
    /// The transaction parameters are invalid (amount too large for `n 12`, bad currency code).
    InvalidParameters,
}

impl ErrorCode for Reason {
    fn code(&self) -> &'static str {
        match self {
            Self::CardApproved => "card_approved",
            Self::CardDeclined => "card_declined",
            Self::CardRequestedOnline => "card_requested_online",
            Self::TerminalDeclined => "terminal_declined",
            Self::OnlineNotPossible => "online_not_possible",
            Self::CardError { .. } => "card_error",
            Self::MalformedResponse { .. } => "malformed_response",
            Self::MissingData { .. } => "missing_data",
            Self::RedundantData { .. } => "redundant_data",
            Self::NoMutualApplication => "no_mutual_application",
            Self::ContactlessLimitExceeded => "contactless_limit_exceeded",
            Self::UnsupportedKernel(_) => "unsupported_kernel",
            Self::OdaFailed(_) => "oda_failed",
            Self::CvmNotSatisfied => "cvm_not_satisfied",
            Self::CardAskedOtherInterface => "card_asked_other_interface",
            Self::InvalidCryptogramType(_) => "invalid_cryptogram_type",
            Self::ApplicationExpired => "application_expired",
            Self::TooManyCommands => "too_many_commands",
            Self::InvalidParameters => "invalid_parameters",
            Self::MagstripeModeOnly => "magstripe_mode_only",
        }
    }
}

/// Offline data authentication as performed in the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OdaStatus {
    /// Not performed (not supported by both sides, or not applicable).
    NotPerformed,
    /// fDDA, DDA or CDA succeeded.
    Succeeded(OdaMethod),
    /// It failed, with the check that failed.
    Failed(OdaMethod, OdaError),
}

/// Which offline data authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OdaMethod {
    /// Static Data Authentication.
    Sda,
    /// Dynamic Data Authentication.
    Dda,
    /// Fast DDA (Kernel 3).
    Fdda,
    /// Combined DDA / Application Cryptogram Generation.
    Cda,
}

/// Tags whose values are cardholder data and must never be printed.
const SENSITIVE: &[Tag] = &[
    Tag::ApplicationPan,
    Tag::Track2EquivalentData,
    Tag::CardholderName,
    Tag::CardholderNameExtended,
    Tag::Track1DiscretionaryData,
    Tag::Track2DiscretionaryData,
];

/// Data objects for the authorisation (or clearing) message, in the order they were collected.
///
/// `Debug` shows the PAN as first six and last four digits and hides the other cardholder data.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthorisationData {
    items: Vec<(Tag, Vec<u8>)>,
}

impl AuthorisationData {
    /// Empty data.
    #[must_use]
    pub const fn new() -> Self {
        Self { items: Vec::new() }
    }

    /// Adds or replaces a value.
    pub fn set(&mut self, tag: Tag, value: &[u8]) {
        match self.items.iter_mut().find(|(existing, _)| *existing == tag) {
            Some((_, existing)) => *existing = value.to_vec(),
            None => self.items.push((tag, value.to_vec())),
        }
    }

    /// The value of a tag.
    #[must_use]
    pub fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.items
            .iter()
            .find(|(existing, _)| *existing == tag)
            .map(|(_, value)| value.as_slice())
    }

    /// The tags present, in order.
    pub fn tags(&self) -> impl Iterator<Item = Tag> + '_ {
        self.items.iter().map(|(tag, _)| *tag)
    }

    /// Number of data objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no data.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The data as concatenated BER-TLV (for ISO 8583 field 55), cardholder data included.
    #[must_use]
    pub fn to_tlv(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, value) in &self.items {
            tlv::encode(*tag, value, &mut out);
        }
        out
    }

    /// The PAN masked for display: first six and last four digits, the rest `*`.
    #[must_use]
    pub fn masked_pan(&self) -> Option<String> {
        self.get(Tag::ApplicationPan).map(mask_pan)
    }
}

/// Masks a `cn` PAN: first six and last four digits kept (fewer for short PANs).
#[must_use]
pub fn mask_pan(pan: &[u8]) -> String {
    let digits: Vec<char> = pan
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .take_while(|nibble| *nibble != 0x0F)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('?'))
        .collect();
    let keep_start = 6.min(digits.len() / 2);
    let keep_end = 4.min(digits.len().saturating_sub(keep_start) / 2);
    digits
        .iter()
        .enumerate()
        .map(|(idx, digit)| {
            if idx < keep_start || idx >= digits.len() - keep_end {
                *digit
            } else {
                '*'
            }
        })
        .collect()
}

impl fmt::Debug for AuthorisationData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (tag, value) in &self.items {
            if *tag == Tag::ApplicationPan {
                map.entry(tag, &mask_pan(value));
            } else if SENSITIVE.contains(tag) {
                map.entry(tag, &"<redacted>");
            } else {
                map.entry(tag, &Hex(value));
            }
        }
        map.finish()
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

/// A standard message for the cardholder display (EMV Contactless Book A, section 9.4, Message
/// Identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiMessage {
    /// `03` "Approved".
    Approved,
    /// `07` "Not Authorised".
    NotAuthorised,
    /// `09` "Please Enter Your PIN".
    EnterPin,
    /// `0F` "Processing Error".
    ProcessingError,
    /// `1A` "Approved – Please Sign".
    ApprovedPleaseSign,
    /// `1B` "Authorising Please Wait".
    AuthorisingPleaseWait,
    /// `1C` "Insert, Swipe or Try Another Card".
    TryAnotherCard,
    /// `20` "See Phone for Instructions".
    SeePhone,
    /// `21` "Present Card Again".
    PresentCardAgain,
}

impl UiMessage {
    /// The Message Identifier byte.
    #[must_use]
    pub const fn identifier(self) -> u8 {
        match self {
            Self::Approved => 0x03,
            Self::NotAuthorised => 0x07,
            Self::EnterPin => 0x09,
            Self::ProcessingError => 0x0F,
            Self::ApprovedPleaseSign => 0x1A,
            Self::AuthorisingPleaseWait => 0x1B,
            Self::TryAnotherCard => 0x1C,
            Self::SeePhone => 0x20,
            Self::PresentCardAgain => 0x21,
        }
    }

    /// The English text.
    #[must_use]
    pub const fn text(self) -> &'static str {
        match self {
            Self::Approved => "Approved",
            Self::NotAuthorised => "Not Authorised",
            Self::EnterPin => "Please Enter Your PIN",
            Self::ProcessingError => "Processing Error",
            Self::ApprovedPleaseSign => "Approved - Please Sign",
            Self::AuthorisingPleaseWait => "Authorising Please Wait",
            Self::TryAnotherCard => "Insert, Swipe or Try Another Card",
            Self::SeePhone => "See Phone for Instructions",
            Self::PresentCardAgain => "Present Card Again",
        }
    }
}

/// The final result of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What happened.
    pub kind: OutcomeKind,
    /// Why.
    pub reason: Reason,
    /// The CVM the host must carry out (online PIN, signature), if the kernel got that far.
    pub cvm: Option<Cvm>,
    /// CVM Results (`9F34`).
    pub cvm_results: Option<CvmResults>,
    /// Offline data authentication.
    pub oda: OdaStatus,
    /// Terminal Verification Results at the end.
    pub tvr: Tvr,
    /// Transaction Status Information at the end.
    pub tsi: Tsi,
    /// Kernel identifier of the kernel that ran (2 or 3), if one was selected.
    pub kernel: Option<u8>,
    /// Data for the authorisation or clearing message (empty when the card was not read).
    pub data: AuthorisationData,
}

impl Outcome {
    /// The message to show the cardholder for this outcome.
    #[must_use]
    pub fn ui_message(&self) -> UiMessage {
        match self.kind {
            OutcomeKind::Approved if self.cvm == Some(Cvm::Signature) => {
                UiMessage::ApprovedPleaseSign
            }
            OutcomeKind::Approved => UiMessage::Approved,
            OutcomeKind::Declined => UiMessage::NotAuthorised,
            OutcomeKind::OnlineRequest if self.cvm == Some(Cvm::OnlinePin) => UiMessage::EnterPin,
            OutcomeKind::OnlineRequest => UiMessage::AuthorisingPleaseWait,
            OutcomeKind::TryAnotherInterface => UiMessage::TryAnotherCard,
            OutcomeKind::EndApplication => UiMessage::ProcessingError,
            OutcomeKind::TryAgain => match self.reason {
                Reason::CardError { sw, .. } if sw.0 == 0x6986 => UiMessage::SeePhone,
                _ => UiMessage::PresentCardAgain,
            },
        }
    }

    /// An outcome without card data (selection failures, errors before GPO).
    #[must_use]
    pub fn without_data(kind: OutcomeKind, reason: Reason) -> Self {
        Self {
            kind,
            reason,
            cvm: None,
            cvm_results: None,
            oda: OdaStatus::NotPerformed,
            tvr: Tvr::new(),
            tsi: Tsi::new(),
            kernel: None,
            data: AuthorisationData::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pan_is_masked_in_debug() {
        let mut data = AuthorisationData::new();
        data.set(
            Tag::ApplicationPan,
            &[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10],
        );
        data.set(Tag::Track2EquivalentData, &[0x47, 0x61, 0x73, 0x90, 0xD2]);
        data.set(Tag::ApplicationTransactionCounter, &[0x00, 0x01]);
        let shown = alloc::format!("{data:?}");
        assert!(shown.contains("476173******0010"), "{shown}");
        assert!(!shown.contains("4761739001010010"), "{shown}");
        assert!(!shown.contains("476173904"), "{shown}");
        assert!(shown.contains("0001"));
        assert_eq!(mask_pan(&[0x12, 0x34, 0x5F]), "12**5");
    }
}
