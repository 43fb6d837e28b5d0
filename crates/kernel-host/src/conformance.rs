//! The kernel conformance suite: every virtual card of `emv-cards` at amounts around each reader
//! limit, run through a candidate kernel `.wasm` and through the native kernel; both must give
//! the same outcome (field for field and byte for byte as encoded) and the same C-APDU sequence.
//!
//! The server runs [`run`] in its sandbox before it publishes a kernel release; the tests of this
//! crate run it on the `.wasm` built from this workspace.
//!
//! The reader ([`params`]) has one Kernel 3 combination (Visa AID) and one Kernel 2 combination
//! (Mastercard AID) with the same limits: floor limit [`FLOOR_LIMIT`], CVM Required Limit
//! [`CVM_REQUIRED_LIMIT`] and contactless transaction limit [`TRANSACTION_LIMIT`] (US dollar
//! cents, the cards' currency). Each limit is tried one cent below, at and one cent above it.

use std::fmt;

use emv_cards::Card;
use emv_kernel_wasm::message::{AidParams, CaKeyParams, Hex, SessionParams, TerminalParams};

use crate::{EngineKind, HostError, Kernel, Limits, NativeKernel, Transcript, WasmKernel};

/// Reader Contactless Floor Limit of the conformance reader (10.00).
pub const FLOOR_LIMIT: u64 = 1_000;
/// Reader CVM Required Limit (50.00).
pub const CVM_REQUIRED_LIMIT: u64 = 5_000;
/// Reader Contactless Transaction Limit (100.00).
pub const TRANSACTION_LIMIT: u64 = 10_000;

/// The card profiles of the suite: every profile `emv-cards` has.
#[must_use]
pub fn profiles() -> Vec<&'static str> {
    emv_cards::profiles()
        .iter()
        .map(|profile| profile.name)
        .collect()
}

/// The amounts of the suite: one below, at and one above each limit.
#[must_use]
pub fn amounts() -> Vec<u64> {
    [FLOOR_LIMIT, CVM_REQUIRED_LIMIT, TRANSACTION_LIMIT]
        .iter()
        .flat_map(|limit| [limit - 1, *limit, limit + 1])
        .collect()
}

fn hex(bytes: &[u8]) -> Hex {
    Hex(bytes.to_vec())
}

fn aid(aid: &[u8], kernel: u8) -> AidParams {
    AidParams {
        aid: hex(aid),
        kernel,
        partial_match: None,
        transaction_limit: Some(TRANSACTION_LIMIT),
        floor_limit: Some(FLOOR_LIMIT),
        cvm_required_limit: Some(CVM_REQUIRED_LIMIT),
        ttq: None,
        application_version: None,
        tac_default: None,
        tac_denial: None,
        tac_online: None,
        c2: None,
    }
}

/// The conformance reader and transaction for `amount`: United States, US dollar, 2026-11-26
/// 12:00:00, an unpredictable number derived from `case` (so every case differs, and every run
/// of a case is the same), online capable, trusting the test CA keys of `emv-cards`.
#[must_use]
pub fn params(amount: u64, case: u32) -> SessionParams {
    let ca_keys = emv_cards::keys::test_ca_public_keys()
        .into_iter()
        .map(|key| CaKeyParams {
            rid: hex(&key.rid),
            index: hex(&[key.index]),
            checksum: Some(hex(&key.checksum())),
            modulus: Hex(key.modulus),
            exponent: Hex(key.exponent),
            expiry: None,
        })
        .collect();
    SessionParams {
        amount,
        amount_other: 0,
        currency_code: hex(&[0x08, 0x40]),
        currency_exponent: 2,
        transaction_type: hex(&[0x00]),
        date: "2026-11-26".to_owned(),
        time: hex(&[0x12, 0x00, 0x00]),
        unpredictable_number: hex(&(0x5B00_0000 ^ case).to_be_bytes()),
        terminal: TerminalParams {
            country_code: hex(&[0x08, 0x40]),
            terminal_type: hex(&[0x22]),
            capabilities: hex(&[0x00, 0x68, 0xC8]),
            additional_capabilities: hex(&[0x60, 0x00, 0xF0, 0xA0, 0x01]),
            ifd_serial_number: Some(hex(b"SUNBAY01")),
            merchant_category_code: Some(hex(&[0x54, 0x11])),
            merchant_identifier: Some(hex(b"MERCHANT0000001")),
            terminal_identification: Some(hex(b"TERM0001")),
            merchant_name_and_location: None,
            online_capable: true,
            aids: vec![
                aid(&[0xA0, 0x00, 0x00, 0x00, 0x03], 3),
                aid(&[0xA0, 0x00, 0x00, 0x00, 0x04], 2),
            ],
            ca_keys,
            revocations: Vec::new(),
        },
    }
}

/// The result of one card at one amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// The card profile.
    pub profile: &'static str,
    /// The amount, minor units.
    pub amount: u64,
    /// The native kernel's transcript, or its error.
    pub native: Result<Transcript, HostError>,
    /// The `.wasm`'s transcript, or its error.
    pub wasm: Result<Transcript, HostError>,
    /// What differs, if anything (`None`: identical).
    pub difference: Option<String>,
}

