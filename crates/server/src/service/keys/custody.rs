//! BDK, ZPK and KEK lifecycle: generate, dual-control component import, TR-31 import,
//! activate, retire; key profiles; master key rotation.
//!
//! Dual control: a ceremony names 2 or 3 custodians (user accounts). Each submits one
//! component through their own session and gets that component's KCV back; a custodian
//! cannot submit twice and nobody else can submit. Components are wrapped at rest as soon as
//! they arrive. When the last one is in, the components are XORed, the combined key is wrapped
//! and its KCV shown; a custodian or a security officer then confirms with the expected
//! combined KCV, which activates the key and erases the components.

use payment_crypto::tr31::{self, KeyUsage as Tr31Usage};
use payment_crypto::{KeyAlgorithm, SecretKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::model::{
    Ceremony, CeremonyState, Custodian, KeyOrigin, KeyProfile, KeyState, KeyUsageKind, StoredKey,
};
use super::store::{algorithm_name, parse_algorithm};
use super::{KeyService, crypto_error, kcv_hex, kcv_matches, random_key};
use crate::domain::{DeviceMode, Principal, Role, now_millis};
use crate::error::{AppError, AppResult};
use crate::infra::keys::random_bytes;
use crate::repository::keys::{component_label, key_label};
use crate::service::RequestContext;
use crate::service::ports::DukptScheme;

/// What a new key is: name, usage, algorithm and the ZPK's connection.
#[derive(Debug, Clone)]
pub struct KeySpec {
    /// Human name (1–100 characters).
    pub name: String,
    /// Usage.
    pub usage: KeyUsageKind,
    /// Algorithm name (`tdes2`, `tdes3`, `aes128`, `aes192`, `aes256`).
    pub algorithm: String,
    /// ZPK only: processor connection name.
    pub processor: Option<String>,
    /// ZPK only: PIN block format, 0 or 4.
    pub pin_format: Option<u8>,
}

/// The result of submitting a component.
#[derive(Debug, Clone)]
pub struct ComponentReceipt {
    /// KCV of the component just submitted.
    pub component_kcv: String,
    /// Components in so far.
    pub submitted: usize,
    /// Components needed.
    pub required: usize,
    /// The combined key's KCV, once every component is in.
    pub combined_kcv: Option<String>,
}

fn validate_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::field("name", "1 to 100 characters"));
    }
    Ok(name.to_owned())
}

fn validate_processor(processor: &str) -> AppResult<String> {
    let ok = (1..=64).contains(&processor.len())
        && processor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(AppError::field("processor", "1 to 64 of A-Z a-z 0-9 - _"));
    }
    Ok(processor.to_owned())
}

/// Checks a spec and builds the metadata of the new key (state and origin set by the caller).
fn new_key(spec: &KeySpec, algorithm: KeyAlgorithm, actor: &str) -> AppResult<StoredKey> {
    let name = validate_name(&spec.name)?;
    let (processor, pin_format) = match spec.usage {
        KeyUsageKind::Bdk => {
            if !matches!(
                algorithm,
                KeyAlgorithm::Tdes2 | KeyAlgorithm::Aes128 | KeyAlgorithm::Aes256
            ) {
                return Err(AppError::field(
                    "algorithm",
                    "a BDK is tdes2, aes128 or aes256",
                ));
            }
            (None, None)
        }
        KeyUsageKind::Zpk => {
            let processor = validate_processor(spec.processor.as_deref().unwrap_or_default())?;
            let format = match (spec.pin_format, algorithm.is_tdes()) {
                (Some(0), true) => 0,
                (Some(4), false) => 4,
                _ => {
                    return Err(AppError::field(
                        "pin_format",
                        "0 with a TDES zone PIN key, 4 with an AES one",
                    ));
                }
            };
            (Some(processor), Some(format))
        }
        KeyUsageKind::Kek => (None, None),
    };
    if spec.usage != KeyUsageKind::Zpk && (spec.processor.is_some() || spec.pin_format.is_some()) {
        return Err(AppError::field(
            "processor",
            "only zone PIN keys have a processor and PIN block format",
        ));
    }
    let dukpt_key_id = (spec.usage == KeyUsageKind::Bdk).then(|| {
        // AES DUKPT: 4-byte BDK id in the initial key id; TDES: 5-byte key set identifier.
        let id = random_bytes::<5>();
        let len = if algorithm.is_tdes() { 5 } else { 4 };
        hex::encode_upper(&id[..len])
    });
    let now = now_millis();
    Ok(StoredKey {
        id: Uuid::new_v4(),
        name,
        usage: spec.usage,
        algorithm,
        state: KeyState::Pending,
        origin: KeyOrigin::Generated,
        kcv: None,
        dukpt_key_id,
        processor,
        pin_format,
        sealed: None,
        created_by: actor.to_owned(),
        created_at: now,
        activated_at: None,
        retired_at: None,
        updated_at: now,
    })
}

