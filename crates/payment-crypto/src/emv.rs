//! EMV issuer cryptography: ICC master keys, session keys, application cryptograms and ARPCs.
//!
//! What it owns, by section of EMV 4.4 Book 2 (Security and Key Management):
//! - ICC master key derivation from an issuer master key: Annex A1.4.1 (option A, PAN and PAN
//!   sequence number) and A1.4.2 (option B, SHA-1 and decimalisation for PANs longer than
//!   16 digits).
//! - The common session key derivation function of Annex A1.3.1, for double-length TDES and
//!   AES-128/192/256 master keys.
//! - Application cryptograms (ARQC, TC, AAC; §8.1.2) as the MAC of Annex A1.2 over the data the
//!   caller concatenated from CDOL1/CDOL2: ISO/IEC 9797-1 MAC algorithm 3 for TDES keys
//!   (A1.2.1), CMAC for AES keys (A1.2.2); 8 bytes, verified in constant time.
//! - Issuer authentication (§8.2): ARPC method 1 (§8.2.1) and method 2 (§8.2.2).
//! - The key-derivation choices of the cryptogram versions met in practice ([`CryptogramVersion`]):
//!   the book's own common session key, Visa CVN 10, 18 and 22, and Mastercard M/Chip.
//!
//! PANs and PAN sequence numbers are parsed from decimal digits into typed values; errors never
//! carry their digits.

use core::fmt;

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::ErrorCode;
use crate::key::{KeyAlgorithm, SecretKey};
use crate::mac::{self, MacAlgorithm, MacError, Padding};
use crate::primitives::BlockCipher;

/// Fewest digits accepted in a PAN (ISO/IEC 7812-1: issuer identification number, account
/// number and check digit).
pub const MIN_PAN_DIGITS: usize = 12;
/// Most digits in a PAN (EMV Book 3 Annex A, tag `5A`: cn, up to 19 digits).
pub const MAX_PAN_DIGITS: usize = 19;
/// Longest proprietary authentication data in ARPC method 2 (Book 2 §8.2.2), in bytes.
pub const MAX_PROPRIETARY_AUTH_DATA_LEN: usize = 8;

/// Errors of EMV issuer cryptography.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmvCryptoError {
    /// The PAN contains something other than the decimal digits 0–9.
    #[error("PAN must contain only decimal digits")]
    PanNotNumeric,
    /// The PAN has too few or too many digits.
    #[error("PAN has {digits} digits; expected {MIN_PAN_DIGITS}..={MAX_PAN_DIGITS}")]
    PanLength {
        /// The number of characters given.
        digits: usize,
    },
    /// The PAN sequence number is not two decimal digits (or one BCD byte).
    #[error("PAN sequence number must be two decimal digits")]
    InvalidPanSequenceNumber,
    /// A fixed-length field (ATC, unpredictable number, ARQC, ...) has the wrong length.
    #[error("{field} must be {expected} bytes, got {actual}")]
    FieldLength {
        /// The EMV name of the field.
        field: &'static str,
        /// Its length in bytes.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// The session key diversification value `R` is not one block of the master key's cipher.
    #[error("diversification value must be {expected} bytes, got {actual}")]
    DiversificationLength {
        /// The block length of the master key's cipher.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// This operation is not defined for this kind of key.
    #[error("{algorithm:?} keys are not supported for this EMV operation")]
    UnsupportedKey {
        /// The algorithm of the key given.
        algorithm: KeyAlgorithm,
    },
    /// The cryptogram version derives its session key from the unpredictable number, and none
    /// was given.
    #[error("{version:?} needs the unpredictable number (9F37)")]
    MissingUnpredictableNumber {
        /// The cryptogram version.
        version: CryptogramVersion,
    },
    /// The cryptogram version does not use this ARPC method.
    #[error("{version:?} does not use ARPC method {method:?}")]
    ArpcMethodNotUsed {
        /// The cryptogram version.
        version: CryptogramVersion,
        /// The ARPC method asked for.
        method: ArpcMethod,
    },
    /// Proprietary authentication data longer than 8 bytes.
    #[error(
        "proprietary authentication data is {len} bytes; at most {MAX_PROPRIETARY_AUTH_DATA_LEN}"
    )]
    ProprietaryDataTooLong {
        /// The length given.
        len: usize,
    },
    /// The application cryptogram (ARQC, TC or AAC) does not match the data.
    #[error("application cryptogram mismatch")]
    CryptogramMismatch,
    /// The ARPC does not match.
    #[error("ARPC mismatch")]
    ArpcMismatch,
    /// The underlying MAC computation refused its input.
    #[error("MAC computation failed: {0}")]
    Mac(#[source] MacError),
}

