//! `PaymentService`: the transaction pipeline, refunds, voids and reversals, the records and
//! their statistics, and the PIN-pad operation log.
//!
//! Sale pipeline (`sale.rs`), each step refusing with a stable code and changing nothing
//! after a refusal except what the step itself consumed:
//! idempotency claim → Transaction Token consumed atomically ([`TokenConsumer`]) → device
//! `ACTIVE` (softpos mode) → amount within the token's ceiling → KSN of the device's active
//! key set, its counter strictly above the high-water mark (compare-and-set; a replay or a
//! rollback is reported to [`ThreatReporter`] and pays nothing) → card data decrypted under
//! the DUKPT data key → EMV data checked (no cardholder data in clear, amount and currency
//! equal) → PIN block translated from the DUKPT PIN key to the processor's zone PIN key
//! inside `payment-crypto` → `PENDING` record → [`ProcessorConnector`] → decision recorded
//! (a timeout: `FAILED` and an automatic reversal recorded) → behaviour rules observed.
//!
//! Follow-ups (`followup.rs`): refund (never above captured minus refunded and reserved,
//! enforced by the reserving `UPDATE` itself), void and reversal of an approved, unrefunded
//! sale; each reserved before the processor is called and settled or released after, sent
//! from the stored record alone (so any instance can), idempotent and audited; devices
//! refund their own sales.
//!
//! Security: the clear PAN exists only in zeroizing buffers during a sale; records keep the
//! masked PAN, the last four digits and an HMAC-SHA256 fingerprint under a server key; PIN
//! blocks are never stored or logged and the clear PIN never leaves `payment-crypto`.

pub mod acquirer;
pub mod card;
pub mod followup;
pub mod idempotency;
pub mod processor;
mod sale;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Device, DeviceId, DeviceMode, DeviceState, now_millis, to_rfc3339};
use crate::error::{AppError, AppResult};
use crate::repository::transactions::{
    PinOperation, StatsGroup, StatsRow, TransactionEvent, TransactionFilter, TransactionRecord,
    TransactionRepository, TransactionState,
};
use crate::service::audit::AuditService;
use crate::service::ports::{DeviceKeys, GeoPoint, ThreatReporter, TokenConsumer};
use processor::ProcessorConnector;

pub use followup::FollowUp;
pub use idempotency::Answer;
pub use sale::SaleRequest;

/// The services the payment pipeline calls through ports.
#[derive(Debug, Clone)]
pub struct PaymentPorts {
    /// Transaction Tokens.
    pub tokens: Arc<dyn TokenConsumer>,
    /// DUKPT hosts and zone PIN keys.
    pub keys: Arc<dyn DeviceKeys>,
    /// Threat events and behaviour rules.
    pub threats: Arc<dyn ThreatReporter>,
}

/// The payment service.
#[derive(Debug)]
pub struct PaymentService {
    repo: Arc<dyn TransactionRepository>,
    ports: PaymentPorts,
    processor: Arc<dyn ProcessorConnector>,
    audit: Arc<AuditService>,
    fingerprint_key: zeroize::Zeroizing<Vec<u8>>,
    lease: std::time::Duration,
}

/// A transaction as the API shows it: cardholder data masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionView {
    /// Id.
    pub id: Uuid,
    /// Device.
    pub device_id: Uuid,
    /// Merchant.
    pub merchant_id: Uuid,
    /// State.
    pub state: TransactionState,
    /// The issuer approved it (stays true after a refund, void or reversal).
    pub approved: bool,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// ISO 4217 alpha code.
    pub currency: String,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// Held by refunds, voids or reversals sent to the processor whose answer is not
    /// recorded yet, minor units.
    pub reserved_minor: i64,
    /// Card scheme.
    pub scheme: String,
    /// PAN, first six and last four digits.
    pub pan_masked: String,
    /// Last four digits.
    pub pan_last4: String,
    /// An online PIN was sent.
    pub online_pin: bool,
    /// Processor connection.
    pub processor: String,
    /// KSN of the request, hex.
    pub ksn: String,
    /// ISO 8583 DE 39.
    pub response_code: Option<String>,
    /// Issuer's authorisation code.
    pub authorisation_code: Option<String>,
    /// Stable code of the decline or failure.
    pub decline_reason: Option<String>,
    /// ARPC for the card, hex.
    pub arpc: Option<String>,
    /// Why it was reversed (`processor_timeout` for automatic reversals).
    pub reversal_reason: Option<String>,
    /// When the reversal was acknowledged.
    pub reversed_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Decided.
    pub decided_at: Option<DateTime<Utc>>,
}

