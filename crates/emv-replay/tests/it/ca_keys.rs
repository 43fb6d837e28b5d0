//! CA key files: the bundled sets (every checksum recomputed) and bad input.

use emv_kernel::Date;
use emv_replay::CaSet;
use emv_replay::ca_keys::{self, CaKeyErrorKind};

const VISA: [u8; 5] = [0xA0, 0x00, 0x00, 0x00, 0x03];
const MASTERCARD: [u8; 5] = [0xA0, 0x00, 0x00, 0x00, 0x04];

fn today() -> Date {
    Date::new(2026, 11, 26).unwrap()
}

#[test]
fn bundled_test_keys_load_with_checksums() {
    // Every line carries the published checksum, so loading checks each key.
    let table = CaSet::Test.table().unwrap();
    assert_eq!(table.len(), 8);
    for index in [0x92, 0x94, 0x95] {
        assert!(
            table.find(&VISA, index, today()).is_ok(),
            "Visa {index:02X}"
        );
    }
    for index in [0xEF, 0xF1, 0xF3, 0xF8, 0xFA] {
        assert!(
            table.find(&MASTERCARD, index, today()).is_ok(),
            "MC {index:02X}"
        );
    }
    // Visa 92 is the 1408-bit test key.
    let key = table.find(&VISA, 0x92, today()).unwrap();
    assert_eq!(key.key.len(), 176);
    assert!(table.find(&VISA, 0x09, today()).is_err());
}

#[test]
fn bundled_production_keys_load_with_checksums() {
    let table = CaSet::Production.table().unwrap();
    assert_eq!(table.len(), 6);
    for index in [0x07, 0x08, 0x09] {
        assert!(
            table.find(&VISA, index, today()).is_ok(),
            "Visa {index:02X}"
        );
    }
    for index in [0x04, 0x05, 0x06] {
        assert!(
            table.find(&MASTERCARD, index, today()).is_ok(),
            "MC {index:02X}"
        );
    }
    assert_eq!(table.find(&VISA, 0x09, today()).unwrap().key.len(), 248);
    assert!(table.find(&VISA, 0x92, today()).is_err());
}

#[test]
fn every_bundled_line_has_a_checksum() {
    for set in [CaSet::Test, CaSet::Production] {
        for line in set.text().lines() {
            let content = line.split('#').next().unwrap().trim();
            if !content.is_empty() {
                assert_eq!(content.split_whitespace().count(), 5, "{line}");
            }
        }
    }
}

#[test]
fn plain_four_field_lines_and_colons() {
    let table = ca_keys::parse(
        "# test\nA000000003 01 C3:4F:35 03\n\na0:00:00:00:04 02 C34F35 010001 # comment\n",
    )
    .unwrap();
    assert_eq!(table.len(), 2);
}

#[test]
fn bad_lines_are_refused_with_the_line() {
    let check = |text: &str, line: usize, code: &str| {
        let error = ca_keys::parse(text).expect_err(text);
        assert_eq!((error.line, error.code()), (line, code), "{error}");
    };
    check("A000000003 01 C34F35\n", 1, "ca_key_field_count");
    check("#\nA000000003 01 C34F3 03\n", 2, "ca_key_bad_hex");
    check("A0000000 01 C34F35 03\n", 1, "ca_key_rid_length");
    check("A000000003 0101 C34F35 03\n", 1, "ca_key_index_length");
    check(
        "A000000003 01 C34F35 03 0011\n",
        1,
        "ca_key_checksum_length",
    );
    check(
        "A000000003 01 C34F35 03 0000000000000000000000000000000000000000\n",
        1,
        "ca_key_checksum_mismatch",
    );
    let error = ca_keys::parse("A000000003 01 C34FXX 03\n").unwrap_err();
    assert!(matches!(
        error.kind,
        CaKeyErrorKind::Hex {
            field: "modulus",
            ..
        }
    ));
}
