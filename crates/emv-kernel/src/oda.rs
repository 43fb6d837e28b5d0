//! Offline data authentication: certificate recovery, SDA, DDA, fDDA and CDA.
//!
//! Sources: EMV 4.4 Book 2, section 5 (Static Data Authentication: 5.2 keys and certificates,
//! 5.3 retrieval of the Issuer Public Key, Table 6; 5.4 verification of the Signed Static
//! Application Data, Table 7), section 6 (Dynamic Data Authentication: 6.3 Issuer and 6.4 ICC Public
//! Key retrieval, Tables 13-14; 6.5 DDA, Table 17; 6.6 CDA, Tables 18-19), Annex A2.1 (recovery
//! with ISO/IEC 9796-2) and Annex B (SHA-1, algorithm indicator `01`; RSA, indicator `01`);
//! Book 3 section 10.3 for the static data to be authenticated; EMV Contactless Book C-3 (Kernel 3)
//! for fDDA (the terminal dynamic data of a qVSDC transaction) and Book C-2 for CDA in Kernel 2.
//!
//! Every check that the book lists ends in its own [`OdaError`]; nothing here panics on card data.
//! The kernel decides what a failure means (TVR bits, decline or online).

use alloc::sync::Arc;
use alloc::vec::Vec;

use sha1::{Digest, Sha1};

use crate::ErrorCode;
use crate::date::{Date, ExpiryMonth};
use crate::rsa::{self, RsaError};
use crate::tlv::{self, Tag, TlvError};

/// Recovered data header (Book 2 Tables 6, 7, 13, 14, 17, 19).
const HEADER: u8 = 0x6A;
/// Recovered data trailer.
const TRAILER: u8 = 0xBC;
/// Certificate / signed data formats.
const FORMAT_ISSUER_CERT: u8 = 0x02;
const FORMAT_SSAD: u8 = 0x03;
const FORMAT_ICC_CERT: u8 = 0x04;
/// Signed Dynamic Application Data of DDA and CDA (Book 2 Tables 17 and 19).
const FORMAT_SDAD: u8 = 0x05;
/// Signed Dynamic Application Data of fDDA (Book C-3, fDDA; Visa Contactless Payment
/// Specification): the Book 2 DDA layout with format `95` instead of `05`. Both real Visa cards
/// in `emv-replay`'s transcripts sign fDDA this way and verify under Visa production CA key 09.
const FORMAT_FDDA_SDAD: u8 = 0x95;
/// Hash algorithm indicator for SHA-1 (Book 2 Annex B3).
const HASH_SHA1: u8 = 0x01;
/// Public key algorithm indicator for RSA (Book 2 Annex B2).
const PK_RSA: u8 = 0x01;
const HASH_LEN: usize = 20;

