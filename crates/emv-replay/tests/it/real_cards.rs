//! Transcripts of real cards, written from public logs (each file cites its source at the top).
//! Their certificates are checked here against the bundled production CA keys with the kernel's
//! public ODA functions, which shows both the transcription and the key files are right.

use emv_kernel::entry_point::{AidConfig, Kernel};
use emv_kernel::oda::{self, Certificate, FddaInput, OdaRecord};
use emv_kernel::outcome::{OdaMethod, OdaStatus, Reason};
use emv_kernel::tlv::{self, Tag};
use emv_kernel::{Date, OutcomeKind, TerminalConfig, TransactionParams};
use emv_replay::{AnswerSource, CaSet, CardData, ReplayError, ReplayRun, Transcript, replay};
use hex_literal::hex;

fn transcript(name: &str) -> Transcript {
    let text = std::fs::read_to_string(crate::transcripts_dir().join(name)).unwrap();
    Transcript::parse(&text).unwrap()
}

/// The parameters of the AndroidCrypto recordings (see the transcript headers).
fn recorded_params() -> TransactionParams {
    let mut visa = AidConfig::new(&hex!("A000000003"), Kernel::C3);
    visa.ttq = hex!("27000000");
    let mastercard = AidConfig::new(&hex!("A000000004"), Kernel::C2);
    TransactionParams {
        amount: 1_000,
        amount_other: 0,
        currency_code: hex!("0978"),
        currency_exponent: 2,
        transaction_type: 0x00,
        date: Date::new(2023, 3, 1).unwrap(),
        time: hex!("111009"),
        unpredictable_number: hex!("38393031"),
        config: TerminalConfig {
            country_code: hex!("0978"),
            terminal_type: 0x22,
            terminal_capabilities: hex!("0068C8"),
            additional_terminal_capabilities: hex!("6000F0A001"),
            ifd_serial_number: None,
            merchant_category_code: None,
            merchant_identifier: None,
            terminal_identification: None,
            merchant_name_and_location: None,
            online_capable: true,
            aids: vec![visa, mastercard],
            ca_keys: CaSet::Production.table().unwrap(),
        },
    }
}

/// The value of `tag` in the successful answers of a run.
fn card_value(steps: &[emv_replay::ReplayStep], tag: Tag) -> Vec<u8> {
    for step in steps {
        let body = &step.response[..step.response.len() - 2];
        if let Ok(Some(found)) = tlv::find_nested(body, tag) {
            return found.value.to_vec();
        }
    }
    panic!("{tag:?} not read");
}

#[test]
fn visa_debit_goes_online_with_every_command_as_recorded() {
    let run = replay(&transcript("visa-debit-qvsdc.txt"), recorded_params()).unwrap();
    assert_eq!(
        run.outcome.kind,
        OutcomeKind::OnlineRequest,
        "{:?}",
        run.outcome
    );
    assert_eq!(run.outcome.reason, Reason::CardRequestedOnline);
    assert_eq!(run.outcome.kernel, Some(3));
    // The recording's TTQ 27000000 says "offline data authentication for online authorisations
    // supported" (byte 1 b1) and the card signed its ARQC answer: Kernel 3 verifies that fDDA
    // signature (Signed Data Format 95) under Visa production key 09 (Book C-3).
    assert_eq!(run.outcome.oda, OdaStatus::Succeeded(OdaMethod::Fdda));
    assert_eq!(run.steps.len(), 7);
    for step in &run.steps {
        assert!(
            matches!(
                step.source,
                AnswerSource::Recorded {
                    command_matches: true,
                    ..
                }
            ),
            "kernel command differs from the recording: {}",
            hex::encode_upper(&step.command)
        );
    }
    let data = CardData::from_steps(&run.steps, run.outcome.kernel);
    assert_eq!(data.aid.as_deref(), Some("A0000000031010"));
    assert_eq!(data.label.as_deref(), Some("VISA DEBIT"));
    assert_eq!(data.masked_pan.as_deref(), Some("492182******6752"));
    assert_eq!(data.expiry.as_deref(), Some("2025-02-28"));
    assert_eq!(data.aip.as_deref(), Some("2000"));
    assert_eq!(data.afl.as_deref(), Some("10030600"));
    assert_eq!(data.ctq.as_deref(), Some("1600"));
    assert_eq!(data.cryptogram_type, Some("ARQC"));
    assert_eq!(data.ca_key_index.as_deref(), Some("09"));
    assert!(!format!("{data:?}").contains("4921828094896752"));
    assert!(!format!("{:?}", run.outcome).contains("4921828094896752"));
}

