//! Refunds, voids and reversals of an approved sale, asked for by a person, an integration or
//! the device that made the sale: each idempotent per transaction and key, reserved on the
//! transaction before the processor is called, settled (a transaction event) or released
//! after, and audited.
//!
//! Everything sent comes from the stored record (processor reference, authorisation code,
//! amounts), so any instance can follow up any sale. A processor that does not answer leaves
//! the reservation in place: the outcome is unknown, so the amount stays held and a retry
//! with the same key resends the same follow-up (same id) instead of reserving again.

use uuid::Uuid;

use super::card;
use super::idempotency::{self, Answer};
use super::processor::{FollowUpAnswer, FollowUpMessage, ProcessorError};
use super::{PaymentService, TransactionDetail, device_not_active};
use crate::domain::{Device, DeviceState, NewAuditRecord, Principal, now_millis};
use crate::error::{AppError, AppResult};
use crate::repository::transactions::{
    AttemptState, FollowUpAttempt, FollowUpKind, Reservation, TransactionEvent, TransactionRecord,
    TransactionState,
};
use crate::service::RequestContext;

/// Which follow-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Refund of `amount` minor units.
    Refund(u64),
    /// Cancellation before settlement.
    Void,
    /// Reversal of the authorisation.
    Reversal,
}

impl FollowUp {
    fn kind(self) -> FollowUpKind {
        match self {
            Self::Refund(_) => FollowUpKind::Refund,
            Self::Void => FollowUpKind::Void,
            Self::Reversal => FollowUpKind::Reversal,
        }
    }

    fn name(self) -> &'static str {
        self.kind().as_str()
    }
}

/// Who asks for a follow-up.
#[derive(Debug, Clone, Copy)]
pub enum Requester<'a> {
    /// A person or an integration; the API checked its role or scope.
    Principal(&'a Principal),
    /// A device: only its own sales, and only while `ACTIVE`.
    Device(&'a Device),
}

impl Requester<'_> {
    fn actor(&self) -> String {
        match self {
            Self::Principal(principal) => principal.actor(),
            Self::Device(device) => format!("device:{}", device.id),
        }
    }
}

fn transaction_not_found() -> AppError {
    AppError::Missing {
        code: "transaction_not_found",
        message: "no such transaction",
    }
}

impl PaymentService {
    /// Runs a refund, void or reversal once per `(transaction, kind, idempotency_key)`.
    ///
    /// # Errors
    /// As [`PaymentService::sale`]: only idempotency conflicts and server errors; refusals
    /// (`refund_exceeds_captured`, `transaction_not_refundable`, ...) are answers.
    #[allow(clippy::too_many_arguments)]
    pub async fn follow_up(
        &self,
        requester: Requester<'_>,
        transaction_id: Uuid,
        kind: FollowUp,
        reason: Option<String>,
        idempotency_key: &str,
        body: &[u8],
        ctx: &RequestContext,
    ) -> AppResult<Answer> {
        idempotency::check_key(idempotency_key)?;
        let scope = format!("{}:{transaction_id}", kind.name());
        idempotency::run(
            &self.repo,
            &scope,
            idempotency_key,
            &idempotency::body_hash(body),
            200,
            self.lease,
            |claim| {
                self.run_follow_up(
                    requester,
                    transaction_id,
                    kind,
                    reason,
                    (claim.scope, claim.key),
                    ctx,
                )
            },
        )
        .await
    }

