//! `/api/v1/transactions` (records, CSV export, statistics, refunds, voids, reversals) and
//! `/api/v1/pin-operations`, for people. Wire types only; rules live in `service::payments`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AppJson, AppPath, AppQuery, Authorized, Ctx, Policy};
use super::paging;
use super::payments::{answer_response, idempotency_key};
use super::state::AppState;
use crate::domain::{DeviceId, MerchantId, Role, Scope};
use crate::error::{AppError, ErrorBody, FieldError};
use crate::repository::transactions::{
    PinOperation, StatsGroup, TransactionFilter, TransactionState,
};
use crate::service::payments::followup::{FollowUp, Requester};
use crate::service::payments::{TransactionDetail, TransactionStats, TransactionView};

/// Reading transactions, statistics and PIN-pad logs; integrations with `transactions:read`.
#[derive(Debug)]
pub struct TransactionReaders;
impl Policy for TransactionReaders {
    const ROLES: &'static [Role] = &[
        Role::Admin,
        Role::SecurityOfficer,
        Role::Operator,
        Role::Auditor,
    ];
    const SCOPE: Option<Scope> = Some(Scope::TransactionsRead);
}

/// Refunding, voiding and reversing; integrations with `transactions:refund`.
#[derive(Debug)]
pub struct TransactionWriters;
impl Policy for TransactionWriters {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Operator];
    const SCOPE: Option<Scope> = Some(Scope::TransactionsRefund);
}

/// Filters for listing and exporting transactions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TransactionQuery {
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Device.
    pub device_id: Option<Uuid>,
    /// Merchant.
    pub merchant_id: Option<Uuid>,
    /// State.
    pub state: Option<TransactionState>,
    /// Smallest amount (minor units).
    pub min_amount: Option<i64>,
    /// Largest amount (minor units).
    pub max_amount: Option<i64>,
    /// Scheme (`visa`, `mastercard`, ...).
    pub scheme: Option<String>,
    /// Last four PAN digits.
    pub last4: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
}

/// A page of transactions.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionPage {
    /// Transactions, oldest first.
    pub transactions: Vec<TransactionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn filter_of(query: TransactionQuery, default_limit: i64) -> Result<TransactionFilter, AppError> {
    let mut problems = Vec::new();
    let (after, limit) = paging::page(
        query.cursor.as_deref(),
        Some(query.limit.unwrap_or(default_limit)),
        &mut problems,
    );
    if query
        .last4
        .as_deref()
        .is_some_and(|l| l.len() != 4 || !l.bytes().all(|b| b.is_ascii_digit()))
    {
        problems.push(FieldError::new("last4", "four digits"));
    }
    if query.scheme.as_deref().is_some_and(|s| s.len() > 32) {
        problems.push(FieldError::new("scheme", "at most 32 characters"));
    }
    if let (Some(min), Some(max)) = (query.min_amount, query.max_amount)
        && min > max
    {
        problems.push(FieldError::new("min_amount", "above max_amount"));
    }
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    Ok(TransactionFilter {
        from: query.from.map(|at| at.timestamp_millis()),
        to: query.to.map(|at| at.timestamp_millis()),
        device_id: query.device_id.map(DeviceId),
        merchant_id: query.merchant_id.map(MerchantId),
        state: query.state,
        min_amount: query.min_amount,
        max_amount: query.max_amount,
        scheme: query.scheme.filter(|s| !s.is_empty()),
        last4: query.last4,
        pan_fingerprint: None,
        after,
        limit,
        newest_first: false,
    })
}

/// Lists transactions with filters and cursor pagination (oldest first).
#[utoipa::path(get, path = "/api/v1/transactions", tag = "transactions",
    params(TransactionQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["transactions:read"])),
    responses((status = 200, body = TransactionPage), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list_transactions(
    _auth: Authorized<TransactionReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<TransactionQuery>,
) -> Result<Json<TransactionPage>, AppError> {
    let mut filter = filter_of(query, 50)?;
    let transactions = state.payments.list(&mut filter, None).await?;
    let next_cursor = paging::next_cursor(&transactions, filter.limit, |transaction| {
        paging::encode_cursor(transaction.created_at.timestamp_millis(), transaction.id)
    });
    Ok(Json(TransactionPage {
        transactions,
        next_cursor,
    }))
}

/// Searching by full PAN: the PAN goes in the body (never a URL) and is matched by its keyed
/// fingerprint; it is neither stored nor logged.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PanSearch {
    /// Full PAN.
    pub pan: String,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
}

/// Finds the transactions of one card by its full PAN (keyed fingerprint match).
#[utoipa::path(post, path = "/api/v1/transactions/search", tag = "transactions",
    request_body = PanSearch,
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["transactions:read"])),
    responses((status = 200, body = TransactionPage), (status = 422, body = ErrorBody)))]
