//! `/api/v1/device/transactions` (sales, the device's own history and refunds) and
//! `/api/v1/device/pin-operations`: calls signed by a device key. Wire types and hex decoding
//! only; the pipeline is `service::payments`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{AppPath, AppQuery, Ctx, SignedDevice};
use super::paging;
use super::state::AppState;
use super::transactions::RefundBody;
use crate::error::{AppError, ErrorBody, FieldError};
use crate::repository::transactions::PinOperation;
use crate::service::payments::followup::{FollowUp, Requester};
use crate::service::payments::{
    Answer, PinOperationReport, SaleRequest, TransactionDetail, TransactionView,
};
use crate::service::ports::GeoPoint;

/// A sale. Binary fields are hex. The card data and PIN block are encrypted on the device;
/// the EMV data must not contain the PAN, track data or cardholder name (they travel in the
/// card data).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaleBody {
    /// Transaction Token (single use).
    pub token: String,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 alpha code, e.g. `EUR`.
    pub currency: String,
    /// DE 55: BER-TLV of the kernel's online request, without tags 56, 57, 5A, 5F20, 9F1F,
    /// 9F20, 9F0B, 9F6B.
    pub emv_data: String,
    /// JSON `{"pan", "expiry" (YYMM), "pan_sequence_number"?, "track2"? (hex)}`, padded with
    /// ISO/IEC 9797-1 method 2 and CBC-encrypted under the DUKPT data key: AES DUKPT usage
    /// "data encryption, encrypt" (AES-128), TDES DUKPT the data request variant.
    pub card_data: String,
    /// CBC IV of `card_data`; all zeros when absent.
    pub card_data_iv: Option<String>,
    /// PIN block under the DUKPT PIN key: ISO 9564-1 format 4 (AES DUKPT) or 0 (TDES).
    pub pin_block: Option<String>,
    /// KSN: 12 bytes (AES DUKPT) or 10 bytes (TDES DUKPT).
    pub ksn: String,
    /// Where the device is, for the location-jump rule.
    pub location: Option<GeoPoint>,
}

fn hex_field(problems: &mut Vec<FieldError>, field: &str, text: &str, max_bytes: usize) -> Vec<u8> {
    match hex::decode(text) {
        Ok(bytes) if !bytes.is_empty() && bytes.len() <= max_bytes => bytes,
        _ => {
            problems.push(FieldError::new(
                field,
                format!("hex, 1 to {max_bytes} bytes"),
            ));
            Vec::new()
        }
    }
}

impl TryFrom<SaleBody> for SaleRequest {
    type Error = AppError;
    fn try_from(body: SaleBody) -> Result<Self, AppError> {
        let mut problems = Vec::new();
        let emv_data = hex_field(&mut problems, "emv_data", &body.emv_data, 1024);
        let card_data = hex_field(&mut problems, "card_data", &body.card_data, 512);
        let card_data_iv = body
            .card_data_iv
            .as_deref()
            .map(|iv| hex_field(&mut problems, "card_data_iv", iv, 16));
        let pin_block = body
            .pin_block
            .as_deref()
            .map(|block| hex_field(&mut problems, "pin_block", block, 16));
        let ksn = hex_field(&mut problems, "ksn", &body.ksn, 12);
        if body.token.is_empty() || body.token.len() > 4096 {
            problems.push(FieldError::new("token", "1 to 4096 characters"));
        }
        if body.currency.len() != 3 || !body.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            problems.push(FieldError::new("currency", "ISO 4217 alpha code"));
        }
        if let Some(point) = &body.location
            && (!(-90.0..=90.0).contains(&point.latitude)
                || !(-180.0..=180.0).contains(&point.longitude)
                || point
                    .accuracy_m
                    .is_some_and(|a| !(0.0..=1.0e7).contains(&a)))
        {
            problems.push(FieldError::new(
                "location",
                "latitude, longitude out of range",
            ));
        }
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        Ok(SaleRequest {
            token: body.token,
            amount_minor: body.amount_minor,
            currency: body.currency,
            emv_data,
            card_data,
            card_data_iv,
            pin_block,
            ksn,
            location: body.location,
        })
    }
}

/// A body that does not parse. Serde's text can quote values (a token, a PAN sent by
/// mistake), so only field-name messages are passed on.
pub(crate) fn malformed(error: serde_json::Error) -> AppError {
    let text = error.to_string();
    if text.starts_with("missing field") || text.starts_with("unknown field") {
        AppError::MalformedBody(text)
    } else {
        AppError::MalformedBody(format!(
            "invalid JSON or wrong type at line {}, column {}",
            error.line(),
            error.column()
        ))
    }
}

/// The `Idempotency-Key` header.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<String, AppError> {
    headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| AppError::field("Idempotency-Key", "header required"))
}

