//! `/api/v1/api-keys`: keys for integrations (admins only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AdminOnly, AppJson, AppPath, Authorized, Ctx};
use super::state::AppState;
use crate::domain::{ApiKey, ApiKeyId, Scope, to_rfc3339};
use crate::error::{AppError, ErrorBody};

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Label, 1–100 characters.
    pub name: String,
    /// Scopes granted.
    pub scopes: Vec<Scope>,
}

/// A key as listed (no secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResponse {
    /// Id.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// Public prefix (appears in the key: `sbk_<prefix>_…`).
    pub prefix: String,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Creator.
    pub created_by: Uuid,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id.0,
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes,
            created_by: key.created_by.0,
            created_at: to_rfc3339(key.created_at),
            last_used_at: key.last_used_at.map(to_rfc3339),
            revoked_at: key.revoked_at.map(to_rfc3339),
        }
    }
}

/// A newly created key with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    /// The key's metadata.
    #[serde(flatten)]
    pub key: ApiKeyResponse,
    /// The full key for the `X-API-Key` header. Not retrievable again.
    pub secret: String,
}

/// Revocation request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeApiKeyRequest {
    /// Why (recorded in the audit log).
    pub reason: Option<String>,
}

/// Creates an API key; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = CreatedApiKeyResponse), (status = 422, body = ErrorBody)))]
pub async fn create_api_key(
    auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, Json<CreatedApiKeyResponse>), AppError> {
    let (key, secret) = state
        .api_keys
        .create(auth.principal(), &req.name, req.scopes, &ctx)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKeyResponse {
            key: key.into(),
            secret,
        }),
    ))
}

/// Lists API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Vec<ApiKeyResponse>)))]
pub async fn list_api_keys(
    _auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
) -> Result<Json<Vec<ApiKeyResponse>>, AppError> {
    Ok(Json(
        state
            .api_keys
            .list()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Revokes an API key.
#[utoipa::path(post, path = "/api/v1/api-keys/{api_key_id}/revoke", tag = "api-keys",
    params(("api_key_id" = Uuid, Path, description = "API key id")),
    request_body = RevokeApiKeyRequest,
    security(("bearer" = ["admin"])),
    responses((status = 200, body = ApiKeyResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn revoke_api_key(
    auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(api_key_id): AppPath<Uuid>,
    AppJson(req): AppJson<RevokeApiKeyRequest>,
) -> Result<Json<ApiKeyResponse>, AppError> {
    if req.reason.as_ref().is_some_and(|reason| reason.len() > 500) {
        return Err(AppError::field("reason", "at most 500 characters"));
    }
    let key = state
        .api_keys
        .revoke(auth.principal(), ApiKeyId(api_key_id), req.reason, &ctx)
        .await?;
    Ok(Json(key.into()))
}
