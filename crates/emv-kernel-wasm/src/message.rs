//! The messages of ABI version 3 (see `ABI.md`): the reader configuration a host sends once
//! to `kernel_configure` ([`TerminalParams`], JSON), the per-transaction parameters it sends to
//! each `session_create` ([`TransactionParams`], JSON or its binary form, read in place as
//! [`TransactionFields`]), and the outcome message ([`Output`]).
//!
//! The same types serve both sides: the kernel inside the `.wasm` parses [`TerminalParams`] and
//! [`TransactionParams`] and writes the outcome as [`Output`] (with [`crate::encode`], byte for
//! byte what serde writes); a Rust host writes them and reads [`Output`].
//! [`SessionParams`] (both together, the message of ABI version 1) stays as the hosts' one-call
//! form; [`SessionParams::transaction`] splits it. Byte strings are
//! upper-case hex; unknown fields are refused, so a host built for another ABI version fails
//! loudly instead of being half understood.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use emv_kernel::cvm::Cvm;
use emv_kernel::entry_point::{AidConfig, C2Config, Kernel};
use emv_kernel::oda::{CaKeyTable, CaPublicKey, Revocation};
use emv_kernel::outcome::{OdaMethod, OdaStatus, Reason};
use emv_kernel::{Date, ErrorCode, Tag, TerminalConfig};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that travel as an upper-case hex string (`"9F26"`); decoding accepts either case.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Hex(pub Vec<u8>);

impl Hex {
    /// Parses hex text.
    ///
    /// # Errors
    /// [`ParamsError::Hex`] for an odd length or a character that is not a hex digit.
    pub fn parse(text: &str) -> Result<Self, ParamsError> {
        let digits = text.as_bytes();
        if !digits.len().is_multiple_of(2) {
            return Err(ParamsError::Hex);
        }
        digits
            .chunks_exact(2)
            .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
            .collect::<Option<Vec<u8>>>()
            .map(Self)
            .ok_or(ParamsError::Hex)
    }

    /// The bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    fn array<const N: usize>(&self, field: &'static str) -> Result<[u8; N], ParamsError> {
        array(&self.0, field)
    }
}

const fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789ABCDEF";

impl Hex {
    /// The upper-case hex text. Built from a digit table rather than `{:02X}` per byte: the
    /// formatting machinery per byte was a visible share of every message the `.wasm` wrote.
    #[must_use]
    pub fn to_hex(&self) -> String {
        let mut text = String::with_capacity(self.0.len() * 2);
        for byte in &self.0 {
            text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(HEX_DIGITS[usize::from(byte & 0x0F)]));
        }
        text
    }
}

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl From<&[u8]> for Hex {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = Hex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex string")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Hex, E> {
                Hex::parse(text).map_err(|_| E::custom("invalid hex string"))
            }
        }
        deserializer.deserialize_str(HexVisitor)
    }
}

/// Parameters that are well-formed JSON but cannot start a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParamsError {
    /// A hex string with an odd length or a non-hex character.
    Hex,
    /// A byte string of the wrong length; names the field.
    Length(&'static str),
    /// A date that is not a valid `YYYY-MM-DD` calendar date.
    Date,
    /// A kernel identifier this kernel does not run (only 2 and 3).
    Kernel(u8),
    /// A CA public key whose modulus or exponent is unusable, or whose checksum does not match.
    CaKey,
}

impl ErrorCode for ParamsError {
    fn code(&self) -> &'static str {
        match self {
            Self::Hex => "params_hex",
            Self::Length(_) => "params_length",
            Self::Date => "params_date",
            Self::Kernel(_) => "params_kernel",
            Self::CaKey => "params_ca_key",
        }
    }
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hex => f.write_str("invalid hex string"),
            Self::Length(field) => write!(f, "`{field}` has the wrong length"),
            Self::Date => f.write_str("`date` is not a valid YYYY-MM-DD date"),
            Self::Kernel(id) => write!(f, "kernel {id} is not supported (2 or 3)"),
            Self::CaKey => f.write_str("invalid CA public key"),
        }
    }
}

/// A calendar date as `"YYYY-MM-DD"`.
fn parse_date(text: &str) -> Result<Date, ParamsError> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(ParamsError::Date);
    }
    let number = |range: core::ops::Range<usize>| -> Result<u16, ParamsError> {
        text.get(range)
            .filter(|part| part.bytes().all(|byte| byte.is_ascii_digit()))
            .and_then(|part| part.parse().ok())
            .ok_or(ParamsError::Date)
    };
    let year = number(0..4)?;
    let month = u8::try_from(number(5..7)?).map_err(|_| ParamsError::Date)?;
    let day = u8::try_from(number(8..10)?).map_err(|_| ParamsError::Date)?;
    Date::new(year, month, day).ok_or(ParamsError::Date)
}

fn default_transaction_type() -> Hex {
    Hex(alloc::vec![0x00])
}

const fn default_true() -> bool {
    true
}

