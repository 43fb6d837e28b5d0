//! Transactions and what hangs off them: refund/void/reversal events and attempts, the DUKPT
//! counter high-water mark per key set, idempotency records with their leases and PIN-pad
//! operations.
//!
//! Every state change is a compare-and-set in one statement (`WHERE state = ...`, refund
//! arithmetic in the `UPDATE`), so concurrent requests and several instances never refund
//! more than was captured, take over one idempotency key twice or move a KSN backwards.
//! Follow-ups reserve their amount (`reserved_minor`, with a `follow_up_attempts` row) before
//! the processor is called, and settle or release it after, so no processor call goes
//! unrecorded.

use crate::infra::db::{Database, WriteQueue};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use super::corrupt;
use crate::domain::{DeviceId, MerchantId, UnixMillis};
use crate::error::AppResult;
use crate::infra::db::is_unique_violation;

/// Grouped statistics for one column (a literal): one static statement per grouping.
macro_rules! stats_sql {
    ($column:literal) => {
        concat!(
            "SELECT ",
            $column,
            " AS grp, currency, COUNT(*) AS n, \
             CAST(COALESCE(SUM(approved), 0) AS BIGINT) AS approved_n, \
             CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS volume, \
             CAST(COALESCE(SUM(approved * amount_minor), 0) AS BIGINT) AS approved_volume \
             FROM transactions WHERE created_at >= $1 AND created_at < $2 \
             GROUP BY ",
            $column,
            ", currency ORDER BY ",
            $column,
            ", currency"
        )
    };
}

/// Lifecycle of a transaction: `PENDING → APPROVED | DECLINED | FAILED`, then from
/// `APPROVED` to `VOIDED | REFUNDED | REVERSED` (partial refunds keep `APPROVED` and grow
/// `refunded_minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TransactionState {
    /// Sent to the processor, no answer yet.
    Pending,
    /// Approved by the issuer.
    Approved,
    /// Declined by the issuer.
    Declined,
    /// No answer (timeout) or an error; automatically reversed.
    Failed,
    /// Cancelled before settlement.
    Voided,
    /// Fully refunded.
    Refunded,
    /// Reversed after approval.
    Reversed,
}

impl TransactionState {
    /// Database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Declined => "DECLINED",
            Self::Failed => "FAILED",
            Self::Voided => "VOIDED",
            Self::Refunded => "REFUNDED",
            Self::Reversed => "REVERSED",
        }
    }
}

impl std::str::FromStr for TransactionState {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        Ok(match text {
            "PENDING" => Self::Pending,
            "APPROVED" => Self::Approved,
            "DECLINED" => Self::Declined,
            "FAILED" => Self::Failed,
            "VOIDED" => Self::Voided,
            "REFUNDED" => Self::Refunded,
            "REVERSED" => Self::Reversed,
            _ => return Err(()),
        })
    }
}

/// A transaction as stored: cardholder data only masked and fingerprinted.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRecord {
    /// Id (UUID v7, so ids sort by creation).
    pub id: Uuid,
    /// Device.
    pub device_id: DeviceId,
    /// Merchant of the device.
    pub merchant_id: MerchantId,
    /// The consumed Transaction Token.
    pub token_id: Uuid,
    /// DUKPT key set.
    pub key_set_id: Uuid,
    /// KSN, hex.
    pub ksn: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// ISO 4217 alpha code.
    pub currency: String,
    /// State.
    pub state: TransactionState,
    /// Whether the issuer approved (stays true after a refund or void).
    pub approved: bool,
    /// Card scheme (`visa`, `mastercard`, ...).
    pub scheme: String,
    /// First six and last four.
    pub pan_masked: String,
    /// Last four digits.
    pub pan_last4: String,
    /// HMAC-SHA256 of the PAN under the server's fingerprint key, hex.
    pub pan_fingerprint: String,
    /// An online PIN was sent.
    pub online_pin: bool,
    /// Processor connection.
    pub processor: String,
    /// ISO 8583 DE 39.
    pub response_code: Option<String>,
    /// Issuer's authorisation code.
    pub authorisation_code: Option<String>,
    /// Stable code of the decline or failure.
    pub decline_reason: Option<String>,
    /// ARPC, hex.
    pub arpc: Option<String>,
    /// Refunded so far, minor units.
    pub refunded_minor: i64,
    /// Held by follow-ups sent to the processor and not settled yet, minor units.
    pub reserved_minor: i64,
    /// The processor's reference of an approval (follow-ups name it).
    pub processor_reference: Option<String>,
    /// Why it was reversed (automatic reversals: `processor_timeout`).
    pub reversal_reason: Option<String>,
    /// When the reversal was acknowledged.
    pub reversed_at: Option<UnixMillis>,
    /// Location JSON, if the device sent one.
    pub location: Option<String>,
    /// Client address of the request.
    pub client_addr: Option<String>,
    /// When the processor answered.
    pub decided_at: Option<UnixMillis>,
    /// Created.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// The processor's answer recorded on a `PENDING` transaction.
