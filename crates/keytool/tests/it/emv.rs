//! `emv ...`: vectors from pyemv's HSM-checked tests (`tests/test_cvn_hsm.py`,
//! `tests/test_kd_hsm.py`) and documentation examples (`pyemv/kd.py`).

use crate::{bad_input, fails, field, json, ok};

const IMK: &str = "0123456789ABCDEFFEDCBA9876543210";
/// CDOL1 data of pyemv's Visa CVN 10 vector (ending with the CVR).
const CVN10_DATA: &str =
    "000000004000 000000000000 0124 8000048000 0124 191105 01 52BF4585 1800 001C 03A06010";
/// CDOL1 data of pyemv's Visa CVN 18 vector (ending with the issuer application data).
const CVN18_DATA: &str =
    "000000004000 000000000000 0124 8000048000 0124 191105 01 52BF4585 1800 001C 06011203A0B800";
/// CDOL1 data of pyemv's Interac CVN 133 vector (Mastercard session key derivation).
const MCHIP_DATA: &str = "000000009999 000000000000 0124 8000000000 0124 209906 00 ABCDEF12 1800 001C \
                          1501850440B100000000B00000000000000000000000";

fn card(version: &str) -> Vec<&str> {
    vec![
        "--version",
        version,
        "--imk",
        IMK,
        "--pan",
        "1234567890123456",
        "--psn",
        "00",
        "--atc",
        "001C",
    ]
}

/// pyemv `pyemv/kd.py` examples: options A and B for PAN 12345678901234567, PSN 01.
#[test]
fn icc_master_key_matches_pyemv_examples() {
    let args = |option| {
        [
            "emv",
            "icc-master-key",
            "--imk",
            IMK,
            "--pan",
            "12345678901234567",
            "--psn",
            "01",
            "--option",
            option,
        ]
    };
    assert_eq!(
        field(&ok(&args("a")), "icc_master_key"),
        "73AD54688CEF2934B0979857E3C719F1"
    );
    let object = json(&args("b"), &["icc_master_key"]);
    assert_eq!(object["icc_master_key"], "AD406D7F6D7570916D75E5DCAB8CF737");
}

/// pyemv `pyemv/kd.py` example of `derive_common_sk`: MK = IMK, R = 001C000000000000.
#[test]
fn session_key_matches_pyemv_example() {
    let from_atc = ok(&["emv", "session-key", "--master-key", IMK, "--atc", "001C"]);
    assert_eq!(
        field(&from_atc, "session_key"),
        "E9FB384AF807B940FEDCEA613461B0C4"
    );
    let object = json(
        &[
            "emv",
            "session-key",
            "--master-key",
            IMK,
            "--r",
            "001C000000000000",
        ],
        &["session_key"],
    );
    assert_eq!(object["session_key"], "E9FB384AF807B940FEDCEA613461B0C4");
}

/// pyemv `test_visa_cvn10`: ARQC 29CCA15AE665FA2E, ARPC (ARC 3030) 28993816AFAE4AEB.
#[test]
fn visa_cvn10_arqc_and_arpc() {
    let mut arqc = vec!["emv", "arqc"];
    arqc.extend(card("visa-cvn10"));
    arqc.extend(["--data", CVN10_DATA]);
    assert_eq!(json(&arqc, &["arqc"])["arqc"], "29CCA15AE665FA2E");

    let mut verify = vec!["emv", "verify-arqc"];
    verify.extend(card("visa-cvn10"));
    verify.extend(["--data", CVN10_DATA, "--arqc", "29CCA15AE665FA2E"]);
    assert_eq!(json(&verify, &["valid"])["valid"], true);
    *verify.last_mut().unwrap() = "29CCA15AE665FA2F";
    fails(&verify, 1, "emv_cryptogram_mismatch");

    let mut arpc = vec!["emv", "arpc"];
    arpc.extend(card("visa-cvn10"));
    arpc.extend(["--arqc", "29CCA15AE665FA2E", "--arc", "3030"]);
    assert_eq!(field(&ok(&arpc), "arpc"), "28993816AFAE4AEB");
    assert_eq!(json(&arpc, &["arpc"])["arpc"], "28993816AFAE4AEB");

    let mut verify_arpc = vec!["emv", "verify-arpc"];
    verify_arpc.extend(card("visa-cvn10"));
    verify_arpc.extend([
        "--arqc",
        "29CCA15AE665FA2E",
        "--arc",
        "3030",
        "--arpc",
        "28993816AFAE4AEB",
    ]);
    assert_eq!(field(&ok(&verify_arpc), "valid"), "true");
    *verify_arpc.last_mut().unwrap() = "28993816AFAE4AEC";
    fails(&verify_arpc, 1, "emv_arpc_mismatch");
}

