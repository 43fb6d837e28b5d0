//! ISO 9564-1 PIN blocks, formats 0, 1, 3 and 4, and PIN translation.
//!
//! What it owns:
//! - [`ClearPin`] (4–12 digits, zeroized, never printed) and [`Pan`] (validated digits, printed
//!   masked).
//! - Building and checking the plaintext PIN blocks of ISO 9564-1:2017 clause 9: format 0
//!   (9.3.2), format 1 (9.3.3), format 3 (9.3.5), each 8 bytes for TDES, and format 4 (9.4.2), the
//!   16-byte AES block with its two-step encipherment (9.4.2.3). Format 2 (offline ICC PIN
//!   verification only) is out of scope.
//! - Encrypting and decrypting them ([`encrypt_pin`], [`decrypt_pin`], and the lower-level
//!   [`encode`], [`encrypt`], [`decrypt`], [`decode`]).
//! - [`translate`], which re-encrypts a PIN block under another key and format without handing the
//!   clear PIN to its caller, and [`verify_pin`], which compares an encrypted PIN with an expected
//!   one in constant time.
//!
//! Fill digits that ISO 9564-1 requires to be random (format 1 transaction field, format 3 fill,
//! format 4 random padding) come from the caller's [`RandomSource`].
//!
//! # Security
//! Clear PINs and plaintext PIN blocks live in zeroizing buffers, print redacted, and compare in
//! constant time. Errors never carry PIN or PAN digits.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::primitives::BlockCipher;
use crate::{ErrorCode, KeyAlgorithm, RandomSource, SecretKey};

/// Fewest PIN digits ISO 9564-1:2017 8.1 allows.
pub const MIN_PIN_DIGITS: usize = 4;
/// Most PIN digits ISO 9564-1:2017 8.1 allows.
pub const MAX_PIN_DIGITS: usize = 12;
/// Fewest PAN digits accepted: the shortest PAN of ISO/IEC 7812-1.
pub const MIN_PAN_DIGITS: usize = 8;
/// Most PAN digits ISO/IEC 7812-1 allows.
pub const MAX_PAN_DIGITS: usize = 19;
/// Nibbles of the PIN-and-fill part of every format: the whole 8-byte block for formats 0, 1, 3,
/// the first 8 bytes of the format 4 PIN field.
const PIN_FIELD_NIBBLES: usize = 16;

/// Errors building, encrypting, decrypting or checking PIN blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinBlockError {
    /// A PIN must have 4 to 12 digits (ISO 9564-1:2017 8.1, 9.1).
    #[error("PIN must have 4 to 12 digits")]
    InvalidPinLength,
    /// A PIN may contain only the digits 0–9.
    #[error("PIN contains a character that is not a decimal digit")]
    NonDigitPin,
    /// A PAN must have 8 to 19 digits (ISO/IEC 7812-1).
    #[error("PAN must have 8 to 19 digits")]
    InvalidPanLength,
    /// A PAN may contain only the digits 0–9.
    #[error("PAN contains a character that is not a decimal digit")]
    NonDigitPan,
    /// Formats 0, 3 and 4 bind the PIN to the PAN, so one must be given.
    #[error("PIN block format {0:?} needs the PAN")]
    PanRequired(PinBlockFormat),
    /// Format 4 needs an AES key; formats 0, 1 and 3 need a TDES key (ISO 9564-1:2017 9.3, 9.4).
    #[error("PIN block format {format:?} cannot be enciphered with a {algorithm:?} key")]
    KeyAlgorithmMismatch {
        /// The PIN block format.
        format: PinBlockFormat,
        /// The algorithm of the key given.
        algorithm: KeyAlgorithm,
    },
    /// The block is not the length of its format (8 bytes for 0/1/3, 16 for 4).
    #[error("PIN block is {actual} bytes, format needs {expected}")]
    WrongBlockLength {
        /// Length the format needs.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// The control field (first nibble) names another format than the one expected.
    #[error("PIN block control field does not match format {expected:?}")]
    ControlFieldMismatch {
        /// The format the caller expected.
        expected: PinBlockFormat,
    },
    /// The PIN length nibble of a block is outside 4–12.
    #[error("PIN block declares a PIN length outside 4 to 12")]
    PinLengthOutOfRange,
    /// A PIN digit position of a block holds A–F.
    #[error("PIN block holds a non-decimal PIN digit")]
    NonDigitInBlock,
    /// A fill digit is not allowed by the format (F for 0, A–F for 3, A for format 4), which with
    /// formats 0 and 3 usually means a wrong PAN or key.
    #[error("PIN block fill digits are not valid for its format")]
    InvalidFill,
}

