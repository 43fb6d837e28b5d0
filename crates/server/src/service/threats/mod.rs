//! Threat events: recorded only from signed device reports and the server's own
//! observations, answered by the response policy (record, alert, block transactions,
//! suspend, revoke), handled by officers through the incident workflow.
//!
//! Invariants: every event and every automatic action is audited with the event id; a
//! suspend or revoke goes through `DeviceService` as `system:threat_response`; an open or
//! acknowledged event whose action blocks keeps the device from getting tokens until an
//! officer resolves it.

pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::RequestContext;
use super::audit::AuditService;
use super::devices::DeviceService;
use super::health::PolicyStore;
use super::health::policy::ResponseAction;
use super::ports::{
    BlockingThreat, EVENT_THREAT_RECORDED, EVENT_THREAT_UPDATED, ThreatKind, ThreatReporter,
    ThreatSignal, TransactionObservation,
};
use crate::domain::{
    DeviceAction, DeviceId, DeviceState, NewAuditRecord, Principal, UnixMillis, now_millis,
};
use crate::error::{AppError, AppResult};
use crate::infra::stores::{Event, EventBus};
use crate::repository::threats::{
    ThreatEventRecord, ThreatFilter, ThreatNote, ThreatRepository, enum_name,
};

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThreatState {
    /// New.
    Open,
    /// An officer is on it.
    Acknowledged,
    /// Dealt with.
    Resolved,
    /// Not a threat after all.
    FalsePositive,
}

impl ThreatState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::FalsePositive => "false_positive",
        }
    }

    /// open → acknowledged → resolved / false_positive (open may close directly).
    pub fn can_move_to(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Open, Self::Acknowledged)
                | (
                    Self::Open | Self::Acknowledged,
                    Self::Resolved | Self::FalsePositive
                )
        )
    }
}

impl std::str::FromStr for ThreatState {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        Ok(match text {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            "false_positive" => Self::FalsePositive,
            _ => return Err(()),
        })
    }
}

/// Counts over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreatStats {
    /// Events recorded in the window.
    pub total: i64,
    /// Per kind.
    pub by_kind: Vec<(String, i64)>,
    /// Per severity.
    pub by_severity: Vec<(String, i64)>,
    /// Per state.
    pub by_state: Vec<(String, i64)>,
}

const THREAT_RESPONSE: Principal = Principal::System {
    component: "threat_response",
};
const THREAT_DETECTION: &str = "system:threat_detection";

/// The threat service.
pub struct ThreatService {
    repo: Arc<dyn ThreatRepository>,
    policies: Arc<PolicyStore>,
    devices: Arc<DeviceService>,
    audit: Arc<AuditService>,
    events: Arc<dyn EventBus>,
}

impl std::fmt::Debug for ThreatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreatService").finish_non_exhaustive()
    }
}

fn sum_by(
    rows: &[(String, String, String, i64)],
    key: fn(&(String, String, String, i64)) -> &String,
) -> Vec<(String, i64)> {
    let mut totals = std::collections::BTreeMap::<String, i64>::new();
    for row in rows {
        *totals.entry(key(row).clone()).or_default() += row.3;
    }
    totals.into_iter().collect()
}

impl ThreatService {
    /// Builds the service.
    pub fn new(
        repo: Arc<dyn ThreatRepository>,
        policies: Arc<PolicyStore>,
        devices: Arc<DeviceService>,
        audit: Arc<AuditService>,
        events: Arc<dyn EventBus>,
    ) -> Self {
        Self {
            repo,
            policies,
            devices,
            audit,
            events,
        }
    }

    async fn publish(&self, kind: &str, payload: serde_json::Value) {
        let event = Event {
            kind: kind.to_owned(),
            payload,
        };
        // The event is stored and audited already; a lost live notification must not undo it.
        if let Err(error) = self.events.publish(&event).await {
            tracing::warn!(?error, kind, "live event not published");
        }
    }

