//! `kcv`: check values quoted in the crate's own KCV vectors (jPOS, HSM manuals, CyberChef fork).

use crate::{bad_input, field, json, ok};

/// TDES 0123456789ABCDEFFEDCBA9876543210, encrypt-zeros: 08D7B4 (jPOS ZPK fixture, HSM manuals);
/// AES-128 00112233445566778899AABBCCDDEEFF: CMAC method 53E107 and encrypt-zeros FDE4FB
/// (payments CyberChef fork, "Payment Calculate KCV").
#[test]
fn kcvs_match_published_values() {
    let tdes = [
        "kcv",
        "--key",
        "0123456789ABCDEFFEDCBA9876543210",
        "--cipher",
        "tdes",
        "--method",
        "encrypt-zeros",
    ];
    assert_eq!(field(&ok(&tdes), "kcv"), "08D7B4");
    assert_eq!(json(&tdes, &["kcv"])["kcv"], "08D7B4");
    let aes = |method, length| {
        [
            "kcv",
            "--key",
            "00112233445566778899AABBCCDDEEFF",
            "--cipher",
            "aes",
            "--method",
            method,
            "--length",
            length,
        ]
    };
    assert_eq!(field(&ok(&aes("cmac", "3")), "kcv"), "53E107");
    assert_eq!(field(&ok(&aes("encrypt-zeros", "3")), "kcv"), "FDE4FB");
}

#[test]
fn bad_kcv_input_exits_2_with_one_line() {
    let args = |key, length| {
        [
            "kcv", "--key", key, "--cipher", "aes", "--method", "cmac", "--length", length,
        ]
    };
    bad_input(
        &args("00112233445566778899AABBCCDDEEFF", "9"),
        "kcv_length_out_of_range",
    );
    bad_input(&args("0011", "3"), "key_unsupported_length");
    bad_input(
        &args("00112233445566778899AABBCCDDEEFX", "3"),
        "invalid_hex",
    );
    bad_input(
        &[
            "kcv",
            "--key",
            "00112233445566778899AABBCCDDEEFF",
            "--cipher",
            "aes",
        ],
        "usage",
    );
}
