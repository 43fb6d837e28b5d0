//! Command and response APDUs: building the commands the kernel sends, parsing them back (for
//! virtual cards), and reading responses with their status words.
//!
//! Sources: ISO/IEC 7816-4 section 5 (short APDU cases 1 to 4, status words); EMV 4.4 Book 1
//! section 11 (SELECT) and Book 3 section 6.5 (APPLICATION BLOCK ... VERIFY: the command
//! coding of GENERATE AC, GET CHALLENGE, GET DATA, GET PROCESSING OPTIONS, INTERNAL
//! AUTHENTICATE, READ RECORD) and Annex A for the status words the kernel names; EMV Contactless
//! Book B section 3.3 for the PPSE name `2PAY.SYS.DDF01`.
//!
//! Only short APDUs are built or read (Lc and Le of one byte): EMV contactless never needs the
//! extended form. `Le = 00` means "up to 256 bytes", as EMV commands that expect data send it.

use alloc::vec::Vec;

use crate::ErrorCode;
use crate::tlv::Tag;

/// `2PAY.SYS.DDF01`, the Proximity Payment System Environment (Book B 3.3).
pub const PPSE_NAME: &[u8] = b"2PAY.SYS.DDF01";

/// `1PAY.SYS.DDF01`, the contact Payment System Environment (Book 1 12.2.2).
pub const PSE_NAME: &[u8] = b"1PAY.SYS.DDF01";

/// Instruction bytes of the commands the kernel uses.
pub mod ins {
    /// SELECT (Book 1 11.3).
    pub const SELECT: u8 = 0xA4;
    /// READ RECORD (Book 3 6.5.11).
    pub const READ_RECORD: u8 = 0xB2;
    /// GET PROCESSING OPTIONS (Book 3 6.5.8).
    pub const GET_PROCESSING_OPTIONS: u8 = 0xA8;
    /// GENERATE APPLICATION CRYPTOGRAM (Book 3 6.5.5).
    pub const GENERATE_AC: u8 = 0xAE;
    /// INTERNAL AUTHENTICATE (Book 3 6.5.9).
    pub const INTERNAL_AUTHENTICATE: u8 = 0x88;
    /// GET DATA (Book 3 6.5.7).
    pub const GET_DATA: u8 = 0xCA;
    /// GET CHALLENGE (Book 3 6.5.6).
    pub const GET_CHALLENGE: u8 = 0x84;
    /// GET RESPONSE (ISO/IEC 7816-4 7.6.1).
    pub const GET_RESPONSE: u8 = 0xC0;
    /// VERIFY (Book 3 6.5.12).
    pub const VERIFY: u8 = 0x20;
}

/// A command APDU (short form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Lc is its length; at most 255 bytes).
    pub data: Vec<u8>,
    /// Expected response length: `None` for no Le field, `Some(0)` for Le = `00` (up to 256).
    pub le: Option<u8>,
}

/// Which occurrence SELECT asks for (Book 1 11.3.2, P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// First or only occurrence (P2 = `00`).
    First,
    /// Next occurrence (P2 = `02`), for partial AID matching.
    Next,
}

/// The cryptogram asked for in GENERATE AC (Book 3 Table 12, reference control parameter b8-b7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CryptogramType {
    /// Application Authentication Cryptogram: decline (`00`).
    Aac,
    /// Transaction Certificate: approve offline (`40`).
    Tc,
    /// Authorisation Request Cryptogram: go online (`80`).
    Arqc,
}

impl CryptogramType {
    /// Bits b8-b7 of P1 of GENERATE AC, also bits b8-b7 of the Cryptogram Information Data (`9F27`).
    #[must_use]
    pub const fn bits(self) -> u8 {
        match self {
            Self::Aac => 0x00,
            Self::Tc => 0x40,
            Self::Arqc => 0x80,
        }
    }

