//! The built-in processor connection: an acquirer in front of `issuer_sim::IssuerSimulator`.
//!
//! It plays the acquirer's part the simulator leaves out: the zone PIN key shared with the
//! issuer comes from the key store ([`DeviceKeys::zone_pin_key`] under the connection's
//! name), every call is bounded by the configured timeout (the simulator's
//! `issuer_unavailable` scenario never answers, so the timeout fires as it would against a
//! silent issuer), and the authorisations it forwarded are kept in memory so reversals and
//! refunds can reference them by transaction id: the PAN stays in the acquirer's memory, as
//! it stays in a real acquirer's systems, and never reaches this server's database.
//! Follow-ups of authorisations it does not hold (another instance's, or older than its last
//! `LEDGER_CAPACITY` authorisations) are refused `processor_rejected`.
//!
//! TEST ONLY issuer keys: deployments use it for tests and demos.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use issuer_sim::{Decision, IssuerSimulator};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::processor::{
    AuthorizationAnswer, AuthorizationMessage, FollowUpAnswer, FollowUpMessage, ProcessorConnector,
    ProcessorError,
};
use crate::service::ports::DeviceKeys;

/// Authorisations kept for follow-ups.
const LEDGER_CAPACITY: usize = 100_000;

#[derive(Default)]
struct Ledger {
    pans: HashMap<Uuid, Zeroizing<String>>,
    order: VecDeque<Uuid>,
}

/// The simulator behind an acquirer connection.
pub struct SimulatedAcquirer {
    name: String,
    keys: Arc<dyn DeviceKeys>,
    simulator: tokio::sync::OnceCell<Arc<IssuerSimulator>>,
    timeout: Duration,
    ledger: Mutex<Ledger>,
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
            ledger: Mutex::new(Ledger::default()),
        }
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

    fn remember(&self, transaction_id: Uuid, pan: &str) {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        if ledger.order.len() >= LEDGER_CAPACITY
            && let Some(oldest) = ledger.order.pop_front()
        {
            ledger.pans.remove(&oldest);
        }
        ledger
            .pans
            .insert(transaction_id, Zeroizing::new(pan.to_owned()));
        ledger.order.push_back(transaction_id);
    }

    fn pan_of(&self, transaction_id: Uuid) -> Result<Zeroizing<String>, ProcessorError> {
        let ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        ledger
            .pans
            .get(&transaction_id)
            .cloned()
            .ok_or(ProcessorError::Rejected)
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
        self.remember(message.transaction_id, message.pan);
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
        })
    }

    async fn reverse(&self, message: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError> {
        let simulator = self.simulator().await?;
        let pan = self.pan_of(message.transaction_id)?;
        let response = simulator.reverse(&issuer_sim::ReversalRequest {
            pan: &pan,
            amount_minor: message.amount_minor,
            original_amount_minor: message.original_amount_minor,
            currency_numeric: message.currency_numeric,
            original_authorisation_code: message.authorisation_code.as_deref(),
        });
        Ok(FollowUpAnswer {
            accepted: response.is_accepted(),
            response_code: response.response_code.to_owned(),
        })
    }

    async fn refund(&self, message: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError> {
        let simulator = self.simulator().await?;
        let pan = self.pan_of(message.transaction_id)?;
        let code = message
            .authorisation_code
            .as_deref()
            .ok_or(ProcessorError::Rejected)?;
        let response = simulator.refund(&issuer_sim::RefundRequest {
            pan: &pan,
            amount_minor: message.amount_minor,
            captured_amount_minor: message.original_amount_minor,
            currency_numeric: message.currency_numeric,
            original_authorisation_code: code,
        });
        Ok(FollowUpAnswer {
            accepted: response.is_accepted(),
            response_code: response.response_code.to_owned(),
        })
    }
}
