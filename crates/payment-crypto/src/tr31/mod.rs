//! TR-31 / ANSI X9.143 key blocks, versions B (TDES KBPK) and D (AES KBPK).
//!
//! What it owns:
//! - The header model ([`KeyBlockHeader`] and its code tables) and optional blocks
//!   ([`OptionalBlock`], short and extended length forms, the `PB` padding block), per ANSI
//!   X9.143-2021 clause 6.
//! - [`wrap`] and [`unwrap`] with the key derivation binding method: the key block encryption key
//!   and MAC key are derived from the KBPK with CMAC (X9.143-2021 7.2.1.1, Table 24 for version
//!   B; 7.2.2.1, Table 25 for version D), the MAC is a CMAC over the header and the clear key
//!   data, and the key data is CBC-encrypted with the MAC as IV.
//!
//! Versions A and C (key variant binding) are parsed only to be refused with
//! [`Tr31Error::UnsupportedVersion`].
//!
//! # Security
//! Derived keys and clear key data stay in zeroizing buffers; the MAC is compared in constant
//! time, and nothing is decrypted into the result before it verifies. Errors carry no key bytes.

mod header;
mod optional_block;

use alloc::string::String;
use alloc::vec::Vec;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::primitives::{BlockCipher, cmac};
use crate::{ErrorCode, KeyAlgorithm, RandomSource, SecretKey};

pub use header::{
    Algorithm, Exportability, KeyBlockHeader, KeyContext, KeyUsage, KeyVersion, ModeOfUse, Version,
};
pub use optional_block::OptionalBlock;

use header::FIXED_HEADER_LEN;

/// Largest key block the 4-digit length field can describe (X9.143-2021 6.2, Table 1).
const MAX_BLOCK_LEN: usize = 9999;
/// Size of the clear key length field at the start of the key data, in bytes.
const KEY_LENGTH_FIELD_LEN: usize = 2;

/// Errors wrapping or unwrapping a key block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tr31Error {
    /// The block contains a byte outside printable ASCII (0x20–0x7E).
    #[error("key block contains a non-printable or non-ASCII character")]
    NonPrintable,
    /// The block is shorter than its structure requires or than its length field declares.
    #[error("key block is truncated")]
    Truncated,
    /// The block is longer than its length field declares.
    #[error("key block has data after its declared length")]
    TrailingData,
    /// The length field is not four decimal digits.
    #[error("key block length field is not four decimal digits")]
    MalformedLengthField,
    /// Version `A` or `C` (key variant binding), which this crate refuses.
    #[error("key block version {0} (key variant binding) is not supported")]
    UnsupportedVersion(char),
    /// A version ID that X9.143 does not define.
    #[error("unknown key block version ID")]
    UnknownVersion,
    /// Version B needs a TDES KBPK, version D an AES KBPK (X9.143-2021 6.2, Table 1).
    #[error("key block version {version:?} cannot be used with a {kbpk:?} KBPK")]
    WrongVersionForKbpk {
        /// The block's version.
        version: Version,
        /// The KBPK's algorithm.
        kbpk: KeyAlgorithm,
    },
    /// Key usage not in X9.143-2021 6.3.1, Table 2.
    #[error("unknown key usage")]
    UnknownKeyUsage,
    /// Algorithm not in X9.143-2021 6.3.2, Table 3.
    #[error("unknown key algorithm")]
    UnknownAlgorithm,
    /// Mode of use not in X9.143-2021 6.3.3, Table 4.
    #[error("unknown mode of use")]
    UnknownModeOfUse,
    /// Key version number is not two alphanumeric characters.
    #[error("key version number is not two alphanumeric characters")]
    InvalidKeyVersion,
    /// Exportability not in X9.143-2021 6.3.5, Table 6.
    #[error("unknown exportability")]
    UnknownExportability,
    /// The number of optional blocks is not two decimal digits.
    #[error("number of optional blocks is not two decimal digits")]
    MalformedOptionalBlockCount,
    /// Key context not in X9.143-2021 6.2, Table 1.
    #[error("unknown key context")]
    UnknownKeyContext,
    /// The reserved last header character is not `0`.
    #[error("reserved header field is not 0")]
    ReservedFieldNotZero,
    /// An optional block's identifier is not two alphanumeric characters.
    #[error("optional block identifier is not two alphanumeric characters")]
    InvalidOptionalBlockId,
    /// An optional block's length is malformed or runs past the block.
    #[error("optional block length is malformed or out of range")]
    MalformedOptionalBlock,
    /// An optional block that X9.143 defines as hex holds other characters.
    #[error("optional block data must be uppercase hex")]
    NonHexOptionalBlockData,
    /// An optional block is too long for the extended length form.
    #[error("optional block is too long")]
    OptionalBlockTooLong,
    /// A caller-supplied `PB` block, or a `PB` block that is not the last one.
    #[error("padding block is misplaced or supplied by the caller")]
    PaddingBlockNotAllowed,
    /// Header plus optional blocks is not a whole number of cipher blocks (X9.143-2021 6.3.6,
    /// `PB`).
    #[error("header and optional blocks are not a multiple of the cipher block length")]
    OptionalBlocksMisaligned,
    /// Key data is not uppercase hexadecimal.
    #[error("key data is not uppercase hex")]
    NonHexKeyData,
    /// Key data has an odd number of hex digits or is not a whole number of cipher blocks.
    #[error("key data length is not a whole number of cipher blocks")]
    InvalidKeyDataLength,
    /// The MAC does not verify: wrong KBPK or altered block.
    #[error("key block MAC does not verify")]
    MacMismatch,
    /// The clear key length field is not a whole number of bytes or exceeds the key data.
    #[error("clear key length field is invalid")]
    InvalidKeyLengthField,
    /// The key length does not suit the header's algorithm (e.g. 20 bytes for TDES).
    #[error("key length does not match the key block algorithm {0:?}")]
    KeyLengthInconsistent(Algorithm),
    /// The header's algorithm is not one [`SecretKey`] can hold (only TDES and AES are).
    #[error("key algorithm {0:?} is not supported")]
    UnsupportedKeyAlgorithm(Algorithm),
    /// On wrap: the key's algorithm does not match the header's.
    #[error("key algorithm {key:?} does not match header algorithm {header:?}")]
    KeyAlgorithmMismatch {
        /// The header's algorithm.
        header: Algorithm,
        /// The key's algorithm.
        key: KeyAlgorithm,
    },
    /// On wrap: the masked key length is shorter than the key or too long.
    #[error("masked key length is shorter than the key or too long")]
    InvalidMaskedLength,
    /// On wrap: the resulting block would exceed 9999 characters.
    #[error("key block would exceed 9999 characters")]
    BlockTooLong,
}