/// A failed offline data authentication step. Each variant names the Book 2 check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OdaError {
    /// The CA public key for this RID and index is not in the terminal's table.
    #[error("no CA public key for this RID and index")]
    CaKeyNotFound,
    /// A CA key whose checksum does not match its published hash.
    #[error("CA public key checksum mismatch")]
    CaKeyChecksum,
    /// The CA key is past its expiry date.
    #[error("CA public key expired")]
    CaKeyExpired,
    /// A public key modulus or exponent that cannot be used.
    #[error("invalid public key")]
    InvalidKey,
    /// A certificate or signature whose length differs from the modulus, or whose value is not
    /// below it (Book 2 5.3 step 1, 5.4 step 1, 6.4 step 1, 6.5.2 step 1).
    #[error("certificate or signature length does not match the key")]
    SignatureLength,
    /// Recovered data trailer is not `BC`.
    #[error("recovered data trailer is not BC")]
    Trailer,
    /// Recovered data header is not `6A`.
    #[error("recovered data header is not 6A")]
    Header,
    /// Certificate or signed data format is not the one expected.
    #[error("unexpected format {0:#04x}")]
    Format(u8),
    /// Hash algorithm indicator other than SHA-1.
    #[error("unsupported hash algorithm {0:#04x}")]
    HashAlgorithm(u8),
    /// Public key algorithm indicator other than RSA.
    #[error("unsupported public key algorithm {0:#04x}")]
    PublicKeyAlgorithm(u8),
    /// The recomputed hash differs from the recovered hash.
    #[error("hash result mismatch")]
    HashMismatch,
    /// The issuer identifier does not match the leftmost PAN digits (Book 2 5.3 step 8).
    #[error("issuer identifier does not match the PAN")]
    IssuerIdentifier,
    /// The PAN in the ICC certificate differs from the Application PAN (Book 2 6.4 step 8).
    #[error("ICC certificate PAN does not match the Application PAN")]
    PanMismatch,
    /// The certificate expiration date is invalid BCD.
    #[error("invalid certificate expiration date")]
    InvalidDate,
    /// The certificate expired before the transaction date.
    #[error("certificate expired")]
    Expired,
    /// The certificate is on the revocation list.
    #[error("certificate revoked")]
    Revoked,
    /// The key is longer than the certificate carries and no (or a short) remainder was given.
    #[error("public key remainder missing or of the wrong length")]
    Remainder,
    /// Key or dynamic data lengths that do not fit the recovered data.
    #[error("inconsistent lengths in recovered data")]
    Length,
    /// A record for ODA in SFI 1 to 10 is not a `70` template (Book 3 10.3).
    #[error("record for offline data authentication is not a 70 template")]
    RecordNotTemplate,
    /// The Static Data Authentication Tag List names a tag other than `82` (Book 3 10.3).
    #[error("SDA tag list other than 82")]
    SdaTagList,
    /// The CID in the signed dynamic data differs from the one in the GENERATE AC response
    /// (Book 2 6.6.2 step 6).
    #[error("CID in the signature differs from the response")]
    CidMismatch,
    /// The Transaction Data Hash Code differs from the recomputed one (Book 2 6.6.2 step 9).
    #[error("transaction data hash code mismatch")]
    TransactionDataHash,
    /// Card data needed for the step is malformed.
    #[error("malformed card data: {0}")]
    Tlv(#[from] TlvError),
    /// A data object the method needs is missing (certificate, exponent, signature, CA index).
    #[error("data object {0} needed for offline data authentication is missing")]
    MissingData(Tag),
    /// The card does not support the method the transaction requires (AIP).
    #[error("offline data authentication not supported by the card")]
    NotSupported,
}

impl ErrorCode for OdaError {
    fn code(&self) -> &'static str {
        match self {
            Self::CaKeyNotFound => "oda_ca_key_not_found",
            Self::CaKeyChecksum => "oda_ca_key_checksum",
            Self::CaKeyExpired => "oda_ca_key_expired",
            Self::InvalidKey => "oda_invalid_key",
            Self::SignatureLength => "oda_signature_length",
            Self::Trailer => "oda_trailer",
            Self::Header => "oda_header",
            Self::Format(_) => "oda_format",
            Self::HashAlgorithm(_) => "oda_hash_algorithm",
            Self::PublicKeyAlgorithm(_) => "oda_public_key_algorithm",
            Self::HashMismatch => "oda_hash_mismatch",
            Self::IssuerIdentifier => "oda_issuer_identifier",
            Self::PanMismatch => "oda_pan_mismatch",
            Self::InvalidDate => "oda_invalid_date",
            Self::Expired => "oda_expired",
            Self::Revoked => "oda_revoked",
            Self::Remainder => "oda_remainder",
            Self::Length => "oda_length",
            Self::RecordNotTemplate => "oda_record_not_template",
            Self::SdaTagList => "oda_sda_tag_list",
            Self::CidMismatch => "oda_cid_mismatch",
            Self::TransactionDataHash => "oda_transaction_data_hash",
            Self::Tlv(_) => "oda_malformed_data",
            Self::MissingData(_) => "oda_missing_data",
            Self::NotSupported => "oda_not_supported",
        }
    }
}

impl From<RsaError> for OdaError {
    fn from(error: RsaError) -> Self {
        match error {
            RsaError::Modulus | RsaError::Exponent => Self::InvalidKey,
            RsaError::Signature => Self::SignatureLength,
        }
    }
}

/// SHA-1 of the concatenation of `parts`.
#[must_use]
pub fn sha1(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// An RSA public key (modulus and exponent, big-endian).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PublicKey({} bits, e = {:02X?})",
            self.modulus.len() * 8,
            self.exponent
        )
    }
}

