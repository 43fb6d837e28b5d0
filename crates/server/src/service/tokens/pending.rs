//! The ports the token service needs, for a server built before the health, threat and key
//! services are wired in (`build_state` replaces these with `HealthService`,
//! `ThreatService` and `KeyService` once they exist).
//!
//! Each answer fails closed and is literally true for such a server: no health service
//! means no device has a health check (so no token is ever issued); no threat service
//! means no open threat exists, and signals are not dropped but appended to the audit
//! log; no key service means no key set. Nothing here pretends a device is healthy.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::{DeviceId, NewAuditRecord};
use crate::error::{AppError, AppResult};
use crate::service::RequestContext;
use crate::service::audit::AuditService;
use crate::service::ports::{
    BlockingThreat, DeviceKeys, DukptHost, HealthGate, HealthRefusal, HealthVerdict, KeySetInfo,
    ThreatReporter, ThreatSignal, TransactionObservation, ZonePinKey,
};

/// Fail-closed ports for a server without health, threat and key services.
#[derive(Debug, Clone)]
pub struct PendingPorts {
    audit: Arc<AuditService>,
}

impl PendingPorts {
    /// Signals go to `audit`.
    pub fn new(audit: Arc<AuditService>) -> Self {
        Self { audit }
    }
}

#[async_trait]
impl HealthGate for PendingPorts {
    async fn fresh_passing_verdict(
        &self,
        _device: DeviceId,
    ) -> AppResult<Result<HealthVerdict, HealthRefusal>> {
        Ok(Err(HealthRefusal::NoHealthCheck))
    }
}

#[async_trait]
impl ThreatReporter for PendingPorts {
    async fn report(&self, signal: ThreatSignal, ctx: &RequestContext) -> AppResult<()> {
        tracing::warn!(device = %signal.device_id, kind = ?signal.kind, "threat signal (no threat service: audited only)");
        self.audit
            .append(NewAuditRecord {
                actor: "system:tokens".to_owned(),
                action: format!(
                    "threat.{}",
                    serde_json::to_value(signal.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
                target: Some(format!("device:{}", signal.device_id)),
                reason: Some(signal.evidence.to_string()),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(())
    }

    async fn blocking_threat(&self, _device: DeviceId) -> AppResult<Option<BlockingThreat>> {
        Ok(None)
    }

    async fn observe_transaction(
        &self,
        _observation: TransactionObservation,
        _ctx: &RequestContext,
    ) -> AppResult<()> {
        Ok(())
    }
}

#[async_trait]
impl DeviceKeys for PendingPorts {
    async fn active_key_set(&self, _device: DeviceId) -> AppResult<Option<KeySetInfo>> {
        Ok(None)
    }

    async fn dukpt_host(&self, _key_set: Uuid) -> AppResult<DukptHost> {
        Err(AppError::NotFound("key set"))
    }

    async fn zone_pin_key(&self, _processor: &str) -> AppResult<ZonePinKey> {
        Err(AppError::NotFound("zone PIN key"))
    }
}
