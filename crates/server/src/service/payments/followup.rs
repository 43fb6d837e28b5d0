//! Refunds, voids and reversals of an approved sale: each idempotent per transaction and
//! key, sent to the processor, recorded as a transaction event and audited.

use uuid::Uuid;

use super::card;
use super::idempotency::{self, Answer};
use super::processor::{FollowUpAnswer, FollowUpMessage};
use super::{PaymentService, TransactionDetail};
use crate::domain::{NewAuditRecord, Principal, now_millis};
use crate::error::{AppError, AppResult};
use crate::repository::transactions::{TransactionEvent, TransactionRecord, TransactionState};
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
    fn name(self) -> &'static str {
        match self {
            Self::Refund(_) => "refund",
            Self::Void => "void",
            Self::Reversal => "reversal",
        }
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
        principal: &Principal,
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
            self.run_follow_up(principal, transaction_id, kind, reason, ctx),
        )
        .await
    }

    async fn run_follow_up(
        &self,
        principal: &Principal,
        transaction_id: Uuid,
        kind: FollowUp,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> AppResult<TransactionDetail> {
        if reason.as_deref().is_some_and(|r| r.len() > 500) {
            return Err(AppError::field("reason", "at most 500 characters"));
        }
        let record = self
            .repo
            .find(transaction_id)
            .await?
            .ok_or(AppError::NotFound("transaction"))?;
        check_allowed(&record, kind)?;
        let currency_numeric = card::currency_numeric(&record.currency)
            .ok_or_else(|| AppError::Other(anyhow::anyhow!("stored currency unsupported")))?;
        let amount = match kind {
            FollowUp::Refund(amount) => amount,
            FollowUp::Void | FollowUp::Reversal => u64::try_from(record.amount_minor).unwrap_or(0),
        };
        let message = FollowUpMessage {
            transaction_id,
            authorisation_code: record.authorisation_code.clone(),
            amount_minor: amount,
            original_amount_minor: u64::try_from(match kind {
                FollowUp::Refund(_) => record.amount_minor - record.refunded_minor,
                FollowUp::Void | FollowUp::Reversal => record.amount_minor,
            })
            .unwrap_or(0),
            currency_numeric,
        };
        let answer = match kind {
            FollowUp::Refund(_) => self.processor.refund(&message).await,
            FollowUp::Void | FollowUp::Reversal => self.processor.reverse(&message).await,
        }
        .map_err(|error| {
            tracing::warn!(code = error.code(), %transaction_id, "processor follow-up failed");
            AppError::Unavailable
        })?;
        let FollowUpAnswer {
            accepted,
            response_code,
        } = answer;
        if !accepted {
            return Err(AppError::Unprocessable {
                code: "processor_declined",
                message: "the processor declined the request",
            });
        }
        let actor = principal.actor();
        let event = TransactionEvent {
            kind: kind.name().to_owned(),
            amount_minor: i64::try_from(amount).unwrap_or(i64::MAX),
            response_code: Some(response_code),
            actor: actor.clone(),
            reason: reason.clone(),
            at: now_millis(),
        };
        let applied = match kind {
            FollowUp::Refund(amount) => {
                self.repo
                    .apply_refund(
                        transaction_id,
                        i64::try_from(amount).unwrap_or(i64::MAX),
                        &event,
                    )
                    .await?
            }
            FollowUp::Void => {
                self.repo
                    .cancel(
                        transaction_id,
                        TransactionState::Voided,
                        reason.as_deref(),
                        &event,
                    )
                    .await?
            }
            FollowUp::Reversal => {
                self.repo
                    .cancel(
                        transaction_id,
                        TransactionState::Reversed,
                        reason.as_deref(),
                        &event,
                    )
                    .await?
            }
        };
        if !applied {
            // A concurrent follow-up changed the transaction between the check and the
            // update; the update's own condition kept the amounts consistent.
            let current = self
                .repo
                .find(transaction_id)
                .await?
                .ok_or(AppError::NotFound("transaction"))?;
            check_allowed(&current, kind)?;
            return Err(AppError::Conflict {
                code: "transaction_changed",
                message: "the transaction changed concurrently; retry with a new key",
            });
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

/// Whether `kind` may follow `record` now.
fn check_allowed(record: &TransactionRecord, kind: FollowUp) -> AppResult<()> {
    match kind {
        FollowUp::Refund(amount) => {
            if amount == 0 {
                return Err(AppError::field("amount_minor", "must be positive"));
            }
            if record.state != TransactionState::Approved {
                return Err(AppError::Conflict {
                    code: "transaction_not_refundable",
                    message: "only approved, not fully refunded sales can be refunded",
                });
            }
            let refundable = record.amount_minor - record.refunded_minor;
            if i64::try_from(amount).map_or(true, |amount| amount > refundable) {
                return Err(AppError::Unprocessable {
                    code: "refund_exceeds_captured",
                    message: "the refund is above the captured amount minus earlier refunds",
                });
            }
        }
        FollowUp::Void | FollowUp::Reversal => {
            if record.state != TransactionState::Approved || record.refunded_minor != 0 {
                return Err(AppError::Conflict {
                    code: "transaction_not_cancellable",
                    message: "only approved sales without refunds can be voided or reversed",
                });
            }
        }
    }
    Ok(())
}