/// Checks a recorded qVSDC fDDA signature under Visa production key 09 with the kernel's public
/// ODA functions: issuer certificate, ICC certificate over `static_data`, then the Signed Dynamic
/// Application Data over the recorded UN, amount, currency and Card Authentication Related Data
/// (Book 2 5.3, 6.4, 6.5.2; Book C-3 fDDA version 01). Returns the Signed Data Format byte.
fn check_visa_fdda(file: &str, static_data: &[u8]) -> u8 {
    let run = replay(&transcript(file), recorded_params()).unwrap();
    let steps = &run.steps;
    let params = recorded_params();
    let today = params.date;
    let ca = params
        .config
        .ca_keys
        .find(&hex!("A000000003"), 0x09, today)
        .unwrap();
    let pan = card_value(steps, Tag::ApplicationPan);
    let issuer_certificate = card_value(steps, Tag::IssuerPublicKeyCertificate);
    let issuer_exponent = card_value(steps, Tag::IssuerPublicKeyExponent);
    let issuer = oda::recover_issuer_key(
        ca,
        Certificate {
            certificate: &issuer_certificate,
            remainder: &[],
            exponent: &issuer_exponent,
        },
        &pan,
        today,
        &[],
    )
    .unwrap();
    let icc_certificate = card_value(steps, Tag::IccPublicKeyCertificate);
    let icc_exponent = card_value(steps, Tag::IccPublicKeyExponent);
    let icc = oda::recover_icc_key(
        &issuer,
        Certificate {
            certificate: &icc_certificate,
            remainder: &[],
            exponent: &icc_exponent,
        },
        &pan,
        static_data,
        today,
    )
    .unwrap();
    let sdad = card_value(steps, Tag::SignedDynamicApplicationData);
    let card_auth = card_value(steps, Tag::CardAuthenticationRelatedData);
    let terminal_data = [
        &hex!("38393031")[..],
        &hex!("000000001000"),
        &hex!("0978"),
        &card_auth,
    ]
    .concat();
    // The signature itself, checked step by step (Book 2 6.5.2): header 6A, trailer BC, and the
    // SHA-1 over the signed data and the terminal data.
    let recovered = icc.key.recover(&sdad).unwrap();
    let (first, last) = (recovered[0], recovered[recovered.len() - 1]);
    assert_eq!((first, last), (0x6A, 0xBC), "{file}");
    let hash_start = recovered.len() - 21;
    let computed = oda::sha1(&[&recovered[1..hash_start], &terminal_data]);
    assert_eq!(
        &computed[..],
        &recovered[hash_start..recovered.len() - 1],
        "{file}"
    );
    // The kernel's fDDA check requires format 95 (Book C-3) and accepts these signatures.
    let verified = oda::verify_fdda(
        &icc,
        &sdad,
        FddaInput {
            unpredictable_number: &hex!("38393031"),
            amount_authorised: &hex!("000000001000"),
            currency_code: &hex!("0978"),
            card_authentication_related_data: Some(&card_auth),
        },
    )
    .unwrap_or_else(|error| panic!("{file}: {error:?}"));
    assert!(!verified.icc_dynamic_number.is_empty(), "{file}");
    // The same signature is not a DDA signature (format 05).
    assert_eq!(
        oda::verify_dda(&icc, &sdad, &terminal_data),
        Err(oda::OdaError::Format(0x95)),
        "{file}"
    );
    recovered[1]
}