impl PublicKey {
    /// A key from its modulus and exponent.
    ///
    /// # Errors
    /// [`OdaError::InvalidKey`] for an empty, even or over-long (above 248 bytes) modulus, a
    /// modulus with a leading zero byte, or an exponent that is empty, zero or over 3 bytes.
    pub fn new(modulus: &[u8], exponent: &[u8]) -> Result<Self, OdaError> {
        let valid_modulus = !modulus.is_empty()
            && modulus.len() <= rsa::MAX_MODULUS_LEN
            && modulus[0] != 0
            && modulus[modulus.len() - 1] & 1 == 1;
        let valid_exponent =
            !exponent.is_empty() && exponent.len() <= 3 && exponent.iter().any(|&byte| byte != 0);
        if !(valid_modulus && valid_exponent) {
            return Err(OdaError::InvalidKey);
        }
        Ok(Self {
            modulus: modulus.to_vec(),
            exponent: exponent.to_vec(),
        })
    }

    /// The modulus.
    #[must_use]
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// The exponent.
    #[must_use]
    pub fn exponent(&self) -> &[u8] {
        &self.exponent
    }

    /// Modulus length in bytes (N_CA, N_I or N_IC in Book 2).
    #[must_use]
    pub fn len(&self) -> usize {
        self.modulus.len()
    }

    /// Always `false`: a key has a modulus. Present for symmetry with `len`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.modulus.is_empty()
    }

    /// Recovers signed data: `signature^e mod n` (Book 2 Annex A2.1).
    ///
    /// # Errors
    /// [`OdaError::SignatureLength`] when the signature is not as long as the modulus or not
    /// below it.
    pub fn recover(&self, signature: &[u8]) -> Result<Vec<u8>, OdaError> {
        Ok(rsa::recover(signature, &self.modulus, &self.exponent)?)
    }

    /// Recovers and checks the frame shared by every EMV signature: the length, trailer `BC`,
    /// header `6A` and the format byte (Book 2 5.3 steps 1-4, 5.4 steps 1-3, 6.5.2 steps 1-3).
    fn recover_framed(&self, signature: &[u8], format: u8) -> Result<Vec<u8>, OdaError> {
        let recovered = self.recover(signature)?;
        // The smallest frame: header, format, 20-byte hash and trailer plus the fixed fields.
        if recovered.len() < HASH_LEN + 6 {
            return Err(OdaError::Length);
        }
        if recovered.last() != Some(&TRAILER) {
            return Err(OdaError::Trailer);
        }
        if recovered[0] != HEADER {
            return Err(OdaError::Header);
        }
        if recovered[1] != format {
            return Err(OdaError::Format(recovered[1]));
        }
        Ok(recovered)
    }
}

/// Splits recovered data into the hashed part (format to before the hash) and the hash result.
fn hashed_part_and_hash(recovered: &[u8]) -> (&[u8], &[u8]) {
    let hash_start = recovered.len() - HASH_LEN - 1;
    (
        &recovered[1..hash_start],
        &recovered[hash_start..recovered.len() - 1],
    )
}

/// Registered Application Provider Identifier: the first five bytes of an AID.
pub type Rid = [u8; 5];

/// A Certification Authority public key as the terminal stores it (Book 2 5.2, 11.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaPublicKey {
    /// The RID of the payment system.
    pub rid: Rid,
    /// CA Public Key Index (`8F` on the card).
    pub index: u8,
    /// The key.
    pub key: PublicKey,
    /// Last valid date, if the payment system gave one.
    pub expiry: Option<Date>,
}

impl CaPublicKey {
    /// A CA key.
    ///
    /// # Errors
    /// [`OdaError::InvalidKey`] for an unusable modulus or exponent.
    pub fn new(rid: Rid, index: u8, modulus: &[u8], exponent: &[u8]) -> Result<Self, OdaError> {
        Ok(Self {
            rid,
            index,
            key: PublicKey::new(modulus, exponent)?,
            expiry: None,
        })
    }

    /// A CA key checked against the checksum the payment system publishes with it: SHA-1 over
    /// RID, index, modulus and exponent (Book 2 11.2.2, Table 26).
    ///
    /// # Errors
    /// [`OdaError::InvalidKey`] or [`OdaError::CaKeyChecksum`].
    pub fn with_checksum(
        rid: Rid,
        index: u8,
        modulus: &[u8],
        exponent: &[u8],
        checksum: &[u8; HASH_LEN],
    ) -> Result<Self, OdaError> {
        let key = Self::new(rid, index, modulus, exponent)?;
        if key.checksum() != *checksum {
            return Err(OdaError::CaKeyChecksum);
        }
        Ok(key)
    }

