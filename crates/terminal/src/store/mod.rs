//! `SecureStore`: the terminal's stand-in for a TEE. It owns the device's P-256 key pair, the
//! DUKPT originator state of each key set, and the device's configuration (server URL, device
//! and merchant ids, trusted release keys).
//!
//! Private keys never leave it: callers ask it to sign ([`SecureStore::sign`]), to run the key
//! agreement of a key injection ([`SecureStore::begin_key_injection`],
//! [`SecureStore::finish_key_injection`]) and to hand out the working keys of the next
//! transaction ([`SecureStore::next_transaction_keys`]), which advances and persists the DUKPT
//! counter before it returns.
//!
//! Backends: a file encrypted at rest (AES-256-GCM; the key is stretched from a passphrase with
//! Argon2id, or given as a raw 32-byte store key, see [`StoreKey`] and [`sealed`]) and written
//! atomically (temporary file, fsync, rename, fsync of the folder); or memory only, for tests.
//!
//! # Security
//! Key material is zeroized when dropped: the signing key (p256 zeroizes its scalar), the
//! DUKPT states and every plaintext buffer of the file. `Debug` shows no secret.

pub mod sealed;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine;
use payment_crypto::kcv::{self, KcvMethod};
use payment_crypto::tr31;
use payment_crypto::{KeyAlgorithm, SecretKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::{Zeroize, Zeroizing};

use crate::dukpt::{self, DukptError, DukptScheme, TransactionKeys};
use sealed::SealingKey;
pub use sealed::{KdfParams, StoreKey};

/// HKDF salt of the key-injection KEK (the server's `RKI_SALT`).
pub const RKI_SALT: &[u8] = b"SUNBAY-SOFTPOS-RKI-KEK-V1";

/// Random bytes from the operating system.
pub(crate) fn random_array<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
}

/// A store failure. Codes are stable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be read or written.
    #[error("store file I/O failed: {0}")]
    Io(String),
    /// `create` found a store already there.
    #[error("a store already exists at this path")]
    Exists,
    /// No store at this path.
    #[error("no store at this path")]
    NotFound,
    /// The key (passphrase or store key) does not open this store.
    #[error("wrong passphrase or store key")]
    WrongKey,
    /// A passphrase was given for a store sealed under a raw key, or the other way round.
    #[error("this store is sealed with the other kind of key (passphrase or raw store key)")]
    WrongKeyKind,
    /// The file's integrity check failed: it was damaged or tampered with.
    #[error("the store file is damaged or was tampered with")]
    Tampered,
    /// The file is not a store this version can read.
    #[error("unreadable store file ({0})")]
    Format(&'static str),
    /// A store key given as text is not 64 hex digits.
    #[error("the store key must be 64 hex digits")]
    KeyMalformed,
    /// No active key set: inject keys first.
    #[error("no active key set; run the key injection first")]
    NoActiveKeySet,
    /// No key injection was started, or its ephemeral key was already used.
    #[error("no key injection in progress")]
    NoInjectionInProgress,
    /// The server's key-injection answer does not fit (bad public key, key usage, key id).
    #[error("the key injection answer is invalid ({0})")]
    InjectionInvalid(&'static str),
    /// The TR-31 key block did not unwrap under the agreed KEK.
    #[error("the key block does not unwrap ({0})")]
    KeyBlock(&'static str),
    /// The KCV of the unwrapped key differs from the server's.
    #[error("the KCV of the unwrapped key does not match the server's")]
    KcvMismatch,
    /// No key set with this id.
    #[error("unknown key set")]
    UnknownKeySet,
    /// A DUKPT failure.
    #[error(transparent)]
    Dukpt(#[from] DukptError),
}

impl StoreError {
    fn io(error: std::io::Error) -> Self {
        Self::Io(error.kind().to_string())
    }

    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io(_) => "store_io",
            Self::Exists => "store_exists",
            Self::NotFound => "store_not_found",
            Self::WrongKey => "store_wrong_key",
            Self::WrongKeyKind => "store_wrong_key_kind",
            Self::Tampered => "store_tampered",
            Self::Format(_) => "store_format",
            Self::KeyMalformed => "store_key_malformed",
            Self::NoActiveKeySet => "no_active_key_set",
            Self::NoInjectionInProgress => "no_injection_in_progress",
            Self::InjectionInvalid(_) => "key_injection_invalid",
            Self::KeyBlock(_) => "key_block_invalid",
            Self::KcvMismatch => "kcv_mismatch",
            Self::UnknownKeySet => "unknown_key_set",
            Self::Dukpt(inner) => inner.code(),
        }
    }
}

/// The device's configuration: nothing secret, but kept in the sealed store so it cannot be
/// swapped under the terminal (the server URL and the trusted release keys decide whom it
/// trusts).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceConfig {
    /// Back-end base URL, e.g. `http://127.0.0.1:8080`.
    pub server_url: Option<String>,
    /// The id the server gave at registration.
    pub device_id: Option<Uuid>,
    /// The merchant the device belongs to.
    pub merchant_id: Option<Uuid>,
    /// Trusted release public keys (`id=key` entries, see `release_manifest::KeyRing::parse`).
    pub trusted_release_keys: Option<String>,
    /// Where verified kernels are kept (current and previous).
    pub kernel_dir: Option<PathBuf>,
    /// Mode registered with: `softpos` or `pinpad`.
    pub mode: Option<String>,
    /// When the device key was attested (registration).
    pub attested_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Whether a key set is waiting for the server's confirmation or in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySetStatus {
    /// Unwrapped and checked, not yet confirmed by the server.
    Pending,
    /// Confirmed: transactions use it.
    Active,
}

