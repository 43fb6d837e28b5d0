//! Release manifests for the artifacts SUNBAY distributes (kernel `.wasm` files and terminal
//! software): the [`Manifest`] type, its one canonical byte encoding, and Ed25519 signing and
//! verification. `softpos-server` (which verifies uploads) and `softpos-keytool` (which signs
//! them) both use this crate, so the bytes signed are defined in exactly one place.
//!
//! # The bytes signed
//!
//! [`Manifest::canonical_bytes`] is UTF-8 text, one `field:value` line per field in this fixed
//! order, each line ending in `\n` (no trailing spaces, no `\r`):
//!
//! ```text
//! softpos-release-manifest-v1
//! kind:kernel
//! name:sunbay-emv-kernel
//! version:1.2.0
//! abi_version:1
//! schemes:mastercard,visa
//! aids:A0000000031010,A0000000041010
//! sha256:<64 lowercase hex digits of SHA-256 of the artifact>
//! size:<artifact length in bytes, decimal>
//! created_at:<Unix seconds, decimal>
//! ```
//!
//! `abi_version` is `-` for terminal software. `schemes` and `aids` are sorted (byte order)
//! and comma-joined, empty when there are none. Every field is validated to a character set
//! without `\n`, `:` ambiguity or `,` inside list items before it is encoded, so the encoding
//! is injective: two different valid manifests never produce the same bytes. The signature is
//! plain Ed25519 (RFC 8032, section 5.1) over these bytes, verified with the strict check
//! (`verify_strict`: no small-order keys, canonical `S`).
//!
//! Deliberately not here: I/O, clocks, key storage. Keys come in as bytes or text.
//!
//! Security note: a [`SigningKey`] zeroizes its seed on drop (ed25519-dalek's `zeroize`).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

pub use ed25519_dalek;
pub use semver;

/// First line of the canonical encoding: the format and its version.
pub const DOMAIN_LINE: &str = "softpos-release-manifest-v1";
/// Longest artifact name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest version string, in bytes.
pub const MAX_VERSION_LEN: usize = 64;
/// Most schemes or AIDs in one manifest.
pub const MAX_LIST_LEN: usize = 32;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// An EMV kernel `.wasm` (ABI of `crates/emv-kernel-wasm/ABI.md`).
    Kernel,
    /// A terminal application build.
    Terminal,
}

impl ArtifactKind {
    /// `kernel` or `terminal`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Terminal => "terminal",
        }
    }
}

/// Why a manifest, key or signature was refused. `code()` is stable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// The name is empty, too long, path-like or uses characters outside `[a-z0-9._-]`.
    NameInvalid,
    /// Not a semantic version (semver.org 2.0.0), or too long.
    VersionInvalid,
    /// A kernel without an ABI version, or terminal software with one.
    AbiVersionMissing,
    /// A scheme name outside `[a-z0-9_]{1,32}`, a duplicate, or too many.
    SchemeInvalid,
    /// An AID that is not 5-16 bytes of uppercase hex, a duplicate, or too many.
    AidInvalid,
    /// `sha256` is not 64 lowercase hex digits.
    DigestInvalid,
    /// `size` is zero.
    SizeInvalid,
    /// The artifact's SHA-256 or length differs from the manifest's.
    HashMismatch,
    /// No trusted key has this id.
    KeyUnknown,
    /// A key is not 32 bytes of hex or base64, or its id is malformed, or a small-order point.
    KeyMalformed,
    /// The signature is malformed or does not verify under the named key.
    SignatureInvalid,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    /// Human-readable explanation.
    #[must_use]
    pub const fn message(&self) -> &'static str {
        match self {
            Self::NameInvalid => {
                "release name must be 1-64 of a-z 0-9 . _ - , start with a letter or digit, and contain no '..'"
            }
            Self::VersionInvalid => {
                "release version must be a semantic version (e.g. 1.4.2), at most 64 characters"
            }
            Self::AbiVersionMissing => {
                "abi_version is required for kernels and not allowed for terminal software"
            }
            Self::SchemeInvalid => {
                "schemes must be 0-32 distinct names of 1-32 characters a-z 0-9 _"
            }
            Self::AidInvalid => "aids must be 0-32 distinct AIDs of 5-16 bytes in uppercase hex",
            Self::DigestInvalid => "sha256 must be 64 lowercase hex digits",
            Self::SizeInvalid => "size must be positive",
            Self::HashMismatch => "the artifact does not match the manifest's sha256 and size",
            Self::KeyUnknown => "no trusted release key has this key id",
            Self::KeyMalformed => "release key malformed",
            Self::SignatureInvalid => "release signature invalid",
        }
    }

    /// Stable machine-readable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NameInvalid => "release_name_invalid",
            Self::VersionInvalid => "release_version_invalid",
            Self::AbiVersionMissing => "abi_version_missing",
            Self::SchemeInvalid => "release_schemes_invalid",
            Self::AidInvalid => "release_aids_invalid",
            Self::DigestInvalid => "release_digest_invalid",
            Self::SizeInvalid => "release_size_invalid",
            Self::HashMismatch => "release_hash_mismatch",
            Self::KeyUnknown => "release_key_unknown",
            Self::KeyMalformed => "release_key_malformed",
            Self::SignatureInvalid => "release_signature_invalid",
        }
    }
}

