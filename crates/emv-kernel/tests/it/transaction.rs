//! Whole transactions against the scripted cards of `card`, then hostile cards.

use emv_kernel::apdu::Command;
use emv_kernel::cvm::{Cvm, CvmResults};
use emv_kernel::entry_point::Kernel;
use emv_kernel::oda::OdaError;
use emv_kernel::outcome::{OdaMethod, OdaStatus, Phase, Reason};
use emv_kernel::tvr::{TsiBit, TvrBit};
use emv_kernel::{OutcomeKind, Step, Tag, Transaction, TransactionParams};
use hex_literal::hex;
use proptest::prelude::*;

use crate::card::{self, Card, Decision, MC_PAN, PAN, UN, params, run};

#[test]
fn visa_online_request_carries_authorisation_data() {
    let mut card = Card::visa(Decision::Online);
    let outcome = run(&mut card, params(4_000));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert_eq!(outcome.reason, Reason::CardRequestedOnline);
    assert_eq!(outcome.kernel, Some(3));
    // Amount 40.00 is at or above the CVM Required Limit (30.00) and the card asks for online PIN.
    assert_eq!(outcome.cvm, Some(Cvm::OnlinePin));
    let data = &outcome.data;
    assert_eq!(
        data.get(Tag::ApplicationCryptogram),
        Some(&hex!("1122334455667788")[..])
    );
    assert_eq!(data.get(Tag::CryptogramInformationData), Some(&[0x80][..]));
    assert_eq!(data.get(Tag::UnpredictableNumber), Some(&UN[..]));
    assert_eq!(
        data.get(Tag::AmountAuthorised),
        Some(&hex!("000000004000")[..])
    );
    assert_eq!(
        data.get(Tag::TransactionCurrencyCode),
        Some(&hex!("0978")[..])
    );
    assert_eq!(data.get(Tag::TransactionDate), Some(&hex!("261126")[..]));
    assert_eq!(data.get(Tag::DfName), Some(&card::VISA_AID[..]));
    // Pre-processing set "CVM required" in the TTQ sent to the card (Book B 3.1.1).
    assert_eq!(
        data.get(Tag::TerminalTransactionQualifiers),
        Some(&hex!("26404000")[..])
    );
    assert!(data.get(Tag::Track2EquivalentData).is_some());
    // The commands: SELECT PPSE, SELECT AID, GPO with the 33-byte PDOL data.
    assert_eq!(card.commands.len(), 3);
    assert_eq!(card.commands[0], Command::select_ppse().to_bytes());
    assert_eq!(&card.commands[2][..7], &hex!("80A8000023 8321"));
    // The PAN never shows in Debug output.
    let shown = format!("{outcome:?}");
    assert!(!shown.contains("4761739001010010"), "{shown}");
    let tlv = data.to_tlv();
    assert!(!tlv.is_empty());
}

#[test]
fn visa_offline_approval_with_fdda() {
    let mut card = Card::visa(Decision::Offline);
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::Approved, "{outcome:?}");
    assert_eq!(outcome.oda, OdaStatus::Succeeded(OdaMethod::Fdda));
    assert_eq!(outcome.cvm, Some(Cvm::NoCvm));
    assert_eq!(outcome.data.get(Tag::ApplicationPan), Some(&PAN[..]));
    // GPO then three records.
    assert_eq!(card.commands.len(), 6);
}

#[test]
fn visa_offline_with_broken_signature_is_declined() {
    let mut card = Card::visa(Decision::Offline);
    // Replace the ICC certificate record by one whose certificate is flipped.
    let record = card.records.get_mut(&(2, 2)).unwrap();
    record[10] ^= 0x01;
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::Declined, "{outcome:?}");
    assert!(
        matches!(outcome.reason, Reason::OdaFailed(_)),
        "{outcome:?}"
    );
    assert!(outcome.tvr.is_set(TvrBit::DdaFailed));
}

/// Breaks the ICC Public Key Certificate of the scripted Visa card (record SFI 2, record 2).
fn break_icc_certificate(card: &mut Card) {
    let record = card.records.get_mut(&(2, 2)).unwrap();
    record[10] ^= 0x01;
}

/// The reader's Kernel 3 TTQ with "offline data authentication for online authorisations
/// supported" (byte 1 b1) and, when `contact_chip`, "EMV contact chip supported" (byte 1 b5).
fn visa_params(amount: u64, oda_for_online: bool, contact_chip: bool) -> TransactionParams {
    let mut params = params(amount);
    let visa = params
        .config
        .aids
        .iter_mut()
        .find(|aid| aid.kernel == Kernel::C3)
        .unwrap();
    if oda_for_online {
        visa.ttq[0] |= 0x01;
    }
    if contact_chip {
        visa.ttq[0] |= 0x10;
    }
    params
}

