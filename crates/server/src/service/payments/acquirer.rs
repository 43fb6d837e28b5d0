//! The built-in processor connection: an acquirer in front of `issuer_sim::IssuerSimulator`.
//!
//! It plays the acquirer's part the simulator leaves out: the zone PIN key shared with the
//! issuer comes from the key store ([`DeviceKeys::zone_pin_key`] under the connection's
//! name), and every call is bounded by the configured timeout (the simulator's
//! `issuer_unavailable` scenario never answers, so the timeout fires as it would against a
//! silent issuer). It keeps nothing between calls: refunds, voids and reversals name the
//! approval by the issuer's reference, authorisation code and amounts the server stored, so
//! any instance sends them; the reversal of an unanswered authorisation repeats the original
//! message during the sale.
//!
//! TEST ONLY issuer keys: deployments use it for tests and demos.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use issuer_sim::{Decision, IssuerSimulator};

use super::processor::{
    AuthorizationAnswer, AuthorizationMessage, FollowUpAnswer, FollowUpMessage, ProcessorConnector,
    ProcessorError,
};
use crate::service::ports::DeviceKeys;

/// The simulator behind an acquirer connection.
pub struct SimulatedAcquirer {
    name: String,
    keys: Arc<dyn DeviceKeys>,
    simulator: tokio::sync::OnceCell<Arc<IssuerSimulator>>,
    timeout: Duration,
}

impl std::fmt::Debug for SimulatedAcquirer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedAcquirer")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SimulatedAcquirer {
    /// A connection named `name` (its zone PIN key is looked up under that name) that waits
    /// at most `timeout` for the issuer.
    pub fn new(name: &str, keys: Arc<dyn DeviceKeys>, timeout: Duration) -> Self {
        Self {
            name: name.to_owned(),
            keys,
            simulator: tokio::sync::OnceCell::new(),
            timeout,
        }
    }

    /// Waits at most the connection's timeout for `exchange`.
    async fn bounded<T>(&self, exchange: impl Future<Output = T>) -> Result<T, ProcessorError> {
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ProcessorError::Timeout)
    }

    async fn simulator(&self) -> Result<&Arc<IssuerSimulator>, ProcessorError> {
        self.simulator
            .get_or_try_init(|| async {
                let zpk = self.keys.zone_pin_key(&self.name).await.map_err(|error| {
                    tracing::error!(code = error.code(), "no zone PIN key for the simulator");
                    ProcessorError::Rejected
                })?;
                let simulator = IssuerSimulator::try_new(zpk.key, zpk.format).map_err(|error| {
                    tracing::error!(code = error.code(), "zone PIN key unusable");
                    ProcessorError::Rejected
                })?;
                Ok(Arc::new(simulator))
            })
            .await
    }
}

#[async_trait]
impl ProcessorConnector for SimulatedAcquirer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn authorize(
        &self,
        message: &AuthorizationMessage<'_>,
    ) -> Result<AuthorizationAnswer, ProcessorError> {
        let simulator = self.simulator().await?;
        let request = issuer_sim::AuthorizationRequest {
            pan: message.pan,
            pan_sequence_number: message.pan_sequence_number,
            expiry_yymm: message.expiry_yymm,
            amount_minor: message.amount_minor,
            currency_numeric: message.currency_numeric,
            icc_data: message.icc_data,
            pin_block: message.pin_block,
            today_yymmdd: message.today_yymmdd,
        };
        let exchange = async {
            let response = simulator.authorize(&request);
            if response.decision == Decision::IssuerUnavailable {
                // The issuer never answers: only the timeout ends the wait.
                std::future::pending::<()>().await;
            }
            response
        };
        let response = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ProcessorError::Timeout)?;
        Ok(AuthorizationAnswer {
            approved: response.decision.is_approved(),
            response_code: response.response_code.to_owned(),
            decline_reason: match response.decision {
                Decision::Approved => None,
                other => Some(other.code().to_owned()),
            },
            authorisation_code: response.authorisation_code,
            arpc: response.arpc,
            reference: response.reference,
        })
    }

    async fn reverse_unanswered(
        &self,
        original: &AuthorizationMessage<'_>,
    ) -> Result<FollowUpAnswer, ProcessorError> {
        let simulator = self.simulator().await?;
        let request = issuer_sim::ReversalRequest {
            pan: original.pan,
            amount_minor: original.amount_minor,
            original_amount_minor: original.amount_minor,
            currency_numeric: original.currency_numeric,
            original_authorisation_code: None,
        };
        let response = self.bounded(async { simulator.reverse(&request) }).await?;
        Ok(FollowUpAnswer {
            accepted: response.is_accepted(),
            response_code: response.response_code.to_owned(),
        })
    }

    async fn reverse(&self, message: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError> {
        let simulator = self.simulator().await?;
        let response = self
            .bounded(async { simulator.reverse_referenced(&follow_up_request(message)) })
            .await?;
        Ok(FollowUpAnswer {
            accepted: response.is_accepted(),
            response_code: response.response_code.to_owned(),
        })
    }

    async fn refund(&self, message: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError> {
        let simulator = self.simulator().await?;
        let response = self
            .bounded(async { simulator.refund_referenced(&follow_up_request(message)) })
            .await?;
        Ok(FollowUpAnswer {
            accepted: response.is_accepted(),
            response_code: response.response_code.to_owned(),
        })
    }
}

fn follow_up_request(message: &FollowUpMessage) -> issuer_sim::FollowUpRequest<'_> {
    issuer_sim::FollowUpRequest {
        reference: &message.reference,
        original_authorisation_code: &message.authorisation_code,
        original_amount_minor: message.original_amount_minor,
        currency_numeric: message.currency_numeric,
        amount_minor: message.amount_minor,
        limit_minor: message.limit_minor,
    }
}
