//! Command-line parsing and the process boundary: one-line errors and exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::CliError;
use crate::commands::kernel::{self, KernelCommand};
use crate::error::EXIT_BAD_INPUT;

/// SUNBAY SoftPOS desktop terminal.
#[derive(Debug, Parser)]
#[command(name = "softpos-terminal", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The EMV kernel: run it against recorded card sessions.
    #[command(subcommand)]
    Kernel(KernelCommand),
}

/// Runs a parsed command and returns what to print on standard output.
///
/// # Errors
/// The command's [`CliError`].
pub fn run(cli: Cli) -> Result<String, CliError> {
    match cli.command {
        Command::Kernel(command) => kernel::run(command),
    }
}

/// The process entry point: parses the arguments, runs the command, prints its output, or one
/// line `error: <code>: <message>` on standard error with exit code 2 for bad input.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                // Help and version go to standard output as clap renders them.
                let _ = error.print();
                return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(EXIT_BAD_INPUT)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // clap's message spans several lines (the problem, the argument, usage): keep the
            // lines before the usage, on one line.
            let rendered = error.to_string();
            let first = rendered
                .lines()
                .take_while(|line| !line.starts_with("Usage:"))
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let first = first.trim_start_matches("error: ");
            eprintln!(
                "{}",
                CliError::bad_input("invalid_arguments", format!("{first} (see --help)"))
            );
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    match run(cli) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(error.exit_code)
        }
    }
}