impl ErrorCode for Tr31Error {
    fn code(&self) -> &'static str {
        match self {
            Self::NonPrintable => "tr31_non_printable",
            Self::Truncated => "tr31_truncated",
            Self::TrailingData => "tr31_trailing_data",
            Self::MalformedLengthField => "tr31_malformed_length_field",
            Self::UnsupportedVersion(_) => "tr31_unsupported_version",
            Self::UnknownVersion => "tr31_unknown_version",
            Self::WrongVersionForKbpk { .. } => "tr31_wrong_version_for_kbpk",
            Self::UnknownKeyUsage => "tr31_unknown_key_usage",
            Self::UnknownAlgorithm => "tr31_unknown_algorithm",
            Self::UnknownModeOfUse => "tr31_unknown_mode_of_use",
            Self::InvalidKeyVersion => "tr31_invalid_key_version",
            Self::UnknownExportability => "tr31_unknown_exportability",
            Self::MalformedOptionalBlockCount => "tr31_malformed_optional_block_count",
            Self::UnknownKeyContext => "tr31_unknown_key_context",
            Self::ReservedFieldNotZero => "tr31_reserved_field_not_zero",
            Self::InvalidOptionalBlockId => "tr31_invalid_optional_block_id",
            Self::MalformedOptionalBlock => "tr31_malformed_optional_block",
            Self::NonHexOptionalBlockData => "tr31_non_hex_optional_block_data",
            Self::OptionalBlockTooLong => "tr31_optional_block_too_long",
            Self::PaddingBlockNotAllowed => "tr31_padding_block_not_allowed",
            Self::OptionalBlocksMisaligned => "tr31_optional_blocks_misaligned",
            Self::NonHexKeyData => "tr31_non_hex_key_data",
            Self::InvalidKeyDataLength => "tr31_invalid_key_data_length",
            Self::MacMismatch => "tr31_mac_mismatch",
            Self::InvalidKeyLengthField => "tr31_invalid_key_length_field",
            Self::KeyLengthInconsistent(_) => "tr31_key_length_inconsistent",
            Self::UnsupportedKeyAlgorithm(_) => "tr31_unsupported_key_algorithm",
            Self::KeyAlgorithmMismatch { .. } => "tr31_key_algorithm_mismatch",
            Self::InvalidMaskedLength => "tr31_invalid_masked_length",
            Self::BlockTooLong => "tr31_block_too_long",
        }
    }
}

