//! The error every command can end in: a stable code, a message, and an exit code.

use std::fmt;

/// Exit code for bad input: arguments, files, transcripts, key files, a transcript that cannot
/// answer the kernel.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Exit code for an internal failure.
pub const EXIT_INTERNAL: u8 = 1;

/// A command's failure, printed as `error: <code>: <message>` on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Stable machine-readable code, e.g. `transcript_bad_hex`.
    pub code: &'static str,
    /// One line for people. Never holds cardholder data.
    pub message: String,
    /// The process exit code.
    pub exit_code: u8,
}

impl CliError {
    /// Bad input (exit code 2).
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: one_line(message.into()),
            exit_code: EXIT_BAD_INPUT,
        }
    }

    /// Internal failure (exit code 1).
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: one_line(message.into()),
            exit_code: EXIT_INTERNAL,
        }
    }
}

fn one_line(message: String) -> String {
    message.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}: {}", self.code, self.message)
    }
}

impl std::error::Error for CliError {}
