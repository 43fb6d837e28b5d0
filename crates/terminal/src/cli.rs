//! Command-line parsing and the process boundary: one-line errors and exit codes.
//!
//! Every command runs to a [`Reply`] (standard output and an exit code) or a [`CliError`]
//! (`error: <code>: <message>` on standard error, nothing on standard output). The exit codes are
//! listed in [`crate::error::EXIT_CODES_HELP`], shown by `--help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::CliError;
use crate::commands::kernel::{self, KernelCommand};
use crate::commands::output::Reply;
use crate::commands::{device, fleet, init, pay, sales, virtual_reader};
use crate::error::{EXIT_BAD_INPUT, EXIT_CODES_HELP};

/// SUNBAY SoftPOS desktop terminal.
#[derive(Debug, Parser)]
#[command(name = "softpos-terminal", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The secure store file (the terminal's keys and configuration, encrypted at rest). Its key
    /// comes from `SOFTPOS_STORE_KEY` (64 hex digits), `SOFTPOS_STORE_KEY_FILE`, or
    /// `SOFTPOS_STORE_PASSPHRASE`; without them the passphrase is asked for on the terminal.
    #[arg(
        long,
        global = true,
        env = "SOFTPOS_TERMINAL_STORE",
        default_value = "softpos-terminal.store"
    )]
    pub store: PathBuf,
}

/// Top-level commands.
// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the secure store: a fresh device key pair, the server URL, trusted release keys.
    #[command(after_help = EXIT_CODES_HELP)]
    Init(init::InitArgs),
    /// Register with the server (attestation over its challenge) and wait for approval.
    #[command(after_help = EXIT_CODES_HELP)]
    Register(device::RegisterArgs),
    /// Show the store's configuration, key sets and kernel, and the server's view of the device.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(device::StatusArgs),
    /// DUKPT key sets: inject, show, rotate.
    #[command(subcommand)]
    #[command(after_help = EXIT_CODES_HELP)]
    Keys(device::KeysCommand),
    /// Collect a health report (real desktop checks plus injected signals) and submit it.
    #[command(after_help = EXIT_CODES_HELP)]
    Health(device::HealthArgs),
    /// Take a payment: the card (virtual, transcript or PC/SC reader) through the kernel, PIN
    /// when asked, authorization. Exit 0 approved, 6 declined.
    #[command(after_help = EXIT_CODES_HELP)]
    Pay(pay::PayArgs),
    /// List the PC/SC contactless readers (builds with `--features pcsc`).
    #[command(after_help = EXIT_CODES_HELP)]
    Readers(pay::ReadersArgs),
    /// Testing: put a virtual card in the field of pcscd's vpcd reader (vsmartcard), so
    /// `readers` and `pay --reader` run through the real PC/SC stack without a card.
    #[command(after_help = EXIT_CODES_HELP)]
    VirtualReader(virtual_reader::VirtualReaderArgs),
    /// Refund (part of) one of this terminal's sales.
    #[command(after_help = EXIT_CODES_HELP)]
    Refund(sales::RefundArgs),
    /// This terminal's transactions, newest first.
    #[command(after_help = EXIT_CODES_HELP)]
    History(sales::HistoryArgs),
    /// Simulate a fleet of terminals against a local server: set-up, paced payments with a
    /// card mix, compromised devices that must end SUSPENDED; throughput and latency report.
    Fleet(fleet::FleetArgs),
    /// The EMV kernel: show, update (verified), roll back, replay recorded card sessions.
    #[command(subcommand)]
    #[command(after_help = EXIT_CODES_HELP)]
    Kernel(KernelCommand),
}

/// Runs a parsed command.
///
/// # Errors
/// The command's [`CliError`].
pub fn run(cli: Cli) -> Result<Reply, CliError> {
    let store = cli.global.store;
    match cli.command {
        Command::Init(args) => init::run(&store, args),
        Command::Register(args) => device::run_register(&store, args),
        Command::Status(args) => device::run_status(&store, &args),
        Command::Keys(command) => device::run_keys(&store, command),
        Command::Health(args) => device::run_health(&store, args),
        Command::Pay(args) => pay::run_pay(&store, args),
        Command::Readers(args) => pay::run_readers(&args),
        Command::VirtualReader(args) => virtual_reader::run(&args),
        Command::Refund(args) => sales::run_refund(&store, args),
        Command::History(args) => sales::run_history(&store, &args),
        Command::Fleet(args) => fleet::run(args),
        Command::Kernel(command) => kernel::run(&store, command),
    }
}

/// The process entry point: parses the arguments, runs the command, prints its output, or one
/// line `error: <code>: <message>` on standard error with the command's exit code.
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
        Ok(reply) => {
            print!("{}", reply.text);
            ExitCode::from(reply.exit_code)
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(error.exit_code)
        }
    }
}
