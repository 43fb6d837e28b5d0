//! The sessions behind the exported functions, in safe Rust: the reader configuration given once
//! to `kernel_configure`, and a table of running transactions keyed by handle, each with the
//! output of its last step: the C-APDU itself, or the outcome as JSON.
//!
//! `abi` turns pointers into slices and calls these methods; everything that decides something
//! lives here, so it is tested natively.

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use emv_kernel::{ErrorCode, Step, TerminalConfig, Transaction};

use crate::message::{TerminalParams, TransactionFields, TransactionParams};

/// The most sessions one instance holds at once; a host normally runs one at a time.
pub const MAX_SESSIONS: usize = 16;

/// What `session_create` / `session_resume` report when the session has a C-APDU to send.
pub const STATUS_COMMAND: i32 = 1;
/// What they report when the transaction is over and the output is the outcome.
pub const STATUS_OUTCOME: i32 = 2;

/// An ABI error. Its [`AbiError::status`] is the negative number the exports return.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbiError {
    /// The parameters are not UTF-8 JSON of the `TerminalParams` / `TransactionParams` shape
    /// (`-1`).
    ParamsMalformed(String),
    /// The parameters are well-formed but a value is invalid (`-2`).
    ParamsInvalid(String),
    /// No session has this handle (`-3`).
    UnknownSession,
    /// [`MAX_SESSIONS`] sessions are open (`-4`).
    TooManySessions,
    /// A null pointer with a non-zero length (`-5`).
    InvalidBuffer,
    /// The output could not be encoded (`-6`; not expected to happen).
    Encoding,
    /// `session_create` before a successful `kernel_configure` (`-7`).
    NotConfigured,
}

impl AbiError {
    /// The negative status the exported functions return.
    #[must_use]
    pub const fn status(&self) -> i32 {
        match self {
            Self::ParamsMalformed(_) => -1,
            Self::ParamsInvalid(_) => -2,
            Self::UnknownSession => -3,
            Self::TooManySessions => -4,
            Self::InvalidBuffer => -5,
            Self::Encoding => -6,
            Self::NotConfigured => -7,
        }
    }

    /// The error for a negative status, if it is one of ours.
    #[must_use]
    pub fn code_for_status(status: i32) -> Option<&'static str> {
        Some(match status {
            -1 => "params_malformed",
            -2 => "params_invalid",
            -3 => "unknown_session",
            -4 => "too_many_sessions",
            -5 => "invalid_buffer",
            -6 => "encoding",
            -7 => "not_configured",
            _ => return None,
        })
    }

    /// The error message as JSON: `{"code":"...","message":"..."}`.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let message = ErrorMessage {
            code: self.code().to_owned(),
            message: self.to_string(),
        };
        serde_json::to_vec(&message).unwrap_or_default()
    }
}

impl ErrorCode for AbiError {
    fn code(&self) -> &'static str {
        Self::code_for_status(self.status()).unwrap_or("encoding")
    }
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ParamsMalformed(detail) => write!(f, "malformed parameters: {detail}"),
            Self::ParamsInvalid(detail) => write!(f, "invalid parameters: {detail}"),
            Self::UnknownSession => f.write_str("no session has this handle"),
            Self::TooManySessions => write!(f, "at most {MAX_SESSIONS} sessions at once"),
            Self::InvalidBuffer => f.write_str("null pointer with a non-zero length"),
            Self::Encoding => f.write_str("the output could not be encoded"),
            Self::NotConfigured => f.write_str("kernel_configure has not succeeded yet"),
        }
    }
}

/// The error message the `last_error_*` exports expose.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorMessage {
    /// Stable code, e.g. `params_invalid`.
    pub code: String,
    /// Text for people.
    pub message: String,
}

#[derive(Debug)]
struct Session {
    transaction: Transaction,
    output: Vec<u8>,
    done: bool,
}

/// The configuration and open sessions of one instance.
#[derive(Debug, Default)]
pub struct Sessions {
    config: Option<TerminalConfig>,
    sessions: BTreeMap<i32, Session>,
    next_handle: i32,
    last_error: Vec<u8>,
}

/// The output of a step: a command as its bytes (the status says it is one, so it needs no
/// envelope, and neither side encodes or parses anything per command), the outcome as its JSON
/// [`Output`](crate::message::Output) message.
fn encode(step: &Step) -> Vec<u8> {
    match step {
        Step::SendApdu(capdu) => capdu.clone(),
        Step::Done(outcome) => crate::encode::outcome_message(outcome),
    }
}

