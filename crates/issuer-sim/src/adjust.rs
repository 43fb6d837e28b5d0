//! Reversals and refunds: validated and answered with response codes. The simulator keeps no
//! ledger; the acquirer sends the original (or captured) amount and the server enforces it too.
//! Approved sales are followed up by their issuer reference ([`FollowUpRequest`]); the PAN
//! forms ([`ReversalRequest`], [`RefundRequest`]) serve the reversal of an authorisation that
//! never got an answer, while the acquirer still holds the card data of the sale.

use core::fmt;

use crate::reference::{self, Original};
use crate::{IssuerSimulator, mask, valid_pan};

/// Why a reversal or refund was refused. Never carries the PAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The PAN is not 12 to 19 decimal digits.
    #[error("PAN must be 12 to 19 decimal digits")]
    PanInvalid,
    /// The currency is not an ISO 4217 numeric code (1–999).
    #[error("currency must be an ISO 4217 numeric code")]
    CurrencyInvalid,
    /// The authorisation code is not 6 alphanumeric characters.
    #[error("authorisation code must be 6 letters or digits")]
    AuthorisationCodeInvalid,
    /// No test card has this PAN.
    #[error("no card with this PAN")]
    UnknownCard,
    /// The amount is zero.
    #[error("amount must be above zero")]
    AmountZero,
    /// The amount exceeds the original (reversal) or captured (refund) amount.
    #[error("amount exceeds the original amount")]
    AmountAboveOriginal,
    /// The reference is not one this issuer gave to an approval with this authorisation
    /// code, amount and currency.
    #[error("no approval with this reference")]
    UnknownReference,
}

impl RequestError {
    /// Stable code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::PanInvalid => "pan_invalid",
            Self::CurrencyInvalid => "currency_invalid",
            Self::AuthorisationCodeInvalid => "authorisation_code_invalid",
            Self::UnknownCard => "invalid_card",
            Self::AmountZero => "amount_zero",
            Self::AmountAboveOriginal => "amount_above_original",
            Self::UnknownReference => "unknown_reference",
        }
    }

    /// ISO 8583 field 39: `30` format error, `14` invalid card, `13` invalid amount, `25`
    /// unable to locate the original.
    #[must_use]
    pub const fn response_code(&self) -> &'static str {
        match self {
            Self::PanInvalid | Self::CurrencyInvalid | Self::AuthorisationCodeInvalid => "30",
            Self::UnknownReference => "25",
            Self::UnknownCard => "14",
            Self::AmountZero | Self::AmountAboveOriginal => "13",
        }
    }
}

/// A reversal (ISO 8583 0400) of an authorisation, full or partial.
pub struct ReversalRequest<'a> {
    /// Primary account number of the original authorisation.
    pub pan: &'a str,
    /// Amount to reverse, in minor units.
    pub amount_minor: u64,
    /// Amount of the original authorisation.
    pub original_amount_minor: u64,
    /// ISO 4217 numeric currency code.
    pub currency_numeric: u16,
    /// The original's authorisation code; `None` when it was never answered (timeout).
    pub original_authorisation_code: Option<&'a str>,
}

impl fmt::Debug for ReversalRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReversalRequest")
            .field("pan", &mask(self.pan))
            .field("amount_minor", &self.amount_minor)
            .field("original_amount_minor", &self.original_amount_minor)
            .field("currency_numeric", &self.currency_numeric)
            .field(
                "original_authorisation_code",
                &self.original_authorisation_code,
            )
            .finish()
    }
}

/// The answer to a reversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversalResponse {
    /// ISO 8583 field 39: `00` accepted, otherwise [`RequestError::response_code`].
    pub response_code: &'static str,
    /// Why it was refused.
    pub error: Option<RequestError>,
}

impl ReversalResponse {
    /// Whether the issuer accepted the reversal.
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        self.error.is_none()
    }
}

/// A refund (credit back to the card), full or partial, of a captured sale.
pub struct RefundRequest<'a> {
    /// Primary account number of the sale.
    pub pan: &'a str,
    /// Amount to refund, in minor units.
    pub amount_minor: u64,
    /// Amount captured by the sale, minus what was already refunded.
    pub captured_amount_minor: u64,
    /// ISO 4217 numeric currency code.
    pub currency_numeric: u16,
    /// The sale's authorisation code.
    pub original_authorisation_code: &'a str,
}

impl fmt::Debug for RefundRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefundRequest")
            .field("pan", &mask(self.pan))
            .field("amount_minor", &self.amount_minor)
            .field("captured_amount_minor", &self.captured_amount_minor)
            .field("currency_numeric", &self.currency_numeric)
            .field(
                "original_authorisation_code",
                &self.original_authorisation_code,
            )
            .finish()
    }
}

