use std::collections::BTreeMap;

use emv_kernel::Tag;
use emv_kernel::dol::{Dol, DolEntry, DolError};
use hex_literal::hex;

/// A PDOL of the shape Kernel 3 (qVSDC) cards return, using the PDOL data elements of EMV
/// Contactless Book C-3 Annex A: TTQ(4) Amount Authorised(6) Amount Other(6) Terminal Country
/// Code(2) TVR(5) Transaction Currency Code(2) Transaction Date(3) Transaction Type(1)
/// Unpredictable Number(4). Expected data below is derived by hand from the Book 3 5.4 rules.
const VISA_PDOL: [u8; 24] = hex!("9F6604 9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704");

#[test]
fn parses_a_pdol() {
    let dol = Dol::parse(&VISA_PDOL).unwrap();
    let expected = [
        (Tag::TerminalTransactionQualifiers, 4),
        (Tag::AmountAuthorised, 6),
        (Tag::AmountOther, 6),
        (Tag::TerminalCountryCode, 2),
        (Tag::TerminalVerificationResults, 5),
        (Tag::TransactionCurrencyCode, 2),
        (Tag::TransactionDate, 3),
        (Tag::TransactionType, 1),
        (Tag::UnpredictableNumber, 4),
    ]
    .map(|(tag, len)| DolEntry { tag, len });
    assert_eq!(dol.entries(), expected);
    assert_eq!(dol.data_len(), 33);
    assert_eq!(dol.to_vec(), VISA_PDOL);
}

#[test]
fn builds_pdol_data_with_padding_rules() {
    let dol = Dol::parse(&VISA_PDOL).unwrap();
    let mut data: BTreeMap<Tag, Vec<u8>> = BTreeMap::new();
    data.insert(
        Tag::TerminalTransactionQualifiers,
        hex!("36004000").to_vec(),
    );
    data.insert(Tag::AmountAuthorised, hex!("000000001000").to_vec());
    data.insert(Tag::TerminalCountryCode, hex!("0840").to_vec());
    data.insert(Tag::TransactionCurrencyCode, hex!("0840").to_vec());
    data.insert(Tag::TransactionDate, hex!("260126").to_vec());
    data.insert(Tag::TransactionType, hex!("00").to_vec());
    data.insert(Tag::UnpredictableNumber, hex!("DEADBEEF").to_vec());
    let built = dol.build(&data);
    assert_eq!(
        built,
        hex!("36004000 000000001000 000000000000 0840 0000000000 0840 260126 00 DEADBEEF")
    );
    let parts = dol.split(&built).unwrap();
    assert_eq!(parts[8], (Tag::UnpredictableNumber, &hex!("DEADBEEF")[..]));
}

/// Book 3 5.4: numeric values are truncated on the left and padded on the left; cn on the right
/// with `F`; constructed and unknown tags give zeros.
#[test]
fn dol_rules_per_format() {
    let dol = Dol::parse(&hex!("9F02 04 5A 0A 70 03 DF7F 02 9F4E 03")).unwrap();
    let source: &[(Tag, &[u8])] = &[
        (Tag::AmountAuthorised, &hex!("000000123456")),
        (Tag::ApplicationPan, &hex!("5413330089010434")),
        (Tag::ReadRecordResponseTemplate, &hex!("010203")),
        (Tag::MerchantNameAndLocation, b"SUNBAY"),
    ];
    assert_eq!(
        dol.build(source),
        hex!("00123456 5413330089010434FFFF 000000 0000 53554E")
    );
}

#[test]
fn malformed_dols_are_rejected() {
    assert!(matches!(
        Dol::parse(&hex!("9F02")),
        Err(DolError::Malformed(_))
    ));
    assert!(matches!(
        Dol::parse(&hex!("9F")),
        Err(DolError::Malformed(_))
    ));
    assert!(matches!(
        Dol::parse(&[0x95; 253]),
        Err(DolError::TooLong(253))
    ));
    let dol = Dol::parse(&hex!("9F3704")).unwrap();
    assert_eq!(
        dol.split(&hex!("0102")),
        Err(DolError::DataLength {
            expected: 4,
            actual: 2
        })
    );
    assert!(Dol::parse(&[]).unwrap().is_empty());
}

/// The CDOL1 of the Mastercard test card in emv-tools `cda_test.c` (tag `8C` in its static data)
/// and the CDOL1 data the terminal sent for it (`c_crm1`): amounts 0, country and currency 0643,
/// TVR zero, date 14-09-25, type 50, UN 12345779, terminal type 23, DAC and ICC dynamic number
/// unknown to the terminal (zeros), CVM Results 1E0300.
#[test]
fn published_cdol1_data_is_rebuilt() {
    let cdol1 = Dol::parse(&hex!(
        "9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704 9F3501 9F4502 9F4C08 9F3403"
    ))
    .unwrap();
    let source: &[(Tag, &[u8])] = &[
        (Tag::AmountAuthorised, &hex!("000000000000")),
        (Tag::AmountOther, &hex!("000000000000")),
        (Tag::TerminalCountryCode, &hex!("0643")),
        (Tag::TerminalVerificationResults, &hex!("0000000000")),
        (Tag::TransactionCurrencyCode, &hex!("0643")),
        (Tag::TransactionDate, &hex!("140925")),
        (Tag::TransactionType, &hex!("50")),
        (Tag::UnpredictableNumber, &hex!("12345779")),
        (Tag::TerminalType, &hex!("23")),
        (Tag::CvmResults, &hex!("1E0300")),
    ];
    assert_eq!(
        cdol1.build(source),
        hex!(
            "000000000000 000000000000 0643 0000000000 0643 140925 50 12345779 23 0000"
            "0000000000000000 1E0300"
        )
    );
}