    /// The CA key checksum: SHA-1(RID || index || modulus || exponent).
    #[must_use]
    pub fn checksum(&self) -> [u8; HASH_LEN] {
        sha1(&[
            &self.rid,
            &[self.index],
            self.key.modulus(),
            self.key.exponent(),
        ])
    }
}

/// An entry of the certificate revocation list (Book 2 5.3 step 10, 6.3 step 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// The RID.
    pub rid: Rid,
    /// The CA key index.
    pub ca_index: u8,
    /// The issuer certificate serial number.
    pub serial: [u8; 3],
}

/// The terminal's CA public keys and revocation list.
///
/// Shared, not copied, between clones: every transaction carries the reader configuration, and
/// copying the moduli into each one cost more than a short transaction's own work in the `.wasm`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaKeyTable {
    entries: Arc<Entries>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entries {
    keys: Vec<CaPublicKey>,
    revocations: Vec<Revocation>,
}

impl CaKeyTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key, replacing one with the same RID and index.
    pub fn insert(&mut self, key: CaPublicKey) {
        let keys = &mut Arc::make_mut(&mut self.entries).keys;
        keys.retain(|existing| (existing.rid, existing.index) != (key.rid, key.index));
        keys.push(key);
    }

    /// Adds a revoked issuer certificate.
    pub fn revoke(&mut self, revocation: Revocation) {
        Arc::make_mut(&mut self.entries)
            .revocations
            .push(revocation);
    }

    /// The key for `rid` and `index` that is valid on `today`.
    ///
    /// # Errors
    /// [`OdaError::CaKeyNotFound`] or [`OdaError::CaKeyExpired`].
    pub fn find(&self, rid: &Rid, index: u8, today: Date) -> Result<&CaPublicKey, OdaError> {
        let key = self
            .entries
            .keys
            .iter()
            .find(|key| key.rid == *rid && key.index == index)
            .ok_or(OdaError::CaKeyNotFound)?;
        match key.expiry {
            Some(expiry) if expiry < today => Err(OdaError::CaKeyExpired),
            _ => Ok(key),
        }
    }

    /// The revocation list.
    #[must_use]
    pub fn revocations(&self) -> &[Revocation] {
        &self.entries.revocations
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.keys.len()
    }

    /// Whether the table has no key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.keys.is_empty()
    }
}

/// The three data objects that carry a certified public key: certificate, remainder (empty when
/// the card has none) and exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Certificate<'a> {
    /// The certificate (`90` for the issuer, `9F46` for the ICC).
    pub certificate: &'a [u8],
    /// The key remainder (`92` or `9F48`), empty if absent.
    pub remainder: &'a [u8],
    /// The key exponent (`9F32` or `9F47`).
    pub exponent: &'a [u8],
}

/// The Issuer Public Key recovered from its certificate (Book 2 Table 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPublicKey {
    /// The key.
    pub key: PublicKey,
    /// Issuer identifier: leftmost 3-8 PAN digits, padded with `F`.
    pub issuer_identifier: [u8; 4],
    /// Certificate expiration month.
    pub expiry: ExpiryMonth,
    /// Certificate serial number.
    pub serial: [u8; 3],
}

/// The ICC Public Key recovered from its certificate (Book 2 Table 14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IccPublicKey {
    /// The key.
    pub key: PublicKey,
    /// Certificate expiration month.
    pub expiry: ExpiryMonth,
    /// Certificate serial number.
    pub serial: [u8; 3],
}

/// Digits of a `cn` value (BCD, ended by the first `F` nibble); `None` on a non-digit nibble
/// before the padding or a digit after it.
fn cn_digits(value: &[u8]) -> Option<Vec<u8>> {
    let mut digits = Vec::with_capacity(value.len() * 2);
    let mut ended = false;
    for nibble in value.iter().flat_map(|byte| [byte >> 4, byte & 0x0F]) {
        match nibble {
            0xF => ended = true,
            0..=9 if !ended => digits.push(nibble),
            _ => return None,
        }
    }
    Some(digits)
}

