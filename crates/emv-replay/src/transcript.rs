//! The transcript text format.
//!
//! ```text
//! # A comment: the source of the recording, the parameters it used.
//! >> 00A404000E325041592E5359532E444446303100
//! << 6F2B840E325041592E5359532E4444463031 ... 9000
//! ```
//!
//! - `>>` starts a command APDU (C-APDU), `<<` the card's response to it (R-APDU: data then SW1
//!   SW2). Each `>>` is followed by exactly one `<<`.
//! - Hex digits may be upper or lower case and separated by spaces or tabs.
//! - `#` starts a comment, on its own line or after the hex; blank lines are ignored.
//!
//! Anything else is an error naming the line (1-based).

use std::fmt::Write as _;

/// One recorded command and the card's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Line of the `>>` in the transcript (1-based).
    pub line: usize,
    /// The C-APDU as recorded.
    pub command: Vec<u8>,
    /// The R-APDU as recorded (data and status word).
    pub response: Vec<u8>,
}

/// A parsed transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcript {
    exchanges: Vec<Exchange>,
}

/// What is wrong with a transcript line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A character that is not a hex digit or white space.
    #[error("invalid hex character {0:?}")]
    BadHex(char),
    /// An odd number of hex digits.
    #[error("odd number of hex digits ({0})")]
    OddLength(usize),
    /// A line that starts with neither `>>`, `<<` nor `#`.
    #[error("line starts with neither '>>', '<<' nor '#'")]
    UnknownPrefix,
    /// A `<<` with no `>>` before it.
    #[error("response '<<' without a command '>>' before it")]
    ResponseWithoutCommand,
    /// A `>>` followed by another `>>` or by the end of the transcript.
    #[error("command '>>' has no response '<<'")]
    CommandWithoutResponse,
    /// A C-APDU shorter than its 4-byte header.
    #[error("command of {0} bytes is shorter than the 4-byte header")]
    CommandTooShort(usize),
    /// An R-APDU shorter than its status word.
    #[error("response of {0} bytes has no 2-byte status word")]
    ResponseTooShort(usize),
    /// No exchange at all.
    #[error("transcript has no exchange")]
    Empty,
}

/// A transcript that cannot be parsed: the line (1-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// The line (1-based); for [`ParseErrorKind::Empty`], the number of lines.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// A stable machine-readable code, e.g. `"transcript_bad_hex"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self.kind {
            ParseErrorKind::BadHex(_) => "transcript_bad_hex",
            ParseErrorKind::OddLength(_) => "transcript_odd_length",
            ParseErrorKind::UnknownPrefix => "transcript_unknown_prefix",
            ParseErrorKind::ResponseWithoutCommand => "transcript_response_without_command",
            ParseErrorKind::CommandWithoutResponse => "transcript_command_without_response",
            ParseErrorKind::CommandTooShort(_) => "transcript_command_too_short",
            ParseErrorKind::ResponseTooShort(_) => "transcript_response_too_short",
            ParseErrorKind::Empty => "transcript_empty",
        }
    }
}

/// Parses hex with optional spaces and tabs.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, ParseErrorKind> {
    let mut nibbles = Vec::with_capacity(text.len());
    for character in text.chars() {
        if character == ' ' || character == '\t' {
            continue;
        }
        let nibble = character
            .to_digit(16)
            .ok_or(ParseErrorKind::BadHex(character))?;
        // `to_digit(16)` is below 16, so the cast keeps the value.
        nibbles.push(nibble as u8);
    }
    if nibbles.len() % 2 != 0 {
        return Err(ParseErrorKind::OddLength(nibbles.len()));
    }
    Ok(nibbles
        .chunks_exact(2)
        .map(|pair| (pair[0] << 4) | pair[1])
        .collect())
}

impl Transcript {
    /// Parses a transcript.
    ///
    /// # Errors
    /// [`ParseError`] with the first bad line.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut exchanges = Vec::new();
        let mut pending: Option<(usize, Vec<u8>)> = None;
        let mut last_line = 0;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            last_line = line;
            let content = raw.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let error = |kind| ParseError { line, kind };
            if let Some(hex) = content.strip_prefix(">>") {
                if let Some((pending_line, _)) = pending {
                    return Err(ParseError {
                        line: pending_line,
                        kind: ParseErrorKind::CommandWithoutResponse,
                    });
                }
                let command = parse_hex(hex).map_err(error)?;
                if command.len() < 4 {
                    return Err(error(ParseErrorKind::CommandTooShort(command.len())));
                }
                pending = Some((line, command));
            } else if let Some(hex) = content.strip_prefix("<<") {
                let Some((command_line, command)) = pending.take() else {
                    return Err(error(ParseErrorKind::ResponseWithoutCommand));
                };
                let response = parse_hex(hex).map_err(error)?;
                if response.len() < 2 {
                    return Err(error(ParseErrorKind::ResponseTooShort(response.len())));
                }
                exchanges.push(Exchange {
                    line: command_line,
                    command,
                    response,
                });
            } else {
                return Err(error(ParseErrorKind::UnknownPrefix));
            }
        }
        if let Some((line, _)) = pending {
            return Err(ParseError {
                line,
                kind: ParseErrorKind::CommandWithoutResponse,
            });
        }
        if exchanges.is_empty() {
            return Err(ParseError {
                line: last_line,
                kind: ParseErrorKind::Empty,
            });
        }
        Ok(Self { exchanges })
    }

    /// A transcript of these exchanges (lines are renumbered when written).
    #[must_use]
    pub fn from_exchanges(exchanges: Vec<Exchange>) -> Self {
        Self { exchanges }
    }

    /// The exchanges, in recorded order.
    #[must_use]
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// Writes the transcript as text: the `header` lines as `#` comments, then one `>>` and one
    /// `<<` line per exchange, upper-case hex.
    #[must_use]
    pub fn to_text(&self, header: &[&str]) -> String {
        let mut out = String::new();
        for line in header {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                // Writing to a String cannot fail.
                let _ = writeln!(out, "# {line}");
            }
        }
        for exchange in &self.exchanges {
            let _ = writeln!(out, ">> {}", hex::encode_upper(&exchange.command));
            let _ = writeln!(out, "<< {}", hex::encode_upper(&exchange.response));
        }
        out
    }
}
