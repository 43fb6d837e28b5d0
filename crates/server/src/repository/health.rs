//! Security policy versions, health reports with their failed checks, and the fleet
//! aggregates computed from them.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{DeviceId, UnixMillis};
use crate::error::{AppError, AppResult};
use crate::infra::db::is_unique_violation;

/// One stored policy version; `body` is the policy JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRow {
    /// Version, from 1.
    pub version: i64,
    /// Policy JSON.
    pub body: String,
    /// Why it was changed.
    pub comment: Option<String>,
    /// Audit actor who created it.
    pub created_by: String,
    /// When.
    pub created_at: UnixMillis,
}

/// A stored, scored health report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthReportRecord {
    /// Id.
    pub id: Uuid,
    /// Device.
    pub device_id: DeviceId,
    /// Policy version that scored it.
    pub policy_version: i64,
    /// 0-100.
    pub score: u8,
    /// Passed.
    pub passed: bool,
    /// Failed check names.
    pub failed_checks: Vec<String>,
    /// The report as submitted (JSON).
    pub report: String,
    /// Device minus server clock.
    pub clock_skew_ms: i64,
    /// Amount ceiling at this score.
    pub amount_ceiling_minor: Option<u64>,
    /// Received.
    pub received_at: UnixMillis,
}

/// Fleet aggregates over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthAggregates {
    /// Reports in the window.
    pub reports: i64,
    /// Of which passed.
    pub passed: i64,
    /// Distinct devices that reported.
    pub devices: i64,
    /// Sum of scores (for the mean).
    pub score_sum: i64,
    /// `(score / 10, count)`; 100 lands in bucket 10.
    pub score_buckets: Vec<(i64, i64)>,
    /// `(check, count)`, most frequent first.
    pub failed_checks: Vec<(String, i64)>,
    /// `(bucket start, reports, failed)` per `bucket_ms`.
    pub series: Vec<(i64, i64, i64)>,
}

/// An active device without a recent report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverdueDevice {
    /// Device.
    pub device_id: DeviceId,
    /// Its latest report, if any.
    pub last_report_at: Option<UnixMillis>,
    /// Latest report, or the last state change when it never reported.
    pub since: UnixMillis,
}

