//! PIN entry: from the terminal without echo ([`TerminalPin`], `rpassword`), or given in
//! advance for tests and the fleet ([`FixedPin`]). The PIN is turned into an encrypted PIN
//! block by the caller at once; the text read is zeroized.

use zeroize::Zeroizing;

/// What the cardholder is asked.
#[derive(Debug, Clone)]
pub struct PinPrompt {
    /// Amount as shown, e.g. `40.00 USD`.
    pub amount: String,
    /// Last four digits of the card.
    pub pan_last4: String,
}

/// PIN entry failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The cardholder gave no PIN (empty input, end of input).
    #[error("PIN entry cancelled")]
    Cancelled,
    /// This source has no PIN to give.
    #[error("a PIN is required but none is available")]
    Unavailable,
    /// Reading from the terminal failed.
    #[error("PIN entry failed: {0}")]
    Io(String),
}

impl PinError {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Cancelled => "pin_cancelled",
            Self::Unavailable => "pin_unavailable",
            Self::Io(_) => "pin_entry_failed",
        }
    }
}

/// Where a PIN comes from.
pub trait PinSource {
    /// Asks for the PIN.
    ///
    /// # Errors
    /// [`PinError`].
    fn read_pin(&mut self, prompt: &PinPrompt) -> Result<Zeroizing<String>, PinError>;
}

/// Reads the PIN from the controlling terminal without echo.
#[derive(Debug, Default, Clone, Copy)]
pub struct TerminalPin;

impl PinSource for TerminalPin {
    fn read_pin(&mut self, prompt: &PinPrompt) -> Result<Zeroizing<String>, PinError> {
        let text = format!(
            "{} on card ending {}: enter PIN: ",
            prompt.amount, prompt.pan_last4
        );
        let pin = Zeroizing::new(
            rpassword::prompt_password(text).map_err(|e| PinError::Io(e.kind().to_string()))?,
        );
        let trimmed = Zeroizing::new(pin.trim().to_owned());
        if trimmed.is_empty() {
            return Err(PinError::Cancelled);
        }
        Ok(trimmed)
    }
}

/// A PIN given in advance (tests, fleet); `None` means the cardholder has none to give.
#[derive(Clone, Default)]
pub struct FixedPin(pub Option<Zeroizing<String>>);

impl FixedPin {
    /// This PIN.
    #[must_use]
    pub fn new(pin: &str) -> Self {
        Self(Some(Zeroizing::new(pin.to_owned())))
    }

    /// No PIN.
    #[must_use]
    pub fn none() -> Self {
        Self(None)
    }
}

impl std::fmt::Debug for FixedPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "FixedPin(<redacted>)"
        } else {
            "FixedPin(None)"
        })
    }
}

impl PinSource for FixedPin {
    fn read_pin(&mut self, _prompt: &PinPrompt) -> Result<Zeroizing<String>, PinError> {
        self.0.clone().ok_or(PinError::Unavailable)
    }
}