impl ErrorCode for EmvCryptoError {
    fn code(&self) -> &'static str {
        match self {
            Self::PanNotNumeric => "emv_pan_not_numeric",
            Self::PanLength { .. } => "emv_pan_length",
            Self::InvalidPanSequenceNumber => "emv_invalid_pan_sequence_number",
            Self::FieldLength { .. } => "emv_field_length",
            Self::DiversificationLength { .. } => "emv_diversification_length",
            Self::UnsupportedKey { .. } => "emv_unsupported_key",
            Self::MissingUnpredictableNumber { .. } => "emv_missing_unpredictable_number",
            Self::ArpcMethodNotUsed { .. } => "emv_arpc_method_not_used",
            Self::ProprietaryDataTooLong { .. } => "emv_proprietary_data_too_long",
            Self::CryptogramMismatch => "emv_cryptogram_mismatch",
            Self::ArpcMismatch => "emv_arpc_mismatch",
            Self::Mac(inner) => inner.code(),
        }
    }
}

impl From<MacError> for EmvCryptoError {
    fn from(err: MacError) -> Self {
        match err {
            MacError::UnsupportedKey { algorithm } => Self::UnsupportedKey { algorithm },
            other => Self::Mac(other),
        }
    }
}

/// A primary account number (EMV tag `5A`), 12 to 19 decimal digits.
///
/// Its `Debug` output shows only the number of digits; its digits are zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pan {
    digits: [u8; MAX_PAN_DIGITS],
    len: usize,
}

impl Pan {
    /// Parses a PAN from its decimal digits, e.g. `"5413330089010434"`.
    ///
    /// # Errors
    /// [`EmvCryptoError::PanNotNumeric`] for any character outside `0-9`;
    /// [`EmvCryptoError::PanLength`] for fewer than 12 or more than 19 digits.
    pub fn from_digits(text: &str) -> Result<Self, EmvCryptoError> {
        let bytes = text.as_bytes();
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(EmvCryptoError::PanNotNumeric);
        }
        if !(MIN_PAN_DIGITS..=MAX_PAN_DIGITS).contains(&bytes.len()) {
            return Err(EmvCryptoError::PanLength {
                digits: bytes.len(),
            });
        }
        let mut pan = Self {
            digits: [0; MAX_PAN_DIGITS],
            len: bytes.len(),
        };
        pan.digits
            .iter_mut()
            .zip(bytes)
            .for_each(|(digit, ascii)| *digit = ascii - b'0');
        Ok(pan)
    }

    /// Number of digits.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a PAN has at least 12 digits. Present for symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The digit values (0–9).
    fn digits(&self) -> &[u8] {
        &self.digits[..self.len]
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pan")
            .field("digits", &self.len)
            .finish_non_exhaustive()
    }
}

/// A PAN sequence number (EMV tag `5F34`, n 2): two decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PanSequenceNumber([u8; 2]);

impl PanSequenceNumber {
    /// `00`, which A1.4.1 uses when the card has no PAN sequence number.
    pub const ABSENT: Self = Self([0, 0]);

    /// Parses two decimal digits, e.g. `"01"`.
    ///
    /// # Errors
    /// [`EmvCryptoError::InvalidPanSequenceNumber`] unless `text` is exactly two digits.
    pub fn from_digits(text: &str) -> Result<Self, EmvCryptoError> {
        match text.as_bytes() {
            [tens, units] if tens.is_ascii_digit() && units.is_ascii_digit() => {
                Ok(Self([tens - b'0', units - b'0']))
            }
            _ => Err(EmvCryptoError::InvalidPanSequenceNumber),
        }
    }

    /// Parses the one-byte BCD value of tag `5F34`, e.g. `0x01`.
    ///
    /// # Errors
    /// [`EmvCryptoError::InvalidPanSequenceNumber`] when either nibble is above 9.
    pub fn from_bcd(byte: u8) -> Result<Self, EmvCryptoError> {
        let (tens, units) = (byte >> 4, byte & 0x0F);
        if tens > 9 || units > 9 {
            return Err(EmvCryptoError::InvalidPanSequenceNumber);
        }
        Ok(Self([tens, units]))
    }
}

/// How the ICC master key is derived from the issuer master key (Book 2 Annex A1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MasterKeyDerivation {
    /// Option A (A1.4.1): the rightmost 16 digits of PAN || PSN.
    OptionA,
    /// Option B (A1.4.2): for PANs longer than 16 digits, 16 decimalised digits of
    /// SHA-1(PAN || PSN); for PANs of 16 digits or fewer it is option A.
    OptionB,
}