impl Sessions {
    /// No sessions.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            config: None,
            sessions: BTreeMap::new(),
            next_handle: 0,
            last_error: Vec::new(),
        }
    }

    /// Sets the reader configuration from JSON [`TerminalParams`]: every field checked, every
    /// CA key built and its checksum verified, once for all later sessions. A refused
    /// configuration leaves the previous one (if any) in place; open sessions keep the
    /// configuration they started with.
    ///
    /// # Errors
    /// [`AbiError::ParamsMalformed`] or [`AbiError::ParamsInvalid`].
    pub fn configure(&mut self, params: &[u8]) -> Result<(), AbiError> {
        let result = serde_json::from_slice::<TerminalParams>(params)
            .map_err(|error| AbiError::ParamsMalformed(error.to_string()))
            .and_then(|params| {
                params
                    .to_config()
                    .map_err(|error| AbiError::ParamsInvalid(error.to_string()))
            })
            .map(|config| self.config = Some(config));
        self.record(result)
    }

    /// Whether a configuration is set.
    #[must_use]
    pub const fn is_configured(&self) -> bool {
        self.config.is_some()
    }

    /// Starts a transaction from [`TransactionParams`] (JSON, or the binary form of
    /// [`TransactionParams::to_binary`]) under the configuration; returns its handle (positive)
    /// and the status of its first step.
    ///
    /// # Errors
    /// [`AbiError::NotConfigured`], [`AbiError::ParamsMalformed`], [`AbiError::ParamsInvalid`]
    /// or [`AbiError::TooManySessions`].
    pub fn create(&mut self, params: &[u8]) -> Result<(i32, i32), AbiError> {
        let result = self.try_create(params);
        self.record(result)
    }

    fn try_create(&mut self, params: &[u8]) -> Result<(i32, i32), AbiError> {
        let config = self.config.as_ref().ok_or(AbiError::NotConfigured)?;
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(AbiError::TooManySessions);
        }
        // JSON when it starts with `{`, else the binary form, read in place.
        let params = if params.first() == Some(&b'{') {
            serde_json::from_slice::<TransactionParams>(params)
                .map_err(|error| AbiError::ParamsMalformed(error.to_string()))?
                .to_transaction_params(config.clone())
        } else {
            TransactionFields::from_binary(params)
                .map_err(AbiError::ParamsMalformed)?
                .to_transaction_params(config.clone())
        }
        .map_err(|error| AbiError::ParamsInvalid(error.to_string()))?;
        let (transaction, step) = Transaction::new(params);
        let output = encode(&step);
        let handle = self.fresh_handle();
        let status = status_of(&step);
        self.sessions.insert(
            handle,
            Session {
                transaction,
                output,
                done: status == STATUS_OUTCOME,
            },
        );
        Ok((handle, status))
    }

    /// Handles count up from 1 and skip open ones; after `i32::MAX` they wrap to 1.
    fn fresh_handle(&mut self) -> i32 {
        loop {
            self.next_handle = if self.next_handle == i32::MAX {
                1
            } else {
                self.next_handle + 1
            };
            if !self.sessions.contains_key(&self.next_handle) {
                return self.next_handle;
            }
        }
    }

    /// Feeds the card's R-APDU (data and SW1 SW2); returns the status of the next step. After
    /// the outcome, the same outcome is reported again.
    ///
    /// # Errors
    /// [`AbiError::UnknownSession`] or [`AbiError::Encoding`].
    pub fn resume(&mut self, handle: i32, rapdu: &[u8]) -> Result<i32, AbiError> {
        let result = self.try_resume(handle, rapdu);
        self.record(result)
    }

    fn try_resume(&mut self, handle: i32, rapdu: &[u8]) -> Result<i32, AbiError> {
        let session = self
            .sessions
            .get_mut(&handle)
            .ok_or(AbiError::UnknownSession)?;
        if session.done {
            return Ok(STATUS_OUTCOME);
        }
        let step = session.transaction.resume(rapdu);
        session.output = encode(&step);
        let status = status_of(&step);
        session.done = status == STATUS_OUTCOME;
        Ok(status)
    }

    /// The status of the session's last step: [`STATUS_COMMAND`] or [`STATUS_OUTCOME`].
    ///
    /// # Errors
    /// [`AbiError::UnknownSession`].
    pub fn status(&self, handle: i32) -> Result<i32, AbiError> {
        self.sessions
            .get(&handle)
            .map(|session| {
                if session.done {
                    STATUS_OUTCOME
                } else {
                    STATUS_COMMAND
                }
            })
            .ok_or(AbiError::UnknownSession)
    }

    /// The output of the session's last step: the C-APDU's bytes, or the JSON [`Output`](crate::message::Output) of
    /// the outcome.
    ///
    /// # Errors
    /// [`AbiError::UnknownSession`].
    pub fn output(&self, handle: i32) -> Result<&[u8], AbiError> {
        self.sessions
            .get(&handle)
            .map(|session| session.output.as_slice())
            .ok_or(AbiError::UnknownSession)
    }

    /// Ends a session and frees its memory; returns whether it existed.
    pub fn free(&mut self, handle: i32) -> bool {
        self.sessions.remove(&handle).is_some()
    }

    /// The JSON [`ErrorMessage`] of the last failed call (empty if none failed yet).
    #[must_use]
    pub fn last_error(&self) -> &[u8] {
        &self.last_error
    }

    /// Records a failed call for `last_error`.
    pub fn set_error(&mut self, error: &AbiError) {
        self.last_error = error.to_json();
    }

    fn record<T>(&mut self, result: Result<T, AbiError>) -> Result<T, AbiError> {
        if let Err(error) = &result {
            self.set_error(error);
        }
        result
    }

    /// Number of open sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

