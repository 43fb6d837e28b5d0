//! A contactless card on a PC/SC reader, through libpcsclite (`pcsc` crate).
//!
//! Opening a reader waits for a card to be presented (`SCardGetStatusChange`), as a terminal
//! waits for the tap, then connects in shared mode with T=0 or T=1, whichever the reader chose.
//! The card is reset on drop (the `pcsc` crate's `SCardDisconnect` disposition), so the next
//! transaction starts from a fresh selection.
//!
//! The client library finds pcscd at its default socket, or at `PCSCLITE_CSOCK_NAME` (what the
//! tests use to talk to their own pcscd).

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use kernel_host::{CardError, CardSource};
use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};

use super::CardSourceError;

/// Pause before looking for the card again after it vanished while being connected.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// How long a card that stopped answering has to show as gone before it counts as a reader
/// failure rather than a card taken away (pcscd polls presence every few hundred milliseconds).
const CARD_LEFT_GRACE: Duration = Duration::from_secs(1);

/// A contactless card on a PC/SC reader.
pub(super) struct PcscCard {
    card: pcsc::Card,
    context: Context,
    reader: CString,
}

impl std::fmt::Debug for PcscCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PcscCard")
    }
}

impl CardSource for PcscCard {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, CardError> {
        let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        let failure = match self.card.transmit(capdu, &mut buffer) {
            // Every R-APDU ends with a status word.
            Ok(answer) if answer.len() >= 2 => return Ok(answer.to_vec()),
            Ok(_) => "the reader returned no status word".to_owned(),
            Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => {
                return Err(CardError::Removed);
            }
            Err(other) => other.to_string(),
        };
        // The link broke during the command. A card taken away often shows so before pcscd
        // has noticed it left (vpcd, for one, then answers nothing or fails the command).
        Err(if self.card_left() {
            CardError::Removed
        } else {
            CardError::Transport(failure)
        })
    }
}

impl PcscCard {
    /// Whether the reader reports the card gone within [`CARD_LEFT_GRACE`].
    fn card_left(&self) -> bool {
        let deadline = Instant::now() + CARD_LEFT_GRACE;
        let mut states = [ReaderState::new(self.reader.clone(), State::UNAWARE)];
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if self
                .context
                .get_status_change(remaining, &mut states)
                .is_err()
            {
                return false;
            }
            if !states[0].event_state().contains(State::PRESENT) {
                return true;
            }
            if remaining.is_zero() {
                return false;
            }
            states[0].sync_current_state();
        }
    }
}

/// A PC/SC failure as a card source error: a missing service is told apart, because the fix
/// (start pcscd) differs from every other failure.
fn stack_error(error: pcsc::Error) -> CardSourceError {
    match error {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => {
            CardSourceError::PcscUnavailable(error.to_string())
        }
        other => CardSourceError::Pcsc(other.to_string()),
    }
}

fn readers(context: &Context) -> Result<Vec<CString>, CardSourceError> {
    context.list_readers_owned().map_err(stack_error)
}

/// The names of the readers present.
pub(super) fn list() -> Result<Vec<String>, CardSourceError> {
    let context = Context::establish(Scope::User).map_err(stack_error)?;
    Ok(readers(&context)?
        .into_iter()
        .map(|name| name.to_string_lossy().into_owned())
        .collect())
}

/// The reader called `name`, else the first whose name contains it.
fn find_reader(readers: Vec<CString>, name: &str) -> Result<CString, CardSourceError> {
    let names: Vec<String> = readers
        .iter()
        .map(|reader| reader.to_string_lossy().into_owned())
        .collect();
    let index = names
        .iter()
        .position(|reader| reader == name)
        .or_else(|| names.iter().position(|reader| reader.contains(name)));
    match index {
        Some(index) => Ok(readers[index].clone()),
        None => Err(CardSourceError::ReaderNotFound {
            name: name.to_owned(),
            available: if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            },
        }),
    }
}

/// Waits until `reader` holds a card that answered its reset, or `deadline` passes (`wait` is
/// how long that is in all, for the message).
fn wait_for_card(
    context: &Context,
    reader: &CStr,
    deadline: Instant,
    wait: Duration,
) -> Result<(), CardSourceError> {
    let not_presented = || CardSourceError::CardNotPresented {
        reader: reader.to_string_lossy().into_owned(),
        waited_secs: wait.as_secs(),
    };
    // UNAWARE makes the first call return the reader's state at once.
    let mut states = [ReaderState::new(reader.to_owned(), State::UNAWARE)];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match context.get_status_change(remaining, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Err(not_presented()),
            Err(other) => return Err(stack_error(other)),
        }
        let state = states[0].event_state();
        if state.intersects(State::UNKNOWN | State::UNAVAILABLE) {
            return Err(CardSourceError::Pcsc(format!(
                "reader {:?} went away",
                reader.to_string_lossy()
            )));
        }
        // MUTE: something is in the field that did not answer its reset (not a card we can read).
        if state.contains(State::PRESENT) && !state.contains(State::MUTE) {
            return Ok(());
        }
        if remaining.is_zero() {
            return Err(not_presented());
        }
        states[0].sync_current_state();
    }
}

/// Opens the reader `name` (see [`find_reader`]) and waits up to `wait` for a card.
pub(super) fn open(name: &str, wait: Duration) -> Result<PcscCard, CardSourceError> {
    let context = Context::establish(Scope::User).map_err(stack_error)?;
    let reader = find_reader(readers(&context)?, name)?;
    let deadline = Instant::now() + wait;
    loop {
        wait_for_card(&context, &reader, deadline, wait)?;
        match context.connect(&reader, ShareMode::Shared, Protocols::ANY) {
            Ok(card) => {
                return Ok(PcscCard {
                    card,
                    context,
                    reader,
                });
            }
            // The card left between being seen and being connected, or pcscd had not noticed
            // the last one leave yet: wait for the next tap.
            Err(
                pcsc::Error::NoSmartcard
                | pcsc::Error::RemovedCard
                | pcsc::Error::ResetCard
                | pcsc::Error::UnpoweredCard
                | pcsc::Error::UnresponsiveCard,
            ) if Instant::now() < deadline => std::thread::sleep(RETRY_PAUSE),
            Err(other) => return Err(stack_error(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(readers: &[&str], name: &str, expected: Result<&str, &str>) {
        let readers = readers
            .iter()
            .map(|reader| CString::new(*reader).unwrap())
            .collect();
        let found = find_reader(readers, name);
        match expected {
            Ok(reader) => assert_eq!(found.unwrap().to_str().unwrap(), reader),
            Err(available) => match found.unwrap_err() {
                CardSourceError::ReaderNotFound {
                    name: asked,
                    available: listed,
                } => {
                    assert_eq!(asked, name);
                    assert_eq!(listed, available);
                }
                other => panic!("{other:?}"),
            },
        }
    }

    #[test]
    fn readers_match_by_name_then_by_part_of_it() {
        let two = ["ACS ACR122U 00 00", "Virtual PCD 00 00"];
        check(&two, "Virtual PCD 00 00", Ok("Virtual PCD 00 00"));
        check(&two, "ACR122", Ok("ACS ACR122U 00 00"));
        check(&two, "00 00", Ok("ACS ACR122U 00 00"));
        // An exact name wins over an earlier reader that merely contains it.
        check(&["Reader 10", "Reader 1"], "Reader 1", Ok("Reader 1"));
        check(&two, "Identiv", Err("ACS ACR122U 00 00, Virtual PCD 00 00"));
        check(&[], "Identiv", Err("none"));
    }
}
