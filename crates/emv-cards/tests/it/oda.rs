//! The cards' certificates and signatures recover and verify with the kernel's offline data
//! authentication (EMV 4.4 Book 2 sections 5 and 6), under the published test CA keys; the cloned
//! card fails.

use emv_cards::Card;
use emv_cards::keys::test_ca_public_keys;
use emv_kernel::date::Date;
use emv_kernel::oda::{
    self, CaKeyTable, CaPublicKey, CdaInput, Certificate, FddaInput, IccPublicKey, OdaError,
    OdaRecord,
};
use emv_kernel::tlv::{self, Tag};
use payment_crypto::emv::{Atc, Cryptogram, UnpredictableNumber};

use crate::{Session, Terminal, run_session};

fn today() -> Date {
    Date::new(2026, 11, 26).unwrap()
}

fn ca_table() -> CaKeyTable {
    let mut table = CaKeyTable::new();
    for key in test_ca_public_keys() {
        let checksum = key.checksum();
        table.insert(
            CaPublicKey::with_checksum(key.rid, key.index, &key.modulus, &key.exponent, &checksum)
                .unwrap(),
        );
    }
    table
}

/// Book 2 5.3 and 6.4: CA key by RID and index, issuer key, static data, ICC key.
fn recover_icc_key(session: &Session) -> Result<IccPublicKey, OdaError> {
    let rid: [u8; 5] = session.aid[..5].try_into().unwrap();
    let index = session.value(Tag::CaPublicKeyIndexIcc).unwrap()[0];
    let table = ca_table();
    let ca = table.find(&rid, index, today())?;
    let pan = session.value(Tag::ApplicationPan).unwrap();
    let value = |tag| session.value(tag).unwrap_or_default();
    let issuer = oda::recover_issuer_key(
        ca,
        Certificate {
            certificate: &value(Tag::IssuerPublicKeyCertificate),
            remainder: &value(Tag::IssuerPublicKeyRemainder),
            exponent: &value(Tag::IssuerPublicKeyExponent),
        },
        &pan,
        today(),
        table.revocations(),
    )?;
    let static_data = static_data(session)?;
    oda::recover_icc_key(
        &issuer,
        Certificate {
            certificate: &value(Tag::IccPublicKeyCertificate),
            remainder: &value(Tag::IccPublicKeyRemainder),
            exponent: &value(Tag::IccPublicKeyExponent),
        },
        &pan,
        &static_data,
        today(),
    )
}

/// The records the AFL marks for ODA (byte 4 of each entry), then the AIP (Book 3 10.3).
fn static_data(session: &Session) -> Result<Vec<u8>, OdaError> {
    let mut records = Vec::new();
    for entry in session.afl.chunks(4) {
        let sfi = entry[0] >> 3;
        let last_signed = entry[1] + entry[3];
        for (record_sfi, number, data) in &session.records {
            if *record_sfi == sfi && *number >= entry[1] && *number < last_signed {
                records.push(OdaRecord { sfi, data });
            }
        }
    }
    oda::static_data_to_authenticate(
        &records,
        session
            .value(Tag::StaticDataAuthenticationTagList)
            .as_deref(),
        &session.aip,
    )
}

fn fdda(session: &Session, terminal: &Terminal) -> Result<(), OdaError> {
    let icc = recover_icc_key(session)?;
    let data = terminal.data();
    let card_data = session.value(Tag::CardAuthenticationRelatedData);
    oda::verify_fdda(
        &icc,
        &session.value(Tag::SignedDynamicApplicationData).unwrap(),
        FddaInput {
            unpredictable_number: &terminal.unpredictable_number,
            amount_authorised: &data[&Tag::AmountAuthorised],
            currency_code: &data[&Tag::TransactionCurrencyCode],
            card_authentication_related_data: card_data.as_deref(),
        },
    )
    .map(drop)
}

#[test]
fn visa_cards_pass_fdda() {
    for name in ["visa-fdda", "visa-online-pin"] {
        for amount_minor in [1000, 5000] {
            let terminal = Terminal {
                amount_minor,
                ..Terminal::default()
            };
            let mut card = Card::profile(name).unwrap();
            let session = run_session(&mut card, &terminal);
            fdda(&session, &terminal).unwrap_or_else(|error| panic!("{name}: {error}"));
            // The signature covers the amount: another amount fails.
            let other = Terminal {
                amount_minor: amount_minor + 1,
                ..terminal
            };
            assert_eq!(fdda(&session, &other), Err(OdaError::HashMismatch));
        }
    }
}

