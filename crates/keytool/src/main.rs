//! `softpos-keytool`: the key custodian's command line over `payment-crypto`.
//!
//! Hex in (either case, spaces allowed), text out, or one JSON object per command with `--json`.
//! Exit codes: 0 on success, 1 when a verification finds a mismatch, 2 on bad input; every failure
//! prints exactly one line on stderr, `error: <code>: <message>`, where `<code>` is the stable
//! `ErrorCode` of the failing `payment-crypto` operation (or a keytool code for malformed
//! arguments). Nothing is printed but what the command was asked for: no key that is not the
//! requested output, and no argument values in error messages.

mod cli;
mod commands;
mod error;
mod input;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return output::clap_error(&err),
    };
    match commands::run(&cli.command) {
        Ok(report) => output::print(&report, cli.json),
        Err(err) => output::fail(&err),
    }
}
