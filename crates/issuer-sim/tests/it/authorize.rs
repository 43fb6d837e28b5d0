//! Authorisations of real kernel online requests: approvals with ARPCs the cards accept, and
//! every decline the checks produce.

use emv_kernel::Tag;
use issuer_sim::{AuthorizationRequest, Decision, DeclineReason};
use payment_crypto::pinblock::PinBlockFormat;

use crate::{Online, TODAY, pin_block, simulator, simulator_iso4, with_value, zpk_aes, zpk_tdes};

/// Every card profile whose kernel run at 25.00 USD ends in an online request.
const ONLINE_PROFILES: &[&str] = &[
    "visa-fdda",
    "mc-cda",
    "visa-online-pin",
    "expired",
    "bad-signature",
    "multi-app",
];

fn declined(reason: DeclineReason) -> Decision {
    Decision::Declined(reason)
}

#[test]
fn every_online_profile_gets_an_arpc_its_card_accepts() {
    let mut online = Vec::new();
    for profile in emv_cards::profiles() {
        let Some(request) = Online::try_new(profile.name, 2500) else {
            continue;
        };
        online.push(profile.name);
        let pin = pin_block(
            &zpk_tdes(),
            PinBlockFormat::Iso0,
            request.test_pin(),
            &request.pan,
        );
        let with_pin = AuthorizationRequest {
            pin_block: Some(&pin),
            ..request.request()
        };
        for req in [request.request(), with_pin] {
            let response = simulator().authorize(&req);
            let expected = match profile.name {
                "expired" => declined(DeclineReason::ExpiredCard),
                "visa-online-pin" if req.pin_block.is_none() => {
                    declined(DeclineReason::PinRequired)
                }
                _ => Decision::Approved,
            };
            assert_eq!(
                response.decision, expected,
                "{}: {response:?}",
                profile.name
            );
            assert_eq!(response.response_code, expected.response_code());
            assert!(response.checks.card_known && response.checks.arqc_valid);
            assert_eq!(response.checks.expired, profile.name == "expired");
            let pin_expected = match (req.pin_block, profile.name) {
                (Some(_), _) => Some(true),
                (None, "visa-online-pin") => Some(false),
                (None, _) => None,
            };
            assert_eq!(response.checks.pin, pin_expected, "{}", profile.name);
            assert!(request.card_accepts_arpc(&response), "{}", profile.name);
            if expected == Decision::Approved {
                let code = response.authorisation_code.as_deref().unwrap();
                assert!(code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit()));
            } else {
                assert_eq!(response.authorisation_code, None);
            }
            // A changed ARPC is refused by the card: the acceptance check can fail.
            let mut forged = response.clone();
            if let Some(arpc) = forged.arpc.as_mut() {
                arpc[0] ^= 0x01;
            }
            assert!(!request.card_accepts_arpc(&forged), "{}", profile.name);
        }
    }
    assert_eq!(online, ONLINE_PROFILES);
}

/// The cloned card's fDDA signature fails; its CTQ says "go online if offline data
/// authentication fails", so Kernel 3 ends in an Online Request that reports the failure (reason
/// `oda_failed`, `oda` failed fDDA, the reader's TVR with "DDA failed"; Book C-3 5.5). The card
/// computed its ARQC in GET PROCESSING OPTIONS over the TVR it was sent then (all zeros), and
/// field 55 carries that same TVR, so the issuer verifies the ARQC and decides (here: approves,
/// with an ARPC the card accepts). A TVR changed afterwards would break the cryptogram.
#[test]
fn the_cloned_card_goes_online_with_the_tvr_its_arqc_covers() {
    let online = Online::new("bad-signature", 2500);
    let outcome = &online.outcome;
    assert_eq!(outcome.kind, emv_kernel::OutcomeKind::OnlineRequest);
    let emv_kernel::outcome::Reason::OdaFailed(error) = outcome.reason else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        outcome.oda,
        emv_kernel::outcome::OdaStatus::Failed(emv_kernel::outcome::OdaMethod::Fdda, error)
    );
    assert_eq!(outcome.tvr.bytes()[0] & 0x08, 0x08, "DDA failed is set");
    let tvr = outcome.data.get(Tag::TerminalVerificationResults).unwrap();
    assert_eq!(tvr, [0; 5], "the TVR of the GPO's PDOL data");
    let response = simulator().authorize(&online.request());
    assert_eq!(response.decision, Decision::Approved, "{response:?}");
    assert!(response.checks.arqc_valid && response.checks.card_known);
    assert!(online.card_accepts_arpc(&response));
    // The reader's TVR in field 55 instead: the ARQC does not cover it and the issuer declines.
    let icc = with_value(
        &online.icc,
        Tag::TerminalVerificationResults,
        &outcome.tvr.bytes(),
    );
    let response = simulator().authorize(&AuthorizationRequest {
        icc_data: &icc,
        ..online.request()
    });
    assert_eq!(response.decision, declined(DeclineReason::ArqcInvalid));
    assert_eq!(response.arpc, None);
}