/// Wraps `key` under `kbpk` into an ASCII key block described by `header`.
///
/// The key data is the 2-byte key length in bits, the key, and random padding from `rng` up to a
/// whole number of cipher blocks (X9.143-2021 7.3.1, Figure 11 and Table 26). A `PB` optional
/// block is added when the optional blocks need aligning.
///
/// # Errors
/// [`Tr31Error::WrongVersionForKbpk`], [`Tr31Error::KeyAlgorithmMismatch`],
/// [`Tr31Error::BlockTooLong`].
pub fn wrap(
    kbpk: &SecretKey,
    header: &KeyBlockHeader,
    key: &SecretKey,
    rng: &mut impl RandomSource,
) -> Result<String, Tr31Error> {
    wrap_masked(kbpk, header, key, key.len(), rng)
}

/// As [`wrap`], but pads the key data as if the key were `masked_len` bytes long, so the block
/// does not reveal the key length (X9.143-2021 7.3.1, key length obfuscation). The key length field
/// still holds the true length.
///
/// # Errors
/// As [`wrap`], and [`Tr31Error::InvalidMaskedLength`] when `masked_len` is shorter than the key
/// or longer than 64 bytes.
pub fn wrap_masked(
    kbpk: &SecretKey,
    header: &KeyBlockHeader,
    key: &SecretKey,
    masked_len: usize,
    rng: &mut impl RandomSource,
) -> Result<String, Tr31Error> {
    check_version(header.version, kbpk)?;
    check_key_algorithm(header.algorithm, key)?;
    if masked_len < key.len() || masked_len > 64 {
        return Err(Tr31Error::InvalidMaskedLength);
    }
    let block_len = header.version.block_len();
    let key_data = build_key_data(key, masked_len, block_len, rng);
    let mac_len = header.version.mac_len();

    let blocks_len: usize = header
        .optional_blocks
        .iter()
        .map(OptionalBlock::encoded_len)
        .sum();
    let padding = padding_block_for(FIXED_HEADER_LEN + blocks_len, block_len);
    let header_len =
        FIXED_HEADER_LEN + blocks_len + padding.as_ref().map_or(0, |pb| pb.encoded_len());
    let total_len = header_len + 2 * (key_data.len() + mac_len);
    let block_count = header.optional_blocks.len() + usize::from(padding.is_some());
    if total_len > MAX_BLOCK_LEN || block_count > 99 {
        return Err(Tr31Error::BlockTooLong);
    }

    let mut out = Vec::with_capacity(total_len);
    header::write_fixed(header, total_len, block_count, &mut out);
    header
        .optional_blocks
        .iter()
        .chain(padding.as_ref())
        .for_each(|block| block.write(&mut out));

    let keys = DerivedKeys::new(kbpk);
    let mac = keys.mac(&out, &key_data);
    let mut encrypted = ClearBuffer(key_data.to_vec());
    if keys
        .encryption
        .encrypt_cbc(&mac[..mac_len], &mut encrypted)
        .is_err()
    {
        unreachable!("key data is padded to whole blocks and the MAC is one block");
    }
    push_hex(&encrypted, &mut out);
    push_hex(&mac[..mac_len], &mut out);
    // Every byte pushed is printable ASCII, so this never fails.
    String::from_utf8(out).map_err(|_| Tr31Error::NonPrintable)
}