impl ErrorCode for PinBlockError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidPinLength => "pin_invalid_length",
            Self::NonDigitPin => "pin_non_digit",
            Self::InvalidPanLength => "pan_invalid_length",
            Self::NonDigitPan => "pan_non_digit",
            Self::PanRequired(_) => "pin_block_pan_required",
            Self::KeyAlgorithmMismatch { .. } => "pin_block_key_algorithm_mismatch",
            Self::WrongBlockLength { .. } => "pin_block_wrong_length",
            Self::ControlFieldMismatch { .. } => "pin_block_control_field_mismatch",
            Self::PinLengthOutOfRange => "pin_block_pin_length_out_of_range",
            Self::NonDigitInBlock => "pin_block_non_digit",
            Self::InvalidFill => "pin_block_invalid_fill",
        }
    }
}

/// An ISO 9564-1:2017 PIN block format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PinBlockFormat {
    /// Format 0 (9.3.2): PIN XOR PAN, fill `F`, TDES.
    Iso0,
    /// Format 1 (9.3.3): PIN with a random transaction field, no PAN, TDES.
    Iso1,
    /// Format 3 (9.3.5): PIN XOR PAN, random fill `A`–`F`, TDES.
    Iso3,
    /// Format 4 (9.4.2): 16-byte PIN field and PAN field, enciphered twice with AES.
    Iso4,
}

impl PinBlockFormat {
    /// Every supported format, for iteration in callers and tests.
    pub const ALL: [Self; 4] = [Self::Iso0, Self::Iso1, Self::Iso3, Self::Iso4];

    /// Block length in bytes: 8 for formats 0, 1, 3; 16 for format 4.
    #[must_use]
    pub const fn block_len(self) -> usize {
        match self {
            Self::Iso4 => 16,
            Self::Iso0 | Self::Iso1 | Self::Iso3 => 8,
        }
    }

    /// Whether the format binds the PIN to the PAN.
    #[must_use]
    pub const fn needs_pan(self) -> bool {
        !matches!(self, Self::Iso1)
    }

    /// The control field value: the first nibble of the plaintext block (ISO 9564-1:2017 9.3.1).
    const fn control_field(self) -> u8 {
        match self {
            Self::Iso0 => 0x0,
            Self::Iso1 => 0x1,
            Self::Iso3 => 0x3,
            Self::Iso4 => 0x4,
        }
    }

    /// Whether `algorithm` is the cipher this format is defined for.
    const fn accepts(self, algorithm: KeyAlgorithm) -> bool {
        match self {
            Self::Iso4 => !algorithm.is_tdes(),
            Self::Iso0 | Self::Iso1 | Self::Iso3 => algorithm.is_tdes(),
        }
    }
}

/// A clear PIN of 4 to 12 decimal digits.
///
/// Zeroized on drop, printed as `ClearPin(..)`, compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClearPin {
    /// Digit values 0–9; only the first `len` are meaningful, the rest stay zero.
    digits: [u8; MAX_PIN_DIGITS],
    len: usize,
}

impl ClearPin {
    /// A PIN from its ASCII digits, e.g. `"1234"`.
    ///
    /// # Errors
    /// [`PinBlockError::InvalidPinLength`] outside 4–12 characters,
    /// [`PinBlockError::NonDigitPin`] for anything but `0`–`9`.
    pub fn new(ascii_digits: &str) -> Result<Self, PinBlockError> {
        let bytes = ascii_digits.as_bytes();
        if !(MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&bytes.len()) {
            return Err(PinBlockError::InvalidPinLength);
        }
        let mut pin = Self {
            digits: [0; MAX_PIN_DIGITS],
            len: bytes.len(),
        };
        for (slot, &ch) in pin.digits.iter_mut().zip(bytes) {
            if !ch.is_ascii_digit() {
                return Err(PinBlockError::NonDigitPin);
            }
            *slot = ch - b'0';
        }
        Ok(pin)
    }