#[derive(Debug, Clone)]
pub struct Decision {
    /// `APPROVED`, `DECLINED` or `FAILED`.
    pub state: TransactionState,
    /// DE 39.
    pub response_code: Option<String>,
    /// Authorisation code.
    pub authorisation_code: Option<String>,
    /// Decline or failure code.
    pub decline_reason: Option<String>,
    /// ARPC hex.
    pub arpc: Option<String>,
    /// The processor's reference of an approval.
    pub processor_reference: Option<String>,
    /// When.
    pub at: UnixMillis,
}

impl TransactionRecord {
    /// The record as [`TransactionRepository::decide`] leaves it when it returns true, so a
    /// sale can answer without reading its row back.
    #[must_use]
    pub fn decided(mut self, decision: &Decision) -> Self {
        self.state = decision.state;
        self.approved = decision.state == TransactionState::Approved;
        self.response_code.clone_from(&decision.response_code);
        self.authorisation_code
            .clone_from(&decision.authorisation_code);
        self.decline_reason.clone_from(&decision.decline_reason);
        self.arpc.clone_from(&decision.arpc);
        self.processor_reference
            .clone_from(&decision.processor_reference);
        self.decided_at = Some(decision.at);
        self.updated_at = decision.at;
        self
    }
}

/// A refund, void or reversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransactionEvent {
    /// `refund`, `void` or `reversal`.
    pub kind: String,
    /// Amount concerned, minor units.
    pub amount_minor: i64,
    /// Processor's DE 39, if it answered.
    pub response_code: Option<String>,
    /// Who (a person, `device:<id>` or `system`).
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// When (Unix ms).
    pub at: UnixMillis,
}

/// Filters for listing and exporting transactions; every field optional.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    /// Created at or after.
    pub from: Option<UnixMillis>,
    /// Created before.
    pub to: Option<UnixMillis>,
    /// Device.
    pub device_id: Option<DeviceId>,
    /// Merchant.
    pub merchant_id: Option<MerchantId>,
    /// State.
    pub state: Option<TransactionState>,
    /// Smallest amount.
    pub min_amount: Option<i64>,
    /// Largest amount.
    pub max_amount: Option<i64>,
    /// Scheme.
    pub scheme: Option<String>,
    /// Last four digits.
    pub last4: Option<String>,
    /// PAN fingerprint (search by full PAN without storing it).
    pub pan_fingerprint: Option<String>,
    /// Keyset cursor `(created_at, id)`.
    pub after: Option<(UnixMillis, Uuid)>,
    /// Page size.
    pub limit: i64,
    /// Newest first (the cursor then pages backwards in time); oldest first otherwise.
    pub newest_first: bool,
}

/// What statistics are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatsGroup {
    /// Card scheme.
    Scheme,
    /// Transaction state.
    State,
    /// Merchant.
    Merchant,
    /// Device.
    Device,
}

/// One group of the statistics.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatsRow {
    /// Group key (scheme, state, merchant id or device id).
    pub key: String,
    /// Currency (volumes are never summed across currencies).
    pub currency: String,
    /// Transactions.
    pub count: i64,
    /// Issuer approvals.
    pub approved: i64,
    /// Sum of amounts, minor units.
    pub volume_minor: i64,
    /// Sum of approved amounts, minor units.
    pub approved_volume_minor: i64,
    /// `approved / count` (0 when empty).
    pub approval_rate: f64,
}

/// The outcome of moving a key set's DUKPT counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterAdvance {
    /// The counter was above the last one and is now the high-water mark.
    Advanced,
    /// Equal to the last counter: replay.
    Replay,
    /// Below the last counter: rollback.
    Rollback {
        /// The high-water mark.
        last: i64,
    },
}

/// The state of an idempotency key after trying to claim it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// This request owns the key now.
    Claimed,
    /// This request took over an unanswered key whose lease had expired (its first request's
    /// worker died); `resource_id` is what that request had created, if anything.
    TakenOver {
        /// The first request's resource (a sale's transaction id).
        resource_id: Option<String>,
    },
    /// Another request claimed it first.
    Existing {
        /// Its body hash.
        request_hash: String,
        /// Its answer, once finished: status and JSON body.
        answer: Option<(u16, String)>,
    },
}

/// The lease of a claimed idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyLease {
    /// Random id of the claiming request: completion, release and resources need it.
    pub owner: String,
    /// Until when (Unix ms) no other request may take the key over.
    pub expires_at: UnixMillis,
}

/// Which follow-up an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUpKind {
    /// Refund of part or all of the captured amount.
    Refund,
    /// Cancellation before settlement.
    Void,
    /// Reversal of the authorisation.
    Reversal,
}

impl FollowUpKind {
    /// Database spelling, also the event kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::Void => "void",
            Self::Reversal => "reversal",
        }
    }
}

