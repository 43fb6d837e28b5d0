//! Typed errors with stable codes. None carries key material; certificate positions are
//! indexes into the chain as given (0 = leaf).

/// Why the input could not be verified at all (as opposed to a refused verdict, which is a
/// [`crate::Verification`] with failed checks).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing to read.
    #[error("the certificate chain is empty")]
    EmptyInput,
    /// Neither PEM certificates nor a DER certificate sequence.
    #[error("the input is neither PEM certificates nor DER certificates")]
    BadEncoding,
    /// A certificate does not parse.
    #[error("certificate {0} does not parse as X.509")]
    BadCertificate(usize),
    /// Fewer certificates than a leaf and a root, or absurdly many.
    #[error("a chain needs 2 to {max} certificates, got {got}", max = crate::chain::MAX_CHAIN_LEN)]
    ChainLength {
        /// Certificates found.
        got: usize,
    },
    /// No certificate carries the KeyDescription extension.
    #[error("no certificate carries the key attestation extension (1.3.6.1.4.1.11129.2.1.17)")]
    NoAttestationExtension,
    /// The KeyDescription does not parse; names the part.
    #[error("the KeyDescription does not parse: {0}")]
    BadKeyDescription(&'static str),
    /// The revocation status list does not parse.
    #[error("the revocation status list does not parse: {0}")]
    BadRevocationList(String),
    /// A trust anchor PEM does not parse.
    #[error("a trust anchor does not parse")]
    BadTrustAnchor,
    /// A hex argument does not parse.
    #[error("not a hex string")]
    BadHex,
}

impl Error {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyInput => "attestation_empty_input",
            Self::BadEncoding => "attestation_bad_encoding",
            Self::BadCertificate(_) => "attestation_bad_certificate",
            Self::ChainLength { .. } => "attestation_chain_length",
            Self::NoAttestationExtension => "attestation_extension_missing",
            Self::BadKeyDescription(_) => "attestation_bad_key_description",
            Self::BadRevocationList(_) => "attestation_bad_revocation_list",
            Self::BadTrustAnchor => "attestation_bad_trust_anchor",
            Self::BadHex => "attestation_bad_hex",
        }
    }
}
