//! Threats: listing and per-device history, one event with its incident notes, the
//! incident workflow, statistics. There is deliberately no endpoint that creates a threat:
//! only signed device reports and the server's own observations do.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AppJson, AppPath, AppQuery, Authorized, Ctx, DeviceGuardians, DeviceReaders};
use super::health_reports::{KeyCount, WindowQuery, window};
use super::paging;
use super::state::AppState;
use crate::domain::{DeviceId, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::repository::threats::{ThreatEventRecord, ThreatFilter, ThreatNote};
use crate::service::health::policy::ResponseAction;
use crate::service::ports::{Severity, ThreatKind};
use crate::service::threats::ThreatState;

/// A threat event on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreatResponse {
    /// Id.
    pub id: Uuid,
    /// Device.
    pub device_id: Uuid,
    /// Kind.
    pub kind: ThreatKind,
    /// Severity.
    pub severity: Severity,
    /// What was seen.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    /// Incident state.
    pub state: ThreatState,
    /// Response the policy chose.
    pub action: ResponseAction,
    /// What applying it did.
    pub action_outcome: String,
    /// Policy version in force.
    pub policy_version: i64,
    /// Observed.
    pub observed_at: DateTime<Utc>,
    /// Recorded.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<ThreatEventRecord> for ThreatResponse {
    fn from(event: ThreatEventRecord) -> Self {
        Self {
            id: event.id,
            device_id: event.device_id.0,
            kind: event.kind,
            severity: event.severity,
            evidence: event.evidence,
            state: event.state,
            action: event.action,
            action_outcome: event.action_outcome,
            policy_version: event.policy_version,
            observed_at: to_rfc3339(event.observed_at),
            created_at: to_rfc3339(event.created_at),
            updated_at: to_rfc3339(event.updated_at),
        }
    }
}

/// One incident workflow step.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreatNoteResponse {
    /// From.
    pub from_state: ThreatState,
    /// To.
    pub to_state: ThreatState,
    /// Who.
    pub actor: String,
    /// Note.
    pub note: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<ThreatNote> for ThreatNoteResponse {
    fn from(note: ThreatNote) -> Self {
        Self {
            from_state: note.from_state,
            to_state: note.to_state,
            actor: note.actor,
            note: note.note,
            at: to_rfc3339(note.at),
        }
    }
}

/// An event with its workflow.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreatDetail {
    /// The event.
    #[serde(flatten)]
    pub threat: ThreatResponse,
    /// Workflow steps, oldest first.
    pub notes: Vec<ThreatNoteResponse>,
}

/// Filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ThreatQuery {
    /// Only this device (its threat history).
    pub device_id: Option<Uuid>,
    /// Only this state.
    pub state: Option<ThreatState>,
    /// Only this kind.
    pub kind: Option<ThreatKind>,
    /// Recorded at or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size 1-200 (default 50).
    pub limit: Option<i64>,
}

/// A page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreatPage {
    /// Events.
    pub threats: Vec<ThreatResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Threat events, newest first, with filters (per device: its threat history).
#[utoipa::path(get, path = "/api/v1/threats", tag = "threats", params(ThreatQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = ThreatPage), (status = 422, body = ErrorBody)))]
pub async fn list_threats(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<ThreatQuery>,
) -> Result<Json<ThreatPage>, AppError> {
    let mut problems = Vec::new();
    let (before, limit) = paging::page(query.cursor.as_deref(), query.limit, &mut problems);
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let threats = state
        .threats
        .list(&ThreatFilter {
            device_id: query.device_id.map(DeviceId),
            state: query.state,
            kind: query.kind,
            since: query.since.map(|at| at.timestamp_millis()),
            before,
            limit,
        })
        .await?;
    let next_cursor = paging::next_cursor(&threats, limit, |event| {
        paging::encode_cursor(event.created_at, event.id)
    });
    Ok(Json(ThreatPage {
        threats: threats.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One threat event with its incident notes.
#[utoipa::path(get, path = "/api/v1/threats/{threat_id}", tag = "threats",
    params(("threat_id" = Uuid, Path, description = "threat event id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = ThreatDetail), (status = 404, body = ErrorBody)))]
pub async fn get_threat(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppPath(threat_id): AppPath<Uuid>,
) -> Result<Json<ThreatDetail>, AppError> {
    let (threat, notes) = state.threats.get(threat_id).await?;
    Ok(Json(ThreatDetail {
        threat: threat.into(),
        notes: notes.into_iter().map(Into::into).collect(),
    }))
}

/// An incident workflow step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateThreatStateRequest {
    /// `acknowledged`, `resolved` or `false_positive`.
    pub state: ThreatState,
    /// What was found or done, 1-2000 characters.
    pub note: String,
}

/// Moves an incident: open → acknowledged → resolved / false_positive (audited).
#[utoipa::path(post, path = "/api/v1/threats/{threat_id}/state", tag = "threats",
    params(("threat_id" = Uuid, Path, description = "threat event id")),
    request_body = UpdateThreatStateRequest,
    security(("bearer" = ["admin", "security_officer"])),
    responses((status = 200, body = ThreatDetail), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`invalid_threat_transition`"),
        (status = 422, body = ErrorBody)))]
pub async fn update_threat_state(
    auth: Authorized<DeviceGuardians>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(threat_id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateThreatStateRequest>,
) -> Result<Json<ThreatDetail>, AppError> {
    let (threat, notes) = state
        .threats
        .update_state(auth.principal(), threat_id, req.state, req.note, &ctx)
        .await?;
    Ok(Json(ThreatDetail {
        threat: threat.into(),
        notes: notes.into_iter().map(Into::into).collect(),
    }))
}

/// Threat counts over a window.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreatStatsResponse {
    /// Window start.
    pub since: DateTime<Utc>,
    /// Events recorded in the window.
    pub total: i64,
    /// Per kind.
    pub by_kind: Vec<KeyCount>,
    /// Per severity.
    pub by_severity: Vec<KeyCount>,
    /// Per state.
    pub by_state: Vec<KeyCount>,
}

/// Threat statistics by kind, severity and state over a time window.
#[utoipa::path(get, path = "/api/v1/threats/stats", tag = "threats", params(WindowQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["devices:read"])),
    responses((status = 200, body = ThreatStatsResponse), (status = 422, body = ErrorBody)))]
pub async fn threat_stats(
    _auth: Authorized<DeviceReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<WindowQuery>,
) -> Result<Json<ThreatStatsResponse>, AppError> {
    let (since, _) = window(&query)?;
    let stats = state.threats.stats(since).await?;
    let counts = |rows: Vec<(String, i64)>| {
        rows.into_iter()
            .map(|(key, count)| KeyCount { key, count })
            .collect()
    };
    Ok(Json(ThreatStatsResponse {
        since: to_rfc3339(since),
        total: stats.total,
        by_kind: counts(stats.by_kind),
        by_severity: counts(stats.by_severity),
        by_state: counts(stats.by_state),
    }))
}
