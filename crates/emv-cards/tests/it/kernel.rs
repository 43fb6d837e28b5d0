//! End to end: the kernel's `Transaction` (Entry Point, C-2, C-3) against every virtual card, with
//! the test CA keys in the reader's table. Outcomes are what EMV Books B, C-2 and C-3 make of each
//! card's answers.

use emv_cards::{Card, reader_config};
use emv_kernel::outcome::{OdaMethod, OdaStatus, Phase, Reason};
use emv_kernel::{Date, Outcome, OutcomeKind, Step, Transaction, TransactionParams};

fn run(name: &str, amount: u64) -> Outcome {
    let mut card = Card::profile(name).unwrap();
    let (mut transaction, mut step) = Transaction::new(TransactionParams {
        amount,
        amount_other: 0,
        currency_code: [0x08, 0x40],
        currency_exponent: 2,
        transaction_type: 0x00,
        date: Date::new(2026, 11, 26).unwrap(),
        time: [0x12, 0x00, 0x00],
        unpredictable_number: [0x1A, 0x2B, 0x3C, 0x4D],
        config: reader_config(),
    });
    loop {
        match step {
            Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)),
            Step::Done(outcome) => return outcome,
        }
    }
}

fn check(name: &str, amount: u64, kind: OutcomeKind, oda: OdaStatus) -> Outcome {
    let outcome = run(name, amount);
    assert_eq!(
        (outcome.kind, outcome.oda.clone()),
        (kind, oda),
        "{name} for {amount}: {outcome:?}"
    );
    outcome
}

#[test]
fn visa_fdda_card_is_approved_offline_or_goes_online_authenticated() {
    let outcome = check(
        "visa-fdda",
        1_000,
        OutcomeKind::Approved,
        OdaStatus::Succeeded(OdaMethod::Fdda),
    );
    assert_eq!(outcome.reason, Reason::CardApproved);
    // Above the card's offline limit the card asks for an online authorisation; it signs too
    // (the reader's TTQ says "ODA for online authorisations"), and Kernel 3 verifies that
    // signature on the online path (Book C-3).
    check(
        "visa-fdda",
        2_500,
        OutcomeKind::OnlineRequest,
        OdaStatus::Succeeded(OdaMethod::Fdda),
    );
}

#[test]
fn mastercard_cda_card_passes_cda() {
    check(
        "mc-cda",
        800,
        OutcomeKind::Approved,
        OdaStatus::Succeeded(OdaMethod::Cda),
    );
    check(
        "mc-cda",
        2_000,
        OutcomeKind::OnlineRequest,
        OdaStatus::Succeeded(OdaMethod::Cda),
    );
}

#[test]
fn online_pin_card_goes_online_with_online_pin() {
    let outcome = run("visa-online-pin", 4_000);
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert_eq!(
        outcome.cvm,
        Some(emv_kernel::cvm::Cvm::OnlinePin),
        "{outcome:?}"
    );
}

#[test]
fn expired_card_is_not_approved_offline() {
    let outcome = run("expired", 800);
    assert_ne!(outcome.kind, OutcomeKind::Approved, "{outcome:?}");
    assert!(
        outcome
            .tvr
            .is_set(emv_kernel::tvr::TvrBit::ExpiredApplication),
        "{outcome:?}"
    );
}

#[test]
fn cloned_card_fails_oda() {
    let outcome = run("bad-signature", 1_000);
    assert!(
        matches!(outcome.oda, OdaStatus::Failed(OdaMethod::Fdda, _))
            && matches!(outcome.reason, Reason::OdaFailed(_)),
        "{outcome:?}"
    );
    assert!(
        outcome.tvr.is_set(emv_kernel::tvr::TvrBit::DdaFailed),
        "{outcome:?}"
    );
    assert_ne!(outcome.kind, OutcomeKind::Approved, "{outcome:?}");
}

#[test]
fn card_without_supported_aid_has_no_mutual_application() {
    let outcome = run("no-supported-aid", 1_000);
    assert_eq!(outcome.reason, Reason::NoMutualApplication, "{outcome:?}");
}

#[test]
fn malformed_card_ends_with_a_malformed_response() {
    let outcome = run("malformed", 1_000);
    assert!(
        matches!(
            outcome.reason,
            Reason::MalformedResponse {
                phase: Phase::GetProcessingOptions,
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[test]
fn entry_point_skips_the_unsupported_application_of_a_multi_application_card() {
    let outcome = run("multi-app", 2_000);
    assert_eq!(outcome.kernel, Some(2), "{outcome:?}");
    assert_eq!(
        (outcome.kind, outcome.oda.clone()),
        (
            OutcomeKind::OnlineRequest,
            OdaStatus::Succeeded(OdaMethod::Cda)
        ),
        "{outcome:?}"
    );
}
