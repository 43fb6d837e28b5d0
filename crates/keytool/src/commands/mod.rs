//! One module per command family; each turns parsed arguments into a [`Report`].

mod dukpt;
mod emv;
mod kcv;
mod mac;
mod pin;
mod release;
mod tr31;

use crate::cli::Command;
use crate::error::CliError;
use crate::output::Report;

/// Runs one command.
pub(crate) fn run(command: &Command) -> Result<Report, CliError> {
    match command {
        Command::Mac(command) => mac::run(command),
        Command::Emv(command) => emv::run(command),
        Command::Kcv(args) => kcv::run(args),
        Command::Dukpt(command) => dukpt::run(command),
        Command::Pin(command) => pin::run(command),
        Command::Tr31(command) => tr31::run(command),
        Command::Release(command) => release::run(command),
    }
}
