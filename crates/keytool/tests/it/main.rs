//! Integration tests of `softpos-keytool`: the built binary, run as a custodian would run it.
//!
//! Each command is checked against published vectors (sources cited per test), for the shape of
//! its `--json` object, and for bad input: exit code 2 and exactly one line on stderr.

mod dukpt;
mod emv;
mod kcv;
mod mac;
mod pin;
mod release;
mod tr31;

use std::process::{Command, Output};

use serde_json::Value;

/// Runs the binary with `args`.
pub(crate) fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softpos-keytool"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs a command that must succeed and returns its stdout.
pub(crate) fn ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty(), "{args:?} wrote to stderr");
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs a command with `--json` and returns its object, checking it has exactly `fields`.
pub(crate) fn json(args: &[&str], fields: &[&str]) -> serde_json::Map<String, Value> {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let stdout = ok(&with_json);
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    let Value::Object(object) = serde_json::from_str(&stdout).expect("valid JSON") else {
        panic!("not a JSON object: {stdout}");
    };
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = fields.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "{args:?}");
    object
}

/// The value of `field` in a text-mode output (`field: value` lines).
pub(crate) fn field(stdout: &str, field: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}: ")))
        .unwrap_or_else(|| panic!("no {field} in {stdout}"))
        .to_owned()
}

/// Asserts that the command fails with `exit_code` and one stderr line `error: <code>: ...`,
/// without printing anything on stdout.
pub(crate) fn fails(args: &[&str], exit_code: i32, code: &str) {
    let output = run(args);
    assert_eq!(output.status.code(), Some(exit_code), "{args:?}");
    assert!(output.stdout.is_empty(), "{args:?} wrote to stdout");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8 stderr");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: {code}: ")),
        "{args:?}: {stderr}"
    );
}

/// Asserts a bad-input failure: exit code 2.
pub(crate) fn bad_input(args: &[&str], code: &str) {
    fails(args, 2, code);
}

#[test]
fn usage_errors_are_one_line_and_never_echo_values() {
    bad_input(&[], "usage");
    bad_input(&["mac"], "usage");
    bad_input(&["no-such-command"], "usage");
    // A key split by a space leaves a stray value; it must not be printed back.
    let output = run(&[
        "mac",
        "compute",
        "--algorithm",
        "retail-mac",
        "--padding",
        "1",
        "--key",
        "0123456789ABCDEF",
        "FEDCBA9876543210",
        "--data",
        "00",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("FEDCBA"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn help_and_version_succeed() {
    assert!(ok(&["--help"]).contains("softpos-keytool"));
    assert!(ok(&["--version"]).contains("softpos-keytool"));
}