/// What a host sends to `session_create`: one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    /// Amount, Authorised (`9F02`) in minor units.
    pub amount: u64,
    /// Amount, Other (`9F03`, cashback) in minor units; default 0.
    #[serde(default)]
    pub amount_other: u64,
    /// Transaction Currency Code (`5F2A`), 2 bytes, e.g. `"0978"`.
    pub currency_code: Hex,
    /// Transaction Currency Exponent (`5F36`).
    pub currency_exponent: u8,
    /// Transaction Type (`9C`), 1 byte; default `"00"` (purchase).
    #[serde(default = "default_transaction_type")]
    pub transaction_type: Hex,
    /// Transaction Date (`9A`), local, `"YYYY-MM-DD"`.
    pub date: String,
    /// Transaction Time (`9F21`), 3 bytes BCD `HHMMSS`, e.g. `"101500"`.
    pub time: Hex,
    /// Unpredictable Number (`9F37`), 4 bytes from the host's random source.
    pub unpredictable_number: Hex,
    /// The reader configuration.
    pub terminal: TerminalParams,
}

/// What a host sends to `session_create` (since ABI version 2): the per-transaction values only;
/// the reader configuration was given once to `kernel_configure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionParams {
    /// Amount, Authorised (`9F02`) in minor units.
    pub amount: u64,
    /// Amount, Other (`9F03`, cashback) in minor units; default 0.
    #[serde(default)]
    pub amount_other: u64,
    /// Transaction Currency Code (`5F2A`), 2 bytes, e.g. `"0978"`.
    pub currency_code: Hex,
    /// Transaction Currency Exponent (`5F36`).
    pub currency_exponent: u8,
    /// Transaction Type (`9C`), 1 byte; default `"00"` (purchase).
    #[serde(default = "default_transaction_type")]
    pub transaction_type: Hex,
    /// Transaction Date (`9A`), local, `"YYYY-MM-DD"`.
    pub date: String,
    /// Transaction Time (`9F21`), 3 bytes BCD `HHMMSS`, e.g. `"101500"`.
    pub time: Hex,
    /// Unpredictable Number (`9F37`), 4 bytes from the host's random source.
    pub unpredictable_number: Hex,
}

/// The reader configuration inside [`SessionParams`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalParams {
    /// Terminal Country Code (`9F1A`), 2 bytes.
    pub country_code: Hex,
    /// Terminal Type (`9F35`), 1 byte.
    pub terminal_type: Hex,
    /// Terminal Capabilities (`9F33`), 3 bytes.
    pub capabilities: Hex,
    /// Additional Terminal Capabilities (`9F40`), 5 bytes.
    pub additional_capabilities: Hex,
    /// Interface Device Serial Number (`9F1E`), 8 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifd_serial_number: Option<Hex>,
    /// Merchant Category Code (`9F15`), 2 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_category_code: Option<Hex>,
    /// Merchant Identifier (`9F16`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_identifier: Option<Hex>,
    /// Terminal Identification (`9F1C`), 8 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_identification: Option<Hex>,
    /// Merchant Name and Location (`9F4E`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name_and_location: Option<Hex>,
    /// Whether the reader can go online; default `true`.
    #[serde(default = "default_true")]
    pub online_capable: bool,
    /// The AID and kernel combinations, in the reader's order.
    pub aids: Vec<AidParams>,
    /// Trusted CA public keys.
    #[serde(default)]
    pub ca_keys: Vec<CaKeyParams>,
    /// Revoked issuer certificates.
    #[serde(default)]
    pub revocations: Vec<RevocationParams>,
}

/// One AID and kernel combination (EMV Contactless Book B 3.1). Absent fields take the values of
/// `emv_kernel::entry_point::AidConfig::new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AidParams {
    /// The AID, 5 to 16 bytes.
    pub aid: Hex,
    /// The kernel identifier: 2 (Book C-2) or 3 (Book C-3).
    pub kernel: u8,
    /// Whether a longer ADF Name starting with `aid` matches; default `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_match: Option<bool>,
    /// Reader Contactless Transaction Limit, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_limit: Option<u64>,
    /// Reader Contactless Floor Limit, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_limit: Option<u64>,
    /// Reader CVM Required Limit, minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvm_required_limit: Option<u64>,
    /// Terminal Transaction Qualifiers (`9F66`), 4 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttq: Option<Hex>,
    /// Application Version Number of the terminal (`9F09`), 2 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_version: Option<Hex>,
    /// Terminal Action Code – Default, 5 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tac_default: Option<Hex>,
    /// Terminal Action Code – Denial, 5 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tac_denial: Option<Hex>,
    /// Terminal Action Code – Online, 5 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tac_online: Option<Hex>,
    /// Kernel 2 parameters, each 1 byte (Book C-2 Annex A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c2: Option<C2Params>,
}

/// Kernel 2 parameters (Book C-2 Annex A), each one byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct C2Params {
    /// CVM Capability – CVM Required (`DF8118`).
    pub cvm_capability_cvm_required: Hex,
    /// CVM Capability – No CVM Required (`DF8119`).
    pub cvm_capability_no_cvm_required: Hex,
    /// Kernel Configuration (`DF811B`).
    pub kernel_configuration: Hex,
    /// Security Capability (`DF811F`).
    pub security_capability: Hex,
    /// Card Data Input Capability (`DF8117`).
    pub card_data_input_capability: Hex,
}

/// A trusted CA public key (EMV 4.4 Book 2 11.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaKeyParams {
    /// RID, 5 bytes.
    pub rid: Hex,
    /// CA Public Key Index, 1 byte.
    pub index: Hex,
    /// Modulus, big-endian.
    pub modulus: Hex,
    /// Exponent, big-endian.
    pub exponent: Hex,
    /// Last valid date, `"YYYY-MM-DD"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
    /// The published SHA-1 checksum, 20 bytes; the key is refused if it does not match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Hex>,
}

