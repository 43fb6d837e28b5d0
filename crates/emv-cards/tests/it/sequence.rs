//! Every profile answers the standard command sequence with well-formed data.

use emv_cards::{Card, profiles};
use emv_kernel::apdu::CryptogramType;
use emv_kernel::tlv::{self, Tag};

use crate::{Terminal, run_session, send};

const PAYMENT_PROFILES: &[&str] = &[
    "visa-fdda",
    "mc-cda",
    "visa-online-pin",
    "expired",
    "bad-signature",
    "no-supported-aid",
];

#[test]
fn every_listed_profile_personalises() {
    let names: Vec<_> = profiles().iter().map(|profile| profile.name).collect();
    assert_eq!(
        names,
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
    for name in names {
        let card = Card::profile(name).expect("profile personalises");
        assert_eq!(card.name(), name);
        assert!(emv_cards::keys::issuer_master_key(card.issuer_master_key_id()).is_some());
        assert_eq!(card.test_pin().len(), 4);
    }
    assert!(Card::profile("unknown").is_none());
}

#[test]
fn every_payment_profile_completes_the_standard_sequence() {
    for name in PAYMENT_PROFILES {
        let mut card = Card::profile(name).unwrap();
        let session = run_session(&mut card, &Terminal::default());
        // Book 1 11.3.4: the FCI names the selected application.
        let df_name = tlv::find_path(&session.fci, &[Tag::FciTemplate, Tag::DfName])
            .unwrap()
            .unwrap();
        assert_eq!(df_name.value, session.aid, "{name}");
        let pan = session.value(Tag::ApplicationPan).expect("PAN in a record");
        assert_eq!(hex::encode_upper(pan), card.pan(), "{name}");
        assert!(session.value(Tag::ApplicationExpirationDate).is_some());
        assert!(session.value(Tag::PanSequenceNumber).is_some());
        assert!(session.value(Tag::Track2EquivalentData).is_some());
        // Every answer ends with a cryptogram, in GPO (qVSDC) or GENERATE AC (M/Chip).
        assert!(
            session.value(Tag::CryptogramInformationData).is_some(),
            "{name}"
        );
    }
}

#[test]
fn ppse_entries_carry_label_priority_and_kernel() {
    for (name, kernel) in [
        ("visa-fdda", Some(0x03)),
        ("mc-cda", Some(0x02)),
        ("no-supported-aid", None),
    ] {
        let mut card = Card::profile(name).unwrap();
        let session = run_session(&mut card, &Terminal::default());
        let entry = tlv::find_nested(&session.ppse, Tag::ApplicationTemplate)
            .unwrap()
            .unwrap();
        assert!(
            tlv::find(entry.value, Tag::ApplicationLabel)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            tlv::find(entry.value, Tag::ApplicationPriorityIndicator)
                .unwrap()
                .unwrap()
                .value,
            [0x01]
        );
        let kernel_id = tlv::find(entry.value, Tag::KernelIdentifier)
            .unwrap()
            .map(|found| found.value[0]);
        assert_eq!(kernel_id, kernel, "{name}");
    }
}

#[test]
fn oda_cards_carry_their_certificates() {
    for name in [
        "visa-fdda",
        "mc-cda",
        "visa-online-pin",
        "expired",
        "bad-signature",
    ] {
        let mut card = Card::profile(name).unwrap();
        let session = run_session(&mut card, &Terminal::default());
        for tag in [
            Tag::CaPublicKeyIndexIcc,
            Tag::IssuerPublicKeyCertificate,
            Tag::IssuerPublicKeyExponent,
            Tag::IssuerPublicKeyRemainder,
            Tag::IccPublicKeyCertificate,
            Tag::IccPublicKeyExponent,
            Tag::IccPublicKeyRemainder,
            Tag::StaticDataAuthenticationTagList,
        ] {
            assert!(session.value(tag).is_some(), "{name} lacks {tag}");
        }
        // CA key 1408 bits, issuer key 1152 bits: the issuer certificate is as long as the CA key.
        assert_eq!(
            session
                .value(Tag::IssuerPublicKeyCertificate)
                .unwrap()
                .len(),
            176
        );
        assert_eq!(
            session.value(Tag::IccPublicKeyCertificate).unwrap().len(),
            144
        );
        // The last AFL entry covers the certificates and is not signed; SFI 2 record 1 is.
        assert_eq!(session.afl[4..8], [0x10, 0x01, 0x01, 0x01]);
    }
}

#[test]
fn qvsdc_cards_decide_in_gpo_and_sign_with_fdda() {
    let mut card = Card::profile("visa-fdda").unwrap();
    // 10.00 USD: within the card's offline limit, so it approves offline with a TC and signs.
    let small = run_session(
        &mut card,
        &Terminal {
            amount_minor: 1000,
            ..Terminal::default()
        },
    );
    assert_eq!(
        small.value(Tag::CryptogramInformationData).unwrap(),
        [CryptogramType::Tc.bits()]
    );
    assert_eq!(
        small
            .value(Tag::SignedDynamicApplicationData)
            .unwrap()
            .len(),
        128
    );
    let card_data = small.value(Tag::CardAuthenticationRelatedData).unwrap();
    assert_eq!(card_data[0], 0x01, "fDDA version 01");
    // 50.00 USD: online.
    let large = run_session(&mut card, &Terminal::default());
    assert_eq!(
        large.value(Tag::CryptogramInformationData).unwrap(),
        [CryptogramType::Arqc.bits()]
    );
    // The reader asks for an online cryptogram (TTQ byte 2 b8): online even for 1.00 USD.
    let forced = run_session(
        &mut card,
        &Terminal {
            amount_minor: 100,
            ttq: [0x37, 0x80, 0x40, 0x00],
            ..Terminal::default()
        },
    );
    assert_eq!(
        forced.value(Tag::CryptogramInformationData).unwrap(),
        [CryptogramType::Arqc.bits()]
    );
    // Online without "ODA for online authorisations" in the TTQ: no signature.
    let unsigned = run_session(
        &mut card,
        &Terminal {
            ttq: [0x36, 0x00, 0x40, 0x00],
            ..Terminal::default()
        },
    );
    assert!(unsigned.value(Tag::SignedDynamicApplicationData).is_none());
}

#[test]
fn online_pin_card_asks_for_pin_and_goes_online() {
    let mut card = Card::profile("visa-online-pin").unwrap();
    let session = run_session(
        &mut card,
        &Terminal {
            amount_minor: 100,
            ..Terminal::default()
        },
    );
    let ctq = session.value(Tag::CardTransactionQualifiers).unwrap();
    assert_eq!(ctq[0] & 0x80, 0x80, "CTQ: online PIN required");
    assert_eq!(
        session.value(Tag::CryptogramInformationData).unwrap(),
        [CryptogramType::Arqc.bits()]
    );
    let cvm_list = session.value(Tag::CvmList).unwrap();
    assert_eq!(cvm_list[8..], [0x02, 0x00], "online PIN, always");
}

#[test]
fn mchip_card_answers_generate_ac_with_cda() {
    let mut card = Card::profile("mc-cda").unwrap();
    let session = run_session(&mut card, &Terminal::default());
    let response = session.generate_ac.as_ref().unwrap();
    let template = tlv::parse_single(response).unwrap();
    let tags: Vec<Tag> = tlv::parse_all(template.value)
        .unwrap()
        .iter()
        .map(|object| object.tag)
        .collect();
    // Book 2 6.6.1: with CDA the cryptogram travels inside the signature.
    assert_eq!(
        tags,
        [
            Tag::CryptogramInformationData,
            Tag::ApplicationTransactionCounter,
            Tag::SignedDynamicApplicationData,
            Tag::IssuerApplicationData
        ]
    );
    // Within the offline limit and asked for a TC: TC. Asked for an AAC: AAC, never signed.
    for (amount, requested, expected, signed) in [
        (500, CryptogramType::Tc, CryptogramType::Tc, true),
        (5000, CryptogramType::Tc, CryptogramType::Arqc, true),
        (500, CryptogramType::Aac, CryptogramType::Aac, false),
    ] {
        let session = run_session(
            &mut card,
            &Terminal {
                amount_minor: amount,
                cryptogram: requested,
                ..Terminal::default()
            },
        );
        assert_eq!(
            session.value(Tag::CryptogramInformationData).unwrap(),
            [expected.bits()]
        );
        assert_eq!(
            session.value(Tag::SignedDynamicApplicationData).is_some(),
            signed
        );
        assert_eq!(session.value(Tag::ApplicationCryptogram).is_some(), !signed);
    }
}

#[test]
fn expired_card_says_so_in_its_records() {
    let mut card = Card::profile("expired").unwrap();
    let session = run_session(&mut card, &Terminal::default());
    assert_eq!(
        session.value(Tag::ApplicationExpirationDate).unwrap(),
        [0x24, 0x11, 0x30]
    );
    // Format 1 GPO response.
    assert_eq!(session.gpo[0], 0x80);
}

#[test]
fn the_atc_counts_transactions() {
    let mut card = Card::profile("mc-cda").unwrap();
    let first = card.atc();
    for round in 1..=3u16 {
        let session = run_session(&mut card, &Terminal::default());
        assert_eq!(
            session.value(Tag::ApplicationTransactionCounter).unwrap(),
            (first + round).to_be_bytes()
        );
    }
    assert_eq!(card.atc(), first + 3);
    let (data, sw) = send(&mut card, &[0x80, 0xCA, 0x9F, 0x36, 0x00]);
    assert_eq!(sw, 0x9000);
    assert_eq!(data, [0x9F, 0x36, 0x02, 0x00, 0x23]);
}

#[test]
fn cards_of_one_profile_answer_identically() {
    for name in PAYMENT_PROFILES {
        let mut one = Card::profile(name).unwrap();
        let mut two = Card::profile(name).unwrap();
        let first = run_session(&mut one, &Terminal::default());
        let second = run_session(&mut two, &Terminal::default());
        assert_eq!(first.gpo, second.gpo, "{name}");
        assert_eq!(first.records, second.records, "{name}");
        assert_eq!(first.generate_ac, second.generate_ac, "{name}");
    }
}

#[test]
fn malformed_card_selects_then_answers_broken_tlv() {
    let mut card = Card::profile("malformed").unwrap();
    let ppse = crate::send_ok(&mut card, &emv_kernel::apdu::Command::select_ppse());
    assert!(tlv::parse_single(&ppse).is_ok());
    let select =
        emv_kernel::apdu::Command::select_by_name(card.aid(), emv_kernel::apdu::Occurrence::First)
            .unwrap();
    let fci = crate::send_ok(&mut card, &select);
    let pdol = tlv::find_nested(&fci, Tag::Pdol).unwrap().unwrap();
    let pdol = emv_kernel::dol::Dol::parse(pdol.value).unwrap();
    let gpo =
        emv_kernel::apdu::Command::get_processing_options(&pdol.build(&Terminal::default().data()))
            .unwrap();
    let response = crate::send_ok(&mut card, &gpo);
    assert!(matches!(
        tlv::parse_single(&response),
        Err(tlv::TlvError::TruncatedValue { .. })
    ));
    let record = crate::send_ok(
        &mut card,
        &emv_kernel::apdu::Command::read_record(1, 1).unwrap(),
    );
    assert!(tlv::parse_single(&record).is_err());
}

#[test]
fn multi_application_card_lists_both_with_priorities() {
    let mut card = Card::profile("multi-app").unwrap();
    let ppse = crate::send_ok(&mut card, &emv_kernel::apdu::Command::select_ppse());
    let discretionary = tlv::find_nested(&ppse, Tag::FciIssuerDiscretionaryData)
        .unwrap()
        .unwrap();
    let entries: Vec<(Vec<u8>, u8)> = tlv::parse_all(discretionary.value)
        .unwrap()
        .iter()
        .map(|entry| {
            let aid = tlv::find(entry.value, Tag::AdfName).unwrap().unwrap();
            let priority = tlv::find(entry.value, Tag::ApplicationPriorityIndicator)
                .unwrap()
                .unwrap();
            (aid.value.to_vec(), priority.value[0])
        })
        .collect();
    assert_eq!(
        entries,
        [
            (hex::decode("A0000099990101").unwrap(), 1),
            (hex::decode("A0000000041010").unwrap(), 2)
        ]
    );
    let applications = card.applications();
    assert_eq!(applications.len(), 2);
    let mastercard = card.application(&entries[1].0).unwrap();
    assert_eq!(mastercard.pan, "5413330089010459");
    assert_eq!(
        mastercard.issuer_master_key_id,
        emv_cards::keys::IMK_MASTERCARD
    );
    // Each application keeps its own counter.
    let select = emv_kernel::apdu::Command::select_by_name(
        &entries[1].0,
        emv_kernel::apdu::Occurrence::First,
    )
    .unwrap();
    crate::send_ok(&mut card, &select);
    assert_eq!(card.pan(), "5413330089010459");
    assert_eq!(card.atc(), 0x0060);
}
