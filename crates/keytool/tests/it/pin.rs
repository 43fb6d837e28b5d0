//! `pin ...`: vectors quoted in the crate's PIN block tests.

use crate::{bad_input, fails, field, json, ok};

/// ANSI X9.24-1:2009 Annex A.4, KSN FFFF9876543210E00001: PIN key
/// 042666B49184CF5C68DE9628D0397B36, PIN 1234, PAN 4012345678909, format 0 block
/// 1B9C1845EB993A7A.
const X924_1_KEY: &str = "042666B49184CF5C68DE9628D0397B36";
const X924_1_PAN: &str = "4012345678909";
const X924_1_BLOCK: &str = "1B9C1845EB993A7A";

/// ANSI X9.24-3:2017 supplement, "Calculation of AES PIN Block Format 4": key
/// AF8CB133A78F8DC2D1359F18527593FB, PIN 1234, PAN 4111111111111111, random 2F69ADDE2E9E7ACE,
/// block A912150391AB65A67E52883D81CE2D15.
const X924_3_KEY: &str = "AF8CB133A78F8DC2D1359F18527593FB";
const X924_3_BLOCK: &str = "A912150391AB65A67E52883D81CE2D15";

#[test]
fn build_matches_published_blocks() {
    let format0 = [
        "pin",
        "build",
        "--format",
        "0",
        "--key",
        X924_1_KEY,
        "--test-pin",
        "1234",
        "--pan",
        X924_1_PAN,
    ];
    assert_eq!(field(&ok(&format0), "pin_block"), X924_1_BLOCK);
    assert_eq!(json(&format0, &["pin_block"])["pin_block"], X924_1_BLOCK);
    let format4 = [
        "pin",
        "build",
        "--format",
        "4",
        "--key",
        X924_3_KEY,
        "--test-pin",
        "1234",
        "--pan",
        "4111111111111111",
        "--test-random",
        "2F69ADDE2E9E7ACE",
    ];
    assert_eq!(field(&ok(&format4), "pin_block"), X924_3_BLOCK);
}

#[test]
fn parse_shows_the_pin_only_when_asked() {
    let args = [
        "pin",
        "parse",
        "--format",
        "0",
        "--key",
        X924_1_KEY,
        "--block",
        X924_1_BLOCK,
        "--pan",
        X924_1_PAN,
    ];
    let object = json(&args, &["pin_length"]);
    assert_eq!(object["pin_length"], 4);
    assert!(!ok(&args).contains("1234"));
    let mut revealed = args.to_vec();
    revealed.push("--reveal-test-pin");
    assert_eq!(field(&ok(&revealed), "pin"), "1234");
    assert_eq!(json(&revealed, &["pin", "pin_length"])["pin"], "1234");
}

#[test]
fn verify_reports_valid_or_mismatch() {
    let args = |pin| {
        [
            "pin",
            "verify",
            "--format",
            "4",
            "--key",
            X924_3_KEY,
            "--block",
            X924_3_BLOCK,
            "--pan",
            "4111111111111111",
            "--test-pin",
            pin,
        ]
    };
    assert_eq!(json(&args("1234"), &["valid"])["valid"], true);
    fails(&args("1235"), 1, "pin_mismatch");
}

/// Translating the X9.24-1 format 0 block to format 4 under the X9.24-3 key and back must give
/// the published format 0 block again (format 0 has no random fill); the intermediate block
/// verifies as PIN 1234.
#[test]
fn translate_round_trips_to_the_published_block() {
    let to4 = ok(&[
        "pin",
        "translate",
        "--block",
        X924_1_BLOCK,
        "--from-format",
        "0",
        "--from-key",
        X924_1_KEY,
        "--to-format",
        "4",
        "--to-key",
        X924_3_KEY,
        "--pan",
        X924_1_PAN,
    ]);
    let block4 = field(&to4, "pin_block");
    assert_eq!(block4.len(), 32);
    let verify = ok(&[
        "pin",
        "verify",
        "--format",
        "4",
        "--key",
        X924_3_KEY,
        "--block",
        &block4,
        "--pan",
        X924_1_PAN,
        "--test-pin",
        "1234",
    ]);
    assert_eq!(field(&verify, "valid"), "true");
    let back = json(
        &[
            "pin",
            "translate",
            "--block",
            &block4,
            "--from-format",
            "4",
            "--from-key",
            X924_3_KEY,
            "--to-format",
            "0",
            "--to-key",
            X924_1_KEY,
            "--pan",
            X924_1_PAN,
        ],
        &["pin_block"],
    );
    assert_eq!(back["pin_block"], X924_1_BLOCK);
}

#[test]
fn bad_pin_input_exits_2_with_one_line() {
    let build = |format, key, pin, pan| {
        vec![
            "pin",
            "build",
            "--format",
            format,
            "--key",
            key,
            "--test-pin",
            pin,
            "--pan",
            pan,
        ]
    };
    bad_input(
        &build("0", X924_1_KEY, "12", X924_1_PAN),
        "pin_invalid_length",
    );
    bad_input(&build("0", X924_1_KEY, "12a4", X924_1_PAN), "pin_non_digit");
    bad_input(
        &build("0", X924_1_KEY, "1234", "40123"),
        "pan_invalid_length",
    );
    bad_input(
        &build("4", "0011", "1234", X924_1_PAN),
        "key_unsupported_length",
    );
    bad_input(&build("2", X924_1_KEY, "1234", X924_1_PAN), "usage");
    bad_input(
        &[
            "pin",
            "build",
            "--format",
            "0",
            "--key",
            X924_1_KEY,
            "--test-pin",
            "1234",
        ],
        "pin_block_pan_required",
    );
    bad_input(
        &[
            "pin",
            "parse",
            "--format",
            "0",
            "--key",
            X924_1_KEY,
            "--block",
            "1B9C1845EB99",
            "--pan",
            X924_1_PAN,
        ],
        "pin_block_wrong_length",
    );
    // The right block under the wrong PAN decodes to invalid fill, a typed error.
    let output = crate::run(&[
        "pin",
        "parse",
        "--format",
        "0",
        "--key",
        X924_1_KEY,
        "--block",
        X924_1_BLOCK,
        "--pan",
        "4111111111111111",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
    bad_input(
        &[
            "pin",
            "build",
            "--format",
            "3",
            "--key",
            X924_1_KEY,
            "--test-pin",
            "1234",
            "--pan",
            X924_1_PAN,
            "--test-random",
            "",
        ],
        "invalid_length",
    );
}
