//! Remote key injection (RKI) of DUKPT initial keys, the device's KCV confirmation, and
//! activation once a fresh health check passes.
//!
//! Protocol (all device calls are signed with the device key, see `api::key_injection`):
//! 1. The device draws an ephemeral P-256 key pair and posts the public key.
//! 2. The server picks the profile of the device's mode, draws a fresh initial key id (AES:
//!    BDK id ‖ random derivation id) or initial KSN (TDES: key set id ‖ random device id ‖
//!    zero counter), derives the initial key from the BDK (ANSI X9.24-3 Annex A / X9.24-1
//!    A.6), draws its own ephemeral P-256 key, and computes the KEK as
//!    HKDF-SHA256 (RFC 5869) over the ECDH shared secret (x-coordinate, SEC 1 3.3.1) with
//!    salt [`RKI_SALT`] and info [`kek_info`] (binding device id, key set id and both public
//!    keys), 32 bytes → AES-256 KBPK. The initial key goes out in a TR-31 version D block
//!    (usage `B1`, mode `X`, non-exportable, optional block `IK` or `KS` naming the initial
//!    key id) with its KCV.
//! 3. The device unwraps, checks the KCV and confirms it; the key set becomes `ACTIVE`
//!    (superseding any previous one). If the device is `APPROVED` and the health gate has a
//!    fresh passing verdict, the device becomes `ACTIVE`.

use base64::Engine;
use hkdf::Hkdf;
use payment_crypto::tr31::{
    self, Algorithm, Exportability, KeyBlockHeader, KeyUsage as Tr31Usage, ModeOfUse,
    OptionalBlock, Version,
};
use payment_crypto::{KeyAlgorithm, SecretKey};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::model::{KeySet, KeySetState, KeyState, KeyUsageKind, StoredKey};
use super::store::algorithm_name;
use super::{KeyService, OsRandom, crypto_error, kcv_hex, kcv_matches};
use crate::domain::{Device, DeviceAction, DeviceId, DeviceState, Principal, now_millis};
use crate::error::{AppError, AppResult};
use crate::infra::keys::random_bytes;
use crate::repository::keys::key_set_label;
use crate::service::RequestContext;
use crate::service::ports::DukptScheme;

/// HKDF salt of the RKI KEK derivation.
pub const RKI_SALT: &[u8] = b"SUNBAY-SOFTPOS-RKI-KEK-V1";

/// HKDF info of the RKI KEK derivation: `softpos-rki-v1|<device id>|<key set id>|` followed by
/// the server's and the device's SEC1 uncompressed ephemeral public keys.
pub fn kek_info(
    device: Uuid,
    key_set: Uuid,
    server_public: &[u8],
    device_public: &[u8],
) -> Vec<u8> {
    let mut info = format!("softpos-rki-v1|{device}|{key_set}|").into_bytes();
    info.extend_from_slice(server_public);
    info.extend_from_slice(device_public);
    info
}

/// The AES-256 KEK from an ECDH shared secret (RFC 5869 HKDF-SHA256).
pub fn derive_kek(shared_x: &[u8], info: &[u8]) -> SecretKey {
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(RKI_SALT), shared_x)
        .expand(info, okm.as_mut_slice())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SecretKey::aes(okm.as_slice()).expect("32 bytes is an AES-256 key")
}

/// What the server returns for a key request.
#[derive(Debug, Clone)]
pub struct Injection {
    /// The new key set.
    pub key_set: KeySet,
    /// Server ephemeral public key, SEC1 uncompressed.
    pub server_public_key: Vec<u8>,
    /// TR-31 version D block with the initial key.
    pub key_block: String,
}

/// Outcome of a confirmation or activation attempt.
#[derive(Debug, Clone)]
pub struct Activation {
    /// The key set now active.
    pub key_set: KeySet,
    /// The device's state afterwards.
    pub device_state: DeviceState,
    /// Why the device is not `ACTIVE` yet, if it is not.
    pub pending_reason: Option<&'static str>,
}

