//! Runs the EMV kernel for the server and the terminal: either the published kernel `.wasm`
//! (built by `emv-kernel-wasm`) in a sandbox, or `emv-kernel` compiled in natively, behind one
//! interface ([`Kernel`]), against any [`CardSource`].
//!
//! ```no_run
//! # fn demo(wasm_bytes: &[u8], params: &kernel_host::SessionParams) -> Result<(), kernel_host::HostError> {
//! use kernel_host::{Kernel, Limits, NativeKernel, WasmKernel};
//!
//! let mut wasm = WasmKernel::load(wasm_bytes, Limits::default())?; // checks imports and ABI version
//! let mut native = NativeKernel::new();
//! wasm.configure(&params.terminal)?; // once: AIDs, limits, CA keys
//! for _ in 0..3 {
//!     let mut card = emv_cards::Card::profile("visa-fdda").expect("profile");
//!     let transcript = wasm.transact(&params.transaction(), &mut card)?;
//!     println!("{} after {} commands", transcript.outcome.kind, transcript.exchanges.len());
//! }
//! # let mut card = emv_cards::Card::profile("visa-fdda").expect("profile");
//! # let _ = native.run(params, &mut card)?; // configure (when it changed) and transact
//! # Ok(()) }
//! ```
//!
//! Both paths take the ABI's [`SessionParams`] and give a [`Transcript`]: the [`Outcome`] (the
//! ABI's outcome message, deserialised; the native path converts `emv_kernel::Outcome` with the
//! same code the `.wasm` uses) and every C-APDU / R-APDU exchanged. [`conformance`] runs every
//! virtual card of `emv-cards` at amounts around each reader limit through both paths and
//! compares them; the server runs it in its sandbox before it publishes a kernel release.
//!
//! # Which engine, and what it costs
//! Two engines run the same `.wasm` under the same sandbox ([`EngineKind`], chosen at load with
//! [`WasmKernel::with_engine`]): wasmi 2 (a pure-Rust interpreter, always built in, the
//! default) and wasmtime 48 with Cranelift (cargo feature `wasmtime`, on by default). Both meter
//! fuel, cap memory, refuse imports and other ABI versions, and run transaction after
//! transaction in one configured instance (a failed instance is replaced); the sandbox tests
//! and the conformance suite run on both and must agree with the native kernel and with each
//! other, outcome and C-APDU sequence.
//!
//! Measured on this project's 2-core machine, shared with other builds (load average about 4):
//! - build: a clean debug build of this crate and everything under it took 4 min 15 s without
//!   the `wasmtime` feature and 8 min 06 s more to add it (Cranelift, wasmtime and their
//!   dependencies), about 12 min in all (`time cargo build -p kernel-host
//!   [--no-default-features]` in an empty target directory, then with the feature); the test
//!   binary with both engines ran its 21 tests in 121 s in a debug build (unoptimised Cranelift
//!   compiles the kernel slowly: each wasmtime load costs seconds in debug builds);
//! - speed: before this change a transaction with ODA took 26 to 29 ms through wasmi against 0.7
//!   to 1.0 ms natively, and most of that was the kernel's RSA exponentiation (a fixed window
//!   over 64 exponent bits, about 80 modular multiplications where exponent 3 needs 2). The
//!   kernel now squares and multiplies over the exponent's actual bits. After (`cargo bench -p
//!   kernel-host --bench transaction -- --warm-up-time 1 --measurement-time 2`, per card with
//!   ODA): native 0.39 to 0.56 ms, wasmtime 0.89 to 1.56 ms, wasmi 4.0 to 5.6 ms (7 to 13 times
//!   native, with the opt-level "s" kernel);
//! - speed with ABI version 1 (issue 3's target is the `.wasm` at most 3 times native): every
//!   transaction instantiated the module and parsed the whole reader configuration as JSON (CA
//!   keys with checksums: about 0.1 ms of guest work), so cards without ODA were 5 to 17.6 times
//!   native (no-supported-aid 0.097 ms against 5.5 µs);
//! - speed with ABI version 2 (configured once, JSON per message): `cargo bench -p kernel-host
//!   --bench ratio -- 300` (kernels interleaved round by round, median wall time per
//!   transaction) put every card at 1.6 to 2.8 times native in wasmtime except
//!   no-supported-aid, whose whole transaction is one SELECT PPSE: 9.4 µs against 1.9 µs
//!   (5.07). Profiling it (`perf` with wasmtime's perf map) showed marshalling, not the
//!   kernel: hex written with `{:02X}` per byte, serde's buffering of internally tagged
//!   enums on the host, the parameters and every command through JSON both ways, the CA keys
//!   copied into every session;
//! - speed now, ABI version 3: the parameters go in a binary form, a command comes out as
//!   its bytes, the outcome message is written directly (same bytes as serde; the native path
//!   uses the same writer) and read back by a reader of that exact layout, the CA key table is
//!   shared between clones of the configuration and one input buffer serves a whole instance.
//!   The same command on the shared 2-core machine (load average about 7, 600 rounds), native
//!   / wasmi / wasmtime in µs and wasmtime/native: visa-fdda 308 / 1714 / 436 (1.41), mc-cda
//!   294 / 1614 / 445 (1.51), visa-online-pin 40 / 227 / 56 (1.40), expired 295 / 1618 / 447
//!   (1.51), bad-signature 280 / 1157 / 374 (1.34), no-supported-aid 1.6 / 28.8 / 4.4 (2.75;
//!   2.48 and 2.55 in two other runs), malformed 18 / 130 / 28 (1.50), multi-app 306 / 1652 /
//!   473 (1.54); the criterion bench (`--bench transaction -- no-supported-aid`) gives 1.88 /
//!   46.4 / 4.54 µs there (2.41). Configuring once: native 3.8 µs, wasmtime 64 µs, wasmi 144
//!   µs;
//! - fuel, not wasmtime's epoch interruption: fuel is a hard bound counted per instruction, the
//!   same on both engines and on every machine (a runaway kernel stops after the same work, so
//!   tests of it are deterministic), and needs no timer thread ticking the engine. Epochs would
//!   save the metering (12 to 15% of guest time, measured with ABI version 1) but bound only
//!   wall time, which depends on the machine's load; with the configuration no longer parsed
//!   per transaction the metering is not what stands between any card and the target;
//! - loading: wasmi translates the whole kernel eagerly at load (about 19 ms) and a fresh
//!   instance costs about 0.6 ms; wasmtime compiles to machine code at load (once per kernel
//!   release: about 0.6 s for the 305 KB opt-level "s" kernel in a release build) and instantiates from a
//!   pre-linked `InstancePre`;
//! - determinism and limits: both count fuel per WebAssembly instruction, so a runaway kernel
//!   fails with [`HostError::FuelExhausted`] after the same work on every machine and never
//!   hangs a thread; the two engines count slightly differently, and one budget
//!   ([`Limits::default`]) fits both with a wide margin.
//!
//! Defaults: the **terminal** uses wasmi (the library default, [`EngineKind::default`]): no
//! executable memory is generated at run time (platforms and payment-terminal security reviews
//! that forbid JIT accept it), the host stays small and builds in minutes, and a terminal runs
//! one transaction at a time, well inside the tap budget. The **server** selects
//! [`EngineKind::Wasmtime`]: it runs many cloud sessions, compiles each kernel release once, and
//! machine code is many times faster than an interpreter on the RSA arithmetic of offline data
//! authentication. The native path remains the reference the conformance suite compares against.
//!
//! # What it deliberately does not do
//! No network, no key handling, no PIN: the host runs the kernel and returns its outcome; the
//! terminal encrypts card data and the server authorises. The kernel `.wasm` gets no imports,
//! so a kernel cannot reach anything outside its own memory.
//!
//! # Security
//! A kernel `.wasm` is treated as untrusted code: the module must have no imports, export the
//! ABI with the expected version, and stay within [`Limits`]; any failure is a typed
//! [`HostError`]. Verifying the release signature before loading is the caller's job (the
//! server's release manager, the terminal's updater). The outcome carries the clear PAN for the
//! caller to encrypt; `Debug` of [`Outcome`] and [`Transcript`] masks or omits cardholder data.