/// A revoked issuer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationParams {
    /// RID, 5 bytes.
    pub rid: Hex,
    /// CA Public Key Index, 1 byte.
    pub ca_index: Hex,
    /// Issuer certificate serial number, 3 bytes.
    pub serial: Hex,
}

fn byte(hex: &Hex, field: &'static str) -> Result<u8, ParamsError> {
    hex.array::<1>(field).map(|[value]| value)
}

fn optional_array<const N: usize>(
    hex: Option<&Hex>,
    field: &'static str,
) -> Result<Option<[u8; N]>, ParamsError> {
    hex.map(|hex| hex.array::<N>(field)).transpose()
}

impl SessionParams {
    /// The per-transaction part (what `session_create` takes since ABI version 2).
    #[must_use]
    pub fn transaction(&self) -> TransactionParams {
        TransactionParams {
            amount: self.amount,
            amount_other: self.amount_other,
            currency_code: self.currency_code.clone(),
            currency_exponent: self.currency_exponent,
            transaction_type: self.transaction_type.clone(),
            date: self.date.clone(),
            time: self.time.clone(),
            unpredictable_number: self.unpredictable_number.clone(),
        }
    }

    /// The kernel's transaction parameters (configuration and transaction in one).
    ///
    /// # Errors
    /// A [`ParamsError`] naming what is wrong.
    pub fn to_transaction_params(&self) -> Result<emv_kernel::TransactionParams, ParamsError> {
        self.transaction()
            .to_transaction_params(self.terminal.to_config()?)
    }
}

impl TransactionParams {
    /// The kernel's transaction parameters under `config` (a configuration from
    /// [`TerminalParams::to_config`]).
    ///
    /// # Errors
    /// A [`ParamsError`] naming what is wrong.
    pub fn to_transaction_params(
        &self,
        config: TerminalConfig,
    ) -> Result<emv_kernel::TransactionParams, ParamsError> {
        self.fields().to_transaction_params(config)
    }

    /// The values, borrowed.
    #[must_use]
    pub fn fields(&self) -> TransactionFields<'_> {
        TransactionFields {
            amount: self.amount,
            amount_other: self.amount_other,
            currency_code: &self.currency_code.0,
            currency_exponent: self.currency_exponent,
            transaction_type: &self.transaction_type.0,
            date: &self.date,
            time: &self.time.0,
            unpredictable_number: &self.unpredictable_number.0,
        }
    }
}

/// The per-transaction values as a message carries them (JSON or binary), borrowed and not yet
/// checked: both forms are checked by the one [`TransactionFields::to_transaction_params`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionFields<'a> {
    /// Amount, Authorised, minor units.
    pub amount: u64,
    /// Amount, Other, minor units.
    pub amount_other: u64,
    /// Transaction Currency Code, 2 bytes when valid.
    pub currency_code: &'a [u8],
    /// Transaction Currency Exponent.
    pub currency_exponent: u8,
    /// Transaction Type, 1 byte when valid.
    pub transaction_type: &'a [u8],
    /// Transaction Date, `YYYY-MM-DD` when valid.
    pub date: &'a str,
    /// Transaction Time, 3 bytes when valid.
    pub time: &'a [u8],
    /// Unpredictable Number, 4 bytes when valid.
    pub unpredictable_number: &'a [u8],
}

impl TransactionFields<'_> {
    /// The kernel's transaction parameters under `config`.
    ///
    /// # Errors
    /// A [`ParamsError`] naming what is wrong.
    pub fn to_transaction_params(
        &self,
        config: TerminalConfig,
    ) -> Result<emv_kernel::TransactionParams, ParamsError> {
        let [transaction_type] = array(self.transaction_type, "transaction_type")?;
        Ok(emv_kernel::TransactionParams {
            amount: self.amount,
            amount_other: self.amount_other,
            currency_code: array(self.currency_code, "currency_code")?,
            currency_exponent: self.currency_exponent,
            transaction_type,
            date: parse_date(self.date)?,
            time: array(self.time, "time")?,
            unpredictable_number: array(self.unpredictable_number, "unpredictable_number")?,
            config,
        })
    }
}

fn array<const N: usize>(bytes: &[u8], field: &'static str) -> Result<[u8; N], ParamsError> {
    bytes.try_into().map_err(|_| ParamsError::Length(field))
}

/// Field identifiers of the binary form of [`TransactionParams`] (`ABI.md`, "Transaction
/// parameters, binary form").
mod field {
    pub(super) const AMOUNT: u8 = 0x01;
    pub(super) const AMOUNT_OTHER: u8 = 0x02;
    pub(super) const CURRENCY_CODE: u8 = 0x03;
    pub(super) const CURRENCY_EXPONENT: u8 = 0x04;
    pub(super) const TRANSACTION_TYPE: u8 = 0x05;
    pub(super) const DATE: u8 = 0x06;
    pub(super) const TIME: u8 = 0x07;
    pub(super) const UNPREDICTABLE_NUMBER: u8 = 0x08;
}