fn system() -> Principal {
    Principal::System {
        component: "key_injection",
    }
}

fn device_actor(device: &Device) -> String {
    format!("device:{}", device.id)
}

fn random_p256() -> p256::SecretKey {
    loop {
        let bytes = Zeroizing::new(random_bytes::<32>());
        if let Ok(key) = p256::SecretKey::from_slice(bytes.as_slice()) {
            return key;
        }
    }
}

impl KeyService {
    async fn profile_bdk(&self, device: &Device) -> AppResult<(DukptScheme, StoredKey)> {
        let profile = self
            .repo
            .find_profile(device.mode)
            .await?
            .ok_or(AppError::NotFound("key profile"))?;
        let algorithms: &[&'static str] = match profile.scheme {
            DukptScheme::Aes128 => &["aes128", "aes192", "aes256"],
            DukptScheme::Tdes => &["tdes2"],
        };
        let bdk = match profile.bdk_id {
            Some(id) => self
                .repo
                .find_key(id)
                .await?
                .filter(|k| k.state == KeyState::Active && k.usage == KeyUsageKind::Bdk),
            None => {
                self.repo
                    .newest_active(KeyUsageKind::Bdk, algorithms, None)
                    .await?
            }
        };
        let bdk = bdk.ok_or(AppError::Conflict {
            code: "no_active_bdk",
            message: "no active BDK for this device mode's key profile",
        })?;
        Ok((profile.scheme, bdk))
    }