fn parse_spec_algorithm(spec: &KeySpec) -> AppResult<KeyAlgorithm> {
    parse_algorithm(&spec.algorithm)
        .ok_or_else(|| AppError::field("algorithm", "one of tdes2, tdes3, aes128, aes192, aes256"))
}

fn describe(key: &StoredKey) -> String {
    format!(
        "{} {} {} kcv {}",
        key.usage.as_str(),
        algorithm_name(key.algorithm),
        key.name,
        key.kcv.as_deref().unwrap_or("-")
    )
}

impl KeyService {
    /// Generates a key inside the server (state `READY`).
    ///
    /// # Errors
    /// `validation_failed` for bad specs; storage errors.
    pub async fn generate(
        &self,
        principal: &Principal,
        spec: &KeySpec,
        ctx: &RequestContext,
    ) -> AppResult<StoredKey> {
        let algorithm = parse_spec_algorithm(spec)?;
        let mut key = new_key(spec, algorithm, &principal.actor())?;
        let clear = random_key(algorithm);
        self.seal_into(&mut key, &clear, KeyOrigin::Generated)?;
        self.repo.insert_key(&key).await?;
        self.audit(
            principal.actor(),
            "keys.generated",
            format!("key:{}", key.id),
            describe(&key),
            ctx,
        )
        .await?;
        Ok(key)
    }

    fn seal_into(
        &self,
        key: &mut StoredKey,
        clear: &SecretKey,
        origin: KeyOrigin,
    ) -> AppResult<()> {
        key.kcv = Some(kcv_hex(clear));
        key.sealed = Some(self.store.wrap(
            &key_label(key.id, key.usage, algorithm_name(key.algorithm)),
            clear.expose_secret(),
        )?);
        key.state = KeyState::Ready;
        key.origin = origin;
        Ok(())
    }

    /// Imports a key from a TR-31 block under an active KEK (state `READY`).
    ///
    /// # Errors
    /// `not_found` (KEK), `kek_not_active`, `tr31_*` codes for blocks that do not unwrap,
    /// `tr31_usage_mismatch` when the block's key usage is not the requested one.
    pub async fn import_tr31(
        &self,
        principal: &Principal,
        spec: &KeySpec,
        kek_id: Uuid,
        block: &str,
        ctx: &RequestContext,
    ) -> AppResult<StoredKey> {
        let kek = self
            .repo
            .find_key(kek_id)
            .await?
            .filter(|k| k.usage == KeyUsageKind::Kek)
            .ok_or(AppError::NotFound("key-encryption key"))?;
        if kek.state != KeyState::Active {
            return Err(AppError::Conflict {
                code: "kek_not_active",
                message: "the key-encryption key is not active",
            });
        }
        let kbpk = self.unwrap_stored(&kek)?;
        let (header, clear) = tr31::unwrap(&kbpk, block.trim())
            .map_err(|e| crypto_error(&e, "the TR-31 block does not unwrap under this KEK"))?;
        let usage_ok = match spec.usage {
            KeyUsageKind::Bdk => header.key_usage == Tr31Usage::Bdk,
            KeyUsageKind::Zpk => header.key_usage == Tr31Usage::PinEncryption,
            KeyUsageKind::Kek => matches!(
                header.key_usage,
                Tr31Usage::KeyEncryption | Tr31Usage::KeyBlockProtection
            ),
        };
        if !usage_ok {
            return Err(AppError::Unprocessable {
                code: "tr31_usage_mismatch",
                message: "the key block's key usage does not match the requested usage",
            });
        }
        let mut key = new_key(spec, clear.algorithm(), &principal.actor())?;
        self.seal_into(&mut key, &clear, KeyOrigin::Tr31)?;
        self.repo.insert_key(&key).await?;
        self.audit(
            principal.actor(),
            "keys.imported_tr31",
            format!("key:{}", key.id),
            format!("{} under kek:{}", describe(&key), kek.id),
            ctx,
        )
        .await?;
        Ok(key)
    }

