//! `/api/v1/devices` (onboarding and lifecycle, for people) and `/api/v1/device` (calls
//! signed by a device's own key).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    AppJson, AppPath, AppQuery, Authorized, Ctx, DeviceApprovers, DeviceGuardians, DeviceReaders,
    Policy, SignedDevice,
};
use super::paging;
use super::state::AppState;
use crate::domain::{
    Device, DeviceAction, DeviceFacts, DeviceId, DeviceMode, DeviceState, DeviceStateChange,
    MerchantId, to_rfc3339,
};
use crate::error::{AppError, ErrorBody, FieldError};
use crate::repository::devices::DeviceFilter;
use crate::service::devices::{Attestation, Registration};

/// A registration challenge.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChallengeResponse {
    /// Opaque, single use; sign it as the attestation format requires.
    pub challenge: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Attestation evidence.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationRequest {
    /// `software` (desktop/web terminals, when policy allows) or `android_key`.
    pub format: String,
    /// Software format: base64 ECDSA P-256/SHA-256 signature (DER or r‖s) by the device key
    /// over `softpos-device-registration-v1\n<challenge>\n<public_key as sent>`.
    #[serde(default)]
    pub signature: String,
    /// `android_key` format: the device key's attestation certificate chain from
    /// `KeyStore.getCertificateChain()`, leaf first, each element base64 DER or PEM. The key
    /// must have been generated with `setAttestationChallenge(<challenge base64url-decoded>)`.
    #[serde(default)]
    pub certificate_chain: Vec<String>,
}

/// A registration.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    /// Challenge from `POST /api/v1/devices/challenge`.
    pub challenge: String,
    /// P-256 public key, SEC1, base64.
    pub public_key: String,
    /// Device facts.
    pub facts: DeviceFacts,
    /// Mode.
    pub mode: DeviceMode,
    /// Merchant the device belongs to.
    pub merchant_id: Uuid,
    /// Evidence over the challenge.
    pub attestation: AttestationRequest,
}

/// A device on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceResponse {
    /// Id.
    pub id: Uuid,
    /// Merchant.
    pub merchant_id: Uuid,
    /// State.
    pub state: DeviceState,
    /// Mode.
    pub mode: DeviceMode,
    /// SHA-256 of the public key (SEC1 uncompressed), hex.
    pub key_fingerprint: String,
    /// Public key, SEC1 uncompressed, base64.
    pub public_key: String,
    /// Facts reported at registration.
    pub facts: DeviceFacts,
    /// Attestation format.
    pub attestation_format: String,
    /// What the verifier found.
    pub attestation_notes: Vec<String>,
    /// Registration time.
    pub registered_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Device> for DeviceResponse {
    fn from(device: Device) -> Self {
        Self {
            id: device.id.0,
            merchant_id: device.merchant_id.0,
            state: device.state,
            mode: device.mode,
            key_fingerprint: device.key_fingerprint,
            public_key: base64::engine::general_purpose::STANDARD.encode(&device.public_key),
            facts: device.facts,
            attestation_format: device.attestation_format,
            attestation_notes: device.attestation_notes,
            registered_at: to_rfc3339(device.created_at),
            updated_at: to_rfc3339(device.updated_at),
        }
    }
}

/// One state change.
#[derive(Debug, Serialize, ToSchema)]
pub struct StateChangeResponse {
    /// Previous state (absent at registration).
    pub from_state: Option<DeviceState>,
    /// New state.
    pub to_state: DeviceState,
    /// Action.
    pub action: String,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<DeviceStateChange> for StateChangeResponse {
    fn from(change: DeviceStateChange) -> Self {
        Self {
            from_state: change.from_state,
            to_state: change.to_state,
            action: change.action,
            actor: change.actor,
            reason: change.reason,
            at: to_rfc3339(change.at),
        }
    }
}

/// A device with its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceDetail {
    /// The device.
    #[serde(flatten)]
    pub device: DeviceResponse,
    /// State changes, oldest first.
    pub history: Vec<StateChangeResponse>,
    /// The stored attestation verification result (absent for devices registered before
    /// results were stored).
    pub attestation: Option<AttestationResultResponse>,
}

