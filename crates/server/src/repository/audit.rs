//! The append-only audit log.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::domain::{AuditRecord, UnixMillis};
use crate::error::AppResult;
use crate::infra::db::is_unique_violation;

/// Filters for reading the log. `None` means "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact actor.
    pub actor: Option<String>,
    /// Exact action.
    pub action: Option<String>,
    /// Exact target.
    pub target: Option<String>,
    /// Occurred at or after.
    pub since: Option<UnixMillis>,
    /// Occurred before.
    pub until: Option<UnixMillis>,
    /// Only records with `seq` below this (cursor for newest-first paging).
    pub before_seq: Option<i64>,
    /// Page size.
    pub limit: i64,
}

/// Storage of audit records. There is no update and no delete.
#[async_trait]
pub trait AuditRepository: Send + Sync + std::fmt::Debug {
    /// The last record's `seq` and `hash`, if any.
    async fn head(&self) -> AppResult<Option<(i64, String)>>;
    /// Inserts a record; `Ok(false)` when its `seq` is already taken (another writer won).
    async fn insert(&self, record: &AuditRecord) -> AppResult<bool>;
    /// Newest first, filtered.
    async fn list(&self, filter: &AuditFilter) -> AppResult<Vec<AuditRecord>>;
    /// Oldest first, records with `seq > after_seq`, for chain verification.
    async fn page_after(&self, after_seq: i64, limit: i64) -> AppResult<Vec<AuditRecord>>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlAuditRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlAuditRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn to_record(row: &AnyRow) -> AppResult<AuditRecord> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        occurred_at: row.try_get("occurred_at")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        reason: row.try_get("reason")?,
        request_id: row.try_get("request_id")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

#[async_trait]
impl AuditRepository for SqlAuditRepository {
    async fn head(&self) -> AppResult<Option<(i64, String)>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.reader)
            .await?;
        Ok(match row {
            Some(row) => Some((row.try_get("seq")?, row.try_get("hash")?)),
            None => None,
        })
    }

    async fn insert(&self, record: &AuditRecord) -> AppResult<bool> {
        let result = sqlx::query(
            "INSERT INTO audit_log (seq, occurred_at, actor, action, target, reason, request_id, \
             prev_hash, hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $2, $2)",
        )
        .bind(record.seq)
        .bind(record.occurred_at)
        .bind(&record.actor)
        .bind(&record.action)
        .bind(record.target.clone())
        .bind(record.reason.clone())
        .bind(record.request_id.clone())
        .bind(&record.prev_hash)
        .bind(&record.hash)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn list(&self, filter: &AuditFilter) -> AppResult<Vec<AuditRecord>> {
        sqlx::query(
            "SELECT seq, occurred_at, actor, action, target, reason, request_id, prev_hash, hash \
             FROM audit_log \
             WHERE ($1 IS NULL OR actor = $1) \
               AND ($2 IS NULL OR action = $2) \
               AND ($3 IS NULL OR target = $3) \
               AND ($4 IS NULL OR occurred_at >= $4) \
               AND ($5 IS NULL OR occurred_at < $5) \
               AND ($6 IS NULL OR seq < $6) \
             ORDER BY seq DESC LIMIT $7",
        )
        .bind(filter.actor.clone())
        .bind(filter.action.clone())
        .bind(filter.target.clone())
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.before_seq)
        .bind(filter.limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_record)
        .collect()
    }

    async fn page_after(&self, after_seq: i64, limit: i64) -> AppResult<Vec<AuditRecord>> {
        sqlx::query(
            "SELECT seq, occurred_at, actor, action, target, reason, request_id, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_record)
        .collect()
    }
}
