//! Key custody and remote key injection.
//!
//! What it owns: the [`store::KeyStore`] (every key wrapped at rest under the master keyring:
//! BDKs, zone PIN keys, KEKs, ceremony components, device initial keys, and also the
//! Transaction Token signing keys, webhook secrets and trusted release keys, so one
//! master-key rotation re-wraps them all; [`legacy`] moves values older versions wrapped
//! under `JWT_SECRET`);
//! the lifecycle of BDKs, zone PIN keys (ZPKs) and key-encryption keys (generate, import by
//! components under dual control, import as a TR-31 block, activate, retire; [`custody`]);
//! key profiles per device mode; remote key injection of DUKPT initial keys into devices and
//! their activation ([`injection`]); and [`DeviceKeys`] for the payment pipeline.
//!
//! Invariants: clear key bytes exist only in memory, inside `SecretKey` or `Zeroizing`
//! buffers; responses, logs, errors and the database only ever see ids, KCVs, usages and
//! states. Every custody and injection step appends to the audit log.

mod cache;
pub mod custody;
pub mod injection;
pub mod legacy;
pub mod model;
pub mod release_keys;
pub mod store;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use payment_crypto::kcv::{Kcv, KcvMethod};
use payment_crypto::pinblock::PinBlockFormat;
use payment_crypto::{ErrorCode, KeyAlgorithm, RandomSource, SecretKey};
use uuid::Uuid;

use self::model::{KeyState, KeyUsageKind, StoredKey};
use self::store::KeyStore;
use super::audit::AuditService;
use super::devices::DeviceService;
use super::ports::{DeviceKeys, DukptHost, DukptScheme, HealthGate, KeySetInfo, ZonePinKey};
use crate::domain::{DeviceId, NewAuditRecord};
use crate::error::{AppError, AppResult};
use crate::infra::keys::random_bytes;
use crate::repository::keys::{KeyRepository, key_label};

/// The operating system's CSPRNG as a payment-crypto [`RandomSource`].
#[derive(Debug, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("the operating system's random source failed");
    }
}

/// The KCV method this server shows for a key: encrypt-zeros (3 bytes) for TDES, CMAC
/// (5 bytes) for AES, as ANSI X9.24-1:2017 7.7.2 / X9.24-3 use them.
pub fn kcv_method(algorithm: KeyAlgorithm) -> KcvMethod {
    if algorithm.is_tdes() {
        KcvMethod::EncryptZeros
    } else {
        KcvMethod::Cmac
    }
}

/// The KCV of `key`, hex.
pub fn kcv_hex(key: &SecretKey) -> String {
    payment_crypto::kcv::kcv(key, kcv_method(key.algorithm())).to_string()
}

/// Whether `given` (hex, as typed) equals `expected` (hex, as stored), in constant time.
pub(crate) fn kcv_matches(given: &str, expected: &str) -> AppResult<bool> {
    let given: Kcv = given
        .trim()
        .parse()
        .map_err(|_| AppError::field("kcv", "4 to 16 hex digits"))?;
    let expected: Kcv = expected
        .parse()
        .map_err(|_| crate::repository::corrupt("kcv"))?;
    Ok(given.ct_eq(&expected))
}

/// A fresh random key of `algorithm`.
pub(crate) fn random_key(algorithm: KeyAlgorithm) -> SecretKey {
    let bytes = zeroize::Zeroizing::new(random_bytes::<32>());
    SecretKey::new(algorithm, &bytes[..algorithm.key_len()])
        .expect("32 random bytes cover every key length")
}

/// A payment-crypto error as a 422 with its stable code.
pub(crate) fn crypto_error(error: &impl ErrorCode, message: &'static str) -> AppError {
    AppError::Unprocessable {
        code: error.code(),
        message,
    }
}

/// Key custody and injection.
pub struct KeyService {
    pub(crate) repo: Arc<dyn KeyRepository>,
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) devices: Arc<DeviceService>,
    pub(crate) audit: Arc<AuditService>,
    pub(crate) health: Option<Arc<dyn HealthGate>>,
    /// Unwrapped BDKs and zone PIN keys for the payment hot path (short TTL, bounded).
    pub(crate) hot: cache::HotKeys,
}

