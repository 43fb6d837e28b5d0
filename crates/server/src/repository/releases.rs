//! Kernel and terminal-software releases, their artifacts (bytes in the database, keyed by
//! SHA-256), push tasks, what devices report at check-in, and the compatibility table.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{DeviceFacts, DeviceId, UnixMillis};
use crate::error::{AppError, AppResult};
use crate::infra::db::is_unique_violation;
use crate::service::releases::model::{
    Channel, CompatEntry, FleetDevice, KernelRelease, KernelStatus, TaskState, TerminalRelease,
    UpdateTask,
};

/// Task counts of one terminal release.
#[derive(Debug, Clone, Default)]
pub struct TaskCounts {
    /// Pending.
    pub pending: i64,
    /// Delivered.
    pub delivered: i64,
    /// Installed.
    pub installed: i64,
    /// Failed.
    pub failed: i64,
}

/// Storage of releases.
#[async_trait]
pub trait ReleaseRepository: Send + Sync + std::fmt::Debug {
    /// Stores the artifact (once per digest) and the release, atomically;
    /// `release_version_exists` when the name and version are taken.
    async fn insert_kernel(&self, release: &KernelRelease, artifact: &[u8]) -> AppResult<()>;
    /// Writes status, conformance, channel, rollout and publication time if the release is
    /// still in `expected`; false otherwise.
    async fn update_kernel(
        &self,
        release: &KernelRelease,
        expected: KernelStatus,
    ) -> AppResult<bool>;
    /// By id.
    async fn find_kernel(&self, id: Uuid) -> AppResult<Option<KernelRelease>>;
    /// Newest first.
    async fn list_kernels(&self, limit: i64) -> AppResult<Vec<KernelRelease>>;
    /// The channel's releases in `status`, most recently published first.
    async fn channel_kernels(
        &self,
        channel: Channel,
        status: KernelStatus,
    ) -> AppResult<Vec<KernelRelease>>;
    /// Artifact bytes by digest.
    async fn artifact(&self, sha256: &str) -> AppResult<Option<Vec<u8>>>;

    /// Stores a terminal release; `release_version_exists` when taken.
    async fn insert_terminal(&self, release: &TerminalRelease) -> AppResult<()>;
    /// By id.
    async fn find_terminal(&self, id: Uuid) -> AppResult<Option<TerminalRelease>>;
    /// Newest first.
    async fn list_terminal(&self) -> AppResult<Vec<TerminalRelease>>;
    /// Creates pending tasks (one per device and release; existing ones are kept); returns
    /// how many were created.
    async fn create_tasks(
        &self,
        release_id: Uuid,
        devices: &[DeviceId],
        at: UnixMillis,
    ) -> AppResult<u64>;
    /// Records a check-in and marks the device's pending tasks delivered; returns its open
    /// (delivered, not finished) tasks with their releases.
    async fn check_in(
        &self,
        device_id: DeviceId,
        terminal_version: &str,
        kernel_version: Option<&str>,
        at: UnixMillis,
    ) -> AppResult<Vec<(UpdateTask, TerminalRelease)>>;
    /// Finishes a delivered task of `device_id`; false when it is not delivered (or not the
    /// device's).
    async fn finish_task(
        &self,
        task_id: Uuid,
        device_id: DeviceId,
        state: TaskState,
        detail: Option<&str>,
        at: UnixMillis,
    ) -> AppResult<bool>;
    /// A task by id.
    async fn find_task(&self, task_id: Uuid) -> AppResult<Option<UpdateTask>>;
    /// Task counts per terminal release.
    async fn task_counts(&self) -> AppResult<Vec<(Uuid, TaskCounts)>>;
    /// Every device that is not revoked, with what it last reported.
    async fn fleet(&self) -> AppResult<Vec<FleetDevice>>;
    /// One device of the fleet.
    async fn fleet_device(&self, id: DeviceId) -> AppResult<Option<FleetDevice>>;