/// A failed fDDA that goes online (CTQ "go online if offline data authentication fails") says
/// so in `oda` too, not only in the reason and the TVR (Book C-3 5.5).
#[test]
fn visa_fdda_failure_going_online_reports_the_failed_fdda() {
    let mut card = Card::visa(Decision::Offline);
    card.ctq = hex!("A000");
    break_icc_certificate(&mut card);
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    let Reason::OdaFailed(error) = outcome.reason else {
        panic!("{outcome:?}");
    };
    assert_eq!(outcome.oda, OdaStatus::Failed(OdaMethod::Fdda, error));
    assert!(outcome.tvr.is_set(TvrBit::DdaFailed));
    assert!(outcome.tsi.is_set(TsiBit::OdaPerformed));
    // The card computed its ARQC in GPO over the PDOL data, TVR included (bytes 18 to 22 of
    // VISA_PDOL's data): the authorisation data carries that TVR, not the one with "DDA failed",
    // or the issuer could not verify the cryptogram.
    let sent = &card.pdol_data[18..23];
    assert_eq!(sent, [0; 5]);
    assert_eq!(
        outcome.data.get(Tag::TerminalVerificationResults),
        Some(sent)
    );
    assert_ne!(&outcome.tvr.bytes()[..], sent);
}

/// The same with CTQ "switch interface if offline data authentication fails" on a reader with a
/// contact chip: Try Another Interface, with the failed fDDA in `oda`.
#[test]
fn visa_fdda_failure_switching_interface_reports_the_failed_fdda() {
    let mut card = Card::visa(Decision::Offline);
    card.ctq = hex!("9000");
    break_icc_certificate(&mut card);
    let outcome = run(&mut card, visa_params(1_000, false, true));
    assert_eq!(
        outcome.kind,
        OutcomeKind::TryAnotherInterface,
        "{outcome:?}"
    );
    let Reason::OdaFailed(error) = outcome.reason else {
        panic!("{outcome:?}");
    };
    assert_eq!(outcome.oda, OdaStatus::Failed(OdaMethod::Fdda, error));
    assert!(outcome.tvr.is_set(TvrBit::DdaFailed));
}

/// A declined offline fDDA with a missing data object also sets "ICC data missing".
#[test]
fn visa_fdda_missing_certificate_is_declined_as_failed_fdda() {
    let mut card = Card::visa(Decision::Offline);
    card.records.remove(&(2, 2));
    card.records.insert((2, 2), hex!("7004 9F4701 03").to_vec());
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::Declined, "{outcome:?}");
    assert_eq!(
        outcome.oda,
        OdaStatus::Failed(
            OdaMethod::Fdda,
            OdaError::MissingData(Tag::IccPublicKeyCertificate)
        )
    );
    assert!(outcome.tvr.is_set(TvrBit::IccDataMissing));
}

/// With "offline data authentication for online authorisations supported" in the TTQ, the card
/// signs its ARQC answer and Kernel 3 verifies the signature (Book C-3 5.5): Online Request with
/// fDDA succeeded.
#[test]
fn visa_online_with_oda_for_online_verifies_fdda() {
    let mut card = Card::visa(Decision::Online);
    let outcome = run(&mut card, visa_params(4_000, true, false));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert_eq!(outcome.reason, Reason::CardRequestedOnline);
    assert_eq!(outcome.oda, OdaStatus::Succeeded(OdaMethod::Fdda));
    assert!(outcome.tsi.is_set(TsiBit::OdaPerformed));
    assert!(!outcome.tvr.is_set(TvrBit::DdaFailed));
    assert_eq!(outcome.cvm, Some(Cvm::OnlinePin));
    // GPO then the records with the certificates.
    assert_eq!(card.commands.len(), 6);
}

