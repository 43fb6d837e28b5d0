//! The one error type of the tool: a stable code, a one-line message and an exit code.

use std::fmt::Display;

use payment_crypto::ErrorCode;

/// Why a command failed, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Malformed or unusable input: exit code 2.
    BadInput,
    /// A verification ran and the value did not match: exit code 1.
    Mismatch,
}

/// A failed command: `error: <code>: <message>` on stderr.
#[derive(Debug)]
pub(crate) struct CliError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) failure: Failure,
}

impl CliError {
    /// Malformed input with a keytool-level code (for what `payment-crypto` never sees).
    pub(crate) fn bad_input(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            failure: Failure::BadInput,
        }
    }

    /// A verification that ran and failed.
    pub(crate) fn mismatch<E: ErrorCode + Display>(err: &E) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
            failure: Failure::Mismatch,
        }
    }

    /// Prefixes the message with the flag the bad value came from.
    pub(crate) fn for_flag(mut self, flag: &str) -> Self {
        self.message = format!("{flag}: {}", self.message);
        self
    }
}

/// Every `payment-crypto` error is bad input unless a verify command says otherwise.
impl<E: ErrorCode + Display> From<E> for CliError {
    fn from(err: E) -> Self {
        Self {
            code: err.code(),
            message: err.to_string(),
            failure: Failure::BadInput,
        }
    }
}