impl TransactionParams {
    /// The binary form `session_create` also takes: one `id, length, value` triple per field
    /// (one byte each for id and length), integers big-endian on 8 bytes, the date as its
    /// `YYYY-MM-DD` text. A host writes it with a few byte copies and the kernel reads it
    /// without a JSON parser: per transaction, that parsing was a good part of a short
    /// transaction's cost in the `.wasm`.
    ///
    /// # Errors
    /// [`ParamsError::Length`] (or [`ParamsError::Date`]) for a value over 255 bytes, which no
    /// valid field is.
    pub fn to_binary(&self) -> Result<Vec<u8>, ParamsError> {
        let amount = self.amount.to_be_bytes();
        let amount_other = self.amount_other.to_be_bytes();
        let fields: [(u8, &[u8], ParamsError); 8] = [
            (field::AMOUNT, &amount, ParamsError::Length("amount")),
            (
                field::AMOUNT_OTHER,
                &amount_other,
                ParamsError::Length("amount_other"),
            ),
            (
                field::CURRENCY_CODE,
                &self.currency_code.0,
                ParamsError::Length("currency_code"),
            ),
            (
                field::CURRENCY_EXPONENT,
                &[self.currency_exponent],
                ParamsError::Length("currency_exponent"),
            ),
            (
                field::TRANSACTION_TYPE,
                &self.transaction_type.0,
                ParamsError::Length("transaction_type"),
            ),
            (field::DATE, self.date.as_bytes(), ParamsError::Date),
            (field::TIME, &self.time.0, ParamsError::Length("time")),
            (
                field::UNPREDICTABLE_NUMBER,
                &self.unpredictable_number.0,
                ParamsError::Length("unpredictable_number"),
            ),
        ];
        let mut out = Vec::with_capacity(64);
        for (id, value, error) in fields {
            let len = u8::try_from(value.len()).map_err(|_| error)?;
            out.extend_from_slice(&[id, len]);
            out.extend_from_slice(value);
        }
        Ok(out)
    }
}

impl<'a> TransactionFields<'a> {
    /// Reads the binary form of [`TransactionParams::to_binary`] (fields in any order, each at
    /// most once), borrowing every value from `message`.
    ///
    /// # Errors
    /// A description of what is malformed: a truncated field, an unknown or repeated id, a
    /// missing required field, an integer not on 8 bytes (1 for the exponent), a date that is
    /// not UTF-8.
    pub fn from_binary(message: &'a [u8]) -> Result<Self, String> {
        let mut values: [Option<&[u8]>; 8] = [None; 8];
        let mut rest = message;
        while let [id, len, tail @ ..] = rest {
            let (value, tail) = tail
                .split_at_checked(usize::from(*len))
                .ok_or_else(|| format!("field {id:#04x} is truncated"))?;
            let slot = usize::from(*id)
                .checked_sub(1)
                .and_then(|index| values.get_mut(index))
                .ok_or_else(|| format!("unknown field {id:#04x}"))?;
            if slot.replace(value).is_some() {
                return Err(format!("field {id:#04x} appears twice"));
            }
            rest = tail;
        }
        if !rest.is_empty() {
            return Err("truncated field header".to_owned());
        }
        let value = |id: u8| values[usize::from(id - 1)];
        let required =
            |id: u8, name: &str| value(id).ok_or_else(|| format!("missing field `{name}`"));
        let integer = |bytes: &[u8], name: &str| {
            <[u8; 8]>::try_from(bytes)
                .map(u64::from_be_bytes)
                .map_err(|_| format!("`{name}` is not an 8-byte integer"))
        };
        let [currency_exponent] = required(field::CURRENCY_EXPONENT, "currency_exponent")? else {
            return Err("`currency_exponent` is not one byte".to_owned());
        };
        Ok(Self {
            amount: integer(required(field::AMOUNT, "amount")?, "amount")?,
            amount_other: value(field::AMOUNT_OTHER)
                .map_or(Ok(0), |bytes| integer(bytes, "amount_other"))?,
            currency_code: required(field::CURRENCY_CODE, "currency_code")?,
            currency_exponent: *currency_exponent,
            transaction_type: value(field::TRANSACTION_TYPE).unwrap_or(&[0x00]),
            date: core::str::from_utf8(required(field::DATE, "date")?)
                .map_err(|_| "`date` is not UTF-8".to_owned())?,
            time: required(field::TIME, "time")?,
            unpredictable_number: required(field::UNPREDICTABLE_NUMBER, "unpredictable_number")?,
        })
    }
}

