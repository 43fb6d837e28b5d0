//! `/api/v1/keys/release-keys`: the trusted release (Ed25519) public keys in the key store —
//! list, add, retire (rotation is add then retire). Administrators only; every change audited.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{AppJson, AppPath, Authorized, Ctx};
use super::keys::{KeyAdmins, KeyOfficers};
use super::state::AppState;
use crate::domain::to_rfc3339;
use crate::error::{AppError, ErrorBody};
use crate::service::keys::model::{ReleaseKeyRecord, ReleaseKeyState};

/// A trusted release key on the wire: id, fingerprint, state (the key itself is public, but
/// listing shows its SHA-256 only).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseKeyResponse {
    /// The manifests' `key_id`.
    pub key_id: String,
    /// SHA-256 of the 32-byte public key, hex.
    pub fingerprint: String,
    /// State.
    pub state: ReleaseKeyState,
    /// `config` (seeded) or `api`.
    pub origin: String,
    /// Audit actor who added it.
    pub created_by: String,
    /// Added.
    pub created_at: DateTime<Utc>,
    /// Retired.
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<ReleaseKeyRecord> for ReleaseKeyResponse {
    fn from(k: ReleaseKeyRecord) -> Self {
        Self {
            key_id: k.key_id,
            fingerprint: k.fingerprint,
            state: k.state,
            origin: k.origin,
            created_by: k.created_by,
            created_at: to_rfc3339(k.created_at),
            retired_at: k.retired_at.map(to_rfc3339),
        }
    }
}

/// Release keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseKeyList {
    /// Oldest first.
    pub keys: Vec<ReleaseKeyResponse>,
}

/// A new trusted release key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReleaseKeyRequest {
    /// Id the manifests name (`[A-Za-z0-9._-]`).
    pub key_id: String,
    /// Ed25519 public key, 32 bytes, hex or base64.
    pub public_key: String,
}

/// Lists the trusted release keys (active and retired).
#[utoipa::path(get, path = "/api/v1/keys/release-keys", tag = "keys",
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = ReleaseKeyList)))]
pub async fn list_release_keys(
    _auth: Authorized<KeyOfficers>,
    State(state): State<AppState>,
) -> Result<Json<ReleaseKeyList>, AppError> {
    let keys = state.keys.list_release_keys().await?;
    Ok(Json(ReleaseKeyList {
        keys: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Trusts a new release key (sealed under the master key). Audited.
#[utoipa::path(post, path = "/api/v1/keys/release-keys", tag = "keys",
    request_body = NewReleaseKeyRequest,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = ReleaseKeyResponse),
        (status = 409, body = ErrorBody, description = "`release_key_exists`"),
        (status = 422, body = ErrorBody)))]
pub async fn add_release_key(
    auth: Authorized<KeyAdmins>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<NewReleaseKeyRequest>,
) -> Result<(StatusCode, Json<ReleaseKeyResponse>), AppError> {
    let key = state
        .keys
        .add_release_key(auth.principal(), &req.key_id, &req.public_key, &ctx)
        .await?;
    Ok((StatusCode::CREATED, Json(key.into())))
}

/// Stops trusting a release key. Audited.
#[utoipa::path(post, path = "/api/v1/keys/release-keys/{key_id}/retire", tag = "keys",
    params(("key_id" = String, Path, description = "release key id")),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = ReleaseKeyResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`release_key_not_active`")))]
pub async fn retire_release_key(
    auth: Authorized<KeyAdmins>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(key_id): AppPath<String>,
) -> Result<Json<ReleaseKeyResponse>, AppError> {
    let key = state
        .keys
        .retire_release_key(auth.principal(), &key_id, &ctx)
        .await?;
    Ok(Json(key.into()))
}
