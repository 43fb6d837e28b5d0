//! Health: the device-signed nonce and report endpoints, the security policy (read, list
//! versions, new version), per-device report history, fleet statistics and the heartbeat
//! sweep on demand.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    AppJson, AppPath, AppQuery, Authorized, Ctx, DeviceGuardians, DeviceReaders, Policy,
    SignedDevice,
};
use super::state::AppState;
use crate::domain::{DeviceId, Role, Scope, now_millis, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::repository::health::HealthReportRecord;
use crate::service::RequestContext;
use crate::service::health::PolicyVersion;
use crate::service::health::policy::SecurityPolicy;
use crate::service::health::scoring::HealthReportBody;
use crate::service::ports::{ThreatKind, ThreatReporter, ThreatSignal};

/// Reading the security policy.
#[derive(Debug)]
pub struct PolicyReaders;

impl Policy for PolicyReaders {
    const ROLES: &'static [Role] = &[Role::Admin, Role::SecurityOfficer, Role::Auditor];
    const SCOPE: Option<Scope> = None;
}

/// A health nonce.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthNonceResponse {
    /// Opaque, single use, bound to the calling device; put it in the next report.
    pub nonce: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A health report as the device sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitHealthReportRequest {
    /// Nonce from `POST /api/v1/device/health/nonce`.
    pub nonce: String,
    /// What the device measured.
    pub report: HealthReportBody,
}

/// A scored report.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReportResponse {
    /// Report id.
    pub id: Uuid,
    /// Device.
    pub device_id: Uuid,
    /// 0-100.
    pub score: u8,
    /// Passed the policy.
    pub passed: bool,
    /// Failed checks.
    pub failed_checks: Vec<String>,
    /// Policy version that scored it.
    pub policy_version: i64,
    /// Device clock minus server clock, ms.
    pub clock_skew_ms: i64,
    /// Largest transaction amount allowed at this score (minor units), if capped.
    pub amount_ceiling_minor: Option<u64>,
    /// Received.
    pub received_at: DateTime<Utc>,
}

impl From<HealthReportRecord> for HealthReportResponse {
    fn from(record: HealthReportRecord) -> Self {
        Self {
            id: record.id,
            device_id: record.device_id.0,
            score: record.score,
            passed: record.passed,
            failed_checks: record.failed_checks,
            policy_version: record.policy_version,
            clock_skew_ms: record.clock_skew_ms,
            amount_ceiling_minor: record.amount_ceiling_minor,
            received_at: to_rfc3339(record.received_at),
        }
    }
}

/// The answer to a submitted report.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitHealthReportResponse {
    /// The stored report.
    #[serde(flatten)]
    pub report: HealthReportResponse,
    /// Failed checks that are critical.
    pub critical_failures: Vec<String>,
    /// Threat events the failed checks raised.
    pub threats_raised: usize,
}

/// Issues a health nonce to the calling device (signed request; valid for the policy's
/// `nonce_ttl_secs`, single use).
#[utoipa::path(post, path = "/api/v1/device/health/nonce", tag = "device",
    security(("device_signature" = [])),
    responses((status = 200, body = HealthNonceResponse), (status = 401, body = ErrorBody)))]
pub async fn create_health_nonce(
    State(state): State<AppState>,
    signed: SignedDevice,
) -> Result<Json<HealthNonceResponse>, AppError> {
    let (nonce, expires_at) = state.health.nonce(&signed.device).await?;
    Ok(Json(HealthNonceResponse {
        nonce,
        expires_at: to_rfc3339(expires_at),
    }))
}

/// Submits a signed health report carrying a fresh server nonce. The report is scored
/// under the current security policy and stored; failed checks raise threat events as the
/// policy says. A report with a missing, forged, expired, reused or other device's nonce,
/// or a replayed signed request, is refused and recorded as an `invalid_health_report`
/// threat against the (authenticated) device.
#[utoipa::path(post, path = "/api/v1/device/health", tag = "device",
    request_body = SubmitHealthReportRequest,
    security(("device_signature" = [])),
    responses((status = 201, body = SubmitHealthReportResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`invalid_health_nonce`, `health_nonce_expired`, `health_nonce_other_device`, `health_nonce_reused`, `validation_failed`")))]
pub async fn submit_health_report(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    signed: Result<SignedDevice, AppError>,
) -> Result<(StatusCode, Json<SubmitHealthReportResponse>), AppError> {
    let signed = match signed {
        Ok(signed) => signed,
        Err(error) => {
            record_replay(&state, &headers, &error, &ctx).await?;
            return Err(error);
        }
    };
    let request: SubmitHealthReportRequest = serde_json::from_slice(&signed.body)
        .map_err(|error| AppError::MalformedBody(error.to_string()))?;
    let outcome = state
        .health
        .submit(&signed.device, &request.nonce, request.report, &ctx)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SubmitHealthReportResponse {
            report: outcome.record.into(),
            critical_failures: outcome.critical_failures,
            threats_raised: outcome.threats_raised,
        }),
    ))
}

