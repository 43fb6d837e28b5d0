//! `softpos-terminal kernel replay`.

use crate::{softpos_terminal, stderr, stdout};

/// The real Visa card of `visa-debit-qvsdc.txt` with the parameters it was recorded with.
const VISA: &[&str] = &[
    "kernel",
    "replay",
    "visa-debit-qvsdc.txt",
    "--amount",
    "10.00",
    "--currency",
    "EUR",
    "--date",
    "230301",
    "--un",
    "38393031",
    "--country",
    "978",
    "--ttq",
    "27000000",
    "--ca",
    "production",
];

/// The generated offline fDDA transcript with its parameters (see its header).
const GENERATED: &[&str] = &[
    "kernel",
    "replay",
    "generated/visa-fdda-offline.txt",
    "--amount",
    "10.00",
    "--currency",
    "978",
    "--date",
    "2026-11-26",
    "--un",
    "1A2B3C4D",
    "--country",
    "250",
    "--contactless-limit",
    "1000.00",
    "--floor-limit",
    "50.00",
    "--cvm-limit",
    "30.00",
    "--ca",
    "generated/test-ca.txt",
];

const VISA_PAN: &str = "4921828094896752";
const MC_PAN: &str = "5375050000160110";
const GENERATED_PAN: &str = "4761739001010010";

