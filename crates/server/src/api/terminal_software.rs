//! `/api/v1/terminal-software` (signed terminal versions, push, adoption, outdated devices)
//! and the device side: `/api/v1/device/check-in` and `/api/v1/device/tasks/{id}/result`
//! (signed device requests).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use release_manifest::SignedManifest;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AppJson, AppPath, Authorized, Ctx, SignedDevice};
use super::releases::{ReleaseManagers, ReleaseReaders};
use super::state::AppState;
use crate::domain::to_rfc3339;
use crate::error::{AppError, ErrorBody};
use crate::service::releases::model::{
    TargetGroups, TaskState, TerminalRelease, UpdateTask, UpdateType,
};
use crate::service::releases::terminal::NewTerminalRelease;

/// A new terminal software version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTerminalRelease {
    /// Signed manifest of kind `terminal` (name, version, artifact SHA-256 and size).
    #[schema(value_type = Object)]
    pub signed_manifest: SignedManifest,
    /// `mandatory`, `optional` or `security`.
    pub update_type: UpdateType,
    /// Lowest OS version, dotted numbers (e.g. `13`).
    pub min_os_version: String,
    /// Target device groups; empty lists match every device.
    #[serde(default)]
    pub targets: TargetGroups,
    /// Release notes.
    pub release_notes: String,
}

/// A terminal release on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct TerminalReleaseResponse {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Urgency.
    pub update_type: UpdateType,
    /// Lowest OS version.
    pub min_os_version: String,
    /// Target groups.
    pub targets: TargetGroups,
    /// Release notes.
    pub release_notes: String,
    /// SHA-256 of the artifact, hex.
    pub sha256: String,
    /// Artifact size.
    pub size: u64,
    /// `RELEASED` or `DEPRECATED`.
    pub status: String,
    /// Signed manifest: the device verifies it before installing.
    #[schema(value_type = Object)]
    pub signed_manifest: SignedManifest,
    /// Creator.
    pub created_by: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<TerminalRelease> for TerminalReleaseResponse {
    fn from(release: TerminalRelease) -> Self {
        Self {
            id: release.id,
            name: release.signed.manifest.name.clone(),
            version: release.signed.manifest.version.clone(),
            update_type: release.update_type,
            min_os_version: release.min_os_version,
            targets: release.targets,
            release_notes: release.release_notes,
            sha256: release.signed.manifest.sha256.clone(),
            size: release.signed.manifest.size,
            status: release.status,
            signed_manifest: release.signed,
            created_by: release.created_by,
            created_at: to_rfc3339(release.created_at),
        }
    }
}

/// Creates a terminal software version from its signed manifest.
#[utoipa::path(post, path = "/api/v1/terminal-software", tag = "releases",
    request_body = CreateTerminalRelease,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 201, body = TerminalReleaseResponse),
        (status = 409, body = ErrorBody, description = "`release_version_exists`"),
        (status = 422, body = ErrorBody, description = "`release_signature_invalid`, ...")))]
pub async fn create_terminal_release(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<CreateTerminalRelease>,
) -> Result<(StatusCode, Json<TerminalReleaseResponse>), AppError> {
    let release = state
        .releases
        .create_terminal(
            auth.principal(),
            NewTerminalRelease {
                signed: req.signed_manifest,
                update_type: req.update_type,
                min_os_version: req.min_os_version,
                targets: req.targets,
                release_notes: req.release_notes,
            },
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(release.into())))
}

/// Terminal software versions, newest first.
#[utoipa::path(get, path = "/api/v1/terminal-software", tag = "releases",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = [TerminalReleaseResponse])))]
pub async fn list_terminal_releases(
    _auth: Authorized<ReleaseReaders>,
    State(state): State<AppState>,
) -> Result<Json<Vec<TerminalReleaseResponse>>, AppError> {
    let releases = state.releases.terminal_releases().await?;
    Ok(Json(releases.into_iter().map(Into::into).collect()))
}