/// Storage of policies and reports.
#[async_trait]
pub trait HealthRepository: Send + Sync + std::fmt::Debug {
    /// Inserts a policy version; `false` when that version exists already.
    async fn insert_policy(&self, row: &PolicyVersionRow) -> AppResult<bool>;
    /// The highest version.
    async fn current_policy(&self) -> AppResult<Option<PolicyVersionRow>>;
    /// Every version, newest first.
    async fn list_policies(&self) -> AppResult<Vec<PolicyVersionRow>>;
    /// Stores a report and its failed checks.
    async fn insert_report(&self, report: &HealthReportRecord) -> AppResult<()>;
    /// The device's latest report.
    async fn latest_report(&self, device: DeviceId) -> AppResult<Option<HealthReportRecord>>;
    /// The device's reports, newest first, received before `before` if given.
    async fn history(
        &self,
        device: DeviceId,
        before: Option<UnixMillis>,
        limit: i64,
    ) -> AppResult<Vec<HealthReportRecord>>;
    /// Aggregates over reports received at or after `since`.
    async fn aggregates(&self, since: UnixMillis, bucket_ms: i64) -> AppResult<HealthAggregates>;
    /// Active devices whose latest report (or last state change) is older than `cutoff`.
    async fn overdue(&self, cutoff: UnixMillis, limit: i64) -> AppResult<Vec<OverdueDevice>>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlHealthRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlHealthRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn to_policy(row: &AnyRow) -> AppResult<PolicyVersionRow> {
    Ok(PolicyVersionRow {
        version: row.try_get("version")?,
        body: row.try_get("body")?,
        comment: row.try_get("comment")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn to_report(row: &AnyRow) -> AppResult<HealthReportRecord> {
    let id: String = row.try_get("id")?;
    let device_id: String = row.try_get("device_id")?;
    let score: i64 = row.try_get("score")?;
    let verdict: String = row.try_get("verdict")?;
    let failed: String = row.try_get("failed_checks")?;
    let ceiling: Option<i64> = row.try_get("amount_ceiling_minor")?;
    Ok(HealthReportRecord {
        id: id.parse().map_err(|_| corrupt("health_reports.id"))?,
        device_id: device_id
            .parse()
            .map_err(|_| corrupt("health_reports.device_id"))?,
        policy_version: row.try_get("policy_version")?,
        score: u8::try_from(score).map_err(|_| corrupt("health_reports.score"))?,
        passed: match verdict.as_str() {
            "pass" => true,
            "fail" => false,
            _ => return Err(corrupt("health_reports.verdict")),
        },
        failed_checks: serde_json::from_str(&failed)
            .map_err(|_| corrupt("health_reports.failed_checks"))?,
        report: row.try_get("report")?,
        clock_skew_ms: row.try_get("clock_skew_ms")?,
        amount_ceiling_minor: ceiling
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("health_reports.amount_ceiling_minor"))?,
        received_at: row.try_get("received_at")?,
    })
}

/// `SELECT <report columns> FROM health_reports <tail>`, as one `&'static str`.
macro_rules! select_reports {
    ($tail:literal) => {
        concat!(
            "SELECT id, device_id, policy_version, score, verdict, failed_checks, report, ",
            "clock_skew_ms, amount_ceiling_minor, received_at FROM health_reports ",
            $tail
        )
    };
}

#[async_trait]
impl HealthRepository for SqlHealthRepository {
    async fn insert_policy(&self, row: &PolicyVersionRow) -> AppResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO security_policies (version, body, comment, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(row.version)
        .bind(&row.body)
        .bind(row.comment.clone())
        .bind(&row.created_by)
        .bind(row.created_at)
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn current_policy(&self) -> AppResult<Option<PolicyVersionRow>> {
        sqlx::query(
            "SELECT version, body, comment, created_by, created_at FROM security_policies \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_policy)
        .transpose()
    }

    async fn list_policies(&self) -> AppResult<Vec<PolicyVersionRow>> {
        sqlx::query(
            "SELECT version, body, comment, created_by, created_at FROM security_policies \
             ORDER BY version DESC",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_policy)
        .collect()
    }

    async fn insert_report(&self, report: &HealthReportRecord) -> AppResult<()> {
        let failed = serde_json::to_string(&report.failed_checks).map_err(anyhow::Error::from)?;
        let ceiling = report
            .amount_ceiling_minor
            .map(i64::try_from)
            .transpose()
            .map_err(|_| AppError::Other(anyhow::anyhow!("amount ceiling out of range")))?;
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO health_reports (id, device_id, policy_version, score, verdict, \
             failed_checks, report, clock_skew_ms, amount_ceiling_minor, received_at, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10)",
        )
        .bind(report.id.to_string())
        .bind(report.device_id.to_string())
        .bind(report.policy_version)
        .bind(i64::from(report.score))
        .bind(if report.passed { "pass" } else { "fail" })
        .bind(failed)
        .bind(&report.report)
        .bind(report.clock_skew_ms)
        .bind(ceiling)
        .bind(report.received_at)
        .execute(&mut *tx)
        .await?;
        for check in &report.failed_checks {
            sqlx::query(
                "INSERT INTO health_report_failures (report_id, check_name, device_id, \
                 received_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $4, $4)",
            )
            .bind(report.id.to_string())
            .bind(check)
            .bind(report.device_id.to_string())
            .bind(report.received_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn latest_report(&self, device: DeviceId) -> AppResult<Option<HealthReportRecord>> {
        sqlx::query(select_reports!(
            "WHERE device_id = $1 ORDER BY received_at DESC, id DESC LIMIT 1"
        ))
        .bind(device.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_report)
        .transpose()
    }

    async fn history(
        &self,
        device: DeviceId,
        before: Option<UnixMillis>,
        limit: i64,
    ) -> AppResult<Vec<HealthReportRecord>> {
        sqlx::query(select_reports!(
            "WHERE device_id = $1 AND ($2 IS NULL OR received_at < $2) \
             ORDER BY received_at DESC, id DESC LIMIT $3"
        ))
        .bind(device.to_string())
        .bind(before)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_report)
        .collect()
    }

    async fn aggregates(&self, since: UnixMillis, bucket_ms: i64) -> AppResult<HealthAggregates> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT device_id) AS devices, \
             SUM(CASE WHEN verdict = 'pass' THEN 1 ELSE 0 END) AS passed, CAST(SUM(score) AS BIGINT) AS score_sum \
             FROM health_reports WHERE received_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.reader)
        .await?;
        let reports: i64 = row.try_get("n")?;
        let devices: i64 = row.try_get("devices")?;
        let passed: Option<i64> = row.try_get("passed")?;
        let score_sum: Option<i64> = row.try_get("score_sum")?;
        let score_buckets = sqlx::query(
            "SELECT score / 10 AS bucket, COUNT(*) AS n FROM health_reports \
             WHERE received_at >= $1 GROUP BY bucket ORDER BY bucket",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("bucket")?, row.try_get("n")?)))
        .collect::<AppResult<Vec<_>>>()?;
        let failed_checks = sqlx::query(
            "SELECT check_name, COUNT(*) AS n FROM health_report_failures \
             WHERE received_at >= $1 GROUP BY check_name ORDER BY n DESC, check_name",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("check_name")?, row.try_get("n")?)))
        .collect::<AppResult<Vec<_>>>()?;
        let series = sqlx::query(
            "SELECT received_at / $2 AS bucket, COUNT(*) AS n, \
             SUM(CASE WHEN verdict = 'fail' THEN 1 ELSE 0 END) AS failed \
             FROM health_reports WHERE received_at >= $1 GROUP BY bucket ORDER BY bucket",
        )
        .bind(since)
        .bind(bucket_ms)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            let bucket: i64 = row.try_get("bucket")?;
            let failed: Option<i64> = row.try_get("failed")?;
            Ok((bucket * bucket_ms, row.try_get("n")?, failed.unwrap_or(0)))
        })
        .collect::<AppResult<Vec<_>>>()?;
        Ok(HealthAggregates {
            reports,
            passed: passed.unwrap_or(0),
            devices,
            score_sum: score_sum.unwrap_or(0),
            score_buckets,
            failed_checks,
            series,
        })
    }

    async fn overdue(&self, cutoff: UnixMillis, limit: i64) -> AppResult<Vec<OverdueDevice>> {
        sqlx::query(
            "SELECT id, last_report_at, COALESCE(last_report_at, updated_at) AS since FROM ( \
               SELECT d.id, d.updated_at, \
                 (SELECT MAX(r.received_at) FROM health_reports r WHERE r.device_id = d.id) \
                   AS last_report_at \
               FROM devices d WHERE d.state = 'ACTIVE') active \
             WHERE COALESCE(last_report_at, updated_at) < $1 ORDER BY since, id LIMIT $2",
        )
        .bind(cutoff)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            Ok(OverdueDevice {
                device_id: id.parse().map_err(|_| corrupt("devices.id"))?,
                last_report_at: row.try_get("last_report_at")?,
                since: row.try_get("since")?,
            })
        })
        .collect()
    }
}