impl TerminalParams {
    /// The kernel's reader configuration: every field checked, every CA key built (and its
    /// checksum verified) once, for any number of transactions.
    ///
    /// # Errors
    /// A [`ParamsError`] naming what is wrong.
    pub fn to_config(&self) -> Result<TerminalConfig, ParamsError> {
        let mut ca_keys = CaKeyTable::new();
        for key in &self.ca_keys {
            ca_keys.insert(key.to_key()?);
        }
        for revocation in &self.revocations {
            ca_keys.revoke(Revocation {
                rid: revocation.rid.array("revocations.rid")?,
                ca_index: byte(&revocation.ca_index, "revocations.ca_index")?,
                serial: revocation.serial.array("revocations.serial")?,
            });
        }
        Ok(TerminalConfig {
            country_code: self.country_code.array("terminal.country_code")?,
            terminal_type: byte(&self.terminal_type, "terminal.terminal_type")?,
            terminal_capabilities: self.capabilities.array("terminal.capabilities")?,
            additional_terminal_capabilities: self
                .additional_capabilities
                .array("terminal.additional_capabilities")?,
            ifd_serial_number: optional_array(
                self.ifd_serial_number.as_ref(),
                "terminal.ifd_serial_number",
            )?,
            merchant_category_code: optional_array(
                self.merchant_category_code.as_ref(),
                "terminal.merchant_category_code",
            )?,
            merchant_identifier: self.merchant_identifier.clone().map(|hex| hex.0),
            terminal_identification: optional_array(
                self.terminal_identification.as_ref(),
                "terminal.terminal_identification",
            )?,
            merchant_name_and_location: self.merchant_name_and_location.clone().map(|hex| hex.0),
            online_capable: self.online_capable,
            aids: self
                .aids
                .iter()
                .map(AidParams::to_config)
                .collect::<Result<_, _>>()?,
            ca_keys,
        })
    }
}

impl AidParams {
    fn to_config(&self) -> Result<AidConfig, ParamsError> {
        if !(5..=16).contains(&self.aid.0.len()) {
            return Err(ParamsError::Length("aids.aid"));
        }
        let kernel = Kernel::from_id(self.kernel).ok_or(ParamsError::Kernel(self.kernel))?;
        let mut config = AidConfig::new(&self.aid.0, kernel);
        if let Some(partial_match) = self.partial_match {
            config.partial_match = partial_match;
        }
        config.transaction_limit = self.transaction_limit;
        config.floor_limit = self.floor_limit;
        config.cvm_required_limit = self.cvm_required_limit;
        if let Some(ttq) = optional_array(self.ttq.as_ref(), "aids.ttq")? {
            config.ttq = ttq;
        }
        if let Some(version) = optional_array(
            self.application_version.as_ref(),
            "aids.application_version",
        )? {
            config.application_version = version;
        }
        if let Some(tac) = optional_array(self.tac_default.as_ref(), "aids.tac_default")? {
            config.tac_default = tac;
        }
        if let Some(tac) = optional_array(self.tac_denial.as_ref(), "aids.tac_denial")? {
            config.tac_denial = tac;
        }
        if let Some(tac) = optional_array(self.tac_online.as_ref(), "aids.tac_online")? {
            config.tac_online = tac;
        }
        if let Some(c2) = &self.c2 {
            config.c2 = C2Config {
                cvm_capability_cvm_required: byte(
                    &c2.cvm_capability_cvm_required,
                    "aids.c2.cvm_capability_cvm_required",
                )?,
                cvm_capability_no_cvm_required: byte(
                    &c2.cvm_capability_no_cvm_required,
                    "aids.c2.cvm_capability_no_cvm_required",
                )?,
                kernel_configuration: byte(
                    &c2.kernel_configuration,
                    "aids.c2.kernel_configuration",
                )?,
                security_capability: byte(&c2.security_capability, "aids.c2.security_capability")?,
                card_data_input_capability: byte(
                    &c2.card_data_input_capability,
                    "aids.c2.card_data_input_capability",
                )?,
            };
        }
        Ok(config)
    }
}

impl CaKeyParams {
    fn to_key(&self) -> Result<CaPublicKey, ParamsError> {
        let rid = self.rid.array("ca_keys.rid")?;
        let index = byte(&self.index, "ca_keys.index")?;
        let mut key = match &self.checksum {
            Some(checksum) => CaPublicKey::with_checksum(
                rid,
                index,
                &self.modulus.0,
                &self.exponent.0,
                &checksum.array("ca_keys.checksum")?,
            ),
            None => CaPublicKey::new(rid, index, &self.modulus.0, &self.exponent.0),
        }
        .map_err(|_| ParamsError::CaKey)?;
        key.expiry = self.expiry.as_deref().map(parse_date).transpose()?;
        Ok(key)
    }
}

/// What a session holds after `session_create` or `session_resume`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// Send this C-APDU to the card and resume with its R-APDU.
    Command {
        /// The command APDU.
        capdu: Hex,
    },
    /// The transaction is over.
    Outcome {
        /// The outcome.
        outcome: Box<Outcome>,
    },
}

/// Reads `{"type": ..., ...}` as one flat object rather than through serde's internally tagged
/// enums, which buffer the whole message into an intermediate tree first: that copy was the
/// larger part of a host's work per message. Same wire format, any key order, unknown keys and a
/// field of the other variant refused.
impl<'de> Deserialize<'de> for Output {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Type {
            Command,
            Outcome,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Flat {
            #[serde(rename = "type")]
            kind: Type,
            capdu: Option<Hex>,
            outcome: Option<Box<Outcome>>,
        }
        match Flat::deserialize(deserializer)? {
            Flat {
                kind: Type::Command,
                capdu: Some(capdu),
                outcome: None,
            } => Ok(Self::Command { capdu }),
            Flat {
                kind: Type::Outcome,
                capdu: None,
                outcome: Some(outcome),
            } => Ok(Self::Outcome { outcome }),
            Flat {
                kind: Type::Command,
                ..
            } => Err(de::Error::custom("a command has exactly the field `capdu`")),
            Flat {
                kind: Type::Outcome,
                ..
            } => Err(de::Error::custom(
                "an outcome has exactly the field `outcome`",
            )),
        }
    }
}