/// What may be shown about a key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeySetInfo {
    /// Key set id (the server's).
    pub id: Uuid,
    /// Per-device version.
    pub version: i64,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// Pending or active.
    pub status: KeySetStatus,
    /// AES: the initial key id; TDES: the initial KSN (hex).
    pub initial_key_id: String,
    /// KCV of the initial key (hex).
    pub kcv: String,
    /// Counter of the next transaction; `None` once exhausted.
    pub next_counter: Option<u32>,
    /// Rotate once the counter passes this (from the server's key status).
    pub rotate_after: Option<u32>,
}

mod hex_secret {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::{Zeroize, Zeroizing};

    pub(super) fn serialize<S: Serializer>(
        bytes: &Zeroizing<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(hex::encode(bytes.as_slice()));
        s.serialize_str(&text)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        let mut text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom);
        text.zeroize();
        bytes.map(Zeroizing::new)
    }
}

#[derive(Serialize, Deserialize)]
struct KeySetRecord {
    id: Uuid,
    version: i64,
    scheme: DukptScheme,
    status: KeySetStatus,
    initial_key_id: String,
    kcv: String,
    #[serde(with = "hex_secret")]
    originator: Zeroizing<Vec<u8>>,
    #[serde(default)]
    rotate_after: Option<u32>,
}

impl KeySetRecord {
    fn info(&self) -> KeySetInfo {
        KeySetInfo {
            id: self.id,
            version: self.version,
            scheme: self.scheme,
            status: self.status,
            initial_key_id: self.initial_key_id.clone(),
            kcv: self.kcv.clone(),
            next_counter: dukpt::next_counter(self.scheme, &self.originator).unwrap_or(None),
            rotate_after: self.rotate_after,
        }
    }
}

const DATA_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StoreData {
    format: u32,
    #[serde(with = "hex_secret")]
    device_key: Zeroizing<Vec<u8>>,
    config: DeviceConfig,
    key_sets: Vec<KeySetRecord>,
}

enum Backend {
    Memory,
    File { path: PathBuf, key: SealingKey },
}

struct Inner {
    data: StoreData,
    signing: p256::ecdsa::SigningKey,
    /// The same key in ring, which signs several times faster than `p256` (a signature per
    /// back-end request; the fleet simulator spent a fifth of its CPU there).
    fast_signing: ring::signature::EcdsaKeyPair,
    backend: Backend,
    ephemeral: Option<p256::SecretKey>,
}

/// The secure store (see the module doc). Cheap to share behind an `Arc`; every method takes
/// `&self` and serialises access internally.
pub struct SecureStore {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SecureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        let backend = match &inner.backend {
            Backend::Memory => "memory".to_owned(),
            Backend::File { path, .. } => path.display().to_string(),
        };
        f.debug_struct("SecureStore")
            .field("backend", &backend)
            .field("device_id", &inner.data.config.device_id)
            .finish_non_exhaustive()
    }
}