/// One check of an attestation verification.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttestationCheckResponse {
    /// Stable name, e.g. `chain_to_google_root`, `challenge_matches`, `device_locked`.
    pub name: String,
    /// `pass`, `fail` or `skipped`.
    pub outcome: String,
    /// Why.
    pub reason: String,
}

/// The attestation verification result stored with a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttestationResultResponse {
    /// `android_key` or `software`.
    pub format: String,
    /// `accepted`.
    pub verdict: String,
    /// attestationSecurityLevel (`TRUSTED_ENVIRONMENT`, `STRONG_BOX`, …).
    pub attestation_security_level: Option<String>,
    /// KeyMint security level.
    pub keymint_security_level: Option<String>,
    /// attestationVersion.
    pub attestation_version: Option<i64>,
    /// Every check.
    pub checks: Vec<AttestationCheckResponse>,
    /// The parsed KeyDescription (public values).
    #[schema(value_type = Option<Object>)]
    pub key_description: Option<serde_json::Value>,
    /// When verified.
    pub verified_at: DateTime<Utc>,
}

impl From<crate::service::attestation::AttestationRecord> for AttestationResultResponse {
    fn from(record: crate::service::attestation::AttestationRecord) -> Self {
        Self {
            format: record.format,
            verdict: record.verdict,
            attestation_security_level: record.attestation_security_level,
            keymint_security_level: record.keymint_security_level,
            attestation_version: record.attestation_version,
            checks: serde_json::from_value(record.checks).unwrap_or_default(),
            key_description: record.key_description,
            verified_at: to_rfc3339(record.verified_at),
        }
    }
}

/// Why an action is taken.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceActionRequest {
    /// Reason, 1–500 characters (recorded in the history and the audit log).
    pub reason: String,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Only this state.
    pub state: Option<DeviceState>,
    /// Only this merchant.
    pub merchant_id: Option<Uuid>,
    /// Case-insensitive substring of the model (literal).
    pub model: Option<String>,
    /// Registered at or after (RFC 3339).
    pub registered_since: Option<DateTime<Utc>>,
    /// Registered before (RFC 3339).
    pub registered_until: Option<DateTime<Utc>>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// A page of devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevicePage {
    /// Devices, oldest first.
    pub devices: Vec<DeviceResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What a device learns about itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSelfResponse {
    /// Id.
    pub device_id: Uuid,
    /// State.
    pub state: DeviceState,
    /// Server time, for clock checks.
    pub server_time: DateTime<Utc>,
    /// Bytes of body received and covered by the signature.
    pub body_bytes: usize,
}

impl TryFrom<DeviceQuery> for DeviceFilter {
    type Error = AppError;
    fn try_from(query: DeviceQuery) -> Result<Self, Self::Error> {
        let mut problems = Vec::new();
        let (after, limit) = paging::page(query.cursor.as_deref(), query.limit, &mut problems);
        if query
            .model
            .as_ref()
            .is_some_and(|m| m.chars().count() > 100)
        {
            problems.push(FieldError::new("model", "at most 100 characters"));
        }
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        Ok(DeviceFilter {
            state: query.state,
            merchant_id: query.merchant_id.map(MerchantId),
            model: query.model.filter(|m| !m.is_empty()),
            registered_since: query.registered_since.map(|at| at.timestamp_millis()),
            registered_until: query.registered_until.map(|at| at.timestamp_millis()),
            after,
            limit,
        })
    }
}

/// A count for one key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Count<K> {
    /// The key.
    pub key: K,
    /// How many devices.
    pub count: i64,
}