const fn status_of(step: &Step) -> i32 {
    match step {
        Step::SendApdu(_) => STATUS_COMMAND,
        Step::Done(_) => STATUS_OUTCOME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Output;

    const CONFIG: &[u8] = br#"{"country_code": "0250", "terminal_type": "22",
        "capabilities": "0068C8", "additional_capabilities": "6000F0A001",
        "aids": [{"aid": "A000000003", "kernel": 3, "transaction_limit": 50}]}"#;
    const PARAMS: &[u8] = br#"{"amount": 100, "currency_code": "0978", "currency_exponent": 2,
        "date": "2026-11-26", "time": "120000", "unpredictable_number": "01020304"}"#;

    fn code(sessions: &Sessions) -> String {
        serde_json::from_slice::<ErrorMessage>(sessions.last_error())
            .unwrap()
            .code
    }

    #[test]
    fn sessions_need_a_valid_configuration_first() {
        let mut sessions = Sessions::new();
        assert_eq!(sessions.create(PARAMS), Err(AbiError::NotConfigured));
        assert_eq!(code(&sessions), "not_configured");
        assert!(matches!(
            sessions.configure(b"{\"country_code\": \"0250\"}"),
            Err(AbiError::ParamsMalformed(_))
        ));
        let bad_kernel = core::str::from_utf8(CONFIG)
            .unwrap()
            .replace("\"kernel\": 3", "\"kernel\": 4");
        assert!(matches!(
            sessions.configure(bad_kernel.as_bytes()),
            Err(AbiError::ParamsInvalid(_))
        ));
        assert!(!sessions.is_configured());
        sessions.configure(CONFIG).unwrap();
        assert!(sessions.is_configured());
        // The v1 message (configuration inside the transaction) is refused.
        let v1 = br#"{"amount": 100, "currency_code": "0978", "currency_exponent": 2,
            "date": "2026-11-26", "time": "120000", "unpredictable_number": "01020304",
            "terminal": {}}"#;
        assert!(matches!(
            sessions.create(v1),
            Err(AbiError::ParamsMalformed(_))
        ));
        // A refused reconfiguration keeps the configuration in place.
        assert!(sessions.configure(bad_kernel.as_bytes()).is_err());
        assert!(sessions.create(PARAMS).is_ok());
    }

    #[test]
    fn handles_are_positive_distinct_and_limited() {
        let mut sessions = Sessions::new();
        sessions.configure(CONFIG).unwrap();
        let mut handles = Vec::new();
        for _ in 0..MAX_SESSIONS {
            let (handle, status) = sessions.create(PARAMS).unwrap();
            assert!(handle > 0);
            // Over the contactless limit: the outcome comes at once.
            assert_eq!(status, STATUS_OUTCOME);
            handles.push(handle);
        }
        assert_eq!(handles, (1..=16).collect::<Vec<_>>());
        assert_eq!(sessions.create(PARAMS), Err(AbiError::TooManySessions));
        assert_eq!(code(&sessions), "too_many_sessions");
        assert!(sessions.free(3));
        assert!(!sessions.free(3));
        assert_eq!(sessions.len(), MAX_SESSIONS - 1);
        assert_eq!(sessions.create(PARAMS).unwrap().0, 17);
        let Output::Outcome { outcome } =
            serde_json::from_slice(sessions.output(17).unwrap()).unwrap()
        else {
            panic!("an outcome")
        };
        assert_eq!(outcome.kind, "try_another_interface");
        assert_eq!(outcome.reason.code, "contactless_limit_exceeded");
        assert_eq!(sessions.resume(17, &[0x90, 0x00]), Ok(STATUS_OUTCOME));
    }

    #[test]
    fn statuses_match_codes() {
        for error in [
            AbiError::ParamsMalformed(String::new()),
            AbiError::ParamsInvalid(String::new()),
            AbiError::UnknownSession,
            AbiError::TooManySessions,
            AbiError::InvalidBuffer,
            AbiError::Encoding,
            AbiError::NotConfigured,
        ] {
            assert!(error.status() < 0);
            assert_eq!(
                AbiError::code_for_status(error.status()),
                Some(error.code())
            );
        }
        assert_eq!(AbiError::code_for_status(1), None);
    }
}
