//! The store file at rest: a fixed header, then the store's JSON sealed with AES-256-GCM.
//!
//! Layout (all integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `SPTSTORE` |
//! | 1 | format version, 1 |
//! | 1 | key source: 0 = a raw 32-byte store key, 1 = Argon2id over a passphrase |
//! | 4, 4, 4 | Argon2id memory (KiB), iterations, lanes (zero for a raw key) |
//! | 16 | Argon2id salt (random; zero for a raw key) |
//! | 16 | key check: the first 16 bytes of SHA-256(`softpos-store-key-check-v1` ‖ key) |
//! | 12 | GCM nonce, fresh for every write |
//! | rest | ciphertext and 16-byte tag; the whole header is the associated data |
//!
//! The key check tells a wrong passphrase (`store_wrong_key`) from a damaged or tampered file
//! (`store_tampered`); it reveals nothing useful, being a hash of a 256-bit key. A tampered
//! header either changes the derived key (wrong key) or fails the tag (tampered).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{StoreError, random_array};

const MAGIC: &[u8; 8] = b"SPTSTORE";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8 + 1 + 1 + 12 + 16 + 16 + 12;
/// Largest Argon2id memory cost accepted from a file (1 GiB), so a crafted header cannot make
/// opening exhaust memory.
const MAX_MEMORY_KIB: u32 = 1 << 20;
const MAX_ITERATIONS: u32 = 64;
const MAX_LANES: u32 = 16;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub lanes: u32,
}

impl KdfParams {
    /// The default: 19 MiB, 2 iterations, 1 lane (OWASP's Argon2id baseline).
    pub const DEFAULT: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        lanes: 1,
    };

    /// Cheap parameters for tests and fleets of simulated terminals (never for a real device).
    pub const INSECURE_FAST: Self = Self {
        memory_kib: 64,
        iterations: 1,
        lanes: 1,
    };
}

/// Where the store key comes from.
pub enum StoreKey {
    /// A passphrase stretched with Argon2id.
    Passphrase {
        /// The passphrase.
        passphrase: Zeroizing<String>,
        /// Cost used when a new file is created (an existing file says its own).
        params: KdfParams,
    },
    /// A random 32-byte key kept elsewhere (an environment variable or a key file).
    Raw(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase { params, .. } => f
                .debug_struct("StoreKey::Passphrase")
                .field("params", params)
                .finish_non_exhaustive(),
            Self::Raw(_) => f.write_str("StoreKey::Raw(<redacted>)"),
        }
    }
}

impl StoreKey {
    /// A passphrase with the default Argon2id cost.
    pub fn passphrase(passphrase: impl Into<String>) -> Self {
        Self::Passphrase {
            passphrase: Zeroizing::new(passphrase.into()),
            params: KdfParams::DEFAULT,
        }
    }

    /// A raw key from 64 hex digits.
    ///
    /// # Errors
    /// `store_key_malformed`.
    pub fn from_hex(text: &str) -> Result<Self, StoreError> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| StoreError::KeyMalformed)?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::KeyMalformed)?;
        Ok(Self::Raw(Zeroizing::new(key)))
    }

    /// A fresh random raw key (for simulated terminals).
    pub fn random() -> Self {
        Self::Raw(Zeroizing::new(random_array::<32>()))
    }

    /// The key from the environment: `SOFTPOS_STORE_KEY` (64 hex digits), else
    /// `SOFTPOS_STORE_KEY_FILE` (a file holding 64 hex digits), else `SOFTPOS_STORE_PASSPHRASE`.
    /// `None` when none is set.
    ///
    /// # Errors
    /// `store_key_malformed`, `store_io` (key file unreadable).
    pub fn from_env() -> Result<Option<Self>, StoreError> {
        if let Ok(hex_key) = std::env::var("SOFTPOS_STORE_KEY") {
            return Self::from_hex(&hex_key).map(Some);
        }
        if let Ok(path) = std::env::var("SOFTPOS_STORE_KEY_FILE") {
            let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(StoreError::io)?);
            return Self::from_hex(&text).map(Some);
        }
        if let Ok(passphrase) = std::env::var("SOFTPOS_STORE_PASSPHRASE") {
            return Ok(Some(Self::passphrase(passphrase)));
        }
        Ok(None)
    }
}

