//! The hash-chained audit log: append (serialised) and verify.
//!
//! Each record's hash is SHA-256 over a canonical, length-prefixed encoding of its fields
//! and the previous record's hash. Appends are serialised in-process by a mutex and across
//! instances by the primary key on `seq`: a writer that lost the race re-reads the head and
//! retries, so the chain can never fork, in either database.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use utoipa::ToSchema;

use crate::domain::{AuditRecord, NewAuditRecord, now_millis};
use crate::error::{AppError, AppResult};
use crate::infra::stores::{Event, EventBus};
use crate::repository::audit::{AuditFilter, AuditRepository};

/// `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DOMAIN_TAG: &[u8] = b"softpos-audit-v1\0";

fn put(hasher: &mut Sha256, field: Option<&str>) {
    match field {
        Some(text) => {
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX - 1);
            hasher.update(len.to_be_bytes());
            hasher.update(text.as_bytes());
        }
        // Distinct from the empty string, which encodes as length 0.
        None => hasher.update(u32::MAX.to_be_bytes()),
    }
}

/// The canonical hash of a record (over everything except `hash` itself), hex.
pub fn record_hash(record: &AuditRecord) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN_TAG);
    put(&mut hasher, Some(&record.seq.to_string()));
    put(&mut hasher, Some(&record.occurred_at.to_string()));
    put(&mut hasher, Some(&record.actor));
    put(&mut hasher, Some(&record.action));
    put(&mut hasher, record.target.as_deref());
    put(&mut hasher, record.reason.as_deref());
    put(&mut hasher, record.request_id.as_deref());
    put(&mut hasher, Some(&record.prev_hash));
    hex::encode(hasher.finalize())
}

/// The first problem found in the chain.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence number of the first bad (or missing) record.
    pub seq: i64,
    /// Stable problem code: `missing_record`, `content_mismatch`, `prev_hash_mismatch`.
    pub problem: &'static str,
    /// Human-readable explanation.
    pub detail: String,
}

/// Result of a chain verification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChainVerdict {
    /// True when every record checks out.
    pub valid: bool,
    /// Records examined.
    pub records_checked: i64,
    /// Sequence number of the last record.
    pub head_seq: Option<i64>,
    /// The first bad record, if any.
    pub first_bad: Option<ChainBreak>,
}

/// Appends to, reads and verifies the audit log.
#[derive(Debug)]
pub struct AuditService {
    repo: Arc<dyn AuditRepository>,
    events: Arc<dyn EventBus>,
    append_lock: Mutex<()>,
}

const MAX_APPEND_ATTEMPTS: u32 = 50;

impl AuditService {
    /// Builds the service.
    pub fn new(repo: Arc<dyn AuditRepository>, events: Arc<dyn EventBus>) -> Self {
        Self {
            repo,
            events,
            append_lock: Mutex::new(()),
        }
    }

    /// Appends one record at the head of the chain.
    ///
    /// # Errors
    /// Storage errors, or persistent contention with other instances.
    pub async fn append(&self, new: NewAuditRecord) -> AppResult<AuditRecord> {
        let _guard = self.append_lock.lock().await;
        for attempt in 0..MAX_APPEND_ATTEMPTS {
            let (head_seq, prev_hash) = self
                .repo
                .head()
                .await?
                .unwrap_or((0, GENESIS_HASH.to_owned()));
            let mut record = AuditRecord {
                seq: head_seq + 1,
                occurred_at: now_millis(),
                actor: new.actor.clone(),
                action: new.action.clone(),
                target: new.target.clone(),
                reason: new.reason.clone(),
                request_id: new.request_id.clone(),
                prev_hash,
                hash: String::new(),
            };
            record.hash = record_hash(&record);
            if self.repo.insert(&record).await? {
                metrics::counter!("audit_records_total", "action" => record.action.clone())
                    .increment(1);
                let event = Event {
                    kind: "audit.appended".to_owned(),
                    payload: serde_json::json!({
                        "seq": record.seq,
                        "action": record.action,
                        "actor": record.actor,
                    }),
                };
                if let Err(error) = self.events.publish(&event).await {
                    tracing::warn!(?error, "could not publish audit event");
                }
                return Ok(record);
            }
            // Another instance appended first: back off a little and retry on the new head.
            tokio::time::sleep(Duration::from_millis(u64::from(attempt % 10) + 1)).await;
        }
        Err(AppError::Other(anyhow::anyhow!(
            "audit append gave up after {MAX_APPEND_ATTEMPTS} attempts"
        )))
    }

