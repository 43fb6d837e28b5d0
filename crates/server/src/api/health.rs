//! Liveness, readiness and metrics (outside `/api/v1`: they are for infrastructure).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::state::AppState;
use crate::error::AppError;

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

/// Readiness of one dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct DependencyStatus {
    /// Which implementation (`sqlite`, `postgres`, `redis`, `memory`).
    pub kind: &'static str,
    /// Whether it answered.
    pub ok: bool,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// The database.
    pub database: DependencyStatus,
    /// Shared stores.
    pub stores: DependencyStatus,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = Liveness)))]
pub async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// The database and (when configured) Redis answer.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db_ok = sqlx::query("SELECT 1")
        .execute(&state.db.reader)
        .await
        .is_ok();
    let stores_ok = state.stores.health.ping().await.is_ok();
    let ready = db_ok && stores_ok;
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database: DependencyStatus {
            kind: state.db.backend.as_str(),
            ok: db_ok,
        },
        stores: DependencyStatus {
            kind: state.stores.health.kind(),
            ok: stores_ok,
        },
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, content_type = "text/plain", body = String), (status = 401, body = crate::error::ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &state.settings.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            return AppError::Unauthorized.into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