    /// The compatibility table, sorted.
    async fn compat(&self) -> AppResult<Vec<CompatEntry>>;
    /// Replaces the compatibility table.
    async fn replace_compat(&self, entries: &[CompatEntry], at: UnixMillis) -> AppResult<()>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlReleaseRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlReleaseRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> AppResult<String> {
    serde_json::to_string(value).map_err(|error| AppError::Other(error.into()))
}

fn uuid(row: &AnyRow, column: &'static str) -> AppResult<Uuid> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|_| corrupt(column))
}

fn to_kernel(row: &AnyRow) -> AppResult<KernelRelease> {
    let signed: String = row.try_get("signed_manifest")?;
    let status: String = row.try_get("status")?;
    let report: Option<String> = row.try_get("conformance_report")?;
    let channel: Option<String> = row.try_get("channel")?;
    let rollout: i64 = row.try_get("rollout_percent")?;
    Ok(KernelRelease {
        id: uuid(row, "id")?,
        signed: serde_json::from_str(&signed)
            .map_err(|_| corrupt("kernel_releases.signed_manifest"))?,
        status: status
            .parse()
            .map_err(|()| corrupt("kernel_releases.status"))?,
        conformance: report
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|_| corrupt("kernel_releases.conformance_report"))?,
        channel: channel
            .map(|text| text.parse())
            .transpose()
            .map_err(|()| corrupt("kernel_releases.channel"))?,
        rollout_percent: u8::try_from(rollout)
            .map_err(|_| corrupt("kernel_releases.rollout_percent"))?,
        published_at: row.try_get("published_at")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn to_terminal(row: &AnyRow) -> AppResult<TerminalRelease> {
    let signed: String = row.try_get("signed_manifest")?;
    let update_type: String = row.try_get("update_type")?;
    let targets: String = row.try_get("targets")?;
    Ok(TerminalRelease {
        id: uuid(row, "id")?,
        signed: serde_json::from_str(&signed)
            .map_err(|_| corrupt("terminal_releases.signed_manifest"))?,
        update_type: update_type
            .parse()
            .map_err(|()| corrupt("terminal_releases.update_type"))?,
        min_os_version: row.try_get("min_os_version")?,
        targets: serde_json::from_str(&targets)
            .map_err(|_| corrupt("terminal_releases.targets"))?,
        release_notes: row.try_get("release_notes")?,
        status: row.try_get("status")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
    })
}

fn to_task(row: &AnyRow) -> AppResult<UpdateTask> {
    let state: String = row.try_get("state")?;
    Ok(UpdateTask {
        id: uuid(row, "id")?,
        release_id: uuid(row, "release_id")?,
        device_id: DeviceId(uuid(row, "device_id")?),
        state: state
            .parse()
            .map_err(|()| corrupt("terminal_update_tasks.state"))?,
        detail: row.try_get("detail")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn to_fleet(row: &AnyRow) -> AppResult<FleetDevice> {
    let mode: String = row.try_get("mode")?;
    let state: String = row.try_get("state")?;
    let facts: String = row.try_get("facts")?;
    let facts: DeviceFacts = serde_json::from_str(&facts).map_err(|_| corrupt("devices.facts"))?;
    Ok(FleetDevice {
        id: DeviceId(uuid(row, "id")?),
        merchant_id: crate::domain::MerchantId(uuid(row, "merchant_id")?),
        mode: mode.parse().map_err(|()| corrupt("devices.mode"))?,
        model: row.try_get("model")?,
        state: state.parse().map_err(|()| corrupt("devices.state"))?,
        os_version: facts.os_version,
        registered_app_version: facts.app_version,
        terminal_version: row.try_get("terminal_version")?,
        kernel_version: row.try_get("kernel_version")?,
        last_check_in: row.try_get("last_check_in")?,
    })
}

fn duplicate_version() -> AppError {
    AppError::Conflict {
        code: "release_version_exists",
        message: "a release with this name and version already exists",
    }
}

#[async_trait]
impl ReleaseRepository for SqlReleaseRepository {
    async fn insert_kernel(&self, release: &KernelRelease, artifact: &[u8]) -> AppResult<()> {
        let manifest = &release.signed.manifest;
        let size = i64::try_from(artifact.len()).map_err(|_| corrupt("artifact size"))?;
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO release_artifacts (sha256, content, size, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&manifest.sha256)
        .bind(artifact.to_vec())
        .bind(size)
        .bind(release.created_at)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO kernel_releases (id, name, version, abi_version, signed_manifest, sha256, \
             size, status, conformance_report, channel, rollout_percent, published_at, created_by, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, 0, NULL, $9, $10, $10)",
        )
        .bind(release.id.to_string())
        .bind(&manifest.name)
        .bind(&manifest.version)
        .bind(i64::from(manifest.abi_version.unwrap_or_default()))
        .bind(json(&release.signed)?)
        .bind(&manifest.sha256)
        .bind(size)
        .bind(release.status.as_str())
        .bind(&release.created_by)
        .bind(release.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Err(duplicate_version()),
            Err(error) => return Err(error.into()),
        }
        tx.commit().await?;
        Ok(())
    }

    async fn update_kernel(
        &self,
        release: &KernelRelease,
        expected: KernelStatus,
    ) -> AppResult<bool> {
        let report = release.conformance.as_ref().map(json).transpose()?;
        let n = sqlx::query(
            "UPDATE kernel_releases SET status = $1, conformance_report = $2, channel = $3, \
             rollout_percent = $4, published_at = $5, updated_at = $6 WHERE id = $7 AND status = $8",
        )
        .bind(release.status.as_str())
        .bind(report)
        .bind(release.channel.map(|channel| channel.as_str().to_owned()))
        .bind(i64::from(release.rollout_percent))
        .bind(release.published_at)
        .bind(release.updated_at)
        .bind(release.id.to_string())
        .bind(expected.as_str())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn find_kernel(&self, id: Uuid) -> AppResult<Option<KernelRelease>> {
        const SQL: &str = "SELECT id, signed_manifest, status, conformance_report, channel, \
             rollout_percent, published_at, created_by, created_at, updated_at FROM kernel_releases \
             WHERE id = $1";
        sqlx::query(SQL)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(to_kernel)
            .transpose()
    }

    async fn list_kernels(&self, limit: i64) -> AppResult<Vec<KernelRelease>> {
        const SQL: &str = "SELECT id, signed_manifest, status, conformance_report, channel, \
             rollout_percent, published_at, created_by, created_at, updated_at FROM kernel_releases \
             ORDER BY created_at DESC, id DESC LIMIT $1";
        sqlx::query(SQL)
            .bind(limit)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(to_kernel)
            .collect()
    }

    async fn channel_kernels(
        &self,
        channel: Channel,
        status: KernelStatus,
    ) -> AppResult<Vec<KernelRelease>> {
        const SQL: &str = "SELECT id, signed_manifest, status, conformance_report, channel, \
             rollout_percent, published_at, created_by, created_at, updated_at FROM kernel_releases \
             WHERE channel = $1 AND status = $2 ORDER BY published_at DESC, id DESC";
        sqlx::query(SQL)
            .bind(channel.as_str())
            .bind(status.as_str())
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(to_kernel)
            .collect()
    }

    async fn artifact(&self, sha256: &str) -> AppResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT content FROM release_artifacts WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn insert_terminal(&self, release: &TerminalRelease) -> AppResult<()> {
        let manifest = &release.signed.manifest;
        let inserted = sqlx::query(
            "INSERT INTO terminal_releases (id, name, version, signed_manifest, sha256, size, \
             update_type, min_os_version, targets, release_notes, status, created_by, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(release.id.to_string())
        .bind(&manifest.name)
        .bind(&manifest.version)
        .bind(json(&release.signed)?)
        .bind(&manifest.sha256)
        .bind(i64::try_from(manifest.size).map_err(|_| corrupt("size"))?)
        .bind(release.update_type.as_str())
        .bind(&release.min_os_version)
        .bind(json(&release.targets)?)
        .bind(&release.release_notes)
        .bind(&release.status)
        .bind(&release.created_by)
        .bind(release.created_at)
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => Err(duplicate_version()),
            Err(error) => Err(error.into()),
        }
    }

    async fn find_terminal(&self, id: Uuid) -> AppResult<Option<TerminalRelease>> {
        const SQL: &str = "SELECT id, signed_manifest, update_type, min_os_version, targets, \
             release_notes, status, created_by, created_at FROM terminal_releases WHERE id = $1";
        sqlx::query(SQL)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(to_terminal)
            .transpose()
    }

    async fn list_terminal(&self) -> AppResult<Vec<TerminalRelease>> {
        const SQL: &str = "SELECT id, signed_manifest, update_type, min_os_version, targets, \
             release_notes, status, created_by, created_at FROM terminal_releases \
             ORDER BY created_at DESC, id DESC";
        sqlx::query(SQL)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(to_terminal)
            .collect()
    }

    async fn create_tasks(
        &self,
        release_id: Uuid,
        devices: &[DeviceId],
        at: UnixMillis,
    ) -> AppResult<u64> {
        let mut tx = self.writer.begin().await?;
        let mut created = 0;
        for device in devices {
            created += sqlx::query(
                "INSERT INTO terminal_update_tasks (id, release_id, device_id, state, detail, \
                 delivered_at, finished_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'pending', NULL, NULL, NULL, $4, $4) \
                 ON CONFLICT (release_id, device_id) DO NOTHING",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(release_id.to_string())
            .bind(device.to_string())
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn check_in(
        &self,
        device_id: DeviceId,
        terminal_version: &str,
        kernel_version: Option<&str>,
        at: UnixMillis,
    ) -> AppResult<Vec<(UpdateTask, TerminalRelease)>> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO device_software (device_id, terminal_version, kernel_version, \
             last_check_in, created_at, updated_at) VALUES ($1, $2, $3, $4, $4, $4) \
             ON CONFLICT (device_id) DO UPDATE SET terminal_version = excluded.terminal_version, \
             kernel_version = excluded.kernel_version, last_check_in = excluded.last_check_in, \
             updated_at = excluded.updated_at",
        )
        .bind(device_id.to_string())
        .bind(terminal_version)
        .bind(kernel_version)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE terminal_update_tasks SET state = 'delivered', delivered_at = $1, \
             updated_at = $1 WHERE device_id = $2 AND state = 'pending'",
        )
        .bind(at)
        .bind(device_id.to_string())
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query(
            "SELECT id, release_id, device_id, state, detail, created_at, updated_at \
             FROM terminal_update_tasks WHERE device_id = $1 AND state = 'delivered' \
             ORDER BY created_at, id",
        )
        .bind(device_id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut tasks = Vec::with_capacity(rows.len());
        for row in &rows {
            let task = to_task(row)?;
            let release = self
                .find_terminal(task.release_id)
                .await?
                .ok_or_else(|| corrupt("terminal_update_tasks.release_id"))?;
            tasks.push((task, release));
        }
        Ok(tasks)
    }

    async fn finish_task(
        &self,
        task_id: Uuid,
        device_id: DeviceId,
        state: TaskState,
        detail: Option<&str>,
        at: UnixMillis,
    ) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE terminal_update_tasks SET state = $1, detail = $2, finished_at = $3, \
             updated_at = $3 WHERE id = $4 AND device_id = $5 AND state = 'delivered'",
        )
        .bind(state.as_str())
        .bind(detail)
        .bind(at)
        .bind(task_id.to_string())
        .bind(device_id.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn find_task(&self, task_id: Uuid) -> AppResult<Option<UpdateTask>> {
        sqlx::query(
            "SELECT id, release_id, device_id, state, detail, created_at, updated_at \
             FROM terminal_update_tasks WHERE id = $1",
        )
        .bind(task_id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_task)
        .transpose()
    }

    async fn task_counts(&self) -> AppResult<Vec<(Uuid, TaskCounts)>> {
        let rows = sqlx::query(
            "SELECT release_id, state, COUNT(*) AS n FROM terminal_update_tasks \
             GROUP BY release_id, state ORDER BY release_id",
        )
        .fetch_all(&self.reader)
        .await?;
        let mut out: Vec<(Uuid, TaskCounts)> = Vec::new();
        for row in &rows {
            let release = uuid(row, "release_id")?;
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            if out.last().is_none_or(|(id, _)| *id != release) {
                out.push((release, TaskCounts::default()));
            }
            let counts = &mut out.last_mut().expect("pushed above").1;
            match state
                .parse()
                .map_err(|()| corrupt("terminal_update_tasks.state"))?
            {
                TaskState::Pending => counts.pending = n,
                TaskState::Delivered => counts.delivered = n,
                TaskState::Installed => counts.installed = n,
                TaskState::Failed => counts.failed = n,
            }
        }
        Ok(out)
    }

    async fn fleet(&self) -> AppResult<Vec<FleetDevice>> {
        const SQL: &str = "SELECT d.id, d.merchant_id, d.mode, d.model, d.state, d.facts, \
             s.terminal_version, s.kernel_version, s.last_check_in \
             FROM devices d LEFT JOIN device_software s ON s.device_id = d.id \
             WHERE d.state <> 'REVOKED' ORDER BY d.created_at, d.id";
        sqlx::query(SQL)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(to_fleet)
            .collect()
    }

    async fn fleet_device(&self, id: DeviceId) -> AppResult<Option<FleetDevice>> {
        const SQL: &str = "SELECT d.id, d.merchant_id, d.mode, d.model, d.state, d.facts, \
             s.terminal_version, s.kernel_version, s.last_check_in \
             FROM devices d LEFT JOIN device_software s ON s.device_id = d.id \
             WHERE d.state <> 'REVOKED' AND d.id = $1";
        sqlx::query(SQL)
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(to_fleet)
            .transpose()
    }

    async fn compat(&self) -> AppResult<Vec<CompatEntry>> {
        let rows = sqlx::query(
            "SELECT terminal_version, abi_version FROM terminal_kernel_compat \
             ORDER BY terminal_version, abi_version",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let abi: i64 = row.try_get("abi_version")?;
                Ok(CompatEntry {
                    terminal_version: row.try_get("terminal_version")?,
                    abi_version: u32::try_from(abi)
                        .map_err(|_| corrupt("terminal_kernel_compat.abi_version"))?,
                })
            })
            .collect()
    }

    async fn replace_compat(&self, entries: &[CompatEntry], at: UnixMillis) -> AppResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("DELETE FROM terminal_kernel_compat")
            .execute(&mut *tx)
            .await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO terminal_kernel_compat (terminal_version, abi_version, created_at, \
                 updated_at) VALUES ($1, $2, $3, $3)",
            )
            .bind(&entry.terminal_version)
            .bind(i64::from(entry.abi_version))
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
