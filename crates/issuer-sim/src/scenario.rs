//! The documented test scenarios: what the simulated issuer answers for an amount, once the card,
//! its cryptogram, its expiry and its PIN have passed.

use crate::decision::{Decision, DeclineReason};

/// One row of the scenario table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    /// Stable name, e.g. `"insufficient_funds"`.
    pub name: &'static str,
    /// The last two digits of the amount in minor units that select this row (`Some(51)`: 25.51,
    /// 100.51, ...); `None` for the row that applies to every other amount.
    pub amount_ending: Option<u8>,
    /// What the issuer decides.
    pub decision: Decision,
    /// The ISO 8583 field 39 response code it answers with.
    pub response_code: &'static str,
    /// What it is for.
    pub description: &'static str,
}

/// The table, in the order the crate documentation lists it; the default row is last.
pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "insufficient_funds",
        amount_ending: Some(51),
        decision: Decision::Declined(DeclineReason::InsufficientFunds),
        response_code: "51",
        description: "Declined: not sufficient funds. ARPC over the ARQC with ARC \"51\".",
    },
    Scenario {
        name: "do_not_honour",
        amount_ending: Some(5),
        decision: Decision::Declined(DeclineReason::DoNotHonour),
        response_code: "05",
        description: "Declined: do not honour. ARPC over the ARQC with ARC \"05\".",
    },
    Scenario {
        name: "incorrect_pin",
        amount_ending: Some(55),
        decision: Decision::Declined(DeclineReason::IncorrectPin),
        response_code: "55",
        description: "Declined as if the PIN were wrong, whatever PIN (or none) was sent.",
    },
    Scenario {
        name: "expired_card",
        amount_ending: Some(54),
        decision: Decision::Declined(DeclineReason::ExpiredCard),
        response_code: "54",
        description: "Declined as if the card had expired, whatever its expiry date.",
    },
    Scenario {
        name: "issuer_unavailable",
        amount_ending: Some(91),
        decision: Decision::IssuerUnavailable,
        response_code: "91",
        description: "The issuer does not answer: no ARPC, no authorisation code, no checks \
                      performed. The server treats it as a timeout and reverses automatically.",
    },
    Scenario {
        name: "approve",
        amount_ending: None,
        decision: Decision::Approved,
        response_code: "00",
        description: "Approved with a 6-digit authorisation code and an ARPC with ARC \"00\".",
    },
];

/// The row that applies to `amount_minor`.
pub(crate) fn for_amount(amount_minor: u64) -> &'static Scenario {
    let ending = (amount_minor % 100) as u8;
    SCENARIOS
        .iter()
        .find(|row| row.amount_ending.is_none_or(|wanted| wanted == ending))
        .unwrap_or(&SCENARIOS[SCENARIOS.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_are_unique_and_the_default_row_is_last() {
        let mut endings: Vec<u8> = SCENARIOS.iter().filter_map(|s| s.amount_ending).collect();
        endings.sort_unstable();
        endings.dedup();
        assert_eq!(endings.len(), SCENARIOS.len() - 1);
        assert_eq!(SCENARIOS.last().map(|s| s.amount_ending), Some(None));
        assert_eq!(for_amount(2551).name, "insufficient_funds");
        assert_eq!(for_amount(5).name, "do_not_honour");
        assert_eq!(for_amount(2500).name, "approve");
        assert_eq!(for_amount(150).name, "approve");
    }

    #[test]
    fn response_codes_match_the_decisions() {
        for row in SCENARIOS {
            assert_eq!(
                row.decision.response_code(),
                row.response_code,
                "{}",
                row.name
            );
        }
    }
}
