//! Idempotency keys: the first answer to a key is stored (status and JSON body) and replayed
//! for the same body; another body under the same key is refused with
//! `409 idempotency_key_reused`; a duplicate that arrives while the first is still running
//! waits briefly for its answer, then gets `409 idempotency_in_progress`.
//!
//! Keys are scoped (per device for sales, per transaction for refunds, voids and reversals),
//! claimed with one `INSERT` on the primary key, so concurrent duplicates, on one instance or
//! several, have exactly one winner. The winner holds a lease (the request timeout plus a
//! margin: the HTTP layer drops any request older than the timeout, so an expired lease
//! means its worker is gone); a retry of the same request after the lease expired takes the
//! key over with one conditional `UPDATE` on the owner it saw, so exactly one retry proceeds,
//! and learns what the dead worker had created ([`Claim::recovered`]).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::now_millis;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::repository::transactions::{IdempotencyClaim, IdempotencyLease, TransactionRepository};

/// How long a duplicate waits for the first request's answer.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(25);

/// An answer as sent (and replayed): HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// A replay of the first answer.
    pub replayed: bool,
}

/// The key a request holds while it runs.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Scope of the key.
    pub scope: String,
    /// The key.
    pub key: String,
    /// Taken over from a dead worker, which had created this resource (a sale's
    /// transaction id), if anything.
    pub recovered: Option<String>,
    /// Taken over from a dead worker.
    pub taken_over: bool,
}

/// Checks an `Idempotency-Key`: 1 to 128 visible ASCII characters.
///
/// # Errors
/// `validation_failed` on the `Idempotency-Key` field.
pub fn check_key(key: &str) -> AppResult<()> {
    if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::field(
            "Idempotency-Key",
            "1 to 128 visible ASCII characters",
        ));
    }
    Ok(())
}

/// SHA-256 of the request body, hex.
pub fn body_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Runs `work` once per `(scope, key)` and returns its answer, or the stored first answer.
/// `lease` is how long the claim holds before a retry may take it over.
///
/// Client errors (4xx) are answers too and are replayed; server errors release the key so
/// the client may retry.
///
/// # Errors
/// `idempotency_key_reused`, `idempotency_in_progress`, or the server error of `work`.
pub async fn run<T, F, W>(
    repo: &Arc<dyn TransactionRepository>,
    scope: &str,
    key: &str,
    request_hash: &str,
    success_status: u16,
    lease: Duration,
    work: W,
) -> AppResult<Answer>
where
    T: Serialize,
    W: FnOnce(Claim) -> F,
    F: Future<Output = AppResult<T>>,
{
    let waited_since = std::time::Instant::now();
    let owner = Uuid::new_v4().to_string();
    let lease_millis = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let claim = loop {
        let at = now_millis();
        let held = IdempotencyLease {
            owner: owner.clone(),
            expires_at: at.saturating_add(lease_millis),
        };
        let (recovered, taken_over) = match repo
            .claim_idempotency(scope, key, request_hash, &held, at)
            .await?
        {
            IdempotencyClaim::Claimed => (None, false),
            IdempotencyClaim::TakenOver { resource_id } => {
                tracing::warn!(scope, "idempotency key taken over from a dead worker");
                metrics::counter!("payments_idempotency_takeovers_total").increment(1);
                (resource_id, true)
            }
            IdempotencyClaim::Existing {
                request_hash: first_hash,
                answer,
            } => {
                if first_hash != request_hash {
                    return Err(AppError::Conflict {
                        code: "idempotency_key_reused",
                        message: "this Idempotency-Key was used with a different request",
                    });
                }
                if let Some((status, body)) = answer {
                    return Ok(Answer {
                        status,
                        body,
                        replayed: true,
                    });
                }
                if waited_since.elapsed() >= WAIT_FOR_FIRST {
                    return Err(AppError::Conflict {
                        code: "idempotency_in_progress",
                        message: "a request with this Idempotency-Key is still being processed",
                    });
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        break Claim {
            scope: scope.to_owned(),
            key: key.to_owned(),
            recovered,
            taken_over,
        };
    };
    let (status, body) = match work(claim).await {
        Ok(value) => (
            success_status,
            serde_json::to_string(&value).map_err(anyhow::Error::from)?,
        ),
        Err(error) if error.status_code().is_client_error() => {
            let details = match &error {
                AppError::Validation(fields) => Some(fields.clone()),
                _ => None,
            };
            let body = ErrorBody {
                code: error.code(),
                message: error.to_string(),
                details,
            };
            (
                error.status_code().as_u16(),
                serde_json::to_string(&body).map_err(anyhow::Error::from)?,
            )
        }
        Err(error) => {
            repo.release_idempotency(scope, key, &owner).await?;
            return Err(error);
        }
    };
    if !repo
        .complete_idempotency(scope, key, &owner, status, &body, now_millis())
        .await?
    {
        // Only when this worker outlived its lease (a stall longer than the request
        // timeout): the key's new holder answers retries.
        tracing::error!(scope, "idempotency lease lost before the answer was stored");
    }
    Ok(Answer {
        status,
        body,
        replayed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(check_key("order-42/retry").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("has space").is_err());
        assert!(check_key(&"k".repeat(129)).is_err());
    }

    #[test]
    fn body_hash_is_sha256() {
        // FIPS 180-2 Appendix B.1: SHA-256("abc").
        assert_eq!(
            body_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
