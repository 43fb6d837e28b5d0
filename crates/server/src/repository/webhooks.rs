//! Outbound webhook endpoints and their delivery log.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::corrupt;
use crate::domain::UnixMillis;
use crate::error::AppResult;

/// A stored endpoint (secret wrapped).
#[derive(Debug, Clone)]
pub struct EndpointRow {
    /// Id.
    pub id: Uuid,
    /// Target URL.
    pub url: String,
    /// Event kinds it receives.
    pub event_kinds: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// HMAC secret wrapped by the key store (base64 AES-256-GCM envelope).
    pub secret_wrapped: String,
    /// Master key version that wrapped it; `None`: legacy wrap, re-wrapped at start.
    pub master_version: Option<u32>,
    /// Audit actor who created it.
    pub created_by: String,
    /// Created.
    pub created_at: UnixMillis,
}

/// Outcome of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// 2xx.
    Delivered,
    /// Failed, another attempt follows.
    Retrying,
    /// Failed, no attempt follows.
    Failed,
}

impl DeliveryOutcome {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Delivered, Self::Retrying, Self::Failed]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

/// One delivery attempt.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// Id.
    pub id: Uuid,
    /// Endpoint.
    pub endpoint_id: Uuid,
    /// Event id (stable across instances).
    pub event_id: String,
    /// Event kind.
    pub event_kind: String,
    /// 1-based attempt number.
    pub attempt: i64,
    /// Outcome.
    pub outcome: DeliveryOutcome,
    /// HTTP status, when a response came.
    pub http_status: Option<i64>,
    /// Time to response or error.
    pub latency_ms: i64,
    /// Error text (transport error or status), never the body or secret.
    pub error: Option<String>,
    /// When.
    pub created_at: UnixMillis,
}

/// Storage of endpoints and deliveries.
#[async_trait]
pub trait WebhookRepository: Send + Sync + std::fmt::Debug {
    /// Stores an endpoint.
    async fn insert_endpoint(&self, endpoint: &EndpointRow) -> AppResult<()>;
    /// Endpoints not deleted, oldest first.
    async fn list_endpoints(&self) -> AppResult<Vec<EndpointRow>>;
    /// Marks an endpoint deleted; false when unknown or already deleted.
    async fn delete_endpoint(&self, id: Uuid, at: UnixMillis) -> AppResult<bool>;
    /// Whether an endpoint exists and is not deleted.
    async fn endpoint_exists(&self, id: Uuid) -> AppResult<bool>;
    /// Appends a delivery attempt.
    async fn insert_delivery(&self, delivery: &DeliveryRow) -> AppResult<()>;
    /// An endpoint's attempts, newest first.
    async fn list_deliveries(&self, endpoint: Uuid, limit: i64) -> AppResult<Vec<DeliveryRow>>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlWebhookRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlWebhookRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn to_endpoint(row: &AnyRow) -> AppResult<EndpointRow> {
    let id: String = row.try_get("id")?;
    let kinds: String = row.try_get("event_kinds")?;
    Ok(EndpointRow {
        id: id.parse().map_err(|_| corrupt("webhook_endpoints.id"))?,
        url: row.try_get("url")?,
        event_kinds: serde_json::from_str(&kinds)
            .map_err(|_| corrupt("webhook_endpoints.event_kinds"))?,
        description: row.try_get("description")?,
        secret_wrapped: row.try_get("secret_wrapped")?,
        master_version: row
            .try_get::<Option<i64>, _>("master_version")?
            .map(|v| u32::try_from(v).map_err(|_| corrupt("webhook_endpoints.master_version")))
            .transpose()?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn to_delivery(row: &AnyRow) -> AppResult<DeliveryRow> {
    let id: String = row.try_get("id")?;
    let endpoint: String = row.try_get("endpoint_id")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(DeliveryRow {
        id: id.parse().map_err(|_| corrupt("webhook_deliveries.id"))?,
        endpoint_id: endpoint
            .parse()
            .map_err(|_| corrupt("webhook_deliveries.endpoint_id"))?,
        event_id: row.try_get("event_id")?,
        event_kind: row.try_get("event_kind")?,
        attempt: row.try_get("attempt")?,
        outcome: DeliveryOutcome::parse(&outcome)
            .ok_or_else(|| corrupt("webhook_deliveries.outcome"))?,
        http_status: row.try_get("http_status")?,
        latency_ms: row.try_get("latency_ms")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl WebhookRepository for SqlWebhookRepository {
    async fn insert_endpoint(&self, endpoint: &EndpointRow) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, event_kinds, description, secret_wrapped, \
             created_by, deleted_at, created_at, updated_at, master_version) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7, $8)",
        )
        .bind(endpoint.id.to_string())
        .bind(&endpoint.url)
        .bind(serde_json::to_string(&endpoint.event_kinds).map_err(anyhow::Error::from)?)
        .bind(&endpoint.description)
        .bind(&endpoint.secret_wrapped)
        .bind(&endpoint.created_by)
        .bind(endpoint.created_at)
        .bind(endpoint.master_version.map(i64::from))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_endpoints(&self) -> AppResult<Vec<EndpointRow>> {
        sqlx::query(
            "SELECT id, url, event_kinds, description, secret_wrapped, master_version, created_by, \
             created_at FROM webhook_endpoints WHERE deleted_at IS NULL ORDER BY created_at, id",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_endpoint)
        .collect()
    }

    async fn delete_endpoint(&self, id: Uuid, at: UnixMillis) -> AppResult<bool> {
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = $1, updated_at = $1 \
             WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn endpoint_exists(&self, id: Uuid) -> AppResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id.to_string())
        .fetch_one(&self.reader)
        .await?;
        Ok(n > 0)
    }

    async fn insert_delivery(&self, delivery: &DeliveryRow) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_kind, attempt, \
             outcome, http_status, latency_ms, error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(delivery.id.to_string())
        .bind(delivery.endpoint_id.to_string())
        .bind(&delivery.event_id)
        .bind(&delivery.event_kind)
        .bind(delivery.attempt)
        .bind(delivery.outcome.as_str())
        .bind(delivery.http_status)
        .bind(delivery.latency_ms)
        .bind(&delivery.error)
        .bind(delivery.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list_deliveries(&self, endpoint: Uuid, limit: i64) -> AppResult<Vec<DeliveryRow>> {
        sqlx::query(
            "SELECT id, endpoint_id, event_id, event_kind, attempt, outcome, http_status, \
             latency_ms, error, created_at FROM webhook_deliveries WHERE endpoint_id = $1 \
             ORDER BY created_at DESC, attempt DESC LIMIT $2",
        )
        .bind(endpoint.to_string())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_delivery)
        .collect()
    }
}
