//! `/api/v1/auth`: login, refresh, logout, me, sessions, password.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AnyStaff, AppJson, AppPath, Authorized, Ctx};
use super::state::AppState;
use super::users::UserResponse;
use crate::domain::{Principal, Session, SessionId, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::service::auth::IssuedTokens;

const REFRESH_COOKIE: &str = "softpos_refresh";
const COOKIE_PATH: &str = "/api/v1/auth";

/// Username and password.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Browsers set this: the refresh token then travels only in an HttpOnly,
    /// SameSite=Strict cookie and is left out of the body.
    #[serde(default)]
    pub use_cookie: bool,
}

/// Tokens after login or refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// JWT access token for `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token (API clients only; browsers get a cookie). Single use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the session ends.
    pub refresh_expires_in: u64,
    /// The session (refresh-token family).
    pub session_id: Uuid,
    /// The logged-in user.
    pub user: UserResponse,
}

/// Refresh request. Browsers send `{}` and the cookie.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from login or the previous refresh (API clients).
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A session of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Id.
    pub id: Uuid,
    /// Whether this is the session of the token making the request.
    pub current: bool,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_used_at: DateTime<Utc>,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it ended.
    pub revoked_reason: Option<String>,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
}

/// Password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// Current password.
    pub current_password: String,
    /// New password (at least 12 characters).
    pub new_password: String,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    /// User id.
    pub id: Uuid,
    /// Username.
    pub username: String,
    /// Role.
    pub role: crate::domain::Role,
    /// Current session.
    pub session_id: Uuid,
}

fn session_response(session: Session, current: SessionId) -> SessionResponse {
    SessionResponse {
        id: session.id.0,
        current: session.id == current,
        created_at: to_rfc3339(session.created_at),
        last_used_at: to_rfc3339(session.last_used_at),
        expires_at: to_rfc3339(session.expires_at),
        revoked_at: session.revoked_at.map(to_rfc3339),
        revoked_reason: session.revoked_reason,
        client_addr: session.client_addr,
        user_agent: session.user_agent,
    }
}

fn refresh_cookie(state: &AppState, token: &str, max_age: u64) -> Option<HeaderValue> {
    let secure = if state.settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; HttpOnly; SameSite=Strict; Path={COOKIE_PATH}; Max-Age={max_age}{secure}"
    ))
    .ok()
}

fn token_response(state: &AppState, issued: IssuedTokens, use_cookie: bool) -> Response {
    let cookie = use_cookie
        .then(|| refresh_cookie(state, &issued.refresh_token, issued.refresh_expires_in))
        .flatten();
    let body = TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        refresh_token: (!use_cookie).then_some(issued.refresh_token),
        refresh_expires_in: issued.refresh_expires_in,
        session_id: issued.session_id.0,
        user: issued.user.into(),
    };
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = cookie {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    res
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn user_session(principal: &Principal) -> Result<(crate::domain::UserId, SessionId), AppError> {
    match principal {
        Principal::User { id, session_id, .. } => Ok((*id, *session_id)),
        Principal::ApiKey { .. } | Principal::System { .. } => Err(AppError::Forbidden),
    }
}

/// Logs in with username and password (throttled per account and per client address).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = u64, description = "seconds")))))]
pub async fn login(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<LoginRequest>,
) -> Result<Response, AppError> {
    if req.username.len() > 64 || req.password.len() > 256 {
        return Err(AppError::InvalidCredentials);
    }
    let issued = state.auth.login(&req.username, &req.password, &ctx).await?;
    Ok(token_response(&state, issued, req.use_cookie))
}

/// Exchanges a refresh token (body or cookie) for new tokens. The presented token is
/// spent; presenting it again revokes the whole session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    AppJson(req): AppJson<RefreshRequest>,
) -> Result<Response, AppError> {
    let (token, from_cookie) = match req.refresh_token {
        Some(token) => (token, false),
        None => (
            cookie_token(&headers).ok_or(AppError::InvalidRefreshToken)?,
            true,
        ),
    };
    if token.len() > 128 {
        return Err(AppError::InvalidRefreshToken);
    }
    let issued = state.auth.refresh(&token, &ctx).await?;
    Ok(token_response(&state, issued, from_cookie))
}

/// Ends the current session and clears the refresh cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Response, AppError> {
    let (user_id, session_id) = user_session(auth.principal())?;
    state.auth.logout(user_id, session_id, &ctx).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    if let Some(cookie) = refresh_cookie(&state, "", 0) {
        res.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(res)
}

/// The caller's identity.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = MeResponse), (status = 401, body = ErrorBody)))]
pub async fn me(auth: Authorized<AnyStaff>) -> Result<Json<MeResponse>, AppError> {
    match auth.principal {
        Principal::User {
            id,
            username,
            role,
            session_id,
        } => Ok(Json(MeResponse {
            id: id.0,
            username,
            role,
            session_id: session_id.0,
        })),
        Principal::ApiKey { .. } | Principal::System { .. } => Err(AppError::Forbidden),
    }
}

/// The caller's sessions, newest first.
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = Vec<SessionResponse>), (status = 401, body = ErrorBody)))]
pub async fn list_sessions(
    auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
) -> Result<Json<Vec<SessionResponse>>, AppError> {
    let (user_id, current) = user_session(auth.principal())?;
    let sessions = state.auth.list_sessions(user_id).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|session| session_response(session, current))
            .collect(),
    ))
}

/// Revokes one of the caller's sessions (e.g. a lost laptop).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{session_id}", tag = "auth",
    params(("session_id" = Uuid, Path, description = "session id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_session(
    auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(session_id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    let (user_id, _) = user_session(auth.principal())?;
    state
        .auth
        .revoke_own_session(user_id, SessionId(session_id), &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password; every other session is revoked.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = ChangePasswordRequest,
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<ChangePasswordRequest>,
) -> Result<StatusCode, AppError> {
    let (user_id, session_id) = user_session(auth.principal())?;
    state
        .auth
        .change_password(
            user_id,
            session_id,
            &req.current_password,
            &req.new_password,
            &ctx,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