    /// Issues a new key set to `device` (an `APPROVED` device, or an `ACTIVE` one rotating).
    ///
    /// # Errors
    /// `device_not_approved`, `no_active_bdk`, `validation_failed` (public key).
    pub async fn request_keys(
        &self,
        device: &Device,
        device_public_b64: &str,
        ctx: &RequestContext,
    ) -> AppResult<Injection> {
        if !matches!(device.state, DeviceState::Approved | DeviceState::Active) {
            return Err(AppError::Conflict {
                code: "device_not_approved",
                message: "keys are injected only into approved (or active, rotating) devices",
            });
        }
        let device_public = base64::engine::general_purpose::STANDARD
            .decode(device_public_b64.trim())
            .ok()
            .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok())
            .ok_or_else(|| {
                AppError::field("ephemeral_public_key", "a P-256 public key, SEC1, base64")
            })?;
        let (scheme, bdk) = self.profile_bdk(device).await?;
        let dukpt_key_id = bdk
            .dukpt_key_id
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| crate::repository::corrupt("stored_keys.dukpt_key_id"))?;
        let bdk_clear = self.unwrap_stored(&bdk)?;
        let algorithm_text = algorithm_name(bdk.algorithm);

        for _ in 0..5 {
            let key_set_id = Uuid::new_v4();
            let (initial_key_id, initial_key, optional_id) =
                derive_initial(scheme, &bdk_clear, &dukpt_key_id)?;
            let kcv = kcv_hex(&initial_key);
            let now = now_millis();
            let set = KeySet {
                id: key_set_id,
                device_id: device.id,
                version: self.repo.next_key_set_version(device.id).await?,
                scheme,
                bdk_id: bdk.id,
                initial_key_id: initial_key_id.clone(),
                kcv: kcv.clone(),
                state: KeySetState::Issued,
                sealed: Some(self.store.wrap(
                    &key_set_label(key_set_id, algorithm_text),
                    initial_key.expose_secret(),
                )?),
                rotation_requested_at: None,
                created_at: now,
                confirmed_at: None,
                destroyed_at: None,
                updated_at: now,
            };
            if !self.repo.insert_key_set(&set).await? {
                // Initial key id or version taken concurrently: draw again.
                continue;
            }

            let server_secret = random_p256();
            let server_public = server_secret.public_key().to_sec1_bytes().to_vec();
            let device_public_bytes = device_public.to_sec1_bytes();
            let shared = p256::ecdh::diffie_hellman(
                server_secret.to_nonzero_scalar(),
                device_public.as_affine(),
            );
            let kek = derive_kek(
                shared.raw_secret_bytes().as_slice(),
                &kek_info(
                    device.id.0,
                    key_set_id,
                    &server_public,
                    &device_public_bytes,
                ),
            );
            let mut header = KeyBlockHeader::new(
                Version::D,
                Tr31Usage::InitialDukptKey,
                if initial_key.algorithm().is_tdes() {
                    Algorithm::Tdes
                } else {
                    Algorithm::Aes
                },
                ModeOfUse::KeyDerivation,
                Exportability::NonExportable,
            );
            header.optional_blocks.push(
                OptionalBlock::new(optional_id, hex::encode_upper(&initial_key_id).as_bytes())
                    .map_err(|e| crypto_error(&e, "cannot build the key block"))?,
            );
            let key_block = tr31::wrap(&kek, &header, &initial_key, &mut OsRandom)
                .map_err(|e| crypto_error(&e, "cannot build the key block"))?;

            self.audit(
                device_actor(device),
                "keys.injection_issued",
                format!("device:{}", device.id),
                format!(
                    "key_set:{key_set_id} v{} {} bdk:{} initial key id {} kcv {kcv}",
                    set.version,
                    super::model::scheme_name(scheme),
                    bdk.id,
                    hex::encode_upper(&initial_key_id)
                ),
                ctx,
            )
            .await?;
            return Ok(Injection {
                key_set: set,
                server_public_key: server_public,
                key_block,
            });
        }
        Err(AppError::Conflict {
            code: "key_set_conflict",
            message: "could not allocate a key set; retry",
        })
    }

    /// The device confirms the KCV of the initial key it unwrapped.
    ///
    /// # Errors
    /// `not_found` (key set of another device), `key_set_not_issued`, `kcv_mismatch`,
    /// `device_not_approved`.
    pub async fn confirm_keys(
        &self,
        device: &Device,
        key_set_id: Uuid,
        kcv: &str,
        ctx: &RequestContext,
    ) -> AppResult<Activation> {
        if !matches!(device.state, DeviceState::Approved | DeviceState::Active) {
            return Err(AppError::Conflict {
                code: "device_not_approved",
                message: "keys are confirmed only by approved or active devices",
            });
        }
        let set = self
            .repo
            .find_key_set(key_set_id)
            .await?
            .filter(|s| s.device_id == device.id)
            .ok_or(AppError::NotFound("key set"))?;
        if set.state != KeySetState::Issued {
            return Err(AppError::Conflict {
                code: "key_set_not_issued",
                message: "this key set is not waiting for confirmation",
            });
        }
        if !kcv_matches(kcv, &set.kcv)? {
            self.audit(
                device_actor(device),
                "keys.injection_kcv_mismatch",
                format!("device:{}", device.id),
                format!("key_set:{key_set_id}"),
                ctx,
            )
            .await?;
            return Err(AppError::Unprocessable {
                code: "kcv_mismatch",
                message: "the KCV does not match the injected key",
            });
        }
        if !self
            .repo
            .activate_key_set(key_set_id, device.id, now_millis())
            .await?
        {
            return Err(AppError::Conflict {
                code: "key_set_not_issued",
                message: "this key set is not waiting for confirmation",
            });
        }
        self.audit(
            device_actor(device),
            "keys.injection_confirmed",
            format!("device:{}", device.id),
            format!("key_set:{key_set_id} v{} kcv {}", set.version, set.kcv),
            ctx,
        )
        .await?;
        self.activate_device(device.id, ctx).await
    }

    /// Makes an `APPROVED` device with a confirmed key set `ACTIVE` when the health gate has a
    /// fresh passing verdict; otherwise says why not.
    ///
    /// # Errors
    /// `no_confirmed_key_set`; storage errors.
    pub async fn activate_device(
        &self,
        device_id: DeviceId,
        ctx: &RequestContext,
    ) -> AppResult<Activation> {
        let set = self
            .repo
            .active_key_set(device_id)
            .await?
            .ok_or(AppError::Conflict {
                code: "no_confirmed_key_set",
                message: "the device has no confirmed key set",
            })?;
        let device = self.devices.get(device_id).await?;
        if device.state != DeviceState::Approved {
            return Ok(Activation {
                key_set: set,
                device_state: device.state,
                pending_reason: None,
            });
        }
        let verdict = match &self.health {
            Some(gate) => gate.fresh_passing_verdict(device_id).await?,
            None => Err(crate::service::ports::HealthRefusal::NoHealthCheck),
        };
        match verdict {
            Ok(verdict) => {
                let device = self
                    .devices
                    .transition(
                        &system().actor(),
                        device_id,
                        DeviceAction::Activate,
                        Some(format!(
                            "key set v{} confirmed; health report {} score {}",
                            set.version, verdict.report_id, verdict.score
                        )),
                        ctx,
                    )
                    .await?;
                Ok(Activation {
                    key_set: set,
                    device_state: device.state,
                    pending_reason: None,
                })
            }
            Err(refusal) => Ok(Activation {
                key_set: set,
                device_state: device.state,
                pending_reason: Some(refusal.code()),
            }),
        }
    }

    /// The device's active key set, whether it should rotate now, and the profile's counter
    /// threshold (the device rotates by itself once its transaction counter passes it).
    ///
    /// # Errors
    /// `no_confirmed_key_set`; storage errors.
    pub async fn key_status(&self, device: &Device) -> AppResult<(KeySet, bool, i64)> {
        let set = self
            .repo
            .active_key_set(device.id)
            .await?
            .ok_or(AppError::Conflict {
                code: "no_confirmed_key_set",
                message: "the device has no confirmed key set",
            })?;
        let rotate_after = self
            .repo
            .find_profile(device.mode)
            .await?
            .map_or(i64::MAX, |p| p.rotate_after);
        let due = set.rotation_requested_at.is_some();
        Ok((set, due, rotate_after))
    }

    /// Whether a transaction counter seen on `key_set` (by the payment pipeline) has passed the
    /// rotation threshold of the device's profile; if so, flags the key set for rotation once
    /// (audited) so the device fetches a new one at its next status check.
    ///
    /// # Errors
    /// `not_found`; storage errors.
    pub async fn note_counter(
        &self,
        key_set: Uuid,
        counter: u32,
        ctx: &RequestContext,
    ) -> AppResult<bool> {
        let set = self
            .repo
            .find_key_set(key_set)
            .await?
            .ok_or(AppError::NotFound("key set"))?;
        let device = self.devices.get(set.device_id).await?;
        let rotate_after = self
            .repo
            .find_profile(device.mode)
            .await?
            .map_or(i64::MAX, |p| p.rotate_after);
        if i64::from(counter) <= rotate_after {
            return Ok(false);
        }
        if set.state == KeySetState::Active && set.rotation_requested_at.is_none() {
            self.request_rotation(
                &system(),
                set.device_id,
                &format!("transaction counter {counter} passed {rotate_after}"),
                ctx,
            )
            .await?;
        }
        Ok(true)
    }

    /// A device's key sets, newest first.
    ///
    /// # Errors
    /// `not_found` (device).
    pub async fn key_sets(&self, device: DeviceId) -> AppResult<Vec<KeySet>> {
        self.devices.get(device).await?;
        self.repo.list_key_sets(device).await
    }

    /// Asks the device to rotate its key set at its next check-in.
    ///
    /// # Errors
    /// `not_found`, `no_confirmed_key_set`.
    pub async fn request_rotation(
        &self,
        principal: &Principal,
        device: DeviceId,
        reason: &str,
        ctx: &RequestContext,
    ) -> AppResult<KeySet> {
        self.devices.get(device).await?;
        if !self.repo.request_rotation(device, now_millis()).await? {
            return Err(AppError::Conflict {
                code: "no_confirmed_key_set",
                message: "the device has no confirmed key set",
            });
        }
        let set = self
            .repo
            .active_key_set(device)
            .await?
            .ok_or(AppError::NotFound("key set"))?;
        self.audit(
            principal.actor(),
            "keys.rotation_requested",
            format!("device:{device}"),
            format!("key_set:{} v{}: {reason}", set.id, set.version),
            ctx,
        )
        .await?;
        Ok(set)
    }
}