pub async fn search_transactions(
    _auth: Authorized<TransactionReaders>,
    State(state): State<AppState>,
    AppJson(search): AppJson<PanSearch>,
) -> Result<Json<TransactionPage>, AppError> {
    if !(12..=19).contains(&search.pan.len()) || !search.pan.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::field("pan", "12 to 19 digits"));
    }
    let query = TransactionQuery {
        from: None,
        to: None,
        device_id: None,
        merchant_id: None,
        state: None,
        min_amount: None,
        max_amount: None,
        scheme: None,
        last4: None,
        cursor: None,
        limit: search.limit,
    };
    let mut filter = filter_of(query, 50)?;
    let transactions = state.payments.list(&mut filter, Some(&search.pan)).await?;
    Ok(Json(TransactionPage {
        transactions,
        next_cursor: None,
    }))
}

/// One transaction with its refunds, voids and reversals.
#[utoipa::path(get, path = "/api/v1/transactions/{transaction_id}", tag = "transactions",
    params(("transaction_id" = Uuid, Path, description = "transaction id")),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["transactions:read"])),
    responses((status = 200, body = TransactionDetail), (status = 404, body = ErrorBody)))]
pub async fn get_transaction(
    _auth: Authorized<TransactionReaders>,
    State(state): State<AppState>,
    AppPath(transaction_id): AppPath<Uuid>,
) -> Result<Json<TransactionDetail>, AppError> {
    Ok(Json(state.payments.get(transaction_id).await?))
}

const CSV_HEADER: &str = "id,created_at,device_id,merchant_id,state,approved,amount_minor,\
currency,refunded_minor,scheme,pan_masked,response_code,authorisation_code,decline_reason\n";
const EXPORT_PAGE: i64 = 500;

/// One CSV field (RFC 4180 quoting), with a leading formula character neutralised so a
/// spreadsheet never evaluates exported text.
fn csv_field(out: &mut String, value: &str) {
    let needs_quotes =
        value.contains([',', '"', '\n', '\r']) || value.starts_with(['=', '+', '-', '@']);
    if needs_quotes {
        out.push('"');
        if value.starts_with(['=', '+', '-', '@']) {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_row(t: &TransactionView) -> String {
    let fields = [
        t.id.to_string(),
        t.created_at.to_rfc3339(),
        t.device_id.to_string(),
        t.merchant_id.to_string(),
        serde_json::to_value(t.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        t.approved.to_string(),
        t.amount_minor.to_string(),
        t.currency.clone(),
        t.refunded_minor.to_string(),
        t.scheme.clone(),
        t.pan_masked.clone(),
        t.response_code.clone().unwrap_or_default(),
        t.authorisation_code.clone().unwrap_or_default(),
        t.decline_reason.clone().unwrap_or_default(),
    ];
    let mut line = String::new();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        csv_field(&mut line, field);
    }
    line.push('\n');
    line
}

/// Exports the matching transactions as CSV, streamed page by page (any range size; the
/// server holds one page at a time). `cursor` and `limit` are ignored.
#[utoipa::path(get, path = "/api/v1/transactions/export", tag = "transactions",
    params(TransactionQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["transactions:read"])),
    responses((status = 200, description = "text/csv", content_type = "text/csv", body = String),
        (status = 422, body = ErrorBody)))]
pub async fn export_transactions(
    _auth: Authorized<TransactionReaders>,
    State(state): State<AppState>,
    AppQuery(mut query): AppQuery<TransactionQuery>,
) -> Result<Response, AppError> {
    query.cursor = None;
    query.limit = None;
    // The page size is the export's own, not the caller's.
    let mut filter = filter_of(query, 50)?;
    filter.limit = EXPORT_PAGE;
    let payments = state.payments.clone();
    let stream = futures_util::stream::unfold((Some(filter), true), move |(filter, first)| {
        let payments = payments.clone();
        async move {
            let mut filter = filter?;
            let mut chunk = String::new();
            if first {
                chunk.push_str(CSV_HEADER);
            }
            let page = match payments.list(&mut filter, None).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(error = ?error, "transaction export failed");
                    return Some((Err(std::io::Error::other("export failed")), (None, false)));
                }
            };
            for transaction in &page {
                chunk.push_str(&csv_row(transaction));
            }
            let next = match page.last() {
                Some(last) if i64::try_from(page.len()).unwrap_or(0) == EXPORT_PAGE => {
                    filter.after = Some((last.created_at.timestamp_millis(), last.id));
                    Some(filter)
                }
                _ => None,
            };
            if chunk.is_empty() {
                return None;
            }
            Some((Ok::<_, std::io::Error>(chunk), (next, false)))
        }
    });
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    res.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"transactions.csv\""),
    );
    Ok(res)
}

/// The statistics window and grouping.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Window start (RFC 3339), inclusive.
    pub from: DateTime<Utc>,
    /// Window end (RFC 3339), exclusive.
    pub to: DateTime<Utc>,
    /// `scheme` (default), `state`, `merchant` or `device`.
    pub group_by: Option<StatsGroup>,
}