/// Unwraps an ASCII key block under `kbpk`: checks its structure and MAC and returns the header
/// (without the `PB` padding block) and the key.
///
/// # Errors
/// Every structural fault has its own [`Tr31Error`] variant: [`Tr31Error::NonPrintable`],
/// [`Tr31Error::Truncated`], [`Tr31Error::TrailingData`], [`Tr31Error::MalformedLengthField`],
/// version, code and optional block errors, [`Tr31Error::NonHexKeyData`],
/// [`Tr31Error::InvalidKeyDataLength`], [`Tr31Error::MacMismatch`],
/// [`Tr31Error::InvalidKeyLengthField`], [`Tr31Error::KeyLengthInconsistent`],
/// [`Tr31Error::UnsupportedKeyAlgorithm`].
pub fn unwrap(kbpk: &SecretKey, block: &str) -> Result<(KeyBlockHeader, SecretKey), Tr31Error> {
    let bytes = block.as_bytes();
    if !bytes.iter().all(|&b| optional_block::is_printable(b)) {
        return Err(Tr31Error::NonPrintable);
    }
    if bytes.len() < FIXED_HEADER_LEN {
        return Err(Tr31Error::Truncated);
    }
    let fixed = header::parse_fixed(bytes)?;
    let mut header = fixed.header;
    check_version(header.version, kbpk)?;
    match fixed.declared_len.cmp(&bytes.len()) {
        core::cmp::Ordering::Greater => return Err(Tr31Error::Truncated),
        core::cmp::Ordering::Less => return Err(Tr31Error::TrailingData),
        core::cmp::Ordering::Equal => {}
    }

    let header_len = parse_optional_blocks(bytes, fixed.optional_block_count, &mut header)?;
    let block_len = header.version.block_len();
    if !header_len.is_multiple_of(block_len) {
        return Err(Tr31Error::OptionalBlocksMisaligned);
    }
    let (authenticated_header, body) = bytes.split_at(header_len);
    let mac_hex_len = 2 * header.version.mac_len();
    let key_data_hex_len = body
        .len()
        .checked_sub(mac_hex_len)
        .ok_or(Tr31Error::Truncated)?;
    if key_data_hex_len == 0 || !key_data_hex_len.is_multiple_of(2 * block_len) {
        return Err(Tr31Error::InvalidKeyDataLength);
    }
    let (key_data_hex, mac_hex) = body.split_at(key_data_hex_len);
    let mut key_data = ClearBuffer(decode_hex(key_data_hex)?);
    let received_mac = decode_hex(mac_hex)?;

    let keys = DerivedKeys::new(kbpk);
    if keys
        .encryption
        .decrypt_cbc(&received_mac, &mut key_data)
        .is_err()
    {
        unreachable!("key data length was checked against the block length");
    }
    let expected_mac = keys.mac(authenticated_header, &key_data);
    if !bool::from(expected_mac[..received_mac.len()].ct_eq(&received_mac)) {
        return Err(Tr31Error::MacMismatch);
    }
    let key = extract_key(header.algorithm, &key_data)?;
    Ok((header, key))
}

/// Parses `count` optional blocks after the fixed header into `header`; returns the length of
/// fixed header plus optional blocks.
fn parse_optional_blocks(
    bytes: &[u8],
    count: usize,
    header: &mut KeyBlockHeader,
) -> Result<usize, Tr31Error> {
    let mut position = FIXED_HEADER_LEN;
    for index in 0..count {
        let rest = bytes.get(position..).ok_or(Tr31Error::Truncated)?;
        let (block, consumed) = optional_block::parse_one(rest)?;
        position += consumed;
        if block.is_padding() {
            // X9.143-2021 6.3.6: the padding block, if present, is the last optional block.
            if index + 1 != count {
                return Err(Tr31Error::PaddingBlockNotAllowed);
            }
        } else {
            header.optional_blocks.push(block);
        }
    }
    Ok(position)
}

/// Checks the KBPK family against the version (X9.143-2021 6.2, Table 1).
fn check_version(version: Version, kbpk: &SecretKey) -> Result<(), Tr31Error> {
    let fits = match version {
        Version::B => kbpk.algorithm().is_tdes(),
        Version::D => !kbpk.algorithm().is_tdes(),
    };
    if fits {
        Ok(())
    } else {
        Err(Tr31Error::WrongVersionForKbpk {
            version,
            kbpk: kbpk.algorithm(),
        })
    }
}

fn check_key_algorithm(header: Algorithm, key: &SecretKey) -> Result<(), Tr31Error> {
    let fits = match header {
        Algorithm::Tdes => key.algorithm().is_tdes(),
        Algorithm::Aes => !key.algorithm().is_tdes(),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(Tr31Error::KeyAlgorithmMismatch {
            header,
            key: key.algorithm(),
        })
    }
}

/// The padding block needed to bring `len` characters to a multiple of `block_len`, if any. A
/// padding block is at least 4 characters (ID and length), so a shorter gap takes one more
/// cipher block.
fn padding_block_for(len: usize, block_len: usize) -> Option<OptionalBlock> {
    let gap = (block_len - len % block_len) % block_len;
    match gap {
        0 => None,
        1..=3 => Some(OptionalBlock::padding(gap + block_len)),
        _ => Some(OptionalBlock::padding(gap)),
    }
}

