use emv_kernel::cvm::{
    self, Cvm, CvmContext, CvmDecision, CvmList, CvmResults, capability, select_c2, select_c3,
};
use emv_kernel::tvr::{Tvr, TvrBit};
use hex_literal::hex;

/// The CVM List of the Mastercard test card in the emv-tools `cda_test.c` static data (tag `8E`):
/// X = Y = 0, "signature if terminal supports it" (1E 03), then "no CVM required if terminal
/// supports it" (1F 03).
const PUBLISHED_CVM_LIST: [u8; 12] = hex!("00000000 00000000 1E03 1F03");

fn context(amount: u64, capability: u8) -> CvmContext {
    CvmContext {
        amount,
        in_application_currency: true,
        cash: false,
        cashback: false,
        unattended: false,
        capability,
    }
}

#[test]
fn published_list_selects_by_reader_capability() {
    let list = CvmList::parse(&PUBLISHED_CVM_LIST).unwrap();
    assert_eq!((list.amount_x, list.amount_y, list.rules.len()), (0, 0, 2));

    let mut tvr = Tvr::new();
    let both = capability::SIGNATURE | capability::NO_CVM;
    assert_eq!(
        cvm::process_list(&list, &context(1000, both), &mut tvr),
        CvmDecision {
            cvm: Cvm::Signature,
            results: CvmResults(hex!("1E0300")),
            failed: false,
        }
    );
    // A reader without signature skips the first rule (condition "if terminal supports").
    assert_eq!(
        cvm::process_list(&list, &context(1000, capability::NO_CVM), &mut tvr),
        CvmDecision {
            cvm: Cvm::NoCvm,
            results: CvmResults(hex!("1F0302")),
            failed: false,
        }
    );
    assert_eq!(tvr, Tvr::new());
    // Neither supported: end of list, verification failed (Book 3 10.5).
    let decision = cvm::process_list(&list, &context(1000, capability::ONLINE_PIN), &mut tvr);
    assert_eq!(decision.results, CvmResults::FAILED);
    assert!(decision.failed);
    assert!(tvr.is_set(TvrBit::CardholderVerificationNotSuccessful));
}

#[test]
fn amount_conditions_and_fallthrough() {
    // X = 50.00: online PIN over X (fall through if unsuccessful), no CVM under X... then signature.
    let list = CvmList::parse(&hex!("00001388 00000000 4207 1F06 5E00")).unwrap();
    let all = capability::ONLINE_PIN | capability::SIGNATURE | capability::NO_CVM;
    let mut tvr = Tvr::new();
    let over = cvm::process_list(&list, &context(6000, all), &mut tvr);
    assert_eq!(over.cvm, Cvm::OnlinePin);
    assert_eq!(over.results, CvmResults(hex!("420700")));
    assert!(tvr.is_set(TvrBit::OnlinePinEntered));
    let under = cvm::process_list(&list, &context(1000, all), &mut Tvr::new());
    assert_eq!(under.cvm, Cvm::NoCvm);
    // Not in the application currency: X conditions do not apply; signature remains.
    let foreign = CvmContext {
        in_application_currency: false,
        ..context(1000, all)
    };
    assert_eq!(
        cvm::process_list(&list, &foreign, &mut Tvr::new()).cvm,
        Cvm::Signature
    );
    // Online PIN unsupported with b7 set: next rule applies.
    let no_pin = cvm::process_list(
        &list,
        &context(6000, capability::SIGNATURE),
        &mut Tvr::new(),
    );
    assert_eq!(no_pin.cvm, Cvm::Signature);
}

#[test]
fn unrecognised_and_fail_rules() {
    let mut tvr = Tvr::new();
    // An unrecognised CVM without b7: verification fails with that rule in the results.
    let list = CvmList::parse(&hex!("00000000 00000000 2000 1F00")).unwrap();
    let decision = cvm::process_list(&list, &context(100, capability::NO_CVM), &mut tvr);
    assert!(decision.failed);
    assert_eq!(decision.results, CvmResults(hex!("200001")));
    assert!(tvr.is_set(TvrBit::UnrecognisedCvm));
    // "Fail CVM processing" always fails.
    let list = CvmList::parse(&hex!("00000000 00000000 0000")).unwrap();
    assert!(cvm::process_list(&list, &context(100, capability::NO_CVM), &mut tvr).failed);
    // Offline PIN is not available contactless.
    let list = CvmList::parse(&hex!("00000000 00000000 0100")).unwrap();
    assert!(cvm::process_list(&list, &context(100, 0xF8), &mut tvr).failed);
}

#[test]
fn malformed_lists() {
    assert!(CvmList::parse(&hex!("00000000 000000")).is_err());
    assert!(CvmList::parse(&hex!("00000000 00000000 1F")).is_err());
    assert!(
        CvmList::parse(&hex!("00000000 00000000"))
            .unwrap()
            .rules
            .is_empty()
    );
}

#[test]
fn kernel_2_selection() {
    let all = capability::ONLINE_PIN | capability::SIGNATURE | capability::NO_CVM;
    let list = CvmList::parse(&PUBLISHED_CVM_LIST).unwrap();
    // On-device CVM: AIP byte 1 b2 and the reader supports it.
    let mut tvr = Tvr::new();
    let above = select_c2(
        hex!("1B80"),
        true,
        Some(&list),
        true,
        &context(9000, all),
        &mut tvr,
    );
    assert_eq!(above.cvm, Cvm::ConfirmationCodeVerified);
    assert_eq!(above.results, CvmResults(hex!("010002")));
    let below = select_c2(
        hex!("1B80"),
        true,
        Some(&list),
        false,
        &context(100, all),
        &mut tvr,
    );
    assert_eq!(below.results, CvmResults(hex!("3F0002")));
    // Cardholder verification not supported by the card (AIP byte 1 b5 clear).
    let unsupported = select_c2(
        hex!("0980"),
        false,
        Some(&list),
        true,
        &context(9000, all),
        &mut tvr,
    );
    assert_eq!(unsupported.results, CvmResults(hex!("3F0000")));
    // Supported but no list: ICC data missing.
    let missing = select_c2(
        hex!("1980"),
        false,
        None,
        true,
        &context(9000, all),
        &mut tvr,
    );
    assert_eq!(missing.cvm, Cvm::NoCvm);
    assert!(tvr.is_set(TvrBit::IccDataMissing));
}

#[test]
fn kernel_3_selection() {
    // TTQ 36 00 40 00: EMV mode, contact chip, online PIN, signature; CDCVM supported.
    let ttq = hex!("36004000");
    let cvm_required = hex!("36404000");
    assert_eq!(
        select_c3(&ttq, Some(&hex!("8000")), true),
        Some(Cvm::OnlinePin)
    );
    assert_eq!(
        select_c3(&ttq, Some(&hex!("0080")), true),
        Some(Cvm::ConfirmationCodeVerified)
    );
    assert_eq!(
        select_c3(&ttq, Some(&hex!("4000")), true),
        Some(Cvm::Signature)
    );
    assert_eq!(select_c3(&ttq, Some(&hex!("0000")), true), Some(Cvm::NoCvm));
    assert_eq!(select_c3(&cvm_required, Some(&hex!("0000")), true), None);
    assert_eq!(select_c3(&cvm_required, None, true), Some(Cvm::Signature));
    // Online PIN required by the card but the reader cannot go online: no CVM agreed.
    assert_eq!(
        select_c3(&hex!("36400000"), Some(&hex!("8000")), false),
        None
    );
}