/// Volume, count and approval rate over a time window, grouped by scheme, state, merchant
/// or device (and currency), computed from the records.
#[utoipa::path(get, path = "/api/v1/transactions/stats", tag = "transactions",
    params(StatsQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["transactions:read"])),
    responses((status = 200, body = TransactionStats), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn transaction_stats(
    _auth: Authorized<TransactionReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<StatsQuery>,
) -> Result<Json<TransactionStats>, AppError> {
    Ok(Json(
        state
            .payments
            .stats(
                query.from.timestamp_millis(),
                query.to.timestamp_millis(),
                query.group_by.unwrap_or(StatsGroup::Scheme),
            )
            .await?,
    ))
}

/// A refund.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Amount to refund, minor units (at most captured minus refunded).
    pub amount_minor: u64,
    /// Why.
    pub reason: Option<String>,
}

/// A void or reversal.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why.
    pub reason: Option<String>,
}

/// Refunds all or part of an approved sale; idempotent on `Idempotency-Key` per transaction.
#[utoipa::path(post, path = "/api/v1/transactions/{transaction_id}/refunds", tag = "transactions",
    params(("transaction_id" = Uuid, Path, description = "transaction id"),
        ("Idempotency-Key" = String, Header, description = "1-128 visible ASCII characters")),
    request_body = RefundBody,
    security(("bearer" = ["admin", "operator"]), ("api_key" = ["transactions:refund"])),
    responses((status = 200, body = TransactionDetail), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`refund_exceeds_captured`")))]
pub async fn refund_transaction(
    auth: Authorized<TransactionWriters>,
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    AppPath(transaction_id): AppPath<Uuid>,
    AppJson(body): AppJson<RefundBody>,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let canonical = serde_json::to_vec(&body).map_err(anyhow::Error::from)?;
    let answer = state
        .payments
        .follow_up(
            Requester::Principal(auth.principal()),
            transaction_id,
            FollowUp::Refund(body.amount_minor),
            body.reason,
            &key,
            &canonical,
            &ctx,
        )
        .await?;
    Ok(answer_response(answer))
}

macro_rules! cancel_endpoint {
    ($name:ident, $path:literal, $kind:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "transactions",
            params(("transaction_id" = Uuid, Path, description = "transaction id"),
                ("Idempotency-Key" = String, Header, description = "1-128 visible ASCII characters")),
            request_body = CancelBody,
            security(("bearer" = ["admin", "operator"]), ("api_key" = ["transactions:refund"])),
            responses((status = 200, body = TransactionDetail), (status = 404, body = ErrorBody),
                (status = 409, body = ErrorBody, description = "`transaction_not_cancellable`")))]
        pub async fn $name(
            auth: Authorized<TransactionWriters>,
            State(state): State<AppState>,
            Ctx(ctx): Ctx,
            headers: HeaderMap,
            AppPath(transaction_id): AppPath<Uuid>,
            AppJson(body): AppJson<CancelBody>,
        ) -> Result<Response, AppError> {
            let key = idempotency_key(&headers)?;
            let canonical = serde_json::to_vec(&body).map_err(anyhow::Error::from)?;
            let answer = state
                .payments
                .follow_up(
                    Requester::Principal(auth.principal()),
                    transaction_id,
                    $kind,
                    body.reason,
                    &key,
                    &canonical,
                    &ctx,
                )
                .await?;
            Ok(answer_response(answer))
        }
    };
}

cancel_endpoint!(
    void_transaction,
    "/api/v1/transactions/{transaction_id}/void",
    FollowUp::Void,
    "Voids an approved sale without refunds (cancellation before settlement); idempotent."
);
cancel_endpoint!(
    reverse_transaction,
    "/api/v1/transactions/{transaction_id}/reversal",
    FollowUp::Reversal,
    "Reverses an approved sale without refunds; idempotent."
);

/// Which PIN-pad operations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PinOperationQuery {
    /// Only this device.
    pub device_id: Option<Uuid>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
}

/// PIN-pad operations and their count.
#[derive(Debug, Serialize, ToSchema)]
pub struct PinOperationPage {
    /// Operations matching the filter, all pages.
    pub total: i64,
    /// The newest ones.
    pub operations: Vec<PinOperation>,
}

/// PIN-pad operations (time, KSN, result; never PIN data), newest first, with their count.
#[utoipa::path(get, path = "/api/v1/pin-operations", tag = "transactions",
    params(PinOperationQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"]), ("api_key" = ["transactions:read"])),
    responses((status = 200, body = PinOperationPage), (status = 422, body = ErrorBody)))]
pub async fn list_pin_operations(
    _auth: Authorized<TransactionReaders>,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<PinOperationQuery>,
) -> Result<Json<PinOperationPage>, AppError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(AppError::field("limit", "between 1 and 200"));
    }
    let (operations, total) = state
        .payments
        .pin_operations(query.device_id.map(DeviceId), limit)
        .await?;
    Ok(Json(PinOperationPage { total, operations }))
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        let check = |value: &str, expected: &str| {
            let mut out = String::new();
            csv_field(&mut out, value);
            assert_eq!(out, expected);
        };
        check("visa", "visa");
        check("a,b", "\"a,b\"");
        check("say \"hi\"", "\"say \"\"hi\"\"\"");
        check("=HYPERLINK(1)", "\"'=HYPERLINK(1)\"");
    }
}