/// The outcome of a transaction as the ABI carries it: everything `emv_kernel::Outcome` holds,
/// with enums as stable snake-case names and bytes as hex.
///
/// `Debug` masks the PAN (first six, last four) and hides the other cardholder data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// `approved`, `declined`, `online_request`, `try_another_interface`, `end_application` or
    /// `try_again` (EMV Contactless Book A 6.2).
    pub kind: String,
    /// Why.
    pub reason: ReasonMessage,
    /// The cardholder display message (Book A 9.4).
    pub ui_message: UiMessageMessage,
    /// The CVM the host must carry out: `no_cvm`, `signature`, `online_pin` or
    /// `confirmation_code_verified`.
    pub cvm: Option<String>,
    /// CVM Results (`9F34`), 3 bytes.
    pub cvm_results: Option<Hex>,
    /// Offline data authentication.
    pub oda: OdaMessage,
    /// Terminal Verification Results (`95`), 5 bytes.
    pub tvr: Hex,
    /// Transaction Status Information (`9B`), 2 bytes.
    pub tsi: Hex,
    /// The kernel that ran (2 or 3).
    pub kernel: Option<u8>,
    /// The data record for the authorisation message, in order. Contains the clear PAN and
    /// Track 2 for the host to encrypt.
    pub data: Vec<DataObject>,
}

/// The reason of an outcome: a stable code and, depending on it, details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonMessage {
    /// The stable code of `emv_kernel::outcome::Reason`, e.g. `card_error`.
    pub code: String,
    /// The processing phase (`card_error`, `malformed_response`, `missing_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The status word (`card_error`), 2 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sw: Option<Hex>,
    /// The tag (`missing_data`, `redundant_data`), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Hex>,
    /// The code of the underlying error (`malformed_response`, `oda_failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A byte value (`unsupported_kernel`: the kernel id; `invalid_cryptogram_type`: the CID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u8>,
}

/// The cardholder display message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiMessageMessage {
    /// The Message Identifier (Book A 9.4).
    pub id: u8,
    /// Its English text.
    pub text: String,
}

/// Offline data authentication as performed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OdaMessage {
    /// `not_performed`, `succeeded` or `failed`.
    pub status: String,
    /// `sda`, `dda`, `fdda` or `cda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The code of the failed check, e.g. `oda_hash_mismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One data object of the outcome's data record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataObject {
    /// The tag, hex (e.g. `9F26`).
    pub tag: Hex,
    /// The value.
    pub value: Hex,
}

/// Tags of cardholder data, never shown by `Debug`: PAN (masked instead), Track 2, cardholder
/// name, extended name, Track 1 and Track 2 discretionary data.
const SENSITIVE: &[Tag] = &[
    Tag::ApplicationPan,
    Tag::Track2EquivalentData,
    Tag::CardholderName,
    Tag::CardholderNameExtended,
    Tag::Track1DiscretionaryData,
    Tag::Track2DiscretionaryData,
];

impl DataObject {
    /// The tag as the kernel's type, if it parses.
    #[must_use]
    pub fn tag(&self) -> Option<Tag> {
        match Tag::parse(&self.tag.0) {
            Ok((tag, len)) if len == self.tag.0.len() => Some(tag),
            _ => None,
        }
    }
}

impl fmt::Debug for DataObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tag() {
            Some(Tag::ApplicationPan) => write!(
                f,
                "{}: {}",
                self.tag,
                emv_kernel::outcome::mask_pan(&self.value.0)
            ),
            Some(tag) if SENSITIVE.contains(&tag) => write!(f, "{}: <redacted>", self.tag),
            _ => write!(f, "{}: {}", self.tag, self.value),
        }
    }
}

impl Outcome {
    /// The value of a data object of the record.
    #[must_use]
    pub fn get(&self, tag: Tag) -> Option<&[u8]> {
        self.data
            .iter()
            .find(|object| object.tag() == Some(tag))
            .map(|object| object.value.as_slice())
    }

    /// The PAN masked for display (first six, last four digits).
    #[must_use]
    pub fn masked_pan(&self) -> Option<String> {
        self.get(Tag::ApplicationPan)
            .map(emv_kernel::outcome::mask_pan)
    }

    /// The data record as concatenated BER-TLV (ISO 8583 field 55), cardholder data included.
    #[must_use]
    pub fn data_tlv(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for object in &self.data {
            if let Some(tag) = object.tag() {
                emv_kernel::tlv::encode(tag, &object.value.0, &mut out);
            }
        }
        out
    }
}

pub(crate) const fn kind_name(kind: emv_kernel::OutcomeKind) -> &'static str {
    use emv_kernel::OutcomeKind as K;
    match kind {
        K::Approved => "approved",
        K::Declined => "declined",
        K::OnlineRequest => "online_request",
        K::TryAnotherInterface => "try_another_interface",
        K::EndApplication => "end_application",
        K::TryAgain => "try_again",
    }
}

pub(crate) const fn cvm_name(cvm: Cvm) -> &'static str {
    match cvm {
        Cvm::NoCvm => "no_cvm",
        Cvm::Signature => "signature",
        Cvm::OnlinePin => "online_pin",
        Cvm::ConfirmationCodeVerified => "confirmation_code_verified",
    }
}