    /// The type coded in bits b8-b7 of a P1 or a CID; `None` for the reserved value `11`.
    #[must_use]
    pub const fn from_bits(byte: u8) -> Option<Self> {
        match byte & 0xC0 {
            0x00 => Some(Self::Aac),
            0x40 => Some(Self::Tc),
            0x80 => Some(Self::Arqc),
            _ => None,
        }
    }
}

/// Malformed APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApduError {
    /// A response shorter than its two status bytes.
    #[error("response of {0} bytes has no status word")]
    ResponseTooShort(usize),
    /// A command shorter than its four header bytes.
    #[error("command of {0} bytes has no complete header")]
    CommandTooShort(usize),
    /// The command body matches none of the short cases of ISO/IEC 7816-4 5.1.
    #[error("command body does not match Lc")]
    CommandBodyMismatch,
    /// Command data longer than 255 bytes cannot be sent in a short APDU.
    #[error("command data of {0} bytes exceeds 255")]
    DataTooLong(usize),
    /// A READ RECORD record number of 0 or an SFI outside 1..=30.
    #[error("invalid SFI {sfi} or record {record}")]
    InvalidRecordReference {
        /// The SFI.
        sfi: u8,
        /// The record number.
        record: u8,
    },
}

impl ErrorCode for ApduError {
    fn code(&self) -> &'static str {
        match self {
            Self::ResponseTooShort(_) => "apdu_response_too_short",
            Self::CommandTooShort(_) => "apdu_command_too_short",
            Self::CommandBodyMismatch => "apdu_command_body_mismatch",
            Self::DataTooLong(_) => "apdu_data_too_long",
            Self::InvalidRecordReference { .. } => "apdu_invalid_record_reference",
        }
    }
}