/// pyemv `test_visa_cvn18`: ARQC 7A788EA6B8A3E733, ARPC method 2 (CSU 00000000) 9AF514C1.
#[test]
fn visa_cvn18_arqc_and_arpc_method_2() {
    let mut arqc = vec!["emv", "arqc"];
    arqc.extend(card("visa-cvn18"));
    arqc.extend(["--data", CVN18_DATA]);
    assert_eq!(field(&ok(&arqc), "arqc"), "7A788EA6B8A3E733");

    let mut arpc = vec!["emv", "arpc"];
    arpc.extend(card("visa-cvn18"));
    arpc.extend(["--arqc", "7A788EA6B8A3E733", "--csu", "00000000"]);
    assert_eq!(field(&ok(&arpc), "arpc"), "9AF514C1");
}

/// pyemv `test_interac_cvn133`, the Mastercard session key (R = ATC || 00 00 || UN):
/// ARQC 18932FECA2D84326, ARPC method 1 (ARC 0000) 4DF171A49396C363.
#[test]
fn mchip_arqc_and_arpc() {
    let mut arqc = vec!["emv", "arqc"];
    arqc.extend(card("mchip"));
    arqc.extend(["--un", "ABCDEF12", "--data", MCHIP_DATA]);
    assert_eq!(field(&ok(&arqc), "arqc"), "18932FECA2D84326");

    let mut arpc = vec!["emv", "arpc"];
    arpc.extend(card("mchip"));
    arpc.extend([
        "--un",
        "ABCDEF12",
        "--arqc",
        "18932FECA2D84326",
        "--arc",
        "0000",
    ]);
    assert_eq!(field(&ok(&arpc), "arpc"), "4DF171A49396C363");
}

/// pyemv `test_derive_icc_mk_b_sha_pad`, from the ICC master key's side: ARPC method 2 with
/// proprietary data through `--icc-master-key` (derived first with `icc-master-key`).
#[test]
fn arpc_method_2_with_proprietary_data_from_an_icc_master_key() {
    let mk = field(
        &ok(&[
            "emv",
            "icc-master-key",
            "--imk",
            IMK,
            "--pan",
            "000000000000000005",
            "--psn",
            "23",
            "--option",
            "b",
        ]),
        "icc_master_key",
    );
    let arpc = ok(&[
        "emv",
        "arpc",
        "--version",
        "emv",
        "--icc-master-key",
        &mk,
        "--atc",
        "001C",
        "--arqc",
        "8CAD6F2489C640B1",
        "--csu",
        "00000000",
        "--proprietary-data",
        "12345678",
    ]);
    assert_eq!(field(&arpc, "arpc"), "E39F1876");
}

#[test]
fn bad_emv_input_exits_2_with_one_line() {
    let icc = |pan, psn| {
        vec![
            "emv",
            "icc-master-key",
            "--imk",
            IMK,
            "--pan",
            pan,
            "--psn",
            psn,
            "--option",
            "a",
        ]
    };
    bad_input(&icc("1234", "00"), "emv_pan_length");
    bad_input(&icc("12345678901234X6", "00"), "emv_pan_not_numeric");
    bad_input(
        &icc("1234567890123456", "1"),
        "emv_invalid_pan_sequence_number",
    );
    bad_input(
        &[
            "emv",
            "icc-master-key",
            "--imk",
            "0011",
            "--pan",
            "1234567890123456",
            "--option",
            "a",
        ],
        "key_unsupported_length",
    );
    bad_input(
        &["emv", "session-key", "--master-key", IMK, "--r", "0011"],
        "emv_diversification_length",
    );
    bad_input(&["emv", "session-key", "--master-key", IMK], "usage");

    let mut no_un = vec!["emv", "arqc"];
    no_un.extend(card("mchip"));
    no_un.extend(["--data", "00"]);
    bad_input(&no_un, "emv_missing_unpredictable_number");

    let mut bad_atc = vec![
        "emv",
        "arqc",
        "--version",
        "emv",
        "--icc-master-key",
        IMK,
        "--atc",
        "01",
    ];
    bad_atc.extend(["--data", "00"]);
    bad_input(&bad_atc, "emv_field_length");

    let mut wrong_method = vec!["emv", "arpc"];
    wrong_method.extend(card("visa-cvn18"));
    wrong_method.extend(["--arqc", "7A788EA6B8A3E733", "--arc", "3030"]);
    bad_input(&wrong_method, "emv_arpc_method_not_used");

    let mut both = vec!["emv", "arpc"];
    both.extend(card("emv"));
    both.extend([
        "--arqc",
        "7A788EA6B8A3E733",
        "--arc",
        "3030",
        "--csu",
        "00000000",
    ]);
    bad_input(&both, "usage");

    let mut short_arqc = vec!["emv", "verify-arqc"];
    short_arqc.extend(card("emv"));
    short_arqc.extend(["--data", "00", "--arqc", "0102"]);
    bad_input(&short_arqc, "emv_field_length");

    bad_input(
        &[
            "emv",
            "arqc",
            "--version",
            "visa-cvn10",
            "--icc-master-key",
            IMK,
            "--cipher",
            "aes",
            "--atc",
            "0001",
            "--data",
            "00",
        ],
        "emv_unsupported_key",
    );
}