fn new_signing_key() -> p256::ecdsa::SigningKey {
    loop {
        let bytes = Zeroizing::new(random_array::<32>());
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(bytes.as_slice()) {
            return key;
        }
    }
}

fn ring_signing_key(
    signing: &p256::ecdsa::SigningKey,
) -> Result<ring::signature::EcdsaKeyPair, StoreError> {
    let public = signing.verifying_key().to_sec1_point(false);
    ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        signing.to_bytes().as_slice(),
        public.as_bytes(),
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|_| StoreError::Format("device key"))
}

fn new_p256_secret() -> p256::SecretKey {
    loop {
        let bytes = Zeroizing::new(random_array::<32>());
        if let Ok(key) = p256::SecretKey::from_slice(bytes.as_slice()) {
            return key;
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file: a temporary
/// file in the same folder, flushed to disk, renamed over the target, then the folder synced.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(random_array::<6>())));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // The rename is durable only once the folder entry is on disk.
    if let Ok(dir) = std::fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

impl SecureStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn from_parts(data: StoreData, backend: Backend) -> Result<Self, StoreError> {
        let signing = p256::ecdsa::SigningKey::from_slice(&data.device_key)
            .map_err(|_| StoreError::Format("device key"))?;
        let fast_signing = ring_signing_key(&signing)?;
        Ok(Self {
            inner: Mutex::new(Inner {
                data,
                signing,
                fast_signing,
                backend,
                ephemeral: None,
            }),
        })
    }

    fn fresh_data(config: DeviceConfig) -> (StoreData, p256::ecdsa::SigningKey) {
        let signing = new_signing_key();
        let data = StoreData {
            format: DATA_FORMAT,
            device_key: Zeroizing::new(signing.to_bytes().to_vec()),
            config,
            key_sets: Vec::new(),
        };
        (data, signing)
    }

    /// A store in memory only, with a fresh device key (tests, simulated terminals).
    #[must_use]
    pub fn in_memory(config: DeviceConfig) -> Self {
        let (data, signing) = Self::fresh_data(config);
        let fast_signing =
            ring_signing_key(&signing).expect("ring accepts a P-256 key p256 generated");
        Self {
            inner: Mutex::new(Inner {
                data,
                signing,
                fast_signing,
                backend: Backend::Memory,
                ephemeral: None,
            }),
        }
    }

    /// Creates a new store file at `path` with a fresh device key.
    ///
    /// # Errors
    /// `store_exists`, `store_io`.
    pub fn create(path: &Path, key: &StoreKey, config: DeviceConfig) -> Result<Self, StoreError> {
        if path.exists() {
            return Err(StoreError::Exists);
        }
        let sealing = SealingKey::create(key)?;
        let (data, _) = Self::fresh_data(config);
        let store = Self::from_parts(
            data,
            Backend::File {
                path: path.to_path_buf(),
                key: sealing,
            },
        )?;
        Self::persist(&store.lock())?;
        Ok(store)
    }

    /// Opens an existing store file.
    ///
    /// # Errors
    /// `store_not_found`, `store_io`, `store_wrong_key`, `store_wrong_key_kind`,
    /// `store_tampered`, `store_format`.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        let image = match std::fs::read(path) {
            Ok(image) => image,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound);
            }
            Err(error) => return Err(StoreError::io(error)),
        };
        let (plain, sealing) = SealingKey::open(&image, key)?;
        let data: StoreData =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Format("store contents"))?;
        if data.format != DATA_FORMAT {
            return Err(StoreError::Format("unknown store contents version"));
        }
        Self::from_parts(
            data,
            Backend::File {
                path: path.to_path_buf(),
                key: sealing,
            },
        )
    }

    fn persist(inner: &Inner) -> Result<(), StoreError> {
        let Backend::File { path, key } = &inner.backend else {
            return Ok(());
        };
        let plain = Zeroizing::new(
            serde_json::to_vec(&inner.data).map_err(|_| StoreError::Format("serialise"))?,
        );
        let image = key.seal(&plain);
        write_atomic(path, &image).map_err(StoreError::io)
    }

    /// The file backing this store, if any.
    #[must_use]
    pub fn path(&self) -> Option<PathBuf> {
        match &self.lock().backend {
            Backend::Memory => None,
            Backend::File { path, .. } => Some(path.clone()),
        }
    }

    /// The device public key, SEC1 uncompressed.
    #[must_use]
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.lock().signing.verifying_key().to_sec1_bytes().to_vec()
    }

    /// The device public key as the server wants it: SEC1 uncompressed, base64.
    #[must_use]
    pub fn public_key_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.public_key_sec1())
    }

    /// SHA-256 of the SEC1 uncompressed public key, hex (the server's `key_fingerprint`).
    #[must_use]
    pub fn key_fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.public_key_sec1()))
    }

    /// ECDSA P-256 / SHA-256 signature of `message` with the device key, DER.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.lock()
            .fast_signing
            .sign(&ring::rand::SystemRandom::new(), message)
            .map(|signature| signature.as_ref().to_vec())
            .expect("the system random source works")
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> DeviceConfig {
        self.lock().data.config.clone()
    }

    /// Changes the configuration and persists it.
    ///
    /// # Errors
    /// `store_io`.
    pub fn update_config(&self, change: impl FnOnce(&mut DeviceConfig)) -> Result<(), StoreError> {
        let mut inner = self.lock();
        change(&mut inner.data.config);
        Self::persist(&inner)
    }

    /// Draws an ephemeral P-256 key pair for a key injection and returns its public key, SEC1
    /// uncompressed. The private half stays here until [`SecureStore::finish_key_injection`].
    #[must_use]
    pub fn begin_key_injection(&self) -> Vec<u8> {
        let secret = new_p256_secret();
        let public = secret.public_key().to_sec1_bytes().to_vec();
        self.lock().ephemeral = Some(secret);
        public
    }

    /// Completes a key injection: ECDH with the server's ephemeral key, HKDF-SHA256 to the
    /// AES-256 KEK (the server's derivation, see `service::keys::injection`), TR-31 unwrap, KCV
    /// check against the server's, then loads the DUKPT originator. The key set is stored as
    /// pending (persisted) until [`SecureStore::activate_key_set`]. Returns the KCV the device
    /// computed, to confirm with.
    ///
    /// # Errors
    /// `no_injection_in_progress`, `key_injection_invalid`, `key_block_invalid`,
    /// `kcv_mismatch`, DUKPT errors, `store_io`.
    pub fn finish_key_injection(
        &self,
        package: &InjectionPackage<'_>,
    ) -> Result<String, StoreError> {
        let mut inner = self.lock();
        let ephemeral = inner
            .ephemeral
            .take()
            .ok_or(StoreError::NoInjectionInProgress)?;
        let server_public = p256::PublicKey::from_sec1_bytes(package.server_public_key)
            .map_err(|_| StoreError::InjectionInvalid("server public key"))?;
        let shared =
            p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), server_public.as_affine());
        let mut info = format!(
            "softpos-rki-v1|{}|{}|",
            package.device_id, package.key_set_id
        )
        .into_bytes();
        info.extend_from_slice(&server_public.to_sec1_bytes());
        info.extend_from_slice(&ephemeral.public_key().to_sec1_bytes());
        let mut okm = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(Some(RKI_SALT), shared.raw_secret_bytes().as_slice())
            .expand(&info, okm.as_mut_slice())
            .map_err(|_| StoreError::InjectionInvalid("kek length"))?;
        let kek =
            SecretKey::aes(okm.as_slice()).map_err(|_| StoreError::InjectionInvalid("kek"))?;
        let (header, initial_key) = tr31::unwrap(&kek, package.key_block.trim())
            .map_err(|e| StoreError::KeyBlock(payment_crypto::ErrorCode::code(&e)))?;
        if header.key_usage != tr31::KeyUsage::InitialDukptKey {
            return Err(StoreError::InjectionInvalid("key usage is not B1"));
        }
        let scheme_fits = match package.scheme {
            DukptScheme::Aes128 => !initial_key.algorithm().is_tdes(),
            DukptScheme::Tdes => initial_key.algorithm() == KeyAlgorithm::Tdes2,
        };
        if !scheme_fits {
            return Err(StoreError::InjectionInvalid(
                "key algorithm does not fit the scheme",
            ));
        }
        // The key block names the initial key id (AES, `IK`) or initial KSN (TDES, `KS`); it
        // must be the one the answer announced.
        let expected_id = hex::encode_upper(package.initial_key_id);
        let named = header
            .optional_blocks
            .iter()
            .find(|block| matches!(&block.id(), b"IK" | b"KS"))
            .map(|block| block.data().to_ascii_uppercase());
        if named
            .as_deref()
            .is_some_and(|named| named != expected_id.as_bytes())
        {
            return Err(StoreError::InjectionInvalid(
                "initial key id differs from the key block's",
            ));
        }
        let method = if initial_key.algorithm().is_tdes() {
            KcvMethod::EncryptZeros
        } else {
            KcvMethod::Cmac
        };
        let computed = kcv::kcv(&initial_key, method);
        let expected: kcv::Kcv = package
            .kcv
            .trim()
            .parse()
            .map_err(|_| StoreError::InjectionInvalid("kcv"))?;
        if !computed.ct_eq(&expected) {
            return Err(StoreError::KcvMismatch);
        }
        let originator =
            dukpt::load_initial_key(package.scheme, &initial_key, package.initial_key_id)?;
        inner
            .data
            .key_sets
            .retain(|set| set.status != KeySetStatus::Pending);
        inner.data.key_sets.push(KeySetRecord {
            id: package.key_set_id,
            version: package.version,
            scheme: package.scheme,
            status: KeySetStatus::Pending,
            initial_key_id: expected_id,
            kcv: computed.to_string(),
            originator,
            rotate_after: None,
        });
        Self::persist(&inner)?;
        Ok(computed.to_string())
    }

    /// Makes a pending key set the active one (after the server confirmed its KCV); the
    /// previous key set is destroyed.
    ///
    /// # Errors
    /// `unknown_key_set`, `store_io`.
    pub fn activate_key_set(&self, key_set_id: Uuid) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if !inner.data.key_sets.iter().any(|set| set.id == key_set_id) {
            return Err(StoreError::UnknownKeySet);
        }
        inner.data.key_sets.retain(|set| set.id == key_set_id);
        for set in &mut inner.data.key_sets {
            set.status = KeySetStatus::Active;
        }
        Self::persist(&inner)
    }

    /// Records the server's rotation threshold for the active key set.
    ///
    /// # Errors
    /// `no_active_key_set`, `store_io`.
    pub fn set_rotate_after(&self, rotate_after: Option<u32>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let set = inner
            .data
            .key_sets
            .iter_mut()
            .find(|set| set.status == KeySetStatus::Active)
            .ok_or(StoreError::NoActiveKeySet)?;
        set.rotate_after = rotate_after;
        Self::persist(&inner)
    }

    /// The key sets held (pending and active).
    #[must_use]
    pub fn key_sets(&self) -> Vec<KeySetInfo> {
        self.lock()
            .data
            .key_sets
            .iter()
            .map(KeySetRecord::info)
            .collect()
    }

    /// The active key set, if any.
    #[must_use]
    pub fn active_key_set(&self) -> Option<KeySetInfo> {
        self.key_sets()
            .into_iter()
            .find(|set| set.status == KeySetStatus::Active)
    }

    /// The keys of the next transaction. The DUKPT counter is advanced and the new state
    /// written to disk (atomically) *before* this returns; if writing fails, no key is
    /// returned. A crash after this call therefore costs one KSN and never reuses one.
    ///
    /// # Errors
    /// `no_active_key_set`, `dukpt_exhausted`, `dukpt_state_damaged`, `store_io`.
    pub fn next_transaction_keys(&self) -> Result<TransactionKeys, StoreError> {
        let mut inner = self.lock();
        let set = inner
            .data
            .key_sets
            .iter_mut()
            .find(|set| set.status == KeySetStatus::Active)
            .ok_or(StoreError::NoActiveKeySet)?;
        let (keys, next) =
            dukpt::next_transaction(set.id, set.scheme, &set.originator, set.rotate_after)?;
        set.originator = next;
        Self::persist(&inner)?;
        Ok(keys)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.data.device_key.zeroize();
    }
}