impl Command {
    /// A command with the given header, data and Le.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] for data over 255 bytes.
    pub fn new(
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: Vec<u8>,
        le: Option<u8>,
    ) -> Result<Self, ApduError> {
        if data.len() > 255 {
            return Err(ApduError::DataTooLong(data.len()));
        }
        Ok(Self {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
    }

    /// SELECT by DF name (Book 1 11.3): `00 A4 04 P2 Lc name 00`.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] for a name over 255 bytes.
    pub fn select_by_name(name: &[u8], occurrence: Occurrence) -> Result<Self, ApduError> {
        let p2 = match occurrence {
            Occurrence::First => 0x00,
            Occurrence::Next => 0x02,
        };
        Self::new(0x00, ins::SELECT, 0x04, p2, name.to_vec(), Some(0))
    }

    /// SELECT of the PPSE `2PAY.SYS.DDF01` (Book B 3.3.2).
    #[must_use]
    pub fn select_ppse() -> Self {
        Self {
            cla: 0x00,
            ins: ins::SELECT,
            p1: 0x04,
            p2: 0x00,
            data: PPSE_NAME.to_vec(),
            le: Some(0),
        }
    }

    /// GET PROCESSING OPTIONS (Book 3 6.5.8): `80 A8 00 00 Lc 83 L pdol-data 00`.
    ///
    /// `pdol_data` is the PDOL built by [`crate::dol::Dol::build`] (empty when the card has no
    /// PDOL); it is wrapped in the Command Template `83`.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] when the wrapped data exceeds 255 bytes.
    pub fn get_processing_options(pdol_data: &[u8]) -> Result<Self, ApduError> {
        let mut data = Vec::with_capacity(pdol_data.len() + 3);
        crate::tlv::encode(Tag::CommandTemplate, pdol_data, &mut data);
        Self::new(0x80, ins::GET_PROCESSING_OPTIONS, 0x00, 0x00, data, Some(0))
    }

    /// READ RECORD (Book 3 6.5.11): `00 B2 record (SFI<<3 | 4) 00`.
    ///
    /// # Errors
    /// [`ApduError::InvalidRecordReference`] for SFI outside 1..=30 or record 0.
    pub fn read_record(sfi: u8, record: u8) -> Result<Self, ApduError> {
        if !(1..=30).contains(&sfi) || record == 0 {
            return Err(ApduError::InvalidRecordReference { sfi, record });
        }
        Self::new(
            0x00,
            ins::READ_RECORD,
            record,
            (sfi << 3) | 0x04,
            Vec::new(),
            Some(0),
        )
    }

    /// GENERATE AC (Book 3 6.5.5): `80 AE P1 00 Lc cdol-data 00`, P1 = cryptogram type, with
    /// b5 set when CDA signature is requested.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] for CDOL data over 255 bytes.
    pub fn generate_ac(
        cryptogram: CryptogramType,
        cda: bool,
        cdol_data: &[u8],
    ) -> Result<Self, ApduError> {
        let p1 = cryptogram.bits() | if cda { 0x10 } else { 0x00 };
        Self::new(
            0x80,
            ins::GENERATE_AC,
            p1,
            0x00,
            cdol_data.to_vec(),
            Some(0),
        )
    }

    /// INTERNAL AUTHENTICATE (Book 3 6.5.9): `00 88 00 00 Lc ddol-data 00`.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] for DDOL data over 255 bytes.
    pub fn internal_authenticate(ddol_data: &[u8]) -> Result<Self, ApduError> {
        Self::new(
            0x00,
            ins::INTERNAL_AUTHENTICATE,
            0x00,
            0x00,
            ddol_data.to_vec(),
            Some(0),
        )
    }

    /// GET DATA (Book 3 6.5.7): `80 CA P1 P2 00` for a one- or two-byte tag such as `9F36`.
    #[must_use]
    pub fn get_data(tag: Tag) -> Self {
        let raw = tag.raw();
        Self {
            cla: 0x80,
            ins: ins::GET_DATA,
            p1: (raw >> 8) as u8,
            p2: raw as u8,
            data: Vec::new(),
            le: Some(0),
        }
    }

    /// GET CHALLENGE (Book 3 6.5.6): `00 84 00 00 00`.
    #[must_use]
    pub fn get_challenge() -> Self {
        Self {
            cla: 0x00,
            ins: ins::GET_CHALLENGE,
            p1: 0x00,
            p2: 0x00,
            data: Vec::new(),
            le: Some(0),
        }
    }

    /// GET RESPONSE (ISO/IEC 7816-4 7.6.1): `00 C0 00 00 Le`, after a `61xx` status.
    #[must_use]
    pub fn get_response(le: u8) -> Self {
        Self {
            cla: 0x00,
            ins: ins::GET_RESPONSE,
            p1: 0x00,
            p2: 0x00,
            data: Vec::new(),
            le: Some(le),
        }
    }

    /// The same command with another Le (to resend after a `6Cxx` status).
    #[must_use]
    pub fn with_le(mut self, le: u8) -> Self {
        self.le = Some(le);
        self
    }

    /// The encoded command.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 6);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !self.data.is_empty() {
            // `new` keeps data within 255 bytes; fields set directly are clamped.
            let len = self.data.len().min(255);
            out.push(len as u8);
            out.extend_from_slice(&self.data[..len]);
        }
        if let Some(le) = self.le {
            out.push(le);
        }
        out
    }

    /// Parses a short command APDU (ISO/IEC 7816-4 5.1, cases 1 to 4).
    ///
    /// A body of one byte is Le (case 2); otherwise the first byte is Lc and one optional byte of
    /// Le may follow the data (cases 3 and 4).
    ///
    /// # Errors
    /// [`ApduError::CommandTooShort`] or [`ApduError::CommandBodyMismatch`].
    pub fn parse(input: &[u8]) -> Result<Self, ApduError> {
        let [cla, ins, p1, p2, body @ ..] = input else {
            return Err(ApduError::CommandTooShort(input.len()));
        };
        let (data, le) = match body {
            [] => (Vec::new(), None),
            [le] => (Vec::new(), Some(*le)),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if lc == 0 {
                    return Err(ApduError::CommandBodyMismatch);
                }
                match rest.len().checked_sub(lc) {
                    Some(0) => (rest.to_vec(), None),
                    Some(1) => (rest[..lc].to_vec(), Some(rest[lc])),
                    _ => return Err(ApduError::CommandBodyMismatch),
                }
            }
        };
        Ok(Self {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
            le,
        })
    }
}