/// A replayed request nonce is only detected after the signature verified, so the device
/// really signed that report once: it is evidence, and recorded. Unsigned or badly signed
/// requests prove nothing about any device and create no event.
async fn record_replay(
    state: &AppState,
    headers: &HeaderMap,
    error: &AppError,
    ctx: &RequestContext,
) -> Result<(), AppError> {
    if !matches!(error, AppError::DeviceAuth("replayed_nonce")) {
        return Ok(());
    }
    let Some(device_id) = headers
        .get("x-device-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<DeviceId>().ok())
    else {
        return Ok(());
    };
    let (_, policy) = state.health.policies().current().await?;
    state
        .threats
        .report(
            ThreatSignal {
                device_id,
                kind: ThreatKind::InvalidHealthReport,
                severity: policy.threat_rules.invalid_health_report_severity,
                evidence: json!({ "reason": "replayed_request" }),
                observed_at: now_millis(),
            },
            ctx,
        )
        .await
}

/// A policy version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionResponse {
    /// Version, from 1.
    pub version: i64,
    /// The policy.
    pub policy: SecurityPolicy,
    /// Why it was changed.
    pub comment: Option<String>,
    /// Who created it (audit actor).
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<PolicyVersion> for PolicyVersionResponse {
    fn from(version: PolicyVersion) -> Self {
        Self {
            version: version.version,
            policy: version.policy,
            comment: version.comment,
            created_by: version.created_by,
            created_at: to_rfc3339(version.created_at),
        }
    }
}

/// Every policy version, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyVersionList {
    /// Versions.
    pub versions: Vec<PolicyVersionResponse>,
}

/// A new policy version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicyRequest {
    /// The version this edit starts from; must be the current one.
    pub based_on_version: i64,
    /// The whole new policy.
    pub policy: SecurityPolicy,
    /// Why (recorded in the audit log), up to 500 characters.
    pub comment: Option<String>,
}

/// The current security policy (health scoring, threat rules, responses).
#[utoipa::path(get, path = "/api/v1/security-policy", tag = "health",
    security(("bearer" = ["admin", "security_officer", "auditor"])),
    responses((status = 200, body = PolicyVersionResponse)))]
pub async fn get_security_policy(
    _auth: Authorized<PolicyReaders>,
    State(state): State<AppState>,
) -> Result<Json<PolicyVersionResponse>, AppError> {
    Ok(Json(
        state.health.policies().current_version().await?.into(),
    ))
}

/// Every version of the security policy, newest first.
#[utoipa::path(get, path = "/api/v1/security-policy/versions", tag = "health",
    security(("bearer" = ["admin", "security_officer", "auditor"])),
    responses((status = 200, body = PolicyVersionList)))]
pub async fn list_security_policy_versions(
    _auth: Authorized<PolicyReaders>,
    State(state): State<AppState>,
) -> Result<Json<PolicyVersionList>, AppError> {
    let versions = state.health.policies().versions().await?;
    Ok(Json(PolicyVersionList {
        versions: versions.into_iter().map(Into::into).collect(),
    }))
}

/// Stores a new version of the security policy (validated, audited; old versions kept).
#[utoipa::path(post, path = "/api/v1/security-policy", tag = "health",
    request_body = UpdatePolicyRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 201, body = PolicyVersionResponse), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`policy_version_conflict`"),
        (status = 422, body = ErrorBody)))]
pub async fn update_security_policy(
    auth: Authorized<DeviceGuardians>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<UpdatePolicyRequest>,
) -> Result<(StatusCode, Json<PolicyVersionResponse>), AppError> {
    let version = state
        .health
        .policies()
        .update(
            auth.principal(),
            req.based_on_version,
            &req.policy,
            req.comment,
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(version.into())))
}

/// History query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HealthHistoryQuery {
    /// Only reports received before this (RFC 3339), for paging.
    pub before: Option<DateTime<Utc>>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
}

/// A device's reports, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthHistoryResponse {
    /// Reports.
    pub reports: Vec<HealthReportResponse>,
}

/// A device's health report history, newest first.
#[utoipa::path(get, path = "/api/v1/devices/{device_id}/health", tag = "health",
    params(("device_id" = Uuid, Path, description = "device id"), HealthHistoryQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = HealthHistoryResponse), (status = 404, body = ErrorBody)))]
pub async fn device_health_history(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppPath(device_id): AppPath<Uuid>,
    AppQuery(query): AppQuery<HealthHistoryQuery>,
) -> Result<Json<HealthHistoryResponse>, AppError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::field("limit", "between 1 and 200"));
    }
    let device = state.devices.get(DeviceId(device_id)).await?;
    let reports = state
        .health
        .history(
            device.id,
            query.before.map(|at| at.timestamp_millis()),
            limit,
        )
        .await?;
    Ok(Json(HealthHistoryResponse {
        reports: reports.into_iter().map(Into::into).collect(),
    }))
}

/// Statistics window.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    /// Window ending now, seconds: 60 to 7776000 (90 days); default 86400.
    pub window_secs: Option<i64>,
    /// Series bucket, seconds: 60 to 86400 and at most the window; default 3600.
    pub bucket_secs: Option<i64>,
}