/// Clear key data (X9.143-2021 7.3.1, Figure 11 and Table 26): key length in bits (2 bytes,
/// big-endian), the key, then random padding to a whole number of cipher blocks covering
/// `masked_len` bytes of key.
fn build_key_data(
    key: &SecretKey,
    masked_len: usize,
    block_len: usize,
    rng: &mut impl RandomSource,
) -> ClearBuffer {
    let unpadded = KEY_LENGTH_FIELD_LEN + masked_len;
    let padded = unpadded.div_ceil(block_len) * block_len;
    let mut data = ClearBuffer(Vec::with_capacity(padded));
    // Keys are at most 32 bytes, so the bit length fits 16 bits.
    let bits = (key.len() * 8) as u16;
    data.extend_from_slice(&bits.to_be_bytes());
    data.extend_from_slice(key.expose_secret());
    let key_end = data.len();
    data.resize(padded, 0);
    rng.fill(&mut data[key_end..]);
    data
}

/// Reads the key out of verified clear key data and checks its length against the algorithm.
fn extract_key(algorithm: Algorithm, key_data: &[u8]) -> Result<SecretKey, Tr31Error> {
    let (length_field, rest) = key_data
        .split_first_chunk::<KEY_LENGTH_FIELD_LEN>()
        .ok_or(Tr31Error::InvalidKeyLengthField)?;
    let bits = usize::from(u16::from_be_bytes(*length_field));
    if !bits.is_multiple_of(8) || bits / 8 > rest.len() {
        return Err(Tr31Error::InvalidKeyLengthField);
    }
    let key_bytes = &rest[..bits / 8];
    let key_algorithm = match algorithm {
        Algorithm::Tdes => KeyAlgorithm::tdes_for_len(key_bytes.len()),
        Algorithm::Aes => KeyAlgorithm::aes_for_len(key_bytes.len()),
        other => return Err(Tr31Error::UnsupportedKeyAlgorithm(other)),
    }
    .ok_or(Tr31Error::KeyLengthInconsistent(algorithm))?;
    SecretKey::new(key_algorithm, key_bytes)
        .map_err(|_| Tr31Error::KeyLengthInconsistent(algorithm))
}

/// A heap buffer of clear key material, zeroized on drop.
///
/// `zeroize` is built without its `alloc` feature here, so `Zeroizing<Vec<u8>>` is unavailable;
/// this wipes the initialised bytes. Callers allocate the full capacity up front so the vector
/// never reallocates and leaves no stale copy behind.
struct ClearBuffer(Vec<u8>);

impl core::ops::Deref for ClearBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl core::ops::DerefMut for ClearBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for ClearBuffer {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

/// The key block encryption key (KBEK) and MAC key (KBAK) derived from the KBPK.
struct DerivedKeys {
    encryption: BlockCipher,
    authentication: SecretKey,
}

/// Key usage indicator of the derivation data: encryption (X9.143-2021 Tables 24 and 25).
const USAGE_ENCRYPTION: [u8; 2] = [0x00, 0x00];
/// Key usage indicator of the derivation data: MAC.
const USAGE_MAC: [u8; 2] = [0x00, 0x01];

impl DerivedKeys {
    fn new(kbpk: &SecretKey) -> Self {
        let encryption = derive(kbpk, USAGE_ENCRYPTION);
        Self {
            encryption: BlockCipher::new(&encryption),
            authentication: derive(kbpk, USAGE_MAC),
        }
    }