/// A status word SW1-SW2.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl core::fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StatusWord({:04X} {:?})", self.0, self.kind())
    }
}

impl core::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

/// The status words EMV processing tells apart (ISO/IEC 7816-4 5.6; EMV Book 3 Annex A / 6.3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusKind {
    /// `9000`: normal processing.
    Success,
    /// `61xx`: `xx` more bytes are available with GET RESPONSE (`00` meaning 256).
    BytesAvailable(u8),
    /// `6Cxx`: wrong Le; resend with Le = `xx`.
    WrongLe(u8),
    /// `6283`: selected file invalidated (a blocked application answers SELECT with this).
    SelectedFileInvalidated,
    /// `63Cx`: verification failed, `x` tries left.
    VerifyFailed(u8),
    /// `6700`: wrong length.
    WrongLength,
    /// `6981`: command incompatible with file structure.
    IncompatibleFileStructure,
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// `6983`: authentication method blocked.
    AuthenticationMethodBlocked,
    /// `6984`: referenced data invalidated.
    ReferencedDataInvalidated,
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// `6986`: command not allowed (no current EF); C-3 cards use it to ask for another interface.
    CommandNotAllowed,
    /// `6A81`: function not supported (a blocked card answers SELECT with this).
    FunctionNotSupported,
    /// `6A82`: file or application not found.
    FileNotFound,
    /// `6A83`: record not found.
    RecordNotFound,
    /// `6A86`: incorrect P1 or P2.
    IncorrectP1P2,
    /// `6A88`: referenced data not found.
    ReferencedDataNotFound,
    /// `6D00`: instruction not supported.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// Any other `62xx` or `63xx`: a warning.
    OtherWarning,
    /// Any other status: an error.
    OtherError,
}

impl StatusWord {
    /// `9000`.
    pub const SUCCESS: Self = Self(0x9000);
    /// `6283`.
    pub const SELECTED_FILE_INVALIDATED: Self = Self(0x6283);
    /// `6700`.
    pub const WRONG_LENGTH: Self = Self(0x6700);
    /// `6984`.
    pub const REFERENCED_DATA_INVALIDATED: Self = Self(0x6984);
    /// `6985`.
    pub const CONDITIONS_NOT_SATISFIED: Self = Self(0x6985);
    /// `6986`.
    pub const COMMAND_NOT_ALLOWED: Self = Self(0x6986);
    /// `6A81`.
    pub const FUNCTION_NOT_SUPPORTED: Self = Self(0x6A81);
    /// `6A82`.
    pub const FILE_NOT_FOUND: Self = Self(0x6A82);
    /// `6A83`.
    pub const RECORD_NOT_FOUND: Self = Self(0x6A83);
    /// `6A86`.
    pub const INCORRECT_P1_P2: Self = Self(0x6A86);
    /// `6A88`.
    pub const REFERENCED_DATA_NOT_FOUND: Self = Self(0x6A88);
    /// `6D00`.
    pub const INS_NOT_SUPPORTED: Self = Self(0x6D00);
    /// `6E00`.
    pub const CLA_NOT_SUPPORTED: Self = Self(0x6E00);