/// Joins the leftmost key digits in a certificate with the remainder (Book 2 5.3 step 11,
/// 6.4 step 11).
fn assemble_modulus(
    leftmost: &[u8],
    remainder: &[u8],
    key_len: usize,
) -> Result<Vec<u8>, OdaError> {
    if key_len <= leftmost.len() {
        // The whole key fits; the rest of the field is `BB` padding. A remainder is not expected,
        // and an unexpected one is ignored as Book 2 does not make it a failure.
        return Ok(leftmost[..key_len].to_vec());
    }
    if leftmost.len() + remainder.len() != key_len {
        return Err(OdaError::Remainder);
    }
    let mut modulus = Vec::with_capacity(key_len);
    modulus.extend_from_slice(leftmost);
    modulus.extend_from_slice(remainder);
    Ok(modulus)
}

fn check_expiry(bytes: &[u8], today: Date) -> Result<ExpiryMonth, OdaError> {
    let expiry = ExpiryMonth::from_mmyy(bytes).ok_or(OdaError::InvalidDate)?;
    if expiry.is_expired_on(today) {
        return Err(OdaError::Expired);
    }
    Ok(expiry)
}

/// Retrieves the Issuer Public Key (Book 2 5.3 / 6.3, steps 1-11).
///
/// `pan` is the Application PAN (`5A`), `today` the transaction date.
///
/// # Errors
/// The [`OdaError`] of the first check that fails.
pub fn recover_issuer_key(
    ca: &CaPublicKey,
    input: Certificate<'_>,
    pan: &[u8],
    today: Date,
    revocations: &[Revocation],
) -> Result<IssuerPublicKey, OdaError> {
    let n_ca = ca.key.len();
    if input.certificate.len() != n_ca || n_ca < 36 + 1 {
        return Err(OdaError::SignatureLength);
    }
    let recovered = ca
        .key
        .recover_framed(input.certificate, FORMAT_ISSUER_CERT)?;
    // Table 6: 6A | 02 | issuer id (4) | expiry (2) | serial (3) | hash alg | pk alg | NI | exp len
    //          | key or leftmost digits (NCA - 36) | hash (20) | BC
    let issuer_identifier: [u8; 4] = recovered[2..6].try_into().map_err(|_| OdaError::Length)?;
    let hash_algorithm = recovered[11];
    let pk_algorithm = recovered[12];
    let key_len = usize::from(recovered[13]);
    let exponent_len = usize::from(recovered[14]);
    if hash_algorithm != HASH_SHA1 {
        return Err(OdaError::HashAlgorithm(hash_algorithm));
    }
    let (hashed, hash) = hashed_part_and_hash(&recovered);
    let computed = sha1(&[hashed, input.remainder, input.exponent]);
    if computed != hash {
        return Err(OdaError::HashMismatch);
    }
    // Step 8: the issuer identifier is the leftmost 3-8 PAN digits.
    let id_digits = cn_digits(&issuer_identifier).ok_or(OdaError::IssuerIdentifier)?;
    let pan_digits = cn_digits(pan).ok_or(OdaError::IssuerIdentifier)?;
    if !(3..=8).contains(&id_digits.len()) || !pan_digits.starts_with(&id_digits) {
        return Err(OdaError::IssuerIdentifier);
    }
    let expiry = check_expiry(&recovered[6..8], today)?;
    let serial: [u8; 3] = recovered[8..11].try_into().map_err(|_| OdaError::Length)?;
    if revocations
        .iter()
        .any(|entry| entry.rid == ca.rid && entry.ca_index == ca.index && entry.serial == serial)
    {
        return Err(OdaError::Revoked);
    }
    if pk_algorithm != PK_RSA {
        return Err(OdaError::PublicKeyAlgorithm(pk_algorithm));
    }
    if exponent_len != input.exponent.len() {
        return Err(OdaError::Length);
    }
    let leftmost = &recovered[15..n_ca - HASH_LEN - 1];
    let modulus = assemble_modulus(leftmost, input.remainder, key_len)?;
    Ok(IssuerPublicKey {
        key: PublicKey::new(&modulus, input.exponent)?,
        issuer_identifier,
        expiry,
        serial,
    })
}

