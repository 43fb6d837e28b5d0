//! Certificate chains: reading PEM or DER, signature checks between neighbours, and trust
//! anchors matched by public key.
//!
//! Chains are leaf first, root last (the order `KeyStore.getCertificateChain()` returns).

use base64ct::{Base64, Encoding};
use der::{Decode, Encode};
use sha2::{Digest, Sha256, Sha384, Sha512};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::certificate::{CertificateInner, Raw};

/// The `Raw` profile: real attestation chains carry serial numbers outside RFC 5280's limits
/// (negative, over 20 bytes), which Google's verifier accepts.
type Certificate = CertificateInner<Raw>;

use crate::error::Error;
use crate::tlv;

/// Most certificates accepted in one chain (real chains have 3 to 5; attest-key chains more).
pub const MAX_CHAIN_LEN: usize = 10;

/// One certificate with its original encoding (signatures cover the original bytes).
#[derive(Debug, Clone)]
pub struct ChainCert {
    der: Vec<u8>,
    cert: Certificate,
}

impl ChainCert {
    /// Parses one DER certificate.
    ///
    /// # Errors
    /// [`Error::BadCertificate`] with `index`.
    pub fn from_der(der: Vec<u8>, index: usize) -> Result<Self, Error> {
        let cert = Certificate::from_der(&der).map_err(|_| Error::BadCertificate(index))?;
        // The signed part is the first element of the outer SEQUENCE, as encoded.
        tbs_bytes(&der).ok_or(Error::BadCertificate(index))?;
        Ok(Self { der, cert })
    }

    /// The DER encoding as received.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The parsed certificate.
    #[must_use]
    pub fn cert(&self) -> &Certificate {
        &self.cert
    }

    /// SubjectPublicKeyInfo, DER.
    #[must_use]
    pub fn spki_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap_or_default()
    }

    /// Serial number as Google's revocation list writes it: lowercase hex, no leading zeros.
    #[must_use]
    pub fn serial_hex(&self) -> String {
        normalize_serial(&hex::encode(
            self.cert.tbs_certificate().serial_number().as_bytes(),
        ))
    }

    /// The value of an extension, if present.
    #[must_use]
    pub fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.cert
            .tbs_certificate()
            .extensions()?
            .iter()
            .find(|ext| ext.extn_id.to_string() == oid)
            .map(|ext| ext.extn_value.as_bytes())
    }

    /// Subject, RFC 4514 text.
    #[must_use]
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// Issuer, RFC 4514 text.
    #[must_use]
    pub fn issuer(&self) -> String {
        self.cert.tbs_certificate().issuer().to_string()
    }

    /// Whether the issuer name equals `other`'s subject name (compared as encoded).
    #[must_use]
    pub fn issued_by(&self, other: &ChainCert) -> bool {
        let issuer = self.cert.tbs_certificate().issuer().to_der();
        let subject = other.cert.tbs_certificate().subject().to_der();
        matches!((issuer, subject), (Ok(a), Ok(b)) if a == b)
    }

    /// Validity period, Unix seconds.
    #[must_use]
    pub fn validity(&self) -> (i64, i64) {
        let validity = self.cert.tbs_certificate().validity();
        let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        (
            secs(validity.not_before.to_unix_duration()),
            secs(validity.not_after.to_unix_duration()),
        )
    }

    /// Whether `issuer_spki` verifies this certificate's signature.
    #[must_use]
    pub fn signed_by(&self, issuer_spki: &SubjectPublicKeyInfoOwned) -> bool {
        let Some(tbs) = tbs_bytes(&self.der) else {
            return false;
        };
        let Some(signature) = self.cert.signature().as_bytes() else {
            return false;
        };
        let algorithm = self.cert.signature_algorithm().oid.to_string();
        verify_signature(&algorithm, tbs, signature, issuer_spki)
    }

    /// This certificate's public key.
    #[must_use]
    pub fn public_key(&self) -> &SubjectPublicKeyInfoOwned {
        self.cert.tbs_certificate().subject_public_key_info()
    }
}

