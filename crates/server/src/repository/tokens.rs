//! Transaction Tokens and their ES256 signing keys.
//!
//! A token row holds the jti, the SHA-256 of the token and its claims, never the token.
//! `consume` is the durable single-use authority: one conditional UPDATE, so of any number
//! of concurrent callers on any number of instances exactly one sees a row affected.

use crate::infra::db::{Database, WriteQueue};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{DeviceId, UnixMillis};
use crate::error::AppResult;

/// A stored signing key (private part wrapped).
#[derive(Debug, Clone)]
pub struct SigningKeyRow {
    /// Key id.
    pub kid: String,
    /// SEC1 uncompressed public key, base64.
    pub public_key: String,
    /// Private scalar wrapped by the key store (base64 AES-256-GCM envelope).
    pub private_wrapped: String,
    /// Master key version that wrapped it; `None`: legacy wrap, re-wrapped at start.
    pub master_version: Option<u32>,
    /// When it stopped signing.
    pub retired_at: Option<UnixMillis>,
    /// Until when it stays published.
    pub publish_until: Option<UnixMillis>,
    /// Created.
    pub created_at: UnixMillis,
}

/// A stored token (no token text).
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// `jti`.
    pub jti: Uuid,
    /// `sub`.
    pub device_id: DeviceId,
    /// Signing key.
    pub kid: String,
    /// SHA-256 of the compact token, hex.
    pub token_hash: String,
    /// Claims JSON as signed.
    pub claims: String,
    /// Issued.
    pub issued_at: UnixMillis,
    /// Expires.
    pub expires_at: UnixMillis,
    /// Consumed, once.
    pub consumed_at: Option<UnixMillis>,
}

/// Storage of tokens and signing keys.
#[async_trait]
pub trait TokenRepository: Send + Sync + std::fmt::Debug {
    /// Stores a new signing key.
    async fn insert_key(&self, key: &SigningKeyRow) -> AppResult<()>;
    /// Keys still signing or still published at `now`, oldest first.
    async fn live_keys(&self, now: UnixMillis) -> AppResult<Vec<SigningKeyRow>>;
    /// Retires every signing key but `keep`, published until `publish_until`.
    async fn retire_all_but(
        &self,
        keep: &str,
        at: UnixMillis,
        publish_until: UnixMillis,
    ) -> AppResult<u64>;
    /// Records an issued token.
    async fn insert_token(&self, token: &TokenRow) -> AppResult<()>;
    /// By `jti`.
    async fn find_token(&self, jti: Uuid) -> AppResult<Option<TokenRow>>;
    /// Marks the token consumed if it was not, and was issued to `device` with `token_hash`;
    /// `true` for exactly one caller.
    async fn consume(
        &self,
        jti: Uuid,
        device: DeviceId,
        token_hash: &str,
        at: UnixMillis,
    ) -> AppResult<bool>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlTokenRepository {
    reader: AnyPool,
    writer: AnyPool,
    writes: WriteQueue,
}

impl SqlTokenRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
            writes: db.writes.clone(),
        }
    }
}

fn to_key(row: &AnyRow) -> AppResult<SigningKeyRow> {
    Ok(SigningKeyRow {
        kid: row.try_get("kid")?,
        public_key: row.try_get("public_key")?,
        private_wrapped: row.try_get("private_wrapped")?,
        master_version: row
            .try_get::<Option<i64>, _>("master_version")?
            .map(|v| u32::try_from(v).map_err(|_| corrupt("token_signing_keys.master_version")))
            .transpose()?,
        retired_at: row.try_get("retired_at")?,
        publish_until: row.try_get("publish_until")?,
        created_at: row.try_get("created_at")?,
    })
}

fn to_token(row: &AnyRow) -> AppResult<TokenRow> {
    let jti: String = row.try_get("jti")?;
    let device: String = row.try_get("device_id")?;
    Ok(TokenRow {
        jti: jti.parse().map_err(|_| corrupt("tokens.jti"))?,
        device_id: DeviceId(device.parse().map_err(|_| corrupt("tokens.device_id"))?),
        kid: row.try_get("kid")?,
        token_hash: row.try_get("token_hash")?,
        claims: row.try_get("claims")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        consumed_at: row.try_get("consumed_at")?,
    })
}

#[async_trait]
impl TokenRepository for SqlTokenRepository {
    async fn insert_key(&self, key: &SigningKeyRow) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO token_signing_keys (kid, public_key, private_wrapped, retired_at, \
             publish_until, created_at, updated_at, master_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
        )
        .bind(&key.kid)
        .bind(&key.public_key)
        .bind(&key.private_wrapped)
        .bind(key.retired_at)
        .bind(key.publish_until)
        .bind(key.created_at)
        .bind(key.master_version.map(i64::from))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn live_keys(&self, now: UnixMillis) -> AppResult<Vec<SigningKeyRow>> {
        sqlx::query(
            "SELECT kid, public_key, private_wrapped, master_version, retired_at, publish_until, \
             created_at FROM token_signing_keys WHERE retired_at IS NULL OR publish_until > $1 \
             ORDER BY created_at, kid",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_key)
        .collect()
    }

    async fn retire_all_but(
        &self,
        keep: &str,
        at: UnixMillis,
        publish_until: UnixMillis,
    ) -> AppResult<u64> {
        let done = sqlx::query(
            "UPDATE token_signing_keys SET retired_at = $1, publish_until = $2, updated_at = $1 \
             WHERE retired_at IS NULL AND kid <> $3",
        )
        .bind(at)
        .bind(publish_until)
        .bind(keep)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn insert_token(&self, token: &TokenRow) -> AppResult<()> {
        let token = token.clone();
        self.writes
            .run(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO tokens (jti, device_id, kid, token_hash, claims, issued_at, \
                         expires_at, consumed_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $6, $6)",
                    )
                    .bind(token.jti.to_string())
                    .bind(token.device_id.to_string())
                    .bind(&token.kid)
                    .bind(&token.token_hash)
                    .bind(&token.claims)
                    .bind(token.issued_at)
                    .bind(token.expires_at)
                    .execute(&mut *conn)
                    .await
                })
            })
            .await?;
        Ok(())
    }

    async fn find_token(&self, jti: Uuid) -> AppResult<Option<TokenRow>> {
        sqlx::query(
            "SELECT jti, device_id, kid, token_hash, claims, issued_at, expires_at, consumed_at \
             FROM tokens WHERE jti = $1",
        )
        .bind(jti.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_token)
        .transpose()
    }

    async fn consume(
        &self,
        jti: Uuid,
        device: DeviceId,
        token_hash: &str,
        at: UnixMillis,
    ) -> AppResult<bool> {
        let token_hash = token_hash.to_owned();
        let done = self
            .writes
            .run(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE tokens SET consumed_at = $1, updated_at = $1 WHERE jti = $2 \
                         AND consumed_at IS NULL AND device_id = $3 AND token_hash = $4",
                    )
                    .bind(at)
                    .bind(jti.to_string())
                    .bind(device.to_string())
                    .bind(token_hash)
                    .execute(&mut *conn)
                    .await
                })
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
