//! Devices: challenge, registration with attestation, the lifecycle state machine, and
//! authentication of device-signed requests.
//!
//! Identity is the device's P-256 key: registering twice with one key is refused, and IMEI
//! or serial never select a device.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use super::RequestContext;
use super::attestation::{self, AndroidKeyVerifier, AttestationRecord};
use super::audit::AuditService;
use crate::domain::{
    Device, DeviceAction, DeviceFacts, DeviceId, DeviceMode, DeviceState, DeviceStateChange,
    MerchantId, MerchantStatus, NewAuditRecord, Principal, UnixMillis, now_millis,
};
use crate::error::{AppError, AppResult, FieldError};
use crate::infra::ecdsa::P256Verifier;
use crate::infra::keys::{SecretBytes, random_bytes};
use crate::infra::stores::{Event, EventBus, OnceStore, RateLimiter};
use crate::repository::attestations::AttestationRepository;
use crate::repository::devices::{DeviceFilter, DeviceRepository, StateTransition};
use crate::repository::merchants::MerchantRepository;
use crate::service::ports::{EVENT_DEVICE_STATE_CHANGED, HealthGate};

/// How long a registration challenge is valid.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Largest accepted clock skew of a signed device request.
pub const MAX_SKEW: Duration = Duration::from_secs(300);
/// How long a used nonce is remembered (longer than the accepted skew on both sides).
const NONCE_TTL: Duration = Duration::from_secs(2 * 300 + 60);

/// Registration attempts one client address may make per window.
const MAX_REGISTRATIONS_PER_ADDR: u64 = 120;
const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);

const CHALLENGE_CONTEXT: &[u8] = b"softpos-device-challenge-v1";
/// What the device signs in the software attestation format.
pub const REGISTRATION_CONTEXT: &str = "softpos-device-registration-v1";
/// First line of the string a device signs for each request.
pub const REQUEST_CONTEXT: &str = "SOFTPOS-DEVICE-V1";

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Device policy.
#[derive(Debug, Clone)]
pub struct DevicePolicy {
    /// Accept the software attestation format (desktop and web terminals). Off by default:
    /// only test and development deployments should turn it on.
    pub allow_software_attestation: bool,
}

/// Attestation evidence.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// `software` or `android_key`.
    pub format: String,
    /// Software format: ECDSA P-256/SHA-256 signature (DER or raw r‖s, base64) by the device
    /// key over `REGISTRATION_CONTEXT \n challenge \n base64(public key)`.
    pub signature: String,
    /// `android_key` format: the key's certificate chain, leaf first, each base64 DER or PEM.
    /// The attestationChallenge is the registration challenge, base64url-decoded.
    pub certificate_chain: Vec<String>,
}

/// A registration request.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Challenge from [`DeviceService::challenge`].
    pub challenge: String,
    /// P-256 public key, SEC1 (uncompressed or compressed), base64.
    pub public_key: String,
    /// Facts.
    pub facts: DeviceFacts,
    /// Mode.
    pub mode: DeviceMode,
    /// Merchant.
    pub merchant_id: MerchantId,
    /// Evidence.
    pub attestation: Attestation,
}

/// A signed device request, as received.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    /// `X-Device-Id`.
    pub device_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
    /// `X-Device-Timestamp`, Unix seconds.
    pub timestamp: &'a str,
    /// `X-Device-Nonce`.
    pub nonce: &'a str,
    /// Body bytes.
    pub body: &'a [u8],
    /// `X-Device-Signature`, base64.
    pub signature: &'a str,
}

/// The string a device signs for a request.
pub fn request_signing_string(
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{REQUEST_CONTEXT}\n{}\n{path}\n{timestamp}\n{nonce}\n{}",
        method.to_uppercase(),
        hex::encode(Sha256::digest(body))
    )
}

/// The string a device signs in the software attestation format.
pub fn registration_signing_string(challenge: &str, public_key_b64: &str) -> String {
    format!("{REGISTRATION_CONTEXT}\n{challenge}\n{public_key_b64}")
}