/// Derives the 16-byte ICC master key from a double-length TDES issuer master key.
///
/// # Errors
/// [`EmvCryptoError::UnsupportedKey`] unless `issuer_master_key` is double-length TDES: Annex A1.4
/// defines the derivation for a 16-byte TDES issuer master key only.
pub fn derive_icc_master_key(
    method: MasterKeyDerivation,
    issuer_master_key: &SecretKey,
    pan: &Pan,
    psn: PanSequenceNumber,
) -> Result<SecretKey, EmvCryptoError> {
    require_tdes2(issuer_master_key)?;
    let y = match method {
        MasterKeyDerivation::OptionA => option_a_input(pan, psn),
        MasterKeyDerivation::OptionB if pan.len() <= 16 => option_a_input(pan, psn),
        MasterKeyDerivation::OptionB => option_b_input(pan, psn),
    };
    Ok(master_key_from_input(issuer_master_key, &y))
}

/// A1.4.1: X = PAN || PSN; Y is its rightmost 16 digits, left-padded with zeros when shorter,
/// packed as 8 bytes of BCD.
fn option_a_input(pan: &Pan, psn: PanSequenceNumber) -> Zeroizing<[u8; 8]> {
    let mut digits = Zeroizing::new([0u8; 16]);
    let x_len = pan.len() + 2;
    // Right-justify X in 16 digits; the digits before it stay zero.
    let skip = x_len.saturating_sub(16);
    let start = 16usize.saturating_sub(x_len);
    pan.digits()
        .iter()
        .chain(psn.0.iter())
        .skip(skip)
        .zip(digits[start..].iter_mut())
        .for_each(|(digit, slot)| *slot = *digit);
    pack_bcd(&digits)
}

/// A1.4.2 steps 1–3: SHA-1 of PAN || PSN (prefixed with a zero digit to make whole bytes),
/// then decimalisation of the hash into 16 digits.
fn option_b_input(pan: &Pan, psn: PanSequenceNumber) -> Zeroizing<[u8; 8]> {
    // 19-digit PAN + 2-digit PSN + 1 pad digit = at most 22 digits = 11 bytes.
    let mut digits = Zeroizing::new([0u8; 22]);
    let x_len = pan.len() + 2;
    let padded_len = x_len + x_len % 2;
    let start = padded_len - x_len;
    pan.digits()
        .iter()
        .chain(psn.0.iter())
        .zip(digits[start..].iter_mut())
        .for_each(|(digit, slot)| *slot = *digit);
    let mut packed = Zeroizing::new([0u8; 11]);
    for (byte, pair) in packed.iter_mut().zip(digits[..padded_len].chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    let hash = Zeroizing::new(Sha1::digest(&packed[..padded_len / 2]));
    let nibbles = || hash.iter().flat_map(|byte| [byte >> 4, byte & 0x0F]);
    // Step 2: the decimal digits of the hash, left to right; step 3: if fewer than 16, the
    // hexadecimal digits A–F, left to right, decimalised as A=0 ... F=5.
    let decimal = nibbles().filter(|nibble| *nibble < 10);
    let letters = nibbles()
        .filter(|nibble| *nibble >= 10)
        .map(|nibble| nibble - 10);
    let mut y_digits = Zeroizing::new([0u8; 16]);
    y_digits
        .iter_mut()
        .zip(decimal.chain(letters))
        .for_each(|(slot, digit)| *slot = digit);
    pack_bcd(&y_digits)
}

/// A1.4.1: Z_L = TDES(IMK)[Y], Z_R = TDES(IMK)[Y XOR FF..FF]; MK = Z_L || Z_R with odd parity.
fn master_key_from_input(issuer_master_key: &SecretKey, y: &[u8; 8]) -> SecretKey {
    let mut z = Zeroizing::new([0u8; 16]);
    z[..8].copy_from_slice(y);
    z[8..]
        .iter_mut()
        .zip(y)
        .for_each(|(out, byte)| *out = !byte);
    encrypt_blocks(issuer_master_key, &mut z[..]);
    set_odd_parity(&mut z[..]);
    tdes2_key(&z)
}

/// The Application Transaction Counter (tag `9F36`), 2 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Atc(pub [u8; 2]);

impl Atc {
    /// The ATC from its 2-byte value.
    ///
    /// # Errors
    /// [`EmvCryptoError::FieldLength`] unless `bytes` is 2 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmvCryptoError> {
        fixed("ATC (9F36)", bytes).map(Self)
    }
}