    /// SW1.
    #[must_use]
    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// SW2.
    #[must_use]
    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// `9000`.
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000
    }

    /// The named case.
    #[must_use]
    pub const fn kind(self) -> StatusKind {
        match self.0 {
            0x9000 => StatusKind::Success,
            0x6283 => StatusKind::SelectedFileInvalidated,
            0x6700 => StatusKind::WrongLength,
            0x6981 => StatusKind::IncompatibleFileStructure,
            0x6982 => StatusKind::SecurityStatusNotSatisfied,
            0x6983 => StatusKind::AuthenticationMethodBlocked,
            0x6984 => StatusKind::ReferencedDataInvalidated,
            0x6985 => StatusKind::ConditionsNotSatisfied,
            0x6986 => StatusKind::CommandNotAllowed,
            0x6A81 => StatusKind::FunctionNotSupported,
            0x6A82 => StatusKind::FileNotFound,
            0x6A83 => StatusKind::RecordNotFound,
            0x6A86 => StatusKind::IncorrectP1P2,
            0x6A88 => StatusKind::ReferencedDataNotFound,
            0x6D00 => StatusKind::InsNotSupported,
            0x6E00 => StatusKind::ClaNotSupported,
            sw => match (sw >> 8) as u8 {
                0x61 => StatusKind::BytesAvailable(sw as u8),
                0x6C => StatusKind::WrongLe(sw as u8),
                0x63 if sw & 0xF0 == 0xC0 => StatusKind::VerifyFailed((sw & 0x0F) as u8),
                0x62 | 0x63 => StatusKind::OtherWarning,
                _ => StatusKind::OtherError,
            },
        }
    }
}

/// A response APDU, borrowing its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// Response data (without the status word).
    pub data: &'a [u8],
    /// The status word.
    pub sw: StatusWord,
}

impl<'a> Response<'a> {
    /// Splits an R-APDU into data and status word.
    ///
    /// # Errors
    /// [`ApduError::ResponseTooShort`] for fewer than two bytes.
    pub fn parse(input: &'a [u8]) -> Result<Self, ApduError> {
        let Some(split) = input.len().checked_sub(2) else {
            return Err(ApduError::ResponseTooShort(input.len()));
        };
        let (data, sw) = input.split_at(split);
        Ok(Self {
            data,
            sw: StatusWord(u16::from_be_bytes([sw[0], sw[1]])),
        })
    }
}

/// Encodes a response (for virtual cards and tests): data followed by SW1 SW2.
#[must_use]
pub fn encode_response(data: &[u8], sw: StatusWord) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(&sw.0.to_be_bytes());
    out
}

/// The name of a command's instruction, for logs (`"GENERATE AC"`).
#[must_use]
pub fn ins_name(ins_byte: u8) -> &'static str {
    match ins_byte {
        ins::SELECT => "SELECT",
        ins::READ_RECORD => "READ RECORD",
        ins::GET_PROCESSING_OPTIONS => "GET PROCESSING OPTIONS",
        ins::GENERATE_AC => "GENERATE AC",
        ins::INTERNAL_AUTHENTICATE => "INTERNAL AUTHENTICATE",
        ins::GET_DATA => "GET DATA",
        ins::GET_CHALLENGE => "GET CHALLENGE",
        ins::GET_RESPONSE => "GET RESPONSE",
        ins::VERIFY => "VERIFY",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_kind(sw: u16, expected: StatusKind) {
        assert_eq!(StatusWord(sw).kind(), expected, "{sw:04X}");
    }

    #[test]
    fn named_status_words() {
        check_kind(0x9000, StatusKind::Success);
        check_kind(0x6110, StatusKind::BytesAvailable(0x10));
        check_kind(0x6C05, StatusKind::WrongLe(5));
        check_kind(0x6283, StatusKind::SelectedFileInvalidated);
        check_kind(0x6985, StatusKind::ConditionsNotSatisfied);
        check_kind(0x6984, StatusKind::ReferencedDataInvalidated);
        check_kind(0x6A81, StatusKind::FunctionNotSupported);
        check_kind(0x6A82, StatusKind::FileNotFound);
        check_kind(0x63C2, StatusKind::VerifyFailed(2));
        check_kind(0x6281, StatusKind::OtherWarning);
        check_kind(0x6F00, StatusKind::OtherError);
    }
}