    /// Number of digits.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a PIN has at least 4 digits. Present for API symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The digit values (0–9), one per byte.
    ///
    /// Named so that every place that reads a clear PIN is easy to find in review.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    /// A PIN from digit values already known to be 0–9 and 4–12 long.
    fn from_digit_values(values: &[u8]) -> Self {
        let mut pin = Self {
            digits: [0; MAX_PIN_DIGITS],
            len: values.len(),
        };
        pin.digits[..values.len()].copy_from_slice(values);
        pin
    }
}

impl fmt::Debug for ClearPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClearPin(..)")
    }
}

impl PartialEq for ClearPin {
    fn eq(&self, other: &Self) -> bool {
        // Digits past `len` are always zero, so comparing the whole arrays plus the lengths is
        // exact and runs in constant time.
        let same_len = (self.len as u64).ct_eq(&(other.len as u64));
        bool::from(same_len & self.digits.ct_eq(&other.digits))
    }
}

impl Eq for ClearPin {}

/// A primary account number: 8 to 19 decimal digits.
///
/// `Debug` shows only the last four digits.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Pan {
    /// Digit values 0–9; only the first `len` are meaningful.
    digits: [u8; MAX_PAN_DIGITS],
    len: usize,
}

impl Pan {
    /// A PAN from its ASCII digits, e.g. `"4111111111111111"`.
    ///
    /// # Errors
    /// [`PinBlockError::InvalidPanLength`] outside 8–19 characters,
    /// [`PinBlockError::NonDigitPan`] for anything but `0`–`9`.
    pub fn new(ascii_digits: &str) -> Result<Self, PinBlockError> {
        let bytes = ascii_digits.as_bytes();
        if !(MIN_PAN_DIGITS..=MAX_PAN_DIGITS).contains(&bytes.len()) {
            return Err(PinBlockError::InvalidPanLength);
        }
        let mut pan = Self {
            digits: [0; MAX_PAN_DIGITS],
            len: bytes.len(),
        };
        for (slot, &ch) in pan.digits.iter_mut().zip(bytes) {
            if !ch.is_ascii_digit() {
                return Err(PinBlockError::NonDigitPan);
            }
            *slot = ch - b'0';
        }
        Ok(pan)
    }

    /// The digit values (0–9), one per byte.
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }

    /// The 8-byte account number field of formats 0 and 3 (ISO 9564-1:2017 9.3.2.3, 9.3.5.3):
    /// four zero nibbles, then the rightmost 12 PAN digits excluding the check digit, left-padded
    /// with zeros when there are fewer.
    fn account_field_8(&self) -> [u8; 8] {
        let without_check_digit = &self.digits()[..self.len - 1];
        let take = without_check_digit.len().min(12);
        let rightmost = &without_check_digit[without_check_digit.len() - take..];
        let mut nibbles = [0u8; 16];
        nibbles[16 - take..].copy_from_slice(rightmost);
        pack_nibbles(&nibbles)
    }

    /// The 16-byte PAN field of format 4 (ISO 9564-1:2017 9.4.2.2.3): nibble M = PAN length − 12,
    /// then the PAN left-justified and zero-padded; a PAN shorter than 12 digits gets M = 0 and is
    /// right-justified in the first 12 digit positions.
    fn account_field_16(&self) -> [u8; 16] {
        let digits = self.digits();
        let mut nibbles = [0u8; 32];
        if digits.len() >= 12 {
            // Lengths are 12..=19, so M is 0..=7 and fits a nibble.
            nibbles[0] = (digits.len() - 12) as u8;
            nibbles[1..=digits.len()].copy_from_slice(digits);
        } else {
            nibbles[13 - digits.len()..13].copy_from_slice(digits);
        }
        pack_nibbles(&nibbles)
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // PCI DSS allows at most the last four digits in clear here; the length is not shown.
        f.write_str("Pan(****")?;
        for digit in &self.digits()[self.len - 4..] {
            write!(f, "{digit}")?;
        }
        f.write_str(")")
    }
}

/// A plaintext PIN block (formats 0, 1, 3) or plaintext PIN field (format 4).
///
/// It holds the clear PIN, so it zeroizes on drop and prints redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PlainPinBlock {
    bytes: [u8; 16],
    len: usize,
}

