//! Card sources: a virtual test card (`emv-cards`), a recorded transcript (`emv-replay`), or a
//! PC/SC contactless reader (cargo feature `pcsc`, off by default because it links
//! libpcsclite; without it a reader gives [`CardSourceError::PcscNotBuilt`]). The reader source
//! is the `pcsc` submodule; it waits for a card to be presented before it connects.

use std::path::PathBuf;
use std::time::Duration;

use kernel_host::{CardError, CardSource};

/// Which card to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardSpec {
    /// A virtual card profile of `emv-cards` (`visa-fdda`, `mc-cda`, `visa-online-pin`, ...).
    Virtual(String),
    /// A recorded `>> C-APDU` / `<< R-APDU` transcript.
    Transcript(PathBuf),
    /// A PC/SC reader by its name or part of it (the first reader whose name contains it).
    Reader {
        /// The name, or part of it.
        name: String,
        /// How long to wait for a card to be presented.
        wait: Duration,
    },
}

/// A card source could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardSourceError {
    /// No virtual card with this name.
    #[error("unknown card profile {0:?} (known: {1})")]
    UnknownCard(String, String),
    /// The transcript cannot be read or parsed.
    #[error("transcript: {0}")]
    Transcript(String),
    /// This build has no PC/SC support.
    #[error("this build has no PC/SC reader support (rebuild with `--features pcsc`)")]
    PcscNotBuilt,
    /// No PC/SC service answers (pcscd is not running, or no reader was ever attached).
    #[error("no PC/SC service: {0}")]
    PcscUnavailable(String),
    /// No reader's name contains the one asked for.
    #[error("no PC/SC reader matches {name:?} (readers: {available})")]
    ReaderNotFound {
        /// What was asked for.
        name: String,
        /// The readers present, comma-separated, or `none`.
        available: String,
    },
    /// No card was presented to the reader in time.
    #[error("no card was presented to {reader:?} within {waited_secs} s")]
    CardNotPresented {
        /// The reader.
        reader: String,
        /// How long it waited.
        waited_secs: u64,
    },
    /// The PC/SC stack failed otherwise.
    #[error("PC/SC: {0}")]
    Pcsc(String),
}

impl CardSourceError {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownCard(..) => "unknown_card",
            Self::Transcript(_) => "transcript_invalid",
            Self::PcscNotBuilt => "pcsc_not_built",
            Self::PcscUnavailable(_) => "pcsc_unavailable",
            Self::ReaderNotFound { .. } => "reader_not_found",
            Self::CardNotPresented { .. } => "card_not_presented",
            Self::Pcsc(_) => "pcsc_failed",
        }
    }
}

/// The names of the virtual cards.
#[must_use]
pub fn virtual_cards() -> Vec<&'static str> {
    emv_cards::profiles()
        .iter()
        .map(|profile| profile.name)
        .collect()
}

/// A transcript as a card: answers the kernel's commands from the recording.
#[derive(Debug)]
pub struct TranscriptCard {
    card: emv_replay::ReplayCard,
}

impl TranscriptCard {
    /// Parses a transcript text.
    ///
    /// # Errors
    /// [`CardSourceError::Transcript`].
    pub fn parse(text: &str) -> Result<Self, CardSourceError> {
        let transcript = emv_replay::Transcript::parse(text)
            .map_err(|e| CardSourceError::Transcript(e.code().to_owned()))?;
        Ok(Self {
            card: emv_replay::ReplayCard::new(&transcript),
        })
    }
}

impl CardSource for TranscriptCard {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, CardError> {
        self.card
            .transmit(capdu)
            .map(|answer| answer.response)
            .ok_or_else(|| {
                CardError::Transport("the transcript has no answer to this command".to_owned())
            })
    }
}

/// Opens a card source.
///
/// # Errors
/// [`CardSourceError`].
pub fn open(spec: &CardSpec) -> Result<Box<dyn CardSource + Send>, CardSourceError> {
    match spec {
        CardSpec::Virtual(name) => emv_cards::Card::profile(name)
            .map(|card| Box::new(card) as Box<dyn CardSource + Send>)
            .ok_or_else(|| CardSourceError::UnknownCard(name.clone(), virtual_cards().join(", "))),
        CardSpec::Transcript(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CardSourceError::Transcript(e.kind().to_string()))?;
            Ok(Box::new(TranscriptCard::parse(&text)?))
        }
        CardSpec::Reader { name, wait } => open_reader(name, *wait),
    }
}

#[cfg(feature = "pcsc")]
mod pcsc;

#[cfg(not(feature = "pcsc"))]
fn open_reader(
    _name: &str,
    _wait: Duration,
) -> Result<Box<dyn CardSource + Send>, CardSourceError> {
    Err(CardSourceError::PcscNotBuilt)
}

#[cfg(feature = "pcsc")]
fn open_reader(name: &str, wait: Duration) -> Result<Box<dyn CardSource + Send>, CardSourceError> {
    Ok(Box::new(pcsc::open(name, wait)?))
}

/// The PC/SC readers present.
///
/// # Errors
/// [`CardSourceError::PcscNotBuilt`] without the `pcsc` feature; [`CardSourceError::PcscUnavailable`]
/// when no PC/SC service answers; [`CardSourceError::Pcsc`].
pub fn list_readers() -> Result<Vec<String>, CardSourceError> {
    #[cfg(feature = "pcsc")]
    {
        pcsc::list()
    }
    #[cfg(not(feature = "pcsc"))]
    {
        Err(CardSourceError::PcscNotBuilt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_cards_open_and_unknown_ones_are_typed() {
        assert!(open(&CardSpec::Virtual("visa-fdda".to_owned())).is_ok());
        let err = open(&CardSpec::Virtual("nope".to_owned())).err().unwrap();
        assert_eq!(err.code(), "unknown_card");
        #[cfg(not(feature = "pcsc"))]
        assert_eq!(
            open(&CardSpec::Reader {
                name: "ACS".to_owned(),
                wait: Duration::from_secs(1)
            })
            .err()
            .unwrap()
            .code(),
            "pcsc_not_built"
        );
    }
}