/// Retrieves the ICC Public Key (Book 2 6.4, steps 1-11).
///
/// `static_data` is the static data to be authenticated ([`static_data_to_authenticate`]).
///
/// # Errors
/// The [`OdaError`] of the first check that fails.
pub fn recover_icc_key(
    issuer: &IssuerPublicKey,
    input: Certificate<'_>,
    pan: &[u8],
    static_data: &[u8],
    today: Date,
) -> Result<IccPublicKey, OdaError> {
    let n_i = issuer.key.len();
    if input.certificate.len() != n_i || n_i < 42 + 1 {
        return Err(OdaError::SignatureLength);
    }
    let recovered = issuer
        .key
        .recover_framed(input.certificate, FORMAT_ICC_CERT)?;
    // Table 14: 6A | 04 | PAN (10) | expiry (2) | serial (3) | hash alg | pk alg | NIC | exp len
    //           | key or leftmost digits (NI - 42) | hash (20) | BC
    let hash_algorithm = recovered[17];
    let pk_algorithm = recovered[18];
    let key_len = usize::from(recovered[19]);
    let exponent_len = usize::from(recovered[20]);
    if hash_algorithm != HASH_SHA1 {
        return Err(OdaError::HashAlgorithm(hash_algorithm));
    }
    let (hashed, hash) = hashed_part_and_hash(&recovered);
    let computed = sha1(&[hashed, input.remainder, input.exponent, static_data]);
    if computed != hash {
        return Err(OdaError::HashMismatch);
    }
    let cert_pan = cn_digits(&recovered[2..12]).ok_or(OdaError::PanMismatch)?;
    let card_pan = cn_digits(pan).ok_or(OdaError::PanMismatch)?;
    if cert_pan != card_pan {
        return Err(OdaError::PanMismatch);
    }
    let expiry = check_expiry(&recovered[12..14], today)?;
    let serial: [u8; 3] = recovered[14..17].try_into().map_err(|_| OdaError::Length)?;
    if pk_algorithm != PK_RSA {
        return Err(OdaError::PublicKeyAlgorithm(pk_algorithm));
    }
    if exponent_len != input.exponent.len() {
        return Err(OdaError::Length);
    }
    let leftmost = &recovered[21..n_i - HASH_LEN - 1];
    let modulus = assemble_modulus(leftmost, input.remainder, key_len)?;
    Ok(IccPublicKey {
        key: PublicKey::new(&modulus, input.exponent)?,
        expiry,
        serial,
    })
}

/// The result of a verified Signed Static Application Data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdaResult {
    /// Data Authentication Code (`9F45`).
    pub data_authentication_code: [u8; 2],
}

/// Verifies the Signed Static Application Data `93` (Book 2 5.4, Table 7).
///
/// # Errors
/// The [`OdaError`] of the first check that fails.
pub fn verify_sda(
    issuer: &IssuerPublicKey,
    signed_static_data: &[u8],
    static_data: &[u8],
) -> Result<SdaResult, OdaError> {
    let recovered = issuer.key.recover_framed(signed_static_data, FORMAT_SSAD)?;
    // Table 7: 6A | 03 | hash alg | DAC (2) | pad BB (NI - 26) | hash (20) | BC
    if recovered[2] != HASH_SHA1 {
        return Err(OdaError::HashAlgorithm(recovered[2]));
    }
    let (hashed, hash) = hashed_part_and_hash(&recovered);
    if sha1(&[hashed, static_data]) != hash {
        return Err(OdaError::HashMismatch);
    }
    Ok(SdaResult {
        data_authentication_code: [recovered[3], recovered[4]],
    })
}

/// The ICC Dynamic Data of a verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicData {
    /// ICC Dynamic Number (`9F4C`), 2 to 8 bytes.
    pub icc_dynamic_number: Vec<u8>,
    /// The whole ICC Dynamic Data field.
    pub icc_dynamic_data: Vec<u8>,
}

/// Recovers a Signed Dynamic Application Data of the given Signed Data Format (`05` for DDA and
/// CDA, `95` for fDDA) and checks it against `terminal_dynamic_data` (Book 2 6.5.2 steps 1-8,
/// Table 17). Returns the ICC Dynamic Data.
fn verify_sdad(
    icc: &IccPublicKey,
    sdad: &[u8],
    format: u8,
    terminal_dynamic_data: &[&[u8]],
) -> Result<Vec<u8>, OdaError> {
    let recovered = icc.key.recover_framed(sdad, format)?;
    // Table 17: 6A | format | hash alg | LDD | ICC dynamic data (LDD) | pad BB | hash (20) | BC
    if recovered[2] != HASH_SHA1 {
        return Err(OdaError::HashAlgorithm(recovered[2]));
    }
    let ldd = usize::from(recovered[3]);
    if ldd > recovered.len() - 25 {
        return Err(OdaError::Length);
    }
    let (hashed, hash) = hashed_part_and_hash(&recovered);
    let mut hasher = Sha1::new();
    hasher.update(hashed);
    for part in terminal_dynamic_data {
        hasher.update(part);
    }
    let computed: [u8; HASH_LEN] = hasher.finalize().into();
    if computed != hash {
        return Err(OdaError::HashMismatch);
    }
    Ok(recovered[4..4 + ldd].to_vec())
}