/// Both real Visa cards sign fDDA with Signed Data Format 95 (not the 05 of DDA), and the
/// signatures verify under the published production key.
#[test]
fn visa_fdda_signatures_verify_with_production_key() {
    // No record is signed for ODA (AFL 10030600) and there is no tag list: empty static data.
    let static_data =
        oda::static_data_to_authenticate(&[] as &[OdaRecord<'_>], None, &hex!("2000")).unwrap();
    assert_eq!(check_visa_fdda("visa-debit-qvsdc.txt", &static_data), 0x95);
    // AFL 10020400 signs no record, the tag list 82 adds the AIP.
    let static_data =
        oda::static_data_to_authenticate(&[] as &[OdaRecord<'_>], Some(&[0x82]), &hex!("2000"))
            .unwrap();
    assert_eq!(
        check_visa_fdda("visa-dkb-credit-qvsdc.txt", &static_data),
        0x95
    );
}

#[test]
fn visa_dkb_credit_goes_online() {
    let run = replay(&transcript("visa-dkb-credit-qvsdc.txt"), recorded_params()).unwrap();
    assert_eq!(
        run.outcome.kind,
        OutcomeKind::OnlineRequest,
        "{:?}",
        run.outcome
    );
    assert_eq!(run.outcome.oda, OdaStatus::Succeeded(OdaMethod::Fdda));
    assert_eq!(run.steps.len(), 6);
    assert!(run.steps.iter().all(|step| matches!(
        step.source,
        AnswerSource::Recorded {
            command_matches: true,
            ..
        }
    )));
    let data = CardData::from_steps(&run.steps, run.outcome.kernel);
    assert_eq!(data.label.as_deref(), Some("VISA DKB"));
    assert_eq!(data.masked_pan.as_deref(), Some("493000******3985"));
    assert_eq!(data.expiry.as_deref(), Some("2026-09-30"));
    assert_eq!(data.ctq.as_deref(), Some("3800"));
    assert!(!format!("{data:?}").contains("4930005025003985"));
}

fn mastercard_error() -> ReplayError {
    replay(&transcript("debit-mastercard-mchip.txt"), recorded_params()).unwrap_err()
}

#[test]
fn debit_mastercard_ends_at_the_unrecorded_generate_ac() {
    let error = mastercard_error();
    let ReplayError::MissingAnswer {
        name,
        position,
        steps,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert!(name.starts_with("GENERATE AC ("), "{name}");
    assert_eq!(*position, 8);
    assert_eq!(steps.len(), 7);
    assert!(
        error
            .to_string()
            .contains("command 8 of the run, GENERATE AC"),
        "{error}"
    );
    let data = CardData::from_steps(steps, Some(2));
    assert_eq!(data.aid.as_deref(), Some("A0000000041010"));
    assert_eq!(data.label.as_deref(), Some("Debit MasterCard"));
    assert_eq!(data.masked_pan.as_deref(), Some("537505******0110"));
    assert_eq!(data.expiry.as_deref(), Some("2024-03-31"));
    assert_eq!(data.aip.as_deref(), Some("1980"));
    assert!(data.aip_flags.contains(&"CDA supported"));
    assert!(data.aip_flags.contains(&"EMV mode supported"));
    assert_eq!(data.ctq, None);
    let cvm = data.cvm_list.unwrap();
    let methods: Vec<&str> = cvm.rules.iter().map(|rule| rule.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "enciphered PIN verified online",
            "signature",
            "no CVM required"
        ]
    );
    assert_eq!(data.ca_key_index.as_deref(), Some("05"));
}

/// The recorded certificates chain to Mastercard production key 05, over the static data of the
/// one record signed for ODA plus the AIP (tag list `82`).
#[test]
fn debit_mastercard_certificates_verify_with_production_key() {
    let ReplayError::MissingAnswer { steps, .. } = mastercard_error() else {
        panic!("expected a missing answer");
    };
    let today = Date::new(2023, 3, 1).unwrap();
    let table = CaSet::Production.table().unwrap();
    let ca = table.find(&hex!("A000000004"), 0x05, today).unwrap();
    let pan = card_value(&steps, Tag::ApplicationPan);
    let issuer_certificate = card_value(&steps, Tag::IssuerPublicKeyCertificate);
    let issuer_remainder = card_value(&steps, Tag::IssuerPublicKeyRemainder);
    let issuer_exponent = card_value(&steps, Tag::IssuerPublicKeyExponent);
    let issuer = oda::recover_issuer_key(
        ca,
        Certificate {
            certificate: &issuer_certificate,
            remainder: &issuer_remainder,
            exponent: &issuer_exponent,
        },
        &pan,
        today,
        &[],
    )
    .unwrap();
    // AFL 10010101: SFI 2 record 1 is signed; it is the 5th command of the run.
    let record = &steps[4].response[..steps[4].response.len() - 2];
    let static_data = oda::static_data_to_authenticate(
        &[OdaRecord {
            sfi: 2,
            data: record,
        }],
        Some(&[0x82]),
        &hex!("1980"),
    )
    .unwrap();
    let icc_certificate = card_value(&steps, Tag::IccPublicKeyCertificate);
    let icc_exponent = card_value(&steps, Tag::IccPublicKeyExponent);
    oda::recover_icc_key(
        &issuer,
        Certificate {
            certificate: &icc_certificate,
            remainder: &[],
            exponent: &icc_exponent,
        },
        &pan,
        &static_data,
        today,
    )
    .unwrap();
}

/// A recording that starts at SELECT AID: the PPSE SELECT gets `6A82`. Contactless Entry Point
/// builds its candidate list from the PPSE only (Book B 3.3.2; the list-of-AIDs method is the
/// contact interface's, Book 1 12.3.3), so the kernel ends with Try Another Interface.
#[test]
fn recording_without_ppse_gets_6a82_and_kernel_stops() {
    let run: ReplayRun = replay(&transcript("visa-debit-no-ppse.txt"), recorded_params()).unwrap();
    assert_eq!(run.steps.len(), 1);
    assert_eq!(run.steps[0].source, AnswerSource::NoPpse);
    assert_eq!(run.steps[0].status_word(), 0x6A82);
    assert_eq!(run.outcome.kind, OutcomeKind::TryAnotherInterface);
    assert!(matches!(run.outcome.reason, Reason::CardError { sw, .. } if sw.0 == 0x6A82));
}