impl PlainPinBlock {
    /// A plaintext block from its bytes (8 or 16), e.g. one decrypted elsewhere.
    ///
    /// # Errors
    /// [`PinBlockError::WrongBlockLength`] unless `bytes` is 8 or 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PinBlockError> {
        let (bytes, len) = block_from_slice(bytes)?;
        Ok(Self { bytes, len })
    }

    /// The plaintext bytes.
    ///
    /// Named so that every place that reads clear PIN material is easy to find in review.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Debug for PlainPinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainPinBlock(..)")
    }
}

/// An enciphered PIN block: 8 bytes (formats 0, 1, 3) or 16 bytes (format 4).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncryptedPinBlock {
    bytes: [u8; 16],
    len: usize,
}

impl EncryptedPinBlock {
    /// An enciphered block from its bytes (8 or 16), as received from a terminal or network.
    ///
    /// # Errors
    /// [`PinBlockError::WrongBlockLength`] unless `bytes` is 8 or 16 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PinBlockError> {
        let (bytes, len) = block_from_slice(bytes)?;
        Ok(Self { bytes, len })
    }

    /// The enciphered bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Block length in bytes (8 or 16).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a block has 8 or 16 bytes. Present for API symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Debug for EncryptedPinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ciphertext is not secret, but PIN blocks are kept out of logs by policy.
        write!(f, "EncryptedPinBlock({} bytes)", self.len)
    }
}

/// Copies an 8- or 16-byte slice into a 16-byte buffer.
fn block_from_slice(bytes: &[u8]) -> Result<([u8; 16], usize), PinBlockError> {
    if bytes.len() != 8 && bytes.len() != 16 {
        return Err(PinBlockError::WrongBlockLength {
            expected: if bytes.len() > 8 { 16 } else { 8 },
            actual: bytes.len(),
        });
    }
    let mut buf = [0u8; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok((buf, bytes.len()))
}

/// Packs nibbles (each 0–15) two per byte, high nibble first.
fn pack_nibbles<const N: usize, const M: usize>(nibbles: &[u8; N]) -> [u8; M] {
    let mut out = [0u8; M];
    for (byte, pair) in out.iter_mut().zip(nibbles.chunks_exact(2)) {
        if let [high, low] = pair {
            *byte = (high << 4) | (low & 0x0F);
        }
    }
    out
}

/// The nibble at `index` (0 = high nibble of byte 0).
fn nibble(bytes: &[u8], index: usize) -> u8 {
    let byte = bytes.get(index / 2).copied().unwrap_or(0);
    if index.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0F
    }
}

fn require_pan(format: PinBlockFormat, pan: Option<&Pan>) -> Result<&Pan, PinBlockError> {
    pan.ok_or(PinBlockError::PanRequired(format))
}

fn check_key(format: PinBlockFormat, key: &SecretKey) -> Result<(), PinBlockError> {
    check_algorithm(format, key.algorithm())
}

fn check_algorithm(format: PinBlockFormat, algorithm: KeyAlgorithm) -> Result<(), PinBlockError> {
    if format.accepts(algorithm) {
        Ok(())
    } else {
        Err(PinBlockError::KeyAlgorithmMismatch { format, algorithm })
    }
}

fn check_len(format: PinBlockFormat, actual: usize) -> Result<(), PinBlockError> {
    if actual == format.block_len() {
        Ok(())
    } else {
        Err(PinBlockError::WrongBlockLength {
            expected: format.block_len(),
            actual,
        })
    }
}

/// A uniformly distributed digit from `low..=15`, drawn from two random bytes so the modulo bias
/// is below 2^-13.
fn random_fill_digit(low: u8, rng: &mut impl RandomSource) -> u8 {
    let mut buf = Zeroizing::new([0u8; 2]);
    rng.fill(&mut *buf);
    let span = u16::from(16 - low);
    // The remainder is below `span` ≤ 16, so the sum fits a nibble.
    low + (u16::from_be_bytes(*buf) % span) as u8
}