#[test]
fn the_same_request_gets_the_same_answer_and_another_arqc_another_code() {
    let first = Online::new("mc-cda", 2500);
    let a = simulator().authorize(&first.request());
    assert_eq!(a, simulator().authorize(&first.request()));
    let second = Online::new("mc-cda", 2600);
    let b = simulator().authorize(&second.request());
    assert!(b.decision.is_approved());
    assert_ne!(a.arpc, b.arpc);
}

#[test]
fn a_tampered_arqc_is_declined_without_arpc() {
    for profile in ["visa-fdda", "mc-cda"] {
        let online = Online::new(profile, 2500);
        let mut arqc = online
            .outcome
            .data
            .get(Tag::ApplicationCryptogram)
            .unwrap()
            .to_vec();
        arqc[7] ^= 0x40;
        let icc = with_value(&online.icc, Tag::ApplicationCryptogram, &arqc);
        let response = simulator().authorize(&AuthorizationRequest {
            icc_data: &icc,
            ..online.request()
        });
        assert_eq!(
            response.decision,
            declined(DeclineReason::ArqcInvalid),
            "{profile}"
        );
        assert_eq!(response.response_code, "82");
        assert!(!response.checks.arqc_valid && response.checks.card_known);
        assert_eq!((response.arpc, response.authorisation_code), (None, None));
    }
}

#[test]
fn tampered_data_under_the_arqc_is_declined() {
    let online = Online::new("visa-fdda", 2500);
    // Each of these values is covered by the cryptogram: changing it breaks the ARQC.
    for (tag, value) in [
        (Tag::TerminalVerificationResults, vec![0x80, 0, 0, 0, 0]),
        (Tag::UnpredictableNumber, vec![0, 0, 0, 1]),
        (Tag::ApplicationTransactionCounter, vec![0x7F, 0x00]),
        (Tag::TransactionDate, vec![0x26, 0x11, 0x27]),
    ] {
        let icc = with_value(&online.icc, tag, &value);
        let response = simulator().authorize(&AuthorizationRequest {
            icc_data: &icc,
            ..online.request()
        });
        assert_eq!(
            response.decision,
            declined(DeclineReason::ArqcInvalid),
            "{tag:?}"
        );
    }
    // The amount in the ICC data raised to match a raised request amount: the ARQC fails.
    let icc = with_value(
        &online.icc,
        Tag::AmountAuthorised,
        &[0, 0, 0, 0, 0x90, 0x00],
    );
    let response = simulator().authorize(&AuthorizationRequest {
        icc_data: &icc,
        amount_minor: 9000,
        ..online.request()
    });
    assert_eq!(response.decision, declined(DeclineReason::ArqcInvalid));
}

#[test]
fn a_request_that_disagrees_with_its_icc_data_is_declined() {
    let online = Online::new("mc-cda", 2500);
    let other = Online::new("visa-fdda", 2500);
    let cases = [
        // Amount changed in the request only.
        AuthorizationRequest {
            amount_minor: 250,
            ..online.request()
        },
        // Currency changed in the request only.
        AuthorizationRequest {
            currency_numeric: 978,
            ..online.request()
        },
        // Another known card's PAN and expiry with this card's ICC data.
        AuthorizationRequest {
            pan: &other.pan,
            expiry_yymm: &other.expiry_yymm,
            ..online.request()
        },
    ];
    for request in cases {
        let response = simulator().authorize(&request);
        assert_eq!(
            response.decision,
            declined(DeclineReason::IccDataMismatch),
            "{request:?}"
        );
        assert_eq!(response.response_code, "82");
        assert_eq!(response.arpc, None);
    }
    // A TC or AAC instead of an ARQC.
    let icc = with_value(&online.icc, Tag::CryptogramInformationData, &[0x40]);
    let response = simulator().authorize(&AuthorizationRequest {
        icc_data: &icc,
        ..online.request()
    });
    assert_eq!(response.decision, declined(DeclineReason::IccDataMismatch));
}