    async fn run_follow_up(
        &self,
        requester: Requester<'_>,
        transaction_id: Uuid,
        kind: FollowUp,
        reason: Option<String>,
        (scope, key): (String, String),
        ctx: &RequestContext,
    ) -> AppResult<TransactionDetail> {
        if reason.as_deref().is_some_and(|r| r.len() > 500) {
            return Err(AppError::field("reason", "at most 500 characters"));
        }
        if let Requester::Device(device) = requester
            && device.state != DeviceState::Active
        {
            return Err(device_not_active());
        }
        let record = self
            .repo
            .find(transaction_id)
            .await?
            .ok_or_else(transaction_not_found)?;
        if let Requester::Device(device) = requester
            && record.device_id != device.id
        {
            // Another device's sale is not there for this one.
            return Err(transaction_not_found());
        }
        let amount = match kind {
            FollowUp::Refund(0) => return Err(AppError::field("amount_minor", "must be positive")),
            FollowUp::Refund(amount) => i64::try_from(amount).map_err(|_| exceeds_captured())?,
            FollowUp::Void | FollowUp::Reversal => record.amount_minor,
        };
        let (Some(reference), Some(authorisation_code)) = (
            record.processor_reference.clone(),
            record.authorisation_code.clone(),
        ) else {
            check_allowed(&record, kind)?;
            // Approved before processor references were stored.
            return Err(AppError::Conflict {
                code: "transaction_not_referenceable",
                message: "the sale has no processor reference to follow up",
            });
        };
        let currency_numeric = card::currency_numeric(&record.currency)
            .ok_or_else(|| AppError::Other(anyhow::anyhow!("stored currency unsupported")))?;

        let proposed = FollowUpAttempt {
            id: Uuid::now_v7(),
            transaction_id,
            kind: kind.kind(),
            amount_minor: amount,
            state: AttemptState::Reserved,
        };
        let attempt = match self
            .repo
            .reserve_follow_up(&proposed, &scope, &key, now_millis())
            .await?
        {
            Reservation::Reserved(attempt) => attempt,
            Reservation::Existing(attempt) => match attempt.state {
                // A retry after a lost answer: resend the same follow-up.
                AttemptState::Reserved => attempt,
                // Recorded before the first worker could answer.
                AttemptState::Settled => return self.get(transaction_id).await,
                AttemptState::Released => return Err(processor_declined()),
            },
            Reservation::Refused => {
                let current = self
                    .repo
                    .find(transaction_id)
                    .await?
                    .ok_or_else(transaction_not_found)?;
                check_allowed(&current, kind)?;
                return Err(AppError::Conflict {
                    code: "transaction_changed",
                    message: "the transaction changed concurrently; retry with a new key",
                });
            }
        };

        // The limit the processor checks: what was captured minus what is refunded now.
        let current = self
            .repo
            .find(transaction_id)
            .await?
            .ok_or_else(transaction_not_found)?;
        let to_u64 = |value: i64| u64::try_from(value).unwrap_or(0);
        let message = FollowUpMessage {
            transaction_id,
            follow_up_id: attempt.id,
            reference,
            authorisation_code,
            amount_minor: to_u64(attempt.amount_minor),
            original_amount_minor: to_u64(current.amount_minor),
            limit_minor: match kind {
                FollowUp::Refund(_) => to_u64(current.amount_minor - current.refunded_minor),
                FollowUp::Void | FollowUp::Reversal => to_u64(current.amount_minor),
            },
            currency_numeric,
        };
        let answer = match kind {
            FollowUp::Refund(_) => self.processor.refund(&message).await,
            FollowUp::Void | FollowUp::Reversal => self.processor.reverse(&message).await,
        };
        let FollowUpAnswer {
            accepted,
            response_code,
        } = match answer {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(code = error.code(), %transaction_id, "processor follow-up failed");
                if error == ProcessorError::Rejected {
                    // Never reached the processor: nothing to keep.
                    self.repo
                        .release_follow_up(&attempt, None, now_millis())
                        .await?;
                }
                // A timeout keeps the reservation: a retry with this key resends it.
                return Err(AppError::Unavailable);
            }
        };
        if !accepted {
            self.repo
                .release_follow_up(&attempt, Some(&response_code), now_millis())
                .await?;
            return Err(processor_declined());
        }
        let actor = requester.actor();
        let event = TransactionEvent {
            kind: kind.name().to_owned(),
            amount_minor: attempt.amount_minor,
            response_code: Some(response_code),
            actor: actor.clone(),
            reason: reason.clone(),
            at: now_millis(),
        };
        if !self
            .repo
            .settle_follow_up(&attempt, reason.as_deref(), &event)
            .await?
        {
            // Settled by a worker this one took the key over from.
            return self.get(transaction_id).await;
        }
        self.audit
            .append(NewAuditRecord {
                actor,
                action: format!("transaction.{}", kind.name()),
                target: Some(format!("transaction:{transaction_id}")),
                reason: Some(match kind {
                    FollowUp::Refund(amount) => format!(
                        "{amount} {}{}",
                        record.currency,
                        reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                    _ => reason.unwrap_or_default(),
                }),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        metrics::counter!("payments_follow_ups_total", "kind" => kind.name()).increment(1);
        self.get(transaction_id).await
    }
}

fn exceeds_captured() -> AppError {
    AppError::Unprocessable {
        code: "refund_exceeds_captured",
        message: "the refund is above the captured amount minus earlier and pending refunds",
    }
}

fn processor_declined() -> AppError {
    AppError::Unprocessable {
        code: "processor_declined",
        message: "the processor declined the request",
    }
}

/// Why `kind` may not follow `record` now (amounts held by pending follow-ups count as
/// spent).
fn check_allowed(record: &TransactionRecord, kind: FollowUp) -> AppResult<()> {
    match kind {
        FollowUp::Refund(amount) => {
            if record.state != TransactionState::Approved {
                return Err(AppError::Conflict {
                    code: "transaction_not_refundable",
                    message: "only approved, not fully refunded sales can be refunded",
                });
            }
            let refundable = record.amount_minor - record.refunded_minor - record.reserved_minor;
            if i64::try_from(amount).map_or(true, |amount| amount > refundable) {
                return Err(exceeds_captured());
            }
        }
        FollowUp::Void | FollowUp::Reversal => {
            if record.state != TransactionState::Approved
                || record.refunded_minor != 0
                || record.reserved_minor != 0
            {
                return Err(AppError::Conflict {
                    code: "transaction_not_cancellable",
                    message: "only approved sales without refunds can be voided or reversed",
                });
            }
        }
    }
    Ok(())
}