impl From<u16> for Atc {
    fn from(counter: u16) -> Self {
        Self(counter.to_be_bytes())
    }
}

/// The Unpredictable Number (tag `9F37`), 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnpredictableNumber(pub [u8; 4]);

impl UnpredictableNumber {
    /// The unpredictable number from its 4-byte value.
    ///
    /// # Errors
    /// [`EmvCryptoError::FieldLength`] unless `bytes` is 4 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmvCryptoError> {
        fixed("unpredictable number (9F37)", bytes).map(Self)
    }
}

/// Derives a session key from `master_key` and the diversification value `r` with the common
/// session key derivation function of Book 2 Annex A1.3.1.
///
/// With `n` the block length and `k` the key length in bytes:
/// - `k = n` (AES-128): `SK = ALG(MK)[R]`;
/// - `n < k <= 2n` (double-length TDES, AES-192, AES-256): `F1 = R0 || R1 || F0 || R3 ...`,
///   `F2 = R0 || R1 || 0F || R3 ...`, `SK` = leftmost `k` bytes of `ALG(MK)[F1] || ALG(MK)[F2]`.
///
/// TDES session keys are returned with odd parity, as TDES keys are stored.
///
/// # Errors
/// - [`EmvCryptoError::DiversificationLength`] unless `r` is one block (8 bytes for TDES,
///   16 for AES).
/// - [`EmvCryptoError::UnsupportedKey`] for triple-length TDES (`k > 2n`, not defined).
pub fn derive_session_key(master_key: &SecretKey, r: &[u8]) -> Result<SecretKey, EmvCryptoError> {
    let algorithm = master_key.algorithm();
    let block_len = algorithm.block_len();
    if r.len() != block_len {
        return Err(EmvCryptoError::DiversificationLength {
            expected: block_len,
            actual: r.len(),
        });
    }
    match algorithm {
        KeyAlgorithm::Aes128 => {
            let mut sk = Zeroizing::new([0u8; 16]);
            sk.copy_from_slice(r);
            encrypt_blocks(master_key, &mut sk[..]);
            Ok(SecretKey::aes(&sk[..]).unwrap_or_else(|_| unreachable!("16 bytes is AES-128")))
        }
        KeyAlgorithm::Tdes2 | KeyAlgorithm::Aes192 | KeyAlgorithm::Aes256 => {
            let mut f = Zeroizing::new([0u8; 32]);
            let f = &mut f[..2 * block_len];
            f[..block_len].copy_from_slice(r);
            f[block_len..].copy_from_slice(r);
            f[2] = 0xF0;
            f[block_len + 2] = 0x0F;
            encrypt_blocks(master_key, f);
            let sk = &mut f[..algorithm.key_len()];
            if algorithm.is_tdes() {
                set_odd_parity(sk);
            }
            Ok(SecretKey::new(algorithm, sk)
                .unwrap_or_else(|_| unreachable!("length taken from the algorithm")))
        }
        other => Err(EmvCryptoError::UnsupportedKey { algorithm: other }),
    }
}

/// An 8-byte application cryptogram (ARQC, TC or AAC; tag `9F26`).
///
/// Not secret, so it prints in hex; it has no `PartialEq`: compare with [`Cryptogram::verify`].
#[derive(Clone, Copy)]
pub struct Cryptogram([u8; 8]);

impl Cryptogram {
    /// A received cryptogram from its 8 bytes.
    ///
    /// # Errors
    /// [`EmvCryptoError::FieldLength`] unless `bytes` is 8 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EmvCryptoError> {
        fixed("application cryptogram (9F26)", bytes).map(Self)
    }

    /// The cryptogram bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// Compares `received` with this cryptogram in constant time.
    ///
    /// # Errors
    /// [`EmvCryptoError::CryptogramMismatch`] when they differ.
    pub fn verify(&self, received: &Self) -> Result<(), EmvCryptoError> {
        if bool::from(self.0.ct_eq(&received.0)) {
            Ok(())
        } else {
            Err(EmvCryptoError::CryptogramMismatch)
        }
    }
}

impl fmt::Debug for Cryptogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, "Cryptogram", &self.0)
    }
}