#[test]
fn online_pin_right_and_wrong_in_formats_0_and_4() {
    let online = Online::new("visa-online-pin", 4000);
    for (sim, zpk, format) in [
        (simulator(), zpk_tdes(), PinBlockFormat::Iso0),
        (simulator_iso4(), zpk_aes(), PinBlockFormat::Iso4),
    ] {
        let right = pin_block(&zpk, format, online.test_pin(), &online.pan);
        let response = sim.authorize(&AuthorizationRequest {
            pin_block: Some(&right),
            ..online.request()
        });
        assert_eq!(response.decision, Decision::Approved, "{format:?}");
        assert_eq!(response.checks.pin, Some(true));
        assert!(online.card_accepts_arpc(&response));

        let wrong = pin_block(&zpk, format, "9999", &online.pan);
        let response = sim.authorize(&AuthorizationRequest {
            pin_block: Some(&wrong),
            ..online.request()
        });
        assert_eq!(
            response.decision,
            declined(DeclineReason::IncorrectPin),
            "{format:?}"
        );
        assert_eq!(response.response_code, "55");
        assert_eq!(response.checks.pin, Some(false));
        assert_eq!(response.authorisation_code, None);
        // The decline is authenticated to the card too, with ARC "55".
        assert!(online.card_accepts_arpc(&response));
    }
}

#[test]
fn a_missing_pin_block_is_declined_when_the_kernel_chose_online_pin() {
    let online = Online::new("visa-online-pin", 4000);
    assert_eq!(online.outcome.cvm, Some(emv_kernel::cvm::Cvm::OnlinePin));
    let response = simulator().authorize(&online.request());
    assert_eq!(response.decision, declined(DeclineReason::PinRequired));
    assert_eq!(response.response_code, "55");
    assert_eq!(response.checks.pin, Some(false));
    assert!(online.card_accepts_arpc(&response));
    // A card verified without PIN (no CVM) needs none.
    let online = Online::new("mc-cda", 2500);
    assert_eq!(simulator().authorize(&online.request()).checks.pin, None);
    // Kernel 2 with online PIN chosen (CVM Results 02 ..), from the CVM list of the M/Chip card
    // above the reader's CVM required limit.
    let online = Online::new("mc-cda", 4000);
    assert_eq!(online.outcome.cvm, Some(emv_kernel::cvm::Cvm::OnlinePin));
    let response = simulator().authorize(&online.request());
    assert_eq!(response.decision, declined(DeclineReason::PinRequired));
    let block = pin_block(
        &zpk_tdes(),
        PinBlockFormat::Iso0,
        online.test_pin(),
        &online.pan,
    );
    let response = simulator().authorize(&AuthorizationRequest {
        pin_block: Some(&block),
        ..online.request()
    });
    assert_eq!(response.decision, Decision::Approved);
    assert!(online.card_accepts_arpc(&response));
}

#[test]
fn pin_blocks_that_are_not_valid_under_the_zone_key_are_declined_81() {
    let online = Online::new("visa-online-pin", 4000);
    let pin = online.test_pin();
    // Right PIN under another key; right PIN for another PAN; a block of the wrong length; a
    // format 4 block sent to a format 0 issuer.
    let other_key =
        payment_crypto::SecretKey::tdes(&hex_literal::hex!("89ABCDEF01234567FEDCBA9876543210"))
            .unwrap();
    let cases = [
        pin_block(&other_key, PinBlockFormat::Iso0, pin, &online.pan),
        pin_block(&zpk_tdes(), PinBlockFormat::Iso0, pin, "5413330089010434"),
        vec![0x04, 0x12, 0x34, 0xFF, 0xFF, 0xFF, 0xFF],
        pin_block(&zpk_aes(), PinBlockFormat::Iso4, pin, &online.pan),
    ];
    for block in &cases {
        let response = simulator().authorize(&AuthorizationRequest {
            pin_block: Some(block),
            ..online.request()
        });
        assert_eq!(response.decision, declined(DeclineReason::PinBlockInvalid));
        assert_eq!(response.response_code, "81");
        assert_eq!(response.checks.pin, Some(false));
    }
}