/// Dashboard statistics computed from the stored devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStatsResponse {
    /// All devices.
    pub total: i64,
    /// Per state.
    pub by_state: Vec<Count<DeviceState>>,
    /// Per model (top 20).
    pub by_model: Vec<Count<String>>,
    /// Per merchant (top 20).
    pub by_merchant: Vec<Count<Uuid>>,
    /// Registrations per UTC day over the last 30 days (days without any are omitted).
    pub registrations_per_day: Vec<Count<chrono::NaiveDate>>,
}

/// Device statistics for the dashboard, computed from the data.
#[utoipa::path(get, path = "/api/v1/devices/stats", tag = "devices",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = DeviceStatsResponse)))]
pub async fn device_stats(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
) -> Result<Json<DeviceStatsResponse>, AppError> {
    let stats = state.devices.stats().await?;
    let count = |(key, count)| Count { key, count };
    Ok(Json(DeviceStatsResponse {
        total: stats.total,
        by_state: stats.by_state.into_iter().map(count).collect(),
        by_model: stats
            .by_model
            .into_iter()
            .map(|(key, count)| Count { key, count })
            .collect(),
        by_merchant: stats
            .by_merchant
            .into_iter()
            .map(|(id, count)| Count { key: id.0, count })
            .collect(),
        registrations_per_day: stats
            .registrations_per_day
            .into_iter()
            .map(|(day, count)| Count {
                key: to_rfc3339(day * 86_400_000).date_naive(),
                count,
            })
            .collect(),
    }))
}

/// Issues a single-use registration challenge (valid 5 minutes).
#[utoipa::path(post, path = "/api/v1/devices/challenge", tag = "devices",
    responses((status = 200, body = ChallengeResponse)))]
pub async fn create_challenge(State(state): State<AppState>) -> Json<ChallengeResponse> {
    let (challenge, expires_at) = state.devices.challenge();
    Json(ChallengeResponse {
        challenge,
        expires_at: to_rfc3339(expires_at),
    })
}