/// Builds the plaintext block (formats 0, 1, 3) or plaintext PIN field (format 4), ISO 9564-1:2017
/// 9.3.2, 9.3.3, 9.3.5 and 9.4.2.2.2.
///
/// # Errors
/// [`PinBlockError::PanRequired`] for formats 0 and 3 without a PAN (format 4 binds the PAN at
/// encipherment, see [`encrypt`]).
pub fn encode(
    format: PinBlockFormat,
    pin: &ClearPin,
    pan: Option<&Pan>,
    rng: &mut impl RandomSource,
) -> Result<PlainPinBlock, PinBlockError> {
    // Nibble 0 is the control field, nibble 1 the PIN length (4..=12 fits a nibble), then the PIN
    // and fill up to nibble 15; for format 4 the second 8 bytes are filled below.
    let mut nibbles = Zeroizing::new([0u8; 32]);
    nibbles[0] = format.control_field();
    nibbles[1] = pin.len() as u8;
    nibbles[2..2 + pin.len()].copy_from_slice(pin.expose_secret());
    for slot in &mut nibbles[2 + pin.len()..PIN_FIELD_NIBBLES] {
        *slot = match format {
            // Format 0 pads with F (9.3.2.2), format 4 with A (9.4.2.2.2).
            PinBlockFormat::Iso0 => 0xF,
            PinBlockFormat::Iso4 => 0xA,
            // Format 1: the transaction field is any unique value (9.3.3).
            PinBlockFormat::Iso1 => random_fill_digit(0x0, rng),
            // Format 3: random fill from A–F (9.3.5.2).
            PinBlockFormat::Iso3 => random_fill_digit(0xA, rng),
        };
    }
    let mut block = PlainPinBlock {
        bytes: pack_nibbles(&nibbles),
        len: format.block_len(),
    };
    match format {
        PinBlockFormat::Iso0 | PinBlockFormat::Iso3 => {
            let account = require_pan(format, pan)?.account_field_8();
            block.bytes[..8]
                .iter_mut()
                .zip(account)
                .for_each(|(b, a)| *b ^= a);
        }
        // Format 4: the last 8 bytes of the PIN field are random (9.4.2.2.2).
        PinBlockFormat::Iso4 => rng.fill(&mut block.bytes[8..16]),
        PinBlockFormat::Iso1 => {}
    }
    Ok(block)
}

/// Checks a plaintext block (or format 4 PIN field) and extracts its PIN, ISO 9564-1:2017 9.3,
/// 9.4.2.2.2.
///
/// # Errors
/// [`PinBlockError::WrongBlockLength`], [`PinBlockError::PanRequired`] (formats 0, 3),
/// [`PinBlockError::ControlFieldMismatch`], [`PinBlockError::PinLengthOutOfRange`],
/// [`PinBlockError::NonDigitInBlock`], [`PinBlockError::InvalidFill`].
pub fn decode(
    format: PinBlockFormat,
    block: &PlainPinBlock,
    pan: Option<&Pan>,
) -> Result<ClearPin, PinBlockError> {
    check_len(format, block.len)?;
    let mut field = Zeroizing::new([0u8; 8]);
    field.copy_from_slice(&block.bytes[..8]);
    if matches!(format, PinBlockFormat::Iso0 | PinBlockFormat::Iso3) {
        let account = require_pan(format, pan)?.account_field_8();
        field.iter_mut().zip(account).for_each(|(b, a)| *b ^= a);
    }
    if nibble(&*field, 0) != format.control_field() {
        return Err(PinBlockError::ControlFieldMismatch { expected: format });
    }
    let pin_len = usize::from(nibble(&*field, 1));
    if !(MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&pin_len) {
        return Err(PinBlockError::PinLengthOutOfRange);
    }
    let mut digits = Zeroizing::new([0u8; MAX_PIN_DIGITS]);
    for (index, slot) in digits[..pin_len].iter_mut().enumerate() {
        *slot = nibble(&*field, 2 + index);
        if *slot > 9 {
            return Err(PinBlockError::NonDigitInBlock);
        }
    }
    for index in 2 + pin_len..PIN_FIELD_NIBBLES {
        if !fill_is_valid(format, nibble(&*field, index)) {
            return Err(PinBlockError::InvalidFill);
        }
    }
    Ok(ClearPin::from_digit_values(&digits[..pin_len]))
}

