//! The transaction state machine: Entry Point, then the selected kernel, driven by the host one
//! APDU at a time.
//!
//! ```text
//! let (mut transaction, mut step) = Transaction::new(params);
//! loop {
//!     match step {
//!         Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)?),
//!         Step::Done(outcome) => break outcome,
//!     }
//! }
//! ```
//!
//! Sources: EMV Contactless Book B 3.1 to 3.4 (pre-processing, combination selection, final
//! selection and the return to the candidate list), ISO/IEC 7816-4 5.3 and EMV Book 1 9.3 for the
//! transport of `61xx` (GET RESPONSE) and `6Cxx` (resend with the right Le), and the kernels in
//! [`crate::kernel`].
//!
//! The machine never panics on card data: a response that breaks the rules ends the transaction
//! with an [`Outcome`] that says where and why. The number of commands is bounded.

use alloc::vec::Vec;

use crate::ErrorCode;
use crate::apdu::{Command, Response, StatusKind};
use crate::entry_point::{self, Candidate, Kernel, Preprocessing};
use crate::kernel::c2::C2;
use crate::kernel::c3::C3;
use crate::kernel::{self, KernelData, KernelStep, TransactionParams};
use crate::outcome::{Outcome, OutcomeKind, Phase, Reason};
use crate::tlv::Tag;

/// Most commands one transaction may send (records included); a card that needs more is broken.
pub const MAX_COMMANDS: usize = 64;

/// Most GET RESPONSE / resend rounds for one command.
const MAX_TRANSPORT_ROUNDS: usize = 8;

/// What the host does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this C-APDU to the card and pass the R-APDU (data and status word) to
    /// [`Transaction::resume`].
    SendApdu(Vec<u8>),
    /// The transaction is over.
    Done(Outcome),
}

#[derive(Debug, Clone)]
enum KernelRun {
    C2(C2),
    C3(C3),
}

#[derive(Debug, Clone)]
enum State {
    SelectPpse,
    SelectApplication,
    Kernel(alloc::boxed::Box<KernelRun>),
    Done(Outcome),
}

/// One contactless transaction.
#[derive(Debug, Clone)]
pub struct Transaction {
    params: TransactionParams,
    preprocessing: Vec<Preprocessing>,
    candidates: Vec<Candidate>,
    state: State,
    last_command: Option<Command>,
    phase: Phase,
    partial_data: Vec<u8>,
    transport_rounds: usize,
    commands_sent: usize,
}

impl Transaction {
    /// Starts a transaction: pre-processing (Book B 3.1), then SELECT PPSE.
    ///
    /// Returns [`Step::Done`] at once when the parameters are invalid or every combination is
    /// over its contactless limit (Try Another Interface).
    #[must_use]
    pub fn new(params: TransactionParams) -> (Self, Step) {
        let preprocessing: Vec<Preprocessing> = params
            .config
            .aids
            .iter()
            .map(|config| entry_point::preprocess(config, params.amount))
            .collect();
        let mut transaction = Self {
            params,
            preprocessing,
            candidates: Vec::new(),
            state: State::SelectPpse,
            last_command: None,
            phase: Phase::SelectPpse,
            partial_data: Vec::new(),
            transport_rounds: 0,
            commands_sent: 0,
        };
        if kernel::amount_n12(transaction.params.amount).is_none()
            || kernel::amount_n12(transaction.params.amount_other).is_none()
        {
            let step = transaction.finish(Outcome::without_data(
                OutcomeKind::EndApplication,
                Reason::InvalidParameters,
            ));
            return (transaction, step);
        }
        if transaction
            .preprocessing
            .iter()
            .all(|result| result.not_allowed)
        {
            let step = transaction.finish(Outcome::without_data(
                OutcomeKind::TryAnotherInterface,
                Reason::ContactlessLimitExceeded,
            ));
            return (transaction, step);
        }
        let step = transaction.send(Command::select_ppse(), Phase::SelectPpse);
        (transaction, step)
    }

