//! API keys (only hashes are stored).

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::corrupt;
use crate::domain::{ApiKey, ApiKeyId, Scope, UnixMillis};
use crate::error::{AppError, AppResult};
use crate::infra::db::is_unique_violation;

/// Storage of API keys.
#[async_trait]
pub trait ApiKeyRepository: Send + Sync + std::fmt::Debug {
    /// Inserts a key.
    async fn insert(&self, key: &ApiKey) -> AppResult<()>;
    /// All keys, newest first.
    async fn list(&self) -> AppResult<Vec<ApiKey>>;
    /// By public prefix.
    async fn find_by_prefix(&self, prefix: &str) -> AppResult<Option<ApiKey>>;
    /// By id.
    async fn find_by_id(&self, id: ApiKeyId) -> AppResult<Option<ApiKey>>;
    /// Revokes; false when unknown or already revoked.
    async fn revoke(&self, id: ApiKeyId, now: UnixMillis) -> AppResult<bool>;
    /// Records a successful use.
    async fn touch(&self, id: ApiKeyId, now: UnixMillis) -> AppResult<()>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlApiKeyRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlApiKeyRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn to_key(row: &AnyRow) -> AppResult<ApiKey> {
    let id: String = row.try_get("id")?;
    let created_by: String = row.try_get("created_by")?;
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiKey {
        id: id.parse().map_err(|_| corrupt("api_keys.id"))?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        key_hash: row.try_get("key_hash")?,
        scopes: scopes
            .split_whitespace()
            .map(|scope| {
                scope
                    .parse::<Scope>()
                    .map_err(|()| corrupt("api_keys.scopes"))
            })
            .collect::<Result<_, _>>()?,
        created_by: created_by
            .parse()
            .map_err(|_| corrupt("api_keys.created_by"))?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

#[async_trait]
impl ApiKeyRepository for SqlApiKeyRepository {
    async fn insert(&self, key: &ApiKey) -> AppResult<()> {
        let scopes = key
            .scopes
            .iter()
            .map(|scope| scope.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let result = sqlx::query(
            "INSERT INTO api_keys (id, name, prefix, key_hash, scopes, created_by, last_used_at, \
             revoked_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7, $7)",
        )
        .bind(key.id.to_string())
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(scopes)
        .bind(key.created_by.to_string())
        .bind(key.created_at)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(AppError::Conflict {
                code: "api_key_prefix_taken",
                message: "key prefix collision, try again",
            }),
            Err(error) => Err(error.into()),
        }
    }

    async fn list(&self) -> AppResult<Vec<ApiKey>> {
        sqlx::query(
            "SELECT id, name, prefix, key_hash, scopes, created_by, created_at, last_used_at, \
             revoked_at FROM api_keys ORDER BY created_at DESC, id LIMIT 1000",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_key)
        .collect()
    }

    async fn find_by_prefix(&self, prefix: &str) -> AppResult<Option<ApiKey>> {
        sqlx::query(
            "SELECT id, name, prefix, key_hash, scopes, created_by, created_at, last_used_at, \
             revoked_at FROM api_keys WHERE prefix = $1",
        )
        .bind(prefix)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_key)
        .transpose()
    }

    async fn find_by_id(&self, id: ApiKeyId) -> AppResult<Option<ApiKey>> {
        sqlx::query(
            "SELECT id, name, prefix, key_hash, scopes, created_by, created_at, last_used_at, \
             revoked_at FROM api_keys WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_key)
        .transpose()
    }

    async fn revoke(&self, id: ApiKeyId, now: UnixMillis) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1, updated_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn touch(&self, id: ApiKeyId, now: UnixMillis) -> AppResult<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
