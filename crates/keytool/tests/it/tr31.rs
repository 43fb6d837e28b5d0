//! `tr31 wrap` and `tr31 unwrap`: TR-31:2018 Annex A and ANSI X9.143-2021 vectors as quoted in
//! the crate's TR-31 tests (openemv/tr31 `test/tr31_decrypt_test.c`).

use crate::{bad_input, field, json, ok};

/// TR-31:2018 A.7.4 / X9.143-2021 8.1: AES KBPK, version D, PIN key, random padding
/// 1C2965473CE206BB855B01533782.
const D_KBPK: &str = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
const D_KEY: &str = "3F419E1CB7079442AA37474C2EFBF8B8";
const D_BLOCK: &str = "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34";

/// TR-31:2018 A.7.3.2: TDES KBPK, version B, BDK with key version 12 and a KS optional block.
const B_KBPK: &str = "1D22BF32387C600AD97F9B97A51311AC";
const B_BLOCK: &str = "B0104B0TX12S0100KS1800604B120F9292800000BB68BE8680A400D9191AD4ECE45B6E6C0D21C4738A52190E248719E24B433627";

fn wrap_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "tr31",
        "wrap",
        "--kbpk",
        D_KBPK,
        "--key",
        D_KEY,
        "--version",
        "D",
        "--key-usage",
        "P0",
        "--algorithm",
        "A",
        "--mode-of-use",
        "E",
        "--exportability",
        "E",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn wrap_reproduces_the_published_version_d_block() {
    let args = wrap_args(&["--test-random", "1C2965473CE206BB855B01533782"]);
    assert_eq!(field(&ok(&args), "key_block"), D_BLOCK);
    assert_eq!(json(&args, &["key_block"])["key_block"], D_BLOCK);
    // With the OS CSPRNG the block differs but unwraps to the same key.
    let random_block = field(&ok(&wrap_args(&[])), "key_block");
    let unwrapped = ok(&[
        "tr31",
        "unwrap",
        "--kbpk",
        D_KBPK,
        "--key-block",
        &random_block,
    ]);
    assert_eq!(field(&unwrapped, "key"), D_KEY);
}

#[test]
fn unwrap_returns_the_key_and_header_fields() {
    let object = json(
        &["tr31", "unwrap", "--kbpk", B_KBPK, "--key-block", B_BLOCK],
        &[
            "algorithm",
            "exportability",
            "key",
            "key_context",
            "key_usage",
            "key_version",
            "mode_of_use",
            "optional_blocks",
            "version",
        ],
    );
    assert_eq!(object["key"], "E8BC63E5479455E26577F715D587FE68");
    assert_eq!(object["version"], "B");
    assert_eq!(object["key_usage"], "B0");
    assert_eq!(object["algorithm"], "T");
    assert_eq!(object["mode_of_use"], "X");
    assert_eq!(object["key_version"], "12");
    assert_eq!(object["exportability"], "S");
    assert_eq!(object["key_context"], "0");
    assert_eq!(object["optional_blocks"][0], "KS00604B120F9292800000");
    let text = ok(&["tr31", "unwrap", "--kbpk", D_KBPK, "--key-block", D_BLOCK]);
    assert_eq!(field(&text, "key"), D_KEY);
}

/// `wrap` arguments with the header fields given.
fn header_args<'a>(
    version: &'a str,
    kbpk: &'a str,
    usage: &'a str,
    algorithm: &'a str,
    mode: &'a str,
) -> Vec<&'a str> {
    vec![
        "tr31",
        "wrap",
        "--kbpk",
        kbpk,
        "--key",
        D_KEY,
        "--version",
        version,
        "--key-usage",
        usage,
        "--algorithm",
        algorithm,
        "--mode-of-use",
        mode,
        "--exportability",
        "E",
    ]
}

#[test]
fn bad_tr31_input_exits_2_with_one_line() {
    let mut tampered = B_BLOCK.to_owned();
    tampered.replace_range(B_BLOCK.len() - 1.., "8");
    bad_input(
        &["tr31", "unwrap", "--kbpk", B_KBPK, "--key-block", &tampered],
        "tr31_mac_mismatch",
    );
    bad_input(
        &["tr31", "unwrap", "--kbpk", B_KBPK, "--key-block", "B0104"],
        "tr31_truncated",
    );
    bad_input(
        &header_args("D", D_KBPK, "Q9", "A", "E"),
        "tr31_unknown_key_usage",
    );
    bad_input(
        &header_args("D", D_KBPK, "P0", "Q", "E"),
        "tr31_unknown_algorithm",
    );
    bad_input(
        &header_args("D", D_KBPK, "P0", "A", "Z"),
        "tr31_unknown_mode_of_use",
    );
    bad_input(
        &header_args("D", D_KBPK, "P0", "H", "E"),
        "tr31_unsupported_key_algorithm",
    );
    // Version B takes a TDES KBPK; a 32-byte key is none.
    bad_input(
        &header_args("B", D_KBPK, "P0", "A", "E"),
        "key_unsupported_length",
    );
    bad_input(&header_args("C", D_KBPK, "P0", "A", "E"), "usage");
    let mut bad_version = header_args("D", D_KBPK, "P0", "A", "E");
    bad_version.extend(["--key-version", "1"]);
    bad_input(&bad_version, "tr31_invalid_key_version");
}