const fn method_name(method: OdaMethod) -> &'static str {
    match method {
        OdaMethod::Sda => "sda",
        OdaMethod::Dda => "dda",
        OdaMethod::Fdda => "fdda",
        OdaMethod::Cda => "cda",
    }
}

fn tag_hex(tag: Tag) -> Hex {
    Hex(tag.to_vec())
}

/// The fields of a reason's message, borrowed: what [`ReasonMessage`] owns and what
/// [`crate::encode`] writes, mapped once here.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReasonView {
    pub(crate) code: &'static str,
    pub(crate) phase: Option<&'static str>,
    pub(crate) sw: Option<[u8; 2]>,
    pub(crate) tag: Option<Tag>,
    pub(crate) error: Option<&'static str>,
    pub(crate) value: Option<u8>,
}

impl From<&Reason> for ReasonView {
    fn from(reason: &Reason) -> Self {
        let mut view = Self {
            code: reason.code(),
            ..Self::default()
        };
        match reason {
            Reason::CardError { phase, sw } => {
                view.phase = Some(phase.name());
                view.sw = Some(sw.0.to_be_bytes());
            }
            Reason::MalformedResponse { phase, error } => {
                view.phase = Some(phase.name());
                view.error = Some(*error);
            }
            Reason::MissingData { phase, tag } => {
                view.phase = Some(phase.name());
                view.tag = Some(*tag);
            }
            Reason::RedundantData { tag } => view.tag = Some(*tag),
            Reason::OdaFailed(error) => view.error = Some(error.code()),
            Reason::UnsupportedKernel(value) | Reason::InvalidCryptogramType(value) => {
                view.value = Some(*value);
            }
            // The other reasons carry no detail; a future reason without a mapping still has
            // its code.
            _ => {}
        }
        view
    }
}

impl From<&Reason> for ReasonMessage {
    fn from(reason: &Reason) -> Self {
        let view = ReasonView::from(reason);
        Self {
            code: view.code.to_owned(),
            phase: view.phase.map(ToOwned::to_owned),
            sw: view.sw.map(|sw| Hex(sw.to_vec())),
            tag: view.tag.map(tag_hex),
            error: view.error.map(ToOwned::to_owned),
            value: view.value,
        }
    }
}

/// The fields of offline data authentication's message, borrowed (as [`ReasonView`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OdaView {
    pub(crate) status: &'static str,
    pub(crate) method: Option<&'static str>,
    pub(crate) error: Option<&'static str>,
}

impl From<&OdaStatus> for OdaView {
    fn from(status: &OdaStatus) -> Self {
        match status {
            OdaStatus::NotPerformed => Self {
                status: "not_performed",
                method: None,
                error: None,
            },
            OdaStatus::Succeeded(method) => Self {
                status: "succeeded",
                method: Some(method_name(*method)),
                error: None,
            },
            OdaStatus::Failed(method, error) => Self {
                status: "failed",
                method: Some(method_name(*method)),
                error: Some(error.code()),
            },
        }
    }
}

impl From<&OdaStatus> for OdaMessage {
    fn from(status: &OdaStatus) -> Self {
        let view = OdaView::from(status);
        Self {
            status: view.status.to_owned(),
            method: view.method.map(ToOwned::to_owned),
            error: view.error.map(ToOwned::to_owned),
        }
    }
}

impl From<&emv_kernel::Outcome> for Outcome {
    fn from(outcome: &emv_kernel::Outcome) -> Self {
        let ui = outcome.ui_message();
        Self {
            kind: kind_name(outcome.kind).to_owned(),
            reason: ReasonMessage::from(&outcome.reason),
            ui_message: UiMessageMessage {
                id: ui.identifier(),
                text: ui.text().to_owned(),
            },
            cvm: outcome.cvm.map(|cvm| cvm_name(cvm).to_owned()),
            cvm_results: outcome.cvm_results.map(|results| Hex(results.0.to_vec())),
            oda: OdaMessage::from(&outcome.oda),
            tvr: Hex(outcome.tvr.bytes().to_vec()),
            tsi: Hex(outcome.tsi.bytes().to_vec()),
            kernel: outcome.kernel,
            data: outcome
                .data
                .tags()
                .filter_map(|tag| {
                    Some(DataObject {
                        tag: tag_hex(tag),
                        value: Hex(outcome.data.get(tag)?.to_vec()),
                    })
                })
                .collect(),
        }
    }
}

