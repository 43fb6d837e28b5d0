//! The processor connector: how the payment service talks to an acquirer/issuer.
//!
//! [`ProcessorConnector`] is the port (authorisation, reversal, refund); every call is bounded
//! by the connector's own timeout and a timeout is an error the service answers with an
//! automatic reversal. Messages carry the PAN only for the duration of the call and the PIN
//! only as a block under the connection's zone PIN key.
//!
//! Follow-ups of an approval (refunds, voids, reversals) name it by what the server stores:
//! the processor's reference, the authorisation code and the amounts, never the PAN, so any
//! instance can send them. Only the automatic reversal of an unanswered authorisation repeats
//! the original message ([`ProcessorConnector::reverse_unanswered`]), during the sale, while
//! the card data is still in memory.

use std::fmt;

use async_trait::async_trait;

/// An authorisation request (ISO 8583 0100 in spirit).
pub struct AuthorizationMessage<'a> {
    /// Our transaction id (the reversal and refund reference it).
    pub transaction_id: uuid::Uuid,
    /// Clear PAN, from the decrypted card data.
    pub pan: &'a str,
    /// PAN sequence number.
    pub pan_sequence_number: Option<u8>,
    /// Expiry `YYMM`.
    pub expiry_yymm: &'a str,
    /// Amount, minor units.
    pub amount_minor: u64,
    /// ISO 4217 numeric.
    pub currency_numeric: u16,
    /// DE 55: the kernel's online-request data objects.
    pub icc_data: &'a [u8],
    /// PIN block under the zone PIN key, in the connection's format.
    pub pin_block: Option<&'a [u8]>,
    /// Today, `YYMMDD` (UTC).
    pub today_yymmdd: &'a str,
}

impl fmt::Debug for AuthorizationMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationMessage")
            .field("transaction_id", &self.transaction_id)
            .field("amount_minor", &self.amount_minor)
            .field("currency_numeric", &self.currency_numeric)
            .field("pin_block", &self.pin_block.map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What the issuer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationAnswer {
    /// Approved or not.
    pub approved: bool,
    /// DE 39.
    pub response_code: String,
    /// Stable code of the decline (`insufficient_funds`, `invalid_pin`, ...), if declined.
    pub decline_reason: Option<String>,
    /// Authorisation code, if approved.
    pub authorisation_code: Option<String>,
    /// ARPC for the card.
    pub arpc: Option<Vec<u8>>,
    /// The processor's reference of an approval, stored for follow-ups.
    pub reference: Option<String>,
}

/// A reversal or refund of an approved authorisation, built from the stored record alone.
#[derive(Debug, Clone)]
pub struct FollowUpMessage {
    /// Our transaction id.
    pub transaction_id: uuid::Uuid,
    /// Our id of this follow-up: a resend after a lost answer carries the same one.
    pub follow_up_id: uuid::Uuid,
    /// The processor's reference of the approval.
    pub reference: String,
    /// The issuer's authorisation code of the approval.
    pub authorisation_code: String,
    /// Amount concerned, minor units.
    pub amount_minor: u64,
    /// The approved amount.
    pub original_amount_minor: u64,
    /// Refunds: the approved amount minus earlier refunds; reversals: the approved amount.
    pub limit_minor: u64,
    /// ISO 4217 numeric.
    pub currency_numeric: u16,
}

/// The processor's answer to a reversal or refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUpAnswer {
    /// Accepted.
    pub accepted: bool,
    /// DE 39.
    pub response_code: String,
}

/// Why a processor call produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProcessorError {
    /// No answer within the connector's timeout.
    #[error("processor did not answer in time")]
    Timeout,
    /// The message could not be sent or was refused as malformed.
    #[error("processor refused the message")]
    Rejected,
}

impl ProcessorError {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Timeout => "processor_timeout",
            Self::Rejected => "processor_rejected",
        }
    }
}

/// A connection to a processor.
#[async_trait]
pub trait ProcessorConnector: Send + Sync + fmt::Debug {
    /// The connection's name (the key store holds its zone PIN key under it).
    fn name(&self) -> &str;
    /// Authorises a sale.
    async fn authorize(
        &self,
        message: &AuthorizationMessage<'_>,
    ) -> Result<AuthorizationAnswer, ProcessorError>;
    /// Reverses an authorisation that got no answer, repeating the original message (ISO 8583
    /// 0400 carries the original's data elements); called during the sale only.
    async fn reverse_unanswered(
        &self,
        original: &AuthorizationMessage<'_>,
    ) -> Result<FollowUpAnswer, ProcessorError>;
    /// Reverses an approval (voids, reversals).
    async fn reverse(&self, message: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError>;
    /// Refunds (part of) a captured sale.
    async fn refund(&self, message: &FollowUpMessage) -> Result<FollowUpAnswer, ProcessorError>;
}
