//! The native path: `emv-kernel` compiled into the host, driven exactly as the `.wasm` drives it.

use emv_kernel::{ErrorCode, Step, Transaction};
use emv_kernel_wasm::message::{Output, SessionParams};
use emv_kernel_wasm::session::AbiError;

use crate::{CardSource, Exchange, HostError, Kernel, MAX_EXCHANGES, Transcript};

/// `emv-kernel` run directly (no sandbox): for hosts that trust their build, and the reference
/// of the conformance suite.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeKernel;

impl NativeKernel {
    /// The native kernel.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

impl Kernel for NativeKernel {
    fn name(&self) -> &'static str {
        "native"
    }

    fn run(
        &mut self,
        params: &SessionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError> {
        // The same refusal the `.wasm` gives for the same parameters.
        let params = params.to_transaction_params().map_err(|error| {
            let error = AbiError::ParamsInvalid(error.to_string());
            HostError::Rejected {
                code: error.code().to_owned(),
                message: error.to_string(),
            }
        })?;
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
                Step::Done(_) => {
                    let output = Output::from(&step);
                    let outcome_message = serde_json::to_vec(&output)
                        .map_err(|error| HostError::Protocol(error.to_string()))?;
                    let Output::Outcome { outcome } = output else {
                        return Err(HostError::Protocol("expected an outcome".to_owned()));
                    };
                    return Ok(Transcript {
                        outcome: *outcome,
                        outcome_message,
                        exchanges,
                        fuel_consumed: None,
                    });
                }
            }
        }
    }
}
