//! CA public keys in the common text form, one key per line:
//!
//! ```text
//! # RID        index  modulus                 exponent  [SHA-1 checksum]
//! A000000003   92     996AF56F5691...7C9F     03        429C954A3859CEF91295F663C963E582ED6EB253
//! ```
//!
//! Fields are separated by white space and written in hex (`:` separators, as some tools write
//! them, are accepted inside a field). The optional fifth field is the checksum payment systems
//! publish with each key, SHA-1 over RID, index, modulus and exponent (EMV 4.4 Book 2 11.2.2); when
//! it is present the key is checked against it. `#` starts a comment.
//!
//! Two sets are bundled: [`CaSet::Test`], the public EMV test CA keys of Visa and Mastercard, and
//! [`CaSet::Production`], the production keys they have published. The files in `data/` cite where
//! the values come from; a test recomputes every checksum.

use emv_kernel::oda::{CaKeyTable, CaPublicKey, OdaError, Rid};

use crate::transcript::{ParseErrorKind, parse_hex};

/// The bundled TEST keys (Visa `A000000003`, Mastercard `A000000004`).
pub const TEST_KEYS: &str = include_str!("../data/ca-test.txt");

/// The bundled PRODUCTION keys (Visa `A000000003`, Mastercard `A000000004`).
pub const PRODUCTION_KEYS: &str = include_str!("../data/ca-production.txt");

/// A bundled key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaSet {
    /// The public EMV test CA keys: for test cards only.
    Test,
    /// The published production CA keys: for real cards.
    Production,
}

impl CaSet {
    /// The key file text.
    #[must_use]
    pub const fn text(self) -> &'static str {
        match self {
            Self::Test => TEST_KEYS,
            Self::Production => PRODUCTION_KEYS,
        }
    }

    /// The keys as a table.
    ///
    /// # Errors
    /// Never for the bundled files (a test checks them); the type is shared with [`parse`].
    pub fn table(self) -> Result<CaKeyTable, CaKeyError> {
        parse(self.text())
    }
}

/// What is wrong with a key line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaKeyErrorKind {
    /// Not 4 or 5 fields.
    #[error("expected 'RID index modulus exponent [checksum]', found {0} fields")]
    FieldCount(usize),
    /// A field that is not hex.
    #[error("{field}: {error}")]
    Hex {
        /// The field name.
        field: &'static str,
        /// The hex error.
        error: ParseErrorKind,
    },
    /// A RID that is not 5 bytes.
    #[error("RID must be 5 bytes, found {0}")]
    RidLength(usize),
    /// An index that is not 1 byte.
    #[error("index must be 1 byte, found {0}")]
    IndexLength(usize),
    /// A checksum that is not 20 bytes.
    #[error("checksum must be 20 bytes (SHA-1), found {0}")]
    ChecksumLength(usize),
    /// The kernel refused the key, or its checksum does not match.
    #[error("{0}")]
    Key(OdaError),
}

/// A CA key file that cannot be loaded: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CA key line {line}: {kind}")]
pub struct CaKeyError {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub kind: CaKeyErrorKind,
}

impl CaKeyError {
    /// A stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self.kind {
            CaKeyErrorKind::FieldCount(_) => "ca_key_field_count",
            CaKeyErrorKind::Hex { .. } => "ca_key_bad_hex",
            CaKeyErrorKind::RidLength(_) => "ca_key_rid_length",
            CaKeyErrorKind::IndexLength(_) => "ca_key_index_length",
            CaKeyErrorKind::ChecksumLength(_) => "ca_key_checksum_length",
            CaKeyErrorKind::Key(OdaError::CaKeyChecksum) => "ca_key_checksum_mismatch",
            CaKeyErrorKind::Key(_) => "ca_key_invalid",
        }
    }
}

fn field(name: &'static str, text: &str) -> Result<Vec<u8>, CaKeyErrorKind> {
    parse_hex(&text.replace(':', "")).map_err(|error| CaKeyErrorKind::Hex { field: name, error })
}

fn parse_line(content: &str) -> Result<CaPublicKey, CaKeyErrorKind> {
    let fields: Vec<&str> = content.split_whitespace().collect();
    let (rid, index, modulus, exponent, checksum) = match fields.as_slice() {
        [rid, index, modulus, exponent] => (rid, index, modulus, exponent, None),
        [rid, index, modulus, exponent, checksum] => {
            (rid, index, modulus, exponent, Some(checksum))
        }
        other => return Err(CaKeyErrorKind::FieldCount(other.len())),
    };
    let rid_bytes = field("RID", rid)?;
    let rid: Rid = rid_bytes
        .as_slice()
        .try_into()
        .map_err(|_| CaKeyErrorKind::RidLength(rid_bytes.len()))?;
    let index_bytes = field("index", index)?;
    let &[index] = index_bytes.as_slice() else {
        return Err(CaKeyErrorKind::IndexLength(index_bytes.len()));
    };
    let modulus = field("modulus", modulus)?;
    let exponent = field("exponent", exponent)?;
    match checksum {
        None => CaPublicKey::new(rid, index, &modulus, &exponent).map_err(CaKeyErrorKind::Key),
        Some(checksum) => {
            let checksum_bytes = field("checksum", checksum)?;
            let checksum: [u8; 20] = checksum_bytes
                .as_slice()
                .try_into()
                .map_err(|_| CaKeyErrorKind::ChecksumLength(checksum_bytes.len()))?;
            CaPublicKey::with_checksum(rid, index, &modulus, &exponent, &checksum)
                .map_err(CaKeyErrorKind::Key)
        }
    }
}

/// Parses a key file into a table. A later line with the same RID and index replaces an earlier
/// one.
///
/// # Errors
/// [`CaKeyError`] with the first bad line.
pub fn parse(text: &str) -> Result<CaKeyTable, CaKeyError> {
    let mut table = CaKeyTable::new();
    for (index, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let key = parse_line(content).map_err(|kind| CaKeyError {
            line: index + 1,
            kind,
        })?;
        table.insert(key);
    }
    Ok(table)
}
