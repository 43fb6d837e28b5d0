//! Login sessions and their refresh tokens (one family per session).

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::corrupt;
use crate::domain::{Role, Session, SessionId, UnixMillis, UserId};
use crate::error::{AppError, AppResult};

/// A stored refresh token (only its hash is kept).
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Family.
    pub session_id: SessionId,
    /// Expiry.
    pub expires_at: UnixMillis,
    /// When it was spent, if it was.
    pub used_at: Option<UnixMillis>,
}

/// What authenticating an access token needs, in one read.
#[derive(Debug, Clone)]
pub struct SessionOwner {
    /// The session.
    pub session: Session,
    /// Owner's username.
    pub username: String,
    /// Owner's current role.
    pub role: Role,
    /// Owner disabled?
    pub user_disabled_at: Option<UnixMillis>,
}

/// Outcome of a rotation attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Old token spent, new one stored.
    Rotated,
    /// The old token was already spent (or expired) when we tried: treat as reuse.
    AlreadySpent,
}

/// Storage of sessions and refresh tokens.
#[async_trait]
pub trait SessionRepository: Send + Sync + std::fmt::Debug {
    /// Creates a session with its first refresh token.
    async fn insert(
        &self,
        session: &Session,
        token_hash: &str,
        token_expires: UnixMillis,
    ) -> AppResult<()>;
    /// A session with its owner's current role and state.
    async fn find_with_owner(&self, id: SessionId) -> AppResult<Option<SessionOwner>>;
    /// A refresh token by hash.
    async fn find_token(&self, token_hash: &str) -> AppResult<Option<RefreshToken>>;
    /// Atomically spends `old_hash` and stores `new_hash` in the same family.
    async fn rotate(
        &self,
        session_id: SessionId,
        old_hash: &str,
        new_hash: &str,
        new_expires: UnixMillis,
        now: UnixMillis,
    ) -> AppResult<Rotation>;
    /// Revokes one session (and so its family); false if it was not active.
    async fn revoke(&self, id: SessionId, reason: &str, now: UnixMillis) -> AppResult<bool>;
    /// Revokes every active session of a user, except one.
    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        reason: &str,
        now: UnixMillis,
    ) -> AppResult<u64>;
    /// A user's sessions, newest first (active and recently ended).
    async fn list_for_user(&self, user_id: UserId) -> AppResult<Vec<Session>>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlSessionRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlSessionRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn to_session(row: &AnyRow) -> AppResult<Session> {
    let id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    Ok(Session {
        id: id.parse().map_err(|_| corrupt("sessions.id"))?,
        user_id: user_id.parse().map_err(|_| corrupt("sessions.user_id"))?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        revoked_reason: row.try_get("revoked_reason")?,
        client_addr: row.try_get("client_addr")?,
        user_agent: row.try_get("user_agent")?,
    })
}

#[async_trait]
impl SessionRepository for SqlSessionRepository {
    async fn insert(
        &self,
        session: &Session,
        token_hash: &str,
        token_expires: UnixMillis,
    ) -> AppResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, client_addr, user_agent, last_used_at, expires_at, \
             revoked_at, revoked_reason, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $5, $5)",
        )
        .bind(session.id.to_string())
        .bind(session.user_id.to_string())
        .bind(session.client_addr.clone())
        .bind(session.user_agent.clone())
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at, used_at, created_at, \
             updated_at) VALUES ($1, $2, $3, NULL, $4, $4)",
        )
        .bind(token_hash)
        .bind(session.id.to_string())
        .bind(token_expires)
        .bind(session.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_with_owner(&self, id: SessionId) -> AppResult<Option<SessionOwner>> {
        let Some(row) = sqlx::query(
            "SELECT s.id, s.user_id, s.client_addr, s.user_agent, s.last_used_at, s.expires_at, \
             s.revoked_at, s.revoked_reason, s.created_at, u.username, u.role, \
             u.disabled_at AS user_disabled_at \
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        Ok(Some(SessionOwner {
            session: to_session(&row)?,
            username: row.try_get("username")?,
            role: role.parse().map_err(|()| corrupt("users.role"))?,
            user_disabled_at: row.try_get("user_disabled_at")?,
        }))
    }

    async fn find_token(&self, token_hash: &str) -> AppResult<Option<RefreshToken>> {
        let Some(row) = sqlx::query(
            "SELECT session_id, expires_at, used_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let session_id: String = row.try_get("session_id")?;
        Ok(Some(RefreshToken {
            session_id: session_id
                .parse()
                .map_err(|_| corrupt("refresh_tokens.session_id"))?,
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
        }))
    }

    async fn rotate(
        &self,
        session_id: SessionId,
        old_hash: &str,
        new_hash: &str,
        new_expires: UnixMillis,
        now: UnixMillis,
    ) -> AppResult<Rotation> {
        let mut tx = self.writer.begin().await?;
        // The conditional UPDATE is the single-use gate: of two concurrent refreshes with the
        // same token exactly one sees a row affected.
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1, updated_at = $1 \
             WHERE token_hash = $2 AND session_id = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(old_hash)
        .bind(session_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if spent != 1 {
            tx.rollback().await?;
            return Ok(Rotation::AlreadySpent);
        }
        let touched = sqlx::query(
            "UPDATE sessions SET last_used_at = $1, updated_at = $1 \
             WHERE id = $2 AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(session_id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if touched != 1 {
            tx.rollback().await?;
            return Ok(Rotation::AlreadySpent);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, expires_at, used_at, created_at, \
             updated_at) VALUES ($1, $2, $3, NULL, $4, $4)",
        )
        .bind(new_hash)
        .bind(session_id.to_string())
        .bind(new_expires)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated)
    }

    async fn revoke(&self, id: SessionId, reason: &str, now: UnixMillis) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2, updated_at = $1 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(id.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn revoke_all_for_user(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        reason: &str,
        now: UnixMillis,
    ) -> AppResult<u64> {
        let except = except.map(|id| id.to_string()).unwrap_or_default();
        let n = sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2, updated_at = $1 \
             WHERE user_id = $3 AND revoked_at IS NULL AND id <> $4",
        )
        .bind(now)
        .bind(reason)
        .bind(user_id.to_string())
        .bind(except)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn list_for_user(&self, user_id: UserId) -> AppResult<Vec<Session>> {
        sqlx::query(
            "SELECT id, user_id, client_addr, user_agent, last_used_at, expires_at, revoked_at, \
             revoked_reason, created_at FROM sessions WHERE user_id = $1 \
             ORDER BY created_at DESC LIMIT 100",
        )
        .bind(user_id.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_session)
        .collect::<Result<Vec<_>, AppError>>()
    }
}
