//! The conformance suite on the kernel built from this workspace: every virtual card × amounts
//! around each reader limit, native against `.wasm` in every engine of this build (wasmi and
//! wasmtime), and what the outcomes must be.

use std::sync::OnceLock;

use kernel_host::conformance::{self, CVM_REQUIRED_LIMIT, FLOOR_LIMIT, Report, TRANSACTION_LIMIT};
use kernel_host::{EngineKind, Limits};

use crate::kernel_wasm::kernel_wasm;

/// The suite's report in `engine`, run once per test binary.
fn report_on(engine: EngineKind) -> &'static Report {
    static WASMI: OnceLock<Report> = OnceLock::new();
    static WASMTIME: OnceLock<Report> = OnceLock::new();
    let cell = match engine {
        EngineKind::Wasmtime => &WASMTIME,
        _ => &WASMI,
    };
    cell.get_or_init(|| conformance::run_on(engine, kernel_wasm()))
}

/// The report the outcome checks below read (the default engine's).
fn report() -> &'static Report {
    report_on(EngineKind::default())
}

#[test]
fn native_and_wasm_agree_on_every_card_and_amount() {
    for &engine in EngineKind::available() {
        check_agreement(engine);
    }
}

#[cfg(feature = "wasmtime")]
#[test]
fn wasmi_and_wasmtime_agree_on_every_card_and_amount() {
    let wasmi = report_on(EngineKind::Wasmi);
    let wasmtime = report_on(EngineKind::Wasmtime);
    assert_eq!(wasmi.cases.len(), wasmtime.cases.len());
    for (a, b) in wasmi.cases.iter().zip(&wasmtime.cases) {
        assert_eq!((a.profile, a.amount), (b.profile, b.amount));
        let (a, b) = (a.wasm.as_ref().unwrap(), b.wasm.as_ref().unwrap());
        assert_eq!(a.outcome_message, b.outcome_message);
        assert!(a.commands().eq(b.commands()));
    }
}

fn check_agreement(engine: EngineKind) {
    let report = report_on(engine);
    println!("{engine}:\n{report}");
    assert!(report.load_error.is_none(), "{report}");
    assert_eq!(
        report.cases.len(),
        conformance::profiles().len() * conformance::amounts().len()
    );
    assert!(report.passed(), "{report}");
    for case in &report.cases {
        let native = case.native.as_ref().expect("every case ends in an outcome");
        let wasm = case.wasm.as_ref().expect("every case ends in an outcome");
        assert_eq!(native.outcome, wasm.outcome);
        assert_eq!(native.outcome_message, wasm.outcome_message);
        assert!(native.commands().eq(wasm.commands()));
        // The default fuel budget leaves a wide margin over any honest transaction.
        let fuel = wasm.fuel_consumed.expect("the .wasm path meters fuel");
        assert!(
            fuel < Limits::default().fuel_per_transaction / 4,
            "{engine}: {} at {}: {fuel}",
            case.profile,
            case.amount
        );
    }
}

#[test]
fn the_suite_covers_every_profile_and_both_sides_of_every_limit() {
    assert_eq!(
        conformance::profiles(),
        [
            "visa-fdda",
            "mc-cda",
            "visa-online-pin",
            "expired",
            "bad-signature",
            "no-supported-aid",
            "malformed",
            "multi-app"
        ]
    );
    let amounts = conformance::amounts();
    for limit in [FLOOR_LIMIT, CVM_REQUIRED_LIMIT, TRANSACTION_LIMIT] {
        for amount in [limit - 1, limit, limit + 1] {
            assert!(amounts.contains(&amount), "{amount}");
        }
    }
}

/// Kind, reason code, CVM and ODA status of the `.wasm`'s outcome for `profile` at `amount`.
fn outcome(profile: &str, amount: u64) -> (String, String, Option<String>, String) {
    let case = report()
        .cases
        .iter()
        .find(|case| case.profile == profile && case.amount == amount)
        .expect("case in the suite");
    let outcome = &case.wasm.as_ref().expect("an outcome").outcome;
    (
        outcome.kind.clone(),
        outcome.reason.code.clone(),
        outcome.cvm.clone(),
        outcome.oda.status.clone(),
    )
}

/// Checks kind, reason and ODA status.
fn expect(profile: &str, amount: u64, kind: &str, reason: &str, oda: &str) {
    let (found_kind, found_reason, _, found_oda) = outcome(profile, amount);
    assert_eq!(
        (
            found_kind.as_str(),
            found_reason.as_str(),
            found_oda.as_str()
        ),
        (kind, reason, oda),
        "{profile} at {amount}"
    );
}

fn below_transaction_limit() -> impl Iterator<Item = u64> {
    conformance::amounts()
        .into_iter()
        .filter(|amount| *amount < TRANSACTION_LIMIT)
}

