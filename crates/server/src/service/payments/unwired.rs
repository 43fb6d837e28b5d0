//! Placeholders for the ports whose services are built on other branches (tokens, keys,
//! threats) and for the processor before the issuer simulator is linked: every call answers
//! `503 service_unavailable`, so a deployment without them refuses payments instead of
//! faking them. `build_state` replaces each with the real implementation once merged.

use async_trait::async_trait;
use uuid::Uuid;

use super::processor::{
    AuthorizationAnswer, AuthorizationMessage, FollowUpAnswer, FollowUpMessage, ProcessorConnector,
    ProcessorError,
};
use crate::domain::DeviceId;
use crate::error::{AppError, AppResult};
use crate::service::RequestContext;
use crate::service::ports::{
    BlockingThreat, DeviceKeys, DukptHost, KeySetInfo, ThreatReporter, ThreatSignal, TokenClaims,
    TokenConsumer, TransactionObservation, ZonePinKey,
};

/// A port with no implementation wired in.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwired;

fn unavailable<T>(port: &'static str) -> AppResult<T> {
    tracing::error!(port, "payment port not wired: refusing");
    Err(AppError::Unavailable)
}

#[async_trait]
impl TokenConsumer for Unwired {
    async fn consume(&self, _: &str, _: DeviceId, _: &RequestContext) -> AppResult<TokenClaims> {
        unavailable("token_consumer")
    }
}

#[async_trait]
impl DeviceKeys for Unwired {
    async fn active_key_set(&self, _: DeviceId) -> AppResult<Option<KeySetInfo>> {
        unavailable("device_keys")
    }
    async fn dukpt_host(&self, _: Uuid) -> AppResult<DukptHost> {
        unavailable("device_keys")
    }
    async fn zone_pin_key(&self, _: &str) -> AppResult<ZonePinKey> {
        unavailable("device_keys")
    }
}

#[async_trait]
impl ThreatReporter for Unwired {
    async fn report(&self, _: ThreatSignal, _: &RequestContext) -> AppResult<()> {
        unavailable("threat_reporter")
    }
    async fn blocking_threat(&self, _: DeviceId) -> AppResult<Option<BlockingThreat>> {
        unavailable("threat_reporter")
    }
    async fn observe_transaction(
        &self,
        _: TransactionObservation,
        _: &RequestContext,
    ) -> AppResult<()> {
        unavailable("threat_reporter")
    }
}

#[async_trait]
impl ProcessorConnector for Unwired {
    fn name(&self) -> &str {
        "unwired"
    }
    async fn authorize(
        &self,
        _: &AuthorizationMessage<'_>,
    ) -> Result<AuthorizationAnswer, ProcessorError> {
        Err(ProcessorError::Rejected)
    }
    async fn reverse(&self, _: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError> {
        Err(ProcessorError::Rejected)
    }
    async fn refund(&self, _: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError> {
        Err(ProcessorError::Rejected)
    }
}