/// The server's answer to a key request, as [`SecureStore::finish_key_injection`] needs it.
#[derive(Debug, Clone)]
pub struct InjectionPackage<'a> {
    /// This device's id.
    pub device_id: Uuid,
    /// The new key set.
    pub key_set_id: Uuid,
    /// Its version.
    pub version: i64,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// The server's ephemeral public key, SEC1.
    pub server_public_key: &'a [u8],
    /// The TR-31 version D key block.
    pub key_block: &'a str,
    /// The server's KCV of the initial key (hex).
    pub kcv: &'a str,
    /// AES: initial key id (8 bytes); TDES: initial KSN (10 bytes).
    pub initial_key_id: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(passphrase: &str) -> StoreKey {
        StoreKey::Passphrase {
            passphrase: Zeroizing::new(passphrase.to_owned()),
            params: KdfParams::INSECURE_FAST,
        }
    }

    #[test]
    fn round_trip_and_typed_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.bin");
        let config = DeviceConfig {
            server_url: Some("http://127.0.0.1:1".to_owned()),
            ..DeviceConfig::default()
        };
        let store = SecureStore::create(&path, &fast("correct horse"), config.clone()).unwrap();
        let public = store.public_key_sec1();
        drop(store);
        assert_eq!(
            SecureStore::create(&path, &fast("x"), config.clone())
                .unwrap_err()
                .code(),
            "store_exists"
        );

        let reopened = SecureStore::open(&path, &fast("correct horse")).unwrap();
        assert_eq!(reopened.public_key_sec1(), public);
        assert_eq!(reopened.config(), config);

        let wrong = SecureStore::open(&path, &fast("wrong horse")).unwrap_err();
        assert_eq!(wrong.code(), "store_wrong_key");
        let kind = SecureStore::open(&path, &StoreKey::random()).unwrap_err();
        assert_eq!(kind.code(), "store_wrong_key_kind");

        let mut image = std::fs::read(&path).unwrap();
        let last = image.len() - 20;
        image[last] ^= 0x01;
        std::fs::write(&path, &image).unwrap();
        assert_eq!(
            SecureStore::open(&path, &fast("correct horse"))
                .unwrap_err()
                .code(),
            "store_tampered"
        );
        assert_eq!(
            SecureStore::open(&dir.path().join("none"), &fast("x"))
                .unwrap_err()
                .code(),
            "store_not_found"
        );
    }

    #[test]
    fn nothing_secret_is_in_clear_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.bin");
        let key = StoreKey::random();
        let store = SecureStore::create(&path, &key, DeviceConfig::default()).unwrap();
        store
            .update_config(|c| c.server_url = Some("http://visible.example".to_owned()))
            .unwrap();
        let secret = store.lock().data.device_key.to_vec();
        let image = std::fs::read(&path).unwrap();
        assert!(!image.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert!(!image.windows(7).any(|w| w == b"visible"));
        let reopened = SecureStore::open(&path, &key).unwrap();
        assert_eq!(
            reopened.config().server_url.as_deref(),
            Some("http://visible.example")
        );
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        use p256::ecdsa::signature::Verifier;
        let store = SecureStore::in_memory(DeviceConfig::default());
        let der = store.sign(b"message");
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&store.public_key_sec1()).unwrap();
        assert!(public.verify(b"message", &signature).is_ok());
        assert!(public.verify(b"other", &signature).is_err());
        assert_eq!(store.key_fingerprint().len(), 64);
    }

    #[test]
    fn no_keys_before_injection() {
        let store = SecureStore::in_memory(DeviceConfig::default());
        assert_eq!(
            store.next_transaction_keys().unwrap_err().code(),
            "no_active_key_set"
        );
        let package = InjectionPackage {
            device_id: Uuid::nil(),
            key_set_id: Uuid::nil(),
            version: 1,
            scheme: DukptScheme::Aes128,
            server_public_key: &[],
            key_block: "",
            kcv: "00",
            initial_key_id: &[],
        };
        assert_eq!(
            store.finish_key_injection(&package).unwrap_err().code(),
            "no_injection_in_progress"
        );
    }
}
