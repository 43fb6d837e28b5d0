//! `/api/v1/keys`: key custody for people (BDKs, zone PIN keys, KEKs, dual-control
//! ceremonies, key profiles, master key rotation) and `/api/v1/devices/{id}/key-sets`.
//! Responses carry ids, KCVs, usages and states, never key material.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    AnyStaff, AppJson, AppPath, AppQuery, Authorized, Ctx, DeviceGuardians, DeviceReaders, Policy,
};
use super::state::AppState;
use crate::domain::{DeviceId, DeviceMode, Role, Scope, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::service::keys::custody::KeySpec;
use crate::service::keys::model::{
    Ceremony, CeremonyState, KeyOrigin, KeyProfile, KeySet, KeySetState, KeyState, KeyUsageKind,
    StoredKey,
};
use crate::service::keys::store::algorithm_name;
use crate::service::ports::DukptScheme;

/// Key officers: administrators and security officers.
#[derive(Debug)]
pub struct KeyOfficers;

impl Policy for KeyOfficers {
    const ROLES: &'static [Role] = &[Role::Admin, Role::SecurityOfficer];
    const SCOPE: Option<Scope> = None;
}

/// Administrators (master key rotation, key profiles).
#[derive(Debug)]
pub struct KeyAdmins;

impl Policy for KeyAdmins {
    const ROLES: &'static [Role] = &[Role::Admin];
    const SCOPE: Option<Scope> = None;
}

/// A stored key on the wire: metadata and KCV only.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Usage.
    pub usage: KeyUsageKind,
    /// Algorithm (`tdes2`, `tdes3`, `aes128`, `aes192`, `aes256`).
    pub algorithm: String,
    /// State.
    pub state: KeyState,
    /// Origin.
    pub origin: KeyOrigin,
    /// KCV (hex): encrypt-zeros 3 bytes for TDES, CMAC 5 bytes for AES.
    pub kcv: Option<String>,
    /// BDK: DUKPT key id (AES BDK id, 4 bytes; TDES key set id, 5 bytes), hex.
    pub dukpt_key_id: Option<String>,
    /// ZPK: processor connection.
    pub processor: Option<String>,
    /// ZPK: PIN block format.
    pub pin_format: Option<u8>,
    /// Who created it.
    pub created_by: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Activated.
    pub activated_at: Option<DateTime<Utc>>,
    /// Retired.
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<StoredKey> for KeyResponse {
    fn from(key: StoredKey) -> Self {
        Self {
            id: key.id,
            name: key.name,
            usage: key.usage,
            algorithm: algorithm_name(key.algorithm).to_owned(),
            state: key.state,
            origin: key.origin,
            kcv: key.kcv,
            dukpt_key_id: key.dukpt_key_id,
            processor: key.processor,
            pin_format: key.pin_format,
            created_by: key.created_by,
            created_at: to_rfc3339(key.created_at),
            activated_at: key.activated_at.map(to_rfc3339),
            retired_at: key.retired_at.map(to_rfc3339),
        }
    }
}

/// What key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeySpecRequest {
    /// Name, 1–100 characters.
    pub name: String,
    /// Usage.
    pub usage: KeyUsageKind,
    /// `tdes2`, `tdes3`, `aes128`, `aes192`, `aes256` (BDK: tdes2, aes128 or aes256).
    pub algorithm: String,
    /// ZPK: processor connection name.
    pub processor: Option<String>,
    /// ZPK: PIN block format the processor expects (0 with TDES, 4 with AES).
    pub pin_format: Option<u8>,
}

impl From<&KeySpecRequest> for KeySpec {
    fn from(req: &KeySpecRequest) -> Self {
        Self {
            name: req.name.clone(),
            usage: req.usage,
            algorithm: req.algorithm.clone(),
            processor: req.processor.clone(),
            pin_format: req.pin_format,
        }
    }
}

/// A TR-31 import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tr31ImportRequest {
    /// Name, 1–100 characters.
    pub name: String,
    /// Usage the block must carry (`bdk`: B0, `zpk`: P0, `kek`: K0/K1).
    pub usage: KeyUsageKind,
    /// ZPK: processor connection name.
    pub processor: Option<String>,
    /// ZPK: PIN block format.
    pub pin_format: Option<u8>,
    /// The active key-encryption key the block is wrapped under.
    pub kek_id: Uuid,
    /// The TR-31 / ANSI X9.143 key block (versions B and D).
    pub block: String,
}

/// List filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyQuery {
    /// Only keys of this usage.
    pub usage: Option<KeyUsageKind>,
}

/// Keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Newest first (at most 500).
    pub keys: Vec<KeyResponse>,
}

