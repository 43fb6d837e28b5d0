//! The virtual reader: one `emv-cards` virtual card served to pcscd through vsmartcard's `vpcd`
//! driver, so the whole PC/SC path (pcscd, libpcsclite, the `pcsc` crate, `pay --reader`) runs
//! without a physical card or reader. Test and development tooling, run as
//! `softpos-terminal virtual-reader --card NAME`.
//!
//! The vpcd protocol, as vsmartcard's `vpcd.c` implements it: vpcd listens on TCP (Debian's
//! `/etc/reader.conf.d/vpcd` puts its first slot on port [`VPCD_PORT`]) and the virtual card
//! connects to it. Each message, either way, is a 2-byte big-endian length and that many bytes.
//! From vpcd, a 1-byte message is a control: `00` power off, `01` power on, `02` reset (none of
//! them answered) and `04` "send your ATR" (answered with the ATR); a longer one is a C-APDU,
//! answered with the R-APDU. vpcd checks presence by asking for the ATR every few hundred
//! milliseconds, and a closed connection is a card taken out of the field.
//!
//! The card keeps its state across power cycles (its ATC counts on, as a real card's
//! non-volatile counter does); every transaction starts with a SELECT, which resets the selection.
//! Nothing here logs or returns card data: only the number of commands answered.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// vpcd's port for the first slot of Debian's `/etc/reader.conf.d/vpcd` (`0x8C7B`).
pub const VPCD_PORT: u16 = 35963;

const CTRL_POWER_OFF: u8 = 0x00;
const CTRL_POWER_ON: u8 = 0x01;
const CTRL_RESET: u8 = 0x02;
const CTRL_ATR: u8 = 0x04;

/// Which ISO/IEC 14443-4 card type the ATR announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactlessType {
    /// Type A (most payment cards and phones).
    A,
    /// Type B.
    B,
}

/// The ATR a PC/SC reader makes up for an ISO/IEC 14443-4 card (PC/SC Part 3, ATR for
/// contactless cards): `3B 8n 80 01`, n historical bytes, then TCK, the XOR of every byte after
/// `3B`. Type A's historical bytes come from the ATS (our cards send none); type B's are the
/// ATQB's application data (4 bytes, zero here), its protocol info (`00 81 71`: 106 kbit/s,
/// 256-byte frames, ISO/IEC 14443-4, FWI 7, CID supported) and the MBLI nibble (0).
#[must_use]
pub fn contactless_atr(kind: ContactlessType) -> Vec<u8> {
    let historical: &[u8] = match kind {
        ContactlessType::A => &[],
        ContactlessType::B => &[0x00, 0x00, 0x00, 0x00, 0x00, 0x81, 0x71, 0x00],
    };
    let count = u8::try_from(historical.len()).expect("at most 15 historical bytes");
    let mut atr = vec![0x3B, 0x80 | count, 0x80, 0x01];
    atr.extend_from_slice(historical);
    let tck = atr[1..].iter().fold(0, |acc, byte| acc ^ byte);
    atr.push(tck);
    atr
}

/// The bridge failed. Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VirtualReaderError {
    /// vpcd did not accept a connection in time (pcscd not running, or another port).
    #[error("cannot reach vpcd at {addr}: {reason} (is pcscd running with the vpcd driver?)")]
    Unreachable {
        /// Where it was tried.
        addr: SocketAddr,
        /// The last connection error.
        reason: String,
    },
    /// vpcd sent something the protocol does not have.
    #[error("vpcd sent {0}")]
    Protocol(String),
    /// The connection failed in the middle of a message.
    #[error("connection to vpcd failed: {0}")]
    Io(String),
}

impl VirtualReaderError {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "vpcd_unreachable",
            Self::Protocol(_) => "vpcd_protocol",
            Self::Io(_) => "vpcd_io",
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// vpcd closed the connection (pcscd stopped).
    ReaderClosed,
    /// The card left the field after the commands asked for (`--remove-after`).
    Removed,
}

/// What a session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// How it ended.
    pub ending: Ending,
    /// C-APDUs answered.
    pub commands: u64,
}

