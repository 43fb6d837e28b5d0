//! Personalisation-time certificates and card-time signatures, built as EMV 4.4 Book 2 defines
//! the recovered data and signed with [`RsaTestKey::sign_raw`].
//!
//! - Issuer Public Key Certificate (tag `90`): Book 2 section 5.3, Table 6, format `02`, signed
//!   by the CA key.
//! - ICC Public Key Certificate (tag `9F46`): Book 2 section 6.4, Table 14, format `04`, signed by
//!   the issuer key; its hash also covers the static data to be authenticated.
//! - Signed Dynamic Application Data (tag `9F4B`): Book 2 section 6.5.1, Table 17, format `05`,
//!   signed by the ICC key; used for fDDA (Book C-3) and CDA (Book 2 section 6.6.1, Table 18).
//!
//! Hash algorithm `01` (SHA-1) and public key algorithm `01` (RSA), Book 2 Annex B.

use alloc::vec::Vec;

use sha1::{Digest, Sha1};

use crate::rsa::{RsaTestKey, SignError, SigningKey};

const HEADER: u8 = 0x6A;
const TRAILER: u8 = 0xBC;
const PAD: u8 = 0xBB;
const HASH_SHA1: u8 = 0x01;
const PK_RSA: u8 = 0x01;
const HASH_LEN: usize = 20;

/// A certified public key as the card stores it: certificate, remainder (empty when the whole
/// modulus fits in the certificate) and exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertifiedKey {
    pub(crate) certificate: Vec<u8>,
    pub(crate) remainder: Vec<u8>,
    pub(crate) exponent: Vec<u8>,
}

/// What a certificate says about its subject besides the key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CertificateFields<'a> {
    /// Issuer identifier (`cn`, 4 bytes) or Application PAN (`cn`, 10 bytes).
    pub(crate) subject: &'a [u8],
    /// Expiration date, MMYY in BCD.
    pub(crate) expiry_mmyy: [u8; 2],
    /// Serial number assigned by the signer.
    pub(crate) serial: [u8; 3],
}

/// Issuer Public Key Certificate (Book 2 Table 6), signed by `ca`.
pub(crate) fn issuer_certificate(
    ca: &RsaTestKey,
    issuer: &RsaTestKey,
    fields: CertificateFields<'_>,
) -> Result<CertifiedKey, SignError> {
    certify(ca, 0x02, issuer, fields, 36, &[])
}

/// ICC Public Key Certificate (Book 2 Table 14), signed by `issuer`, binding `static_data`.
pub(crate) fn icc_certificate(
    issuer: &RsaTestKey,
    icc: &RsaTestKey,
    fields: CertificateFields<'_>,
    static_data: &[u8],
) -> Result<CertifiedKey, SignError> {
    certify(issuer, 0x04, icc, fields, 42, static_data)
}

/// Builds and signs a certificate of format `format` over `subject_key`.
///
/// `overhead` is what the frame takes besides the key field (36 for Table 6, 42 for Table 14), so
/// the key field is `N_signer - overhead` bytes; a longer modulus continues in the remainder, a
/// shorter one is padded with `BB`.
fn certify(
    signer: &RsaTestKey,
    format: u8,
    subject_key: &RsaTestKey,
    fields: CertificateFields<'_>,
    overhead: usize,
    extra_hashed: &[u8],
) -> Result<CertifiedKey, SignError> {
    let n_signer = signer.len();
    let modulus = subject_key.modulus_bytes();
    let exponent = subject_key.exponent_bytes();
    let field_len = n_signer.checked_sub(overhead).ok_or(SignError::Message)?;
    let key_len = u8::try_from(modulus.len()).map_err(|_| SignError::Message)?;
    let exponent_len = u8::try_from(exponent.len()).map_err(|_| SignError::Message)?;
    let (key_field, remainder) = if modulus.len() > field_len {
        let (left, right) = modulus.split_at(field_len);
        (left.to_vec(), right.to_vec())
    } else {
        let mut padded = modulus.clone();
        padded.resize(field_len, PAD);
        (padded, Vec::new())
    };
    let mut body = Vec::with_capacity(n_signer);
    body.push(format);
    body.extend_from_slice(fields.subject);
    body.extend_from_slice(&fields.expiry_mmyy);
    body.extend_from_slice(&fields.serial);
    body.extend_from_slice(&[HASH_SHA1, PK_RSA, key_len, exponent_len]);
    body.extend_from_slice(&key_field);
    let hash = sha1(&[&body, &remainder, &exponent, extra_hashed]);
    let certificate = signer.sign_raw(&frame(&body, &hash))?;
    Ok(CertifiedKey {
        certificate,
        remainder,
        exponent,
    })
}

/// Signed Dynamic Application Data (Book 2 Table 17): `icc_dynamic_data` padded with `BB`, with
/// the hash over it and the terminal dynamic data (`terminal_data`, concatenated).
pub(crate) fn signed_dynamic_data(
    icc: &SigningKey,
    icc_dynamic_data: &[u8],
    terminal_data: &[&[u8]],
) -> Result<Vec<u8>, SignError> {
    let n_icc = icc.len();
    let ldd = u8::try_from(icc_dynamic_data.len()).map_err(|_| SignError::Message)?;
    // 6A | 05 | hash alg | LDD | dynamic data | BB... | hash (20) | BC
    let pad_len = n_icc
        .checked_sub(icc_dynamic_data.len() + 25)
        .ok_or(SignError::Message)?;
    let mut body = Vec::with_capacity(n_icc);
    body.extend_from_slice(&[0x05, HASH_SHA1, ldd]);
    body.extend_from_slice(icc_dynamic_data);
    body.resize(body.len() + pad_len, PAD);
    let mut hasher = Sha1::new();
    hasher.update(&body);
    for part in terminal_data {
        hasher.update(part);
    }
    let hash: [u8; HASH_LEN] = hasher.finalize().into();
    icc.sign_raw(&frame(&body, &hash))
}

/// `6A | body | hash | BC`.
fn frame(body: &[u8], hash: &[u8; HASH_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + HASH_LEN + 2);
    out.push(HEADER);
    out.extend_from_slice(body);
    out.extend_from_slice(hash);
    out.push(TRAILER);
    out
}

/// SHA-1 over the concatenation of `parts`.
pub(crate) fn sha1(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Sha1::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}