/// Lists stored keys.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(KeyQuery),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KeyList)))]
pub async fn list_keys(
    _auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<KeyQuery>,
) -> Result<Json<KeyList>, AppError> {
    let keys = state.keys.list(query.usage).await?;
    Ok(Json(KeyList {
        keys: keys.into_iter().map(Into::into).collect(),
    }))
}

/// One stored key.
#[utoipa::path(get, path = "/api/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = Uuid, Path, description = "key id")),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KeyResponse), (status = 404, body = ErrorBody)))]
pub async fn get_key(
    _auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
    AppPath(key_id): AppPath<Uuid>,
) -> Result<Json<KeyResponse>, AppError> {
    Ok(Json(state.keys.get(key_id).await?.into()))
}

/// Generates a key inside the server (state `READY`; activate it next).
#[utoipa::path(post, path = "/api/v1/keys/generate", tag = "keys", request_body = KeySpecRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 201, body = KeyResponse), (status = 422, body = ErrorBody)))]
pub async fn generate_key(
    auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<KeySpecRequest>,
) -> Result<(StatusCode, Json<KeyResponse>), AppError> {
    let key = state
        .keys
        .generate(auth.principal(), &(&req).into(), &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Imports a key from a TR-31 block under an active KEK (state `READY`).
#[utoipa::path(post, path = "/api/v1/keys/import-tr31", tag = "keys", request_body = Tr31ImportRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 201, body = KeyResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`kek_not_active`"),
        (status = 422, body = ErrorBody, description = "`tr31_*`, `tr31_usage_mismatch`")))]
pub async fn import_tr31(
    auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<Tr31ImportRequest>,
) -> Result<(StatusCode, Json<KeyResponse>), AppError> {
    let spec = KeySpec {
        name: req.name,
        usage: req.usage,
        algorithm: String::new(),
        processor: req.processor,
        pin_format: req.pin_format,
    };
    let key = state
        .keys
        .import_tr31(auth.principal(), &spec, req.kek_id, &req.block, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Activates a `READY` key.
#[utoipa::path(post, path = "/api/v1/keys/{key_id}/activate", tag = "keys",
    params(("key_id" = Uuid, Path, description = "key id")),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KeyResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`invalid_key_transition`")))]
pub async fn activate_key(
    auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(key_id): AppPath<Uuid>,
) -> Result<Json<KeyResponse>, AppError> {
    let key = state
        .keys
        .transition(auth.principal(), key_id, KeyState::Active, &ctx)
        .await?;
    Ok(Json(key.into()))
}

/// Retires an `ACTIVE` key: no new use; existing key sets keep working.
#[utoipa::path(post, path = "/api/v1/keys/{key_id}/retire", tag = "keys",
    params(("key_id" = Uuid, Path, description = "key id")),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KeyResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`invalid_key_transition`")))]
pub async fn retire_key(
    auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(key_id): AppPath<Uuid>,
) -> Result<Json<KeyResponse>, AppError> {
    let key = state
        .keys
        .transition(auth.principal(), key_id, KeyState::Retired, &ctx)
        .await?;
    Ok(Json(key.into()))
}

/// Opens a dual-control import.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCeremonyRequest {
    /// The key to assemble.
    pub key: KeySpecRequest,
    /// 2 or 3 different user ids.
    pub custodians: Vec<Uuid>,
}

/// A custodian's slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustodianResponse {
    /// User.
    pub user_id: Uuid,
    /// Order.
    pub position: i64,
    /// KCV of their component, once submitted.
    pub component_kcv: Option<String>,
    /// When submitted.
    pub submitted_at: Option<DateTime<Utc>>,
}

/// A ceremony on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyResponse {
    /// Id.
    pub id: Uuid,
    /// State.
    pub state: CeremonyState,
    /// The key being assembled (its KCV appears once every component is in).
    pub key: KeyResponse,
    /// Custodians.
    pub custodians: Vec<CustodianResponse>,
    /// Opened by.
    pub created_by: String,
    /// Opened.
    pub created_at: DateTime<Utc>,
}

fn ceremony_response(ceremony: Ceremony, key: StoredKey) -> CeremonyResponse {
    CeremonyResponse {
        id: ceremony.id,
        state: ceremony.state,
        key: key.into(),
        custodians: ceremony
            .custodians
            .into_iter()
            .map(|c| CustodianResponse {
                user_id: c.user_id,
                position: c.position,
                component_kcv: c.component_kcv,
                submitted_at: c.submitted_at.map(to_rfc3339),
            })
            .collect(),
        created_by: ceremony.created_by,
        created_at: to_rfc3339(ceremony.created_at),
    }
}

