//! A card source that answers from a transcript.
//!
//! Matching rules (issue 3, "Transcript replay"):
//! - SELECT (`A4`) is answered by the recording of a SELECT of the same name (command data);
//! - READ RECORD (`B2`) by the recording with the same P1 (record) and P2 (SFI);
//! - every other command (GET PROCESSING OPTIONS, GENERATE AC, GET DATA, INTERNAL AUTHENTICATE,
//!   GET RESPONSE, ...) by the next unused recording with the same INS, in recorded order.
//!
//! SELECT and READ RECORD read files, which a card answers the same way every time: once their
//! recordings are used up, the last one answers again. The others change the card's state, so
//! each recording answers once.
//!
//! A SELECT of the PPSE that the transcript does not hold gets `6A82` (file not found), as from a
//! card without a PPSE: a transcript may start at the SELECT of the application.

use std::collections::{BTreeMap, VecDeque};

use emv_kernel::apdu::{PPSE_NAME, ins};

use crate::transcript::{Exchange, Transcript};

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// The recorded exchange at this index of the transcript.
    Recorded {
        /// Index in [`Transcript::exchanges`].
        index: usize,
        /// Line of its `>>` in the transcript.
        line: usize,
        /// Whether the kernel's command is byte for byte the recorded one. When it is not (other
        /// amount, date, unpredictable number...), recorded signatures and cryptograms were made
        /// over other data.
        command_matches: bool,
    },
    /// `6A82` for a SELECT of the PPSE the transcript does not hold.
    NoPpse,
}

/// An answer to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The R-APDU (data and status word).
    pub response: Vec<u8>,
    /// Where it came from.
    pub source: AnswerSource,
}

#[derive(Debug, Clone, Default)]
struct Queue {
    unused: VecDeque<usize>,
    last: Option<usize>,
}

impl Queue {
    fn push(&mut self, index: usize) {
        self.unused.push_back(index);
    }

    /// The next recording; with `repeat_last`, the last one again once all are used.
    fn next(&mut self, repeat_last: bool) -> Option<usize> {
        match self.unused.pop_front() {
            Some(index) => {
                self.last = Some(index);
                Some(index)
            }
            None if repeat_last => self.last,
            None => None,
        }
    }
}

/// Answers commands from a transcript (see the module docs for the matching rules).
#[derive(Debug, Clone)]
pub struct ReplayCard {
    exchanges: Vec<Exchange>,
    selects: BTreeMap<Vec<u8>, Queue>,
    records: BTreeMap<(u8, u8), Queue>,
    others: BTreeMap<u8, Queue>,
}

/// The SELECT data, READ RECORD P1/P2 or INS of a command, as the matching rules use them.
enum Key {
    Select(Vec<u8>),
    Record(u8, u8),
    Other(u8),
}

/// The command data of a short C-APDU (empty when there is none or it is malformed).
fn command_data(command: &[u8]) -> &[u8] {
    match command {
        [_, _, _, _, lc, rest @ ..] if *lc != 0 && rest.len() >= usize::from(*lc) => {
            &rest[..usize::from(*lc)]
        }
        _ => &[],
    }
}

fn key(command: &[u8]) -> Option<Key> {
    let [_, instruction, p1, p2, ..] = command else {
        return None;
    };
    Some(match *instruction {
        ins::SELECT => Key::Select(command_data(command).to_vec()),
        ins::READ_RECORD => Key::Record(*p1, *p2),
        other => Key::Other(other),
    })
}

impl ReplayCard {
    /// A card that answers from `transcript`.
    #[must_use]
    pub fn new(transcript: &Transcript) -> Self {
        let mut card = Self {
            exchanges: transcript.exchanges().to_vec(),
            selects: BTreeMap::new(),
            records: BTreeMap::new(),
            others: BTreeMap::new(),
        };
        for (index, exchange) in transcript.exchanges().iter().enumerate() {
            match key(&exchange.command) {
                Some(Key::Select(name)) => card.selects.entry(name).or_default().push(index),
                Some(Key::Record(p1, p2)) => card.records.entry((p1, p2)).or_default().push(index),
                Some(Key::Other(instruction)) => {
                    card.others.entry(instruction).or_default().push(index);
                }
                // The parser guarantees a 4-byte header.
                None => {}
            }
        }
        card
    }

    /// The answer to `command`, or `None` when the transcript has none.
    pub fn transmit(&mut self, command: &[u8]) -> Option<Answer> {
        let found = match key(command)? {
            Key::Select(name) => {
                let found = self
                    .selects
                    .get_mut(&name)
                    .and_then(|queue| queue.next(true));
                if found.is_none() && name == PPSE_NAME {
                    return Some(Answer {
                        response: vec![0x6A, 0x82],
                        source: AnswerSource::NoPpse,
                    });
                }
                found
            }
            Key::Record(p1, p2) => self
                .records
                .get_mut(&(p1, p2))
                .and_then(|queue| queue.next(true)),
            Key::Other(instruction) => self
                .others
                .get_mut(&instruction)
                .and_then(|queue| queue.next(false)),
        }?;
        let exchange = self.exchanges.get(found)?;
        Some(Answer {
            response: exchange.response.clone(),
            source: AnswerSource::Recorded {
                index: found,
                line: exchange.line,
                command_matches: exchange.command == command,
            },
        })
    }
}