impl From<&TransactionRecord> for TransactionView {
    fn from(r: &TransactionRecord) -> Self {
        Self {
            id: r.id,
            device_id: r.device_id.0,
            merchant_id: r.merchant_id.0,
            state: r.state,
            approved: r.approved,
            amount_minor: r.amount_minor,
            currency: r.currency.clone(),
            refunded_minor: r.refunded_minor,
            reserved_minor: r.reserved_minor,
            scheme: r.scheme.clone(),
            pan_masked: r.pan_masked.clone(),
            pan_last4: r.pan_last4.clone(),
            online_pin: r.online_pin,
            processor: r.processor.clone(),
            ksn: r.ksn.clone(),
            response_code: r.response_code.clone(),
            authorisation_code: r.authorisation_code.clone(),
            decline_reason: r.decline_reason.clone(),
            arpc: r.arpc.clone(),
            reversal_reason: r.reversal_reason.clone(),
            reversed_at: r.reversed_at.map(to_rfc3339),
            created_at: to_rfc3339(r.created_at),
            decided_at: r.decided_at.map(to_rfc3339),
        }
    }
}

/// A transaction with its refunds, voids and reversals.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionDetail {
    /// The transaction.
    #[serde(flatten)]
    pub transaction: TransactionView,
    /// Location the device reported, if any.
    pub location: Option<GeoPoint>,
    /// Refunds, voids and reversals, oldest first.
    pub events: Vec<TransactionEvent>,
}

/// Statistics over a time window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransactionStats {
    /// Window start (inclusive).
    pub from: DateTime<Utc>,
    /// Window end (exclusive).
    pub to: DateTime<Utc>,
    /// Grouping.
    pub group_by: String,
    /// Groups per currency.
    pub groups: Vec<StatsRow>,
    /// Transactions in the window.
    pub total_count: i64,
    /// Issuer approvals in the window.
    pub total_approved: i64,
    /// `total_approved / total_count` (0 when empty).
    pub approval_rate: f64,
}

/// A PIN-pad operation report from a `pinpad` device.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinOperationReport {
    /// KSN of the PIN encryption, hex.
    pub ksn: String,
    /// `accepted`, `cancelled`, `timeout` or `error`.
    pub result: String,
    /// The reference of the transaction run on the other terminal.
    pub reference: Option<String>,
}

/// The lease for the default request timeout (30 s) plus a margin.
const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(32);

const PIN_RESULTS: [&str; 4] = ["accepted", "cancelled", "timeout", "error"];

impl PaymentService {
    /// Wires the service.
    pub fn new(
        repo: Arc<dyn TransactionRepository>,
        ports: PaymentPorts,
        processor: Arc<dyn ProcessorConnector>,
        audit: Arc<AuditService>,
        fingerprint_key: &[u8],
    ) -> Self {
        Self {
            repo,
            ports,
            processor,
            audit,
            fingerprint_key: zeroize::Zeroizing::new(fingerprint_key.to_vec()),
            lease: DEFAULT_LEASE,
        }
    }

    /// How long a request holds its idempotency key before a retry may take it over: longer
    /// than any request can run (the HTTP layer's request timeout plus a margin).
    #[must_use]
    pub fn with_idempotency_lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// One transaction with its events.
    ///
    /// # Errors
    /// `not_found`.
    pub async fn get(&self, id: Uuid) -> AppResult<TransactionDetail> {
        let record = self
            .repo
            .find(id)
            .await?
            .ok_or(AppError::NotFound("transaction"))?;
        let events = self.repo.events(id).await?;
        Ok(TransactionDetail {
            transaction: TransactionView::from(&record),
            location: record
                .location
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            events,
        })
    }

