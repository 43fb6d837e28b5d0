//! What the simulated issuer decides and which ISO 8583 field 39 code says it.

/// The outcome of an authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Approved (`00`).
    Approved,
    /// Declined, for this reason.
    Declined(DeclineReason),
    /// The issuer did not answer (`91`): the acquirer must treat it as a timeout and reverse.
    IssuerUnavailable,
}

impl Decision {
    /// The ISO 8583 field 39 response code.
    #[must_use]
    pub const fn response_code(self) -> &'static str {
        match self {
            Self::Approved => "00",
            Self::Declined(reason) => reason.response_code(),
            Self::IssuerUnavailable => "91",
        }
    }

    /// Stable code, e.g. `"approved"`, `"insufficient_funds"`, `"issuer_unavailable"`.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Declined(reason) => reason.code(),
            Self::IssuerUnavailable => "issuer_unavailable",
        }
    }

    /// Whether the transaction is approved.
    #[must_use]
    pub const fn is_approved(self) -> bool {
        matches!(self, Self::Approved)
    }
}

/// Why an authorisation was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeclineReason {
    /// The request is malformed: PAN, expiry, date, currency or ICC data that cannot be read (`30`).
    FormatError,
    /// No test card has this BIN, PAN and PAN sequence number (`14`).
    InvalidCard,
    /// The ICC data disagrees with the request (amount, currency, PAN, PSN, expiry) or holds no
    /// ARQC (`82`).
    IccDataMismatch,
    /// The ARQC recomputed under the card's keys differs from `9F26` (`82`).
    ArqcInvalid,
    /// The card has expired, or the request's expiry is not the card's (`54`).
    ExpiredCard,
    /// The PIN is wrong (`55`).
    IncorrectPin,
    /// The kernel chose online PIN but the request carries no PIN block (`55`).
    PinRequired,
    /// The PIN block does not decipher to a valid block of its format under the zone PIN key (`81`).
    PinBlockInvalid,
    /// Not sufficient funds (`51`).
    InsufficientFunds,
    /// Do not honour (`05`).
    DoNotHonour,
}

impl DeclineReason {
    /// The ISO 8583 field 39 response code.
    #[must_use]
    pub const fn response_code(self) -> &'static str {
        match self {
            Self::FormatError => "30",
            Self::InvalidCard => "14",
            // Visa's "negative online CAM result"; Mastercard acquirers see it as 05.
            Self::IccDataMismatch | Self::ArqcInvalid => "82",
            Self::ExpiredCard => "54",
            Self::IncorrectPin | Self::PinRequired => "55",
            // Visa's "PIN cryptographic error found".
            Self::PinBlockInvalid => "81",
            Self::InsufficientFunds => "51",
            Self::DoNotHonour => "05",
        }
    }

    /// Stable code, lowercase snake case.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::FormatError => "format_error",
            Self::InvalidCard => "invalid_card",
            Self::IccDataMismatch => "icc_data_mismatch",
            Self::ArqcInvalid => "arqc_invalid",
            Self::ExpiredCard => "expired_card",
            Self::IncorrectPin => "incorrect_pin",
            Self::PinRequired => "pin_required",
            Self::PinBlockInvalid => "pin_block_invalid",
            Self::InsufficientFunds => "insufficient_funds",
            Self::DoNotHonour => "do_not_honour",
        }
    }
}

/// What the issuer found, whatever it decided (for the console and the tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checks {
    /// A test card with this PAN and PAN sequence number exists.
    pub card_known: bool,
    /// The ICC data agrees with the request and its ARQC verifies under the card's keys.
    pub arqc_valid: bool,
    /// `None`: no PIN block and none required; `Some(true)`: the PIN matched; `Some(false)`: it
    /// did not, the block was invalid, or a required PIN block was missing.
    pub pin: Option<bool>,
    /// The card has expired on `today`, or the request's expiry is not the card's.
    pub expired: bool,
}
