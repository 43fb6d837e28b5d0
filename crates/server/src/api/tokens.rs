//! Transaction Tokens on the wire: issuance (device-signed), the JWKS, key rotation and
//! introspection for the console.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AppPath, Authorized, Ctx, Policy, SignedDevice};
use super::state::AppState;
use crate::domain::{Role, Scope, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::service::tokens::jws::EcJwk;
use crate::service::tokens::{TokenState, WireClaims};

/// Rotating token signing keys.
#[derive(Debug)]
pub struct TokenKeyAdmins;
impl Policy for TokenKeyAdmins {
    const ROLES: &'static [Role] = &[Role::Admin, Role::SecurityOfficer];
    const SCOPE: Option<Scope> = None;
}

/// Introspecting tokens.
#[derive(Debug)]
pub struct TokenInspectors;
impl Policy for TokenInspectors {
    const ROLES: &'static [Role] = &[Role::Admin, Role::SecurityOfficer, Role::Auditor];
    const SCOPE: Option<Scope> = None;
}

/// A token issued to the calling device.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTokenResponse {
    /// The compact JWS (ES256). Shown only here; the server keeps its hash.
    pub token: String,
    /// Token id (`jti`).
    pub token_id: Uuid,
    /// Signing key id (the JWS header's `kid`).
    pub kid: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The signed claims.
    pub claims: WireClaims,
}

/// Issues a single-use Transaction Token to the calling device: only when it is `ACTIVE`,
/// has a fresh passing health check and no open blocking threat. Signed like every device
/// request (see `POST /api/v1/device/self`).
#[utoipa::path(post, path = "/api/v1/device/tokens", tag = "tokens",
    security(("device_signature" = [])),
    responses((status = 201, body = IssuedTokenResponse),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`device_not_active`, `no_health_check`, `health_check_failed`, `health_check_stale` or `blocking_threat`")))]
pub async fn issue_token(
    // The signature check consumes the body, so axum needs it last.
    State(state): State<AppState>,
    signed: SignedDevice,
) -> Result<(StatusCode, Json<IssuedTokenResponse>), AppError> {
    let issued = state.tokens.issue(&signed.device).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedTokenResponse {
            token_id: issued.claims.jti,
            expires_at: to_rfc3339(issued.claims.exp * 1000),
            token: issued.token,
            kid: issued.kid,
            claims: issued.claims,
        }),
    ))
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Serialize, ToSchema)]
pub struct JwksResponse {
    /// The signing key and the retired keys whose tokens may still be live.
    pub keys: Vec<EcJwk>,
}

/// The public keys that verify Transaction Tokens (EC P-256 JWKs, `alg` ES256).
#[utoipa::path(get, path = "/api/v1/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, body = JwksResponse)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Json<JwksResponse>, AppError> {
    Ok(Json(JwksResponse {
        keys: state.tokens.jwks().await?,
    }))
}

/// The outcome of a rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotationResponse {
    /// The new signing key.
    pub kid: String,
    /// How many keys stopped signing.
    pub retired: u64,
    /// Until when they stay in the JWKS.
    pub retired_published_until: DateTime<Utc>,
}

/// Creates a new token signing key; the previous keys stop signing and stay published
/// until every token they signed has expired. Audited.
#[utoipa::path(post, path = "/api/v1/tokens/keys/rotate", tag = "tokens",
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = RotationResponse), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn rotate_keys(
    auth: Authorized<TokenKeyAdmins>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<RotationResponse>, AppError> {
    let rotation = state.tokens.rotate(auth.principal(), &ctx).await?;
    Ok(Json(RotationResponse {
        kid: rotation.kid,
        retired: rotation.retired,
        retired_published_until: to_rfc3339(rotation.retired_published_until),
    }))
}

/// What the console may know about a token (never the token).
#[derive(Debug, Serialize, ToSchema)]
pub struct IntrospectionResponse {
    /// Token id.
    pub token_id: Uuid,
    /// `issued`, `consumed` or `expired`.
    pub state: TokenState,
    /// Signing key id.
    pub kid: String,
    /// SHA-256 of the token, hex (to match a token held elsewhere).
    pub token_sha256: String,
    /// Claims as signed.
    pub claims: WireClaims,
    /// When it was used.
    pub consumed_at: Option<DateTime<Utc>>,
}

/// A token's state and claims.
#[utoipa::path(get, path = "/api/v1/tokens/{token_id}", tag = "tokens",
    params(("token_id" = Uuid, Path, description = "token id (jti)")),
    security(("bearer" = ["admin", "security_officer", "auditor"])),
    responses((status = 200, body = IntrospectionResponse), (status = 404, body = ErrorBody)))]
pub async fn introspect_token(
    _auth: Authorized<TokenInspectors>,
    State(state): State<AppState>,
    AppPath(token_id): AppPath<Uuid>,
) -> Result<Json<IntrospectionResponse>, AppError> {
    let found = state.tokens.introspect(token_id).await?;
    Ok(Json(IntrospectionResponse {
        token_id,
        state: found.state,
        kid: found.kid,
        token_sha256: found.token_hash,
        claims: found.claims,
        consumed_at: found.consumed_at.map(to_rfc3339),
    }))
}
