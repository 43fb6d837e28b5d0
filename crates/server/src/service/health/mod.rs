//! Health checks: server nonces, signed health reports scored under the versioned security
//! policy, history, fleet aggregates, the heartbeat sweep, and the `HealthGate` answer.
//!
//! Invariants: a report counts only with a fresh, single-use nonce the server issued to the
//! same device (otherwise it is refused and recorded as an `InvalidHealthReport` threat);
//! every stored report carries its score, failed checks and policy version; the first
//! report of a device is scored like any other; statistics come from stored reports only.

pub mod policy;
pub mod scoring;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::RequestContext;
use super::audit::AuditService;
use super::ports::{
    HealthGate, HealthRefusal, HealthVerdict, ThreatKind, ThreatReporter, ThreatSignal,
};
use crate::domain::{Device, DeviceId, NewAuditRecord, Principal, UnixMillis, now_millis};
use crate::error::{AppError, AppResult, FieldError};
use crate::infra::keys::{SecretBytes, random_bytes};
use crate::infra::stores::OnceStore;
use crate::repository::health::{
    HealthAggregates, HealthReportRecord, HealthRepository, OverdueDevice, PolicyVersionRow,
};
use policy::{SecurityPolicy, check_threat_kind};
use scoring::HealthReportBody;

const NONCE_CONTEXT: &[u8] = b"softpos-health-nonce-v1";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
type HmacSha256 = Hmac<Sha256>;

/// How long [`PolicyStore::current`] answers from memory. Token issuance and the behaviour
/// rules of every sale ask for the policy; a change made on this instance applies at once,
/// one made on another instance (PostgreSQL) within this time.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(1);

/// The versioned security policy, shared by health and threats.
#[derive(Debug)]
pub struct PolicyStore {
    repo: Arc<dyn HealthRepository>,
    audit: Arc<AuditService>,
    cached: std::sync::RwLock<Option<CachedPolicy>>,
}

#[derive(Debug)]
struct CachedPolicy {
    read_at: std::time::Instant,
    version: i64,
    policy: SecurityPolicy,
}

/// A policy version as read back.
#[derive(Debug, Clone)]
pub struct PolicyVersion {
    /// Version.
    pub version: i64,
    /// The policy.
    pub policy: SecurityPolicy,
    /// Why it was changed.
    pub comment: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: UnixMillis,
}

fn parse_policy(row: PolicyVersionRow) -> AppResult<PolicyVersion> {
    let policy = serde_json::from_str(&row.body)
        .map_err(|_| crate::repository::corrupt("security_policies.body"))?;
    Ok(PolicyVersion {
        version: row.version,
        policy,
        comment: row.comment,
        created_by: row.created_by,
        created_at: row.created_at,
    })
}

impl PolicyStore {
    /// Wraps the repository.
    pub fn new(repo: Arc<dyn HealthRepository>, audit: Arc<AuditService>) -> Self {
        Self {
            repo,
            audit,
            cached: std::sync::RwLock::new(None),
        }
    }