/// Where a follow-up attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptState {
    /// Amount reserved; the processor's answer is not recorded yet.
    Reserved,
    /// The processor accepted it; recorded on the transaction.
    Settled,
    /// The processor declined it; the reservation was given back.
    Released,
}

impl std::str::FromStr for AttemptState {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        Ok(match text {
            "RESERVED" => Self::Reserved,
            "SETTLED" => Self::Settled,
            "RELEASED" => Self::Released,
            _ => return Err(()),
        })
    }
}

/// A refund, void or reversal sent (or about to be sent) to the processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpAttempt {
    /// Id; the processor sees it as our reference of the follow-up.
    pub id: Uuid,
    /// Transaction.
    pub transaction_id: Uuid,
    /// Kind.
    pub kind: FollowUpKind,
    /// Amount reserved, minor units.
    pub amount_minor: i64,
    /// State.
    pub state: AttemptState,
}

/// The outcome of reserving a follow-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved now.
    Reserved(FollowUpAttempt),
    /// This idempotency key already has an attempt (a retry after a lost answer).
    Existing(FollowUpAttempt),
    /// The transaction's state or amounts do not allow it now.
    Refused,
}

/// A PIN-pad operation (never PIN data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PinOperation {
    /// Id.
    pub id: Uuid,
    /// Device.
    pub device_id: Uuid,
    /// KSN of the PIN encryption, hex.
    pub ksn: String,
    /// `accepted` or the stable code of the refusal.
    pub result: String,
    /// The caller's reference of the transaction run elsewhere.
    pub reference: Option<String>,
    /// When (Unix ms).
    pub at: UnixMillis,
}

/// Storage of transactions and their satellites.
#[async_trait]
pub trait TransactionRepository: Send + Sync + std::fmt::Debug {
    /// Moves the key set's counter to `counter` if it is above the last one.
    async fn advance_counter(
        &self,
        key_set_id: Uuid,
        device_id: DeviceId,
        counter: i64,
        at: UnixMillis,
    ) -> AppResult<CounterAdvance>;
    /// Claims `(scope, key)` for a request with `request_hash` under `lease`, or takes over
    /// an unanswered claim of the same request whose lease expired before `at`.
    async fn claim_idempotency(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        lease: &IdempotencyLease,
        at: UnixMillis,
    ) -> AppResult<IdempotencyClaim>;
    /// Stores the first answer of a key this lease still holds; false when it lost the key.
    async fn complete_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        status: u16,
        body: &str,
        at: UnixMillis,
    ) -> AppResult<bool>;
    /// Releases a claim whose request failed internally, so a retry can run.
    async fn release_idempotency(&self, scope: &str, key: &str, owner: &str) -> AppResult<()>;
    /// Inserts a `PENDING` transaction.
    async fn insert(&self, record: &TransactionRecord) -> AppResult<()>;
    /// Records the processor's decision if the transaction is still `PENDING`.
    async fn decide(&self, id: Uuid, decision: &Decision) -> AppResult<bool>;
    /// Records an automatic reversal on a failed transaction; `reversed_at` is set only when
    /// the processor acknowledged it.
    async fn mark_reversed(
        &self,
        id: Uuid,
        reason: &str,
        acknowledged: bool,
        event: &TransactionEvent,
    ) -> AppResult<()>;
    /// Reserves a follow-up for idempotency `(scope, key)`: a refund while the transaction is
    /// `APPROVED` and refunded + reserved + amount stays within the captured amount; a void
    /// or reversal (amount = captured) while it is `APPROVED` with nothing refunded or
    /// reserved. An attempt already recorded for the key is returned instead.
    async fn reserve_follow_up(
        &self,
        attempt: &FollowUpAttempt,
        scope: &str,
        key: &str,
        at: UnixMillis,
    ) -> AppResult<Reservation>;
    /// Records an accepted follow-up: a refund moves its reservation to `refunded_minor`
    /// (`REFUNDED` when it reaches the captured amount); a void or reversal moves the
    /// transaction to `VOIDED` / `REVERSED` with `reason`. False if it was no longer reserved.
    async fn settle_follow_up(
        &self,
        attempt: &FollowUpAttempt,
        reason: Option<&str>,
        event: &TransactionEvent,
    ) -> AppResult<bool>;
    /// Gives a declined follow-up's reservation back.
    async fn release_follow_up(
        &self,
        attempt: &FollowUpAttempt,
        response_code: Option<&str>,
        at: UnixMillis,
    ) -> AppResult<()>;
    /// By id.
    async fn find(&self, id: Uuid) -> AppResult<Option<TransactionRecord>>;
    /// The sale a device paid with a Transaction Token (one at most: tokens are single-use).
    async fn find_by_token(
        &self,
        device: DeviceId,
        token_id: Uuid,
    ) -> AppResult<Option<TransactionRecord>>;
    /// Refunds, voids and reversals, oldest first.
    async fn events(&self, id: Uuid) -> AppResult<Vec<TransactionEvent>>;
    /// A page, oldest first (newest first with `filter.newest_first`).
    async fn list(&self, filter: &TransactionFilter) -> AppResult<Vec<TransactionRecord>>;
    /// Grouped statistics over `[from, to)`.
    async fn stats(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        group: StatsGroup,
    ) -> AppResult<Vec<StatsRow>>;
    /// Logs a PIN-pad operation.
    async fn insert_pin_operation(&self, operation: &PinOperation) -> AppResult<()>;
    /// PIN-pad operations of a device (or all), newest first, and their total count.
    async fn pin_operations(
        &self,
        device_id: Option<DeviceId>,
        limit: i64,
    ) -> AppResult<(Vec<PinOperation>, i64)>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlTransactionRepository {
    reader: AnyPool,
    writer: AnyPool,
    writes: WriteQueue,
}

