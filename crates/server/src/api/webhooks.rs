//! `/api/v1/webhooks`: outbound webhook endpoints (admin) and their delivery log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AdminOnly, AppJson, AppPath, AppQuery, Authorized, Ctx};
use super::state::AppState;
use crate::domain::to_rfc3339;
use crate::error::{AppError, ErrorBody};
use crate::repository::webhooks::{DeliveryRow, EndpointRow};
use crate::service::events::webhooks::NewEndpoint;

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `http` or `https` URL without credentials.
    pub url: String,
    /// Any of `threat.recorded`, `threat.updated`, `device.state_changed`.
    pub event_kinds: Vec<String>,
    /// Free text, at most 200 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// An endpoint on the wire (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    /// Id.
    pub id: Uuid,
    /// Target URL.
    pub url: String,
    /// Kinds it receives.
    pub event_kinds: Vec<String>,
    /// Free text.
    pub description: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<EndpointRow> for WebhookResponse {
    fn from(row: EndpointRow) -> Self {
        Self {
            id: row.id,
            url: row.url,
            event_kinds: row.event_kinds,
            description: row.description,
            created_by: row.created_by,
            created_at: to_rfc3339(row.created_at),
        }
    }
}

/// A created endpoint with its signing secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhookResponse {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// HMAC-SHA256 key for `X-SoftPOS-Signature`; shown only in this response.
    pub secret: String,
}

/// Registers an endpoint. Deliveries carry `X-SoftPOS-Signature: t=<unix>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<raw body>")>`. Audited.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    security(("bearer" = ["admin"])),
    responses((status = 201, body = CreatedWebhookResponse),
        (status = 422, body = ErrorBody, description = "`validation_failed`")))]
pub async fn create_webhook(
    auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<CreateWebhookRequest>,
) -> Result<(StatusCode, Json<CreatedWebhookResponse>), AppError> {
    let (row, secret) = state
        .webhooks
        .create(
            auth.principal(),
            NewEndpoint {
                url: req.url,
                event_kinds: req.event_kinds,
                description: req.description,
            },
            &ctx,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhookResponse {
            webhook: row.into(),
            secret,
        }),
    ))
}

/// Endpoints.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Vec<WebhookResponse>)))]
pub async fn list_webhooks(
    _auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
) -> Result<Json<Vec<WebhookResponse>>, AppError> {
    Ok(Json(
        state
            .webhooks
            .list()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Deletes an endpoint; its delivery log stays. Audited.
#[utoipa::path(delete, path = "/api/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "endpoint id")),
    security(("bearer" = ["admin"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_webhook(
    auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(webhook_id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    state
        .webhooks
        .delete(auth.principal(), webhook_id, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delivery log query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// At most this many attempts (1–500, default 100).
    pub limit: Option<i64>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// Id.
    pub id: Uuid,
    /// Event id (the body's `id`).
    pub event_id: String,
    /// Event kind.
    pub event_kind: String,
    /// 1-based attempt.
    pub attempt: i64,
    /// `delivered`, `retrying` or `failed`.
    pub outcome: String,
    /// HTTP status, if a response came.
    pub http_status: Option<i64>,
    /// Milliseconds to response or error.
    pub latency_ms: i64,
    /// What went wrong.
    pub error: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<DeliveryRow> for DeliveryResponse {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            event_kind: row.event_kind,
            attempt: row.attempt,
            outcome: row.outcome.as_str().to_owned(),
            http_status: row.http_status,
            latency_ms: row.latency_ms,
            error: row.error,
            at: to_rfc3339(row.created_at),
        }
    }
}

/// An endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(("webhook_id" = Uuid, Path, description = "endpoint id"), DeliveriesQuery),
    security(("bearer" = ["admin"])),
    responses((status = 200, body = Vec<DeliveryResponse>), (status = 404, body = ErrorBody)))]
pub async fn list_deliveries(
    _auth: Authorized<AdminOnly>,
    State(state): State<AppState>,
    AppPath(webhook_id): AppPath<Uuid>,
    AppQuery(query): AppQuery<DeliveriesQuery>,
) -> Result<Json<Vec<DeliveryResponse>>, AppError> {
    Ok(Json(
        state
            .webhooks
            .deliveries(webhook_id, query.limit.unwrap_or(100))
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}
