//! Key custody at rest: the master keyring, AES-256-GCM wrapping, and the [`KeyStore`].
//!
//! Every key the server keeps (BDKs, zone PIN keys, key-encryption keys, ceremony components,
//! device initial keys) is stored only as an AES-256-GCM ciphertext under a master key. The
//! associated data binds each ciphertext to what it is: the record id, its usage, its algorithm
//! and the master key version. A ciphertext copied onto another row, relabelled with another
//! usage or algorithm, or presented under another master version fails authentication.
//!
//! The master keyring comes from `SOFTPOS_MASTER_KEY` or `SOFTPOS_MASTER_KEY_FILE`: either one
//! 64-hex-digit key (version 1) or a comma/newline separated list of `version:hex` entries. The
//! highest version wraps everything new; older versions only unwrap. Rotation: add a new
//! version, restart, call the admin rotation endpoint (every wrapped value is re-wrapped under
//! the newest version in one transaction), then drop the old entry. Without either variable a
//! development key is generated into `<DATA_DIR>/master.key` (0600) and a warning is logged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{Context, bail};
use async_trait::async_trait;
use base64::Engine;
use payment_crypto::{KeyAlgorithm, SecretKey};
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult};
use crate::infra::keys::{random_bytes, write_private_file};

const NONCE_LEN: usize = 12;
const AAD_DOMAIN: &str = "softpos-keystore-v1";

/// What a wrapped value is; every field goes into the AES-GCM associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapLabel {
    /// The record it belongs to (e.g. `key:<uuid>`, `keyset:<uuid>`).
    pub id: String,
    /// Its usage (`bdk`, `zpk`, `kek`, `component`, `initial_key`).
    pub usage: String,
    /// Its algorithm name (`aes128`, `tdes2`, ...).
    pub algorithm: String,
}

impl WrapLabel {
    fn aad(&self, master_version: u32) -> Vec<u8> {
        format!(
            "{AAD_DOMAIN}\n{}\n{}\n{}\n{master_version}",
            self.id, self.usage, self.algorithm
        )
        .into_bytes()
    }
}

/// A wrapped value as stored: ciphertext (base64 of nonce ‖ ciphertext ‖ tag) and the master
/// key version that wrapped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// base64(nonce ‖ AES-256-GCM ciphertext ‖ tag).
    pub wrapped: String,
    /// Master key version.
    pub master_version: u32,
}

/// Stable name of a key algorithm, as stored and shown.
pub fn algorithm_name(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::Tdes2 => "tdes2",
        KeyAlgorithm::Tdes3 => "tdes3",
        KeyAlgorithm::Aes128 => "aes128",
        KeyAlgorithm::Aes192 => "aes192",
        // `KeyAlgorithm` is non-exhaustive; AES-256 is the last one it has today.
        _ => "aes256",
    }
}

/// Parses a stored algorithm name.
pub fn parse_algorithm(name: &str) -> Option<KeyAlgorithm> {
    Some(match name {
        "tdes2" => KeyAlgorithm::Tdes2,
        "tdes3" => KeyAlgorithm::Tdes3,
        "aes128" => KeyAlgorithm::Aes128,
        "aes192" => KeyAlgorithm::Aes192,
        "aes256" => KeyAlgorithm::Aes256,
        _ => return None,
    })
}