/// What a push did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushResponse {
    /// Devices in the target groups that need the update.
    pub targeted: usize,
    /// New tasks (devices that already had one keep it).
    pub created: u64,
}

/// Pushes a version: a pending task for every approved or active device in its target
/// groups that runs an older version and meets the minimum OS. Devices pick the task up at
/// their next check-in.
#[utoipa::path(post, path = "/api/v1/terminal-software/{release_id}/push", tag = "releases",
    params(("release_id" = Uuid, Path, description = "terminal release id")),
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = PushResponse), (status = 404, body = ErrorBody)))]
pub async fn push_terminal_release(
    auth: Authorized<ReleaseManagers>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(release_id): AppPath<Uuid>,
) -> Result<Json<PushResponse>, AppError> {
    let (targeted, created) = state
        .releases
        .push(auth.principal(), release_id, &ctx)
        .await?;
    Ok(Json(PushResponse { targeted, created }))
}

/// A count by key.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionCount {
    /// Version.
    pub version: String,
    /// Devices.
    pub devices: usize,
}

/// Task counts of one release.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseTasks {
    /// Release.
    pub release_id: Uuid,
    /// Its version.
    pub version: String,
    /// Pending.
    pub pending: i64,
    /// Delivered.
    pub delivered: i64,
    /// Installed.
    pub installed: i64,
    /// Failed.
    pub failed: i64,
}

/// Adoption statistics.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdoptionResponse {
    /// Devices (not revoked).
    pub devices: usize,
    /// Newest released version.
    pub latest_version: Option<String>,
    /// Devices on it or newer.
    pub up_to_date: usize,
    /// Devices per terminal version (last check-in, else registration).
    pub by_terminal_version: Vec<VersionCount>,
    /// Devices per kernel version reported at check-in.
    pub by_kernel_version: Vec<VersionCount>,
    /// Push tasks per release.
    pub tasks: Vec<ReleaseTasks>,
}

/// Adoption statistics of terminal software.
#[utoipa::path(get, path = "/api/v1/terminal-software/adoption", tag = "releases",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = AdoptionResponse)))]
pub async fn terminal_adoption(
    _auth: Authorized<ReleaseReaders>,
    State(state): State<AppState>,
) -> Result<Json<AdoptionResponse>, AppError> {
    let adoption = state.releases.adoption().await?;
    let counts = |map: std::collections::BTreeMap<String, usize>| {
        map.into_iter()
            .map(|(version, devices)| VersionCount { version, devices })
            .collect()
    };
    Ok(Json(AdoptionResponse {
        devices: adoption.devices,
        latest_version: adoption.latest_version,
        up_to_date: adoption.up_to_date,
        by_terminal_version: counts(adoption.by_terminal_version),
        by_kernel_version: counts(adoption.by_kernel_version),
        tasks: adoption
            .tasks
            .into_iter()
            .map(|(release, counts)| ReleaseTasks {
                release_id: release.id,
                version: release.signed.manifest.version,
                pending: counts.pending,
                delivered: counts.delivered,
                installed: counts.installed,
                failed: counts.failed,
            })
            .collect(),
    }))
}

/// An outdated device.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutdatedDevice {
    /// Device.
    pub device_id: Uuid,
    /// Merchant.
    pub merchant_id: Uuid,
    /// Model.
    pub model: String,
    /// Terminal version it runs.
    pub terminal_version: String,
    /// Last check-in, if any.
    pub last_check_in: Option<DateTime<Utc>>,
}

/// Devices behind the newest version.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutdatedResponse {
    /// Newest released version.
    pub latest_version: Option<String>,
    /// Devices on an older one.
    pub devices: Vec<OutdatedDevice>,
}