/// An online fDDA that fails is handled as an offline one: TVR "DDA failed", and the CTQ decides
/// (declined without "go online if offline data authentication fails", online with it).
#[test]
fn visa_online_fdda_failure_follows_the_ctq() {
    let mut card = Card::visa(Decision::Online);
    break_icc_certificate(&mut card);
    let outcome = run(&mut card, visa_params(4_000, true, false));
    assert_eq!(outcome.kind, OutcomeKind::Declined, "{outcome:?}");
    assert!(
        matches!(outcome.reason, Reason::OdaFailed(_)),
        "{outcome:?}"
    );
    assert!(matches!(outcome.oda, OdaStatus::Failed(OdaMethod::Fdda, _)));
    assert!(outcome.tvr.is_set(TvrBit::DdaFailed));

    let mut card = Card::visa(Decision::Online);
    card.ctq = hex!("A000");
    break_icc_certificate(&mut card);
    let outcome = run(&mut card, visa_params(4_000, true, false));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert!(matches!(outcome.oda, OdaStatus::Failed(OdaMethod::Fdda, _)));
    assert!(outcome.tvr.is_set(TvrBit::DdaFailed));
}

/// Without the TTQ bit the kernel leaves an online transaction's ODA alone.
#[test]
fn visa_online_without_oda_for_online_performs_no_oda() {
    let mut card = Card::visa(Decision::Online);
    let outcome = run(&mut card, visa_params(4_000, false, false));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert_eq!(outcome.oda, OdaStatus::NotPerformed);
    assert!(!outcome.tsi.is_set(TsiBit::OdaPerformed));
}

#[test]
fn visa_card_decline() {
    let mut card = Card::visa(Decision::Decline);
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::Declined);
    assert_eq!(outcome.reason, Reason::CardDeclined);
}

#[test]
fn mastercard_online_with_cda() {
    let mut card = Card::mastercard(Decision::Online);
    let outcome = run(&mut card, params(4_000));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert_eq!(outcome.kernel, Some(2));
    assert_eq!(outcome.oda, OdaStatus::Succeeded(OdaMethod::Cda));
    // The cryptogram comes out of the CDA signature.
    assert_eq!(
        outcome.data.get(Tag::ApplicationCryptogram),
        Some(&hex!("8877665544332211")[..])
    );
    assert_eq!(outcome.data.get(Tag::ApplicationPan), Some(&MC_PAN[..]));
    // CVM list: online PIN if the terminal supports it (42 03), result unknown.
    assert_eq!(outcome.cvm, Some(Cvm::OnlinePin));
    assert_eq!(outcome.cvm_results, Some(CvmResults(hex!("420300"))));
    // Floor limit 0: the amount exceeds it, so TAA asked for an ARQC with CDA (P1 = 90).
    assert!(outcome.tvr.is_set(TvrBit::ExceedsFloorLimit));
    let generate_ac = card.commands.last().unwrap();
    assert_eq!(&generate_ac[..4], &hex!("80AE9000"));
    // The TVR sent in CDOL1 and the one in the outcome agree.
    assert_eq!(
        outcome.data.get(Tag::TerminalVerificationResults),
        Some(&outcome.tvr.bytes()[..])
    );
}

#[test]
fn mastercard_offline_approval_below_floor_limit() {
    let mut card = Card::mastercard(Decision::Offline);
    let mut params = params(1_000);
    params.config.aids[1].floor_limit = Some(5_000);
    let outcome = run(&mut card, params);
    assert_eq!(outcome.kind, OutcomeKind::Approved, "{outcome:?}");
    assert_eq!(outcome.oda, OdaStatus::Succeeded(OdaMethod::Cda));
    // Below the CVM limit the reader only offers "no CVM" (DF8119 = 08): 1F 03 applies.
    assert_eq!(outcome.cvm, Some(Cvm::NoCvm));
    assert_eq!(outcome.cvm_results, Some(CvmResults(hex!("1F0302"))));
    assert_eq!(&card.commands.last().unwrap()[..4], &hex!("80AE5000"));
}

#[test]
fn mastercard_tampered_cda_signature_declines() {
    let mut card = Card::mastercard(Decision::Online);
    // Corrupt the static data after signing: the ICC certificate no longer verifies, so CDA is
    // known to fail before GENERATE AC and is not requested; TAC/IAC online then applies.
    let record = card.records.get_mut(&(1, 1)).unwrap();
    let last = record.len() - 1;
    record[last] ^= 0x01;
    let outcome = run(&mut card, params(4_000));
    assert!(outcome.tvr.is_set(TvrBit::CdaFailed), "{outcome:?}");
    assert!(matches!(outcome.oda, OdaStatus::Failed(OdaMethod::Cda, _)));
    assert_eq!(&card.commands.last().unwrap()[..4], &hex!("80AE8000"));
}