/// The master keys by version; the highest version wraps.
pub struct MasterKeyring {
    keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl fmt::Debug for MasterKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeyring")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl MasterKeyring {
    /// Parses `hex` (version 1) or `version:hex` entries separated by commas or newlines.
    ///
    /// # Errors
    /// Malformed entries, keys that are not 32 bytes, duplicate versions, no entry.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut keys = BTreeMap::new();
        for entry in text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (version, hex_key) = match entry.split_once(':') {
                Some((version, key)) => (
                    version
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|v| *v > 0)
                        .context("master key version must be a positive integer")?,
                    key.trim(),
                ),
                None => (1, entry),
            };
            let bytes =
                Zeroizing::new(hex::decode(hex_key).context("master key must be 64 hex digits")?);
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .ok()
                .context("master key must be 32 bytes (64 hex digits)")?;
            if keys.insert(version, Zeroizing::new(key)).is_some() {
                bail!("master key version {version} is listed twice");
            }
        }
        if keys.is_empty() {
            bail!("no master key given");
        }
        Ok(Self { keys })
    }

    /// The configured keyring, or the development key in the data folder (created if missing,
    /// with a warning).
    ///
    /// # Errors
    /// Invalid configuration, unreadable or unwritable key file.
    pub fn load(
        configured: Option<&str>,
        file: Option<&Path>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        if let Some(text) = configured {
            return Self::parse(text).context("SOFTPOS_MASTER_KEY");
        }
        if let Some(path) = file {
            let text = Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
            return Self::parse(&text).context("SOFTPOS_MASTER_KEY_FILE");
        }
        let path = data_dir.join("master.key");
        if path.exists() {
            let text = Zeroizing::new(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
            tracing::warn!(path = %path.display(),
                "SOFTPOS_MASTER_KEY is not set: using the development master key from the data folder; set it in production");
            return Self::parse(&text);
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let text = Zeroizing::new(format!("1:{}", hex::encode(random_bytes::<32>())));
        write_private_file(&path, text.as_bytes())?;
        tracing::warn!(path = %path.display(),
            "SOFTPOS_MASTER_KEY is not set: GENERATED A DEVELOPMENT MASTER KEY into the data folder; set SOFTPOS_MASTER_KEY in production");
        Self::parse(&text)
    }

    /// The version new wraps use.
    pub fn current_version(&self) -> u32 {
        self.keys.keys().next_back().copied().unwrap_or(1)
    }

    fn cipher(&self, version: u32) -> AppResult<Aes256Gcm> {
        let key = self.keys.get(&version).ok_or_else(|| {
            AppError::Other(anyhow::anyhow!(
                "master key version {version} is not configured"
            ))
        })?;
        Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| AppError::Other(anyhow::anyhow!("master key length")))
    }

    /// Wraps `clear` under the current master key, bound to `label`.
    ///
    /// # Errors
    /// Only if the cipher fails, which it does not for these lengths.
    pub fn seal(&self, label: &WrapLabel, clear: &[u8]) -> AppResult<Sealed> {
        let version = self.current_version();
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let aad = label.aad(version);
        let ciphertext = self
            .cipher(version)?
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: clear,
                    aad: &aad,
                },
            )
            .map_err(|_| AppError::Other(anyhow::anyhow!("key wrap failed")))?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ciphertext);
        Ok(Sealed {
            wrapped: base64::engine::general_purpose::STANDARD.encode(blob),
            master_version: version,
        })
    }

    /// Unwraps a value sealed for `label`.
    ///
    /// # Errors
    /// An internal error when the ciphertext does not authenticate for this label and version
    /// (tampered, moved to another record, or an unknown master version).
    pub fn open(&self, label: &WrapLabel, sealed: &Sealed) -> AppResult<Zeroizing<Vec<u8>>> {
        let blob = base64::engine::general_purpose::STANDARD
            .decode(&sealed.wrapped)
            .map_err(|_| unwrap_failed(label))?;
        if blob.len() < NONCE_LEN + 16 {
            return Err(unwrap_failed(label));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unwrap_failed(label))?;
        let aad = label.aad(sealed.master_version);
        self.cipher(sealed.master_version)?
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| unwrap_failed(label))
    }

    /// Unwraps a key sealed for `label` into a [`SecretKey`] of `algorithm`.
    ///
    /// # Errors
    /// As [`MasterKeyring::open`], and a wrong length for the algorithm.
    pub fn open_key(
        &self,
        label: &WrapLabel,
        sealed: &Sealed,
        algorithm: KeyAlgorithm,
    ) -> AppResult<SecretKey> {
        let clear = self.open(label, sealed)?;
        SecretKey::new(algorithm, &clear).map_err(|_| unwrap_failed(label))
    }

    /// Re-wraps a sealed value under the current master key (rotation).
    ///
    /// # Errors
    /// As [`MasterKeyring::open`].
    pub fn rewrap(&self, label: &WrapLabel, sealed: &Sealed) -> AppResult<Sealed> {
        let clear = self.open(label, sealed)?;
        self.seal(label, &clear)
    }
}