    /// Creates version 1 (the default policy) when no version exists; safe to race.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn ensure_default(&self) -> AppResult<()> {
        if self.repo.current_policy().await?.is_some() {
            return Ok(());
        }
        let body =
            serde_json::to_string(&SecurityPolicy::default()).map_err(anyhow::Error::from)?;
        let created = self
            .repo
            .insert_policy(&PolicyVersionRow {
                version: 1,
                body,
                comment: Some("default policy".to_owned()),
                created_by: "system:health".to_owned(),
                created_at: now_millis(),
            })
            .await?;
        if created {
            self.audit
                .append(NewAuditRecord {
                    actor: "system:health".to_owned(),
                    action: "security_policy.created".to_owned(),
                    target: Some("security_policy:1".to_owned()),
                    reason: Some("default policy".to_owned()),
                    request_id: None,
                })
                .await?;
        }
        Ok(())
    }

    /// The current (highest) version.
    ///
    /// # Errors
    /// Storage errors; an internal error when no policy exists (start creates one).
    pub async fn current(&self) -> AppResult<(i64, SecurityPolicy)> {
        if let Some(cached) = self
            .cached
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|cached| cached.read_at.elapsed() < POLICY_CACHE_TTL)
        {
            return Ok((cached.version, cached.policy.clone()));
        }
        let read_at = std::time::Instant::now();
        let version = self.current_version().await?;
        self.remember(read_at, &version);
        Ok((version.version, version.policy))
    }

    fn remember(&self, read_at: std::time::Instant, version: &PolicyVersion) {
        let mut cached = self
            .cached
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Never replace a newer version with an older read that finished later.
        if cached.as_ref().is_none_or(|c| c.version <= version.version) {
            *cached = Some(CachedPolicy {
                read_at,
                version: version.version,
                policy: version.policy.clone(),
            });
        }
    }

    /// The current version with its metadata.
    ///
    /// # Errors
    /// As [`PolicyStore::current`].
    pub async fn current_version(&self) -> AppResult<PolicyVersion> {
        let row = self
            .repo
            .current_policy()
            .await?
            .ok_or_else(|| AppError::Other(anyhow::anyhow!("no security policy stored")))?;
        parse_policy(row)
    }

    /// Every version, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn versions(&self) -> AppResult<Vec<PolicyVersion>> {
        self.repo
            .list_policies()
            .await?
            .into_iter()
            .map(parse_policy)
            .collect()
    }

    /// Stores `policy` as the version after `based_on`, which must be the current one.
    ///
    /// # Errors
    /// `validation_failed` (with every bad field), `policy_version_conflict` (409).
    pub async fn update(
        &self,
        principal: &Principal,
        based_on: i64,
        policy: &SecurityPolicy,
        comment: Option<String>,
        ctx: &RequestContext,
    ) -> AppResult<PolicyVersion> {
        let mut problems = policy.validate().err().unwrap_or_default();
        let comment = comment
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > 500 || c.chars().any(char::is_control))
        {
            problems.push(FieldError::new(
                "comment",
                "at most 500 printable characters",
            ));
        }
        if !problems.is_empty() {
            return Err(AppError::Validation(problems));
        }
        let conflict = AppError::Conflict {
            code: "policy_version_conflict",
            message: "based_on_version is not the current policy version; reload and retry",
        };
        let current = self.current_version().await?.version;
        if current != based_on {
            return Err(conflict);
        }
        let row = PolicyVersionRow {
            version: based_on + 1,
            body: serde_json::to_string(policy).map_err(anyhow::Error::from)?,
            comment: comment.clone(),
            created_by: principal.actor(),
            created_at: now_millis(),
        };
        // The primary key makes two concurrent edits of one version a conflict, not a merge.
        if !self.repo.insert_policy(&row).await? {
            return Err(conflict);
        }
        self.audit
            .append(NewAuditRecord {
                actor: principal.actor(),
                action: "security_policy.updated".to_owned(),
                target: Some(format!("security_policy:{}", row.version)),
                reason: Some(format!(
                    "v{based_on} -> v{}{}",
                    row.version,
                    comment.map(|c| format!(": {c}")).unwrap_or_default()
                )),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        let stored = parse_policy(row)?;
        self.remember(std::time::Instant::now(), &stored);
        Ok(stored)
    }
}

/// A stored report plus what scoring said about criticality.
#[derive(Debug, Clone)]
pub struct ReportOutcome {
    /// The stored report.
    pub record: HealthReportRecord,
    /// Failed critical checks.
    pub critical_failures: Vec<String>,
    /// Threat events raised.
    pub threats_raised: usize,
}

/// Fleet statistics.
#[derive(Debug, Clone)]
pub struct FleetHealth {
    /// Aggregates over the window.
    pub aggregates: HealthAggregates,
    /// Active devices overdue for a report now.
    pub overdue: Vec<OverdueDevice>,
    /// The heartbeat deadline used (interval + grace), seconds.
    pub overdue_after_secs: u64,
}

/// The health service.
pub struct HealthService {
    repo: Arc<dyn HealthRepository>,
    policies: Arc<PolicyStore>,
    threats: Arc<dyn ThreatReporter>,
    once: Arc<dyn OnceStore>,
    nonce_key: Vec<u8>,
}

