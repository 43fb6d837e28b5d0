//! `device_attestations`: the verification result stored with each registered device.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::domain::DeviceId;
use crate::error::AppResult;
use crate::service::attestation::AttestationRecord;

/// Storage of attestation results.
#[async_trait]
pub trait AttestationRepository: Send + Sync + std::fmt::Debug {
    /// Stores the result for a device.
    async fn insert(&self, device_id: DeviceId, record: &AttestationRecord) -> AppResult<()>;
    /// The latest result for a device.
    async fn latest(&self, device_id: DeviceId) -> AppResult<Option<AttestationRecord>>;
}

/// SQL implementation (SQLite and PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlAttestationRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlAttestationRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn corrupt(what: &str) -> crate::error::AppError {
    anyhow::anyhow!("stored {what} does not parse").into()
}

fn to_record(row: &AnyRow) -> AppResult<AttestationRecord> {
    let checks: String = row.try_get("checks")?;
    let key_description: Option<String> = row.try_get("key_description")?;
    Ok(AttestationRecord {
        format: row.try_get("format")?,
        verdict: row.try_get("verdict")?,
        attestation_security_level: row.try_get("attestation_security_level")?,
        keymint_security_level: row.try_get("keymint_security_level")?,
        attestation_version: row.try_get("attestation_version")?,
        checks: serde_json::from_str(&checks).map_err(|_| corrupt("device_attestations.checks"))?,
        key_description: key_description
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|_| corrupt("device_attestations.key_description"))?,
        verified_at: row.try_get("verified_at")?,
    })
}

#[async_trait]
impl AttestationRepository for SqlAttestationRepository {
    async fn insert(&self, device_id: DeviceId, record: &AttestationRecord) -> AppResult<()> {
        let checks = serde_json::to_string(&record.checks).map_err(anyhow::Error::from)?;
        let key_description = record
            .key_description
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(anyhow::Error::from)?;
        sqlx::query(
            "INSERT INTO device_attestations (id, device_id, format, verdict, \
             attestation_security_level, keymint_security_level, attestation_version, checks, \
             key_description, verified_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(device_id.to_string())
        .bind(&record.format)
        .bind(&record.verdict)
        .bind(record.attestation_security_level.clone())
        .bind(record.keymint_security_level.clone())
        .bind(record.attestation_version)
        .bind(checks)
        .bind(key_description)
        .bind(record.verified_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn latest(&self, device_id: DeviceId) -> AppResult<Option<AttestationRecord>> {
        sqlx::query(
            "SELECT format, verdict, attestation_security_level, keymint_security_level, \
             attestation_version, checks, key_description, verified_at \
             FROM device_attestations WHERE device_id = $1 ORDER BY verified_at DESC, id DESC LIMIT 1",
        )
        .bind(device_id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_record)
        .transpose()
    }
}
