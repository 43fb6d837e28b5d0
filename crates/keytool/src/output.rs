//! All output formatting: the text and `--json` renderings of a command's result, and the one
//! stderr line of a failure.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{CliError, Failure};

/// A command's result: a flat JSON object with a stable set of fields per command.
#[derive(Debug)]
pub(crate) struct Report(Map<String, Value>);

impl Report {
    /// The report of a command's output struct (a struct of strings, numbers and booleans).
    pub(crate) fn of(output: &impl Serialize) -> Self {
        match serde_json::to_value(output) {
            Ok(Value::Object(fields)) => Self(fields),
            // Output structs are plain structs, which always serialise to objects.
            _ => unreachable!("command outputs serialise to JSON objects"),
        }
    }
}

/// The answer of every verify command.
#[derive(Serialize)]
pub(crate) struct Verified {
    pub(crate) valid: bool,
}

/// Prints the report: one JSON object with `--json`, else one `field: value` line per field.
pub(crate) fn print(report: &Report, json: bool) -> ExitCode {
    let mut text = String::new();
    if json {
        text.push_str(&Value::Object(report.0.clone()).to_string());
        text.push('\n');
    } else {
        for (field, value) in &report.0 {
            let value = match value {
                Value::String(string) => string.clone(),
                other => other.to_string(),
            };
            text.push_str(&format!("{field}: {value}\n"));
        }
    }
    emit(&text)
}

/// Writes to stdout. A closed pipe (`| head`) is not an error; any other write failure exits
/// with 74 (`EX_IOERR`).
fn emit(text: &str) -> ExitCode {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(74),
    }
}

/// Prints the one-line failure and returns its exit code.
pub(crate) fn fail(err: &CliError) -> ExitCode {
    let message = err.message.replace(['\n', '\r'], " ");
    eprintln!("error: {}: {message}", err.code);
    match err.failure {
        Failure::BadInput => ExitCode::from(2),
        Failure::Mismatch => ExitCode::from(1),
    }
}

/// Help and version go to stdout with success; every other parse error becomes one line with
/// code `usage`, naming the argument but never echoing its value (it may be a key).
pub(crate) fn clap_error(err: &clap::Error) -> ExitCode {
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return emit(&err.render().to_string());
    }
    let description = match err.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            "a subcommand is required"
        }
        kind => kind.as_str().unwrap_or("invalid arguments"),
    };
    // An unknown argument may be a stray value (a key split by a space), so it is not named.
    let context = match err.kind() {
        ErrorKind::UnknownArgument => None,
        _ => err.get(ContextKind::InvalidArg),
    };
    let message = match context {
        Some(ContextValue::String(arg)) => format!("{description}: {arg}"),
        Some(ContextValue::Strings(args)) => format!("{description}: {}", args.join(", ")),
        _ => description.to_owned(),
    };
    fail(&CliError::bad_input(
        "usage",
        format!("{message} (see --help)"),
    ))
}