#[test]
fn expired_cards_and_wrong_expiry_dates_are_declined_54() {
    let online = Online::new("visa-fdda", 2500);
    // The card expires at the end of December 2030 (5F24 = 301231).
    assert_eq!(online.expiry_yymm, "3012");
    let last_day = simulator().authorize(&AuthorizationRequest {
        today_yymmdd: "301231",
        ..online.request()
    });
    assert_eq!(last_day.decision, Decision::Approved);
    for (expiry, today) in [("3012", "310101"), ("3011", TODAY), ("3101", TODAY)] {
        let response = simulator().authorize(&AuthorizationRequest {
            expiry_yymm: expiry,
            today_yymmdd: today,
            ..online.request()
        });
        assert_eq!(
            response.decision,
            declined(DeclineReason::ExpiredCard),
            "{expiry} {today}"
        );
        assert_eq!(response.response_code, "54");
        assert!(response.checks.expired && response.checks.arqc_valid);
    }
}

#[test]
fn unknown_bins_pans_and_sequence_numbers_are_invalid_cards() {
    let online = Online::new("visa-fdda", 2500);
    for (pan, psn) in [
        ("4000000000000002", online.psn),
        ("4761739001010999", online.psn),
        (online.pan.as_str(), 2),
    ] {
        let response = simulator().authorize(&AuthorizationRequest {
            pan,
            pan_sequence_number: Some(psn),
            ..online.request()
        });
        assert_eq!(
            response.decision,
            declined(DeclineReason::InvalidCard),
            "{psn}"
        );
        assert_eq!(response.response_code, "14");
        assert!(!response.checks.card_known);
        assert_eq!(response.arpc, None);
    }
    // Without a PSN in the request, the ICC data's 5F34 is used.
    let response = simulator().authorize(&AuthorizationRequest {
        pan_sequence_number: None,
        ..online.request()
    });
    assert_eq!(response.decision, Decision::Approved);
}

#[test]
fn malformed_requests_are_format_errors() {
    let online = Online::new("mc-cda", 2500);
    let missing_arqc: Vec<u8> = emv_kernel::tlv::parse_all(&online.icc)
        .unwrap()
        .into_iter()
        .filter(|object| object.tag != Tag::ApplicationCryptogram)
        .flat_map(|object| object.raw.to_vec())
        .collect();
    let mut duplicated = online.icc.clone();
    duplicated.extend_from_slice(&[0x9F, 0x36, 0x02, 0x00, 0x01]);
    let truncated = &online.icc[..online.icc.len() - 1];
    let cases = [
        AuthorizationRequest {
            pan: "54133300890A0434",
            ..online.request()
        },
        AuthorizationRequest {
            pan: "54133300",
            ..online.request()
        },
        AuthorizationRequest {
            expiry_yymm: "2913",
            ..online.request()
        },
        AuthorizationRequest {
            expiry_yymm: "29110",
            ..online.request()
        },
        AuthorizationRequest {
            today_yymmdd: "26112",
            ..online.request()
        },
        AuthorizationRequest {
            today_yymmdd: "261132",
            ..online.request()
        },
        AuthorizationRequest {
            currency_numeric: 0,
            ..online.request()
        },
        AuthorizationRequest {
            currency_numeric: 1000,
            ..online.request()
        },
        AuthorizationRequest {
            pan_sequence_number: Some(100),
            ..online.request()
        },
        AuthorizationRequest {
            icc_data: &[],
            ..online.request()
        },
        AuthorizationRequest {
            icc_data: truncated,
            ..online.request()
        },
        AuthorizationRequest {
            icc_data: &duplicated,
            ..online.request()
        },
        AuthorizationRequest {
            icc_data: &missing_arqc,
            ..online.request()
        },
    ];
    for request in cases {
        let response = simulator().authorize(&request);
        assert_eq!(
            response.decision,
            declined(DeclineReason::FormatError),
            "{request:?}"
        );
        assert_eq!(response.response_code, "30");
        assert_eq!(response.arpc, None);
    }
}

#[test]
fn debug_output_shows_no_pan_pin_block_or_key() {
    let online = Online::new("visa-online-pin", 4000);
    let block = pin_block(
        &zpk_tdes(),
        PinBlockFormat::Iso0,
        online.test_pin(),
        &online.pan,
    );
    let request = AuthorizationRequest {
        pin_block: Some(&block),
        ..online.request()
    };
    let response = simulator().authorize(&request);
    let text = format!("{request:?} {response:?} {:?}", simulator());
    assert!(!text.contains(&online.pan), "{text}");
    assert!(text.contains("476173******0119"), "{text}");
    let block_hex: String = block.iter().map(|b| format!("{b:02X}")).collect();
    assert!(!text.to_uppercase().contains(&block_hex));
    assert!(!text.to_uppercase().contains("0123456789ABCDEF"));
    assert!(!text.contains(online.test_pin()));
}
