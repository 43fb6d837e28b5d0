//! `/api/v1/users`: user administration (admins only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AdminOnly, AppJson, AppPath, AppQuery, Authorized, Ctx};
use super::paging;
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

/// Query of the user list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// A page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// Users, oldest first.
    pub users: Vec<UserResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Lists users, oldest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(UserQuery),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_users(
    _auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<UserQuery>,
) -> Result<Json<UserPage>, AppError> {
    let mut problems = Vec::new();
    let (after, limit) = paging::page(query.cursor.as_deref(), query.limit, &mut problems);
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let users = state.users.list(after, limit).await?;
    let next_cursor = paging::next_cursor(&users, limit, |user| {
        paging::encode_cursor(user.created_at, user.id)
    });
    Ok(Json(UserPage {
        users: users.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
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