impl fmt::Debug for KeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyService")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl KeyService {
    /// Builds the service. Devices become `ACTIVE` after key confirmation only once a
    /// [`HealthGate`] is attached with [`KeyService::with_health_gate`]; without one every
    /// activation answers `no_health_check`.
    pub fn new(
        repo: Arc<dyn KeyRepository>,
        store: Arc<dyn KeyStore>,
        devices: Arc<DeviceService>,
        audit: Arc<AuditService>,
    ) -> Self {
        Self {
            repo,
            store,
            devices,
            audit,
            health: None,
            hot: cache::HotKeys::default(),
        }
    }

    /// Attaches the health gate that decides activation after key injection.
    #[must_use]
    pub fn with_health_gate(mut self, health: Arc<dyn HealthGate>) -> Self {
        self.health = Some(health);
        self
    }

    pub(crate) async fn audit(
        &self,
        actor: String,
        action: &str,
        target: String,
        reason: String,
        ctx: &super::RequestContext,
    ) -> AppResult<()> {
        self.audit
            .append(NewAuditRecord {
                actor,
                action: action.to_owned(),
                target: Some(target),
                reason: Some(reason),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(())
    }

    /// The BDK of a key set the caller has just read as active (its state decided there,
    /// so a destroyed set never decrypts), unwrapped once per [`cache::HOT_KEY_TTL`].
    async fn host_bdk(&self, bdk_id: Uuid) -> AppResult<SecretKey> {
        if let Some(bdk) = self.hot.bdk(bdk_id) {
            return Ok(bdk);
        }
        let bdk = self
            .repo
            .find_key(bdk_id)
            .await?
            .ok_or_else(|| crate::repository::corrupt("device_key_sets.bdk_id"))?;
        if !matches!(bdk.state, KeyState::Active | KeyState::Retired) {
            return Err(AppError::Conflict {
                code: "bdk_not_active",
                message: "the key set's BDK is not active",
            });
        }
        let clear = self.unwrap_stored(&bdk)?;
        self.hot.put_bdk(bdk_id, clear.clone());
        Ok(clear)
    }

    /// Forgets every cached clear key; called after any custody change.
    pub(crate) fn forget_hot_keys(&self) {
        self.hot.clear();
    }

    /// Unwraps a stored key.
    pub(crate) fn unwrap_stored(&self, key: &StoredKey) -> AppResult<SecretKey> {
        let sealed = key
            .sealed
            .as_ref()
            .ok_or_else(|| crate::repository::corrupt("stored_keys.wrapped"))?;
        self.store.unwrap_key(
            &key_label(key.id, key.usage, store::algorithm_name(key.algorithm)),
            sealed,
            key.algorithm,
        )
    }
}

#[async_trait]
impl DeviceKeys for KeyService {
    async fn active_key_set(&self, device: DeviceId) -> AppResult<Option<KeySetInfo>> {
        Ok(self
            .repo
            .active_key_set(device)
            .await?
            .map(|set| KeySetInfo {
                id: set.id,
                device_id: set.device_id,
                version: u32::try_from(set.version).unwrap_or(u32::MAX),
                scheme: set.scheme,
                initial_key_id: set.initial_key_id,
                bdk_id: set.bdk_id,
            }))
    }

    async fn dukpt_host(&self, key_set: &KeySetInfo) -> AppResult<DukptHost> {
        let bdk = self.host_bdk(key_set.bdk_id).await?;
        match key_set.scheme {
            DukptScheme::Aes128 => payment_crypto::dukpt::aes::HostBdk::new(&bdk)
                .map(|host| DukptHost::Aes(Box::new(host)))
                .map_err(|e| crypto_error(&e, "the BDK does not fit AES DUKPT")),
            DukptScheme::Tdes => payment_crypto::dukpt::tdes::BaseDerivationKey::new(&bdk)
                .map(|host| DukptHost::Tdes(Box::new(host)))
                .map_err(|e| crypto_error(&e, "the BDK does not fit TDES DUKPT")),
        }
    }

    async fn zone_pin_key(&self, processor: &str) -> AppResult<ZonePinKey> {
        // Which key is active is read every time (a retirement on any instance counts at
        // once); only its unwrapping is cached.
        let key = self
            .repo
            .newest_active(KeyUsageKind::Zpk, &[], Some(processor))
            .await?
            .ok_or(AppError::NotFound("zone PIN key"))?;
        let format = match key.pin_format {
            Some(4) => PinBlockFormat::Iso4,
            Some(0) => PinBlockFormat::Iso0,
            _ => return Err(crate::repository::corrupt("stored_keys.pin_format")),
        };
        let clear = match self.hot.bdk(key.id) {
            Some(clear) => clear,
            None => {
                let clear = self.unwrap_stored(&key)?;
                self.hot.put_bdk(key.id, clear.clone());
                clear
            }
        };
        Ok(ZonePinKey {
            key_id: key.id,
            key: clear,
            format,
        })
    }
}