/// Computes an application cryptogram over `cdol_data` under `key` (Book 2 §8.1.2).
///
/// `cdol_data` is the concatenation of the values the CDOL names, in its order, as the caller
/// assembled them. The MAC is the one of Annex A1.2 with an 8-byte result:
/// - double-length TDES: ISO/IEC 9797-1 MAC algorithm 3 with `padding` (A1.2.1 uses method 2;
///   Visa CVN 10 uses method 1);
/// - AES: CMAC (A1.2.2), which pads internally, so `padding` is not used.
///
/// # Errors
/// [`EmvCryptoError::UnsupportedKey`] for triple-length TDES keys.
pub fn application_cryptogram(
    key: &SecretKey,
    cdol_data: &[u8],
    padding: Padding,
) -> Result<Cryptogram, EmvCryptoError> {
    let mac = emv_mac(key, cdol_data, padding, 8)?;
    let mut cryptogram = [0u8; 8];
    cryptogram.copy_from_slice(mac.as_bytes());
    Ok(Cryptogram(cryptogram))
}

/// The ARPC method (Book 2 §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ArpcMethod {
    /// §8.2.1: 8-byte ARPC from the ARQC and the 2-byte Authorisation Response Code.
    Method1,
    /// §8.2.2: 4-byte ARPC from the ARQC, the Card Status Update and proprietary data.
    Method2,
}

/// What the issuer answers, which the ARPC authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArpcResponse<'a> {
    /// Method 1: the Authorisation Response Code (ARC), 2 bytes.
    Method1 {
        /// The ARC, e.g. `3030` ("00", approved).
        response_code: [u8; 2],
    },
    /// Method 2: the Card Status Update and optional proprietary authentication data.
    Method2 {
        /// The Card Status Update (CSU), 4 bytes.
        card_status_update: [u8; 4],
        /// Proprietary authentication data, 0 to 8 bytes.
        proprietary_data: &'a [u8],
    },
}

impl ArpcResponse<'_> {
    /// The method this response belongs to.
    #[must_use]
    pub fn method(&self) -> ArpcMethod {
        match self {
            Self::Method1 { .. } => ArpcMethod::Method1,
            Self::Method2 { .. } => ArpcMethod::Method2,
        }
    }
}

/// An Authorisation Response Cryptogram: 8 bytes (method 1) or 4 bytes (method 2).
///
/// Not secret, so it prints in hex; compare a received one with [`Arpc::verify`].
#[derive(Clone, Copy)]
pub struct Arpc {
    bytes: [u8; 8],
    len: usize,
}

impl Arpc {
    /// The ARPC bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Compares `received` with this ARPC in constant time.
    ///
    /// # Errors
    /// [`EmvCryptoError::ArpcMismatch`] when the lengths or any byte differ.
    pub fn verify(&self, received: &[u8]) -> Result<(), EmvCryptoError> {
        if bool::from(self.as_bytes().ct_eq(received)) {
            Ok(())
        } else {
            Err(EmvCryptoError::ArpcMismatch)
        }
    }
}

impl fmt::Debug for Arpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, "Arpc", self.as_bytes())
    }
}

/// Computes an ARPC under `key` (a session key, or the ICC master key where the cryptogram
/// version says so).
///
/// - Method 1 (§8.2.1), TDES keys: `ARPC = TDES(key)[ARQC XOR (ARC || 00 00 00 00 00 00)]`.
/// - Method 2 (§8.2.2): the 4-byte MAC of Annex A1.2 (retail MAC with padding method 2 for TDES,
///   CMAC for AES) over `ARQC || CSU || proprietary data`.
///
/// # Errors
/// - [`EmvCryptoError::UnsupportedKey`] for method 1 under an AES key (§8.2.1 is defined for
///   8-byte blocks) and for method 2 under a triple-length TDES key.
/// - [`EmvCryptoError::ProprietaryDataTooLong`] for more than 8 bytes of proprietary data.
pub fn arpc(
    key: &SecretKey,
    arqc: &Cryptogram,
    response: &ArpcResponse<'_>,
) -> Result<Arpc, EmvCryptoError> {
    match *response {
        ArpcResponse::Method1 { response_code } => {
            if !key.algorithm().is_tdes() {
                return Err(EmvCryptoError::UnsupportedKey {
                    algorithm: key.algorithm(),
                });
            }
            let mut x = arqc.0;
            x[0] ^= response_code[0];
            x[1] ^= response_code[1];
            encrypt_blocks(key, &mut x);
            Ok(Arpc { bytes: x, len: 8 })
        }
        ArpcResponse::Method2 {
            card_status_update,
            proprietary_data,
        } => {
            if proprietary_data.len() > MAX_PROPRIETARY_AUTH_DATA_LEN {
                return Err(EmvCryptoError::ProprietaryDataTooLong {
                    len: proprietary_data.len(),
                });
            }
            let mut y = [0u8; 8 + 4 + MAX_PROPRIETARY_AUTH_DATA_LEN];
            y[..8].copy_from_slice(&arqc.0);
            y[8..12].copy_from_slice(&card_status_update);
            y[12..12 + proprietary_data.len()].copy_from_slice(proprietary_data);
            let mac = emv_mac(key, &y[..12 + proprietary_data.len()], Padding::Method2, 4)?;
            let mut bytes = [0u8; 8];
            bytes[..4].copy_from_slice(mac.as_bytes());
            Ok(Arpc { bytes, len: 4 })
        }
    }
}

