//! Text transcripts of card sessions, in the form the kernel's replay mode reads (issue 3,
//! section 3): one `>> <C-APDU hex>` line per command, one `<< <R-APDU hex>` line per answer,
//! `#` comments.
//!
//! A transcript recorded from a virtual card is a test fixture for the replay mode that needs no
//! real card; since the cards are deterministic, recording the same session twice gives the same
//! text.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::Card;

/// A card that writes every exchange to a transcript.
#[derive(Debug, Clone)]
pub struct RecordingCard {
    card: Card,
    transcript: String,
}

impl RecordingCard {
    /// Starts recording `card`, with a `#` comment naming its profile.
    #[must_use]
    pub fn new(card: Card) -> Self {
        let mut transcript = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(transcript, "# virtual card profile {}", card.name());
        Self { card, transcript }
    }

    /// Sends `capdu` to the card and records both lines.
    pub fn transmit(&mut self, capdu: &[u8]) -> Vec<u8> {
        let rapdu = self.card.transmit(capdu);
        push_line(&mut self.transcript, ">>", capdu);
        push_line(&mut self.transcript, "<<", &rapdu);
        rapdu
    }

    /// Adds a `#` comment line (line breaks in `text` become spaces).
    pub fn comment(&mut self, text: &str) {
        self.transcript.push_str("# ");
        self.transcript.extend(
            text.chars()
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
        );
        self.transcript.push('\n');
    }

    /// The card, e.g. to read its ATC.
    #[must_use]
    pub fn card(&self) -> &Card {
        &self.card
    }

    /// The transcript so far.
    #[must_use]
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    /// Ends the recording: the card and the transcript.
    #[must_use]
    pub fn finish(self) -> (Card, String) {
        (self.card, self.transcript)
    }
}

fn push_line(out: &mut String, direction: &str, bytes: &[u8]) {
    out.push_str(direction);
    out.push(' ');
    for byte in bytes {
        let _ = write!(out, "{byte:02X}");
    }
    out.push('\n');
}