/// An idempotent answer as an HTTP response; replays say so in `Idempotent-Replayed`.
pub(crate) fn answer_response(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, answer.body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if answer.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

/// Submits a sale (issue 6, section 3): token, amount, EMV data, encrypted card data,
/// optional encrypted PIN block, KSN. Idempotent on `Idempotency-Key` per device: the same
/// key and body replay the first answer (with `Idempotent-Replayed: true`), another body is
/// `409 idempotency_key_reused`. A decline is `201` with `state = DECLINED`; a KSN replay or
/// rollback is `409 ksn_replay` / `ksn_rollback` and raises a threat event.
#[utoipa::path(post, path = "/api/v1/device/transactions", tag = "device",
    request_body = SaleBody,
    params(("Idempotency-Key" = String, Header, description = "1-128 visible ASCII characters")),
    security(("device_signature" = [])),
    responses((status = 201, body = TransactionView),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create_sale(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    signed: SignedDevice,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let body: SaleBody = serde_json::from_slice(&signed.body).map_err(malformed)?;
    let request = SaleRequest::try_from(body)?;
    let answer = state
        .payments
        .sale(&signed.device, &key, &signed.body, request, &ctx)
        .await?;
    Ok(answer_response(answer))
}

/// PIN-pad mode: a `pinpad` device reports one PIN encryption for a transaction run on
/// another terminal. Logged per device with time, KSN and result; never PIN data.
#[utoipa::path(post, path = "/api/v1/device/pin-operations", tag = "device",
    request_body = PinOperationReport,
    security(("device_signature" = [])),
    responses((status = 201, body = PinOperation), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_pin_operation(
    State(state): State<AppState>,
    signed: SignedDevice,
) -> Result<(StatusCode, Json<PinOperation>), AppError> {
    let report: PinOperationReport = serde_json::from_slice(&signed.body).map_err(malformed)?;
    let operation = state
        .payments
        .record_pin_operation(&signed.device, report)
        .await?;
    Ok((StatusCode::CREATED, Json(operation)))
}

/// A page of the device's own transactions.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeviceHistoryQuery {
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1-200 (default 50).
    pub limit: Option<i64>,
}

/// The device's own transactions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTransactionPage {
    /// Transactions, newest first.
    pub items: Vec<TransactionView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The device's own transactions, newest first, paged by `cursor` (issue 6, section 3: a
/// terminal shows its history and picks a sale to refund). The signature covers the path with
/// its query string. Only `ACTIVE` devices, as for sales (`409 device_not_active`).
#[utoipa::path(get, path = "/api/v1/device/transactions", tag = "device",
    params(DeviceHistoryQuery),
    security(("device_signature" = [])),
    responses((status = 200, body = DeviceTransactionPage), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_device_transactions(
    State(state): State<AppState>,
    AppQuery(query): AppQuery<DeviceHistoryQuery>,
    signed: SignedDevice,
) -> Result<Json<DeviceTransactionPage>, AppError> {
    let mut problems = Vec::new();
    let (after, limit) = paging::page(query.cursor.as_deref(), query.limit, &mut problems);
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let items = state
        .payments
        .device_history(&signed.device, after, limit)
        .await?;
    let next_cursor = paging::next_cursor(&items, limit, |transaction| {
        paging::encode_cursor(transaction.created_at.timestamp_millis(), transaction.id)
    });
    Ok(Json(DeviceTransactionPage { items, next_cursor }))
}

/// Refunds all or part of one of the device's own approved sales (issue 6, section 3: refund,
/// never above the captured amount). Idempotent on `Idempotency-Key` per transaction, as the
/// staff endpoint: the same key and body replay the first answer, another body is
/// `409 idempotency_key_reused`. Another device's sale is `404 transaction_not_found`; above
/// the captured amount minus earlier and pending refunds is `422 refund_exceeds_captured`.
/// Audited with the device as actor.
#[utoipa::path(post, path = "/api/v1/device/transactions/{transaction_id}/refunds", tag = "device",
    params(("transaction_id" = Uuid, Path, description = "transaction id"),
        ("Idempotency-Key" = String, Header, description = "1-128 visible ASCII characters")),
    request_body = RefundBody,
    security(("device_signature" = [])),
    responses((status = 200, body = TransactionDetail), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`transaction_not_found`"),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "`refund_exceeds_captured`"),
        (status = 503, body = ErrorBody)))]
pub async fn refund_device_transaction(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    AppPath(transaction_id): AppPath<Uuid>,
    signed: SignedDevice,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let body: RefundBody = serde_json::from_slice(&signed.body).map_err(malformed)?;
    // The staff endpoint's canonical form: the same refund hashes the same from both.
    let canonical = serde_json::to_vec(&body).map_err(anyhow::Error::from)?;
    let answer = state
        .payments
        .follow_up(
            Requester::Device(&signed.device),
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
