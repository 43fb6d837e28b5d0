//! Terminal software: signed versions, push tasks (`pending → delivered → installed | failed`),
//! device check-ins, adoption statistics, outdated devices, and the terminal × kernel ABI
//! compatibility table.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use release_manifest::semver::Version;
use release_manifest::{ArtifactKind, SignedManifest, parse_version};
use uuid::Uuid;

use super::model::{
    CompatEntry, FleetDevice, TargetGroups, TaskState, TerminalRelease, UpdateTask, UpdateType,
};
use super::{ReleaseService, manifest_error};
use crate::domain::{Device, DeviceState, Principal, now_millis};
use crate::error::{AppError, AppResult, FieldError};
use crate::repository::releases::TaskCounts;
use crate::service::RequestContext;

/// A new terminal release.
#[derive(Debug)]
pub struct NewTerminalRelease {
    /// Signed manifest (kind `terminal`).
    pub signed: SignedManifest,
    /// Urgency.
    pub update_type: UpdateType,
    /// Lowest OS version, dotted numbers.
    pub min_os_version: String,
    /// Target groups.
    pub targets: TargetGroups,
    /// Release notes.
    pub release_notes: String,
}

/// Adoption figures.
#[derive(Debug, Clone)]
pub struct Adoption {
    /// Devices (not revoked).
    pub devices: usize,
    /// Devices per terminal version.
    pub by_terminal_version: BTreeMap<String, usize>,
    /// Devices per reported kernel version (`unknown` before their first check-in).
    pub by_kernel_version: BTreeMap<String, usize>,
    /// Newest released terminal version.
    pub latest_version: Option<String>,
    /// Devices on it (or newer).
    pub up_to_date: usize,
    /// Per release: its version and task counts.
    pub tasks: Vec<(TerminalRelease, TaskCounts)>,
}

/// Compares dotted numeric versions (`14`, `14.1`, `13.0.2`); missing parts count as 0.
/// `None` if either is not dotted numbers.
fn compare_os(left: &str, right: &str) -> Option<Ordering> {
    let parse = |text: &str| -> Option<Vec<u64>> {
        text.split('.').map(|part| part.parse().ok()).collect()
    };
    let (mut left, mut right) = (parse(left)?, parse(right)?);
    let len = left.len().max(right.len());
    left.resize(len, 0);
    right.resize(len, 0);
    Some(left.cmp(&right))
}

/// The device's terminal version, if it parses.
fn current_version(device: &FleetDevice) -> Option<Version> {
    parse_version(device.current_terminal_version()).ok()
}