/// `(since, bucket_ms)` of a window query.
pub(crate) fn window(query: &WindowQuery) -> Result<(i64, i64), AppError> {
    let window = query.window_secs.unwrap_or(86_400);
    let bucket = query.bucket_secs.unwrap_or(3_600).min(window);
    let mut problems = Vec::new();
    if !(60..=90 * 86_400).contains(&window) {
        problems.push(crate::error::FieldError::new(
            "window_secs",
            "60 to 7776000",
        ));
    }
    if !(60..=86_400).contains(&bucket) {
        problems.push(crate::error::FieldError::new("bucket_secs", "60 to 86400"));
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    Ok((now_millis() - window * 1000, bucket * 1000))
}

/// A count for one key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCount {
    /// Key.
    pub key: String,
    /// Count.
    pub count: i64,
}

/// Reports per bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Bucket start.
    pub at: DateTime<Utc>,
    /// Reports.
    pub reports: i64,
    /// Of which failed.
    pub failed: i64,
}

/// An overdue device.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueDeviceResponse {
    /// Device.
    pub device_id: Uuid,
    /// Its latest report, if any.
    pub last_report_at: Option<DateTime<Utc>>,
    /// Silent since (latest report, or last state change).
    pub silent_since: DateTime<Utc>,
}

/// Fleet health over a window, computed from stored reports.
#[derive(Debug, Serialize, ToSchema)]
pub struct FleetHealthResponse {
    /// Window start.
    pub since: DateTime<Utc>,
    /// Reports in the window.
    pub reports: i64,
    /// Passed.
    pub passed: i64,
    /// Failed.
    pub failed: i64,
    /// Distinct devices that reported.
    pub devices_reporting: i64,
    /// Mean score (absent without reports).
    pub mean_score: Option<f64>,
    /// Score distribution: key `0-9`, `10-19`, ..., `90-100`.
    pub score_distribution: Vec<KeyCount>,
    /// Failed reports per check.
    pub failed_checks: Vec<KeyCount>,
    /// Reports per bucket.
    pub series: Vec<SeriesPoint>,
    /// Active devices overdue for a report now (heartbeat interval + grace).
    pub overdue_devices: Vec<OverdueDeviceResponse>,
    /// The deadline used, seconds.
    pub overdue_after_secs: u64,
}

/// Fleet health statistics over a time window.
#[utoipa::path(get, path = "/api/v1/health/stats", tag = "health", params(WindowQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = FleetHealthResponse), (status = 422, body = ErrorBody)))]
pub async fn fleet_health_stats(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<WindowQuery>,
) -> Result<Json<FleetHealthResponse>, AppError> {
    let (since, bucket_ms) = window(&query)?;
    let fleet = state.health.fleet(since, bucket_ms).await?;
    let aggregates = fleet.aggregates;
    let mut buckets = [0i64; 10];
    for (bucket, count) in &aggregates.score_buckets {
        let idx = usize::try_from(*bucket).unwrap_or(0).min(9);
        buckets[idx] += count;
    }
    let score_distribution = buckets
        .iter()
        .enumerate()
        .map(|(idx, count)| KeyCount {
            key: if idx == 9 {
                "90-100".to_owned()
            } else {
                format!("{}-{}", idx * 10, idx * 10 + 9)
            },
            count: *count,
        })
        .collect();
    #[allow(clippy::cast_precision_loss)] // counts and score sums are far below 2^52
    let mean_score =
        (aggregates.reports > 0).then(|| aggregates.score_sum as f64 / aggregates.reports as f64);
    Ok(Json(FleetHealthResponse {
        since: to_rfc3339(since),
        reports: aggregates.reports,
        passed: aggregates.passed,
        failed: aggregates.reports - aggregates.passed,
        devices_reporting: aggregates.devices,
        mean_score,
        score_distribution,
        failed_checks: aggregates
            .failed_checks
            .into_iter()
            .map(|(key, count)| KeyCount { key, count })
            .collect(),
        series: aggregates
            .series
            .into_iter()
            .map(|(at, reports, failed)| SeriesPoint {
                at: to_rfc3339(at),
                reports,
                failed,
            })
            .collect(),
        overdue_devices: fleet
            .overdue
            .into_iter()
            .map(|device| OverdueDeviceResponse {
                device_id: device.device_id.0,
                last_report_at: device.last_report_at.map(to_rfc3339),
                silent_since: to_rfc3339(device.since),
            })
            .collect(),
        overdue_after_secs: fleet.overdue_after_secs,
    }))
}

/// How many missed heartbeats a sweep recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct SweepResponse {
    /// New `missed_heartbeat` threat events.
    pub raised: usize,
}

/// Runs the missed-heartbeat sweep now (it also runs periodically).
#[utoipa::path(post, path = "/api/v1/health/heartbeat-sweep", tag = "health",
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = SweepResponse)))]
pub async fn sweep_heartbeats(
    _auth: Authorized<DeviceGuardians>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<SweepResponse>, AppError> {
    Ok(Json(SweepResponse {
        raised: state.health.sweep_heartbeats(&ctx).await?,
    }))
}