/// A cryptogram version: which keys and MAC padding a card's application cryptograms use.
///
/// | version | ICC master key | cryptogram key | TDES padding | ARPC |
/// | --- | --- | --- | --- | --- |
/// | `Emv` | option B (= A up to 16 digits) | A1.3.1, `R = ATC \|\| 00..` | method 2 | 1 or 2 |
/// | `VisaCvn10` | option A | the ICC master key itself | method 1 | 1, under the master key |
/// | `VisaCvn18`, `VisaCvn22` | option B | A1.3.1, `R = ATC \|\| 00 00 00 00 00 00` | method 2 | 2 |
/// | `MChip` | option A | A1.3.1, `R = ATC \|\| 00 00 \|\| UN` | method 2 | 1 |
///
/// Only `Emv` accepts AES master keys; the others are double-length TDES.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptogramVersion {
    /// EMV Book 2 as written: common session key derivation with `R = ATC || 00..` (A1.3.1),
    /// MAC of A1.2. Mastercard's "EMV CSK" cryptogram versions (CVN `14`, `15`) also follow it.
    Emv,
    /// Visa CVN 10: no session key, the ICC master key MACs the data directly, zero padding
    /// (ISO/IEC 9797-1 method 1), ARPC method 1 under the ICC master key.
    VisaCvn10,
    /// Visa CVN 18: ICC master key by option B, common session key from the ATC, padding method 2,
    /// ARPC method 2.
    VisaCvn18,
    /// Visa CVN 22: the cryptography of CVN 18 (VIS 1.6 ARQC algorithm `2`); it differs only in
    /// the issuer application data format (`9F10` format 2), which the caller assembles into the
    /// CDOL data.
    VisaCvn22,
    /// Mastercard M/Chip 4 / M/Chip Advance "Mastercard SKD" (CVN `10`, `11`): common session
    /// key with `R = ATC || 00 00 || unpredictable number`, padding method 2, ARPC method 1 under
    /// the session key. (The "EMV CSK" versions, CVN `14` and `15`, are [`CryptogramVersion::Emv`].)
    MChip,
}

impl CryptogramVersion {
    /// How this version derives the ICC master key from the issuer master key.
    #[must_use]
    pub fn master_key_derivation(self) -> MasterKeyDerivation {
        match self {
            Self::VisaCvn10 | Self::MChip => MasterKeyDerivation::OptionA,
            Self::Emv | Self::VisaCvn18 | Self::VisaCvn22 => MasterKeyDerivation::OptionB,
        }
    }

    /// Whether this version answers with ARPCs of `method`.
    #[must_use]
    pub fn uses_arpc_method(self, method: ArpcMethod) -> bool {
        match self {
            Self::Emv => true,
            Self::VisaCvn10 | Self::MChip => method == ArpcMethod::Method1,
            Self::VisaCvn18 | Self::VisaCvn22 => method == ArpcMethod::Method2,
        }
    }

    /// The ISO/IEC 9797-1 padding of the cryptogram data under TDES keys.
    fn padding(self) -> Padding {
        match self {
            Self::VisaCvn10 => Padding::Method1,
            Self::Emv | Self::VisaCvn18 | Self::VisaCvn22 | Self::MChip => Padding::Method2,
        }
    }

    fn accepts_key(self, algorithm: KeyAlgorithm) -> bool {
        match self {
            Self::Emv => matches!(
                algorithm,
                KeyAlgorithm::Tdes2
                    | KeyAlgorithm::Aes128
                    | KeyAlgorithm::Aes192
                    | KeyAlgorithm::Aes256
            ),
            Self::VisaCvn10 | Self::VisaCvn18 | Self::VisaCvn22 | Self::MChip => {
                algorithm == KeyAlgorithm::Tdes2
            }
        }
    }
}

/// The per-transaction values a session key depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionInputs {
    /// The Application Transaction Counter (`9F36`).
    pub atc: Atc,
    /// The Unpredictable Number (`9F37`); required by [`CryptogramVersion::MChip`] only.
    pub unpredictable_number: Option<UnpredictableNumber>,
}