    /// A page of transactions. `pan`, when given, is searched by its fingerprint.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        filter: &mut TransactionFilter,
        pan: Option<&str>,
    ) -> AppResult<Vec<TransactionView>> {
        if let Some(pan) = pan {
            filter.pan_fingerprint = Some(card::pan_fingerprint(&self.fingerprint_key, pan));
        }
        Ok(self
            .repo
            .list(filter)
            .await?
            .iter()
            .map(TransactionView::from)
            .collect())
    }

    /// A page of `device`'s own transactions, newest first, after the cursor position.
    ///
    /// # Errors
    /// `device_not_active`.
    pub async fn device_history(
        &self,
        device: &Device,
        after: Option<(i64, Uuid)>,
        limit: i64,
    ) -> AppResult<Vec<TransactionView>> {
        if device.state != DeviceState::Active {
            return Err(device_not_active());
        }
        let filter = TransactionFilter {
            device_id: Some(device.id),
            after,
            limit,
            newest_first: true,
            ..TransactionFilter::default()
        };
        Ok(self
            .repo
            .list(&filter)
            .await?
            .iter()
            .map(TransactionView::from)
            .collect())
    }

    /// Statistics over `[from, to)` grouped by `group`.
    ///
    /// # Errors
    /// `validation_failed` for an empty or reversed window.
    pub async fn stats(
        &self,
        from: i64,
        to: i64,
        group: StatsGroup,
    ) -> AppResult<TransactionStats> {
        if from >= to {
            return Err(AppError::field("from", "must be before `to`"));
        }
        let groups = self.repo.stats(from, to, group).await?;
        let total_count = groups.iter().map(|g| g.count).sum::<i64>();
        let total_approved = groups.iter().map(|g| g.approved).sum::<i64>();
        Ok(TransactionStats {
            from: to_rfc3339(from),
            to: to_rfc3339(to),
            group_by: format!("{group:?}").to_lowercase(),
            groups,
            total_count,
            total_approved,
            approval_rate: if total_count == 0 {
                0.0
            } else {
                total_approved as f64 / total_count as f64
            },
        })
    }

    /// Logs a PIN-pad operation of a `pinpad` device (time, KSN, result; never PIN data).
    ///
    /// # Errors
    /// `device_not_active`, `device_mode_mismatch`, `validation_failed`.
    pub async fn record_pin_operation(
        &self,
        device: &Device,
        report: PinOperationReport,
    ) -> AppResult<PinOperation> {
        if device.state != DeviceState::Active {
            return Err(device_not_active());
        }
        if device.mode != DeviceMode::Pinpad {
            return Err(AppError::Unprocessable {
                code: "device_mode_mismatch",
                message: "only pinpad devices report PIN operations",
            });
        }
        let ksn_ok = matches!(report.ksn.len(), 20 | 24)
            && report.ksn.bytes().all(|b| b.is_ascii_hexdigit());
        if !ksn_ok {
            return Err(AppError::field("ksn", "10 or 12 bytes, hex"));
        }
        if !PIN_RESULTS.contains(&report.result.as_str()) {
            return Err(AppError::field(
                "result",
                "one of accepted, cancelled, timeout, error",
            ));
        }
        if report
            .reference
            .as_deref()
            .is_some_and(|r| r.is_empty() || r.len() > 64)
        {
            return Err(AppError::field("reference", "1 to 64 characters"));
        }
        let operation = PinOperation {
            id: Uuid::now_v7(),
            device_id: device.id.0,
            ksn: report.ksn.to_uppercase(),
            result: report.result,
            reference: report.reference,
            at: now_millis(),
        };
        self.repo.insert_pin_operation(&operation).await?;
        metrics::counter!("pinpad_operations_total", "result" => operation.result.clone())
            .increment(1);
        Ok(operation)
    }

    /// PIN-pad operations, newest first, with the total count.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn pin_operations(
        &self,
        device: Option<DeviceId>,
        limit: i64,
    ) -> AppResult<(Vec<PinOperation>, i64)> {
        self.repo.pin_operations(device, limit).await
    }
}

fn device_not_active() -> AppError {
    AppError::Conflict {
        code: "device_not_active",
        message: "only ACTIVE devices transact",
    }
}

/// A CSPRNG from the operating system, for PIN block fill digits.
struct OsRandom;

impl payment_crypto::RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        if getrandom::fill(buf).is_err() {
            // No entropy source is an unrecoverable platform failure; never fall back to
            // predictable fill.
            panic!("the operating system's random source failed");
        }
    }
}
