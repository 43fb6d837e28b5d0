//! The output layer every command shares: one value rendered either as text for people or as
//! one JSON object for scripts, and a progress line for long steps.
//!
//! Progress goes to standard error and only when it is a terminal (or
//! `SOFTPOS_TERMINAL_PROGRESS=always`), never with `--json`: standard output stays exactly the
//! result, and standard error stays the one-line error when there is one.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde::Serialize;

use crate::CliError;

/// What a command hands back to the process boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Printed on standard output as is.
    pub text: String,
    /// The exit code (0, or e.g. 6 for a declined payment whose result is still printed).
    pub exit_code: u8,
}

impl Reply {
    /// A successful reply.
    #[must_use]
    pub fn ok(text: String) -> Self {
        Self { text, exit_code: 0 }
    }
}

/// Renders `value` as pretty JSON (with a final newline) or with `human`.
///
/// # Errors
/// `json` (internal) if serialisation fails.
pub fn render<T: Serialize>(
    value: &T,
    json: bool,
    human: impl FnOnce(&T) -> String,
) -> Result<String, CliError> {
    if json {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|error| CliError::internal("json", error.to_string()))?;
        text.push('\n');
        Ok(text)
    } else {
        let mut text = human(value);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}

/// Whether progress lines are shown: never with `--json`; `SOFTPOS_TERMINAL_PROGRESS=always`
/// or `never` overrides; otherwise only when standard error is a terminal.
#[must_use]
pub fn progress_enabled(json: bool) -> bool {
    if json {
        return false;
    }
    match std::env::var("SOFTPOS_TERMINAL_PROGRESS").as_deref() {
        Ok("always") => true,
        Ok("never") => false,
        _ => std::io::stderr().is_terminal(),
    }
}

/// A progress display for the steps of one command: `[1.2s] registering…` lines on standard
/// error, rewritten in place on a terminal.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    in_place: bool,
    start: Instant,
    dirty: bool,
}

impl Progress {
    /// A display, silent unless [`progress_enabled`].
    #[must_use]
    pub fn new(json: bool) -> Self {
        let enabled = progress_enabled(json);
        Self {
            enabled,
            in_place: enabled && std::io::stderr().is_terminal(),
            start: Instant::now(),
            dirty: false,
        }
    }

    /// Whether anything is shown.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Shows the current step.
    pub fn step(&mut self, message: &str) {
        if !self.enabled {
            return;
        }
        let line = format!("[{:6.1}s] {message}", self.start.elapsed().as_secs_f64());
        let mut stderr = std::io::stderr().lock();
        if self.in_place {
            let _ = write!(stderr, "\r\x1b[2K{line}");
            self.dirty = true;
        } else {
            let _ = writeln!(stderr, "{line}");
        }
        let _ = stderr.flush();
    }

    /// Ends the display (clears the in-place line).
    pub fn finish(&mut self) {
        if self.dirty {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            let _ = std::io::stderr().flush();
            self.dirty = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Shown {
        state: &'static str,
    }

    #[test]
    fn renders_json_or_text_with_a_final_newline() {
        let value = Shown { state: "ACTIVE" };
        let json = render(&value, true, |_| unreachable!()).unwrap();
        assert_eq!(json, "{\n  \"state\": \"ACTIVE\"\n}\n");
        let text = render(&value, false, |v| format!("state: {}", v.state)).unwrap();
        assert_eq!(text, "state: ACTIVE\n");
        assert!(!progress_enabled(true), "--json never shows progress");
    }
}