/// Registers a device: the attestation evidence over the challenge is the authentication.
#[utoipa::path(post, path = "/api/v1/devices/register", tag = "devices", request_body = RegisterDeviceRequest,
    responses((status = 201, body = DeviceResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register_device(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<RegisterDeviceRequest>,
) -> Result<(StatusCode, Json<DeviceResponse>), AppError> {
    let device = state
        .devices
        .register(
            Registration {
                challenge: req.challenge,
                public_key: req.public_key,
                facts: req.facts,
                mode: req.mode,
                merchant_id: MerchantId(req.merchant_id),
                attestation: Attestation {
                    format: req.attestation.format,
                    signature: req.attestation.signature,
                    certificate_chain: req.attestation.certificate_chain,
                },
            },
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(device.into())))
}

/// Lists devices with filters and cursor pagination.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", params(DeviceQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = DevicePage), (status = 400, body = ErrorBody)))]
pub async fn list_devices(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<DeviceQuery>,
) -> Result<Json<DevicePage>, AppError> {
    let filter = DeviceFilter::try_from(query)?;
    let devices = state.devices.list(&filter).await?;
    let next_cursor = paging::next_cursor(&devices, filter.limit, |device| {
        paging::encode_cursor(device.created_at, device.id)
    });
    Ok(Json(DevicePage {
        devices: devices.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One device with its state history.
#[utoipa::path(get, path = "/api/v1/devices/{device_id}", tag = "devices",
    params(("device_id" = Uuid, Path, description = "device id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = DeviceDetail), (status = 404, body = ErrorBody)))]
pub async fn get_device(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppPath(device_id): AppPath<Uuid>,
) -> Result<Json<DeviceDetail>, AppError> {
    let id = DeviceId(device_id);
    let device = state.devices.get(id).await?;
    let history = state.devices.history(id).await?;
    let attestation = state.devices.attestation(id).await?;
    Ok(Json(DeviceDetail {
        device: device.into(),
        history: history.into_iter().map(Into::into).collect(),
        attestation: attestation.map(Into::into),
    }))
}

async fn act<P: Policy>(
    auth: Authorized<P>,
    state: AppState,
    ctx: crate::service::RequestContext,
    device_id: Uuid,
    action: DeviceAction,
    req: DeviceActionRequest,
) -> Result<Json<DeviceResponse>, AppError> {
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(AppError::field("reason", "1 to 500 characters"));
    }
    let device = state
        .devices
        .act(
            auth.principal(),
            DeviceId(device_id),
            action,
            Some(reason),
            &ctx,
        )
        .await?;
    Ok(Json(device.into()))
}

macro_rules! action_handler {
    ($name:ident, $policy:ident, $action:ident, $path:literal, security($($security:tt)*), $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "devices",
            params(("device_id" = Uuid, Path, description = "device id")),
            request_body = DeviceActionRequest,
            security($($security)*),
            responses((status = 200, body = DeviceResponse), (status = 404, body = ErrorBody),
                (status = 409, body = ErrorBody, description = "`invalid_device_transition`")))]
        pub async fn $name(
            auth: Authorized<$policy>,
            State(state): State<AppState>,
            Ctx(ctx): Ctx,
            AppPath(device_id): AppPath<Uuid>,
            AppJson(req): AppJson<DeviceActionRequest>,
        ) -> Result<Json<DeviceResponse>, AppError> {
            act(auth, state, ctx, device_id, DeviceAction::$action, req).await
        }
    };
}

action_handler!(
    approve_device,
    DeviceApprovers,
    Approve,
    "/api/v1/devices/{device_id}/approve",
    security(
        ("bearer" = ["admin", "operator"]),
        ("api_key" = ["devices:approve"])
    ),
    "Approves a registered device (REGISTERED → APPROVED)."
);
action_handler!(
    reject_device,
    DeviceApprovers,
    Reject,
    "/api/v1/devices/{device_id}/reject",
    security(
        ("bearer" = ["admin", "operator"]),
        ("api_key" = ["devices:approve"])
    ),
    "Rejects a registration (REGISTERED → REVOKED)."
);
action_handler!(
    suspend_device,
    DeviceGuardians,
    Suspend,
    "/api/v1/devices/{device_id}/suspend",
    security(("bearer" = ["admin", "security_officer"])),
    "Suspends an active device (ACTIVE → SUSPENDED)."
);
action_handler!(
    resume_device,
    DeviceGuardians,
    Resume,
    "/api/v1/devices/{device_id}/resume",
    security(("bearer" = ["admin", "security_officer"])),
    "Resumes a suspended device (SUSPENDED → ACTIVE)."
);
action_handler!(
    revoke_device,
    DeviceGuardians,
    Revoke,
    "/api/v1/devices/{device_id}/revoke",
    security(("bearer" = ["admin", "security_officer"])),
    "Revokes a device for good (any state but REVOKED → REVOKED)."
);

/// The calling device's own state. Signed with the device key: headers `X-Device-Id`,
/// `X-Device-Timestamp` (Unix seconds), `X-Device-Nonce` (16–64 of `A-Za-z0-9_-`, single
/// use) and `X-Device-Signature` (base64 ECDSA P-256/SHA-256 over
/// `SOFTPOS-DEVICE-V1\n<METHOD>\n<path?query>\n<timestamp>\n<nonce>\n<hex sha256(body)>`).
#[utoipa::path(post, path = "/api/v1/device/self", tag = "device",
    security(("device_signature" = [])),
    responses((status = 200, body = DeviceSelfResponse), (status = 401, body = ErrorBody)))]
pub async fn device_self(signed: SignedDevice) -> Json<DeviceSelfResponse> {
    Json(DeviceSelfResponse {
        device_id: signed.device.id.0,
        state: signed.device.state,
        server_time: Utc::now(),
        body_bytes: signed.body.len(),
    })
}