fn with(base: &[&str], extra: &[&'static str]) -> Vec<String> {
    base.iter()
        .chain(extra)
        .map(|arg| (*arg).to_owned())
        .collect()
}

fn run(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    softpos_terminal(&args)
}

fn assert_no_clear_pan(text: &str) {
    for pan in [VISA_PAN, MC_PAN, GENERATED_PAN] {
        assert!(!text.contains(pan), "clear PAN in output:\n{text}");
    }
}

#[test]
fn human_output_of_a_real_visa_card() {
    let output = softpos_terminal(VISA);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "Outcome     online_request (card_requested_online)",
        "ODA         succeeded (fDDA)",
        "AID         A0000000031010",
        "Label       VISA DEBIT",
        "PAN         492182******6752",
        "Expiry      2025-02-28",
        "AIP         2000 (DDA supported)",
        "AFL         10030600",
        "SFI 2 records 3-6, 0 for ODA",
        "CTQ         1600",
        "Cryptogram  ARQC (CID 80)",
        "CA index    09",
        "GET PROCESSING OPTIONS",
        "READ RECORD SFI 2 record 6",
        "date 2023-03-01",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(
        !text.contains("differs from the recorded command"),
        "{text}"
    );
    assert_no_clear_pan(&text);
    assert!(stderr(&output).is_empty());
}

#[test]
fn json_output_has_a_stable_shape() {
    let output = run(&with(GENERATED, &["--json"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_no_clear_pan(&text);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "card",
            "commands",
            "notes",
            "oda",
            "outcome",
            "parameters",
            "transcript"
        ]
    );
    assert_eq!(report["outcome"]["kind"], "approved");
    assert_eq!(report["outcome"]["reason"], "card_approved");
    assert_eq!(report["outcome"]["kernel"], 3);
    assert_eq!(report["oda"]["result"], "succeeded");
    assert_eq!(report["oda"]["method"], "fDDA");
    assert_eq!(report["oda"]["error"], serde_json::Value::Null);
    assert_eq!(report["card"]["aid"], "A0000000031010");
    assert_eq!(report["card"]["label"], "VISA CREDIT");
    assert_eq!(report["card"]["pan"], "476173******0010");
    assert_eq!(report["card"]["expiry"], "2030-12-31");
    assert_eq!(report["card"]["aip"], "2000");
    assert_eq!(report["card"]["afl"], "0801010110010200");
    assert_eq!(report["card"]["afl_entries"][0]["sfi"], 1);
    assert_eq!(report["card"]["ctq"], "8000");
    assert_eq!(report["card"]["cryptogram_type"], "TC");
    assert_eq!(report["parameters"]["amount_minor"], 1000);
    assert_eq!(report["parameters"]["currency"], "EUR");
    assert_eq!(report["parameters"]["date"], "2026-11-26");
    assert_eq!(report["parameters"]["floor_limit_minor"], 5000);
    let commands = report["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 6);
    assert!(
        commands
            .iter()
            .all(|command| command["matches_recording"] == true)
    );
    assert_eq!(commands[2]["name"], "GET PROCESSING OPTIONS");
    assert_eq!(commands[2]["header"], "80A80000");
    assert_eq!(report["notes"].as_array().unwrap().len(), 0);
}

#[test]
fn wrong_ca_set_fails_oda_with_the_reason() {
    // The generated card is signed by the tests' own CA, not by an EMV test key.
    let mut args = with(GENERATED, &["--json"]);
    let position = args
        .iter()
        .position(|arg| arg == "generated/test-ca.txt")
        .unwrap();
    args[position] = "test".to_owned();
    let output = run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["oda"]["result"], "failed");
    assert_eq!(report["oda"]["method"], "fDDA");
    assert_eq!(report["oda"]["error"], "oda_ca_key_not_found");
}

#[test]
fn cvm_list_of_a_kernel_2_card() {
    let output = softpos_terminal(&[
        "kernel",
        "replay",
        "generated/mc-cda-online.txt",
        "--amount",
        "10.00",
        "--date",
        "2026-11-26",
        "--un",
        "1A2B3C4D",
        "--contactless-limit",
        "1000.00",
        "--floor-limit",
        "0.00",
        "--cvm-limit",
        "30.00",
        "--ca",
        "generated/test-ca.txt",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    for expected in [
        "Outcome     online_request",
        "ODA         succeeded (CDA)",
        "PAN         541333******0434",
        "4203 enciphered PIN verified online, if terminal supports the CVM, next rule if it fails",
        "1F03 no CVM required",
        "GENERATE AC (ARQC, CDA)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_no_clear_pan(&text);
}

#[test]
fn missing_answer_is_one_line_with_exit_2() {
    let output = softpos_terminal(&[
        "kernel",
        "replay",
        "debit-mastercard-mchip.txt",
        "--amount",
        "10.00",
        "--date",
        "230301",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stdout(&output).is_empty());
    let error = stderr(&output);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.starts_with("error: replay_missing_answer: debit-mastercard-mchip.txt: the transcript has no answer for command 8 of the run, GENERATE AC ("),
        "{error}"
    );
    assert_no_clear_pan(&error);
}

#[test]
fn recording_without_ppse_explains_the_stop() {
    let args = with(VISA, &[]);
    let mut args = args;
    args[2] = "visa-debit-no-ppse.txt".to_owned();
    let output = run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("Outcome     try_another_interface (card_error)"),
        "{text}"
    );
    assert!(text.contains("no PPSE in transcript (6A82)"), "{text}");
    assert!(text.contains("EMV Contactless Book B 3.3.2"), "{text}");
    assert!(text.contains("EMV Book 1 12.3.3"), "{text}");
}

#[test]
fn changed_parameters_are_reported() {
    let mut args = with(VISA, &[]);
    let position = args.iter().position(|arg| arg == "38393031").unwrap();
    args[position] = "00000000".to_owned();
    let output = run(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("GET PROCESSING OPTIONS             9000  transcript line 27, differs from the recorded command"), "{text}");
    assert!(
        text.contains("Note: 1 command(s) differ from the recording"),
        "{text}"
    );
}

/// Each bad input: one line `error: <code>: ...` on standard error, exit code 2.
#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = std::env::temp_dir().join(format!("softpos-terminal-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_transcript = dir.join("bad.txt");
    std::fs::write(
        &bad_transcript,
        "# bad\n>> 00A404000E325041592E5359532E4444463031XX\n<< 9000\n",
    )
    .unwrap();
    let bad_keys = dir.join("keys.txt");
    std::fs::write(&bad_keys, "A000000003 09 C34F35\n").unwrap();
    let bad_transcript = bad_transcript.to_str().unwrap();
    let bad_keys = bad_keys.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["kernel", "replay", bad_transcript, "--amount", "1.00"],
            "error: transcript_bad_hex: ",
        ),
        (
            vec!["kernel", "replay", "no-such-file.txt", "--amount", "1.00"],
            "error: transcript_unreadable: no-such-file.txt",
        ),
        (
            vec![
                "kernel",
                "replay",
                "visa-debit-qvsdc.txt",
                "--amount",
                "1.234",
            ],
            "error: invalid_amount: amount \"1.234\": the currency has 2 decimals",
        ),
        (
            vec![
                "kernel",
                "replay",
                "visa-debit-qvsdc.txt",
                "--amount",
                "1",
                "--currency",
                "XYZ",
            ],
            "error: unknown_currency: ",
        ),
        (
            vec![
                "kernel",
                "replay",
                "visa-debit-qvsdc.txt",
                "--amount",
                "1",
                "--date",
                "2023-13-01",
            ],
            "error: invalid_date: ",
        ),
        (
            vec![
                "kernel",
                "replay",
                "visa-debit-qvsdc.txt",
                "--amount",
                "1",
                "--un",
                "123",
            ],
            "error: invalid_hex: unpredictable number",
        ),
        (
            vec![
                "kernel",
                "replay",
                "visa-debit-qvsdc.txt",
                "--amount",
                "1",
                "--ca",
                bad_keys,
            ],
            "error: ca_key_field_count: ",
        ),
        (
            vec!["kernel", "replay", "visa-debit-qvsdc.txt"],
            "error: invalid_arguments: ",
        ),
        (
            vec![
                "kernel",
                "replay",
                "visa-debit-qvsdc.txt",
                "--amount",
                "1",
                "--bogus",
            ],
            "error: invalid_arguments: ",
        ),
    ];
    for (args, prefix) in cases {
        let output = softpos_terminal(&args);
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {error}");
        assert!(stdout(&output).is_empty(), "{args:?}");
        assert_eq!(error.lines().count(), 1, "{args:?}: {error}");
        assert!(error.starts_with(prefix), "{args:?}: {error}");
    }
    let error = stderr(&softpos_terminal(&[
        "kernel",
        "replay",
        bad_transcript,
        "--amount",
        "1",
    ]));
    assert!(
        error.contains("line 2: invalid hex character 'X'"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
