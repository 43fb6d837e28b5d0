//! `/api/v1/users`: user administration (admins only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AdminOnly, AppJson, AppPath, Authorized, Ctx};
use super::state::AppState;
use crate::domain::{Role, User, UserId, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::service::users::NewUser;

/// A user as shown on the wire (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// Id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Disabled?
    pub disabled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: user.id.0,
            username: user.username,
            role: user.role,
            disabled: user.disabled_at.is_some(),
            created_at: to_rfc3339(user.created_at),
        }
    }
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// Login name: 3–64 of `a-z 0-9 . _ -`.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Initial password (at least 12 characters).
    pub password: String,
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = UserResponse), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_user(
    auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<CreateUserRequest>,
) -> Result<(StatusCode, Json<UserResponse>), AppError> {
    let user = state
        .users
        .create(
            auth.principal(),
            NewUser {
                username: req.username,
                role: req.role,
                password: req.password,
            },
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Vec<UserResponse>)))]
pub async fn list_users(
    _auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
) -> Result<Json<Vec<UserResponse>>, AppError> {
    Ok(Json(
        state
            .users
            .list()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{user_id}", tag = "users",
    params(("user_id" = Uuid, Path, description = "user id")),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = UserResponse), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    _auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    AppPath(user_id): AppPath<Uuid>,
) -> Result<Json<UserResponse>, AppError> {
    Ok(Json(state.users.get(UserId(user_id)).await?.into()))
}