/// What a release says about its artifact. Signed as [`Manifest::canonical_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Kernel or terminal software.
    pub kind: ArtifactKind,
    /// Artifact name, e.g. `sunbay-emv-kernel`.
    pub name: String,
    /// Semantic version, e.g. `1.2.0`.
    pub version: String,
    /// Kernel ABI version (kernels only).
    #[serde(default)]
    pub abi_version: Option<u32>,
    /// Payment schemes supported, e.g. `visa`, `mastercard`.
    #[serde(default)]
    pub schemes: Vec<String>,
    /// AIDs supported, uppercase hex.
    #[serde(default)]
    pub aids: Vec<String>,
    /// SHA-256 of the artifact, lowercase hex.
    pub sha256: String,
    /// Artifact length in bytes.
    pub size: u64,
    /// When the release was built, Unix seconds.
    pub created_at: i64,
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|&b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
        && !name.contains("..")
}

fn valid_list(items: &[String], item_ok: impl Fn(&str) -> bool) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    items.len() <= MAX_LIST_LEN && items.iter().all(|item| item_ok(item) && seen.insert(item))
}

/// Parses `text` as a semantic version (semver.org 2.0.0) within the length limit.
///
/// # Errors
/// [`ManifestError::VersionInvalid`].
pub fn parse_version(text: &str) -> Result<semver::Version, ManifestError> {
    if text.len() > MAX_VERSION_LEN {
        return Err(ManifestError::VersionInvalid);
    }
    semver::Version::parse(text).map_err(|_| ManifestError::VersionInvalid)
}

impl Manifest {
    /// Checks every field.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if !valid_name(&self.name) {
            return Err(ManifestError::NameInvalid);
        }
        parse_version(&self.version)?;
        match (self.kind, self.abi_version) {
            (ArtifactKind::Kernel, Some(_)) | (ArtifactKind::Terminal, None) => {}
            _ => return Err(ManifestError::AbiVersionMissing),
        }
        let scheme_ok = |s: &str| {
            (1..=32).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !valid_list(&self.schemes, scheme_ok) {
            return Err(ManifestError::SchemeInvalid);
        }
        let aid_ok = |s: &str| {
            (10..=32).contains(&s.len())
                && s.len().is_multiple_of(2)
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        };
        if !valid_list(&self.aids, aid_ok) {
            return Err(ManifestError::AidInvalid);
        }
        if self.sha256.len() != 64
            || !self
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ManifestError::DigestInvalid);
        }
        if self.size == 0 {
            return Err(ManifestError::SizeInvalid);
        }
        Ok(())
    }

    /// The semantic version (call [`Manifest::validate`] first).
    ///
    /// # Errors
    /// [`ManifestError::VersionInvalid`].
    pub fn semver(&self) -> Result<semver::Version, ManifestError> {
        parse_version(&self.version)
    }

    /// The exact bytes signed (see the crate documentation).
    ///
    /// # Errors
    /// Any validation problem: invalid manifests have no canonical form.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        let sorted = |items: &[String]| {
            let mut items: Vec<&str> = items.iter().map(String::as_str).collect();
            items.sort_unstable();
            items.join(",")
        };
        let abi = self
            .abi_version
            .map_or_else(|| "-".to_owned(), |abi| abi.to_string());
        let text = format!(
            "{DOMAIN_LINE}\nkind:{}\nname:{}\nversion:{}\nabi_version:{abi}\nschemes:{}\naids:{}\nsha256:{}\nsize:{}\ncreated_at:{}\n",
            self.kind.as_str(),
            self.name,
            self.version,
            sorted(&self.schemes),
            sorted(&self.aids),
            self.sha256,
            self.size,
            self.created_at,
        );
        Ok(text.into_bytes())
    }

    /// Checks that `artifact` is the file this manifest describes (length, then SHA-256).
    ///
    /// # Errors
    /// [`ManifestError::HashMismatch`].
    pub fn check_artifact(&self, artifact: &[u8]) -> Result<(), ManifestError> {
        let size_matches = u64::try_from(artifact.len()).is_ok_and(|len| len == self.size);
        if !size_matches || sha256_hex(artifact) != self.sha256 {
            return Err(ManifestError::HashMismatch);
        }
        Ok(())
    }

    /// Signs the canonical bytes; `key_id` names the key for verifiers.
    ///
    /// # Errors
    /// Validation problems.
    pub fn sign(&self, key_id: &str, key: &SigningKey) -> Result<SignedManifest, ManifestError> {
        if !valid_key_id(key_id) {
            return Err(ManifestError::KeyMalformed);
        }
        let signature = key.sign(&self.canonical_bytes()?);
        Ok(SignedManifest {
            manifest: self.clone(),
            key_id: key_id.to_owned(),
            signature: B64.encode(signature.to_bytes()),
        })
    }
}

