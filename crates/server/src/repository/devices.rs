//! Devices and their state history.

use crate::infra::db::Database;
use async_trait::async_trait;
use base64::Engine;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{corrupt, like_pattern};
use crate::domain::{
    Device, DeviceFacts, DeviceId, DeviceState, DeviceStateChange, DeviceStats, MerchantId,
    UnixMillis,
};
use crate::error::{AppError, AppResult};
use crate::infra::db::is_unique_violation;

/// Filters for listing devices.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    /// Exact state.
    pub state: Option<DeviceState>,
    /// Exact merchant.
    pub merchant_id: Option<MerchantId>,
    /// Case-insensitive substring of the model (literal).
    pub model: Option<String>,
    /// Registered at or after.
    pub registered_since: Option<UnixMillis>,
    /// Registered before.
    pub registered_until: Option<UnixMillis>,
    /// Keyset cursor `(created_at, id)`.
    pub after: Option<(UnixMillis, DeviceId)>,
    /// Page size.
    pub limit: i64,
}

/// A compare-and-set state change with its history entry.
#[derive(Debug, Clone)]
pub struct StateTransition {
    /// Device.
    pub device_id: DeviceId,
    /// Expected current state.
    pub from: DeviceState,
    /// New state.
    pub to: DeviceState,
    /// Action name.
    pub action: &'static str,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// When.
    pub at: UnixMillis,
}