fn validate_new(new: &NewTerminalRelease) -> AppResult<()> {
    let mut problems = Vec::new();
    let os = &new.min_os_version;
    if os.is_empty() || os.len() > 32 || compare_os(os, "0").is_none() {
        problems.push(FieldError::new(
            "min_os_version",
            "dotted numbers, e.g. \"13\" or \"14.1\"",
        ));
    }
    if new.release_notes.trim().is_empty() || new.release_notes.chars().count() > 10_000 {
        problems.push(FieldError::new("release_notes", "1 to 10000 characters"));
    }
    let targets = &new.targets;
    if targets.models.len() > 200
        || targets
            .models
            .iter()
            .any(|model| model.is_empty() || model.chars().count() > 100)
    {
        problems.push(FieldError::new(
            "targets.models",
            "at most 200 models of 1 to 100 characters",
        ));
    }
    if targets.merchant_ids.len() > 1000 {
        problems.push(FieldError::new(
            "targets.merchant_ids",
            "at most 1000 merchants",
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(problems))
    }
}

impl ReleaseService {
    /// Verifies and stores a terminal release.
    ///
    /// # Errors
    /// `validation_failed`, manifest codes, `release_kind_mismatch`, `release_version_exists`.
    pub async fn create_terminal(
        &self,
        principal: &Principal,
        new: NewTerminalRelease,
        ctx: &RequestContext,
    ) -> AppResult<TerminalRelease> {
        let keys = self.trusted_keys().await?;
        validate_new(&new)?;
        let manifest = &new.signed.manifest;
        let checked = manifest
            .validate()
            .map_err(|e| manifest_error(&e))
            .and_then(|()| {
                if manifest.kind == ArtifactKind::Terminal {
                    Ok(())
                } else {
                    Err(AppError::Unprocessable {
                        code: "release_kind_mismatch",
                        message: "this endpoint takes terminal manifests (kind \"terminal\")",
                    })
                }
            })
            .and_then(|()| new.signed.verify(&keys).map_err(|e| manifest_error(&e)));
        if let Err(error) = checked {
            self.record(
                principal.actor(),
                "terminal_release.refused",
                "terminal_release".to_owned(),
                Some(error.code().to_owned()),
                ctx,
            )
            .await?;
            return Err(error);
        }
        let release = TerminalRelease {
            id: Uuid::now_v7(),
            signed: new.signed,
            update_type: new.update_type,
            min_os_version: new.min_os_version,
            targets: new.targets,
            release_notes: new.release_notes,
            status: "RELEASED".to_owned(),
            created_by: principal.actor(),
            created_at: now_millis(),
        };
        self.repo.insert_terminal(&release).await?;
        let manifest = &release.signed.manifest;
        self.record(
            principal.actor(),
            "terminal_release.create",
            format!("terminal_release:{}", release.id),
            Some(format!(
                "{} {} ({}) sha256 {} signed by {}",
                manifest.name,
                manifest.version,
                release.update_type,
                manifest.sha256,
                release.signed.key_id
            )),
            ctx,
        )
        .await?;
        Ok(release)
    }

    /// Terminal releases, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn terminal_releases(&self) -> AppResult<Vec<TerminalRelease>> {
        self.repo.list_terminal().await
    }

    /// Creates a pending task for every approved or active device in the release's target
    /// groups that runs an older version and meets its minimum OS. Returns
    /// `(devices targeted, tasks created)`; devices that already have a task keep it.
    ///
    /// # Errors
    /// `not_found`, storage errors.
    pub async fn push(
        &self,
        principal: &Principal,
        id: Uuid,
        ctx: &RequestContext,
    ) -> AppResult<(usize, u64)> {
        let release = self
            .repo
            .find_terminal(id)
            .await?
            .ok_or(AppError::NotFound("terminal release"))?;
        let version = release
            .signed
            .manifest
            .semver()
            .map_err(|e| manifest_error(&e))?;
        let targeted: Vec<_> = self
            .repo
            .fleet()
            .await?
            .into_iter()
            .filter(|device| matches!(device.state, DeviceState::Approved | DeviceState::Active))
            .filter(|device| release.targets.matches(device))
            // A version that does not parse is treated as outdated.
            .filter(|device| current_version(device).is_none_or(|current| current < version))
            .filter(|device| {
                compare_os(&device.os_version, &release.min_os_version)
                    .is_some_and(|order| order != Ordering::Less)
            })
            .map(|device| device.id)
            .collect();
        let created = self
            .repo
            .create_tasks(release.id, &targeted, now_millis())
            .await?;
        self.record(
            principal.actor(),
            "terminal_release.push",
            format!("terminal_release:{}", release.id),
            Some(format!(
                "{} devices targeted, {created} tasks created",
                targeted.len()
            )),
            ctx,
        )
        .await?;
        Ok((targeted.len(), created))
    }

    /// Records what the device runs and hands it its open tasks (pending ones become
    /// delivered).
    ///
    /// # Errors
    /// `validation_failed` for versions that are not semantic versions.
    pub async fn check_in(
        &self,
        device: &Device,
        terminal_version: &str,
        kernel_version: Option<&str>,
    ) -> AppResult<Vec<(UpdateTask, TerminalRelease)>> {
        if parse_version(terminal_version).is_err() {
            return Err(AppError::field(
                "terminal_version",
                "a semantic version, e.g. 1.4.2",
            ));
        }
        if kernel_version.is_some_and(|version| parse_version(version).is_err()) {
            return Err(AppError::field(
                "kernel_version",
                "a semantic version, e.g. 1.4.2",
            ));
        }
        self.repo
            .check_in(device.id, terminal_version, kernel_version, now_millis())
            .await
    }

    /// The device reports the result of a delivered task.
    ///
    /// # Errors
    /// `validation_failed`, `not_found` (unknown or another device's task),
    /// `task_not_delivered`, `task_already_finished`.
    pub async fn report_task(
        &self,
        device: &Device,
        task_id: Uuid,
        state: TaskState,
        detail: Option<String>,
        ctx: &RequestContext,
    ) -> AppResult<UpdateTask> {
        if !matches!(state, TaskState::Installed | TaskState::Failed) {
            return Err(AppError::field("state", "installed or failed"));
        }
        if detail
            .as_ref()
            .is_some_and(|detail| detail.chars().count() > 500)
        {
            return Err(AppError::field("detail", "at most 500 characters"));
        }
        let task = self
            .repo
            .find_task(task_id)
            .await?
            .filter(|task| task.device_id == device.id)
            .ok_or(AppError::NotFound("task"))?;
        match task.state {
            TaskState::Pending => {
                return Err(AppError::Conflict {
                    code: "task_not_delivered",
                    message: "the task was not delivered yet: check in first",
                });
            }
            TaskState::Installed | TaskState::Failed => {
                return Err(AppError::Conflict {
                    code: "task_already_finished",
                    message: "the task already has a result",
                });
            }
            TaskState::Delivered => {}
        }
        let finished = self
            .repo
            .finish_task(task_id, device.id, state, detail.as_deref(), now_millis())
            .await?;
        if !finished {
            return Err(AppError::Conflict {
                code: "task_already_finished",
                message: "the task already has a result",
            });
        }
        self.record(
            format!("device:{}", device.id),
            "terminal_task.result",
            format!("terminal_task:{task_id}"),
            Some(format!("release {}: {state}", task.release_id)),
            ctx,
        )
        .await?;
        self.repo
            .find_task(task_id)
            .await?
            .ok_or(AppError::NotFound("task"))
    }

    fn latest(releases: &[TerminalRelease]) -> Option<(Version, &TerminalRelease)> {
        releases
            .iter()
            .filter(|release| release.status == "RELEASED")
            .filter_map(|release| {
                release
                    .signed
                    .manifest
                    .semver()
                    .ok()
                    .map(|version| (version, release))
            })
            .max_by(|a, b| a.0.cmp(&b.0))
    }

    /// Adoption statistics.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn adoption(&self) -> AppResult<Adoption> {
        let fleet = self.repo.fleet().await?;
        let releases = self.repo.list_terminal().await?;
        let latest = Self::latest(&releases).map(|(version, _)| version);
        let mut by_terminal_version = BTreeMap::new();
        let mut by_kernel_version = BTreeMap::new();
        let mut up_to_date = 0;
        for device in &fleet {
            *by_terminal_version
                .entry(device.current_terminal_version().to_owned())
                .or_insert(0) += 1;
            *by_kernel_version
                .entry(
                    device
                        .kernel_version
                        .clone()
                        .unwrap_or_else(|| "unknown".to_owned()),
                )
                .or_insert(0) += 1;
            if latest.as_ref().is_some_and(|latest| {
                current_version(device).is_some_and(|current| current >= *latest)
            }) {
                up_to_date += 1;
            }
        }
        let counts: BTreeMap<Uuid, TaskCounts> =
            self.repo.task_counts().await?.into_iter().collect();
        let tasks = releases
            .into_iter()
            .map(|release| {
                let counts = counts.get(&release.id).cloned().unwrap_or_default();
                (release, counts)
            })
            .collect();
        Ok(Adoption {
            devices: fleet.len(),
            by_terminal_version,
            by_kernel_version,
            latest_version: latest.map(|version| version.to_string()),
            up_to_date,
            tasks,
        })
    }

    /// Devices (not revoked) running an older terminal version than the newest release,
    /// with that release's version.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn outdated(&self) -> AppResult<(Option<String>, Vec<FleetDevice>)> {
        let releases = self.repo.list_terminal().await?;
        let Some((latest, _)) = Self::latest(&releases) else {
            return Ok((None, Vec::new()));
        };
        let devices = self
            .repo
            .fleet()
            .await?
            .into_iter()
            .filter(|device| current_version(device).is_none_or(|current| current < latest))
            .collect();
        Ok((Some(latest.to_string()), devices))
    }

    /// The compatibility table.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn compatibility(&self) -> AppResult<Vec<CompatEntry>> {
        self.repo.compat().await
    }

    /// Replaces the compatibility table.
    ///
    /// # Errors
    /// `validation_failed`.
    pub async fn replace_compatibility(
        &self,
        principal: &Principal,
        mut entries: Vec<CompatEntry>,
        ctx: &RequestContext,
    ) -> AppResult<Vec<CompatEntry>> {
        if entries.len() > 10_000 {
            return Err(AppError::field("entries", "at most 10000 entries"));
        }
        for (index, entry) in entries.iter().enumerate() {
            if parse_version(&entry.terminal_version).is_err() {
                return Err(AppError::field(
                    &format!("entries[{index}].terminal_version"),
                    "a semantic version, e.g. 1.4.2",
                ));
            }
            if entry.abi_version == 0 {
                return Err(AppError::field(
                    &format!("entries[{index}].abi_version"),
                    "a positive ABI version",
                ));
            }
        }
        entries.sort();
        entries.dedup();
        self.repo.replace_compat(&entries, now_millis()).await?;
        self.record(
            principal.actor(),
            "release_compatibility.replace",
            "terminal_kernel_compat".to_owned(),
            Some(format!("{} entries", entries.len())),
            ctx,
        )
        .await?;
        Ok(entries)
    }
}