fn unwrap_failed(label: &WrapLabel) -> AppError {
    // Names the record, never the bytes.
    AppError::Other(anyhow::anyhow!(
        "stored key {} ({}) does not authenticate under the master key",
        label.id,
        label.usage
    ))
}

/// One wrapped value found by a rotation sweep, with what its label is made of.
#[derive(Debug, Clone)]
pub struct SealedItem {
    /// Which table and row: opaque to the keyring, handed back to the repository.
    pub locator: (SealedTable, String),
    /// Its label.
    pub label: WrapLabel,
    /// Its ciphertext.
    pub sealed: Sealed,
}

/// The tables that hold wrapped values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// `stored_keys`.
    StoredKeys,
    /// `key_ceremony_custodians` (`ceremony_id/user_id`).
    Components,
    /// `device_key_sets`.
    KeySets,
    /// `token_signing_keys` (by `kid`).
    TokenKeys,
    /// `webhook_endpoints` (by id).
    WebhookSecrets,
    /// `release_keys` (by key id).
    ReleaseKeys,
}

/// The label of a Transaction Token signing key (P-256 private scalar).
pub fn token_key_label(kid: &str) -> WrapLabel {
    WrapLabel {
        id: format!("token-key:{kid}"),
        usage: "token_signing".to_owned(),
        algorithm: "p256".to_owned(),
    }
}

/// The label of a webhook endpoint's HMAC-SHA256 secret.
pub fn webhook_secret_label(endpoint: uuid::Uuid) -> WrapLabel {
    WrapLabel {
        id: format!("webhook:{endpoint}"),
        usage: "webhook_secret".to_owned(),
        algorithm: "hmac-sha256".to_owned(),
    }
}

/// The label of a trusted release (Ed25519) public key, sealed for integrity.
pub fn release_key_label(key_id: &str) -> WrapLabel {
    WrapLabel {
        id: format!("release-key:{key_id}"),
        usage: "release_verify".to_owned(),
        algorithm: "ed25519".to_owned(),
    }
}

/// Re-wraps one stored value (the rotation callback).
pub type Rewrap = dyn Fn(&SealedItem) -> AppResult<Sealed> + Send + Sync;

/// Re-seals one value still under the legacy wrap: (table, row id, legacy ciphertext).
pub type LegacyReseal<'a> = dyn Fn(SealedTable, &str, &str) -> AppResult<Sealed> + Send + Sync + 'a;

/// Storage behind the key store: rows with wrapped values.
#[async_trait]
pub trait SealedRepository: Send + Sync + fmt::Debug {
    /// Every wrapped value, re-wrapped by `rewrap`, written back in one transaction. Returns
    /// how many were re-wrapped.
    async fn rewrap_all(&self, rewrap: &Rewrap) -> AppResult<u64>;

    /// Every token signing key and webhook secret still under the legacy wrap (no master
    /// version), re-sealed by `reseal`, written back in one transaction. Returns how many.
    async fn migrate_legacy(&self, reseal: &LegacyReseal<'_>) -> AppResult<u64>;
}

/// Holds keys at rest; the only way key bytes enter or leave storage.
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// Wraps `key` for `label`.
    ///
    /// # Errors
    /// Internal errors only.
    fn wrap(&self, label: &WrapLabel, key: &[u8]) -> AppResult<Sealed>;

    /// Unwraps a key for `label`.
    ///
    /// # Errors
    /// A ciphertext that does not authenticate for `label`.
    fn unwrap_key(
        &self,
        label: &WrapLabel,
        sealed: &Sealed,
        algorithm: KeyAlgorithm,
    ) -> AppResult<SecretKey>;