/// Lowercase hex without leading zeros ("0" for zero), as Google's verifier compares serials
/// (`BigInteger.toString(16)`).
#[must_use]
pub fn normalize_serial(text: &str) -> String {
    let lower = text.trim().to_ascii_lowercase();
    let trimmed = lower.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn tbs_bytes(der: &[u8]) -> Option<&[u8]> {
    let (outer, _) = tlv::read(der, "certificate").ok()?;
    let (tbs, _) = tlv::read(outer.value, "tbsCertificate").ok()?;
    Some(tbs.raw)
}

/// Splits PEM text or concatenated DER into certificates.
///
/// # Errors
/// [`Error::EmptyInput`], [`Error::BadEncoding`], [`Error::BadCertificate`],
/// [`Error::ChainLength`].
pub fn parse_chain(input: &[u8]) -> Result<Vec<ChainCert>, Error> {
    let trimmed = input.trim_ascii();
    if trimmed.is_empty() {
        return Err(Error::EmptyInput);
    }
    let ders = if trimmed.starts_with(b"-----BEGIN")
        || contains(trimmed, b"-----BEGIN CERTIFICATE-----")
    {
        pem_blocks(trimmed)?
    } else {
        der_sequence(trimmed)?
    };
    from_ders(ders)
}

/// Certificates from a list of DER encodings, leaf first.
///
/// # Errors
/// As [`parse_chain`].
pub fn from_ders(ders: Vec<Vec<u8>>) -> Result<Vec<ChainCert>, Error> {
    if ders.is_empty() {
        return Err(Error::EmptyInput);
    }
    if ders.len() < 2 || ders.len() > MAX_CHAIN_LEN {
        return Err(Error::ChainLength { got: ders.len() });
    }
    ders.into_iter()
        .enumerate()
        .map(|(index, der)| ChainCert::from_der(der, index))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn pem_blocks(text: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let text = std::str::from_utf8(text).map_err(|_| Error::BadEncoding)?;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END).ok_or(Error::BadEncoding)?;
        // Line width varies between tools (64 or 76 columns): drop all whitespace.
        let body: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = Base64::decode_vec(&body).map_err(|_| Error::BadEncoding)?;
        out.push(der);
        if out.len() > MAX_CHAIN_LEN {
            return Err(Error::ChainLength { got: out.len() });
        }
        rest = &after[end + END.len()..];
    }
    if out.is_empty() {
        return Err(Error::BadEncoding);
    }
    Ok(out)
}

fn der_sequence(mut bytes: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (item, rest) = tlv::read(bytes, "certificate").map_err(|_| Error::BadEncoding)?;
        if !item.is_universal(tlv::SEQUENCE) {
            return Err(Error::BadEncoding);
        }
        out.push(item.raw.to_vec());
        if out.len() > MAX_CHAIN_LEN {
            return Err(Error::ChainLength { got: out.len() });
        }
        bytes = rest;
    }
    Ok(out)
}

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
const RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const RSA_SHA512: &str = "1.2.840.113549.1.1.13";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const P256: &str = "1.2.840.10045.3.1.7";
const P384: &str = "1.3.132.0.34";

fn verify_signature(
    algorithm: &str,
    message: &[u8],
    signature: &[u8],
    key: &SubjectPublicKeyInfoOwned,
) -> bool {
    let key_algorithm = key.algorithm.oid.to_string();
    match algorithm {
        ECDSA_SHA256 | ECDSA_SHA384 | ECDSA_SHA512 if key_algorithm == EC_PUBLIC_KEY => {
            let digest = match algorithm {
                ECDSA_SHA256 => Sha256::digest(message).to_vec(),
                ECDSA_SHA384 => Sha384::digest(message).to_vec(),
                _ => Sha512::digest(message).to_vec(),
            };
            let curve = key
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .map(|oid| oid.to_string());
            let point = key.subject_public_key.raw_bytes();
            match curve.as_deref() {
                Some(P256) => verify_p256(point, signature, &digest),
                Some(P384) => verify_p384(point, signature, &digest),
                _ => false,
            }
        }
        RSA_SHA256 | RSA_SHA384 | RSA_SHA512 if key_algorithm == RSA_ENCRYPTION => {
            let Ok(spki_der) = key.to_der() else {
                return false;
            };
            match algorithm {
                RSA_SHA256 => verify_rsa::<rsa::sha2::Sha256>(&spki_der, message, signature),
                RSA_SHA384 => verify_rsa::<rsa::sha2::Sha384>(&spki_der, message, signature),
                _ => verify_rsa::<rsa::sha2::Sha512>(&spki_der, message, signature),
            }
        }
        _ => false,
    }
}

fn verify_p256(point: &[u8], signature: &[u8], digest: &[u8]) -> bool {
    use ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
        return false;
    };
    let Ok(signature) = p256::ecdsa::Signature::from_der(signature) else {
        return false;
    };
    key.verify_prehash(digest, &signature).is_ok()
}

fn verify_p384(point: &[u8], signature: &[u8], digest: &[u8]) -> bool {
    use ecdsa::signature::hazmat::PrehashVerifier;
    let Ok(key) = p384::ecdsa::VerifyingKey::from_sec1_bytes(point) else {
        return false;
    };
    let Ok(signature) = p384::ecdsa::Signature::from_der(signature) else {
        return false;
    };
    key.verify_prehash(digest, &signature).is_ok()
}