#[test]
fn amount_over_every_contactless_limit_asks_for_another_interface() {
    let (_, step) = Transaction::new(params(100_000));
    let Step::Done(outcome) = step else {
        panic!("no command expected");
    };
    assert_eq!(outcome.kind, OutcomeKind::TryAnotherInterface);
    assert_eq!(outcome.reason, Reason::ContactlessLimitExceeded);
}

#[test]
fn no_ppse_asks_for_another_interface() {
    let mut card = Card::visa(Decision::Online);
    card.overrides.insert(0, hex!("6A82").to_vec());
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::TryAnotherInterface);
    assert!(matches!(
        outcome.reason,
        Reason::CardError {
            phase: Phase::SelectPpse,
            ..
        }
    ));
}

#[test]
fn gpo_conditions_not_satisfied_selects_next_then_ends() {
    let mut card = Card::visa(Decision::Online);
    card.overrides.insert(2, hex!("6985").to_vec());
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::TryAnotherInterface);
    assert_eq!(outcome.reason, Reason::NoMutualApplication);
}

#[test]
fn gpo_6984_asks_for_another_interface() {
    let mut card = Card::visa(Decision::Online);
    card.overrides.insert(2, hex!("6984").to_vec());
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::TryAnotherInterface);
}

#[test]
fn repeated_data_object_ends_the_transaction() {
    let mut card = Card::visa(Decision::Online);
    card.gpo_extra = hex!("9F3602 0043").to_vec();
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::EndApplication);
    assert_eq!(
        outcome.reason,
        Reason::RedundantData {
            tag: Tag::ApplicationTransactionCounter
        }
    );
}

#[test]
fn get_response_and_wrong_le_are_handled() {
    // The PPSE answer comes in two parts (61xx then GET RESPONSE), and SELECT AID first says 6C.
    let mut card = Card::visa(Decision::Online);
    let ppse = card.ppse.clone();
    let (first, second) = ppse.split_at(10);
    let rest = second.len() as u8;
    card.overrides.insert(0, [first, &[0x61, rest]].concat());
    card.overrides.insert(1, [second, &hex!("9000")].concat());
    card.overrides.insert(2, hex!("6C20").to_vec());
    let outcome = run(&mut card, params(4_000));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert_eq!(card.commands[1], [0x00, 0xC0, 0x00, 0x00, rest]);
    assert_eq!(*card.commands[3].last().unwrap(), 0x20);
}

#[test]
fn resume_after_done_repeats_the_outcome() {
    let (mut transaction, step) = Transaction::new(params(100_000));
    let Step::Done(first) = step else { panic!() };
    assert_eq!(transaction.resume(&hex!("9000")), Step::Done(first.clone()));
    assert_eq!(transaction.outcome(), Some(&first));
}

/// Drives a transaction with the scripted card for `honest` commands, then answers with
/// `garbage` at every further step. The kernel must end with an outcome, never panic.
fn hostile_run(kind: Decision, mastercard: bool, honest: usize, garbage: &[Vec<u8>]) {
    let mut card = if mastercard {
        Card::mastercard(kind)
    } else {
        Card::visa(kind)
    };
    let (mut transaction, mut step) = Transaction::new(params(4_000));
    let mut sent = 0;
    let mut garbage = garbage.iter().cycle();
    for _ in 0..200 {
        match step {
            Step::SendApdu(command) => {
                let answer = if sent < honest {
                    card.transmit(&command)
                } else {
                    garbage.next().cloned().unwrap_or_default()
                };
                sent += 1;
                step = transaction.resume(&answer);
            }
            Step::Done(_) => return,
        }
    }
    panic!("no outcome after 200 commands");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes as the card's answer at any step, for both kernels.
    #[test]
    fn random_card_answers_never_panic(
        honest in 0usize..8,
        mastercard in any::<bool>(),
        online in any::<bool>(),
        garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..4),
    ) {
        let decision = if online { Decision::Online } else { Decision::Offline };
        hostile_run(decision, mastercard, honest, &garbage);
    }

    /// Random TLV-shaped answers with a success status: they get past the status checks.
    #[test]
    fn random_successful_answers_never_panic(
        honest in 0usize..8,
        mastercard in any::<bool>(),
        template in prop::sample::select(vec![0x6Fu8, 0x70, 0x77, 0x80]),
        body in proptest::collection::vec(any::<u8>(), 0..250),
    ) {
        let mut answer = vec![template];
        answer.push(body.len().min(127) as u8);
        answer.extend_from_slice(&body[..body.len().min(127)]);
        answer.extend_from_slice(&[0x90, 0x00]);
        hostile_run(Decision::Online, mastercard, honest, &[answer]);
    }

    /// One flipped byte anywhere in an honest card's answers.
    #[test]
    fn flipped_bytes_never_panic(
        mastercard in any::<bool>(),
        offline in any::<bool>(),
        command in 0usize..8,
        position in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let decision = if offline { Decision::Offline } else { Decision::Online };
        let mut card = if mastercard { Card::mastercard(decision) } else { Card::visa(decision) };
        let (mut transaction, mut step) = Transaction::new(params(4_000));
        let mut sent = 0;
        for _ in 0..200 {
            match step {
                Step::SendApdu(apdu) => {
                    let mut answer = card.transmit(&apdu);
                    if sent == command && !answer.is_empty() {
                        let idx = position.index(answer.len());
                        answer[idx] ^= mask;
                    }
                    sent += 1;
                    step = transaction.resume(&answer);
                }
                Step::Done(_) => break,
            }
        }
        prop_assert!(transaction.outcome().is_some());
    }
}