    /// One key.
    ///
    /// # Errors
    /// `not_found`.
    pub async fn get(&self, id: Uuid) -> AppResult<StoredKey> {
        self.repo
            .find_key(id)
            .await?
            .ok_or(AppError::NotFound("key"))
    }

    /// Keys, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self, usage: Option<KeyUsageKind>) -> AppResult<Vec<StoredKey>> {
        self.repo.list_keys(usage).await
    }

    /// `READY → ACTIVE` (`activate`) or `ACTIVE → RETIRED` (`retire`).
    ///
    /// # Errors
    /// `not_found`, `invalid_key_transition`.
    pub async fn transition(
        &self,
        principal: &Principal,
        id: Uuid,
        to: KeyState,
        ctx: &RequestContext,
    ) -> AppResult<StoredKey> {
        let key = self.get(id).await?;
        let from = match to {
            KeyState::Active => KeyState::Ready,
            KeyState::Retired => KeyState::Active,
            _ => return Err(AppError::field("state", "ACTIVE or RETIRED")),
        };
        if key.state != from || !self.repo.set_key_state(id, from, to, now_millis()).await? {
            return Err(AppError::Conflict {
                code: "invalid_key_transition",
                message: "the key is not in a state that allows this",
            });
        }
        // A retired BDK still decrypts, but a newly activated or retired zone PIN key changes
        // which key the processor connection uses.
        self.forget_hot_keys();
        let action = if to == KeyState::Active {
            "keys.activated"
        } else {
            "keys.retired"
        };
        self.audit(
            principal.actor(),
            action,
            format!("key:{id}"),
            describe(&key),
            ctx,
        )
        .await?;
        self.get(id).await
    }

    /// Opens a dual-control import naming 2 or 3 custodians.
    ///
    /// # Errors
    /// `validation_failed` (spec, custodian count, duplicates, unknown users).
    pub async fn open_ceremony(
        &self,
        principal: &Principal,
        spec: &KeySpec,
        custodians: &[Uuid],
        ctx: &RequestContext,
    ) -> AppResult<Ceremony> {
        let algorithm = parse_spec_algorithm(spec)?;
        let mut key = new_key(spec, algorithm, &principal.actor())?;
        key.origin = KeyOrigin::Components;
        let mut unique = custodians.to_vec();
        unique.sort_unstable();
        unique.dedup();
        if !(2..=3).contains(&custodians.len()) || unique.len() != custodians.len() {
            return Err(AppError::field(
                "custodians",
                "2 or 3 different user accounts",
            ));
        }
        for user in custodians {
            if !self.repo.user_exists(*user).await? {
                return Err(AppError::field(
                    "custodians",
                    "every custodian must be a user",
                ));
            }
        }
        let now = now_millis();
        let ceremony = Ceremony {
            id: Uuid::new_v4(),
            key_id: key.id,
            state: CeremonyState::Open,
            created_by: principal.actor(),
            created_at: now,
            updated_at: now,
            custodians: custodians
                .iter()
                .zip(1..)
                .map(|(user, position)| Custodian {
                    user_id: *user,
                    position,
                    component_kcv: None,
                    sealed: None,
                    submitted_at: None,
                })
                .collect(),
        };
        self.repo.insert_ceremony(&key, &ceremony).await?;
        let names: Vec<String> = custodians.iter().map(|u| format!("user:{u}")).collect();
        self.audit(
            principal.actor(),
            "keys.ceremony_opened",
            format!("ceremony:{}", ceremony.id),
            format!(
                "{} key:{} custodians {}",
                describe(&key),
                key.id,
                names.join(",")
            ),
            ctx,
        )
        .await?;
        Ok(ceremony)
    }

    /// A ceremony, for its custodians and key officers.
    ///
    /// # Errors
    /// `not_found`, `forbidden` for other callers.
    pub async fn ceremony(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> AppResult<(Ceremony, StoredKey)> {
        let ceremony = self
            .repo
            .find_ceremony(id)
            .await?
            .ok_or(AppError::NotFound("ceremony"))?;
        let allowed = match principal {
            Principal::User { id: user, role, .. } => {
                matches!(role, Role::Admin | Role::SecurityOfficer)
                    || ceremony.custodians.iter().any(|c| c.user_id == user.0)
            }
            _ => false,
        };
        if !allowed {
            return Err(AppError::Forbidden);
        }
        let key = self.get(ceremony.key_id).await?;
        Ok((ceremony, key))
    }

    /// A named custodian submits their component (hex).
    ///
    /// # Errors
    /// `not_found`, `forbidden` (not a named custodian; audited), `component_already_submitted`,
    /// `ceremony_not_open`, `validation_failed` (component).
    pub async fn submit_component(
        &self,
        principal: &Principal,
        id: Uuid,
        component_hex: &str,
        ctx: &RequestContext,
    ) -> AppResult<ComponentReceipt> {
        let Principal::User { id: user, .. } = principal else {
            return Err(AppError::Forbidden);
        };
        let user = user.0;
        let ceremony = self
            .repo
            .find_ceremony(id)
            .await?
            .ok_or(AppError::NotFound("ceremony"))?;
        let Some(custodian) = ceremony.custodians.iter().find(|c| c.user_id == user) else {
            self.audit(
                principal.actor(),
                "keys.component_refused",
                format!("ceremony:{id}"),
                "not a named custodian".to_owned(),
                ctx,
            )
            .await?;
            return Err(AppError::Forbidden);
        };
        if custodian.submitted_at.is_some() {
            return Err(AppError::Conflict {
                code: "component_already_submitted",
                message: "you already submitted your component for this ceremony",
            });
        }
        if ceremony.state != CeremonyState::Open {
            return Err(AppError::Conflict {
                code: "ceremony_not_open",
                message: "the ceremony no longer takes components",
            });
        }
        let key = self.get(ceremony.key_id).await?;
        let algorithm_text = algorithm_name(key.algorithm);
        let bytes = Zeroizing::new(
            hex::decode(component_hex.trim())
                .map_err(|_| AppError::field("component", "hex digits of the key's length"))?,
        );
        let component = SecretKey::new(key.algorithm, &bytes)
            .map_err(|_| AppError::field("component", "hex digits of the key's length"))?;
        let component_kcv = kcv_hex(&component);
        let sealed = self.store.wrap(
            &component_label(id, user, algorithm_text),
            component.expose_secret(),
        )?;
        let now = now_millis();
        if !self
            .repo
            .submit_component(id, user, &component_kcv, &sealed, now)
            .await?
        {
            return Err(AppError::Conflict {
                code: "component_already_submitted",
                message: "you already submitted your component for this ceremony",
            });
        }
        self.audit(
            principal.actor(),
            "keys.component_submitted",
            format!("ceremony:{id}"),
            format!("component kcv {component_kcv}"),
            ctx,
        )
        .await?;

        // Re-read after our own write: whoever commits the last component sees them all.
        let ceremony = self
            .repo
            .find_ceremony(id)
            .await?
            .ok_or(AppError::NotFound("ceremony"))?;
        let required = ceremony.custodians.len();
        let submitted = ceremony
            .custodians
            .iter()
            .filter(|c| c.submitted_at.is_some())
            .count();
        let mut combined_kcv = None;
        if submitted == required && ceremony.state == CeremonyState::Open {
            let mut combined = Zeroizing::new(vec![0u8; key.algorithm.key_len()]);
            for custodian in &ceremony.custodians {
                let sealed = custodian
                    .sealed
                    .as_ref()
                    .ok_or_else(|| crate::repository::corrupt("component"))?;
                let part = self.store.unwrap_bytes(
                    &component_label(id, custodian.user_id, algorithm_text),
                    sealed,
                )?;
                if part.len() != combined.len() {
                    return Err(crate::repository::corrupt("component length"));
                }
                combined
                    .iter_mut()
                    .zip(part.iter())
                    .for_each(|(a, b)| *a ^= b);
            }
            let combined = SecretKey::new(key.algorithm, &combined)
                .map_err(|_| crate::repository::corrupt("component length"))?;
            let kcv = kcv_hex(&combined);
            let sealed = self.store.wrap(
                &key_label(key.id, key.usage, algorithm_text),
                combined.expose_secret(),
            )?;
            if self
                .repo
                .complete_ceremony(id, key.id, &kcv, &sealed, now_millis())
                .await?
            {
                self.audit(
                    principal.actor(),
                    "keys.ceremony_complete",
                    format!("ceremony:{id}"),
                    format!("key:{} combined kcv {kcv}", key.id),
                    ctx,
                )
                .await?;
            }
            combined_kcv = Some(kcv);
        }
        Ok(ComponentReceipt {
            component_kcv,
            submitted,
            required,
            combined_kcv,
        })
    }

    /// Confirms a complete ceremony with the expected combined KCV, activating the key.
    ///
    /// # Errors
    /// `forbidden` (not a custodian nor a security officer), `ceremony_not_complete`,
    /// `kcv_mismatch`.
    pub async fn confirm_ceremony(
        &self,
        principal: &Principal,
        id: Uuid,
        expected_kcv: &str,
        ctx: &RequestContext,
    ) -> AppResult<StoredKey> {
        let ceremony = self
            .repo
            .find_ceremony(id)
            .await?
            .ok_or(AppError::NotFound("ceremony"))?;
        let allowed = match principal {
            Principal::User { id: user, role, .. } => {
                *role == Role::SecurityOfficer
                    || ceremony.custodians.iter().any(|c| c.user_id == user.0)
            }
            _ => false,
        };
        if !allowed {
            return Err(AppError::Forbidden);
        }
        if ceremony.state != CeremonyState::Complete {
            return Err(AppError::Conflict {
                code: "ceremony_not_complete",
                message: "not every custodian has submitted a component yet",
            });
        }
        let key = self.get(ceremony.key_id).await?;
        let stored_kcv = key
            .kcv
            .as_deref()
            .ok_or_else(|| crate::repository::corrupt("stored_keys.kcv"))?;
        if !kcv_matches(expected_kcv, stored_kcv)? {
            self.audit(
                principal.actor(),
                "keys.ceremony_kcv_mismatch",
                format!("ceremony:{id}"),
                format!("key:{} expected kcv does not match", key.id),
                ctx,
            )
            .await?;
            return Err(AppError::Unprocessable {
                code: "kcv_mismatch",
                message: "the combined key's KCV is not the expected one",
            });
        }
        if !self.repo.confirm_ceremony(id, key.id, now_millis()).await? {
            return Err(AppError::Conflict {
                code: "ceremony_not_complete",
                message: "the ceremony changed concurrently",
            });
        }
        self.audit(
            principal.actor(),
            "keys.ceremony_confirmed",
            format!("ceremony:{id}"),
            format!("key:{} {} activated", key.id, describe(&key)),
            ctx,
        )
        .await?;
        self.get(key.id).await
    }

    /// Both key profiles.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn profiles(&self) -> AppResult<Vec<KeyProfile>> {
        self.repo.list_profiles().await
    }

    /// Changes the profile of a device mode.
    ///
    /// # Errors
    /// `validation_failed` (rotate_after, BDK of the wrong family or not active).
    pub async fn update_profile(
        &self,
        principal: &Principal,
        mode: DeviceMode,
        scheme: DukptScheme,
        bdk_id: Option<Uuid>,
        rotate_after: i64,
        ctx: &RequestContext,
    ) -> AppResult<KeyProfile> {
        if !(1..=2_000_000).contains(&rotate_after) {
            return Err(AppError::field("rotate_after", "1 to 2000000"));
        }
        if let Some(bdk_id) = bdk_id {
            let bdk = self.get(bdk_id).await?;
            let family_ok = match scheme {
                DukptScheme::Aes128 => !bdk.algorithm.is_tdes(),
                DukptScheme::Tdes => bdk.algorithm == KeyAlgorithm::Tdes2,
            };
            if bdk.usage != KeyUsageKind::Bdk || !family_ok || bdk.state != KeyState::Active {
                return Err(AppError::field(
                    "bdk_id",
                    "an active BDK of the scheme's family",
                ));
            }
        }
        let profile = KeyProfile {
            mode,
            scheme,
            bdk_id,
            rotate_after,
            updated_by: principal.actor(),
            updated_at: now_millis(),
        };
        if !self.repo.update_profile(&profile).await? {
            return Err(AppError::NotFound("key profile"));
        }
        self.audit(
            principal.actor(),
            "keys.profile_updated",
            format!("key_profile:{}", mode.as_str()),
            format!(
                "scheme {} bdk {} rotate_after {rotate_after}",
                super::model::scheme_name(scheme),
                bdk_id.map_or_else(|| "newest".to_owned(), |id| id.to_string())
            ),
            ctx,
        )
        .await?;
        Ok(profile)
    }

    /// Re-wraps every stored key, component and device key under the newest master key.
    ///
    /// # Errors
    /// A stored value that does not authenticate (nothing changes), storage errors.
    pub async fn rotate_master(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
    ) -> AppResult<(u32, u64)> {
        let rewrapped = self.store.rotate_master().await?;
        self.forget_hot_keys();
        let version = self.store.master_version();
        self.audit(
            principal.actor(),
            "keys.master_rotated",
            format!("master_key:{version}"),
            format!("{rewrapped} wrapped values re-wrapped under master key version {version}"),
            ctx,
        )
        .await?;
        Ok((version, rewrapped))
    }
}
