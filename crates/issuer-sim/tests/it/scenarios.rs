//! Every row of the scenario table, through the real kernel on both card schemes.

use issuer_sim::{AuthorizationRequest, Decision, DeclineReason, IssuerSimulator};
use payment_crypto::pinblock::PinBlockFormat;

use crate::{Online, pin_block, simulator, zpk_tdes};

/// The amount (minor units) that selects a row: 25.xx with the row's ending, 25.00 by default.
fn amount_for(ending: Option<u8>) -> u64 {
    2500 + u64::from(ending.unwrap_or(0))
}

#[test]
fn every_scenario_row_answers_as_documented() {
    for profile in ["visa-fdda", "mc-cda"] {
        for row in IssuerSimulator::scenarios() {
            let online = Online::new(profile, amount_for(row.amount_ending));
            let response = simulator().authorize(&online.request());
            assert_eq!(response.decision, row.decision, "{profile} {}", row.name);
            assert_eq!(
                response.response_code, row.response_code,
                "{profile} {}",
                row.name
            );
            assert!(response.checks.card_known);
            if row.decision == Decision::IssuerUnavailable {
                // The issuer never answered: nothing to authenticate, nothing checked.
                assert_eq!(response.arpc, None);
                assert_eq!(response.authorisation_code, None);
                assert!(!response.checks.arqc_valid);
            } else {
                assert!(response.checks.arqc_valid);
                assert!(
                    online.card_accepts_arpc(&response),
                    "{profile} {}",
                    row.name
                );
                assert_eq!(
                    response.authorisation_code.is_some(),
                    row.decision.is_approved()
                );
            }
        }
    }
}

#[test]
fn checks_come_before_scenarios_and_issuer_unavailable_before_checks() {
    // A wrong PIN on an amount ending in 51 is a PIN decline, not insufficient funds.
    let online = Online::new("visa-online-pin", 4051);
    let wrong = pin_block(&zpk_tdes(), PinBlockFormat::Iso0, "0000", &online.pan);
    let response = simulator().authorize(&AuthorizationRequest {
        pin_block: Some(&wrong),
        ..online.request()
    });
    assert_eq!(
        response.decision,
        Decision::Declined(DeclineReason::IncorrectPin)
    );
    // The incorrect-PIN scenario declines even the right PIN.
    let online = Online::new("visa-online-pin", 4055);
    let right = pin_block(
        &zpk_tdes(),
        PinBlockFormat::Iso0,
        online.test_pin(),
        &online.pan,
    );
    let response = simulator().authorize(&AuthorizationRequest {
        pin_block: Some(&right),
        ..online.request()
    });
    assert_eq!(
        response.decision,
        Decision::Declined(DeclineReason::IncorrectPin)
    );
    assert_eq!(response.checks.pin, Some(true));
    // Issuer unavailable wins over a tampered ARQC and an expired card.
    let online = Online::new("mc-cda", 2591);
    let icc = crate::with_value(&online.icc, emv_kernel::Tag::ApplicationCryptogram, &[0; 8]);
    let response = simulator().authorize(&AuthorizationRequest {
        icc_data: &icc,
        today_yymmdd: "351231",
        ..online.request()
    });
    assert_eq!(response.decision, Decision::IssuerUnavailable);
    // An unknown card is refused before: there is no issuer to route to.
    let response = simulator().authorize(&AuthorizationRequest {
        pan: "5413330000000000",
        ..online.request()
    });
    assert_eq!(
        response.decision,
        Decision::Declined(DeclineReason::InvalidCard)
    );
}

#[test]
fn the_crate_documentation_lists_every_row() {
    let doc = include_str!("../../src/lib.rs");
    for row in IssuerSimulator::scenarios() {
        let ending = row
            .amount_ending
            .map_or_else(|| "anything else".to_owned(), |e| format!("`{e:02}`"));
        let line = format!("//! | {ending} | `{}` |", row.name);
        assert!(doc.contains(&line), "missing doc row: {line}");
        assert!(
            doc.lines().any(|l| l.starts_with(&line)
                && l.trim_end()
                    .ends_with(&format!("`{}` |", row.response_code))),
            "{}",
            row.name
        );
    }
}
