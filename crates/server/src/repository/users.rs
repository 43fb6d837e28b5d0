//! Users.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::corrupt;
use crate::domain::{Role, UnixMillis, User, UserId};
use crate::error::{AppError, AppResult};
use crate::infra::db::{is_unique_violation, violated_constraint};

/// Storage of users.
#[async_trait]
pub trait UserRepository: Send + Sync + std::fmt::Debug {
    /// Inserts a new user; `username_taken` conflict on a duplicate name.
    async fn insert(&self, user: &User) -> AppResult<()>;
    /// Finds by username.
    async fn find_by_username(&self, username: &str) -> AppResult<Option<User>>;
    /// Finds by id.
    async fn find_by_id(&self, id: UserId) -> AppResult<Option<User>>;
    /// All users, oldest first.
    /// One page of users ordered by (creation time, id), after `after`.
    async fn list(&self, after: Option<(UnixMillis, UserId)>, limit: i64) -> AppResult<Vec<User>>;
    /// Number of users.
    async fn count(&self) -> AppResult<i64>;
    /// Replaces the password hash.
    async fn update_password(&self, id: UserId, hash: &str, at: UnixMillis) -> AppResult<()>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlUserRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlUserRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

/// A `users` row.
#[derive(Debug)]
struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    role: String,
    disabled_at: Option<i64>,
    created_at: i64,
}

impl UserRow {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            role: row.try_get("role")?,
            disabled_at: row.try_get("disabled_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

impl TryFrom<UserRow> for User {
    type Error = AppError;
    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: row.id.parse().map_err(|_| corrupt("users.id"))?,
            username: row.username,
            password_hash: row.password_hash,
            role: row
                .role
                .parse::<Role>()
                .map_err(|()| corrupt("users.role"))?,
            disabled_at: row.disabled_at,
            created_at: row.created_at,
        })
    }
}

fn to_user(row: &AnyRow) -> AppResult<User> {
    UserRow::from_row(row)?.try_into()
}

#[async_trait]
impl UserRepository for SqlUserRepository {
    async fn insert(&self, user: &User) -> AppResult<()> {
        let result = sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, disabled_at, \
             password_changed_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6)",
        )
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(user.disabled_at)
        .bind(user.created_at)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                let constraint = violated_constraint(&error).unwrap_or_default();
                tracing::debug!(%constraint, "unique violation on users");
                Err(AppError::Conflict {
                    code: "username_taken",
                    message: "a user with this username already exists",
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn find_by_username(&self, username: &str) -> AppResult<Option<User>> {
        sqlx::query(
            "SELECT id, username, password_hash, role, disabled_at, created_at \
             FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_user)
        .transpose()
    }

    async fn find_by_id(&self, id: UserId) -> AppResult<Option<User>> {
        sqlx::query(
            "SELECT id, username, password_hash, role, disabled_at, created_at \
             FROM users WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_user)
        .transpose()
    }

    async fn list(&self, after: Option<(UnixMillis, UserId)>, limit: i64) -> AppResult<Vec<User>> {
        let (after_created, after_id) = match after {
            Some((created_at, id)) => (Some(created_at), Some(id.to_string())),
            None => (None, None),
        };
        sqlx::query(
            "SELECT id, username, password_hash, role, disabled_at, created_at FROM users \
             WHERE ($1 IS NULL OR created_at > $1 OR (created_at = $1 AND id > $2)) \
             ORDER BY created_at, id LIMIT $3",
        )
        .bind(after_created)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_user)
        .collect()
    }

    async fn count(&self) -> AppResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await?)
    }

    async fn update_password(&self, id: UserId, hash: &str, at: UnixMillis) -> AppResult<()> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(hash)
        .bind(at)
        .bind(id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