impl std::fmt::Debug for HealthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService").finish_non_exhaustive()
    }
}

/// Why a health nonce is refused (stable codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NonceProblem {
    Malformed,
    Expired,
    OtherDevice,
    Reused,
}

impl NonceProblem {
    fn code(self) -> &'static str {
        match self {
            Self::Malformed => "invalid_health_nonce",
            Self::Expired => "health_nonce_expired",
            Self::OtherDevice => "health_nonce_other_device",
            Self::Reused => "health_nonce_reused",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Malformed => {
                "the health nonce is missing, malformed or not issued by this server"
            }
            Self::Expired => "the health nonce expired; request a new one",
            Self::OtherDevice => "the health nonce was issued to another device",
            Self::Reused => "the health nonce was already used",
        }
    }
}

fn validate_body(body: &HealthReportBody) -> AppResult<()> {
    let mut problems = Vec::new();
    for (field, list) in [
        ("root_indicators", &body.root_indicators),
        ("hook_frameworks", &body.hook_frameworks),
    ] {
        if list.len() > 32
            || list.iter().any(|item| {
                item.is_empty() || item.len() > 64 || item.chars().any(char::is_control)
            })
        {
            problems.push(FieldError::new(
                field,
                "at most 32 names of 1 to 64 characters",
            ));
        }
    }
    for (field, value, max) in [
        ("app_version", &body.app_version, 64),
        ("app_signing_digest", &body.app_signing_digest, 128),
        ("os_version", &body.os_version, 32),
        ("security_patch", &body.security_patch, 16),
    ] {
        if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
            problems.push(FieldError::new(field, format!("1 to {max} characters")));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(problems))
    }
}