impl From<&emv_kernel::Step> for Output {
    fn from(step: &emv_kernel::Step) -> Self {
        match step {
            emv_kernel::Step::SendApdu(capdu) => Self::Command {
                capdu: Hex(capdu.clone()),
            },
            emv_kernel::Step::Done(outcome) => Self::Outcome {
                outcome: Box::new(Outcome::from(outcome)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(Hex::parse("9f26").unwrap().0, [0x9F, 0x26]);
        assert_eq!(Hex(alloc::vec![0x9F, 0x26]).to_string(), "9F26");
        assert_eq!(Hex::parse("").unwrap().0, [] as [u8; 0]);
        assert_eq!(Hex::parse("9F2"), Err(ParamsError::Hex));
        assert_eq!(Hex::parse("9G"), Err(ParamsError::Hex));
    }

    #[test]
    fn outputs_read_back_in_any_key_order_and_refuse_mixed_shapes() {
        let command = Output::Command {
            capdu: Hex(alloc::vec![0x00, 0xA4, 0x04, 0x00]),
        };
        let text = serde_json::to_string(&command).unwrap();
        assert_eq!(text, r#"{"type":"command","capdu":"00A40400"}"#);
        assert_eq!(serde_json::from_str::<Output>(&text).unwrap(), command);
        assert_eq!(
            serde_json::from_str::<Output>(r#"{"capdu":"00a40400","type":"command"}"#).unwrap(),
            command
        );
        let step = emv_kernel::Step::Done(emv_kernel::Outcome::without_data(
            emv_kernel::OutcomeKind::TryAnotherInterface,
            Reason::NoMutualApplication,
        ));
        let outcome = Output::from(&step);
        let text = serde_json::to_string(&outcome).unwrap();
        assert!(text.starts_with(r#"{"type":"outcome","outcome":{"kind":"try_another_interface""#));
        assert_eq!(serde_json::from_str::<Output>(&text).unwrap(), outcome);
        for bad in [
            r#"{"type":"command"}"#,
            r#"{"type":"outcome","capdu":"00"}"#,
            r#"{"type":"command","capdu":"00","outcome":null,"extra":1}"#,
            r#"{"type":"other","capdu":"00"}"#,
            r#"{"capdu":"00"}"#,
            r#"{"type":"command","capdu":"0"}"#,
        ] {
            assert!(serde_json::from_str::<Output>(bad).is_err(), "{bad}");
        }
        let both = text.replacen(
            r#""type":"outcome","#,
            r#""type":"outcome","capdu":"00","#,
            1,
        );
        assert!(serde_json::from_str::<Output>(&both).is_err());
    }

    #[test]
    fn the_binary_form_reads_back_and_refuses_what_is_malformed() {
        let params = TransactionParams {
            amount: 999,
            amount_other: 5,
            currency_code: Hex(alloc::vec![0x08, 0x40]),
            currency_exponent: 2,
            transaction_type: Hex(alloc::vec![0x09]),
            date: "2026-11-26".to_owned(),
            time: Hex(alloc::vec![0x12, 0x00, 0x00]),
            unpredictable_number: Hex(alloc::vec![1, 2, 3, 4]),
        };
        let binary = params.to_binary().unwrap();
        assert_eq!(&binary[..10], [0x01, 8, 0, 0, 0, 0, 0, 0, 0x03, 0xE7]);
        assert_eq!(TransactionFields::from_binary(&binary), Ok(params.fields()));
        // Fields in another order; the optional ones left out take their defaults.
        let mut reordered = Vec::new();
        for (id, value) in [
            (0x08, &[1, 2, 3, 4][..]),
            (0x07, &[0x12, 0, 0]),
            (0x06, b"2026-11-26"),
            (0x04, &[2]),
            (0x03, &[0x08, 0x40]),
            (0x01, &999_u64.to_be_bytes()),
        ] {
            reordered.extend_from_slice(&[id, u8::try_from(value.len()).unwrap()]);
            reordered.extend_from_slice(value);
        }
        let fields = TransactionFields::from_binary(&reordered).unwrap();
        assert_eq!(
            (fields.amount_other, fields.transaction_type),
            (0, &[0x00][..])
        );
        // The example of `ABI.md`.
        let example = Hex::parse(concat!(
            "010800000000000003E7030208400401020",
            "60A323032362D31312D3236070312000008045B000001"
        ))
        .unwrap();
        let fields = TransactionFields::from_binary(example.as_slice()).unwrap();
        assert_eq!(
            (fields.amount, fields.date, fields.unpredictable_number),
            (999, "2026-11-26", &[0x5B, 0, 0, 1][..])
        );
        // A wrong length of a byte string is for the checks of `to_transaction_params`.
        let mut short = params.clone();
        short.currency_code = Hex(alloc::vec![0x08]);
        let short = short.to_binary().unwrap();
        let fields = TransactionFields::from_binary(&short).unwrap();
        assert_eq!(fields.currency_code, [0x08]);
        let malformed: [&[u8]; 7] = [
            &binary[..binary.len() - 1],
            &binary[..binary.len() - 5],
            &[binary.as_slice(), &[0x09, 0]].concat(),
            &[binary.as_slice(), &[0x01, 8, 0, 0, 0, 0, 0, 0, 0, 1]].concat(),
            &binary[10..],
            &[&[0x01, 4, 0, 0, 3, 0xE7][..], &binary[10..]].concat(),
            &[binary.as_slice(), &[0x00]].concat(),
        ];
        for (case, message) in malformed.iter().enumerate() {
            assert!(
                TransactionFields::from_binary(message).is_err(),
                "case {case}"
            );
        }
        // Over 255 bytes a value has no binary form; the field is named as a wrong length is.
        let mut long = params;
        long.time = Hex(alloc::vec![0; 256]);
        assert_eq!(long.to_binary(), Err(ParamsError::Length("time")));
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2026-11-26"),
            Ok(Date::new(2026, 11, 26).unwrap())
        );
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "26-11-26",
            "2026/11/26",
            "2026-1a-01",
            "",
        ] {
            assert_eq!(parse_date(bad), Err(ParamsError::Date), "{bad}");
        }
    }
}