fn parse_signature(text: &str) -> Option<Signature> {
    let bytes = B64.decode(text.trim()).ok()?;
    Signature::from_der(&bytes)
        .ok()
        .or_else(|| Signature::from_slice(&bytes).ok())
}

/// The device service.
pub struct DeviceService {
    devices: Arc<dyn DeviceRepository>,
    merchants: Arc<dyn MerchantRepository>,
    once: Arc<dyn OnceStore>,
    limiter: Arc<dyn RateLimiter>,
    audit: Arc<AuditService>,
    challenge_key: Vec<u8>,
    policy: DevicePolicy,
    android: Option<Arc<AndroidKeyVerifier>>,
    attestations: Option<Arc<dyn AttestationRepository>>,
    /// Late-bound: health is built after devices (threats need devices, health needs threats).
    health_gate: OnceLock<Arc<dyn HealthGate>>,
    /// Late-bound live-event bus for lifecycle transitions.
    events: OnceLock<Arc<dyn EventBus>>,
}

impl std::fmt::Debug for DeviceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceService")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl DeviceService {
    /// Builds the service. The challenge MAC key is derived from the server secret, so
    /// every instance accepts challenges issued by any other.
    pub fn new(
        devices: Arc<dyn DeviceRepository>,
        merchants: Arc<dyn MerchantRepository>,
        once: Arc<dyn OnceStore>,
        limiter: Arc<dyn RateLimiter>,
        audit: Arc<AuditService>,
        server_secret: &SecretBytes,
        policy: DevicePolicy,
    ) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(CHALLENGE_CONTEXT);
        hasher.update(server_secret.expose());
        Self {
            devices,
            merchants,
            once,
            limiter,
            audit,
            challenge_key: hasher.finalize().to_vec(),
            policy,
            android: None,
            attestations: None,
            health_gate: OnceLock::new(),
            events: OnceLock::new(),
        }
    }

    /// Enables the `android_key` format and stores every accepted attestation with its device.
    #[must_use]
    pub fn with_attestation(
        mut self,
        android: Arc<AndroidKeyVerifier>,
        attestations: Arc<dyn AttestationRepository>,
    ) -> Self {
        self.android = Some(android);
        self.attestations = Some(attestations);
        self
    }

    /// The stored attestation result of a device.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn attestation(&self, id: DeviceId) -> AppResult<Option<AttestationRecord>> {
        match &self.attestations {
            Some(repo) => repo.latest(id).await,
            None => Ok(None),
        }
    }

    /// Wires the health gate that resume from `SUSPENDED` asks. Until it is set, resume is
    /// refused (fail closed). A second call is ignored.
    pub fn set_health_gate(&self, gate: Arc<dyn HealthGate>) {
        let _ = self.health_gate.set(gate);
    }

    /// Wires the bus that lifecycle transitions are published on. A second call is ignored.
    pub fn set_events(&self, events: Arc<dyn EventBus>) {
        let _ = self.events.set(events);
    }

    async fn publish_state_change(
        &self,
        device: DeviceId,
        (from, to): (Option<DeviceState>, DeviceState),
        action: &str,
        actor: &str,
        reason: Option<&str>,
        at: UnixMillis,
    ) {
        let Some(events) = self.events.get() else {
            return;
        };
        let event = Event {
            kind: EVENT_DEVICE_STATE_CHANGED.to_owned(),
            payload: serde_json::json!({
                "id": uuid::Uuid::new_v4(),
                "device_id": device.0,
                "from": from.map(DeviceState::as_str),
                "to": to.as_str(),
                "action": action,
                "actor": actor,
                "reason": reason,
                "at": at,
            }),
        };
        // The transition is committed and audited; a lost live notification must not undo it.
        if let Err(error) = events.publish(&event).await {
            tracing::warn!(?error, "device state event not published");
        }
    }

    /// Resume needs a passing health report received after the device was suspended and
    /// still within the policy's maximum age.
    async fn check_resume(&self, device: &Device) -> AppResult<()> {
        let refused = |message| AppError::Conflict {
            code: "resume_requires_health_check",
            message,
        };
        let Some(gate) = self.health_gate.get() else {
            return Err(refused("no health gate is configured"));
        };
        match gate.fresh_passing_verdict(device.id).await? {
            Ok(verdict) if verdict.received_at > device.updated_at => Ok(()),
            Ok(_) => Err(refused(
                "the latest passing health check predates the suspension; send a fresh one",
            )),
            Err(crate::service::ports::HealthRefusal::NoHealthCheck) => {
                Err(refused("the device never sent a valid health check"))
            }
            Err(crate::service::ports::HealthRefusal::HealthCheckFailed) => {
                Err(refused("the latest health check failed the policy"))
            }
            Err(crate::service::ports::HealthRefusal::HealthCheckStale) => Err(refused(
                "the latest health check is older than the policy allows",
            )),
        }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.challenge_key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    /// Issues a registration challenge: 16 random bytes and an expiry, MACed by the server,
    /// so no storage is needed until it is used (once).
    pub fn challenge(&self) -> (String, UnixMillis) {
        let expires_at = now_millis() + i64::try_from(CHALLENGE_TTL.as_millis()).unwrap_or(300_000);
        let mut payload = random_bytes::<16>().to_vec();
        payload.extend_from_slice(&expires_at.to_be_bytes());
        let tag = self.mac(&payload).finalize().into_bytes();
        payload.extend_from_slice(&tag[..16]);
        (B64URL.encode(payload), expires_at)
    }

    fn check_challenge(&self, challenge: &str) -> AppResult<()> {
        let refused = || AppError::Unprocessable {
            code: "invalid_challenge",
            message: "the challenge is unknown, forged or expired",
        };
        let bytes = B64URL.decode(challenge).map_err(|_| refused())?;
        if bytes.len() != 40 {
            return Err(refused());
        }
        let (payload, tag) = bytes.split_at(24);
        if self.mac(payload).verify_truncated_left(tag).is_err() {
            return Err(refused());
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&payload[16..24]);
        if i64::from_be_bytes(expiry) <= now_millis() {
            return Err(refused());
        }
        Ok(())
    }

    /// Registers a device after verifying the challenge and the attestation evidence.
    ///
    /// # Errors
    /// `invalid_challenge`, `challenge_already_used`, `attestation_format_not_allowed`,
    /// `attestation_format_unsupported`, `attestation_invalid`, `validation_failed`,
    /// `not_found` (merchant), `merchant_not_active`, `device_already_registered`.
    pub async fn register(
        &self,
        registration: Registration,
        ctx: &RequestContext,
    ) -> AppResult<Device> {
        // Registration is unauthenticated until the evidence is checked: bound the work one
        // client address can cause.
        let addr = ctx.client_addr.as_deref().unwrap_or("unknown");
        let hits = self
            .limiter
            .hit(&format!("device_register:addr:{addr}"), REGISTRATION_WINDOW)
            .await?;
        if hits.count > MAX_REGISTRATIONS_PER_ADDR {
            return Err(AppError::TooManyRequests {
                retry_after: hits.resets_in,
            });
        }
        check_facts(&registration.facts)?;
        self.check_challenge(&registration.challenge)?;
        let public_key = B64
            .decode(registration.public_key.trim())
            .map_err(|_| AppError::field("public_key", "base64 SEC1 P-256 public key"))?;
        let verifying_key = VerifyingKey::from_sec1_bytes(&public_key)
            .map_err(|_| AppError::field("public_key", "not a valid P-256 public key"))?;
        let uncompressed = verifying_key.to_sec1_bytes().to_vec();

        let (notes, record) = match registration.attestation.format.as_str() {
            "software" => {
                if !self.policy.allow_software_attestation {
                    return Err(AppError::Unprocessable {
                        code: "attestation_format_not_allowed",
                        message: "software attestation is not allowed by policy",
                    });
                }
                let signature =
                    parse_signature(&registration.attestation.signature).ok_or_else(|| {
                        AppError::field("attestation.signature", "base64 ECDSA signature")
                    })?;
                let message = registration_signing_string(
                    &registration.challenge,
                    registration.public_key.trim(),
                );
                if verifying_key
                    .verify(message.as_bytes(), &signature)
                    .is_err()
                {
                    return Err(AppError::Unprocessable {
                        code: "attestation_invalid",
                        message: "the attestation signature does not verify with the device key",
                    });
                }
                (
                    vec![
                        "format software: signature over the challenge verified with the device key"
                            .to_owned(),
                        "policy: software attestation allowed".to_owned(),
                        "hardware-backed key: not proven (software format)".to_owned(),
                    ],
                    attestation::software_record(now_millis()),
                )
            }
            "android_key" => {
                let Some(android) = &self.android else {
                    return Err(AppError::Unprocessable {
                        code: "attestation_format_unsupported",
                        message: "Android Key Attestation is not configured on this server",
                    });
                };
                // check_challenge accepted it, so it decodes.
                let challenge = B64URL.decode(&registration.challenge).unwrap_or_default();
                let (verification, record) = android
                    .verify(
                        &registration.attestation.certificate_chain,
                        &challenge,
                        &uncompressed,
                        &registration.facts,
                        now_millis() / 1000,
                    )
                    .await?;
                let notes = attestation::notes(&verification);
                (notes, record)
            }
            _ => {
                return Err(AppError::field(
                    "attestation.format",
                    "`software` or `android_key`",
                ));
            }
        };

        let merchant = self
            .merchants
            .find_by_id(registration.merchant_id)
            .await?
            .ok_or(AppError::NotFound("merchant"))?;
        if merchant.status != MerchantStatus::Active {
            return Err(AppError::Conflict {
                code: "merchant_not_active",
                message: "devices can only be registered to an active merchant",
            });
        }
        // Single use, across instances; claimed only after the evidence checked out.
        if !self
            .once
            .claim(
                &format!("challenge:{}", registration.challenge),
                CHALLENGE_TTL * 2,
            )
            .await?
        {
            return Err(AppError::Conflict {
                code: "challenge_already_used",
                message: "this challenge was already used",
            });
        }
        let now = now_millis();
        let device = Device {
            id: DeviceId::new(),
            merchant_id: merchant.id,
            key_fingerprint: hex::encode(Sha256::digest(&uncompressed)),
            public_key: uncompressed,
            mode: registration.mode,
            state: DeviceState::Registered,
            facts: registration.facts,
            attestation_format: registration.attestation.format,
            attestation_notes: notes,
            created_at: now,
            updated_at: now,
        };
        let actor = format!("device:{}", device.id);
        self.devices
            .insert(&device, &actor, ctx.request_id.clone())
            .await?;
        if let Some(attestations) = &self.attestations {
            attestations.insert(device.id, &record).await?;
        }
        metrics::counter!("device_registrations_total", "format" => device.attestation_format.clone())
            .increment(1);
        self.publish_state_change(
            device.id,
            (None, device.state),
            "register",
            &actor,
            None,
            device.created_at,
        )
        .await;
        self.audit
            .append(NewAuditRecord {
                actor,
                action: "device.registered".to_owned(),
                target: Some(format!("device:{}", device.id)),
                reason: Some(format!(
                    "merchant:{} format {}",
                    device.merchant_id, device.attestation_format
                )),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(device)
    }

    /// Applies a lifecycle action.
    ///
    /// # Errors
    /// `not_found`, `invalid_device_transition` (409), `validation_failed` (reason).
    pub async fn transition(
        &self,
        actor: &str,
        id: DeviceId,
        action: DeviceAction,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> AppResult<Device> {
        if reason
            .as_ref()
            .is_some_and(|reason| reason.chars().count() > 500)
        {
            return Err(AppError::field("reason", "at most 500 characters"));
        }
        let device = self.get(id).await?;
        let Some(to) = action.next_state(device.state) else {
            return Err(AppError::Conflict {
                code: "invalid_device_transition",
                message: "this action is not allowed in the device's current state",
            });
        };
        if action == DeviceAction::Resume {
            self.check_resume(&device).await?;
        }
        let at = now_millis();
        let applied = self
            .devices
            .transition(&StateTransition {
                device_id: id,
                from: device.state,
                to,
                action: action.as_str(),
                actor: actor.to_owned(),
                reason: reason.clone(),
                request_id: ctx.request_id.clone(),
                at,
            })
            .await?;
        if !applied {
            return Err(AppError::Conflict {
                code: "invalid_device_transition",
                message: "the device changed state concurrently; reload and retry",
            });
        }
        self.audit
            .append(NewAuditRecord {
                actor: actor.to_owned(),
                action: format!("device.{}", action.as_str()),
                target: Some(format!("device:{id}")),
                reason: Some(format!(
                    "{} -> {}{}",
                    device.state.as_str(),
                    to.as_str(),
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        self.publish_state_change(
            id,
            (Some(device.state), to),
            action.as_str(),
            actor,
            reason.as_deref(),
            at,
        )
        .await;
        self.get(id).await
    }

    /// Applies a lifecycle action on behalf of a person or key.
    ///
    /// # Errors
    /// As [`DeviceService::transition`].
    pub async fn act(
        &self,
        principal: &Principal,
        id: DeviceId,
        action: DeviceAction,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> AppResult<Device> {
        self.transition(&principal.actor(), id, action, reason, ctx)
            .await
    }

    /// One device.
    ///
    /// # Errors
    /// `not_found`.
    pub async fn get(&self, id: DeviceId) -> AppResult<Device> {
        self.devices
            .find_by_id(id)
            .await?
            .ok_or(AppError::NotFound("device"))
    }

    /// A device's state history.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn history(&self, id: DeviceId) -> AppResult<Vec<DeviceStateChange>> {
        self.devices.history(id).await
    }

    /// Statistics for the dashboard over the stored devices (registrations: last 30 days).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn stats(&self) -> AppResult<crate::domain::DeviceStats> {
        let since = (now_millis() / 86_400_000 - 29) * 86_400_000;
        self.devices.stats(since).await
    }

    /// A page of devices.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self, filter: &DeviceFilter) -> AppResult<Vec<Device>> {
        self.devices.list(filter).await
    }

    /// Authenticates a device-signed request: known, not revoked device; fresh timestamp;
    /// valid signature over method, path, timestamp, nonce and body digest; unused nonce
    /// (claimed across instances).
    ///
    /// # Errors
    /// `DeviceAuth` with `unknown_device`, `device_revoked`, `stale_timestamp`,
    /// `malformed_signature_headers`, `bad_signature` or `replayed_nonce`.
    pub async fn authenticate(&self, request: &SignedRequest<'_>) -> AppResult<Device> {
        let nonce_ok = (16..=64).contains(&request.nonce.len())
            && request
                .nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let timestamp: i64 = request
            .timestamp
            .parse()
            .map_err(|_| AppError::DeviceAuth("malformed_signature_headers"))?;
        if !nonce_ok {
            return Err(AppError::DeviceAuth("malformed_signature_headers"));
        }
        let skew = (now_millis() / 1000 - timestamp).unsigned_abs();
        if skew > MAX_SKEW.as_secs() {
            return Err(AppError::DeviceAuth("stale_timestamp"));
        }
        let id: DeviceId = request
            .device_id
            .parse()
            .map_err(|_| AppError::DeviceAuth("unknown_device"))?;
        let device = self
            .devices
            .find_by_id(id)
            .await?
            .ok_or(AppError::DeviceAuth("unknown_device"))?;
        if device.state == DeviceState::Revoked {
            return Err(AppError::DeviceAuth("device_revoked"));
        }
        let key = P256Verifier::from_sec1(&device.public_key)
            .ok_or_else(|| AppError::Other(anyhow::anyhow!("stored device key does not parse")))?;
        let signature = B64
            .decode(request.signature.trim())
            .map_err(|_| AppError::DeviceAuth("bad_signature"))?;
        let message = request_signing_string(
            request.method,
            request.path,
            request.timestamp,
            request.nonce,
            request.body,
        );
        if !key.verify(message.as_bytes(), &signature) {
            metrics::counter!("device_request_auth_failures_total", "reason" => "bad_signature")
                .increment(1);
            return Err(AppError::DeviceAuth("bad_signature"));
        }
        // Claimed after the signature checks out, so nobody can burn a device's nonces.
        if !self
            .once
            .claim(&format!("nonce:{}:{}", device.id, request.nonce), NONCE_TTL)
            .await?
        {
            metrics::counter!("device_request_auth_failures_total", "reason" => "replayed_nonce")
                .increment(1);
            return Err(AppError::DeviceAuth("replayed_nonce"));
        }
        Ok(device)
    }
}

fn check_facts(facts: &DeviceFacts) -> AppResult<()> {
    let mut problems = Vec::new();
    let mut text = |field: &str, value: &str, max: usize| {
        if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
            problems.push(FieldError::new(
                format!("facts.{field}"),
                format!("1 to {max} printable characters"),
            ));
        }
    };
    text("model", &facts.model, 100);
    text("os_version", &facts.os_version, 32);
    text("app_package", &facts.app_package, 200);
    text("app_version", &facts.app_version, 64);
    let patch_ok = chrono::NaiveDate::parse_from_str(&facts.security_patch, "%Y-%m-%d").is_ok();
    if !patch_ok {
        problems.push(FieldError::new(
            "facts.security_patch",
            "a date, YYYY-MM-DD",
        ));
    }
    let digest_ok = facts.app_signing_digest.len() == 64
        && facts
            .app_signing_digest
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
    if !digest_ok {
        problems.push(FieldError::new(
            "facts.app_signing_digest",
            "SHA-256, 64 hex digits",
        ));
    }
    for (field, value) in [("imei", &facts.imei), ("serial", &facts.serial)] {
        if value.as_ref().is_some_and(|v| v.is_empty() || v.len() > 64) {
            problems.push(FieldError::new(
                format!("facts.{field}"),
                "1 to 64 characters",
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (state, action) pair: exactly the documented transitions are allowed.
    #[test]
    fn lifecycle_table() {
        use DeviceAction as A;
        use DeviceState as S;
        let allowed = [
            (S::Registered, A::Approve, S::Approved),
            (S::Registered, A::Reject, S::Revoked),
            (S::Approved, A::Activate, S::Active),
            (S::Active, A::Suspend, S::Suspended),
            (S::Suspended, A::Resume, S::Active),
            (S::Registered, A::Revoke, S::Revoked),
            (S::Approved, A::Revoke, S::Revoked),
            (S::Active, A::Revoke, S::Revoked),
            (S::Suspended, A::Revoke, S::Revoked),
        ];
        for state in S::ALL {
            for action in A::ALL {
                let expected = allowed
                    .iter()
                    .find(|(from, act, _)| *from == state && *act == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(action.next_state(state), expected, "{state:?} {action:?}");
            }
        }
    }

    #[test]
    fn signing_string_binds_every_part() {
        let base = request_signing_string(
            "post",
            "/api/v1/device/self",
            "1",
            "nonce-0000000000",
            b"{}",
        );
        assert!(base.starts_with("SOFTPOS-DEVICE-V1\nPOST\n/api/v1/device/self\n1\n"));
        for other in [
            request_signing_string("GET", "/api/v1/device/self", "1", "nonce-0000000000", b"{}"),
            request_signing_string(
                "POST",
                "/api/v1/device/selF",
                "1",
                "nonce-0000000000",
                b"{}",
            ),
            request_signing_string(
                "POST",
                "/api/v1/device/self",
                "2",
                "nonce-0000000000",
                b"{}",
            ),
            request_signing_string(
                "POST",
                "/api/v1/device/self",
                "1",
                "nonce-0000000001",
                b"{}",
            ),
            request_signing_string(
                "POST",
                "/api/v1/device/self",
                "1",
                "nonce-0000000000",
                b"{ }",
            ),
        ] {
            assert_ne!(base, other);
        }
    }
}