impl CaseReport {
    /// Whether both paths ended in the same outcome after the same commands.
    #[must_use]
    pub fn is_identical(&self) -> bool {
        self.difference.is_none()
    }
}

/// The result of the suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Why the `.wasm` could not be loaded, if it could not (then there are no cases).
    pub load_error: Option<HostError>,
    /// One entry per profile and amount.
    pub cases: Vec<CaseReport>,
}

impl Report {
    /// Whether the kernel loaded and every case was identical on both paths.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.load_error.is_none()
            && !self.cases.is_empty()
            && self.cases.iter().all(CaseReport::is_identical)
    }

    /// The cases that differ.
    pub fn failures(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases.iter().filter(|case| !case.is_identical())
    }
}

impl fmt::Display for Report {
    /// One line per case: profile, amount, outcome kind and reason, commands, verdict.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(error) = &self.load_error {
            return writeln!(f, "kernel not loaded: {error}");
        }
        for case in &self.cases {
            let summary = match &case.native {
                Ok(transcript) => format!(
                    "{} ({}) after {} commands",
                    transcript.outcome.kind,
                    transcript.outcome.reason.code,
                    transcript.exchanges.len()
                ),
                Err(error) => format!("error {}", error.code()),
            };
            let verdict = case.difference.as_deref().unwrap_or("identical");
            writeln!(
                f,
                "{:<18} {:>6}  {summary:<60} {verdict}",
                case.profile, case.amount
            )?;
        }
        let failures = self.failures().count();
        writeln!(
            f,
            "{} passed, {failures} failed",
            self.cases.len() - failures
        )
    }
}

/// Compares two runs of one case.
fn compare(
    native: &Result<Transcript, HostError>,
    wasm: &Result<Transcript, HostError>,
) -> Option<String> {
    match (native, wasm) {
        (Ok(native), Ok(wasm)) => {
            let native_commands: Vec<&[u8]> = native.commands().collect();
            let wasm_commands: Vec<&[u8]> = wasm.commands().collect();
            if native_commands != wasm_commands {
                let at = native_commands
                    .iter()
                    .zip(&wasm_commands)
                    .position(|(a, b)| a != b)
                    .unwrap_or(native_commands.len().min(wasm_commands.len()));
                Some(format!(
                    "C-APDU sequences differ at command {at} ({} native, {} wasm)",
                    native_commands.len(),
                    wasm_commands.len()
                ))
            } else if native.outcome != wasm.outcome {
                Some(format!(
                    "outcomes differ: native {} ({}), wasm {} ({})",
                    native.outcome.kind,
                    native.outcome.reason.code,
                    wasm.outcome.kind,
                    wasm.outcome.reason.code
                ))
            } else if native.outcome_message != wasm.outcome_message {
                Some("outcome messages differ in encoding".to_owned())
            } else {
                None
            }
        }
        (Err(native), Err(wasm)) if native == wasm => None,
        (native, wasm) => Some(format!(
            "native {}, wasm {}",
            native.as_ref().map_or_else(HostError::code, |_| "outcome"),
            wasm.as_ref().map_or_else(HostError::code, |_| "outcome"),
        )),
    }
}

/// Runs the suite with the `.wasm` in `kernel_wasm` under [`Limits::default`], in the default
/// engine ([`EngineKind::Wasmi`]).
#[must_use]
pub fn run(kernel_wasm: &[u8]) -> Report {
    run_on(EngineKind::default(), kernel_wasm)
}

/// Runs the suite with the `.wasm` in `kernel_wasm` under [`Limits::default`] in `engine`.
#[must_use]
pub fn run_on(engine: EngineKind, kernel_wasm: &[u8]) -> Report {
    match WasmKernel::with_engine(engine, kernel_wasm, Limits::default()) {
        Ok(mut kernel) => run_kernel(&mut kernel),
        Err(error) => Report {
            load_error: Some(error),
            cases: Vec::new(),
        },
    }
}

/// Runs the suite with any candidate kernel against the native kernel.
#[must_use]
pub fn run_kernel(candidate: &mut dyn Kernel) -> Report {
    let mut native = NativeKernel::new();
    let mut cases = Vec::new();
    let mut case_number = 0u32;
    for profile in profiles() {
        for amount in amounts() {
            case_number += 1;
            let params = params(amount, case_number);
            // A fresh card for each run: cards count transactions (ATC).
            let run = |kernel: &mut dyn Kernel| match Card::profile(profile) {
                Some(mut card) => kernel.run(&params, &mut card),
                None => Err(HostError::Card(crate::CardError::Transport(format!(
                    "no card profile {profile}"
                )))),
            };
            let native_run = run(&mut native);
            let wasm_run = run(candidate);
            let difference = compare(&native_run, &wasm_run);
            cases.push(CaseReport {
                profile,
                amount,
                native: native_run,
                wasm: wasm_run,
                difference,
            });
        }
    }
    Report {
        load_error: None,
        cases,
    }
}
