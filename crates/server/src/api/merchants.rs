//! `/api/v1/merchants`: create, update, list.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{
    AppJson, AppPath, AppQuery, Authorized, Ctx, MerchantReaders, MerchantWriters,
};
use super::paging;
use super::state::AppState;
use crate::domain::{Merchant, MerchantId, MerchantStatus, to_rfc3339};
use crate::error::{AppError, ErrorBody, FieldError};
use crate::repository::merchants::MerchantFilter;
use crate::service::merchants::{MerchantChanges, NewMerchant};

/// A merchant on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantResponse {
    /// Id.
    pub id: Uuid,
    /// Trading name.
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Merchant category code.
    pub mcc: String,
    /// Status.
    pub status: MerchantStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Merchant> for MerchantResponse {
    fn from(merchant: Merchant) -> Self {
        Self {
            id: merchant.id.0,
            name: merchant.name,
            country: merchant.country,
            mcc: merchant.mcc,
            status: merchant.status,
            created_at: to_rfc3339(merchant.created_at),
            updated_at: to_rfc3339(merchant.updated_at),
        }
    }
}

/// A merchant to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchantRequest {
    /// Trading name, unique.
    pub name: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country: String,
    /// Merchant category code, e.g. `5411`.
    pub mcc: String,
}

/// A partial update.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchantRequest {
    /// New name.
    pub name: Option<String>,
    /// New country.
    pub country: Option<String>,
    /// New MCC.
    pub mcc: Option<String>,
    /// New status (`closed` is final).
    pub status: Option<MerchantStatus>,
}

/// List filters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MerchantQuery {
    /// Only this status.
    pub status: Option<MerchantStatus>,
    /// Case-insensitive substring of the name (matched literally).
    pub q: Option<String>,
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<i64>,
}

/// A page of merchants.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantPage {
    /// Merchants, oldest first.
    pub merchants: Vec<MerchantResponse>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl TryFrom<MerchantQuery> for MerchantFilter {
    type Error = AppError;
    fn try_from(query: MerchantQuery) -> Result<Self, Self::Error> {
        let mut problems = Vec::new();
        let (after, limit) = paging::page(query.cursor.as_deref(), query.limit, &mut problems);
        if query.q.as_ref().is_some_and(|q| q.chars().count() > 100) {
            problems.push(FieldError::new("q", "at most 100 characters"));
        }
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        Ok(MerchantFilter {
            status: query.status,
            search: query.q.filter(|q| !q.is_empty()),
            after,
            limit,
        })
    }
}

/// Creates a merchant.
#[utoipa::path(post, path = "/api/v1/merchants", tag = "merchants", request_body = CreateMerchantRequest,
    security(("bearer" = ["admin", "operator"]), ("api_key" = ["merchants:write"])),
    responses((status = 201, body = MerchantResponse), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create_merchant(
    auth: Authorized<MerchantWriters>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(req): AppJson<CreateMerchantRequest>,
) -> Result<(StatusCode, Json<MerchantResponse>), AppError> {
    let merchant = state
        .merchants
        .create(
            auth.principal(),
            NewMerchant {
                name: req.name,
                country: req.country,
                mcc: req.mcc,
            },
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(merchant.into())))
}

/// Lists merchants with filters and cursor pagination.
#[utoipa::path(get, path = "/api/v1/merchants", tag = "merchants", params(MerchantQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["merchants:read"])),
    responses((status = 200, body = MerchantPage), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_merchants(
    _auth: Authorized<MerchantReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<MerchantQuery>,
) -> Result<Json<MerchantPage>, AppError> {
    let filter = MerchantFilter::try_from(query)?;
    let merchants = state.merchants.list(&filter).await?;
    let next_cursor = paging::next_cursor(&merchants, filter.limit, |merchant| {
        paging::encode_cursor(merchant.created_at, merchant.id)
    });
    Ok(Json(MerchantPage {
        merchants: merchants.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One merchant.
#[utoipa::path(get, path = "/api/v1/merchants/{merchant_id}", tag = "merchants",
    params(("merchant_id" = Uuid, Path, description = "merchant id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["merchants:read"])),
    responses((status = 200, body = MerchantResponse), (status = 404, body = ErrorBody)))]
pub async fn get_merchant(
    _auth: Authorized<MerchantReaders>,
    State(state): State<AppState>,
    AppPath(merchant_id): AppPath<Uuid>,
) -> Result<Json<MerchantResponse>, AppError> {
    Ok(Json(
        state.merchants.get(MerchantId(merchant_id)).await?.into(),
    ))
}

/// Changes a merchant.
#[utoipa::path(patch, path = "/api/v1/merchants/{merchant_id}", tag = "merchants",
    params(("merchant_id" = Uuid, Path, description = "merchant id")),
    request_body = UpdateMerchantRequest,
    security(("bearer" = ["admin", "operator"]), ("api_key" = ["merchants:write"])),
    responses((status = 200, body = MerchantResponse), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_merchant(
    auth: Authorized<MerchantWriters>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppPath(merchant_id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateMerchantRequest>,
) -> Result<Json<MerchantResponse>, AppError> {
    let merchant = state
        .merchants
        .update(
            auth.principal(),
            MerchantId(merchant_id),
            MerchantChanges {
                name: req.name,
                country: req.country,
                mcc: req.mcc,
                status: req.status,
            },
            &ctx,
        )
        .await?;
    Ok(Json(merchant.into()))
}
