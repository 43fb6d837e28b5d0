//! `/api/v1/audit`: read and verify the hash-chained audit log.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{AppQuery, AuditReaders, Authorized};
use super::state::AppState;
use crate::domain::{AuditRecord, to_rfc3339};
use crate::error::{AppError, ErrorBody, FieldError};
use crate::repository::audit::AuditFilter;
use crate::service::audit::ChainVerdict;

/// Filters; all optional and combined with AND.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Exact actor, e.g. `user:<uuid>`.
    pub actor: Option<String>,
    /// Exact action, e.g. `auth.login`.
    pub action: Option<String>,
    /// Exact target, e.g. `merchant:<uuid>`.
    pub target: Option<String>,
    /// At or after (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Cursor: only records with a smaller sequence number.
    pub before_seq: Option<i64>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<i64>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordResponse {
    /// Position in the chain.
    pub seq: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl From<AuditRecord> for AuditRecordResponse {
    fn from(record: AuditRecord) -> Self {
        Self {
            seq: record.seq,
            occurred_at: to_rfc3339(record.occurred_at),
            actor: record.actor,
            action: record.action,
            target: record.target,
            reason: record.reason,
            request_id: record.request_id,
            prev_hash: record.prev_hash,
            hash: record.hash,
        }
    }
}

/// A page of records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Records.
    pub records: Vec<AuditRecordResponse>,
    /// Pass as `before_seq` for the next page; absent on the last page.
    pub next_before_seq: Option<i64>,
}

fn check_text(field: &str, value: Option<&String>, problems: &mut Vec<FieldError>) {
    if value.is_some_and(|text| text.is_empty() || text.len() > 200) {
        problems.push(FieldError::new(field, "1 to 200 characters"));
    }
}

impl TryFrom<AuditQuery> for AuditFilter {
    type Error = AppError;
    fn try_from(query: AuditQuery) -> Result<Self, Self::Error> {
        let mut problems = Vec::new();
        check_text("actor", query.actor.as_ref(), &mut problems);
        check_text("action", query.action.as_ref(), &mut problems);
        check_text("target", query.target.as_ref(), &mut problems);
        let limit = query.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            problems.push(FieldError::new("limit", "between 1 and 500"));
        }
        if query.before_seq.is_some_and(|seq| seq < 1) {
            problems.push(FieldError::new("before_seq", "at least 1"));
        }
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        Ok(AuditFilter {
            actor: query.actor,
            action: query.action,
            target: query.target,
            since: query.since.map(|at| at.timestamp_millis()),
            until: query.until.map(|at| at.timestamp_millis()),
            before_seq: query.before_seq,
            limit,
        })
    }
}

/// Reads audit records with filters, newest first.
#[utoipa::path(get, path = "/api/v1/audit/records", tag = "audit", params(AuditQuery),
    security(("bearer" = ["admin", "security_officer", "auditor"]), ("api_key" = ["audit:read"])),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_audit_records(
    _auth: Authorized<AuditReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<AuditQuery>,
) -> Result<Json<AuditPage>, AppError> {
    let filter = AuditFilter::try_from(query)?;
    let records = state.audit.list(&filter).await?;
    let full_page = i64::try_from(records.len()).unwrap_or(0) == filter.limit;
    let next_before_seq = records
        .last()
        .filter(|_| full_page)
        .map(|record| record.seq);
    Ok(Json(AuditPage {
        records: records.into_iter().map(Into::into).collect(),
        next_before_seq,
    }))
}

/// Verifies the whole hash chain and names the first bad or missing record.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    security(("bearer" = ["admin", "security_officer", "auditor"]), ("api_key" = ["audit:read"])),
    responses((status = 200, body = ChainVerdict)))]
pub async fn verify_audit_chain(
    _auth: Authorized<AuditReaders>,
    State(state): State<AppState>,
) -> Result<Json<ChainVerdict>, AppError> {
    Ok(Json(state.audit.verify().await?))
}