/// A derived key and the header it belongs to, kept while the store is open so each write
/// needs no new key derivation.
pub(super) struct SealingKey {
    key: Zeroizing<[u8; 32]>,
    source: u8,
    params: KdfParams,
    salt: [u8; 16],
}

fn key_check(key: &[u8; 32]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"softpos-store-key-check-v1")
        .chain_update(key)
        .finalize();
    let mut check = [0u8; 16];
    check.copy_from_slice(&digest[..16]);
    check
}

fn argon2id(
    passphrase: &str,
    salt: &[u8; 16],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let argon_params =
        argon2::Params::new(params.memory_kib, params.iterations, params.lanes, Some(32))
            .map_err(|_| StoreError::Format("argon2 parameters"))?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon_params,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut_slice())
        .map_err(|_| StoreError::Format("argon2 parameters"))?;
    Ok(key)
}

impl SealingKey {
    /// A key for a new file.
    pub(super) fn create(key: &StoreKey) -> Result<Self, StoreError> {
        match key {
            StoreKey::Raw(raw) => Ok(Self {
                key: raw.clone(),
                source: 0,
                params: KdfParams {
                    memory_kib: 0,
                    iterations: 0,
                    lanes: 0,
                },
                salt: [0; 16],
            }),
            StoreKey::Passphrase { passphrase, params } => {
                let salt = random_array::<16>();
                Ok(Self {
                    key: argon2id(passphrase, &salt, *params)?,
                    source: 1,
                    params: *params,
                    salt,
                })
            }
        }
    }

    fn header(&self, nonce: &[u8; 12]) -> [u8; HEADER_LEN] {
        let mut header = [0u8; HEADER_LEN];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            header[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(MAGIC);
        put(&[VERSION, self.source]);
        put(&self.params.memory_kib.to_be_bytes());
        put(&self.params.iterations.to_be_bytes());
        put(&self.params.lanes.to_be_bytes());
        put(&self.salt);
        put(&key_check(&self.key));
        put(nonce);
        header
    }

    /// Seals `plain` into a complete file image with a fresh nonce.
    pub(super) fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce = random_array::<12>();
        let header = self.header(&nonce);
        let cipher = Aes256Gcm::new_from_slice(self.key.as_slice()).expect("32-byte key");
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &header,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a file image with `key`; returns the plaintext and the key to write it back with.
    pub(super) fn open(
        image: &[u8],
        key: &StoreKey,
    ) -> Result<(Zeroizing<Vec<u8>>, Self), StoreError> {
        if image.len() < HEADER_LEN + 16 || &image[..8] != MAGIC {
            return Err(StoreError::Format("not a terminal store file"));
        }
        let (header, sealed) = image.split_at(HEADER_LEN);
        if header[8] != VERSION {
            return Err(StoreError::Format("unknown store format version"));
        }
        let source = header[9];
        let word = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let params = KdfParams {
            memory_kib: word(10),
            iterations: word(14),
            lanes: word(18),
        };
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&header[22..38]);
        let mut check = [0u8; 16];
        check.copy_from_slice(&header[38..54]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&header[54..66]);
        let derived = match (source, key) {
            (0, StoreKey::Raw(raw)) => raw.clone(),
            (1, StoreKey::Passphrase { passphrase, .. }) => {
                if params.memory_kib > MAX_MEMORY_KIB
                    || params.iterations > MAX_ITERATIONS
                    || params.lanes > MAX_LANES
                {
                    return Err(StoreError::Format("argon2 parameters out of range"));
                }
                argon2id(passphrase, &salt, params)?
            }
            (0 | 1, _) => return Err(StoreError::WrongKeyKind),
            _ => return Err(StoreError::Format("unknown key source")),
        };
        if !ct_eq16(&key_check(&derived), &check) {
            return Err(StoreError::WrongKey);
        }
        let cipher = Aes256Gcm::new_from_slice(derived.as_slice()).expect("32-byte key");
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: header,
                },
            )
            .map_err(|_| StoreError::Tampered)?;
        Ok((
            Zeroizing::new(plain),
            Self {
                key: derived,
                source,
                params,
                salt,
            },
        ))
    }
}

/// Compares two 16-byte values without an early exit.
fn ct_eq16(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