/// One card application's cryptogram key (ICC master key) and cryptogram version: what an issuer
/// host needs to verify ARQCs and answer with ARPCs.
#[derive(Debug, Clone)]
pub struct CardKeys {
    version: CryptogramVersion,
    icc_master_key: SecretKey,
}

impl CardKeys {
    /// Derives the ICC master key from the issuer master key as `version` prescribes.
    ///
    /// # Errors
    /// [`EmvCryptoError::UnsupportedKey`] unless `issuer_master_key` is double-length TDES.
    pub fn derive(
        version: CryptogramVersion,
        issuer_master_key: &SecretKey,
        pan: &Pan,
        psn: PanSequenceNumber,
    ) -> Result<Self, EmvCryptoError> {
        let icc_master_key =
            derive_icc_master_key(version.master_key_derivation(), issuer_master_key, pan, psn)?;
        Ok(Self {
            version,
            icc_master_key,
        })
    }

    /// Uses an ICC master key the caller already has (e.g. derived by its HSM, or an AES key).
    ///
    /// # Errors
    /// [`EmvCryptoError::UnsupportedKey`] when `version` does not use keys of this algorithm
    /// (the Visa and M/Chip versions need double-length TDES; [`CryptogramVersion::Emv`] also
    /// takes AES).
    pub fn from_icc_master_key(
        version: CryptogramVersion,
        icc_master_key: SecretKey,
    ) -> Result<Self, EmvCryptoError> {
        if !version.accepts_key(icc_master_key.algorithm()) {
            return Err(EmvCryptoError::UnsupportedKey {
                algorithm: icc_master_key.algorithm(),
            });
        }
        Ok(Self {
            version,
            icc_master_key,
        })
    }

    /// The cryptogram version.
    #[must_use]
    pub fn version(&self) -> CryptogramVersion {
        self.version
    }

    /// The ICC master key.
    #[must_use]
    pub fn icc_master_key(&self) -> &SecretKey {
        &self.icc_master_key
    }

    /// The key that MACs this transaction's cryptogram: the session key of A1.3.1, or for
    /// Visa CVN 10 the ICC master key itself.
    ///
    /// # Errors
    /// [`EmvCryptoError::MissingUnpredictableNumber`] for M/Chip without an unpredictable number.
    pub fn cryptogram_key(&self, inputs: &TransactionInputs) -> Result<SecretKey, EmvCryptoError> {
        let block_len = self.icc_master_key.algorithm().block_len();
        let mut r = [0u8; 16];
        r[..2].copy_from_slice(&inputs.atc.0);
        match self.version {
            CryptogramVersion::VisaCvn10 => return Ok(self.icc_master_key.clone()),
            CryptogramVersion::MChip => {
                let un = inputs.unpredictable_number.ok_or(
                    EmvCryptoError::MissingUnpredictableNumber {
                        version: self.version,
                    },
                )?;
                // M/Chip: R = ATC || 00 00 || UN (8 bytes; M/Chip keys are TDES).
                r[4..8].copy_from_slice(&un.0);
            }
            // A1.3.1 for application cryptograms: R = ATC || 00 .. 00, one block long.
            CryptogramVersion::Emv
            | CryptogramVersion::VisaCvn18
            | CryptogramVersion::VisaCvn22 => {}
        }
        derive_session_key(&self.icc_master_key, &r[..block_len])
    }

    /// Computes the application cryptogram (ARQC, TC or AAC) over `cdol_data`.
    ///
    /// # Errors
    /// As [`CardKeys::cryptogram_key`].
    pub fn generate_cryptogram(
        &self,
        inputs: &TransactionInputs,
        cdol_data: &[u8],
    ) -> Result<Cryptogram, EmvCryptoError> {
        let key = self.cryptogram_key(inputs)?;
        application_cryptogram(&key, cdol_data, self.version.padding())
    }

    /// Checks a received application cryptogram in constant time.
    ///
    /// # Errors
    /// [`EmvCryptoError::CryptogramMismatch`] when it is wrong; otherwise as
    /// [`CardKeys::cryptogram_key`].
    pub fn verify_cryptogram(
        &self,
        inputs: &TransactionInputs,
        cdol_data: &[u8],
        received: &Cryptogram,
    ) -> Result<(), EmvCryptoError> {
        self.generate_cryptogram(inputs, cdol_data)?
            .verify(received)
    }