pub mod conformance;
mod native;
mod wasm;

use std::fmt;

pub use emv_kernel_wasm::ABI_VERSION;
pub use emv_kernel_wasm::message::{Outcome, SessionParams, TerminalParams, TransactionParams};
pub use native::NativeKernel;
pub use wasm::{EngineKind, Limits, WasmKernel};

/// Most C-APDUs one transaction may send through a host, whatever the kernel does (the kernel
/// itself stops at 64).
pub const MAX_EXCHANGES: usize = 256;

/// Where the kernel's commands go: a virtual card, a PC/SC reader, the phone's NFC.
pub trait CardSource {
    /// Sends a C-APDU and returns the card's R-APDU (data followed by SW1 SW2).
    ///
    /// # Errors
    /// A [`CardError`] when the card cannot answer (removed, reader failure).
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, CardError>;
}

/// The virtual test cards answer every command.
impl CardSource for emv_cards::Card {
    fn transmit(&mut self, capdu: &[u8]) -> Result<Vec<u8>, CardError> {
        Ok(Self::transmit(self, capdu))
    }
}

/// A card source failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The card left the field.
    #[error("card removed")]
    Removed,
    /// The reader or NFC link failed.
    #[error("card transport failed: {0}")]
    Transport(String),
}

/// Why a kernel could not be loaded or a transaction could not be run to an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The bytes are not a valid WebAssembly module.
    #[error("invalid kernel module: {0}")]
    InvalidModule(String),
    /// The module imports something; a kernel must be self-contained.
    #[error("kernel module has imports: {0:?}")]
    Imports(Vec<String>),
    /// An ABI export is missing or has the wrong type.
    #[error("kernel module lacks export `{0}` with the ABI's type")]
    MissingExport(&'static str),
    /// The module speaks another ABI version.
    #[error("kernel ABI version {found}, this host speaks {expected}")]
    AbiVersion {
        /// What the module reported.
        found: u32,
        /// [`ABI_VERSION`].
        expected: u32,
    },
    /// This build of the crate lacks the engine (e.g. `wasmtime` without the `wasmtime` feature).
    #[error("WebAssembly engine `{0}` is not built in")]
    EngineUnavailable(&'static str),
    /// Instantiation failed (e.g. its initial memory is over the limit).
    #[error("kernel instantiation failed: {0}")]
    Instantiation(String),
    /// The kernel used up its fuel: it ran away or is far slower than a kernel may be.
    #[error("kernel ran out of fuel")]
    FuelExhausted,
    /// The kernel tried to grow its memory past [`Limits::memory_bytes`].
    #[error("kernel exceeded its memory limit")]
    MemoryLimit,
    /// The kernel trapped (a bug in the kernel).
    #[error("kernel trapped: {0}")]
    Trap(String),
    /// The kernel refused a call, with the ABI's stable error code (`params_invalid`, ...).
    #[error("kernel refused the call: {code}: {message}")]
    Rejected {
        /// The ABI error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The kernel broke the ABI (pointer out of bounds, output that is not a v1 message).
    #[error("kernel broke the ABI: {0}")]
    Protocol(String),
    /// A transaction was started before the kernel was configured
    /// ([`Kernel::configure`]).
    #[error("the kernel has no reader configuration yet")]
    NotConfigured,
    /// The kernel sent more than [`MAX_EXCHANGES`] commands.
    #[error("kernel sent more than {MAX_EXCHANGES} commands")]
    TooManyExchanges,
    /// The card source failed.
    #[error(transparent)]
    Card(#[from] CardError),
}

impl HostError {
    /// A stable code for the error, e.g. `fuel_exhausted`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidModule(_) => "invalid_module",
            Self::Imports(_) => "module_has_imports",
            Self::MissingExport(_) => "missing_export",
            Self::AbiVersion { .. } => "abi_version",
            Self::EngineUnavailable(_) => "engine_unavailable",
            Self::Instantiation(_) => "instantiation",
            Self::FuelExhausted => "fuel_exhausted",
            Self::MemoryLimit => "memory_limit",
            Self::Trap(_) => "trap",
            Self::Rejected { .. } => "rejected",
            Self::Protocol(_) => "protocol",
            Self::NotConfigured => "not_configured",
            Self::TooManyExchanges => "too_many_exchanges",
            Self::Card(_) => "card",
        }
    }
}

/// One command and the card's answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The C-APDU the kernel sent.
    pub capdu: Vec<u8>,
    /// The R-APDU the card returned.
    pub rapdu: Vec<u8>,
}