#[test]
fn outcomes_follow_the_reader_limits() {
    // Book B 3.1.1: at or above the contactless transaction limit, no card is even selected.
    for profile in conformance::profiles() {
        for amount in [TRANSACTION_LIMIT, TRANSACTION_LIMIT + 1] {
            expect(
                profile,
                amount,
                "try_another_interface",
                "contactless_limit_exceeded",
                "not_performed",
            );
        }
    }
    // Kernel 3 qVSDC with fDDA: approved offline up to the floor limit (it is exceeded only
    // above it), online above it (fDDA is for offline approvals only).
    for amount in [FLOOR_LIMIT - 1, FLOOR_LIMIT] {
        expect(
            "visa-fdda",
            amount,
            "approved",
            "card_approved",
            "succeeded",
        );
    }
    expect(
        "visa-fdda",
        FLOOR_LIMIT + 1,
        "online_request",
        "card_requested_online",
        "not_performed",
    );
    // From the CVM Required Limit on, the reader needs a CVM; this card's CTQ offers none.
    for amount in [CVM_REQUIRED_LIMIT, CVM_REQUIRED_LIMIT + 1] {
        let (kind, reason, _, _) = outcome("visa-fdda", amount);
        assert_ne!(kind, "approved", "{amount}");
        assert_eq!(reason, "cvm_not_satisfied", "{amount}");
    }
    // Kernel 2 M/Chip with CDA: TC at or below the floor limit, ARQC above; CDA either way.
    for amount in [FLOOR_LIMIT - 1, FLOOR_LIMIT] {
        expect("mc-cda", amount, "approved", "card_approved", "succeeded");
    }
    for amount in [
        FLOOR_LIMIT + 1,
        CVM_REQUIRED_LIMIT - 1,
        CVM_REQUIRED_LIMIT + 1,
    ] {
        expect(
            "mc-cda",
            amount,
            "online_request",
            "card_requested_online",
            "succeeded",
        );
    }
    // Kernel 2 compares the CVM Required Limit strictly (Book C-2): no CVM up to and at it.
    for amount in [FLOOR_LIMIT - 1, CVM_REQUIRED_LIMIT] {
        let (_, _, cvm, _) = outcome("mc-cda", amount);
        assert_eq!(cvm.as_deref(), Some("no_cvm"), "{amount}");
    }
    let (_, _, cvm, _) = outcome("mc-cda", CVM_REQUIRED_LIMIT + 1);
    assert!(cvm.is_some() && cvm.as_deref() != Some("no_cvm"), "{cvm:?}");
    // The two-application card: Entry Point skips the unsupported AID and runs Kernel 2 on the
    // M/Chip application, as for the single-application card.
    for amount in [FLOOR_LIMIT - 1, FLOOR_LIMIT] {
        expect(
            "multi-app",
            amount,
            "approved",
            "card_approved",
            "succeeded",
        );
    }
    expect(
        "multi-app",
        FLOOR_LIMIT + 1,
        "online_request",
        "card_requested_online",
        "succeeded",
    );
    // The online-PIN card always goes online.
    for amount in below_transaction_limit() {
        let (kind, ..) = outcome("visa-online-pin", amount);
        assert_eq!(kind, "online_request", "{amount}");
    }
    let (_, _, cvm, _) = outcome("visa-online-pin", CVM_REQUIRED_LIMIT + 1);
    assert_eq!(cvm.as_deref(), Some("online_pin"));
    // The cloned card is never approved offline: where it would have been, fDDA fails and the
    // card goes online (CTQ: online if ODA fails).
    for amount in below_transaction_limit() {
        let (kind, ..) = outcome("bad-signature", amount);
        assert_ne!(kind, "approved", "{amount}");
    }
    // The failure is in the reason and in `oda`; field 55 keeps the TVR the card's ARQC covers
    // (the one sent in GPO), while the outcome's `tvr` says "DDA failed" (Book C-3 5.5).
    expect(
        "bad-signature",
        FLOOR_LIMIT - 1,
        "online_request",
        "oda_failed",
        "failed",
    );
    let case = report()
        .cases
        .iter()
        .find(|case| case.profile == "bad-signature" && case.amount == FLOOR_LIMIT - 1)
        .expect("case in the suite");
    let bad = &case.wasm.as_ref().expect("an outcome").outcome;
    assert_eq!(bad.tvr.0[0] & 0x08, 0x08);
    assert_eq!(
        bad.get(emv_kernel::Tag::TerminalVerificationResults),
        Some(&[0u8; 5][..])
    );
    // The expired card is never approved offline.
    for amount in below_transaction_limit() {
        let (kind, ..) = outcome("expired", amount);
        assert_eq!(kind, "online_request", "{amount}");
    }
    // No kernel for the private-label AID; malformed data ends the transaction.
    for amount in below_transaction_limit() {
        expect(
            "no-supported-aid",
            amount,
            "try_another_interface",
            "no_mutual_application",
            "not_performed",
        );
        expect(
            "malformed",
            amount,
            "end_application",
            "malformed_response",
            "not_performed",
        );
    }
}