/// Draws an initial key id / KSN and derives the initial key. Returns the id, the key and the
/// TR-31 optional block id naming it (`IK` for AES DUKPT, `KS` for TDES; X9.143-2021 Table 10).
fn derive_initial(
    scheme: DukptScheme,
    bdk: &SecretKey,
    dukpt_key_id: &[u8],
) -> AppResult<(Vec<u8>, SecretKey, [u8; 2])> {
    match scheme {
        DukptScheme::Aes128 => {
            let bdk_id: [u8; 4] = dukpt_key_id
                .try_into()
                .map_err(|_| crate::repository::corrupt("stored_keys.dukpt_key_id"))?;
            let derivation = random_bytes::<4>();
            let mut id = [0u8; 8];
            id[..4].copy_from_slice(&bdk_id);
            id[4..].copy_from_slice(&derivation);
            let host = payment_crypto::dukpt::aes::HostBdk::new(bdk)
                .map_err(|e| crypto_error(&e, "the BDK does not fit AES DUKPT"))?;
            let key = host.derive_initial_key(&payment_crypto::dukpt::aes::InitialKeyId::new(id));
            Ok((id.to_vec(), key, *b"IK"))
        }
        DukptScheme::Tdes => {
            let ksi: [u8; 5] = dukpt_key_id
                .try_into()
                .map_err(|_| crate::repository::corrupt("stored_keys.dukpt_key_id"))?;
            if bdk.algorithm() != KeyAlgorithm::Tdes2 {
                return Err(AppError::Conflict {
                    code: "no_active_bdk",
                    message: "TDES DUKPT needs a double-length TDES BDK",
                });
            }
            // 19-bit device id, then a 21-bit counter of zero (X9.24-1:2009 A.2).
            let device = u64::from(u32::from_be_bytes(random_bytes::<4>()) & 0x7_FFFF);
            let tail = (device << 21).to_be_bytes();
            let mut ksn = [0u8; 10];
            ksn[..5].copy_from_slice(&ksi);
            ksn[5..].copy_from_slice(&tail[3..]);
            let host = payment_crypto::dukpt::tdes::BaseDerivationKey::new(bdk)
                .map_err(|e| crypto_error(&e, "the BDK does not fit TDES DUKPT"))?;
            let key = host.derive_ipek(&payment_crypto::dukpt::tdes::Ksn::new(ksn));
            Ok((ksn.to_vec(), key, *b"KS"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 Appendix A.1 (Test Case 1), to pin the HKDF-SHA256 wiring.
    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn kek_depends_on_device_and_key_set() {
        let a = derive_kek(&[7; 32], &kek_info(Uuid::nil(), Uuid::nil(), b"s", b"d"));
        let b = derive_kek(&[7; 32], &kek_info(Uuid::nil(), Uuid::max(), b"s", b"d"));
        let c = derive_kek(&[7; 32], &kek_info(Uuid::max(), Uuid::nil(), b"s", b"d"));
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn tdes_initial_ksn_has_the_key_set_id_and_a_zero_counter() {
        let bdk =
            SecretKey::tdes(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap()).unwrap();
        let (ksn, key, block) =
            derive_initial(DukptScheme::Tdes, &bdk, &[0xFF, 0xFF, 0x98, 0x76, 0x54]).unwrap();
        assert_eq!(&ksn[..5], &[0xFF, 0xFF, 0x98, 0x76, 0x54]);
        assert_eq!(&ksn[8..], &[0, 0]);
        assert_eq!(ksn[7] & 0x1F, 0);
        assert_eq!(&block, b"KS");
        assert_eq!(key.algorithm(), KeyAlgorithm::Tdes2);
    }
}