impl HealthService {
    /// Builds the service; the nonce MAC key is derived from the server secret so every
    /// instance accepts nonces issued by any other.
    pub fn new(
        repo: Arc<dyn HealthRepository>,
        policies: Arc<PolicyStore>,
        threats: Arc<dyn ThreatReporter>,
        once: Arc<dyn OnceStore>,
        server_secret: &SecretBytes,
    ) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(NONCE_CONTEXT);
        hasher.update(server_secret.expose());
        Self {
            repo,
            policies,
            threats,
            once,
            nonce_key: hasher.finalize().to_vec(),
        }
    }

    /// The shared policy store.
    pub fn policies(&self) -> &Arc<PolicyStore> {
        &self.policies
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.nonce_key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    /// Issues a nonce for `device`: device id, expiry and 16 random bytes, MACed, so no
    /// storage is needed until it is used (once).
    ///
    /// # Errors
    /// Storage errors (policy).
    pub async fn nonce(&self, device: &Device) -> AppResult<(String, UnixMillis)> {
        let (_, policy) = self.policies.current().await?;
        let expires_at =
            now_millis() + i64::try_from(policy.nonce_ttl_secs * 1000).unwrap_or(120_000);
        let mut payload = device.id.0.as_bytes().to_vec();
        payload.extend_from_slice(&expires_at.to_be_bytes());
        payload.extend_from_slice(&random_bytes::<16>());
        let tag = self.mac(&payload).finalize().into_bytes();
        payload.extend_from_slice(&tag[..16]);
        Ok((B64URL.encode(payload), expires_at))
    }

    async fn check_nonce(
        &self,
        device: &Device,
        nonce: &str,
    ) -> AppResult<Result<(), NonceProblem>> {
        let Ok(bytes) = B64URL.decode(nonce) else {
            return Ok(Err(NonceProblem::Malformed));
        };
        if bytes.len() != 56 {
            return Ok(Err(NonceProblem::Malformed));
        }
        let (payload, tag) = bytes.split_at(40);
        if self.mac(payload).verify_truncated_left(tag).is_err() {
            return Ok(Err(NonceProblem::Malformed));
        }
        if payload[..16] != *device.id.0.as_bytes() {
            return Ok(Err(NonceProblem::OtherDevice));
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&payload[16..24]);
        let expires_at = i64::from_be_bytes(expiry);
        if expires_at <= now_millis() {
            return Ok(Err(NonceProblem::Expired));
        }
        let ttl = u64::try_from(expires_at - now_millis()).unwrap_or(0) + 60_000;
        if !self
            .once
            .claim(&format!("health_nonce:{nonce}"), Duration::from_millis(ttl))
            .await?
        {
            return Ok(Err(NonceProblem::Reused));
        }
        Ok(Ok(()))
    }

    /// Scores and stores a signed report; raises the threats its failed checks call for.
    ///
    /// # Errors
    /// `validation_failed`; `invalid_health_nonce`, `health_nonce_expired`,
    /// `health_nonce_other_device`, `health_nonce_reused` (422, recorded as threats).
    pub async fn submit(
        &self,
        device: &Device,
        nonce: &str,
        body: HealthReportBody,
        ctx: &RequestContext,
    ) -> AppResult<ReportOutcome> {
        validate_body(&body)?;
        let (version, policy) = self.policies.current().await?;
        if let Err(problem) = self.check_nonce(device, nonce).await? {
            metrics::counter!("health_reports_refused_total", "reason" => problem.code())
                .increment(1);
            self.threats
                .report(
                    ThreatSignal {
                        device_id: device.id,
                        kind: ThreatKind::InvalidHealthReport,
                        severity: policy.threat_rules.invalid_health_report_severity,
                        evidence: json!({ "reason": problem.code() }),
                        observed_at: now_millis(),
                    },
                    ctx,
                )
                .await?;
            return Err(AppError::Unprocessable {
                code: problem.code(),
                message: problem.message(),
            });
        }
        let now = now_millis();
        let scored = scoring::score(&policy, &body, now);
        let record = HealthReportRecord {
            id: Uuid::now_v7(),
            device_id: device.id,
            policy_version: version,
            score: scored.score,
            passed: scored.passed,
            failed_checks: scored
                .failed_checks
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            report: serde_json::to_string(&body).map_err(anyhow::Error::from)?,
            clock_skew_ms: scored.clock_skew_ms,
            amount_ceiling_minor: scored.amount_ceiling_minor,
            received_at: now,
        };
        self.repo.insert_report(&record).await?;
        metrics::counter!("health_reports_total",
            "verdict" => if record.passed { "pass" } else { "fail" })
        .increment(1);
        metrics::histogram!("health_report_score").record(f64::from(record.score));

        let mut threats_raised = 0;
        for check in &scored.failed_checks {
            let Some(severity) = policy.checks.get(*check).and_then(|rule| rule.threat) else {
                continue;
            };
            let evidence = match *check {
                "root" => json!({ "check": check, "indicators": body.root_indicators }),
                "hook_framework" => json!({ "check": check, "frameworks": body.hook_frameworks }),
                "clock_skew" => json!({ "check": check, "skew_ms": scored.clock_skew_ms,
                                        "max_secs": policy.max_clock_skew_secs }),
                "app_outdated" | "app_signature" => json!({ "check": check,
                    "app_version": body.app_version, "min_app_version": policy.min_app_version }),
                _ => json!({ "check": check }),
            };
            self.threats
                .report(
                    ThreatSignal {
                        device_id: device.id,
                        kind: check_threat_kind(check),
                        severity,
                        evidence: json!({ "health_report_id": record.id, "score": record.score,
                                          "policy_version": version, "detail": evidence }),
                        observed_at: now,
                    },
                    ctx,
                )
                .await?;
            threats_raised += 1;
        }
        Ok(ReportOutcome {
            record,
            critical_failures: scored
                .critical_failures
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            threats_raised,
        })
    }

    /// A device's reports, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn history(
        &self,
        device: DeviceId,
        before: Option<UnixMillis>,
        limit: i64,
    ) -> AppResult<Vec<HealthReportRecord>> {
        self.repo.history(device, before, limit).await
    }

    /// Fleet aggregates over reports since `since`, and the devices overdue now.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn fleet(&self, since: UnixMillis, bucket_ms: i64) -> AppResult<FleetHealth> {
        let (_, policy) = self.policies.current().await?;
        let overdue_after_secs =
            policy.heartbeat_interval_secs + policy.threat_rules.missed_heartbeat.grace_secs;
        let cutoff = now_millis() - i64::try_from(overdue_after_secs * 1000).unwrap_or(i64::MAX);
        Ok(FleetHealth {
            aggregates: self.repo.aggregates(since, bucket_ms).await?,
            overdue: self.repo.overdue(cutoff, 1000).await?,
            overdue_after_secs,
        })
    }

    /// Raises a `MissedHeartbeat` threat for each active device without a report within
    /// the heartbeat interval plus grace; once per device and silent period, across
    /// instances. Returns how many were raised.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn sweep_heartbeats(&self, ctx: &RequestContext) -> AppResult<usize> {
        let (_, policy) = self.policies.current().await?;
        let rule = &policy.threat_rules.missed_heartbeat;
        if !rule.enabled {
            return Ok(0);
        }
        let overdue_after = policy.heartbeat_interval_secs + rule.grace_secs;
        let now = now_millis();
        let cutoff = now - i64::try_from(overdue_after * 1000).unwrap_or(i64::MAX);
        let mut raised = 0;
        for device in self.repo.overdue(cutoff, 1000).await? {
            // The claim key names the silent period, so a device is reported again only
            // after it reported (new period) or after another full period of silence.
            let key = format!("heartbeat:{}:{}", device.device_id, device.since);
            if !self
                .once
                .claim(&key, Duration::from_secs(overdue_after.max(60)))
                .await?
            {
                continue;
            }
            self.threats
                .report(
                    ThreatSignal {
                        device_id: device.device_id,
                        kind: ThreatKind::MissedHeartbeat,
                        severity: rule.severity,
                        evidence: json!({
                            "last_report_at": device.last_report_at,
                            "silent_secs": (now - device.since) / 1000,
                            "heartbeat_interval_secs": policy.heartbeat_interval_secs,
                            "grace_secs": rule.grace_secs,
                        }),
                        observed_at: now,
                    },
                    ctx,
                )
                .await?;
            raised += 1;
        }
        Ok(raised)
    }

    /// Runs [`HealthService::sweep_heartbeats`] forever, a few times per heartbeat interval.
    pub async fn run_heartbeat_sweeps(self: Arc<Self>) {
        loop {
            let interval = match self.policies.current().await {
                Ok((_, policy)) => policy.heartbeat_interval_secs / 4,
                Err(_) => 60,
            };
            tokio::time::sleep(Duration::from_secs(interval.clamp(1, 60))).await;
            let ctx = RequestContext {
                request_id: Some(format!("heartbeat-sweep-{}", Uuid::new_v4())),
                ..RequestContext::default()
            };
            match self.sweep_heartbeats(&ctx).await {
                Ok(0) => {}
                Ok(raised) => tracing::info!(raised, "missed heartbeats recorded"),
                Err(error) => tracing::warn!(?error, "heartbeat sweep failed"),
            }
        }
    }
}

#[async_trait]
impl HealthGate for HealthService {
    async fn fresh_passing_verdict(
        &self,
        device: DeviceId,
    ) -> AppResult<Result<HealthVerdict, HealthRefusal>> {
        let Some(report) = self.repo.latest_report(device).await? else {
            return Ok(Err(HealthRefusal::NoHealthCheck));
        };
        if !report.passed {
            return Ok(Err(HealthRefusal::HealthCheckFailed));
        }
        let (_, policy) = self.policies.current().await?;
        let max_age = i64::try_from(policy.max_report_age_secs * 1000).unwrap_or(i64::MAX);
        if report.received_at < now_millis() - max_age {
            return Ok(Err(HealthRefusal::HealthCheckStale));
        }
        Ok(Ok(HealthVerdict {
            report_id: report.id,
            device_id: report.device_id,
            score: report.score,
            passed: report.passed,
            failed_checks: report.failed_checks,
            policy_version: report.policy_version,
            received_at: report.received_at,
            amount_ceiling_minor: report.amount_ceiling_minor,
        }))
    }
}