    /// CMAC under the KBAK over the header (with optional blocks) and the clear key data
    /// (X9.143-2021 7.2.1 for TDES, 7.2.2 for AES). Returns a full 16-byte buffer; the
    /// caller keeps `mac_len` bytes (the whole TDES or AES CMAC).
    fn mac(&self, header: &[u8], key_data: &[u8]) -> [u8; 16] {
        let mut input = ClearBuffer(Vec::with_capacity(header.len() + key_data.len()));
        input.extend_from_slice(header);
        input.extend_from_slice(key_data);
        cmac(&self.authentication, &input).0
    }
}

/// Derives a key of the KBPK's algorithm and length with CMAC in counter mode
/// (X9.143-2021 7.2.1.1, Table 24 for TDES; 7.2.2.1, Table 25 for AES). The 8-byte derivation
/// data is counter (1 byte, from 1) ‖ key usage indicator (2) ‖ separator `00` ‖ algorithm
/// indicator (2) ‖ key length in bits (2).
fn derive(kbpk: &SecretKey, usage: [u8; 2]) -> SecretKey {
    let (algorithm_indicator, bits): ([u8; 2], u16) = match kbpk.algorithm() {
        KeyAlgorithm::Tdes2 => ([0x00, 0x00], 128),
        KeyAlgorithm::Tdes3 => ([0x00, 0x01], 192),
        KeyAlgorithm::Aes128 => ([0x00, 0x02], 128),
        KeyAlgorithm::Aes192 => ([0x00, 0x03], 192),
        KeyAlgorithm::Aes256 => ([0x00, 0x04], 256),
    };
    let key_len = kbpk.len();
    let mut derived = Zeroizing::new([0u8; 48]);
    let mut produced = 0;
    let mut counter = 1u8;
    while produced < key_len {
        let [b0, b1] = usage;
        let [a0, a1] = algorithm_indicator;
        let [l0, l1] = bits.to_be_bytes();
        let data = [counter, b0, b1, 0x00, a0, a1, l0, l1];
        let (tag, tag_len) = cmac(kbpk, &data);
        derived[produced..produced + tag_len].copy_from_slice(&tag[..tag_len]);
        produced += tag_len;
        counter += 1;
    }
    match SecretKey::new(kbpk.algorithm(), &derived[..key_len]) {
        Ok(key) => key,
        Err(_) => unreachable!("derived key has the KBPK's length"),
    }
}

/// Appends `bytes` as uppercase hex.
fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0x0F)]);
    }
}

/// Decodes uppercase hex; the caller has checked the length is even.
fn decode_hex(hex: &[u8]) -> Result<Vec<u8>, Tr31Error> {
    if !hex.len().is_multiple_of(2) {
        return Err(Tr31Error::InvalidKeyDataLength);
    }
    hex.chunks_exact(2)
        .map(|pair| {
            let high = hex_value(pair[0])?;
            let low = hex_value(pair[1])?;
            Ok((high << 4) | low)
        })
        .collect()
}

fn hex_value(digit: u8) -> Result<u8, Tr31Error> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(Tr31Error::NonHexKeyData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key data that a valid MAC could cover but whose length field or length is wrong; these
    /// cannot be built through `wrap`, so `extract_key` is checked directly.
    #[test]
    fn extract_key_checks_length_field_and_algorithm() {
        let mut data = [0u8; 24];
        data[..2].copy_from_slice(&0x0080u16.to_be_bytes());
        assert!(extract_key(Algorithm::Tdes, &data).is_ok());
        assert!(extract_key(Algorithm::Aes, &data).is_ok());

        data[..2].copy_from_slice(&0x0081u16.to_be_bytes());
        assert_eq!(
            extract_key(Algorithm::Tdes, &data).unwrap_err(),
            Tr31Error::InvalidKeyLengthField
        );
        data[..2].copy_from_slice(&0x00B8u16.to_be_bytes());
        assert_eq!(
            extract_key(Algorithm::Tdes, &data).unwrap_err(),
            Tr31Error::InvalidKeyLengthField
        );
        data[..2].copy_from_slice(&0x00A0u16.to_be_bytes());
        assert_eq!(
            extract_key(Algorithm::Tdes, &data).unwrap_err(),
            Tr31Error::KeyLengthInconsistent(Algorithm::Tdes)
        );
        data[..2].copy_from_slice(&0x0040u16.to_be_bytes());
        assert_eq!(
            extract_key(Algorithm::Aes, &data).unwrap_err(),
            Tr31Error::KeyLengthInconsistent(Algorithm::Aes)
        );
        assert_eq!(
            extract_key(Algorithm::Hmac, &data).unwrap_err(),
            Tr31Error::UnsupportedKeyAlgorithm(Algorithm::Hmac)
        );
        assert_eq!(
            extract_key(Algorithm::Tdes, &[0x00]).unwrap_err(),
            Tr31Error::InvalidKeyLengthField
        );
    }

    #[test]
    fn padding_block_covers_the_gap() {
        assert!(padding_block_for(32, 16).is_none());
        assert_eq!(
            padding_block_for(28, 16).map(|pb| pb.encoded_len()),
            Some(4)
        );
        assert_eq!(
            padding_block_for(30, 16).map(|pb| pb.encoded_len()),
            Some(18)
        );
        assert_eq!(padding_block_for(23, 8).map(|pb| pb.encoded_len()), Some(9));
    }
}