/// Shows the command and only the status word and length of the answer: answers carry the PAN.
impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sw = self
            .rapdu
            .len()
            .checked_sub(2)
            .and_then(|start| self.rapdu.get(start..));
        write!(f, ">> ")?;
        for byte in &self.capdu {
            write!(f, "{byte:02X}")?;
        }
        write!(f, " << [{} bytes]", self.rapdu.len())?;
        if let Some(sw) = sw {
            write!(f, " {:02X}{:02X}", sw[0], sw[1])?;
        }
        Ok(())
    }
}

/// A transaction run to its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// The outcome.
    pub outcome: Outcome,
    /// The outcome message exactly as the ABI encodes it (JSON `{"type":"outcome",...}`).
    pub outcome_message: Vec<u8>,
    /// Every exchange with the card, in order.
    pub exchanges: Vec<Exchange>,
    /// Fuel the `.wasm` used (None on the native path).
    pub fuel_consumed: Option<u64>,
}

impl Transcript {
    /// The C-APDUs in order.
    pub fn commands(&self) -> impl Iterator<Item = &[u8]> {
        self.exchanges
            .iter()
            .map(|exchange| exchange.capdu.as_slice())
    }
}

/// An EMV kernel a host can run: the `.wasm` ([`WasmKernel`]) or the native one
/// ([`NativeKernel`]).
///
/// A kernel is configured once for the reader ([`Kernel::configure`]: AIDs, limits, CA keys,
/// validated and checksummed once) and then runs transaction after transaction
/// ([`Kernel::transact`]) from per-transaction values only. [`Kernel::run`] does both in one
/// call, configuring only when the configuration changed.
pub trait Kernel {
    /// `"native"`, or the engine of a `.wasm` kernel: `"wasmi"`, `"wasmtime"`.
    fn name(&self) -> &'static str;

    /// Sets the reader configuration for the following transactions.
    ///
    /// # Errors
    /// [`HostError::Rejected`] (`params_malformed`, `params_invalid`) for a configuration the
    /// kernel refuses, or, for a `.wasm`, what instantiating or calling it fails with.
    fn configure(&mut self, terminal: &TerminalParams) -> Result<(), HostError>;

    /// Runs one transaction against `card` to its outcome under the configuration.
    ///
    /// # Errors
    /// [`HostError::NotConfigured`] before a successful [`Kernel::configure`]; otherwise as
    /// [`Kernel::run`].
    fn transact(
        &mut self,
        params: &TransactionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError>;

    /// Runs one transaction against `card` to its outcome: [`Kernel::configure`] with
    /// `params.terminal` when it differs from the current configuration, then
    /// [`Kernel::transact`].
    ///
    /// # Errors
    /// A [`HostError`]: the kernel refused the parameters, broke its limits or the ABI, or the
    /// card failed. An outcome (even "end application") is not an error.
    fn run(
        &mut self,
        params: &SessionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError>;
}