#[test]
fn visa_without_pdol_ends_the_application() {
    let mut card = Card::visa(Decision::Online);
    card.fci = hex!("6F 0B 8407A0000000031010 A500").to_vec();
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::EndApplication);
    assert!(matches!(
        outcome.reason,
        Reason::MissingData { tag: Tag::Pdol, .. }
    ));
}

#[test]
fn visa_format_1_gpo_is_not_qvsdc() {
    let mut card = Card::visa(Decision::Online);
    card.overrides
        .insert(2, hex!("8006 2000 08010100 9000").to_vec());
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::EndApplication);
    assert_eq!(outcome.reason, Reason::MagstripeModeOnly);
}

#[test]
fn visa_expired_card_offline_is_declined() {
    let mut card = Card::visa(Decision::Offline);
    let mut params = params(1_000);
    params.date = emv_kernel::Date::new(2031, 1, 15).unwrap();
    let outcome = run(&mut card, params);
    assert_eq!(outcome.kind, OutcomeKind::Declined, "{outcome:?}");
    assert_eq!(outcome.reason, Reason::ApplicationExpired);
    assert!(outcome.tvr.is_set(TvrBit::ExpiredApplication));
}

#[test]
fn visa_cvm_required_but_not_agreed_is_declined() {
    let mut card = Card::visa(Decision::Online);
    let mut params = params(4_000);
    // Reader without online PIN or signature; the card asks for online PIN.
    params.config.aids[0].ttq = hex!("20004000");
    let outcome = run(&mut card, params);
    assert_eq!(outcome.kind, OutcomeKind::Declined, "{outcome:?}");
    assert_eq!(outcome.reason, Reason::CvmNotSatisfied);
}

#[test]
fn offline_only_reader_declines_an_arqc() {
    let mut card = Card::visa(Decision::Online);
    let mut params = params(1_000);
    params.config.online_capable = false;
    let outcome = run(&mut card, params);
    assert_eq!(outcome.kind, OutcomeKind::Declined);
    assert_eq!(outcome.reason, Reason::OnlineNotPossible);
}

#[test]
fn outcomes_carry_display_messages() {
    use emv_kernel::outcome::UiMessage;
    let outcome = run(&mut Card::visa(Decision::Online), params(4_000));
    assert_eq!(outcome.ui_message(), UiMessage::EnterPin);
    let outcome = run(&mut Card::visa(Decision::Offline), params(1_000));
    assert_eq!(outcome.ui_message(), UiMessage::Approved);
    assert_eq!(outcome.ui_message().identifier(), 0x03);
    let mut card = Card::visa(Decision::Online);
    card.overrides.insert(2, hex!("6986").to_vec());
    let outcome = run(&mut card, params(1_000));
    assert_eq!(outcome.kind, OutcomeKind::TryAgain);
    assert_eq!(outcome.ui_message(), UiMessage::SeePhone);
}

#[test]
fn mastercard_on_device_cvm_above_the_limit() {
    // AIP byte 1 b2: on-device cardholder verification (a phone wallet); the reader supports it.
    let mut card = Card::mastercard_with_aip(Decision::Online, hex!("3B80"));
    let outcome = run(&mut card, params(4_000));
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest, "{outcome:?}");
    assert_eq!(outcome.oda, OdaStatus::Succeeded(OdaMethod::Cda));
    assert_eq!(outcome.cvm, Some(Cvm::ConfirmationCodeVerified));
    assert_eq!(outcome.cvm_results, Some(CvmResults(hex!("010002"))));
}
