//! Drives the kernel against a [`ReplayCard`].

use emv_kernel::apdu::{self, PPSE_NAME, ins};
use emv_kernel::{Outcome, Step, Transaction, TransactionParams};

use crate::card::{AnswerSource, ReplayCard};
use crate::transcript::Transcript;

/// Most commands a replay lets the kernel send. The kernel bounds itself
/// ([`emv_kernel::transaction::MAX_COMMANDS`] plus transport rounds); this is a second fence.
const MAX_STEPS: usize = 256;

/// One command of the run and its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayStep {
    /// The C-APDU the kernel sent.
    pub command: Vec<u8>,
    /// The R-APDU it got.
    pub response: Vec<u8>,
    /// Where the answer came from.
    pub source: AnswerSource,
}

impl ReplayStep {
    /// The status word of the answer.
    #[must_use]
    pub fn status_word(&self) -> u16 {
        match self.response.as_slice() {
            [.., sw1, sw2] => u16::from_be_bytes([*sw1, *sw2]),
            _ => 0,
        }
    }
}

/// A finished replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRun {
    /// The kernel's outcome.
    pub outcome: Outcome,
    /// Every command the kernel sent, with its answer, in order.
    pub steps: Vec<ReplayStep>,
}

impl ReplayRun {
    /// The commands the kernel sent, in order.
    pub fn commands(&self) -> impl Iterator<Item = &[u8]> {
        self.steps.iter().map(|step| step.command.as_slice())
    }
}

/// A replay that could not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The kernel sent a command the transcript has no answer for.
    #[error(
        "the transcript has no answer for command {position} of the run, {name} ({})",
        hex::encode_upper(command)
    )]
    MissingAnswer {
        /// The C-APDU.
        command: Vec<u8>,
        /// Its decoded name, e.g. `GENERATE AC (ARQC, CDA)`.
        name: String,
        /// Its position in the run (1-based).
        position: usize,
        /// The commands sent and answered before it.
        steps: Vec<ReplayStep>,
    },
    /// The kernel did not end within the step bound.
    #[error("the kernel did not end within {0} commands")]
    TooManySteps(usize),
}

impl ReplayError {
    /// A stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAnswer { .. } => "replay_missing_answer",
            Self::TooManySteps(_) => "replay_too_many_steps",
        }
    }
}

/// A readable name for a C-APDU: the instruction, and for the common EMV commands what they ask
/// (`SELECT PPSE`, `SELECT A0000000031010`, `READ RECORD SFI 2 record 3`,
/// `GENERATE AC (ARQC, CDA)`).
#[must_use]
pub fn command_name(command: &[u8]) -> String {
    let [_, instruction, p1, p2, ..] = command else {
        return "malformed command".to_owned();
    };
    let base = apdu::ins_name(*instruction);
    match *instruction {
        ins::SELECT => match apdu::Command::parse(command) {
            Ok(parsed) if parsed.data == PPSE_NAME => "SELECT PPSE".to_owned(),
            Ok(parsed) => format!("SELECT {}", hex::encode_upper(&parsed.data)),
            Err(_) => base.to_owned(),
        },
        ins::READ_RECORD => format!("{base} SFI {} record {p1}", p2 >> 3),
        ins::GENERATE_AC => {
            let kind = match apdu::CryptogramType::from_bits(*p1) {
                Some(apdu::CryptogramType::Aac) => "AAC",
                Some(apdu::CryptogramType::Tc) => "TC",
                Some(apdu::CryptogramType::Arqc) => "ARQC",
                None => "RFU",
            };
            if p1 & 0x10 != 0 {
                format!("{base} ({kind}, CDA)")
            } else {
                format!("{base} ({kind})")
            }
        }
        ins::GET_DATA => format!("{base} {p1:02X}{p2:02X}"),
        _ if base == "UNKNOWN" => format!("INS {instruction:02X}"),
        _ => base.to_owned(),
    }
}

/// Runs one transaction with `params` against the transcript.
///
/// # Errors
/// [`ReplayError::MissingAnswer`] when the kernel sends a command the transcript cannot answer.
pub fn replay(
    transcript: &Transcript,
    params: TransactionParams,
) -> Result<ReplayRun, ReplayError> {
    let mut card = ReplayCard::new(transcript);
    let (mut transaction, mut step) = Transaction::new(params);
    let mut steps = Vec::new();
    loop {
        match step {
            Step::Done(outcome) => return Ok(ReplayRun { outcome, steps }),
            Step::SendApdu(command) => {
                if steps.len() >= MAX_STEPS {
                    return Err(ReplayError::TooManySteps(MAX_STEPS));
                }
                let Some(answer) = card.transmit(&command) else {
                    return Err(ReplayError::MissingAnswer {
                        name: command_name(&command),
                        position: steps.len() + 1,
                        command,
                        steps,
                    });
                };
                step = transaction.resume(&answer.response);
                steps.push(ReplayStep {
                    command,
                    response: answer.response,
                    source: answer.source,
                });
            }
        }
    }
}