/// The answer to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResponse {
    /// ISO 8583 field 39: `00` accepted, otherwise [`RequestError::response_code`].
    pub response_code: &'static str,
    /// Why it was refused.
    pub error: Option<RequestError>,
}

impl RefundResponse {
    /// Whether the issuer accepted the refund.
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        self.error.is_none()
    }
}

/// A reversal or refund of an approval, named by its issuer reference (no PAN).
#[derive(Debug, Clone)]
pub struct FollowUpRequest<'a> {
    /// [`crate::AuthorizationResponse::reference`] of the approval.
    pub reference: &'a str,
    /// Its authorisation code.
    pub original_authorisation_code: &'a str,
    /// Its amount, minor units.
    pub original_amount_minor: u64,
    /// ISO 4217 numeric currency code of the approval.
    pub currency_numeric: u16,
    /// Amount to reverse or refund, minor units.
    pub amount_minor: u64,
    /// Refunds: the original amount minus what was already refunded; reversals: the original
    /// amount.
    pub limit_minor: u64,
}

impl IssuerSimulator {
    /// Reverses an approval named by its reference: `00` when the reference names an approval
    /// with this authorisation code, amount and currency, and the amount is within the limit.
    #[must_use]
    pub fn reverse_referenced(&self, request: &FollowUpRequest<'_>) -> ReversalResponse {
        let error = self.check_referenced(request).err();
        ReversalResponse {
            response_code: error.as_ref().map_or("00", RequestError::response_code),
            error,
        }
    }

    /// Refunds (part of) an approval named by its reference, as
    /// [`IssuerSimulator::reverse_referenced`] checks it.
    #[must_use]
    pub fn refund_referenced(&self, request: &FollowUpRequest<'_>) -> RefundResponse {
        let error = self.check_referenced(request).err();
        RefundResponse {
            response_code: error.as_ref().map_or("00", RequestError::response_code),
            error,
        }
    }

    fn check_referenced(&self, request: &FollowUpRequest<'_>) -> Result<(), RequestError> {
        if !reference::well_formed(request.reference) {
            return Err(RequestError::UnknownReference);
        }
        if !(1..=999).contains(&request.currency_numeric) {
            return Err(RequestError::CurrencyInvalid);
        }
        let code = request.original_authorisation_code;
        if code.len() != 6 || !code.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(RequestError::AuthorisationCodeInvalid);
        }
        let original = Original {
            authorisation_code: code,
            amount_minor: request.original_amount_minor,
            currency_numeric: request.currency_numeric,
        };
        if reference::find(&self.cards, request.reference, &original).is_none() {
            return Err(RequestError::UnknownReference);
        }
        if request.amount_minor == 0 {
            return Err(RequestError::AmountZero);
        }
        if request.amount_minor > request.limit_minor
            || request.limit_minor > request.original_amount_minor
        {
            return Err(RequestError::AmountAboveOriginal);
        }
        Ok(())
    }

    /// Answers a reversal: `00` when its inputs are valid and the amount is within the original.
    #[must_use]
    pub fn reverse(&self, request: &ReversalRequest<'_>) -> ReversalResponse {
        let error = self
            .check_adjustment(
                request.pan,
                request.currency_numeric,
                request.original_authorisation_code,
                request.amount_minor,
                request.original_amount_minor,
            )
            .err();
        ReversalResponse {
            response_code: error.as_ref().map_or("00", RequestError::response_code),
            error,
        }
    }

    /// Answers a refund: `00` when its inputs are valid and the amount is within what was captured.
    #[must_use]
    pub fn refund(&self, request: &RefundRequest<'_>) -> RefundResponse {
        let error = self
            .check_adjustment(
                request.pan,
                request.currency_numeric,
                Some(request.original_authorisation_code),
                request.amount_minor,
                request.captured_amount_minor,
            )
            .err();
        RefundResponse {
            response_code: error.as_ref().map_or("00", RequestError::response_code),
            error,
        }
    }

    fn check_adjustment(
        &self,
        pan: &str,
        currency: u16,
        authorisation_code: Option<&str>,
        amount: u64,
        limit: u64,
    ) -> Result<(), RequestError> {
        if !valid_pan(pan) {
            return Err(RequestError::PanInvalid);
        }
        if !(1..=999).contains(&currency) {
            return Err(RequestError::CurrencyInvalid);
        }
        if authorisation_code
            .is_some_and(|code| code.len() != 6 || !code.bytes().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(RequestError::AuthorisationCodeInvalid);
        }
        if !self.cards.iter().any(|card| card.pan == pan) {
            return Err(RequestError::UnknownCard);
        }
        if amount == 0 {
            return Err(RequestError::AmountZero);
        }
        if amount > limit {
            return Err(RequestError::AmountAboveOriginal);
        }
        Ok(())
    }
}