/// Storage of devices.
#[async_trait]
pub trait DeviceRepository: Send + Sync + std::fmt::Debug {
    /// Inserts a new device and its first history entry; `device_already_registered` when
    /// the key is known.
    async fn insert(
        &self,
        device: &Device,
        actor: &str,
        request_id: Option<String>,
    ) -> AppResult<()>;
    /// By id.
    async fn find_by_id(&self, id: DeviceId) -> AppResult<Option<Device>>;
    /// Applies a transition if the device is still in `from`; false otherwise.
    async fn transition(&self, change: &StateTransition) -> AppResult<bool>;
    /// History, oldest first.
    async fn history(&self, id: DeviceId) -> AppResult<Vec<DeviceStateChange>>;
    /// A page, oldest first.
    async fn list(&self, filter: &DeviceFilter) -> AppResult<Vec<Device>>;
    /// Aggregates; registrations per day from `since`.
    async fn stats(&self, since: UnixMillis) -> AppResult<DeviceStats>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlDeviceRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlDeviceRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn to_device(row: &AnyRow) -> AppResult<Device> {
    let id: String = row.try_get("id")?;
    let merchant_id: String = row.try_get("merchant_id")?;
    let public_key: String = row.try_get("public_key")?;
    let mode: String = row.try_get("mode")?;
    let state: String = row.try_get("state")?;
    let facts: String = row.try_get("facts")?;
    let notes: String = row.try_get("attestation_notes")?;
    Ok(Device {
        id: id.parse().map_err(|_| corrupt("devices.id"))?,
        merchant_id: merchant_id
            .parse()
            .map_err(|_| corrupt("devices.merchant_id"))?,
        public_key: B64
            .decode(public_key)
            .map_err(|_| corrupt("devices.public_key"))?,
        key_fingerprint: row.try_get("key_fingerprint")?,
        mode: mode.parse().map_err(|()| corrupt("devices.mode"))?,
        state: state.parse().map_err(|()| corrupt("devices.state"))?,
        facts: serde_json::from_str::<DeviceFacts>(&facts).map_err(|_| corrupt("devices.facts"))?,
        attestation_format: row.try_get("attestation_format")?,
        attestation_notes: serde_json::from_str(&notes)
            .map_err(|_| corrupt("devices.attestation_notes"))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl DeviceRepository for SqlDeviceRepository {
    async fn insert(
        &self,
        device: &Device,
        actor: &str,
        request_id: Option<String>,
    ) -> AppResult<()> {
        let facts = serde_json::to_string(&device.facts).map_err(anyhow::Error::from)?;
        let notes =
            serde_json::to_string(&device.attestation_notes).map_err(anyhow::Error::from)?;
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO devices (id, merchant_id, public_key, key_fingerprint, mode, state, model, \
             facts, attestation_format, attestation_notes, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(device.id.to_string())
        .bind(device.merchant_id.to_string())
        .bind(B64.encode(&device.public_key))
        .bind(&device.key_fingerprint)
        .bind(device.mode.as_str())
        .bind(device.state.as_str())
        .bind(&device.facts.model)
        .bind(facts)
        .bind(&device.attestation_format)
        .bind(notes)
        .bind(device.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(AppError::Conflict {
                    code: "device_already_registered",
                    message: "a device with this public key is already registered",
                });
            }
            Err(error) => return Err(error.into()),
        }
        sqlx::query(
            "INSERT INTO device_state_changes (id, device_id, from_state, to_state, action, actor, \
             reason, request_id, created_at, updated_at) \
             VALUES ($1, $2, NULL, $3, 'register', $4, NULL, $5, $6, $6)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(device.id.to_string())
        .bind(device.state.as_str())
        .bind(actor)
        .bind(request_id)
        .bind(device.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_by_id(&self, id: DeviceId) -> AppResult<Option<Device>> {
        sqlx::query(
            "SELECT id, merchant_id, public_key, key_fingerprint, mode, state, facts, \
             attestation_format, attestation_notes, created_at, updated_at FROM devices WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_device)
        .transpose()
    }

    async fn transition(&self, change: &StateTransition) -> AppResult<bool> {
        let mut tx = self.writer.begin().await?;
        // Compare-and-set: of two concurrent transitions from one state only one applies.
        let n = sqlx::query(
            "UPDATE devices SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(change.to.as_str())
        .bind(change.at)
        .bind(change.device_id.to_string())
        .bind(change.from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO device_state_changes (id, device_id, from_state, to_state, action, actor, \
             reason, request_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(change.device_id.to_string())
        .bind(change.from.as_str())
        .bind(change.to.as_str())
        .bind(change.action)
        .bind(&change.actor)
        .bind(change.reason.clone())
        .bind(change.request_id.clone())
        .bind(change.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn history(&self, id: DeviceId) -> AppResult<Vec<DeviceStateChange>> {
        let rows = sqlx::query(
            "SELECT from_state, to_state, action, actor, reason, created_at \
             FROM device_state_changes WHERE device_id = $1 ORDER BY created_at, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let from: Option<String> = row.try_get("from_state")?;
                let to: String = row.try_get("to_state")?;
                Ok(DeviceStateChange {
                    from_state: from
                        .map(|state| state.parse().map_err(|()| corrupt("from_state")))
                        .transpose()?,
                    to_state: to.parse().map_err(|()| corrupt("to_state"))?,
                    action: row.try_get("action")?,
                    actor: row.try_get("actor")?,
                    reason: row.try_get("reason")?,
                    at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn list(&self, filter: &DeviceFilter) -> AppResult<Vec<Device>> {
        let (after_created, after_id) = match filter.after {
            Some((created_at, id)) => (Some(created_at), Some(id.to_string())),
            None => (None, None),
        };
        sqlx::query(
            "SELECT id, merchant_id, public_key, key_fingerprint, mode, state, facts, \
             attestation_format, attestation_notes, created_at, updated_at FROM devices \
             WHERE ($1 IS NULL OR state = $1) \
               AND ($2 IS NULL OR merchant_id = $2) \
               AND ($3 IS NULL OR LOWER(model) LIKE $3 ESCAPE '\\') \
               AND ($4 IS NULL OR created_at >= $4) \
               AND ($5 IS NULL OR created_at < $5) \
               AND ($6 IS NULL OR created_at > $6 OR (created_at = $6 AND id > $7)) \
             ORDER BY created_at, id LIMIT $8",
        )
        .bind(filter.state.map(DeviceState::as_str))
        .bind(filter.merchant_id.map(|id| id.to_string()))
        .bind(filter.model.as_deref().map(like_pattern))
        .bind(filter.registered_since)
        .bind(filter.registered_until)
        .bind(after_created)
        .bind(after_id)
        .bind(filter.limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_device)
        .collect()
    }

    async fn stats(&self, since: UnixMillis) -> AppResult<DeviceStats> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices")
            .fetch_one(&self.reader)
            .await?;
        let by_state =
            sqlx::query("SELECT state, COUNT(*) AS n FROM devices GROUP BY state ORDER BY state")
                .fetch_all(&self.reader)
                .await?
                .iter()
                .map(|row| {
                    let state: String = row.try_get("state")?;
                    Ok((
                        state.parse().map_err(|()| corrupt("devices.state"))?,
                        row.try_get("n")?,
                    ))
                })
                .collect::<AppResult<Vec<_>>>()?;
        let by_model = sqlx::query(
            "SELECT model, COUNT(*) AS n FROM devices GROUP BY model ORDER BY n DESC, model LIMIT 20",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("model")?, row.try_get("n")?)))
        .collect::<AppResult<Vec<_>>>()?;
        let by_merchant = sqlx::query(
            "SELECT merchant_id, COUNT(*) AS n FROM devices GROUP BY merchant_id \
             ORDER BY n DESC, merchant_id LIMIT 20",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            let id: String = row.try_get("merchant_id")?;
            Ok((
                id.parse().map_err(|_| corrupt("devices.merchant_id"))?,
                row.try_get("n")?,
            ))
        })
        .collect::<AppResult<Vec<_>>>()?;
        let registrations_per_day = sqlx::query(
            "SELECT created_at / 86400000 AS bucket, COUNT(*) AS n FROM devices \
             WHERE created_at >= $1 GROUP BY created_at / 86400000 ORDER BY bucket",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("bucket")?, row.try_get("n")?)))
        .collect::<AppResult<Vec<_>>>()?;
        Ok(DeviceStats {
            total,
            by_state,
            by_model,
            by_merchant,
            registrations_per_day,
        })
    }
}