/// Whether `digit` is an allowed fill digit of `format`.
fn fill_is_valid(format: PinBlockFormat, digit: u8) -> bool {
    match format {
        PinBlockFormat::Iso0 => digit == 0xF,
        PinBlockFormat::Iso1 => true,
        PinBlockFormat::Iso3 => digit >= 0xA,
        PinBlockFormat::Iso4 => digit == 0xA,
    }
}

/// Enciphers a plaintext block: one TDES ECB block for formats 0, 1, 3; for format 4 the
/// two-step AES encipherment of ISO 9564-1:2017 9.4.2.3 (encipher the PIN field, XOR the PAN
/// field, encipher again).
///
/// # Errors
/// [`PinBlockError::KeyAlgorithmMismatch`], [`PinBlockError::WrongBlockLength`],
/// [`PinBlockError::PanRequired`] for format 4 without a PAN.
pub fn encrypt(
    key: &SecretKey,
    format: PinBlockFormat,
    block: &PlainPinBlock,
    pan: Option<&Pan>,
) -> Result<EncryptedPinBlock, PinBlockError> {
    check_key(format, key)?;
    encrypt_with(&BlockCipher::new(key), format, block, pan)
}

fn encrypt_with(
    cipher: &BlockCipher,
    format: PinBlockFormat,
    block: &PlainPinBlock,
    pan: Option<&Pan>,
) -> Result<EncryptedPinBlock, PinBlockError> {
    check_len(format, block.len)?;
    let mut out = EncryptedPinBlock {
        bytes: block.bytes,
        len: block.len,
    };
    let data = &mut out.bytes[..out.len];
    if format == PinBlockFormat::Iso4 {
        let account = require_pan(format, pan)?.account_field_16();
        ecb_encrypt(cipher, data);
        data.iter_mut().zip(account).for_each(|(b, a)| *b ^= a);
    }
    ecb_encrypt(cipher, data);
    Ok(out)
}

/// Deciphers a block; the inverse of [`encrypt`] (for format 4, the reverse of ISO 9564-1:2017
/// 9.4.2.3: decipher, XOR the PAN field, decipher again). The result is not checked: pass it to
/// [`decode`].
///
/// # Errors
/// [`PinBlockError::KeyAlgorithmMismatch`], [`PinBlockError::WrongBlockLength`],
/// [`PinBlockError::PanRequired`] for format 4 without a PAN.
pub fn decrypt(
    key: &SecretKey,
    format: PinBlockFormat,
    block: &EncryptedPinBlock,
    pan: Option<&Pan>,
) -> Result<PlainPinBlock, PinBlockError> {
    check_key(format, key)?;
    decrypt_with(&BlockCipher::new(key), format, block, pan)
}

fn decrypt_with(
    cipher: &BlockCipher,
    format: PinBlockFormat,
    block: &EncryptedPinBlock,
    pan: Option<&Pan>,
) -> Result<PlainPinBlock, PinBlockError> {
    check_len(format, block.len)?;
    let mut out = PlainPinBlock {
        bytes: block.bytes,
        len: block.len,
    };
    let data = &mut out.bytes[..out.len];
    ecb_decrypt(cipher, data);
    if format == PinBlockFormat::Iso4 {
        let account = require_pan(format, pan)?.account_field_16();
        data.iter_mut().zip(account).for_each(|(b, a)| *b ^= a);
        ecb_decrypt(cipher, data);
    }
    Ok(out)
}

/// ECB over a block whose length `check_key` and `check_len` already matched to the cipher.
fn ecb_encrypt(cipher: &BlockCipher, data: &mut [u8]) {
    if cipher.encrypt_ecb(data).is_err() {
        unreachable!("block length was checked against the format and key");
    }
}

fn ecb_decrypt(cipher: &BlockCipher, data: &mut [u8]) {
    if cipher.decrypt_ecb(data).is_err() {
        unreachable!("block length was checked against the format and key");
    }
}

/// Builds and enciphers a PIN block in one step ([`encode`] then [`encrypt`]).
///
/// # Errors
/// As [`encode`] and [`encrypt`].
pub fn encrypt_pin(
    key: &SecretKey,
    format: PinBlockFormat,
    pin: &ClearPin,
    pan: Option<&Pan>,
    rng: &mut impl RandomSource,
) -> Result<EncryptedPinBlock, PinBlockError> {
    check_key(format, key)?;
    let plain = encode(format, pin, pan, rng)?;
    encrypt(key, format, &plain, pan)
}

