//! Android Key Attestation verifier.
//!
//! What it owns: reading an attestation certificate chain (PEM or DER), checking it against
//! Google's hardware attestation roots the way Google's reference verifier
//! (github.com/android/keyattestation) does with real-world chains, parsing the KeyDescription
//! extension (OID 1.3.6.1.4.1.11129.2.1.17) leniently, and turning a [`Policy`] into a
//! [`Verification`]: the parsed KeyDescription and a list of named [`Check`]s, each with an
//! outcome and a reason.
//!
//! Chain rules: trust anchors are matched by public key (the RSA-4096 root and the EC P-384
//! "Key Attestation CA1" root are embedded); every certificate must name and be signed by the
//! next; the leaf's validity dates are not enforced (KeyMint writes placeholder dates) but the
//! issuers' are; intermediates without CA basicConstraints are tolerated (OEM chains); the
//! attestation certificate must be the leaf (chains extended below it are refused); any
//! certificate on the revocation status list refuses the chain, and a list older than the
//! policy allows refuses it too.
//!
//! Measured (`cargo bench -p android-attestation --bench verify`, this project's shared 2-core
//! machine, other builds running): a whole verification of Google's 5-certificate sample chain
//! (P-256 leaf, P-256/P-384 intermediates, RSA-4096 root: three ECDSA and two RSA-4096
//! verifications, PEM decoding, X.509 and KeyDescription parsing) takes about 7.7 ms; the
//! 7-certificate attest-key chain about 9.2 ms; parsing the KeyDescription alone about 5.4 µs.
//!
//! Pure: no I/O, no clock. The verification instant, the trust anchors and the parsed
//! revocation list (with its fetch time) are arguments. Input errors are typed [`Error`]s with
//! stable codes; nothing panics on input.

mod chain;
mod error;
mod hexser;
mod key_description;
mod revocation;
mod tlv;
mod verify;

pub use chain::{ChainCert, MAX_CHAIN_LEN, TrustAnchors, from_ders, normalize_serial, parse_chain};
pub use error::Error;
pub use key_description::{
    AttestationApplicationId, AuthorizationList, KEY_DESCRIPTION_OID, KeyDescription, PackageInfo,
    RootOfTrust, SecurityLevel, VerifiedBootState,
};
pub use revocation::{RevocationEntry, RevocationList};
pub use verify::{CertSummary, Check, Outcome, Policy, Verification, verify, verify_bytes};

/// Parses a hex string (whitespace and `:` separators allowed).
///
/// # Errors
/// [`Error::BadHex`].
pub fn parse_hex(text: &str) -> Result<Vec<u8>, Error> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(clean).map_err(|_| Error::BadHex)
}