fn verify_rsa<D>(spki_der: &[u8], message: &[u8], signature: &[u8]) -> bool
where
    D: rsa::sha2::Digest + der::oid::AssociatedOid + rsa::sha2::digest::FixedOutputReset,
    rsa::pkcs1v15::VerifyingKey<D>: rsa::pkcs8::DecodePublicKey,
{
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    let Ok(key) = rsa::pkcs1v15::VerifyingKey::<D>::from_public_key_der(spki_der) else {
        return false;
    };
    let Ok(signature) = rsa::pkcs1v15::Signature::try_from(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

/// Trust anchors: public keys, not certificates (Google re-issues roots with the same key).
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    anchors: Vec<(String, SubjectPublicKeyInfoOwned)>,
}

const GOOGLE_RSA_ROOT: &str = include_str!("../data/google_root_rsa.pem");
const GOOGLE_EC_ROOT: &str = include_str!("../data/google_root_ec_p384.pem");

impl TrustAnchors {
    /// Google's hardware attestation roots: the RSA-4096 root and the EC P-384
    /// "Key Attestation CA1" root (see `data/README.md`).
    #[must_use]
    pub fn google() -> Self {
        let mut anchors = Self {
            anchors: Vec::new(),
        };
        for (name, pem) in [
            ("google_rsa_4096_root", GOOGLE_RSA_ROOT),
            ("google_ec_p384_root", GOOGLE_EC_ROOT),
        ] {
            // The embedded roots are fixed data checked by unit tests, so this cannot fail.
            let _ = anchors.add_pem(name, pem.as_bytes());
        }
        anchors
    }

    /// No anchors (for tests that supply their own).
    #[must_use]
    pub fn empty() -> Self {
        Self {
            anchors: Vec::new(),
        }
    }

    /// Adds the key(s) of the certificate(s) in a PEM or DER file under `name`.
    ///
    /// # Errors
    /// [`Error::BadTrustAnchor`].
    pub fn add_pem(&mut self, name: &str, input: &[u8]) -> Result<(), Error> {
        let trimmed = input.trim_ascii();
        let ders = if contains(trimmed, b"-----BEGIN CERTIFICATE-----") {
            pem_blocks(trimmed)
        } else {
            der_sequence(trimmed)
        }
        .map_err(|_| Error::BadTrustAnchor)?;
        if ders.is_empty() {
            return Err(Error::BadTrustAnchor);
        }
        for der in ders {
            let cert = Certificate::from_der(&der).map_err(|_| Error::BadTrustAnchor)?;
            self.anchors.push((
                name.to_owned(),
                cert.tbs_certificate().subject_public_key_info().clone(),
            ));
        }
        Ok(())
    }

    /// The anchor whose key equals `key`.
    #[must_use]
    pub fn matching(&self, key: &SubjectPublicKeyInfoOwned) -> Option<&str> {
        self.anchors
            .iter()
            .find(|(_, anchor)| anchor == key)
            .map(|(name, _)| name.as_str())
    }

    /// The anchor whose key verifies `cert` (for chains that omit the root).
    #[must_use]
    pub fn signer_of(&self, cert: &ChainCert) -> Option<&str> {
        self.anchors
            .iter()
            .find(|(_, anchor)| cert.signed_by(anchor))
            .map(|(name, _)| name.as_str())
    }

    /// Number of anchors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(pem: &str) -> ChainCert {
        let ders = pem_blocks(pem.as_bytes()).unwrap();
        ChainCert::from_der(ders[0].clone(), 0).unwrap()
    }

    #[test]
    fn rsa_root_is_self_signed() {
        let cert = root(GOOGLE_RSA_ROOT);
        assert!(cert.signed_by(cert.public_key()));
        assert_eq!(cert.serial_hex(), "d50ff25ba3f2d6b3");
    }

    #[test]
    fn ec_root_is_self_signed_p384() {
        let cert = root(GOOGLE_EC_ROOT);
        assert!(cert.signed_by(cert.public_key()));
        assert_eq!(cert.serial_hex(), "84a9d0297b0eb58ae7ff0e80de760605");
        assert!(cert.subject().contains("Key Attestation CA1"));
    }

    #[test]
    fn google_has_both_roots() {
        assert_eq!(TrustAnchors::google().len(), 2);
    }

    #[test]
    fn serials_normalize_like_biginteger_to_string_16() {
        assert_eq!(normalize_serial("00D50FF25BA3F2D6B3"), "d50ff25ba3f2d6b3");
        assert_eq!(normalize_serial("0000"), "0");
        assert_eq!(normalize_serial("1"), "1");
    }
}
