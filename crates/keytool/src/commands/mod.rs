//! One module per command family; each turns parsed arguments into a [`Report`].

mod emv;
mod mac;

use crate::cli::Command;
use crate::error::CliError;
use crate::output::Report;

/// Runs one command.
pub(crate) fn run(command: &Command) -> Result<Report, CliError> {
    match command {
        Command::Mac(command) => mac::run(command),
        Command::Emv(command) => emv::run(command),
    }
}