/// Connects to vpcd at `addr`, trying again until `timeout` (vpcd listens only once pcscd has
/// loaded the driver).
///
/// # Errors
/// [`VirtualReaderError::Unreachable`].
pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, VirtualReaderError> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => {
                // One small message each way per command: do not wait to fill segments.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) if Instant::now() >= deadline => {
                return Err(VirtualReaderError::Unreachable {
                    addr,
                    reason: error.kind().to_string(),
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A virtual card in vpcd's field.
#[derive(Debug)]
pub struct VirtualCard {
    card: emv_cards::Card,
    atr: Vec<u8>,
    powered: bool,
    commands: u64,
    remove_after: Option<u64>,
}

impl VirtualCard {
    /// `card` answering with `atr`; with `remove_after`, it leaves the field once it has answered
    /// that many commands.
    #[must_use]
    pub fn new(card: emv_cards::Card, atr: Vec<u8>, remove_after: Option<u64>) -> Self {
        Self {
            card,
            atr,
            powered: false,
            commands: 0,
            remove_after,
        }
    }

    /// Answers one message from vpcd: `None` for the controls that have no answer.
    ///
    /// # Errors
    /// [`VirtualReaderError::Protocol`] for an empty message, an unknown control byte or a
    /// command to a card that is not powered.
    pub fn answer(&mut self, message: &[u8]) -> Result<Option<Vec<u8>>, VirtualReaderError> {
        match message {
            [] => Err(VirtualReaderError::Protocol("an empty message".to_owned())),
            [CTRL_POWER_OFF] => {
                self.powered = false;
                Ok(None)
            }
            [CTRL_POWER_ON | CTRL_RESET] => {
                self.powered = true;
                Ok(None)
            }
            // Presence polls come whether or not the card is powered.
            [CTRL_ATR] => Ok(Some(self.atr.clone())),
            [other] => Err(VirtualReaderError::Protocol(format!(
                "unknown control byte {other:02X}"
            ))),
            capdu if !self.powered => Err(VirtualReaderError::Protocol(format!(
                "a {}-byte command to a card that is not powered",
                capdu.len()
            ))),
            capdu => {
                self.commands += 1;
                Ok(Some(self.card.transmit(capdu)))
            }
        }
    }

    /// Serves vpcd over `stream` until vpcd closes it or the card leaves the field (the stream
    /// is dropped, which closes it).
    ///
    /// # Errors
    /// [`VirtualReaderError::Protocol`] (see [`Self::answer`]), [`VirtualReaderError::Io`] for a
    /// connection that fails or closes in the middle of a message.
    pub fn serve<S: Read + Write>(&mut self, mut stream: S) -> Result<Summary, VirtualReaderError> {
        let io_error = |error: io::Error| VirtualReaderError::Io(error.kind().to_string());
        loop {
            if self
                .remove_after
                .is_some_and(|limit| self.commands >= limit)
            {
                return Ok(self.summary(Ending::Removed));
            }
            let mut length = [0u8; 2];
            match read_full(&mut stream, &mut length) {
                Ok(0) => return Ok(self.summary(Ending::ReaderClosed)),
                Ok(2) => {}
                Ok(_) => return Err(VirtualReaderError::Io("a truncated length".to_owned())),
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {
                    return Ok(self.summary(Ending::ReaderClosed));
                }
                Err(error) => return Err(io_error(error)),
            }
            let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
            if read_full(&mut stream, &mut message).map_err(io_error)? < message.len() {
                return Err(VirtualReaderError::Io("a truncated message".to_owned()));
            }
            if let Some(answer) = self.answer(&message)? {
                let length = u16::try_from(answer.len()).map_err(|_| {
                    VirtualReaderError::Io(format!("a {}-byte answer", answer.len()))
                })?;
                let mut frame = length.to_be_bytes().to_vec();
                frame.extend_from_slice(&answer);
                stream.write_all(&frame).map_err(io_error)?;
                stream.flush().map_err(io_error)?;
            }
        }
    }

    fn summary(&self, ending: Ending) -> Summary {
        Summary {
            ending,
            commands: self.commands,
        }
    }
}

/// Reads until `buffer` is full or the stream ends; returns how much was read.
fn read_full(stream: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match stream.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// vpcd's side of a session: scripted frames in, the card's frames out.
    struct Script {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Script {
        fn new(messages: &[&[u8]]) -> Self {
            Self {
                input: io::Cursor::new(frames(messages)),
                output: Vec::new(),
            }
        }
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn frames(messages: &[&[u8]]) -> Vec<u8> {
        messages
            .iter()
            .flat_map(|message| {
                let length = u16::try_from(message.len()).unwrap().to_be_bytes();
                length.into_iter().chain(message.iter().copied())
            })
            .collect()
    }

    fn card(remove_after: Option<u64>) -> VirtualCard {
        let card = emv_cards::Card::profile("visa-fdda").unwrap();
        VirtualCard::new(card, contactless_atr(ContactlessType::A), remove_after)
    }

    const SELECT_PPSE: &[u8] = b"\x00\xA4\x04\x00\x0E2PAY.SYS.DDF01\x00";

    #[test]
    fn atrs_follow_pc_sc_part_3() {
        // A type A card without historical bytes, as phones in card emulation show it.
        assert_eq!(
            contactless_atr(ContactlessType::A),
            [0x3B, 0x80, 0x80, 0x01, 0x01]
        );
        let type_b = contactless_atr(ContactlessType::B);
        assert_eq!(type_b[..4], [0x3B, 0x88, 0x80, 0x01]);
        assert_eq!(type_b.len(), 4 + 8 + 1);
        // TCK makes the XOR of T0 through TCK zero.
        assert_eq!(type_b[1..].iter().fold(0, |acc, byte| acc ^ byte), 0);
    }

    #[test]
    fn controls_and_commands_get_the_answers_of_the_protocol() {
        let mut virtual_card = card(None);
        assert_eq!(
            virtual_card.answer(&[CTRL_ATR]).unwrap(),
            Some(contactless_atr(ContactlessType::A))
        );
        let unpowered = virtual_card.answer(SELECT_PPSE).unwrap_err();
        assert_eq!(unpowered.code(), "vpcd_protocol");
        assert_eq!(virtual_card.answer(&[CTRL_POWER_ON]).unwrap(), None);
        let mut reference = emv_cards::Card::profile("visa-fdda").unwrap();
        assert_eq!(
            virtual_card.answer(SELECT_PPSE).unwrap(),
            Some(reference.transmit(SELECT_PPSE))
        );
        assert_eq!(virtual_card.answer(&[CTRL_RESET]).unwrap(), None);
        assert_eq!(virtual_card.answer(&[CTRL_POWER_OFF]).unwrap(), None);
        assert!(virtual_card.answer(SELECT_PPSE).is_err(), "powered off");
        for bad in [&[][..], &[0x03], &[0xFF]] {
            assert_eq!(
                virtual_card.answer(bad).unwrap_err().code(),
                "vpcd_protocol"
            );
        }
        assert_eq!(virtual_card.commands, 1, "only answered commands count");
    }

    #[test]
    fn a_session_answers_in_frames_until_vpcd_closes() {
        let mut script = Script::new(&[
            &[CTRL_ATR],
            &[CTRL_POWER_ON],
            SELECT_PPSE,
            &[CTRL_POWER_OFF],
        ]);
        let summary = card(None).serve(&mut script).unwrap();
        assert_eq!(
            summary,
            Summary {
                ending: Ending::ReaderClosed,
                commands: 1
            }
        );
        let ppse = emv_cards::Card::profile("visa-fdda")
            .unwrap()
            .transmit(SELECT_PPSE);
        let atr = contactless_atr(ContactlessType::A);
        assert_eq!(script.output, frames(&[&atr, &ppse]));
    }

    #[test]
    fn a_removed_card_stops_answering_and_broken_frames_are_typed() {
        let mut script = Script::new(&[&[CTRL_POWER_ON], SELECT_PPSE, SELECT_PPSE]);
        let summary = card(Some(1)).serve(&mut script).unwrap();
        assert_eq!(summary.ending, Ending::Removed);
        assert_eq!(summary.commands, 1);
        let ppse = emv_cards::Card::profile("visa-fdda")
            .unwrap()
            .transmit(SELECT_PPSE);
        assert_eq!(
            script.output,
            frames(&[&ppse]),
            "the second command got nothing"
        );

        let mut truncated = frames(&[&[CTRL_POWER_ON], SELECT_PPSE]);
        truncated.truncate(truncated.len() - 3);
        let mut script = Script {
            input: io::Cursor::new(truncated),
            output: Vec::new(),
        };
        let error = card(None).serve(&mut script).unwrap_err();
        assert_eq!(error.code(), "vpcd_io");
        assert!(script.output.is_empty());

        let mut script = Script::new(&[&[CTRL_ATR], &[0x07]]);
        assert_eq!(
            card(None).serve(&mut script).unwrap_err().code(),
            "vpcd_protocol"
        );
    }
}
