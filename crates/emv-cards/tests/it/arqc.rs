//! The cross-check: the cards' application cryptograms verify with payment-crypto's
//! `emv` module under the issuer master key, with the MAC input rebuilt here from the data the
//! terminal sent and the card returned.

use emv_cards::Card;
use emv_cards::cryptogram::cryptogram_input;
use emv_cards::keys::issuer_master_key;
use emv_kernel::dol::Dol;
use emv_kernel::tlv::Tag;
use payment_crypto::emv::{
    Atc, CardKeys, Cryptogram, CryptogramVersion, Pan, PanSequenceNumber, TransactionInputs,
    UnpredictableNumber,
};

use crate::{Session, Terminal, run_session};

/// The issuer's view: keys derived from the issuer master key the card names.
pub(crate) fn issuer_keys(card: &Card) -> CardKeys {
    let imk = issuer_master_key(card.issuer_master_key_id()).unwrap();
    CardKeys::derive(
        card.cryptogram_version(),
        &imk,
        &Pan::from_digits(card.pan()).unwrap(),
        PanSequenceNumber::from_bcd(card.pan_sequence_number()).unwrap(),
    )
    .unwrap()
}

/// The MAC input written out by hand (Book 2 Table 26 data, AIP, ATC, then the IAD for Visa or
/// the CVR for M/Chip), independently of `emv_cards::cryptogram`.
pub(crate) fn expected_input(
    version: CryptogramVersion,
    terminal: &Terminal,
    session: &Session,
) -> Vec<u8> {
    let data = terminal.data();
    let mut input = Vec::new();
    for tag in [
        Tag::AmountAuthorised,
        Tag::AmountOther,
        Tag::TerminalCountryCode,
        Tag::TerminalVerificationResults,
        Tag::TransactionCurrencyCode,
        Tag::TransactionDate,
        Tag::TransactionType,
        Tag::UnpredictableNumber,
    ] {
        input.extend_from_slice(&data[&tag]);
    }
    input.extend_from_slice(&session.aip);
    input.extend_from_slice(&session.value(Tag::ApplicationTransactionCounter).unwrap());
    let iad = session.value(Tag::IssuerApplicationData).unwrap();
    match version {
        CryptogramVersion::MChip | CryptogramVersion::Emv => input.extend_from_slice(&iad[2..8]),
        _ => input.extend_from_slice(&iad),
    }
    input
}

fn verify(name: &str, terminal: &Terminal) {
    let mut card = Card::profile(name).unwrap();
    let session = run_session(&mut card, terminal);
    let version = card.cryptogram_version();
    let input = expected_input(version, terminal, &session);
    // The crate's published rule gives the same bytes.
    let mut published = terminal.data();
    published.insert(Tag::ApplicationInterchangeProfile, session.aip.clone());
    for tag in [
        Tag::ApplicationTransactionCounter,
        Tag::IssuerApplicationData,
    ] {
        published.insert(tag, session.value(tag).unwrap());
    }
    assert_eq!(cryptogram_input(version, &published), input, "{name}");

    let ac = Cryptogram::from_bytes(&session.value(Tag::ApplicationCryptogram).unwrap()).unwrap();
    let inputs = TransactionInputs {
        atc: Atc::from_bytes(&session.value(Tag::ApplicationTransactionCounter).unwrap()).unwrap(),
        unpredictable_number: Some(UnpredictableNumber(terminal.unpredictable_number)),
    };
    issuer_keys(&card)
        .verify_cryptogram(&inputs, &input, &ac)
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    // A changed amount does not verify.
    let mut tampered = input.clone();
    tampered[5] ^= 0x01;
    assert!(
        issuer_keys(&card)
            .verify_cryptogram(&inputs, &tampered, &ac)
            .is_err()
    );
}

#[test]
fn visa_arqc_and_tc_verify_under_the_issuer_master_key() {
    verify("visa-fdda", &Terminal::default());
    verify(
        "visa-fdda",
        &Terminal {
            amount_minor: 1500,
            ..Terminal::default()
        },
    );
    verify("visa-online-pin", &Terminal::default());
}

#[test]
fn mchip_arqc_verifies_under_the_issuer_master_key() {
    // Without CDA the cryptogram is in the clear (with CDA it is inside the signature, checked by
    // the ODA tests).
    for name in ["mc-cda", "expired", "no-supported-aid"] {
        verify(
            name,
            &Terminal {
                cda: false,
                ..Terminal::default()
            },
        );
    }
}

#[test]
fn mchip_session_key_depends_on_the_unpredictable_number() {
    let terminal = Terminal {
        cda: false,
        ..Terminal::default()
    };
    let mut card = Card::profile("mc-cda").unwrap();
    let session = run_session(&mut card, &terminal);
    let input = expected_input(CryptogramVersion::MChip, &terminal, &session);
    let ac = Cryptogram::from_bytes(&session.value(Tag::ApplicationCryptogram).unwrap()).unwrap();
    let inputs = TransactionInputs {
        atc: Atc::from_bytes(&session.value(Tag::ApplicationTransactionCounter).unwrap()).unwrap(),
        unpredictable_number: Some(UnpredictableNumber([0, 0, 0, 0])),
    };
    assert!(
        issuer_keys(&card)
            .verify_cryptogram(&inputs, &input, &ac)
            .is_err()
    );
    // The CDOL1 the card publishes is the one the input was built from.
    let cdol1 = Dol::parse(&session.value(Tag::Cdol1).unwrap()).unwrap();
    assert_eq!(cdol1.data_len(), 33);
}