/// Deciphers and checks a PIN block in one step ([`decrypt`] then [`decode`]).
///
/// # Errors
/// As [`decrypt`] and [`decode`].
pub fn decrypt_pin(
    key: &SecretKey,
    format: PinBlockFormat,
    block: &EncryptedPinBlock,
    pan: Option<&Pan>,
) -> Result<ClearPin, PinBlockError> {
    let plain = decrypt(key, format, block, pan)?;
    decode(format, &plain, pan)
}

/// A PIN key with its cipher key schedule expanded once, for hot paths that use the same key for
/// many blocks (a zone key, or a DUKPT working key used for one decrypt and one verify).
///
/// The expanded schedule is zeroized on drop; `Debug` shows only the algorithm.
pub struct PinKey {
    algorithm: KeyAlgorithm,
    cipher: BlockCipher,
}

impl PinKey {
    /// Expands `key`'s schedule.
    #[must_use]
    pub fn new(key: &SecretKey) -> Self {
        Self {
            algorithm: key.algorithm(),
            cipher: BlockCipher::new(key),
        }
    }

    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The cipher, if this key suits `format`.
    fn cipher_for(&self, format: PinBlockFormat) -> Result<&BlockCipher, PinBlockError> {
        check_algorithm(format, self.algorithm)?;
        Ok(&self.cipher)
    }
}

impl fmt::Debug for PinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Re-enciphers a PIN block from one key and format to another without returning the clear PIN:
/// the PIN exists only in zeroizing buffers inside this call, as ISO 9564-1 requires of PIN
/// translation inside a secure cryptographic device.
///
/// `from` and `to` are each a key and the format used with it. The PIN is fully checked before it
/// is re-enciphered. Fresh random fill is drawn for the output format.
///
/// # Errors
/// As [`decrypt_pin`] for the input and [`encrypt_pin`] for the output, e.g.
/// [`PinBlockError::KeyAlgorithmMismatch`] when a key does not suit its format.
pub fn translate(
    block: &EncryptedPinBlock,
    from: (&SecretKey, PinBlockFormat),
    to: (&SecretKey, PinBlockFormat),
    pan: Option<&Pan>,
    rng: &mut impl RandomSource,
) -> Result<EncryptedPinBlock, PinBlockError> {
    let (from_key, from_format) = from;
    let (to_key, to_format) = to;
    // Check both keys before expanding schedules so a misconfigured zone key fails cleanly.
    check_key(from_format, from_key)?;
    check_key(to_format, to_key)?;
    translate_with_keys(
        block,
        (&PinKey::new(from_key), from_format),
        (&PinKey::new(to_key), to_format),
        pan,
        rng,
    )
}

/// As [`translate`], with keys whose schedules are already expanded: the server keeps a
/// [`PinKey`] for each zone key instead of expanding it per transaction.
///
/// # Errors
/// As [`translate`].
pub fn translate_with_keys(
    block: &EncryptedPinBlock,
    from: (&PinKey, PinBlockFormat),
    to: (&PinKey, PinBlockFormat),
    pan: Option<&Pan>,
    rng: &mut impl RandomSource,
) -> Result<EncryptedPinBlock, PinBlockError> {
    let (from_key, from_format) = from;
    let (to_key, to_format) = to;
    let from_cipher = from_key.cipher_for(from_format)?;
    let to_cipher = to_key.cipher_for(to_format)?;
    let plain = decrypt_with(from_cipher, from_format, block, pan)?;
    let pin = decode(from_format, &plain, pan)?;
    let plain = encode(to_format, &pin, pan, rng)?;
    encrypt_with(to_cipher, to_format, &plain, pan)
}

/// Whether the PIN inside `block` equals `expected`, compared in constant time; the clear PIN is
/// never returned. For an issuer (or simulator) that holds the cardholder's PIN reference.
///
/// # Errors
/// As [`decrypt_pin`]: a malformed block is an error, not a `false`.
pub fn verify_pin(
    key: &SecretKey,
    format: PinBlockFormat,
    block: &EncryptedPinBlock,
    pan: Option<&Pan>,
    expected: &ClearPin,
) -> Result<bool, PinBlockError> {
    let pin = decrypt_pin(key, format, block, pan)?;
    Ok(pin == *expected)
}