    /// The outcome, once the transaction is over.
    #[must_use]
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Done(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// Feeds the card's response to the last command (data followed by SW1 SW2).
    ///
    /// After [`Step::Done`], every call returns the same outcome again.
    pub fn resume(&mut self, rapdu: &[u8]) -> Step {
        if let State::Done(outcome) = &self.state {
            return Step::Done(outcome.clone());
        }
        let response = match Response::parse(rapdu) {
            Ok(response) => response,
            Err(error) => {
                return self.fail(Reason::MalformedResponse {
                    phase: self.phase,
                    error: error.code(),
                });
            }
        };
        // Transport-level status words (ISO/IEC 7816-4 5.3).
        match response.sw.kind() {
            StatusKind::BytesAvailable(available) => {
                self.partial_data.extend_from_slice(response.data);
                return self.transport(Command::get_response(available));
            }
            StatusKind::WrongLe(correct) => {
                let Some(last) = self.last_command.clone() else {
                    return self.fail(Reason::TooManyCommands);
                };
                return self.transport(last.with_le(correct));
            }
            _ => {}
        }
        let mut data = core::mem::take(&mut self.partial_data);
        data.extend_from_slice(response.data);
        self.transport_rounds = 0;
        let full = Response {
            data: &data,
            sw: response.sw,
        };
        match core::mem::replace(&mut self.state, State::SelectPpse) {
            State::SelectPpse => self.on_ppse(&full),
            State::SelectApplication => self.on_select(&full),
            State::Kernel(run) => self.on_kernel(run, &full),
            State::Done(outcome) => self.finish(outcome),
        }
    }

    fn transport(&mut self, command: Command) -> Step {
        self.transport_rounds += 1;
        if self.transport_rounds > MAX_TRANSPORT_ROUNDS {
            return self.fail(Reason::TooManyCommands);
        }
        let phase = self.phase;
        self.send_keep_state(command, phase)
    }

    /// Book B 3.3.2: the PPSE directory and the candidate list. Contactless Entry Point has no
    /// list-of-AIDs method (that is the contact interface's, Book 1 12.3.3): a SELECT PPSE that
    /// fails leaves no candidate, and the transaction ends here.
    fn on_ppse(&mut self, response: &Response<'_>) -> Step {
        if !response.sw.is_success() {
            return self.finish(Outcome::without_data(
                OutcomeKind::TryAnotherInterface,
                Reason::CardError {
                    phase: Phase::SelectPpse,
                    sw: response.sw,
                },
            ));
        }
        let entries = match entry_point::parse_ppse(response.data) {
            Ok(entries) => entries,
            Err(error) => {
                return self.finish(Outcome::without_data(
                    OutcomeKind::TryAnotherInterface,
                    Reason::MalformedResponse {
                        phase: Phase::SelectPpse,
                        error: error.code(),
                    },
                ));
            }
        };
        self.candidates =
            entry_point::build_candidates(&entries, &self.params.config.aids, &self.preprocessing);
        self.select_first_candidate()
    }

    /// Book B 3.4: SELECT the first candidate, or Try Another Interface when none is left.
    fn select_first_candidate(&mut self) -> Step {
        let Some(candidate) = self.candidates.first() else {
            return self.finish(Outcome::without_data(
                OutcomeKind::TryAnotherInterface,
                Reason::NoMutualApplication,
            ));
        };
        match Command::select_by_name(&candidate.adf_name, crate::apdu::Occurrence::First) {
            Ok(command) => {
                self.state = State::SelectApplication;
                self.send(command, Phase::SelectApplication)
            }
            Err(_) => self.select_next(),
        }
    }

    fn select_next(&mut self) -> Step {
        if !self.candidates.is_empty() {
            self.candidates.remove(0);
        }
        self.select_first_candidate()
    }

    fn on_select(&mut self, response: &Response<'_>) -> Step {
        let Some(candidate) = self.candidates.first().cloned() else {
            return self.fail(Reason::NoMutualApplication);
        };
        if !response.sw.is_success() {
            return self.select_next();
        }
        let Ok(fci) = entry_point::parse_adf_fci(response.data, &candidate.adf_name) else {
            return self.select_next();
        };
        let (Some(config), Some(pre)) = (
            self.params.config.aids.get(candidate.config_index),
            self.preprocessing.get(candidate.config_index),
        ) else {
            return self.fail(Reason::NoMutualApplication);
        };
        let Some(terminal) = kernel::terminal_data(&self.params, config, pre, &candidate.adf_name)
        else {
            return self.fail(Reason::InvalidParameters);
        };
        let mut data = KernelData {
            terminal,
            card: alloc::collections::BTreeMap::new(),
        };
        // FCI objects are card data the DOLs may ask for (e.g. language preference); the PDOL
        // itself is not.
        for (tag, value) in &fci.objects {
            if *tag != Tag::Pdol {
                data.card.entry(*tag).or_insert_with(|| value.clone());
            }
        }
        let (run, step) = match candidate.kernel {
            Kernel::C2 => {
                let (kernel, step) = C2::start(data, &candidate.adf_name, fci.pdol.as_deref(), pre);
                (KernelRun::C2(kernel), step)
            }
            Kernel::C3 => {
                let (kernel, step) = C3::start(data, &candidate.adf_name, fci.pdol.as_deref(), pre);
                (KernelRun::C3(kernel), step)
            }
        };
        self.state = State::Kernel(alloc::boxed::Box::new(run));
        self.kernel_step(step)
    }

    fn on_kernel(
        &mut self,
        mut run: alloc::boxed::Box<KernelRun>,
        response: &Response<'_>,
    ) -> Step {
        let Some(candidate) = self.candidates.first() else {
            return self.fail(Reason::NoMutualApplication);
        };
        let Some(config) = self.params.config.aids.get(candidate.config_index) else {
            return self.fail(Reason::NoMutualApplication);
        };
        let step = match run.as_mut() {
            KernelRun::C2(kernel) => kernel.resume(response, &self.params, config),
            KernelRun::C3(kernel) => kernel.resume(response, &self.params),
        };
        self.state = State::Kernel(run);
        self.kernel_step(step)
    }

    fn kernel_step(&mut self, step: KernelStep) -> Step {
        match step {
            KernelStep::Send(command, phase) => self.send_keep_state(command, phase),
            KernelStep::Done(outcome) => self.finish(outcome),
            KernelStep::SelectNext => self.select_next(),
        }
    }

    fn send(&mut self, command: Command, phase: Phase) -> Step {
        self.send_keep_state(command, phase)
    }

    fn send_keep_state(&mut self, command: Command, phase: Phase) -> Step {
        self.commands_sent += 1;
        if self.commands_sent > MAX_COMMANDS {
            return self.fail(Reason::TooManyCommands);
        }
        self.phase = phase;
        let bytes = command.to_bytes();
        self.last_command = Some(command);
        Step::SendApdu(bytes)
    }

    fn fail(&mut self, reason: Reason) -> Step {
        self.finish(Outcome::without_data(OutcomeKind::EndApplication, reason))
    }

    fn finish(&mut self, outcome: Outcome) -> Step {
        self.state = State::Done(outcome.clone());
        Step::Done(outcome)
    }
}