/// Splits the ICC Dynamic Number off ICC Dynamic Data (Book 2 Table 18: length byte, 2-8 bytes).
fn split_dynamic_number(dynamic_data: &[u8]) -> Result<(&[u8], &[u8]), OdaError> {
    let Some((&len, rest)) = dynamic_data.split_first() else {
        return Err(OdaError::Length);
    };
    let len = usize::from(len);
    if !(2..=8).contains(&len) || rest.len() < len {
        return Err(OdaError::Length);
    }
    Ok(rest.split_at(len))
}

/// Verifies DDA: the SDAD returned by INTERNAL AUTHENTICATE over the DDOL data (Book 2 6.5.2).
///
/// # Errors
/// The [`OdaError`] of the first check that fails.
pub fn verify_dda(
    icc: &IccPublicKey,
    sdad: &[u8],
    ddol_data: &[u8],
) -> Result<DynamicData, OdaError> {
    let dynamic_data = verify_sdad(icc, sdad, FORMAT_SDAD, &[ddol_data])?;
    let (number, _) = split_dynamic_number(&dynamic_data)?;
    Ok(DynamicData {
        icc_dynamic_number: number.to_vec(),
        icc_dynamic_data: dynamic_data.clone(),
    })
}

/// The terminal data an fDDA signature covers (EMV Contactless Book C-3, offline data
/// authentication for qVSDC): Unpredictable Number, Amount Authorised, Transaction Currency Code,
/// and, from fDDA version `01` on, the Card Authentication Related Data (`9F69`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FddaInput<'a> {
    /// Unpredictable Number (`9F37`), 4 bytes.
    pub unpredictable_number: &'a [u8],
    /// Amount, Authorised (`9F02`), 6 bytes.
    pub amount_authorised: &'a [u8],
    /// Transaction Currency Code (`5F2A`), 2 bytes.
    pub currency_code: &'a [u8],
    /// Card Authentication Related Data (`9F69`) when the card returned it; its first byte is
    /// the fDDA version (`00` leaves it out of the hash).
    pub card_authentication_related_data: Option<&'a [u8]>,
}

/// Verifies fDDA: the SDAD of a qVSDC GPO or record response (Book C-3). The signature has the
/// Book 2 Table 17 layout with Signed Data Format `95`, the fDDA format; a DDA signature (format
/// `05`) is refused with [`OdaError::Format`], and so is an fDDA signature offered as DDA or CDA.
///
/// # Errors
/// The [`OdaError`] of the first check that fails.
pub fn verify_fdda(
    icc: &IccPublicKey,
    sdad: &[u8],
    input: FddaInput<'_>,
) -> Result<DynamicData, OdaError> {
    let card_data = match input.card_authentication_related_data {
        Some(data) if data.first().is_some_and(|&version| version != 0x00) => data,
        _ => &[],
    };
    let dynamic_data = verify_sdad(
        icc,
        sdad,
        FORMAT_FDDA_SDAD,
        &[
            input.unpredictable_number,
            input.amount_authorised,
            input.currency_code,
            card_data,
        ],
    )?;
    let (number, _) = split_dynamic_number(&dynamic_data)?;
    Ok(DynamicData {
        icc_dynamic_number: number.to_vec(),
        icc_dynamic_data: dynamic_data.clone(),
    })
}

/// What a verified CDA signature yields (Book 2 Table 19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdaResult {
    /// ICC Dynamic Number (`9F4C`).
    pub icc_dynamic_number: Vec<u8>,
    /// Cryptogram Information Data (`9F27`) inside the signature.
    pub cid: u8,
    /// The Application Cryptogram (`9F26`), which CDA carries only inside the signature.
    pub cryptogram: [u8; 8],
}