    /// Unwraps raw bytes for `label` (ceremony components).
    ///
    /// # Errors
    /// A ciphertext that does not authenticate for `label`.
    fn unwrap_bytes(&self, label: &WrapLabel, sealed: &Sealed) -> AppResult<Zeroizing<Vec<u8>>>;

    /// The master key version new wraps use.
    fn master_version(&self) -> u32;

    /// Re-wraps every stored value under the current master key, in one transaction.
    ///
    /// # Errors
    /// A value that does not authenticate (nothing is changed then), storage errors.
    async fn rotate_master(&self) -> AppResult<u64>;
}

/// The default key store: AES-256-GCM under the master keyring.
#[derive(Debug, Clone)]
pub struct SealedKeyStore {
    keyring: Arc<MasterKeyring>,
    repo: Arc<dyn SealedRepository>,
}

impl SealedKeyStore {
    /// A store over `repo` with `keyring`.
    pub fn new(keyring: Arc<MasterKeyring>, repo: Arc<dyn SealedRepository>) -> Self {
        Self { keyring, repo }
    }
}

#[async_trait]
impl KeyStore for SealedKeyStore {
    fn wrap(&self, label: &WrapLabel, key: &[u8]) -> AppResult<Sealed> {
        self.keyring.seal(label, key)
    }

    fn unwrap_key(
        &self,
        label: &WrapLabel,
        sealed: &Sealed,
        algorithm: KeyAlgorithm,
    ) -> AppResult<SecretKey> {
        self.keyring.open_key(label, sealed, algorithm)
    }

    fn unwrap_bytes(&self, label: &WrapLabel, sealed: &Sealed) -> AppResult<Zeroizing<Vec<u8>>> {
        self.keyring.open(label, sealed)
    }

    fn master_version(&self) -> u32 {
        self.keyring.current_version()
    }

    async fn rotate_master(&self) -> AppResult<u64> {
        let keyring = self.keyring.clone();
        let current = keyring.current_version();
        self.repo
            .rewrap_all(&move |item: &SealedItem| {
                if item.sealed.master_version == current {
                    // Still authenticated, so a corrupted row stops the rotation.
                    keyring.open(&item.label, &item.sealed)?;
                    return Ok(item.sealed.clone());
                }
                keyring.rewrap(&item.label, &item.sealed)
            })
            .await
    }
}

/// A key store over a keyring alone, for a process that only uses keys another instance
/// manages (an in-process service in tests or tools): it wraps and unwraps, and refuses to
/// rotate.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    keyring: Arc<MasterKeyring>,
}

impl KeyringStore {
    /// A store over `keyring`.
    pub fn new(keyring: Arc<MasterKeyring>) -> Self {
        Self { keyring }
    }
}

#[async_trait]
impl KeyStore for KeyringStore {
    fn wrap(&self, label: &WrapLabel, key: &[u8]) -> AppResult<Sealed> {
        self.keyring.seal(label, key)
    }

    fn unwrap_key(
        &self,
        label: &WrapLabel,
        sealed: &Sealed,
        algorithm: KeyAlgorithm,
    ) -> AppResult<SecretKey> {
        self.keyring.open_key(label, sealed, algorithm)
    }

    fn unwrap_bytes(&self, label: &WrapLabel, sealed: &Sealed) -> AppResult<Zeroizing<Vec<u8>>> {
        self.keyring.open(label, sealed)
    }

    fn master_version(&self) -> u32 {
        self.keyring.current_version()
    }

