//! `/api/v1/device/keys`: remote key injection, signed by the device key (`SignedDevice`).
//! See `service::keys::injection` for the protocol and the KEK derivation.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{Ctx, SignedDevice};
use super::state::AppState;
use crate::domain::DeviceState;
use crate::error::{AppError, ErrorBody};
use crate::service::keys::injection::Activation;
use crate::service::keys::model::KeySetState;
use crate::service::ports::DukptScheme;

fn parse_body<T: serde::de::DeserializeOwned>(signed: &SignedDevice) -> Result<T, AppError> {
    serde_json::from_slice(&signed.body).map_err(|error| AppError::MalformedBody(error.to_string()))
}

/// A key request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// The device's ephemeral P-256 public key, SEC1 (compressed or uncompressed), base64.
    pub ephemeral_public_key: String,
}

/// The injected key set.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInjectionResponse {
    /// Key set id (confirm with it).
    pub key_set_id: Uuid,
    /// Per-device version.
    pub version: i64,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// The server's ephemeral P-256 public key, SEC1 uncompressed, base64.
    pub server_public_key: String,
    /// TR-31 version D key block (usage B1) with the initial key, under the KEK
    /// HKDF-SHA256(ECDH, salt `SUNBAY-SOFTPOS-RKI-KEK-V1`, info
    /// `softpos-rki-v1|<device id>|<key set id>|` ‖ server public key ‖ device public key).
    pub key_block: String,
    /// KCV of the initial key (hex).
    pub kcv: String,
    /// AES: initial key id (8 bytes); TDES: initial KSN with a zero counter (10 bytes); hex.
    pub initial_key_id: String,
}

/// Asks for a DUKPT initial key (an `APPROVED` device; an `ACTIVE` one rotates).
#[utoipa::path(post, path = "/api/v1/device/keys", tag = "device", request_body = KeyRequest,
    security(("device_signature" = [])),
    responses((status = 200, body = KeyInjectionResponse), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`device_not_approved`, `no_active_bdk`"),
        (status = 422, body = ErrorBody)))]
pub async fn request_keys(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    signed: SignedDevice,
) -> Result<Json<KeyInjectionResponse>, AppError> {
    let req: KeyRequest = parse_body(&signed)?;
    let injection = state
        .keys
        .request_keys(&signed.device, &req.ephemeral_public_key, &ctx)
        .await?;
    Ok(Json(KeyInjectionResponse {
        key_set_id: injection.key_set.id,
        version: injection.key_set.version,
        scheme: injection.key_set.scheme,
        server_public_key: base64::engine::general_purpose::STANDARD
            .encode(&injection.server_public_key),
        key_block: injection.key_block,
        kcv: injection.key_set.kcv,
        initial_key_id: hex::encode_upper(&injection.key_set.initial_key_id),
    }))
}

/// The device's KCV of the key it unwrapped.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyConfirmation {
    /// Key set id from the injection.
    pub key_set_id: Uuid,
    /// KCV the device computed (hex).
    pub kcv: String,
}

/// Where activation stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivationResponse {
    /// The active key set.
    pub key_set_id: Uuid,
    /// Its state.
    pub key_set_state: KeySetState,
    /// The device's state.
    pub device_state: DeviceState,
    /// Why the device is not `ACTIVE` yet (`no_health_check`, `health_check_failed`,
    /// `health_check_stale`); absent when it is.
    pub pending: Option<String>,
}

impl From<Activation> for ActivationResponse {
    fn from(a: Activation) -> Self {
        Self {
            key_set_id: a.key_set.id,
            key_set_state: a.key_set.state,
            device_state: a.device_state,
            pending: a.pending_reason.map(str::to_owned),
        }
    }
}

/// Confirms the injected key's KCV; activates the device when its health check passes.
#[utoipa::path(post, path = "/api/v1/device/keys/confirm", tag = "device", request_body = KeyConfirmation,
    security(("device_signature" = [])),
    responses((status = 200, body = ActivationResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`key_set_not_issued`, `device_not_approved`"),
        (status = 422, body = ErrorBody, description = "`kcv_mismatch`")))]
pub async fn confirm_keys(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    signed: SignedDevice,
) -> Result<Json<ActivationResponse>, AppError> {
    let req: KeyConfirmation = parse_body(&signed)?;
    let activation = state
        .keys
        .confirm_keys(&signed.device, req.key_set_id, &req.kcv, &ctx)
        .await?;
    Ok(Json(activation.into()))
}

/// Retries activation of an `APPROVED` device with confirmed keys (after a new health check).
#[utoipa::path(post, path = "/api/v1/device/keys/activate", tag = "device",
    security(("device_signature" = [])),
    responses((status = 200, body = ActivationResponse), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`no_confirmed_key_set`")))]
pub async fn activate(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    signed: SignedDevice,
) -> Result<Json<ActivationResponse>, AppError> {
    let activation = state.keys.activate_device(signed.device.id, &ctx).await?;
    Ok(Json(activation.into()))
}

/// The device's key status.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyStatusResponse {
    /// The active key set.
    pub key_set_id: Uuid,
    /// Its version.
    pub version: i64,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// An administrator or the payment pipeline asked for a new key set: request one now.
    pub rotation_due: bool,
    /// Request a new key set once the transaction counter passes this.
    pub rotate_after: i64,
}

/// The device's active key set and whether it must rotate.
#[utoipa::path(post, path = "/api/v1/device/keys/status", tag = "device",
    security(("device_signature" = [])),
    responses((status = 200, body = KeyStatusResponse), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`no_confirmed_key_set`")))]
pub async fn key_status(
    State(state): State<AppState>,
    signed: SignedDevice,
) -> Result<Json<KeyStatusResponse>, AppError> {
    let (set, rotation_due, rotate_after) = state.keys.key_status(&signed.device).await?;
    Ok(Json(KeyStatusResponse {
        key_set_id: set.id,
        version: set.version,
        scheme: set.scheme,
        rotation_due,
        rotate_after,
    }))
}