/// The transaction data CDA covers (Book 2 6.6.2 step 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdaInput<'a> {
    /// Unpredictable Number (`9F37`) sent in the CDOL data.
    pub unpredictable_number: &'a [u8],
    /// Cryptogram Information Data (`9F27`) as returned in the GENERATE AC response.
    pub cid: u8,
    /// PDOL data as sent in GET PROCESSING OPTIONS (value of the `83` template; empty without a
    /// PDOL).
    pub pdol_data: &'a [u8],
    /// CDOL1 data as sent in the first GENERATE AC.
    pub cdol1_data: &'a [u8],
    /// CDOL2 data, for the second GENERATE AC.
    pub cdol2_data: Option<&'a [u8]>,
    /// Value of the GENERATE AC response template `77`, as received.
    pub response_template: &'a [u8],
}

/// The Transaction Data Hash Code: SHA-1 over the PDOL data, the CDOL1 (and CDOL2) data and every
/// data object of the GENERATE AC response except the SDAD `9F4B`, in the order received.
///
/// # Errors
/// [`OdaError::Tlv`] when the response template is malformed.
pub fn transaction_data_hash(input: &CdaInput<'_>) -> Result<[u8; HASH_LEN], OdaError> {
    let mut hasher = Sha1::new();
    hasher.update(input.pdol_data);
    hasher.update(input.cdol1_data);
    if let Some(cdol2) = input.cdol2_data {
        hasher.update(cdol2);
    }
    for object in tlv::TlvIter::new(input.response_template) {
        let object = object?;
        if object.tag != Tag::SignedDynamicApplicationData {
            hasher.update(object.raw);
        }
    }
    Ok(hasher.finalize().into())
}

/// Verifies CDA on a GENERATE AC response (Book 2 6.6.2, Tables 18-19).
///
/// # Errors
/// The [`OdaError`] of the first check that fails.
pub fn verify_cda(
    icc: &IccPublicKey,
    sdad: &[u8],
    input: &CdaInput<'_>,
) -> Result<CdaResult, OdaError> {
    let dynamic_data = verify_sdad(icc, sdad, FORMAT_SDAD, &[input.unpredictable_number])?;
    // Table 18: IDN length | IDN | CID | AC (8) | Transaction Data Hash Code (20)
    let (number, rest) = split_dynamic_number(&dynamic_data)?;
    if rest.len() < 1 + 8 + HASH_LEN {
        return Err(OdaError::Length);
    }
    let cid = rest[0];
    if cid != input.cid {
        return Err(OdaError::CidMismatch);
    }
    let cryptogram: [u8; 8] = rest[1..9].try_into().map_err(|_| OdaError::Length)?;
    if rest[9..9 + HASH_LEN] != transaction_data_hash(input)? {
        return Err(OdaError::TransactionDataHash);
    }
    Ok(CdaResult {
        icc_dynamic_number: number.to_vec(),
        cid,
        cryptogram,
    })
}

/// One record read for ODA: its SFI and the READ RECORD response data (the `70` template).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OdaRecord<'a> {
    /// The SFI the record came from.
    pub sfi: u8,
    /// The response data.
    pub data: &'a [u8],
}

/// Builds the static data to be authenticated (Book 3 10.3): for SFI 1 to 10 the value of each
/// `70` template, for SFI 11 to 30 the whole record; then the values of the tags in the Static
/// Data Authentication Tag List `9F4A`, which may only name the AIP `82`.
///
/// # Errors
/// [`OdaError::RecordNotTemplate`] when an SFI 1-10 record is not a single `70` template;
/// [`OdaError::SdaTagList`] for a tag list other than `82`.
pub fn static_data_to_authenticate(
    records: &[OdaRecord<'_>],
    sda_tag_list: Option<&[u8]>,
    aip: &[u8],
) -> Result<Vec<u8>, OdaError> {
    let mut out = Vec::new();
    for record in records {
        if record.sfi <= 10 {
            let objects = tlv::parse_all(record.data).map_err(|_| OdaError::RecordNotTemplate)?;
            match objects.as_slice() {
                [template] if template.tag == Tag::ReadRecordResponseTemplate => {
                    out.extend_from_slice(template.value);
                }
                _ => return Err(OdaError::RecordNotTemplate),
            }
        } else {
            out.extend_from_slice(record.data);
        }
    }
    if let Some(list) = sda_tag_list
        && !list.is_empty()
    {
        if list != [0x82] {
            return Err(OdaError::SdaTagList);
        }
        out.extend_from_slice(aip);
    }
    Ok(out)
}