    /// Reads records, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self, filter: &AuditFilter) -> AppResult<Vec<AuditRecord>> {
        self.repo.list(filter).await
    }

    /// Walks the whole chain and names the first record that is missing or does not match.
    ///
    /// Deleting records at the very end of the chain cannot be seen from the chain alone;
    /// compare `head_seq` with an externally kept value (monitoring) for that.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn verify(&self) -> AppResult<ChainVerdict> {
        const PAGE: i64 = 1000;
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut checked = 0;
        let mut last_seen = 0;
        loop {
            let page = self.repo.page_after(last_seen, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for record in &page {
                checked += 1;
                if let Some(problem) = check_record(record, expected_seq, &prev_hash) {
                    return Ok(ChainVerdict {
                        valid: false,
                        records_checked: checked,
                        head_seq: None,
                        first_bad: Some(problem),
                    });
                }
                expected_seq += 1;
                prev_hash.clone_from(&record.hash);
                last_seen = record.seq;
            }
        }
        Ok(ChainVerdict {
            valid: true,
            records_checked: checked,
            head_seq: (last_seen > 0).then_some(last_seen),
            first_bad: None,
        })
    }
}

fn check_record(record: &AuditRecord, expected_seq: i64, prev_hash: &str) -> Option<ChainBreak> {
    if record.seq != expected_seq {
        return Some(ChainBreak {
            seq: expected_seq,
            problem: "missing_record",
            detail: format!(
                "record {expected_seq} is missing (the next record present is {})",
                record.seq
            ),
        });
    }
    if record.prev_hash != prev_hash {
        return Some(ChainBreak {
            seq: record.seq,
            problem: "prev_hash_mismatch",
            detail: format!(
                "record {} does not point at the hash of record {}",
                record.seq,
                record.seq - 1
            ),
        });
    }
    if record_hash(record) != record.hash {
        return Some(ChainBreak {
            seq: record.seq,
            problem: "content_mismatch",
            detail: format!("record {} was changed after it was written", record.seq),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, prev_hash: &str) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            occurred_at: 1_700_000_000_000,
            actor: "user:x".to_owned(),
            action: "auth.login".to_owned(),
            target: None,
            reason: Some(String::new()),
            request_id: None,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        record.hash = record_hash(&record);
        record
    }

    #[test]
    fn none_and_empty_hash_differently() {
        let a = record(1, GENESIS_HASH);
        let mut b = a.clone();
        b.reason = None;
        assert_ne!(record_hash(&a), record_hash(&b));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let mut a = record(1, GENESIS_HASH);
        let mut b = a.clone();
        a.actor = "ab".to_owned();
        a.action = "c".to_owned();
        b.actor = "a".to_owned();
        b.action = "bc".to_owned();
        assert_ne!(record_hash(&a), record_hash(&b));
    }

    #[test]
    fn check_names_each_problem() {
        let first = record(1, GENESIS_HASH);
        assert_eq!(check_record(&first, 1, GENESIS_HASH), None);
        assert_eq!(
            check_record(&first, 2, GENESIS_HASH).unwrap().problem,
            "missing_record"
        );
        assert_eq!(
            check_record(&first, 1, "ff").unwrap().problem,
            "prev_hash_mismatch"
        );
        let mut edited = first.clone();
        edited.action = "auth.logout".to_owned();
        assert_eq!(
            check_record(&edited, 1, GENESIS_HASH).unwrap().problem,
            "content_mismatch"
        );
    }
}