impl SqlTransactionRepository {
    /// Reads through the database's reader pool; the sale path writes through its group
    /// commit queue, the rest through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
            writes: db.writes.clone(),
        }
    }
}

/// What a claim's `INSERT` found.
enum ClaimRow {
    Inserted,
    /// The key exists: its row, unless it was released meanwhile.
    Existing(Option<AnyRow>),
}

/// One transaction row with every column, under the given `WHERE` clause.
macro_rules! concat_find {
    ($where:literal) => {
        concat!(
            "SELECT id, device_id, merchant_id, token_id, key_set_id, ksn, amount_minor, \
             currency, state, approved, scheme, pan_masked, pan_last4, pan_fingerprint, \
             online_pin, processor, response_code, authorisation_code, decline_reason, arpc, \
             refunded_minor, reserved_minor, processor_reference, reversal_reason, reversed_at, \
             location, client_addr, decided_at, created_at, updated_at FROM transactions ",
            $where
        )
    };
}

fn uuid_col(row: &AnyRow, name: &'static str) -> AppResult<Uuid> {
    let text: String = row.try_get(name)?;
    text.parse().map_err(|_| corrupt(name))
}

fn to_record(row: &AnyRow) -> AppResult<TransactionRecord> {
    let state: String = row.try_get("state")?;
    let approved: i64 = row.try_get("approved")?;
    let online_pin: i64 = row.try_get("online_pin")?;
    Ok(TransactionRecord {
        id: uuid_col(row, "id")?,
        device_id: DeviceId(uuid_col(row, "device_id")?),
        merchant_id: MerchantId(uuid_col(row, "merchant_id")?),
        token_id: uuid_col(row, "token_id")?,
        key_set_id: uuid_col(row, "key_set_id")?,
        ksn: row.try_get("ksn")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        state: state.parse().map_err(|()| corrupt("transactions.state"))?,
        approved: approved != 0,
        scheme: row.try_get("scheme")?,
        pan_masked: row.try_get("pan_masked")?,
        pan_last4: row.try_get("pan_last4")?,
        pan_fingerprint: row.try_get("pan_fingerprint")?,
        online_pin: online_pin != 0,
        processor: row.try_get("processor")?,
        response_code: row.try_get("response_code")?,
        authorisation_code: row.try_get("authorisation_code")?,
        decline_reason: row.try_get("decline_reason")?,
        arpc: row.try_get("arpc")?,
        refunded_minor: row.try_get("refunded_minor")?,
        reserved_minor: row.try_get("reserved_minor")?,
        processor_reference: row.try_get("processor_reference")?,
        reversal_reason: row.try_get("reversal_reason")?,
        reversed_at: row.try_get("reversed_at")?,
        location: row.try_get("location")?,
        client_addr: row.try_get("client_addr")?,
        decided_at: row.try_get("decided_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: Uuid,
    event: &TransactionEvent,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO transaction_events (id, transaction_id, kind, amount_minor, response_code, \
         actor, reason, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(id.to_string())
    .bind(event.kind.clone())
    .bind(event.amount_minor)
    .bind(event.response_code.clone())
    .bind(event.actor.clone())
    .bind(event.reason.clone())
    .bind(event.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a sale's `PENDING` row (one statement).
async fn insert_record(
    conn: &mut sqlx::AnyConnection,
    r: &TransactionRecord,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    sqlx::query(
        "INSERT INTO transactions (id, device_id, merchant_id, token_id, key_set_id, ksn, \
             amount_minor, currency, state, approved, scheme, pan_masked, pan_last4, \
             pan_fingerprint, online_pin, processor, refunded_minor, location, client_addr, \
             created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $20)",
    )
    .bind(r.id.to_string())
    .bind(r.device_id.to_string())
    .bind(r.merchant_id.to_string())
    .bind(r.token_id.to_string())
    .bind(r.key_set_id.to_string())
    .bind(r.ksn.as_str())
    .bind(r.amount_minor)
    .bind(r.currency.as_str())
    .bind(r.state.as_str())
    .bind(i64::from(r.approved))
    .bind(r.scheme.as_str())
    .bind(r.pan_masked.as_str())
    .bind(r.pan_last4.as_str())
    .bind(r.pan_fingerprint.as_str())
    .bind(i64::from(r.online_pin))
    .bind(r.processor.as_str())
    .bind(r.refunded_minor)
    .bind(r.location.as_deref())
    .bind(r.client_addr.as_deref())
    .bind(r.created_at)
    .execute(conn)
    .await
}

/// Records the processor's decision on a `PENDING` sale (one statement; no row when it was
/// decided already).
async fn decide_record(
    conn: &mut sqlx::AnyConnection,
    id: Uuid,
    d: &Decision,
) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    sqlx::query(
        "UPDATE transactions SET state = $1, approved = $2, response_code = $3, \
             authorisation_code = $4, decline_reason = $5, arpc = $6, decided_at = $7, \
             updated_at = $7, processor_reference = $9 WHERE id = $8 AND state = 'PENDING'",
    )
    .bind(d.state.as_str())
    .bind(i64::from(d.state == TransactionState::Approved))
    .bind(d.response_code.as_deref())
    .bind(d.authorisation_code.as_deref())
    .bind(d.decline_reason.as_deref())
    .bind(d.arpc.as_deref())
    .bind(d.at)
    .bind(id.to_string())
    .bind(d.processor_reference.as_deref())
    .execute(conn)
    .await
}

#[async_trait]
impl TransactionRepository for SqlTransactionRepository {
    async fn advance_counter(
        &self,
        key_set_id: Uuid,
        device_id: DeviceId,
        counter: i64,
        at: UnixMillis,
    ) -> AppResult<CounterAdvance> {
        // One statement: insert the first counter, or raise the mark only when higher.
        let moved = self
            .writes
            .run(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO dukpt_counters (key_set_id, device_id, last_counter, \
                         created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
                         ON CONFLICT (key_set_id) DO UPDATE SET \
                         last_counter = excluded.last_counter, updated_at = excluded.updated_at \
                         WHERE dukpt_counters.last_counter < excluded.last_counter",
                    )
                    .bind(key_set_id.to_string())
                    .bind(device_id.to_string())
                    .bind(counter)
                    .bind(at)
                    .execute(&mut *conn)
                    .await
                })
            })
            .await?
            .rows_affected();
        if moved == 1 {
            return Ok(CounterAdvance::Advanced);
        }
        let last: i64 =
            sqlx::query_scalar("SELECT last_counter FROM dukpt_counters WHERE key_set_id = $1")
                .bind(key_set_id.to_string())
                .fetch_one(&self.reader)
                .await?;
        Ok(if last == counter {
            CounterAdvance::Replay
        } else {
            CounterAdvance::Rollback { last }
        })
    }

    async fn claim_idempotency(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        lease: &IdempotencyLease,
        at: UnixMillis,
    ) -> AppResult<IdempotencyClaim> {
        let values = (
            scope.to_owned(),
            key.to_owned(),
            request_hash.to_owned(),
            lease.owner.clone(),
            lease.expires_at,
        );
        // The row of a key held by a concurrent request may be in the same batch, not yet
        // committed: it is read on the writer's connection, where it is visible.
        let found = self
            .writes
            .run(move |conn| {
                Box::pin(async move {
                    let (scope, key, request_hash, owner, expires_at) = values;
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, \
                         lease_owner, lease_expires_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $6)",
                    )
                    .bind(&scope)
                    .bind(&key)
                    .bind(request_hash)
                    .bind(owner)
                    .bind(expires_at)
                    .bind(at)
                    .execute(&mut *conn)
                    .await;
                    match inserted {
                        Ok(_) => Ok(ClaimRow::Inserted),
                        Err(error) if is_unique_violation(&error) => sqlx::query(
                            "SELECT request_hash, status, response, lease_owner, \
                             lease_expires_at, resource_id FROM idempotency_keys \
                             WHERE scope = $1 AND idem_key = $2",
                        )
                        .bind(scope)
                        .bind(key)
                        .fetch_optional(&mut *conn)
                        .await
                        .map(ClaimRow::Existing),
                        Err(error) => Err(error),
                    }
                })
            })
            .await?;
        let ClaimRow::Existing(row) = found else {
            return Ok(IdempotencyClaim::Claimed);
        };
        let Some(row) = row else {
            // Released between the two statements: the caller retries the claim.
            return Ok(IdempotencyClaim::Existing {
                request_hash: request_hash.to_owned(),
                answer: None,
            });
        };
        let first_hash: String = row.try_get("request_hash")?;
        let status: Option<i64> = row.try_get("status")?;
        let response: Option<String> = row.try_get("response")?;
        let answer = match (status, response) {
            (Some(status), Some(body)) => Some((
                u16::try_from(status).map_err(|_| corrupt("idempotency_keys.status"))?,
                body,
            )),
            _ => None,
        };
        let expires_at: Option<i64> = row.try_get("lease_expires_at")?;
        // Rows from before leases existed have none: their worker is long gone.
        let expired = expires_at.is_none_or(|expires_at| expires_at < at);
        if answer.is_none() && first_hash == request_hash && expired {
            let seen_owner: Option<String> = row.try_get("lease_owner")?;
            // Conditional on the owner this request saw: of several retries that saw the same
            // expired lease, exactly one moves it.
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET lease_owner = $1, lease_expires_at = $2, \
                 updated_at = $3 WHERE scope = $4 AND idem_key = $5 AND status IS NULL \
                 AND request_hash = $6 AND COALESCE(lease_owner, '') = $7 \
                 AND COALESCE(lease_expires_at, 0) < $3",
            )
            .bind(lease.owner.as_str())
            .bind(lease.expires_at)
            .bind(at)
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(seen_owner.unwrap_or_default())
            .execute(&self.writer)
            .await?
            .rows_affected();
            if taken == 1 {
                return Ok(IdempotencyClaim::TakenOver {
                    resource_id: row.try_get("resource_id")?,
                });
            }
        }
        Ok(IdempotencyClaim::Existing {
            request_hash: first_hash,
            answer,
        })
    }

    async fn complete_idempotency(
        &self,
        scope: &str,
        key: &str,
        owner: &str,
        status: u16,
        body: &str,
        at: UnixMillis,
    ) -> AppResult<bool> {
        let values = (
            body.to_owned(),
            scope.to_owned(),
            key.to_owned(),
            owner.to_owned(),
        );
        let n = self
            .writes
            .run(move |conn| {
                Box::pin(async move {
                    let (body, scope, key, owner) = values;
                    sqlx::query(
                        "UPDATE idempotency_keys SET status = $1, response = $2, \
                         updated_at = $3, lease_expires_at = NULL WHERE scope = $4 \
                         AND idem_key = $5 AND lease_owner = $6 AND status IS NULL",
                    )
                    .bind(i64::from(status))
                    .bind(body)
                    .bind(at)
                    .bind(scope)
                    .bind(key)
                    .bind(owner)
                    .execute(&mut *conn)
                    .await
                })
            })
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn release_idempotency(&self, scope: &str, key: &str, owner: &str) -> AppResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND status IS NULL \
             AND lease_owner = $3",
        )
        .bind(scope)
        .bind(key)
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn insert(&self, r: &TransactionRecord) -> AppResult<()> {
        let r = r.clone();
        self.writes
            .run(move |conn| Box::pin(async move { insert_record(conn, &r).await }))
            .await?;
        Ok(())
    }

    async fn decide(&self, id: Uuid, d: &Decision) -> AppResult<bool> {
        let d = d.clone();
        let n = self
            .writes
            .run(move |conn| Box::pin(async move { decide_record(conn, id, &d).await }))
            .await?
            .rows_affected();
        Ok(n == 1)
    }
    async fn mark_reversed(
        &self,
        id: Uuid,
        reason: &str,
        acknowledged: bool,
        event: &TransactionEvent,
    ) -> AppResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "UPDATE transactions SET reversal_reason = $1, reversed_at = $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(reason)
        .bind(acknowledged.then_some(event.at))
        .bind(event.at)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, id, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reserve_follow_up(
        &self,
        attempt: &FollowUpAttempt,
        scope: &str,
        key: &str,
        at: UnixMillis,
    ) -> AppResult<Reservation> {
        // Read before the transaction: the idempotency lease serialises requests of one key,
        // and SQLite transactions must start with their write (a read lock upgraded later
        // deadlocks against a concurrent writer).
        let existing = sqlx::query(
            "SELECT id, transaction_id, kind, amount_minor, state FROM follow_up_attempts \
             WHERE idem_scope = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.reader)
        .await?;
        if let Some(row) = existing {
            return Ok(Reservation::Existing(to_attempt(&row)?));
        }
        let mut tx = self.writer.begin().await?;
        let sql = match attempt.kind {
            FollowUpKind::Refund => RESERVE_REFUND_SQL,
            FollowUpKind::Void | FollowUpKind::Reversal => RESERVE_CANCEL_SQL,
        };
        let n = sqlx::query(sql)
            .bind(attempt.amount_minor)
            .bind(at)
            .bind(attempt.transaction_id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(Reservation::Refused);
        }
        sqlx::query(
            "INSERT INTO follow_up_attempts (id, transaction_id, kind, idem_scope, idem_key, \
             amount_minor, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'RESERVED', $7, $7)",
        )
        .bind(attempt.id.to_string())
        .bind(attempt.transaction_id.to_string())
        .bind(attempt.kind.as_str())
        .bind(scope)
        .bind(key)
        .bind(attempt.amount_minor)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reservation::Reserved(FollowUpAttempt {
            state: AttemptState::Reserved,
            ..attempt.clone()
        }))
    }

    async fn settle_follow_up(
        &self,
        attempt: &FollowUpAttempt,
        reason: Option<&str>,
        event: &TransactionEvent,
    ) -> AppResult<bool> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query(
            "UPDATE follow_up_attempts SET state = 'SETTLED', response_code = $1, updated_at = $2 \
             WHERE id = $3 AND state = 'RESERVED'",
        )
        .bind(event.response_code.clone())
        .bind(event.at)
        .bind(attempt.id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let query = match attempt.kind {
            // The right-hand sides read the row as it was: the CASE sees the old total.
            FollowUpKind::Refund => sqlx::query(
                "UPDATE transactions SET reserved_minor = reserved_minor - $1, \
                 refunded_minor = refunded_minor + $1, \
                 state = CASE WHEN refunded_minor + $1 = amount_minor THEN 'REFUNDED' ELSE state END, \
                 updated_at = $2 WHERE id = $3 AND state = 'APPROVED'",
            )
            .bind(attempt.amount_minor)
            .bind(event.at)
            .bind(attempt.transaction_id.to_string()),
            FollowUpKind::Void | FollowUpKind::Reversal => sqlx::query(
                "UPDATE transactions SET reserved_minor = reserved_minor - $1, state = $2, \
                 reversal_reason = $3, reversed_at = $4, updated_at = $4 \
                 WHERE id = $5 AND state = 'APPROVED'",
            )
            .bind(attempt.amount_minor)
            .bind(if attempt.kind == FollowUpKind::Void {
                TransactionState::Voided.as_str()
            } else {
                TransactionState::Reversed.as_str()
            })
            .bind(reason)
            .bind(event.at)
            .bind(attempt.transaction_id.to_string()),
        };
        let n = query.execute(&mut *tx).await?.rows_affected();
        if n != 1 {
            // The reservation kept the transaction APPROVED; anything else is corruption.
            tx.rollback().await?;
            return Err(corrupt("transactions.reserved_minor"));
        }
        insert_event(&mut tx, attempt.transaction_id, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn release_follow_up(
        &self,
        attempt: &FollowUpAttempt,
        response_code: Option<&str>,
        at: UnixMillis,
    ) -> AppResult<()> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query(
            "UPDATE follow_up_attempts SET state = 'RELEASED', response_code = $1, \
             updated_at = $2 WHERE id = $3 AND state = 'RESERVED'",
        )
        .bind(response_code)
        .bind(at)
        .bind(attempt.id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 1 {
            sqlx::query(
                "UPDATE transactions SET reserved_minor = reserved_minor - $1, updated_at = $2 \
                 WHERE id = $3",
            )
            .bind(attempt.amount_minor)
            .bind(at)
            .bind(attempt.transaction_id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find(&self, id: Uuid) -> AppResult<Option<TransactionRecord>> {
        sqlx::query(concat_find!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(to_record)
            .transpose()
    }

    async fn find_by_token(
        &self,
        device: DeviceId,
        token_id: Uuid,
    ) -> AppResult<Option<TransactionRecord>> {
        sqlx::query(concat_find!("WHERE token_id = $1 AND device_id = $2"))
            .bind(token_id.to_string())
            .bind(device.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(to_record)
            .transpose()
    }

    async fn events(&self, id: Uuid) -> AppResult<Vec<TransactionEvent>> {
        sqlx::query(
            "SELECT kind, amount_minor, response_code, actor, reason, created_at \
             FROM transaction_events WHERE transaction_id = $1 ORDER BY created_at, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(TransactionEvent {
                kind: row.try_get("kind")?,
                amount_minor: row.try_get("amount_minor")?,
                response_code: row.try_get("response_code")?,
                actor: row.try_get("actor")?,
                reason: row.try_get("reason")?,
                at: row.try_get("created_at")?,
            })
        })
        .collect()
    }

    async fn list(&self, f: &TransactionFilter) -> AppResult<Vec<TransactionRecord>> {
        let (after_created, after_id) = match f.after {
            Some((created_at, id)) => (Some(created_at), Some(id.to_string())),
            None => (None, None),
        };
        let sql = if f.newest_first {
            LIST_NEWEST_SQL
        } else {
            LIST_SQL
        };
        sqlx::query(sql)
            .bind(f.from)
            .bind(f.to)
            .bind(f.device_id.map(|id| id.to_string()))
            .bind(f.merchant_id.map(|id| id.to_string()))
            .bind(f.state.map(TransactionState::as_str))
            .bind(f.min_amount)
            .bind(f.max_amount)
            .bind(f.scheme.clone())
            .bind(f.last4.clone())
            .bind(f.pan_fingerprint.clone())
            .bind(after_created)
            .bind(after_id)
            .bind(f.limit)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(to_record)
            .collect()
    }

    async fn stats(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        group: StatsGroup,
    ) -> AppResult<Vec<StatsRow>> {
        // One static statement per grouping column: nothing is formatted into SQL.
        let sql = match group {
            StatsGroup::Scheme => stats_sql!("scheme"),
            StatsGroup::State => stats_sql!("state"),
            StatsGroup::Merchant => stats_sql!("merchant_id"),
            StatsGroup::Device => stats_sql!("device_id"),
        };
        sqlx::query(sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| {
                let count: i64 = row.try_get("n")?;
                let approved: i64 = row.try_get("approved_n")?;
                Ok(StatsRow {
                    key: row.try_get("grp")?,
                    currency: row.try_get("currency")?,
                    count,
                    approved,
                    volume_minor: row.try_get("volume")?,
                    approved_volume_minor: row.try_get("approved_volume")?,
                    approval_rate: if count == 0 {
                        0.0
                    } else {
                        approved as f64 / count as f64
                    },
                })
            })
            .collect()
    }

    async fn insert_pin_operation(&self, op: &PinOperation) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO pin_operations (id, device_id, ksn, result, reference, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(op.id.to_string())
        .bind(op.device_id.to_string())
        .bind(op.ksn.clone())
        .bind(op.result.clone())
        .bind(op.reference.clone())
        .bind(op.at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn pin_operations(
        &self,
        device_id: Option<DeviceId>,
        limit: i64,
    ) -> AppResult<(Vec<PinOperation>, i64)> {
        let device = device_id.map(|id| id.to_string());
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pin_operations WHERE ($1 IS NULL OR device_id = $1)",
        )
        .bind(device.clone())
        .fetch_one(&self.reader)
        .await?;
        let operations = sqlx::query(
            "SELECT id, device_id, ksn, result, reference, created_at FROM pin_operations \
             WHERE ($1 IS NULL OR device_id = $1) ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(device)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(PinOperation {
                id: uuid_col(row, "id")?,
                device_id: uuid_col(row, "device_id")?,
                ksn: row.try_get("ksn")?,
                result: row.try_get("result")?,
                reference: row.try_get("reference")?,
                at: row.try_get("created_at")?,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
        Ok((operations, total))
    }
}

fn to_attempt(row: &AnyRow) -> AppResult<FollowUpAttempt> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    Ok(FollowUpAttempt {
        id: uuid_col(row, "id")?,
        transaction_id: uuid_col(row, "transaction_id")?,
        kind: match kind.as_str() {
            "refund" => FollowUpKind::Refund,
            "void" => FollowUpKind::Void,
            "reversal" => FollowUpKind::Reversal,
            _ => return Err(corrupt("follow_up_attempts.kind")),
        },
        amount_minor: row.try_get("amount_minor")?,
        state: state
            .parse()
            .map_err(|()| corrupt("follow_up_attempts.state"))?,
    })
}

/// A refund fits while refunded + reserved + amount stays within the captured amount.
const RESERVE_REFUND_SQL: &str = "UPDATE transactions SET reserved_minor = reserved_minor + $1, \
    updated_at = $2 WHERE id = $3 AND state = 'APPROVED' \
    AND refunded_minor + reserved_minor + $1 <= amount_minor";
/// A void or reversal takes the whole amount, and only while nothing else holds any of it.
const RESERVE_CANCEL_SQL: &str = "UPDATE transactions SET reserved_minor = reserved_minor + $1, \
    updated_at = $2 WHERE id = $3 AND state = 'APPROVED' AND refunded_minor = 0 \
    AND reserved_minor = 0 AND amount_minor = $1";

/// The list statement with its cursor condition and order (literals only).
macro_rules! list_sql {
    ($after:literal, $order:literal) => {
        concat!(
            "SELECT id, device_id, merchant_id, token_id, key_set_id, ksn, \
    amount_minor, currency, state, approved, scheme, pan_masked, pan_last4, pan_fingerprint, \
    online_pin, processor, response_code, authorisation_code, decline_reason, arpc, \
    refunded_minor, reserved_minor, processor_reference, reversal_reason, reversed_at, \
    location, client_addr, decided_at, created_at, updated_at FROM transactions \
    WHERE ($1 IS NULL OR created_at >= $1) \
      AND ($2 IS NULL OR created_at < $2) \
      AND ($3 IS NULL OR device_id = $3) \
      AND ($4 IS NULL OR merchant_id = $4) \
      AND ($5 IS NULL OR state = $5) \
      AND ($6 IS NULL OR amount_minor >= $6) \
      AND ($7 IS NULL OR amount_minor <= $7) \
      AND ($8 IS NULL OR scheme = $8) \
      AND ($9 IS NULL OR pan_last4 = $9) \
      AND ($10 IS NULL OR pan_fingerprint = $10) \
      AND ($11 IS NULL OR ",
            $after,
            ") ORDER BY ",
            $order,
            " LIMIT $13"
        )
    };
}

const LIST_SQL: &str = list_sql!(
    "created_at > $11 OR (created_at = $11 AND id > $12)",
    "created_at, id"
);
const LIST_NEWEST_SQL: &str = list_sql!(
    "created_at < $11 OR (created_at = $11 AND id < $12)",
    "created_at DESC, id DESC"
);