/// Opens a dual-control key import naming 2 or 3 custodians.
#[utoipa::path(post, path = "/api/v1/keys/ceremonies", tag = "keys", request_body = OpenCeremonyRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 201, body = CeremonyResponse), (status = 422, body = ErrorBody)))]
pub async fn open_ceremony(
    auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<OpenCeremonyRequest>,
) -> Result<(StatusCode, Json<CeremonyResponse>), AppError> {
    let ceremony = state
        .keys
        .open_ceremony(auth.principal(), &(&req.key).into(), &req.custodians, &ctx)
        .await?;
    let (ceremony, key) = state.keys.ceremony(auth.principal(), ceremony.id).await?;
    Ok((StatusCode::CREATED, Json(ceremony_response(ceremony, key))))
}

/// A ceremony (its custodians, key officers).
#[utoipa::path(get, path = "/api/v1/keys/ceremonies/{ceremony_id}", tag = "keys",
    params(("ceremony_id" = Uuid, Path, description = "ceremony id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = CeremonyResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_ceremony(
    auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
    AppPath(ceremony_id): AppPath<Uuid>,
) -> Result<Json<CeremonyResponse>, AppError> {
    let (ceremony, key) = state.keys.ceremony(auth.principal(), ceremony_id).await?;
    Ok(Json(ceremony_response(ceremony, key)))
}

/// A custodian's component.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentRequest {
    /// The component, hex, the key's length.
    pub component: String,
}

/// What a custodian gets back.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentResponse {
    /// KCV of the component just submitted.
    pub component_kcv: String,
    /// Components in.
    pub submitted: usize,
    /// Components needed.
    pub required: usize,
    /// KCV of the combined key, once every component is in.
    pub combined_kcv: Option<String>,
}

/// Submits the caller's component (named custodians only, once each).
#[utoipa::path(post, path = "/api/v1/keys/ceremonies/{ceremony_id}/components", tag = "keys",
    params(("ceremony_id" = Uuid, Path, description = "ceremony id")),
    request_body = ComponentRequest,
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = ComponentResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`component_already_submitted`, `ceremony_not_open`"),
        (status = 422, body = ErrorBody)))]
pub async fn submit_component(
    auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(ceremony_id): AppPath<Uuid>,
    AppJson(req): AppJson<ComponentRequest>,
) -> Result<Json<ComponentResponse>, AppError> {
    let receipt = state
        .keys
        .submit_component(auth.principal(), ceremony_id, &req.component, &ctx)
        .await?;
    Ok(Json(ComponentResponse {
        component_kcv: receipt.component_kcv,
        submitted: receipt.submitted,
        required: receipt.required,
        combined_kcv: receipt.combined_kcv,
    }))
}

/// The expected combined KCV.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmCeremonyRequest {
    /// Hex KCV the custodians expect for the combined key.
    pub kcv: String,
}

/// Confirms a complete ceremony with the expected combined KCV (a custodian or a security
/// officer); activates the key and erases the components.
#[utoipa::path(post, path = "/api/v1/keys/ceremonies/{ceremony_id}/confirm", tag = "keys",
    params(("ceremony_id" = Uuid, Path, description = "ceremony id")),
    request_body = ConfirmCeremonyRequest,
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = KeyResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`ceremony_not_complete`"),
        (status = 422, body = ErrorBody, description = "`kcv_mismatch`")))]
pub async fn confirm_ceremony(
    auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(ceremony_id): AppPath<Uuid>,
    AppJson(req): AppJson<ConfirmCeremonyRequest>,
) -> Result<Json<KeyResponse>, AppError> {
    let key = state
        .keys
        .confirm_ceremony(auth.principal(), ceremony_id, &req.kcv, &ctx)
        .await?;
    Ok(Json(key.into()))
}

/// Rotation result.
#[derive(Debug, Serialize, ToSchema)]
pub struct MasterRotationResponse {
    /// The master key version everything is wrapped under now.
    pub master_version: u32,
    /// How many wrapped values were re-wrapped.
    pub rewrapped: u64,
}

/// Re-wraps every stored key under the newest configured master key, in one transaction.
#[utoipa::path(post, path = "/api/v1/keys/master/rotate", tag = "keys",
    security(("bearer" = ["admin"])),
    responses((status = 200, body = MasterRotationResponse)))]
pub async fn rotate_master(
    auth: Authorized<KeyAdmins>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<MasterRotationResponse>, AppError> {
    let (master_version, rewrapped) = state.keys.rotate_master(auth.principal(), &ctx).await?;
    Ok(Json(MasterRotationResponse {
        master_version,
        rewrapped,
    }))
}

/// A key profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyProfileResponse {
    /// Device mode.
    pub mode: DeviceMode,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// Pinned BDK (absent: the newest active BDK of the family).
    pub bdk_id: Option<Uuid>,
    /// Rotate key sets past this transaction counter.
    pub rotate_after: i64,
    /// Changed by.
    pub updated_by: String,
    /// Changed.
    pub updated_at: DateTime<Utc>,
}