    async fn rotate_master(&self) -> AppResult<u64> {
        Err(AppError::Conflict {
            code: "rotation_unavailable",
            message: "this key store cannot rotate the master key",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: &str) -> WrapLabel {
        WrapLabel {
            id: id.to_owned(),
            usage: "bdk".to_owned(),
            algorithm: "aes128".to_owned(),
        }
    }

    #[test]
    fn wrap_round_trips_and_hides_the_key() {
        let ring = MasterKeyring::parse(&"11".repeat(32)).unwrap();
        let key = [0x5A; 16];
        let sealed = ring.seal(&label("key:a"), &key).unwrap();
        assert_eq!(sealed.master_version, 1);
        let blob = base64::engine::general_purpose::STANDARD
            .decode(&sealed.wrapped)
            .unwrap();
        assert!(!blob.windows(4).any(|w| w == [0x5A; 4]));
        assert_eq!(
            ring.open(&label("key:a"), &sealed).unwrap().as_slice(),
            &key
        );
        // Two wraps of the same key differ (fresh nonce).
        assert_ne!(ring.seal(&label("key:a"), &key).unwrap(), sealed);
    }

    #[test]
    fn aad_binds_id_usage_algorithm_and_master_version() {
        let ring =
            MasterKeyring::parse(&format!("1:{},2:{}", "11".repeat(32), "22".repeat(32))).unwrap();
        let sealed = ring.seal(&label("key:a"), &[7; 16]).unwrap();
        assert_eq!(sealed.master_version, 2);
        assert!(
            ring.open(&label("key:b"), &sealed).is_err(),
            "moved to another id"
        );
        let mut other_usage = label("key:a");
        other_usage.usage = "zpk".to_owned();
        assert!(
            ring.open(&other_usage, &sealed).is_err(),
            "relabelled usage"
        );
        let mut other_algorithm = label("key:a");
        other_algorithm.algorithm = "tdes2".to_owned();
        assert!(ring.open(&other_algorithm, &sealed).is_err());
        let relabelled_version = Sealed {
            master_version: 1,
            ..sealed.clone()
        };
        assert!(ring.open(&label("key:a"), &relabelled_version).is_err());
        let mut tampered = base64::engine::general_purpose::STANDARD
            .decode(&sealed.wrapped)
            .unwrap();
        tampered[20] ^= 1;
        let tampered = Sealed {
            wrapped: base64::engine::general_purpose::STANDARD.encode(tampered),
            master_version: 2,
        };
        assert!(ring.open(&label("key:a"), &tampered).is_err());
    }

    #[test]
    fn rotation_rewraps_under_the_newest_version_and_old_keys_can_go() {
        let old = MasterKeyring::parse(&"11".repeat(32)).unwrap();
        let sealed = old.seal(&label("key:a"), &[9; 32]).unwrap();
        let both =
            MasterKeyring::parse(&format!("{},2:{}", "11".repeat(32), "22".repeat(32))).unwrap();
        let rewrapped = both.rewrap(&label("key:a"), &sealed).unwrap();
        assert_eq!(rewrapped.master_version, 2);
        let new_only = MasterKeyring::parse(&format!("2:{}", "22".repeat(32))).unwrap();
        assert_eq!(
            new_only
                .open(&label("key:a"), &rewrapped)
                .unwrap()
                .as_slice(),
            &[9; 32]
        );
        assert!(new_only.open(&label("key:a"), &sealed).is_err());
    }

    #[test]
    fn bad_keyrings_are_refused() {
        assert!(MasterKeyring::parse("").is_err());
        assert!(MasterKeyring::parse("abcd").is_err());
        assert!(MasterKeyring::parse(&format!("0:{}", "11".repeat(32))).is_err());
        assert!(
            MasterKeyring::parse(&format!("1:{},1:{}", "11".repeat(32), "22".repeat(32))).is_err()
        );
        let ring = MasterKeyring::parse(&"ab".repeat(32)).unwrap();
        assert!(!format!("{ring:?}").contains("ab"));
    }

    #[test]
    fn development_key_is_generated_once_with_owner_only_mode() {
        let dir = tempfile::tempdir().unwrap();
        let first = MasterKeyring::load(None, None, dir.path()).unwrap();
        let sealed = first.seal(&label("key:a"), &[1; 16]).unwrap();
        let again = MasterKeyring::load(None, None, dir.path()).unwrap();
        assert!(again.open(&label("key:a"), &sealed).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
