//! `mac compute` and `mac verify`.

use crate::{bad_input, fails, field, json, ok};

const KEY: &str = "0123456789ABCDEF FEDCBA9876543210";
/// "Now is the time for all " in ASCII.
const NOW_IS_THE_TIME: &str = "4E6F77206973207468652074696D6520666F7220616C6C20";

/// ISO/IEC 9797-1:1999 Annex B / ANSI X9.19: MAC algorithm 3, K = 0123456789ABCDEF,
/// K' = FEDCBA9876543210, "Now is the time for all ", padding methods 1 and 2.
#[test]
fn retail_mac_matches_iso9797_annex_b() {
    let args = |padding| {
        [
            "mac",
            "compute",
            "--algorithm",
            "retail-mac",
            "--padding",
            padding,
            "--key",
            KEY,
            "--data",
            NOW_IS_THE_TIME,
        ]
    };
    assert_eq!(field(&ok(&args("1")), "mac"), "A1C72E74EA3FA9B6");
    assert_eq!(field(&ok(&args("2")), "mac"), "E9086230CA3BE796");
    // Lower-case hex is accepted too.
    let lower = ok(&[
        "mac",
        "compute",
        "--algorithm",
        "retail-mac",
        "--padding",
        "1",
        "--key",
        "0123456789abcdeffedcba9876543210",
        "--data",
        &NOW_IS_THE_TIME.to_lowercase(),
        "--length",
        "4",
    ]);
    assert_eq!(field(&lower, "mac"), "A1C72E74");
}

/// ISO/IEC 9797-1:1999 Annex B, MAC algorithm 1 (single DES as TDES with K = K'), padding
/// method 1, and NIST SP 800-38B CMAC-AES128 example 2 and CMAC-TDES (two-key) example 2.
#[test]
fn cbc_mac_and_cmac_match_published_vectors() {
    let cbc = ok(&[
        "mac",
        "compute",
        "--algorithm",
        "cbc-mac-tdes",
        "--padding",
        "1",
        "--key",
        "0123456789ABCDEF0123456789ABCDEF",
        "--data",
        NOW_IS_THE_TIME,
    ]);
    assert_eq!(field(&cbc, "mac"), "70A30640CC76DD8B");
    let aes = json(
        &[
            "mac",
            "compute",
            "--algorithm",
            "cmac-aes",
            "--key",
            "2b7e151628aed2a6abf7158809cf4f3c",
            "--data",
            "6bc1bee22e409f96e93d7e117393172a",
        ],
        &["mac"],
    );
    assert_eq!(aes["mac"], "070A16B46B4D4144F79BDD9DD04A287C");
    let tdes = ok(&[
        "mac",
        "compute",
        "--algorithm",
        "cmac-tdes",
        "--key",
        "0123456789ABCDEF23456789ABCDEF01",
        "--data",
        "6bc1bee22e409f96e93d7e117393172a",
    ]);
    assert_eq!(field(&tdes, "mac"), "CC18A0B79AF2413B");
}

#[test]
fn verify_reports_valid_or_mismatch() {
    let args = |mac| {
        [
            "mac",
            "verify",
            "--algorithm",
            "retail-mac",
            "--padding",
            "1",
            "--key",
            KEY,
            "--data",
            NOW_IS_THE_TIME,
            "--mac",
            mac,
        ]
    };
    let object = json(&args("A1C72E74EA3FA9B6"), &["valid"]);
    assert_eq!(object["valid"], true);
    assert_eq!(field(&ok(&args("a1c7 2e74")), "valid"), "true");
    fails(&args("A1C72E74EA3FA9B7"), 1, "mac_mismatch");
}

#[test]
fn bad_mac_input_exits_2_with_one_line() {
    let compute =
        |algorithm, padding: Option<&'static str>, key, data, length: Option<&'static str>| {
            let mut args = vec![
                "mac",
                "compute",
                "--algorithm",
                algorithm,
                "--key",
                key,
                "--data",
                data,
            ];
            if let Some(padding) = padding {
                args.extend(["--padding", padding]);
            }
            if let Some(length) = length {
                args.extend(["--length", length]);
            }
            args
        };
    bad_input(
        &compute("retail-mac", Some("1"), "0123", "00", None),
        "key_unsupported_length",
    );
    bad_input(
        &compute("retail-mac", Some("1"), "012", "00", None),
        "invalid_hex",
    );
    bad_input(
        &compute("retail-mac", Some("1"), KEY, "0G", None),
        "invalid_hex",
    );
    bad_input(&compute("retail-mac", None, KEY, "00", None), "usage");
    bad_input(&compute("cmac-aes", Some("2"), KEY, "00", None), "usage");
    bad_input(
        &compute("retail-mac", Some("1"), KEY, "00", Some("3")),
        "mac_invalid_length",
    );
    bad_input(
        &compute("retail-mac", Some("1"), KEY, "00", Some("nine")),
        "usage",
    );
    bad_input(
        &compute(
            "retail-mac",
            Some("1"),
            "0123456789ABCDEFFEDCBA98765432100123456789ABCDEF",
            "00",
            None,
        ),
        "mac_unsupported_key",
    );
    bad_input(&compute("retail-mac", Some("3"), KEY, "00", None), "usage");
    bad_input(
        &[
            "mac",
            "verify",
            "--algorithm",
            "retail-mac",
            "--padding",
            "1",
            "--key",
            KEY,
            "--data",
            "00",
            "--mac",
            "0102",
        ],
        "mac_invalid_length",
    );
}