impl From<KeyProfile> for KeyProfileResponse {
    fn from(p: KeyProfile) -> Self {
        Self {
            mode: p.mode,
            scheme: p.scheme,
            bdk_id: p.bdk_id,
            rotate_after: p.rotate_after,
            updated_by: p.updated_by,
            updated_at: to_rfc3339(p.updated_at),
        }
    }
}

/// Profiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyProfileList {
    /// One per device mode.
    pub profiles: Vec<KeyProfileResponse>,
}

/// The key profiles per device mode.
#[utoipa::path(get, path = "/api/v1/keys/profiles", tag = "keys",
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KeyProfileList)))]
pub async fn list_profiles(
    _auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
) -> Result<Json<KeyProfileList>, AppError> {
    Ok(Json(KeyProfileList {
        profiles: state
            .keys
            .profiles()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

/// A profile change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// DUKPT variant (`aes128` default, `tdes`).
    pub scheme: DukptScheme,
    /// Pin an active BDK of the scheme's family, or null for the newest.
    pub bdk_id: Option<Uuid>,
    /// 1–2000000.
    pub rotate_after: i64,
}

/// Changes the key profile of a device mode (`softpos` or `pinpad`).
#[utoipa::path(put, path = "/api/v1/keys/profiles/{mode}", tag = "keys",
    params(("mode" = DeviceMode, Path, description = "device mode")),
    request_body = UpdateProfileRequest,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = KeyProfileResponse), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_profile(
    auth: Authorized<KeyAdmins>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(mode): AppPath<DeviceMode>,
    AppJson(req): AppJson<UpdateProfileRequest>,
) -> Result<Json<KeyProfileResponse>, AppError> {
    let profile = state
        .keys
        .update_profile(
            auth.principal(),
            mode,
            req.scheme,
            req.bdk_id,
            req.rotate_after,
            &ctx,
        )
        .await?;
    Ok(Json(profile.into()))
}

/// A device key set on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeySetResponse {
    /// Id.
    pub id: Uuid,
    /// Per-device version.
    pub version: i64,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// BDK.
    pub bdk_id: Uuid,
    /// AES: initial key id (8 bytes); TDES: initial KSN (10 bytes); hex.
    pub initial_key_id: String,
    /// KCV of the initial key.
    pub kcv: String,
    /// State.
    pub state: KeySetState,
    /// When a rotation was requested.
    pub rotation_requested_at: Option<DateTime<Utc>>,
    /// Issued.
    pub created_at: DateTime<Utc>,
    /// Confirmed by the device.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Destroyed (device revoked).
    pub destroyed_at: Option<DateTime<Utc>>,
}

impl From<KeySet> for KeySetResponse {
    fn from(set: KeySet) -> Self {
        Self {
            id: set.id,
            version: set.version,
            scheme: set.scheme,
            bdk_id: set.bdk_id,
            initial_key_id: hex::encode_upper(&set.initial_key_id),
            kcv: set.kcv,
            state: set.state,
            rotation_requested_at: set.rotation_requested_at.map(to_rfc3339),
            created_at: to_rfc3339(set.created_at),
            confirmed_at: set.confirmed_at.map(to_rfc3339),
            destroyed_at: set.destroyed_at.map(to_rfc3339),
        }
    }
}

/// Key sets.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeySetList {
    /// Newest first.
    pub key_sets: Vec<KeySetResponse>,
}

/// A device's key sets (tombstones included).
#[utoipa::path(get, path = "/api/v1/devices/{device_id}/key-sets", tag = "keys",
    params(("device_id" = Uuid, Path, description = "device id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = KeySetList), (status = 404, body = ErrorBody)))]
pub async fn list_key_sets(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppPath(device_id): AppPath<Uuid>,
) -> Result<Json<KeySetList>, AppError> {
    let sets = state.keys.key_sets(DeviceId(device_id)).await?;
    Ok(Json(KeySetList {
        key_sets: sets.into_iter().map(Into::into).collect(),
    }))
}

/// Why a rotation is asked for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotationRequest {
    /// 1–500 characters.
    pub reason: String,
}

/// Asks the device to fetch a new key set at its next check-in.
#[utoipa::path(post, path = "/api/v1/devices/{device_id}/key-sets/rotate", tag = "keys",
    params(("device_id" = Uuid, Path, description = "device id")),
    request_body = RotationRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = KeySetResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`no_confirmed_key_set`")))]
pub async fn rotate_key_set(
    auth: Authorized<DeviceGuardians>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(device_id): AppPath<Uuid>,
    AppJson(req): AppJson<RotationRequest>,
) -> Result<Json<KeySetResponse>, AppError> {
    let reason = req.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::field("reason", "1 to 500 characters"));
    }
    let set = state
        .keys
        .request_rotation(auth.principal(), DeviceId(device_id), reason, &ctx)
        .await?;
    Ok(Json(set.into()))
}