/// Devices running an older terminal version than the newest release.
#[utoipa::path(get, path = "/api/v1/terminal-software/outdated", tag = "releases",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = OutdatedResponse)))]
pub async fn outdated_devices(
    _auth: Authorized<ReleaseReaders>,
    State(state): State<AppState>,
) -> Result<Json<OutdatedResponse>, AppError> {
    let (latest_version, devices) = state.releases.outdated().await?;
    Ok(Json(OutdatedResponse {
        latest_version,
        devices: devices
            .into_iter()
            .map(|device| OutdatedDevice {
                device_id: device.id.0,
                merchant_id: device.merchant_id.0,
                terminal_version: device.current_terminal_version().to_owned(),
                model: device.model,
                last_check_in: device.last_check_in.map(to_rfc3339),
            })
            .collect(),
    }))
}

/// What the device runs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckInRequest {
    /// Terminal software version (semantic version).
    pub terminal_version: String,
    /// Kernel version loaded, if any.
    pub kernel_version: Option<String>,
}

/// A task for the device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTask {
    /// Task id (report the result with it).
    pub task_id: Uuid,
    /// State (`delivered`).
    pub state: TaskState,
    /// The version to install.
    pub release: TerminalReleaseResponse,
}

/// Check-in answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckInResponse {
    /// Server time.
    pub server_time: DateTime<Utc>,
    /// Open tasks, oldest first.
    pub tasks: Vec<DeviceTask>,
}

/// Device check-in (signed device request): reports the terminal and kernel versions it runs
/// and receives its open update tasks (pending tasks become `delivered`).
#[utoipa::path(post, path = "/api/v1/device/check-in", tag = "device",
    request_body = CheckInRequest,
    security(("device_signature" = [])),
    responses((status = 200, body = CheckInResponse), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn device_check_in(
    State(state): State<AppState>,
    signed: SignedDevice,
) -> Result<Json<CheckInResponse>, AppError> {
    let req: CheckInRequest = serde_json::from_slice(&signed.body)
        .map_err(|error| AppError::MalformedBody(error.to_string()))?;
    let tasks = state
        .releases
        .check_in(
            &signed.device,
            &req.terminal_version,
            req.kernel_version.as_deref(),
        )
        .await?;
    Ok(Json(CheckInResponse {
        server_time: Utc::now(),
        tasks: tasks
            .into_iter()
            .map(|(task, release)| DeviceTask {
                task_id: task.id,
                state: task.state,
                release: release.into(),
            })
            .collect(),
    }))
}

/// The result of a task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskResultRequest {
    /// `installed` or `failed`.
    pub state: TaskState,
    /// Optional note (at most 500 characters), e.g. the failure reason.
    pub detail: Option<String>,
}

/// A task on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskResponse {
    /// Id.
    pub task_id: Uuid,
    /// Release.
    pub release_id: Uuid,
    /// State.
    pub state: TaskState,
    /// Note.
    pub detail: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<UpdateTask> for TaskResponse {
    fn from(task: UpdateTask) -> Self {
        Self {
            task_id: task.id,
            release_id: task.release_id,
            state: task.state,
            detail: task.detail,
            updated_at: to_rfc3339(task.updated_at),
        }
    }
}

/// The device reports the result of a delivered task (signed device request).
#[utoipa::path(post, path = "/api/v1/device/tasks/{task_id}/result", tag = "device",
    params(("task_id" = Uuid, Path, description = "task id")),
    request_body = TaskResultRequest,
    security(("device_signature" = [])),
    responses((status = 200, body = TaskResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`task_not_delivered`, `task_already_finished`")))]
pub async fn report_task_result(
    AppPath(task_id): AppPath<Uuid>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    signed: SignedDevice,
) -> Result<Json<TaskResponse>, AppError> {
    let req: TaskResultRequest = serde_json::from_slice(&signed.body)
        .map_err(|error| AppError::MalformedBody(error.to_string()))?;
    let task = state
        .releases
        .report_task(&signed.device, task_id, req.state, req.detail, &ctx)
        .await?;
    Ok(Json(task.into()))
}