    fn payload(event: &ThreatEventRecord) -> serde_json::Value {
        json!({
            "id": Uuid::new_v4(),
            "threat_id": event.id,
            "device_id": event.device_id.0,
            "kind": event.kind,
            "severity": event.severity,
            "state": event.state,
            "action": event.action,
            "action_outcome": event.action_outcome,
            "at": event.updated_at,
        })
    }

    /// Records a signal as an event, applies the response policy and returns the event.
    ///
    /// # Errors
    /// `not_found` (device), storage errors.
    pub async fn record(
        &self,
        signal: ThreatSignal,
        ctx: &RequestContext,
    ) -> AppResult<ThreatEventRecord> {
        let device = self.devices.get(signal.device_id).await?;
        let (version, policy) = self.policies.current().await?;
        let now = now_millis();
        let mut severity = signal.severity;
        let mut evidence = signal.evidence;
        let repeated = &policy.threat_rules.attestation_failures;
        if signal.kind == ThreatKind::AttestationFailure && repeated.enabled {
            let since = now - i64::try_from(repeated.window_secs * 1000).unwrap_or(i64::MAX);
            let count = self
                .repo
                .count_since(device.id, ThreatKind::AttestationFailure, since)
                .await?
                + 1;
            if count >= i64::from(repeated.max_failures) {
                severity = severity.max(repeated.severity);
                evidence = json!({
                    "signal": evidence,
                    "repeated": { "failures": count, "window_secs": repeated.window_secs },
                });
            }
        }
        let action = policy.response_for(signal.kind, severity);
        let mut event = ThreatEventRecord {
            id: Uuid::now_v7(),
            device_id: device.id,
            kind: signal.kind,
            severity,
            evidence,
            state: ThreatState::Open,
            action,
            action_outcome: "pending".to_owned(),
            policy_version: version,
            observed_at: signal.observed_at,
            created_at: now,
            updated_at: now,
        };
        self.repo.insert(&event).await?;
        metrics::counter!("threat_events_total",
            "kind" => enum_name(&event.kind), "severity" => enum_name(&event.severity))
        .increment(1);
        self.audit
            .append(NewAuditRecord {
                actor: THREAT_DETECTION.to_owned(),
                action: "threat.recorded".to_owned(),
                target: Some(format!("threat:{}", event.id)),
                reason: Some(format!(
                    "device:{} {} {} policy v{version} -> {}",
                    device.id,
                    enum_name(&event.kind),
                    enum_name(&event.severity),
                    action.as_str()
                )),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        let outcome = self.respond(&event, ctx).await?;
        self.repo
            .set_outcome(event.id, &outcome, now_millis())
            .await?;
        event.action_outcome = outcome;
        self.publish(EVENT_THREAT_RECORDED, Self::payload(&event))
            .await;
        Ok(event)
    }

    /// Applies the event's action to the device and audits it with the event id.
    async fn respond(&self, event: &ThreatEventRecord, ctx: &RequestContext) -> AppResult<String> {
        let reason = format!(
            "threat:{} {} {}",
            event.id,
            enum_name(&event.kind),
            enum_name(&event.severity)
        );
        let device_action = match event.action {
            ResponseAction::Record => return Ok("recorded".to_owned()),
            ResponseAction::Alert | ResponseAction::BlockTransactions => None,
            ResponseAction::Suspend => Some(DeviceAction::Suspend),
            ResponseAction::Revoke => Some(DeviceAction::Revoke),
        };
        let outcome = match device_action {
            None if event.action == ResponseAction::Alert => "alerted".to_owned(),
            None => "transactions_blocked".to_owned(),
            Some(action) => {
                let device = self.devices.get(event.device_id).await?;
                if action.next_state(device.state).is_none() {
                    // E.g. suspend of a device that is not ACTIVE: the open event still
                    // blocks tokens.
                    format!("not_applicable: device {}", device.state.as_str())
                } else {
                    match self
                        .devices
                        .act(
                            &THREAT_RESPONSE,
                            device.id,
                            action,
                            Some(reason.clone()),
                            ctx,
                        )
                        .await
                    {
                        Ok(device) => match device.state {
                            DeviceState::Revoked => "revoked".to_owned(),
                            _ => "suspended".to_owned(),
                        },
                        Err(AppError::Conflict { .. }) => {
                            "not_applicable: device changed state concurrently".to_owned()
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        };
        self.audit
            .append(NewAuditRecord {
                actor: THREAT_RESPONSE.actor(),
                action: format!("threat.response.{}", event.action.as_str()),
                target: Some(format!("device:{}", event.device_id)),
                reason: Some(format!("{reason}: {outcome}")),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(outcome)
    }

    /// One event with its workflow notes.
    ///
    /// # Errors
    /// `not_found`.
    pub async fn get(&self, id: Uuid) -> AppResult<(ThreatEventRecord, Vec<ThreatNote>)> {
        let event = self
            .repo
            .find(id)
            .await?
            .ok_or(AppError::NotFound("threat"))?;
        let notes = self.repo.notes(id).await?;
        Ok((event, notes))
    }

    /// A page of events, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self, filter: &ThreatFilter) -> AppResult<Vec<ThreatEventRecord>> {
        self.repo.list(filter).await
    }

    /// Moves an incident along the workflow with a note.
    ///
    /// # Errors
    /// `not_found`, `validation_failed` (note), `invalid_threat_transition` (409).
    pub async fn update_state(
        &self,
        principal: &Principal,
        id: Uuid,
        to: ThreatState,
        note: String,
        ctx: &RequestContext,
    ) -> AppResult<(ThreatEventRecord, Vec<ThreatNote>)> {
        let note = note.trim().to_owned();
        if note.is_empty()
            || note.chars().count() > 2000
            || note.chars().any(|c| c.is_control() && c != '\n')
        {
            return Err(AppError::field("note", "1 to 2000 characters"));
        }
        let (event, _) = self.get(id).await?;
        if !event.state.can_move_to(to) {
            return Err(AppError::Conflict {
                code: "invalid_threat_transition",
                message: "this state change is not allowed from the incident's current state",
            });
        }
        let actor = principal.actor();
        let step = ThreatNote {
            from_state: event.state,
            to_state: to,
            actor: actor.clone(),
            note: note.clone(),
            at: now_millis(),
        };
        if !self
            .repo
            .transition(id, &step, ctx.request_id.clone())
            .await?
        {
            return Err(AppError::Conflict {
                code: "invalid_threat_transition",
                message: "the incident changed state concurrently; reload and retry",
            });
        }
        self.audit
            .append(NewAuditRecord {
                actor,
                action: format!("threat.{}", to.as_str()),
                target: Some(format!("threat:{id}")),
                reason: Some(format!(
                    "{} -> {}: {note}",
                    event.state.as_str(),
                    to.as_str()
                )),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        let (event, notes) = self.get(id).await?;
        self.publish(EVENT_THREAT_UPDATED, Self::payload(&event))
            .await;
        Ok((event, notes))
    }

    /// Counts by kind, severity and state of events recorded since `since`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn stats(&self, since: UnixMillis) -> AppResult<ThreatStats> {
        let rows = self.repo.stats(since).await?;
        Ok(ThreatStats {
            total: rows.iter().map(|row| row.3).sum(),
            by_kind: sum_by(&rows, |row| &row.0),
            by_severity: sum_by(&rows, |row| &row.1),
            by_state: sum_by(&rows, |row| &row.2),
        })
    }

    async fn detect(
        &self,
        observation: &TransactionObservation,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        let (_, policy) = self.policies.current().await?;
        let rules = &policy.threat_rules;
        let device = observation.device_id;
        let signal = |kind, severity, evidence| ThreatSignal {
            device_id: device,
            kind,
            severity,
            evidence,
            observed_at: observation.at,
        };
        if rules.decline_streak.enabled && !observation.approved {
            let max = rules.decline_streak.max_consecutive;
            let outcomes = self
                .repo
                .recent_outcomes(device, i64::from(max) + 1)
                .await?;
            let streak = rules::decline_streak(&outcomes);
            if rules::decline_streak_fires(streak, max) {
                self.record(
                    signal(
                        ThreatKind::DeclineStreak,
                        rules.decline_streak.severity,
                        json!({ "consecutive_declines": streak,
                                "transaction_id": observation.transaction_id }),
                    ),
                    ctx,
                )
                .await?;
            }
        }
        if rules.velocity.enabled {
            let window_ms = i64::try_from(rules.velocity.window_secs * 1000).unwrap_or(i64::MAX);
            let count = self
                .repo
                .count_observations(device, observation.at - window_ms, observation.at)
                .await?;
            // One event per window: the open event already says the device is too busy.
            if rules::velocity_exceeded(count, rules.velocity.max_transactions)
                && self
                    .repo
                    .count_since(device, ThreatKind::Velocity, now_millis() - window_ms)
                    .await?
                    == 0
            {
                self.record(
                    signal(
                        ThreatKind::Velocity,
                        rules.velocity.severity,
                        json!({ "transactions": count, "window_secs": rules.velocity.window_secs,
                                "limit": rules.velocity.max_transactions }),
                    ),
                    ctx,
                )
                .await?;
            }
        }
        if rules.location_jump.enabled
            && let Some(location) = observation.location
            && let Some((previous, previous_at)) = self
                .repo
                .previous_location(device, observation.at, observation.transaction_id)
                .await?
            && let Some(jump) = rules::impossible_jump(
                &rules.location_jump,
                previous,
                previous_at,
                location,
                observation.at,
            )
        {
            // Coordinates are rounded in the evidence: enough to see the jump.
            let round = |value: f64| (value * 100.0).round() / 100.0;
            self.record(
                signal(
                    ThreatKind::LocationJump,
                    rules.location_jump.severity,
                    json!({
                        "distance_km": round(jump.distance_km),
                        "elapsed_secs": round(jump.elapsed_secs),
                        "speed_kmh": if jump.speed_kmh.is_finite() { json!(round(jump.speed_kmh)) } else { json!("infinite") },
                        "from": [round(previous.latitude), round(previous.longitude)],
                        "to": [round(location.latitude), round(location.longitude)],
                        "transaction_id": observation.transaction_id,
                    }),
                ),
                ctx,
            )
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ThreatReporter for ThreatService {
    async fn report(&self, signal: ThreatSignal, ctx: &RequestContext) -> AppResult<()> {
        self.record(signal, ctx).await.map(|_| ())
    }

    async fn blocking_threat(&self, device: DeviceId) -> AppResult<Option<BlockingThreat>> {
        Ok(self
            .repo
            .blocking(device)
            .await?
            .map(|event| BlockingThreat {
                threat_id: event.id,
                kind: event.kind,
                severity: event.severity,
            }))
    }

    async fn observe_transaction(
        &self,
        observation: TransactionObservation,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        if observation
            .location
            .is_some_and(|point| !rules::valid_point(point))
        {
            return Err(AppError::field(
                "location",
                "latitude -90..90, longitude -180..180, accuracy >= 0",
            ));
        }
        if observation.currency.len() != 3
            || !observation.currency.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(AppError::field("currency", "ISO 4217 alpha code"));
        }
        // A transaction seen twice is evaluated once.
        if !self.repo.insert_observation(&observation).await? {
            return Ok(());
        }
        self.detect(&observation, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::ThreatState as S;

    #[test]
    fn incident_workflow() {
        let all = [S::Open, S::Acknowledged, S::Resolved, S::FalsePositive];
        let allowed = [
            (S::Open, S::Acknowledged),
            (S::Open, S::Resolved),
            (S::Open, S::FalsePositive),
            (S::Acknowledged, S::Resolved),
            (S::Acknowledged, S::FalsePositive),
        ];
        for from in all {
            for to in all {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} {to:?}"
                );
            }
            assert_eq!(from.as_str().parse::<S>(), Ok(from));
        }
    }
}