#[test]
fn cloned_card_fails_fdda_but_its_certificates_are_genuine() {
    let terminal = Terminal::default();
    let mut card = Card::profile("bad-signature").unwrap();
    let session = run_session(&mut card, &terminal);
    assert!(recover_icc_key(&session).is_ok());
    let error = fdda(&session, &terminal).unwrap_err();
    assert!(
        matches!(
            error,
            OdaError::Trailer | OdaError::Header | OdaError::Format(_) | OdaError::HashMismatch
        ),
        "{error:?}"
    );
}

#[test]
fn tampered_records_fail_the_icc_certificate() {
    let mut card = Card::profile("visa-fdda").unwrap();
    let mut session = run_session(&mut card, &Terminal::default());
    // Change the expiry date in the signed record (SFI 2 record 1).
    let (_, _, record) = session
        .records
        .iter_mut()
        .find(|(sfi, number, _)| (*sfi, *number) == (2, 1))
        .unwrap();
    let position = record
        .windows(3)
        .position(|window| window == [0x5F, 0x24, 0x03])
        .unwrap();
    record[position + 3] = 0x35;
    assert_eq!(
        recover_icc_key(&session).err(),
        Some(OdaError::HashMismatch)
    );
}

#[test]
fn mchip_cards_pass_cda_and_the_signed_arqc_verifies() {
    for name in ["mc-cda", "expired"] {
        for (amount_minor, cid) in [(500, 0x40), (5000, 0x80)] {
            let terminal = Terminal {
                amount_minor,
                cryptogram: emv_kernel::apdu::CryptogramType::Tc,
                ..Terminal::default()
            };
            let mut card = Card::profile(name).unwrap();
            let session = run_session(&mut card, &terminal);
            let icc = recover_icc_key(&session).unwrap_or_else(|error| panic!("{name}: {error}"));
            let response = session.generate_ac.clone().unwrap();
            let template = tlv::parse_single(&response).unwrap();
            let result = oda::verify_cda(
                &icc,
                &session.value(Tag::SignedDynamicApplicationData).unwrap(),
                &CdaInput {
                    unpredictable_number: &terminal.unpredictable_number,
                    cid: session.value(Tag::CryptogramInformationData).unwrap()[0],
                    pdol_data: &session.pdol_data,
                    cdol1_data: session.cdol1_data.as_ref().unwrap(),
                    cdol2_data: None,
                    response_template: template.value,
                },
            )
            .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(result.cid, cid, "{name}");
            // The cryptogram CDA carries verifies under the issuer master key.
            let input = crate::arqc::expected_input(card.cryptogram_version(), &terminal, &session);
            crate::arqc::issuer_keys(&card)
                .verify_cryptogram(
                    &payment_crypto::emv::TransactionInputs {
                        atc: Atc::from_bytes(
                            &session.value(Tag::ApplicationTransactionCounter).unwrap(),
                        )
                        .unwrap(),
                        unpredictable_number: Some(UnpredictableNumber(
                            terminal.unpredictable_number,
                        )),
                    },
                    &input,
                    &Cryptogram::from_bytes(&result.cryptogram).unwrap(),
                )
                .unwrap_or_else(|error| panic!("{name}: {error}"));
        }
    }
}

#[test]
fn cda_fails_when_the_response_is_altered() {
    let terminal = Terminal::default();
    let mut card = Card::profile("mc-cda").unwrap();
    let session = run_session(&mut card, &terminal);
    let icc = recover_icc_key(&session).unwrap();
    let response = session.generate_ac.clone().unwrap();
    let template = tlv::parse_single(&response).unwrap();
    let mut pdol_data = session.pdol_data.clone();
    pdol_data[0] ^= 0x01;
    let result = oda::verify_cda(
        &icc,
        &session.value(Tag::SignedDynamicApplicationData).unwrap(),
        &CdaInput {
            unpredictable_number: &terminal.unpredictable_number,
            cid: session.value(Tag::CryptogramInformationData).unwrap()[0],
            pdol_data: &pdol_data,
            cdol1_data: session.cdol1_data.as_ref().unwrap(),
            cdol2_data: None,
            response_template: template.value,
        },
    );
    assert_eq!(result.err(), Some(OdaError::TransactionDataHash));
}
