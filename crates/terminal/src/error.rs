//! The error every command can end in: a stable code, a message, and an exit code.
//!
//! Exit codes are part of the tool's interface (scripts branch on them); they are listed in
//! `softpos-terminal --help` and in the README, and only ever get added.

use std::borrow::Cow;
use std::fmt;

/// Exit code for an internal failure.
pub const EXIT_INTERNAL: u8 = 1;

/// Exit code for bad input: arguments, amounts, unknown cards, files, transcripts, key files, a
/// transcript that cannot answer the kernel.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Exit code when the server cannot be reached (connection refused, timeout, TLS).
pub const EXIT_UNREACHABLE: u8 = 3;

/// Exit code when the server refuses a request for a reason not covered below (authentication,
/// validation, conflicts, replayed requests).
pub const EXIT_REFUSED: u8 = 4;

/// Exit code when the device may not do this now: not approved yet, suspended, revoked, blocked
/// by a threat, or its health check fails.
pub const EXIT_DEVICE_BLOCKED: u8 = 5;

/// Exit code of a payment the issuer or the kernel declined (the result is still printed).
pub const EXIT_DECLINED: u8 = 6;

/// Exit code for secure-store problems: missing, wrong passphrase, tampered, not initialised.
pub const EXIT_STORE: u8 = 7;

/// Exit code for card and kernel problems: the card could not be read, the kernel failed, PIN
/// entry was cancelled.
pub const EXIT_CARD: u8 = 8;

/// Exit code when a download fails verification (kernel signature or hash).
pub const EXIT_VERIFICATION: u8 = 9;

/// Exit code when waiting timed out (e.g. for the operator's approval).
pub const EXIT_TIMEOUT: u8 = 10;

/// Exit code of `fleet` when the run finished but a check failed (the summary says which).
pub const EXIT_FLEET_CHECK_FAILED: u8 = 11;

/// The exit-code table as shown in `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success (a payment: approved)
  1   internal failure
  2   bad input (arguments, amount, card, file)
  3   server unreachable
  4   server refused the request (authentication, validation, replay, conflict)
  5   device not allowed now (not approved, suspended, revoked, blocked, health failing)
  6   payment declined (the result is printed)
  7   secure store problem (missing, wrong passphrase, tampered)
  8   card or kernel problem (card unreadable, kernel failure, PIN entry cancelled)
  9   verification failed (kernel signature or hash)
  10  timed out waiting (e.g. for approval)
  11  fleet: the run finished but a check failed (see the summary)
Errors are one line on standard error: `error: <code>: <message>`.";

/// A command's failure, printed as `error: <code>: <message>` on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Stable machine-readable code, e.g. `transcript_bad_hex`, or the server's own code such
    /// as `device_suspended`.
    pub code: Cow<'static, str>,
    /// One line for people. Never holds cardholder data.
    pub message: String,
    /// The process exit code.
    pub exit_code: u8,
}

impl CliError {
    /// An error with an explicit exit code.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        exit_code: u8,
    ) -> Self {
        Self {
            code: code.into(),
            message: one_line(message.into()),
            exit_code,
        }
    }

    /// Bad input (exit code 2).
    pub fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, message, EXIT_BAD_INPUT)
    }

    /// Internal failure (exit code 1).
    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, message, EXIT_INTERNAL)
    }
}

fn one_line(message: String) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}: {}", self.code, self.message)
    }
}

impl std::error::Error for CliError {}
