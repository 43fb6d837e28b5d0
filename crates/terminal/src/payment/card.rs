//! Card sources: a virtual test card (`emv-cards`), a recorded transcript (`emv-replay`), or a
//! PC/SC contactless reader (cargo feature `pcsc`, off by default because it links
//! libpcsclite; without it a reader gives [`CardSourceError::PcscNotBuilt`]).

use std::path::PathBuf;

use kernel_host::{CardError, CardSource};

/// Which card to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardSpec {
    /// A virtual card profile of `emv-cards` (`visa-fdda`, `mc-cda`, `visa-online-pin`, ...).
    Virtual(String),
    /// A recorded `>> C-APDU` / `<< R-APDU` transcript.
    Transcript(PathBuf),
    /// A PC/SC reader by (part of) its name.
    Reader(String),
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
    /// The PC/SC stack failed or no reader matched.
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
        CardSpec::Reader(name) => open_reader(name),
    }
}

#[cfg(not(feature = "pcsc"))]
fn open_reader(_name: &str) -> Result<Box<dyn CardSource + Send>, CardSourceError> {
    Err(CardSourceError::PcscNotBuilt)
}

/// The PC/SC readers present.
///
/// # Errors
/// [`CardSourceError::PcscNotBuilt`] without the `pcsc` feature; [`CardSourceError::Pcsc`].
#[cfg(not(feature = "pcsc"))]
pub fn list_readers() -> Result<Vec<String>, CardSourceError> {
    Err(CardSourceError::PcscNotBuilt)
}

#[cfg(feature = "pcsc")]
mod reader {
    use super::{CardError, CardSource, CardSourceError};

    /// A contactless card on a PC/SC reader.
    pub(super) struct PcscCard {
        card: pcsc::Card,
    }

    impl std::fmt::Debug for PcscCard {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("PcscCard")
        }
    }

    impl CardSource for PcscCard {
        fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, CardError> {
            let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
            let answer = self
                .card
                .transmit(capdu, &mut buffer)
                .map_err(|e| match e {
                    pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard => CardError::Removed,
                    other => CardError::Transport(other.to_string()),
                })?;
            Ok(answer.to_vec())
        }
    }

    pub(super) fn list() -> Result<Vec<String>, CardSourceError> {
        let context = pcsc::Context::establish(pcsc::Scope::User)
            .map_err(|e| CardSourceError::Pcsc(e.to_string()))?;
        let names = context
            .list_readers_owned()
            .map_err(|e| CardSourceError::Pcsc(e.to_string()))?;
        Ok(names
            .into_iter()
            .map(|name| name.to_string_lossy().into_owned())
            .collect())
    }

    pub(super) fn open(name: &str) -> Result<PcscCard, CardSourceError> {
        let context = pcsc::Context::establish(pcsc::Scope::User)
            .map_err(|e| CardSourceError::Pcsc(e.to_string()))?;
        let readers = context
            .list_readers_owned()
            .map_err(|e| CardSourceError::Pcsc(e.to_string()))?;
        let reader = readers
            .into_iter()
            .find(|reader| reader.to_string_lossy().contains(name))
            .ok_or_else(|| CardSourceError::Pcsc(format!("no reader matches {name:?}")))?;
        let card = context
            .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(|e| CardSourceError::Pcsc(e.to_string()))?;
        Ok(PcscCard { card })
    }
}

#[cfg(feature = "pcsc")]
fn open_reader(name: &str) -> Result<Box<dyn CardSource + Send>, CardSourceError> {
    Ok(Box::new(reader::open(name)?))
}

/// The PC/SC readers present.
///
/// # Errors
/// [`CardSourceError::Pcsc`].
#[cfg(feature = "pcsc")]
pub fn list_readers() -> Result<Vec<String>, CardSourceError> {
    reader::list()
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
            open(&CardSpec::Reader("ACS".to_owned()))
                .err()
                .unwrap()
                .code(),
            "pcsc_not_built"
        );
    }
}
