//! The native path: `emv-kernel` compiled into the host, driven exactly as the `.wasm` drives it:
//! configured once (the same conversion and checks as `kernel_configure`), then one transaction
//! at a time from per-transaction values.

use emv_kernel::{ErrorCode, Step, TerminalConfig, Transaction};
use emv_kernel_wasm::message::{SessionParams, TerminalParams, TransactionParams};
use emv_kernel_wasm::session::AbiError;

use crate::{CardSource, Exchange, HostError, Kernel, MAX_EXCHANGES, Transcript};

/// `emv-kernel` run directly (no sandbox): for hosts that trust their build, and the reference
/// of the conformance suite.
#[derive(Debug, Clone, Default)]
pub struct NativeKernel {
    /// The configuration as given and as converted for the kernel.
    configured: Option<(TerminalParams, TerminalConfig)>,
}

/// The same refusal the `.wasm` gives for the same parameters.
fn invalid(error: &impl core::fmt::Display) -> HostError {
    let error = AbiError::ParamsInvalid(error.to_string());
    HostError::Rejected {
        code: error.code().to_owned(),
        message: error.to_string(),
    }
}

impl NativeKernel {
    /// The native kernel, not configured yet.
    #[must_use]
    pub const fn new() -> Self {
        Self { configured: None }
    }
}

impl Kernel for NativeKernel {
    fn name(&self) -> &'static str {
        "native"
    }

    fn configure(&mut self, terminal: &TerminalParams) -> Result<(), HostError> {
        self.configured = None;
        let config = terminal.to_config().map_err(|error| invalid(&error))?;
        self.configured = Some((terminal.clone(), config));
        Ok(())
    }

    fn transact(
        &mut self,
        params: &TransactionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError> {
        let (_, config) = self.configured.as_ref().ok_or(HostError::NotConfigured)?;
        let params = params
            .to_transaction_params(config.clone())
            .map_err(|error| invalid(&error))?;
        let (mut transaction, mut step) = Transaction::new(params);
        let mut exchanges = Vec::new();
        loop {
            match step {
                Step::SendApdu(capdu) => {
                    if exchanges.len() >= MAX_EXCHANGES {
                        return Err(HostError::TooManyExchanges);
                    }
                    let rapdu = card.transmit(&capdu)?;
                    step = transaction.resume(&rapdu);
                    exchanges.push(Exchange { capdu, rapdu });
                }
                Step::Done(outcome) => {
                    // The message as the `.wasm` writes it, with its code; the outcome as a host
                    // of the `.wasm` gets it from that message.
                    let outcome_message = emv_kernel_wasm::encode::outcome_message(&outcome);
                    return Ok(Transcript {
                        outcome: crate::Outcome::from(&outcome),
                        outcome_message,
                        exchanges,
                        fuel_consumed: None,
                    });
                }
            }
        }
    }

    fn run(
        &mut self,
        params: &SessionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError> {
        if self.configured.as_ref().map(|(terminal, _)| terminal) != Some(&params.terminal) {
            self.configure(&params.terminal)?;
        }
        self.transact(&params.transaction(), card)
    }
}
