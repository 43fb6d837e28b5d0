//! `dukpt tdes ...` and `dukpt aes ...`.

use crate::{bad_input, field, json, ok};

const TDES_BDK: &str = "0123456789ABCDEFFEDCBA9876543210";
const AES_BDK: &str = "FEDCBA9876543210F1F1F1F1F1F1F1F1";

/// ANSI X9.24-1:2009 Annex A.4: BDK 0123456789ABCDEFFEDCBA9876543210, KSN FFFF9876543210E00000,
/// IPEK 6AC292FAA1315B4D858AB3A3D7D5933A.
#[test]
fn tdes_ipek_matches_x9_24_1() {
    let args = [
        "dukpt",
        "tdes",
        "ipek",
        "--bdk",
        TDES_BDK,
        "--ksn",
        "FFFF9876543210E00000",
    ];
    assert_eq!(
        field(&ok(&args), "ipek"),
        "6AC292FAA1315B4D858AB3A3D7D5933A"
    );
    assert_eq!(
        json(&args, &["ipek"])["ipek"],
        "6AC292FAA1315B4D858AB3A3D7D5933A"
    );
}

/// ANSI X9.24-1:2009 Annex A.4, KSN FFFF9876543210E00001: PIN key
/// 042666B49184CF5C68DE9628D0397B36, from the BDK and from the IPEK.
#[test]
fn tdes_pin_key_matches_x9_24_1() {
    let from_bdk = [
        "dukpt",
        "tdes",
        "transaction-key",
        "--bdk",
        TDES_BDK,
        "--ksn",
        "FFFF9876543210E00001",
        "--key",
        "pin",
    ];
    assert_eq!(
        field(&ok(&from_bdk), "key"),
        "042666B49184CF5C68DE9628D0397B36"
    );
    let from_ipek = [
        "dukpt",
        "tdes",
        "transaction-key",
        "--ipek",
        "6AC292FAA1315B4D858AB3A3D7D5933A",
        "--ksn",
        "FFFF9876543210E00001",
        "--key",
        "pin",
    ];
    assert_eq!(
        json(&from_ipek, &["key"])["key"],
        "042666B49184CF5C68DE9628D0397B36"
    );
}

/// The other keys of counter 1 (FFFF9876543210E00001): MAC request variant
/// 042666B4918430A368DE9628D03984C9 (X9.24-1:2009 A.4 as transcribed in jmps-public
/// `GVRlib/dukpt3.py`), MAC response variant 042666B46E84CFA368DE96282F397BC9 and one-way data
/// request key 448D3F076D8304036A55A3D7E0055A78 (cryptoscript `DukptTdeaWorkingKeyTests`,
/// camcima/dukpt-php `tests/DerivedKeyTest.php`).
#[test]
fn tdes_mac_and_data_keys_match_published_values() {
    let key = |which| {
        let args = [
            "dukpt",
            "tdes",
            "transaction-key",
            "--bdk",
            TDES_BDK,
            "--ksn",
            "FFFF9876543210E00001",
            "--key",
            which,
        ];
        field(&ok(&args), "key")
    };
    assert_eq!(key("mac-request"), "042666B4918430A368DE9628D03984C9");
    assert_eq!(key("mac-response"), "042666B46E84CFA368DE96282F397BC9");
    assert_eq!(key("data-request"), "448D3F076D8304036A55A3D7E0055A78");
    // The bare variant skips the one-way function, so it is a different key.
    assert_ne!(key("data-request-variant"), key("data-request"));
    assert_ne!(key("data-response-variant"), key("data-response"));
}

/// ANSI X9.24-3:2017 Annex B.1 and its test vector supplement: AES-128 BDK
/// FEDCBA9876543210F1F1F1F1F1F1F1F1, initial key ID 1234567890123456, initial key
/// 1273671EA26AC29AFA4D1084127652A1; counter 1 AES-128 PIN key AF8CB133A78F8DC2D1359F18527593FB.
#[test]
fn aes_initial_and_working_keys_match_x9_24_3() {
    let initial = [
        "dukpt",
        "aes",
        "initial-key",
        "--bdk",
        AES_BDK,
        "--initial-key-id",
        "1234567890123456",
    ];
    assert_eq!(
        json(&initial, &["initial_key"])["initial_key"],
        "1273671EA26AC29AFA4D1084127652A1"
    );
    let working = |flag, key| {
        [
            "dukpt",
            "aes",
            "working-key",
            flag,
            key,
            "--ksn",
            "123456789012345600000001",
            "--usage",
            "pin-encryption",
            "--key-type",
            "aes128",
        ]
    };
    assert_eq!(
        field(&ok(&working("--bdk", AES_BDK)), "working_key"),
        "AF8CB133A78F8DC2D1359F18527593FB"
    );
    let from_initial = ok(&working(
        "--initial-key",
        "1273671EA26AC29AFA4D1084127652A1",
    ));
    assert_eq!(
        field(&from_initial, "working_key"),
        "AF8CB133A78F8DC2D1359F18527593FB"
    );
}

#[test]
fn bad_dukpt_input_exits_2_with_one_line() {
    bad_input(
        &[
            "dukpt",
            "tdes",
            "ipek",
            "--bdk",
            TDES_BDK,
            "--ksn",
            "FFFF9876543210E000",
        ],
        "dukpt_tdes_ksn_wrong_length",
    );
    bad_input(
        &[
            "dukpt",
            "tdes",
            "transaction-key",
            "--bdk",
            TDES_BDK,
            "--ksn",
            "FFFF9876543210E00000",
            "--key",
            "pin",
        ],
        "dukpt_tdes_counter_zero",
    );
    bad_input(
        &[
            "dukpt",
            "tdes",
            "transaction-key",
            "--ksn",
            "FFFF9876543210E00001",
            "--key",
            "pin",
        ],
        "usage",
    );
    bad_input(
        &[
            "dukpt",
            "aes",
            "initial-key",
            "--bdk",
            AES_BDK,
            "--initial-key-id",
            "123456",
        ],
        "dukpt_aes_initial_key_id_length",
    );
    bad_input(
        &[
            "dukpt",
            "aes",
            "working-key",
            "--bdk",
            AES_BDK,
            "--ksn",
            "1234",
            "--usage",
            "pin-encryption",
            "--key-type",
            "aes128",
        ],
        "dukpt_aes_ksn_length",
    );
    bad_input(
        &[
            "dukpt",
            "aes",
            "working-key",
            "--bdk",
            AES_BDK,
            "--ksn",
            "123456789012345600000001",
            "--usage",
            "pin-encryption",
            "--key-type",
            "aes256",
        ],
        "dukpt_aes_working_key_too_strong",
    );
}