/// SHA-256 of `bytes`, lowercase hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A manifest with the id of the key that signed it and the signature (base64, 64 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedManifest {
    /// The manifest.
    pub manifest: Manifest,
    /// Id of the release key, as configured on the server.
    pub key_id: String,
    /// Ed25519 signature over the canonical bytes, base64.
    pub signature: String,
}

impl SignedManifest {
    /// Validates the manifest and verifies its signature under the trusted key `key_id`.
    ///
    /// # Errors
    /// Validation problems, [`ManifestError::KeyUnknown`], [`ManifestError::SignatureInvalid`].
    pub fn verify(&self, keys: &KeyRing) -> Result<(), ManifestError> {
        let message = self.manifest.canonical_bytes()?;
        let key = keys.get(&self.key_id).ok_or(ManifestError::KeyUnknown)?;
        let bytes = B64
            .decode(self.signature.trim())
            .map_err(|_| ManifestError::SignatureInvalid)?;
        let bytes: [u8; 64] = bytes
            .try_into()
            .map_err(|_| ManifestError::SignatureInvalid)?;
        key.verify_strict(&message, &Signature::from_bytes(&bytes))
            .map_err(|_| ManifestError::SignatureInvalid)
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Decodes 32 bytes written as 64 hex digits or base64 (standard alphabet, padded).
fn decode_32(text: &str) -> Result<[u8; 32], ManifestError> {
    let text = text.trim();
    let bytes = if text.len() == 64 {
        hex::decode(text).map_err(|_| ManifestError::KeyMalformed)?
    } else {
        B64.decode(text).map_err(|_| ManifestError::KeyMalformed)?
    };
    bytes.try_into().map_err(|_| ManifestError::KeyMalformed)
}

/// Reads an Ed25519 signing key (its 32-byte seed as hex or base64).
///
/// # Errors
/// [`ManifestError::KeyMalformed`].
pub fn parse_signing_key(text: &str) -> Result<SigningKey, ManifestError> {
    let mut seed = decode_32(text)?;
    let key = SigningKey::from_bytes(&seed);
    seed.zeroize();
    Ok(key)
}

/// Reads an Ed25519 public key (32 bytes as hex or base64).
///
/// # Errors
/// [`ManifestError::KeyMalformed`], also for small-order (weak) points.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, ManifestError> {
    let key =
        VerifyingKey::from_bytes(&decode_32(text)?).map_err(|_| ManifestError::KeyMalformed)?;
    if key.is_weak() {
        return Err(ManifestError::KeyMalformed);
    }
    Ok(key)
}

/// The trusted release public keys, by id.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyRing {
    keys: BTreeMap<String, VerifyingKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Parses `id=key` entries separated by commas or newlines (blank lines and lines starting
    /// with `#` are skipped); keys are 32 bytes in hex or base64.
    ///
    /// # Errors
    /// [`ManifestError::KeyMalformed`] for a malformed entry or a repeated id.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let mut ring = Self::default();
        for entry in text.split([',', '\n']) {
            let entry = entry.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let (id, key) = entry.split_once('=').ok_or(ManifestError::KeyMalformed)?;
            // Base64 keys may end in `=`: the id is before the first one.
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(ManifestError::KeyMalformed);
            }
            let key = parse_public_key(key)?;
            if ring.keys.insert(id.to_owned(), key).is_some() {
                return Err(ManifestError::KeyMalformed);
            }
        }
        Ok(ring)
    }

    /// Adds a key.
    pub fn insert(&mut self, id: &str, key: VerifyingKey) {
        self.keys.insert(id.to_owned(), key);
    }

    /// The key with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.get(id)
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests;