    /// Computes the ARPC answering `arqc`, under the key this version prescribes (the ICC master
    /// key for Visa CVN 10, the session key otherwise).
    ///
    /// # Errors
    /// - [`EmvCryptoError::ArpcMethodNotUsed`] when the version does not use the response's method.
    /// - Otherwise as [`arpc`] and [`CardKeys::cryptogram_key`].
    pub fn generate_arpc(
        &self,
        inputs: &TransactionInputs,
        arqc: &Cryptogram,
        response: &ArpcResponse<'_>,
    ) -> Result<Arpc, EmvCryptoError> {
        let method = response.method();
        if !self.version.uses_arpc_method(method) {
            return Err(EmvCryptoError::ArpcMethodNotUsed {
                version: self.version,
                method,
            });
        }
        arpc(&self.cryptogram_key(inputs)?, arqc, response)
    }

    /// Checks a received ARPC in constant time (what the card does).
    ///
    /// # Errors
    /// [`EmvCryptoError::ArpcMismatch`] when it is wrong; otherwise as [`CardKeys::generate_arpc`].
    pub fn verify_arpc(
        &self,
        inputs: &TransactionInputs,
        arqc: &Cryptogram,
        response: &ArpcResponse<'_>,
        received: &[u8],
    ) -> Result<(), EmvCryptoError> {
        self.generate_arpc(inputs, arqc, response)?.verify(received)
    }
}

/// The MAC of Annex A1.2 truncated to `len` bytes: retail MAC for double-length TDES (A1.2.1),
/// CMAC for AES (A1.2.2).
fn emv_mac(
    key: &SecretKey,
    data: &[u8],
    padding: Padding,
    len: usize,
) -> Result<mac::Mac, EmvCryptoError> {
    let algorithm = match key.algorithm() {
        KeyAlgorithm::Tdes2 => MacAlgorithm::RetailMac(padding),
        KeyAlgorithm::Aes128 | KeyAlgorithm::Aes192 | KeyAlgorithm::Aes256 => MacAlgorithm::Cmac,
        other => return Err(EmvCryptoError::UnsupportedKey { algorithm: other }),
    };
    Ok(mac::compute_mac(algorithm, key, data, len)?)
}

fn require_tdes2(key: &SecretKey) -> Result<(), EmvCryptoError> {
    if key.algorithm() == KeyAlgorithm::Tdes2 {
        Ok(())
    } else {
        Err(EmvCryptoError::UnsupportedKey {
            algorithm: key.algorithm(),
        })
    }
}

/// ECB-encrypts whole blocks in place; callers pass lengths that are multiples of the block.
fn encrypt_blocks(key: &SecretKey, blocks: &mut [u8]) {
    if BlockCipher::new(key).encrypt_ecb(blocks).is_err() {
        unreachable!("callers pass whole blocks");
    }
}

fn tdes2_key(bytes: &[u8; 16]) -> SecretKey {
    SecretKey::tdes(bytes).unwrap_or_else(|_| unreachable!("16 bytes is double-length TDES"))
}

/// Sets the least significant bit of each byte so that it has an odd number of ones, as DES keys
/// require (A1.4.1, last step).
fn set_odd_parity(key: &mut [u8]) {
    for byte in key {
        let high_bits = *byte & 0xFE;
        *byte = high_bits | u8::from(high_bits.count_ones() % 2 == 0);
    }
}

/// Packs 16 decimal digits into 8 bytes of BCD.
fn pack_bcd(digits: &[u8; 16]) -> Zeroizing<[u8; 8]> {
    let mut packed = Zeroizing::new([0u8; 8]);
    for (byte, pair) in packed.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    packed
}

fn fixed<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], EmvCryptoError> {
    bytes.try_into().map_err(|_| EmvCryptoError::FieldLength {
        field,
        expected: N,
        actual: bytes.len(),
    })
}

fn write_hex(f: &mut fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> fmt::Result {
    f.write_str(name)?;
    f.write_str("(")?;
    for byte in bytes {
        write!(f, "{byte:02X}")?;
    }
    f.write_str(")")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_parity_is_set_per_byte() {
        let mut key = [0x00, 0x01, 0xFE, 0xFF, 0x10];
        set_odd_parity(&mut key);
        assert_eq!(key, [0x01, 0x01, 0xFE, 0xFE, 0x10]);
    }

    #[test]
    fn option_a_input_takes_rightmost_sixteen_digits_or_left_pads() {
        let psn = PanSequenceNumber::from_digits("45").unwrap();
        let long = Pan::from_digits("12345678901234567").unwrap();
        assert_eq!(
            *option_a_input(&long, psn),
            [0x45, 0x67, 0x89, 0x01, 0x23, 0x45, 0x67, 0x45]
        );
        let short = Pan::from_digits("123456789012").unwrap();
        assert_eq!(
            *option_a_input(&short, psn),
            [0x00, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x45]
        );
    }
}
