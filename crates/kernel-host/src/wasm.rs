//! The `.wasm` path: a kernel module in a WebAssembly engine (wasmi or, with the `wasmtime`
//! feature, wasmtime): one instance, configured once (`kernel_configure`), runs transaction after
//! transaction, under a memory limit and a fuel budget renewed for each transaction. An instance
//! that failed in any way the kernel did not report itself (trap, fuel, memory, a broken ABI, a
//! card that failed mid-session) is dropped, and the next transaction gets a fresh one,
//! configured again.
//!
//! The ABI driving (buffers in and out, the session loop, error mapping) is written once here
//! against [`AbiInstance`]; each engine module only instantiates the module and makes the calls.

mod wasmi_engine;
#[cfg(feature = "wasmtime")]
mod wasmtime_engine;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use emv_kernel::ErrorCode;
use emv_kernel_wasm::message::{Output, SessionParams, TerminalParams, TransactionParams};
use emv_kernel_wasm::session::{AbiError, ErrorMessage, STATUS_COMMAND, STATUS_OUTCOME};

use crate::{ABI_VERSION, CardSource, Exchange, HostError, Kernel, MAX_EXCHANGES, Transcript};

/// Resource limits of a kernel instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in bytes. Growing past it traps ([`HostError::MemoryLimit`]).
    pub memory_bytes: usize,
    /// Fuel for one whole transaction (every call from `session_create` to `session_free`), and
    /// separately for instantiating and configuring an instance. Running out traps
    /// ([`HostError::FuelExhausted`]). Each engine counts fuel its own way (both charge about
    /// one unit per WebAssembly instruction), so the same budget fits both.
    pub fuel_per_transaction: u64,
}

impl Default for Limits {
    /// 16 MiB of memory (the kernel starts with about 1.1 MiB: 1 MiB stack plus data) and
    /// 200 million units of fuel: the conformance suite asserts that every transaction uses
    /// under a quarter of it on both engines (ODA used about 25 million units under wasmi
    /// before the kernel's RSA exponentiation walked only the exponent's bits, far less now),
    /// so a slower but honest kernel passes and a runaway one is stopped within a fraction of
    /// a second.
    fn default() -> Self {
        Self {
            memory_bytes: 16 << 20,
            fuel_per_transaction: 200_000_000,
        }
    }
}

/// The WebAssembly engine a [`WasmKernel`] runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EngineKind {
    /// wasmi, a pure-Rust interpreter: small, fast to build and to load, no executable memory
    /// (fits phones and platforms that forbid JIT); the default.
    #[default]
    Wasmi,
    /// wasmtime with Cranelift, compiling to machine code at load: far faster transactions,
    /// a larger host (cargo feature `wasmtime`).
    Wasmtime,
}

impl EngineKind {
    /// The engines this build of the crate includes.
    #[must_use]
    pub fn available() -> &'static [Self] {
        #[cfg(feature = "wasmtime")]
        return &[Self::Wasmi, Self::Wasmtime];
        #[cfg(not(feature = "wasmtime"))]
        return &[Self::Wasmi];
    }

    /// `"wasmi"` or `"wasmtime"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Wasmi => "wasmi",
            Self::Wasmtime => "wasmtime",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One instance of a kernel module in some engine: the ABI's exports as typed calls. Every
/// engine error is already mapped to a [`HostError`] (fuel, memory limit, trap).
pub(crate) trait AbiInstance {
    fn abi_version(&mut self) -> Result<i32, HostError>;
    fn alloc(&mut self, len: i32) -> Result<i32, HostError>;
    fn dealloc(&mut self, ptr: i32, len: i32) -> Result<(), HostError>;
    fn kernel_configure(&mut self, ptr: i32, len: i32) -> Result<i32, HostError>;
    fn session_create(&mut self, ptr: i32, len: i32) -> Result<i32, HostError>;
    fn session_resume(&mut self, handle: i32, ptr: i32, len: i32) -> Result<i32, HostError>;
    fn session_output_ptr(&mut self, handle: i32) -> Result<i32, HostError>;
    fn session_output_len(&mut self, handle: i32) -> Result<i32, HostError>;
    fn session_status(&mut self, handle: i32) -> Result<i32, HostError>;
    fn session_free(&mut self, handle: i32) -> Result<i32, HostError>;
    fn last_error_ptr(&mut self) -> Result<i32, HostError>;
    fn last_error_len(&mut self) -> Result<i32, HostError>;
    /// The whole linear memory.
    fn memory(&self) -> &[u8];
    /// Copies `bytes` into linear memory at `offset`; `false` if it does not fit.
    fn write(&mut self, offset: usize, bytes: &[u8]) -> bool;
    /// Fuel left in the store.
    fn fuel_left(&self) -> Option<u64>;
    /// Sets the fuel left in the store.
    fn set_fuel(&mut self, fuel: u64) -> Result<(), HostError>;
}

/// An instance, boxed: `Send` so a kernel can move to a worker thread.
type BoxedInstance = Box<dyn AbiInstance + Send>;

/// An instance that `kernel_configure` accepted.
struct Configured {
    instance: BoxedInstance,
    /// A buffer from the module's `alloc` (address, capacity) that every per-transaction message
    /// is written into: the kernel keeps no pointer to its input past a call, so one buffer
    /// serves them all, and a transaction costs no `alloc`/`dealloc` calls.
    input: Option<(i32, i32)>,
}

/// Smallest input buffer: the transaction parameters and any short R-APDU (256 bytes of data
/// and the status word) fit.
const MIN_INPUT_BUFFER: i32 = 512;

impl Configured {
    /// Calls `f(ptr, len)` with `bytes` copied into the input buffer, first replaced by a larger
    /// one if they do not fit.
    fn call_with(
        &mut self,
        bytes: &[u8],
        f: impl FnOnce(&mut dyn AbiInstance, i32, i32) -> Result<i32, HostError>,
    ) -> Result<i32, HostError> {
        let len = i32::try_from(bytes.len()).map_err(|_| HostError::MemoryLimit)?;
        let instance = self.instance.as_mut();
        let ptr = match self.input {
            Some((ptr, capacity)) if capacity >= len => ptr,
            small => {
                if let Some((ptr, capacity)) = small {
                    self.input = None;
                    instance.dealloc(ptr, capacity)?;
                }
                let capacity = len.max(MIN_INPUT_BUFFER);
                let ptr = instance.alloc(capacity)?;
                if ptr == 0 {
                    return Err(HostError::Protocol("alloc returned null".to_owned()));
                }
                self.input = Some((ptr, capacity));
                ptr
            }
        };
        if !instance.write(offset(ptr), bytes) {
            return Err(HostError::Protocol(
                "alloc returned a buffer out of memory".to_owned(),
            ));
        }
        f(instance, ptr, len)
    }
}

/// A compiled module in its engine.
enum Loaded {
    Wasmi(wasmi_engine::Loaded),
    #[cfg(feature = "wasmtime")]
    Wasmtime(wasmtime_engine::Loaded),
}

/// A loaded kernel module (compiled once), with the reader configuration it runs under and the
/// configured instance that runs the transactions.
pub struct WasmKernel {
    loaded: Loaded,
    limits: Limits,
    /// The configuration of [`WasmKernel::configure`], kept to configure a fresh instance after
    /// one was dropped.
    terminal: Option<TerminalParams>,
    /// The configured instance, if one is alive.
    configured: Option<Configured>,
    /// Instances created so far.
    instantiations: AtomicU64,
}

impl fmt::Debug for WasmKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmKernel")
            .field("engine", &self.engine())
            .field("limits", &self.limits)
            .field("configured", &self.terminal.is_some())
            .finish_non_exhaustive()
    }
}

/// Imports as `module.name`; a kernel must have none.
pub(crate) fn check_imports(imports: Vec<String>) -> Result<(), HostError> {
    if imports.is_empty() {
        Ok(())
    } else {
        Err(HostError::Imports(imports))
    }
}

impl WasmKernel {
    /// [`WasmKernel::with_engine`] with the default engine ([`EngineKind::Wasmi`]).
    ///
    /// # Errors
    /// As [`WasmKernel::with_engine`].
    pub fn load(wasm: &[u8], limits: Limits) -> Result<Self, HostError> {
        Self::with_engine(EngineKind::default(), wasm, limits)
    }

    /// Compiles a kernel module in `engine` and checks it: valid WebAssembly, no imports, the
    /// ABI exports with their types, and `abi_version() == ABI_VERSION` (called in a first
    /// instance under `limits`).
    ///
    /// # Errors
    /// [`HostError::EngineUnavailable`] if this build lacks the engine,
    /// [`HostError::InvalidModule`], [`HostError::Imports`], [`HostError::MissingExport`],
    /// [`HostError::AbiVersion`], or what instantiating it fails with.
    pub fn with_engine(engine: EngineKind, wasm: &[u8], limits: Limits) -> Result<Self, HostError> {
        let loaded = match engine {
            EngineKind::Wasmi => Loaded::Wasmi(wasmi_engine::Loaded::new(wasm)?),
            #[cfg(feature = "wasmtime")]
            EngineKind::Wasmtime => Loaded::Wasmtime(wasmtime_engine::Loaded::new(wasm)?),
            #[cfg(not(feature = "wasmtime"))]
            EngineKind::Wasmtime => return Err(HostError::EngineUnavailable(engine.name())),
        };
        let kernel = Self {
            loaded,
            limits,
            terminal: None,
            configured: None,
            instantiations: AtomicU64::new(0),
        };
        let mut instance = kernel.instantiate()?;
        let found = instance.abi_version()?;
        let found = u32::from_ne_bytes(found.to_ne_bytes());
        if found != ABI_VERSION {
            return Err(HostError::AbiVersion {
                found,
                expected: ABI_VERSION,
            });
        }
        Ok(kernel)
    }

    /// The engine the module runs in.
    #[must_use]
    pub const fn engine(&self) -> EngineKind {
        match self.loaded {
            Loaded::Wasmi(_) => EngineKind::Wasmi,
            #[cfg(feature = "wasmtime")]
            Loaded::Wasmtime(_) => EngineKind::Wasmtime,
        }
    }

    /// The limits every transaction runs under.
    #[must_use]
    pub const fn limits(&self) -> Limits {
        self.limits
    }

    /// How many instances this kernel has created: one at load (to check the ABI version), one
    /// per [`WasmKernel::configure`], and one each time a failed instance was replaced.
    #[must_use]
    pub fn instantiations(&self) -> u64 {
        self.instantiations.load(Ordering::Relaxed)
    }

    /// A fresh instance with its own store, memory limit and full fuel budget.
    fn instantiate(&self) -> Result<BoxedInstance, HostError> {
        self.instantiations.fetch_add(1, Ordering::Relaxed);
        Ok(match &self.loaded {
            Loaded::Wasmi(loaded) => Box::new(loaded.instantiate(self.limits)?),
            #[cfg(feature = "wasmtime")]
            Loaded::Wasmtime(loaded) => Box::new(loaded.instantiate(self.limits)?),
        })
    }
}

/// An `i32` from the module as an offset or length in its memory.
fn offset(value: i32) -> usize {
    // wasm32 pointers are unsigned 32-bit offsets carried in `i32`.
    u32::from_ne_bytes(value.to_ne_bytes()) as usize
}

/// Calls `f(ptr, len)` with `bytes` copied into a buffer from the module's `alloc`.
fn with_input(
    instance: &mut dyn AbiInstance,
    bytes: &[u8],
    f: impl FnOnce(&mut dyn AbiInstance, i32, i32) -> Result<i32, HostError>,
) -> Result<i32, HostError> {
    let len = i32::try_from(bytes.len()).map_err(|_| HostError::MemoryLimit)?;
    let ptr = instance.alloc(len)?;
    if ptr == 0 && len > 0 {
        return Err(HostError::Protocol("alloc returned null".to_owned()));
    }
    if !instance.write(offset(ptr), bytes) {
        return Err(HostError::Protocol(
            "alloc returned a buffer out of memory".to_owned(),
        ));
    }
    let result = f(instance, ptr, len)?;
    instance.dealloc(ptr, len)?;
    Ok(result)
}

fn read(instance: &dyn AbiInstance, ptr: i32, len: i32) -> Result<Vec<u8>, HostError> {
    let start = offset(ptr);
    let len =
        usize::try_from(len).map_err(|_| HostError::Protocol("negative length".to_owned()))?;
    instance
        .memory()
        .get(start..start.saturating_add(len))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| HostError::Protocol("buffer out of memory bounds".to_owned()))
}

fn output(instance: &mut dyn AbiInstance, handle: i32) -> Result<Vec<u8>, HostError> {
    let len = instance.session_output_len(handle)?;
    if len < 0 {
        return Err(rejected(instance, len));
    }
    let ptr = instance.session_output_ptr(handle)?;
    read(instance, ptr, len)
}

/// The kernel's own account of a negative status.
fn rejected(instance: &mut dyn AbiInstance, status: i32) -> HostError {
    let message = (|| {
        let len = instance.last_error_len().ok()?;
        let ptr = instance.last_error_ptr().ok()?;
        serde_json::from_slice::<ErrorMessage>(&read(instance, ptr, len).ok()?).ok()
    })();
    let code = AbiError::code_for_status(status).unwrap_or("unknown_status");
    match message {
        Some(message) if message.code == code => HostError::Rejected {
            code: message.code,
            message: message.message,
        },
        _ => HostError::Rejected {
            code: code.to_owned(),
            message: format!("status {status}"),
        },
    }
}

impl WasmKernel {
    /// Configures the kernel for the reader: a fresh instance is created and given `terminal`
    /// through `kernel_configure`, which checks every field and CA key (checksums included)
    /// once; every later [`WasmKernel::transact`] runs in that instance. Instantiation and
    /// configuration run under their own full fuel budget.
    ///
    /// # Errors
    /// [`HostError::Rejected`] (`params_malformed`, `params_invalid`) when the kernel refuses the
    /// configuration (the previous one, if any, is forgotten too), or what instantiating or
    /// calling the instance fails with.
    pub fn configure(&mut self, terminal: &TerminalParams) -> Result<(), HostError> {
        self.configured = None;
        self.terminal = None;
        let configured = self.configured_instance(terminal)?;
        self.configured = Some(configured);
        self.terminal = Some(terminal.clone());
        Ok(())
    }

    /// The configuration of the last successful [`WasmKernel::configure`].
    #[must_use]
    pub const fn configuration(&self) -> Option<&TerminalParams> {
        self.terminal.as_ref()
    }

    fn configured_instance(&self, terminal: &TerminalParams) -> Result<Configured, HostError> {
        let mut instance = self.instantiate()?;
        let message =
            serde_json::to_vec(terminal).map_err(|error| HostError::Protocol(error.to_string()))?;
        let status = with_input(instance.as_mut(), &message, |instance, ptr, len| {
            instance.kernel_configure(ptr, len)
        })?;
        if status != 0 {
            return Err(rejected(instance.as_mut(), status));
        }
        Ok(Configured {
            instance,
            input: None,
        })
    }

    /// Runs one transaction on the configured instance, with a full fuel budget
    /// ([`Limits::fuel_per_transaction`]). A dropped instance (see the module doc) is replaced
    /// by a fresh one configured again, first.
    ///
    /// # Errors
    /// [`HostError::NotConfigured`] before a successful [`WasmKernel::configure`]; otherwise as
    /// [`Kernel::run`].
    pub fn transact(
        &mut self,
        params: &TransactionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError> {
        let mut configured = match self.configured.take() {
            Some(configured) => configured,
            None => {
                let terminal = self.terminal.as_ref().ok_or(HostError::NotConfigured)?;
                self.configured_instance(terminal)?
            }
        };
        let budget = self.limits.fuel_per_transaction;
        configured.instance.set_fuel(budget)?;
        // The binary form: no JSON to write here or to parse in the kernel. A field too long for
        // it is refused as the kernel (and the native path) refuses a field of the wrong length.
        let message = params.to_binary().map_err(|error| {
            let error = AbiError::ParamsInvalid(error.to_string());
            HostError::Rejected {
                code: error.code().to_owned(),
                message: error.to_string(),
            }
        })?;
        let handle = configured.call_with(&message, |instance, ptr, len| {
            instance.session_create(ptr, len)
        })?;
        if handle <= 0 {
            // The kernel refused the parameters and opened no session: the instance is sound.
            let error = rejected(configured.instance.as_mut(), handle);
            self.configured = Some(configured);
            return Err(error);
        }
        let result = session(&mut configured, handle, card);
        if let Ok(mut transcript) = result {
            transcript.fuel_consumed = configured
                .instance
                .fuel_left()
                .map(|left| budget.saturating_sub(left));
            // Only an instance whose session ended cleanly runs the next transaction.
            self.configured = Some(configured);
            return Ok(transcript);
        }
        result
    }
}

/// Drives an open session to its outcome and frees it. The status says what each output is:
/// a C-APDU, sent as it is, or the outcome's JSON.
fn session(
    configured: &mut Configured,
    handle: i32,
    card: &mut dyn CardSource,
) -> Result<Transcript, HostError> {
    let mut exchanges = Vec::new();
    let mut status = configured.instance.session_status(handle)?;
    loop {
        match status {
            STATUS_COMMAND => {
                if exchanges.len() >= MAX_EXCHANGES {
                    return Err(HostError::TooManyExchanges);
                }
                let message = output(configured.instance.as_mut(), handle)?;
                let rapdu = card.transmit(&message)?;
                status = configured.call_with(&rapdu, |instance, ptr, len| {
                    instance.session_resume(handle, ptr, len)
                })?;
                exchanges.push(Exchange {
                    capdu: message,
                    rapdu,
                });
            }
            STATUS_OUTCOME => {
                let message = output(configured.instance.as_mut(), handle)?;
                let outcome = match emv_kernel_wasm::decode::outcome_message(&message) {
                    Some(outcome) => outcome,
                    None => outcome_by_serde(&message)?,
                };
                let instance = configured.instance.as_mut();
                let freed = instance.session_free(handle)?;
                if freed != 0 {
                    return Err(rejected(instance, freed));
                }
                return Ok(Transcript {
                    outcome: *outcome,
                    outcome_message: message,
                    exchanges,
                    fuel_consumed: None,
                });
            }
            status if status < 0 => return Err(rejected(configured.instance.as_mut(), status)),
            status => return Err(HostError::Protocol(format!("unknown status {status}"))),
        }
    }
}

/// An outcome message in another layout than the kernel's own (`emv_kernel_wasm::decode`):
/// any JSON of the same shape.
fn outcome_by_serde(message: &[u8]) -> Result<Box<crate::Outcome>, HostError> {
    match serde_json::from_slice(message) {
        Ok(Output::Outcome { outcome }) => Ok(outcome),
        Ok(Output::Command { .. }) => Err(HostError::Protocol(
            "status 2 with an output that is not an outcome".to_owned(),
        )),
        Err(error) => Err(HostError::Protocol(format!("outcome message: {error}"))),
    }
}

impl Kernel for WasmKernel {
    fn name(&self) -> &'static str {
        self.engine().name()
    }

    /// [`WasmKernel::configure`] with `params.terminal` unless the kernel already runs under
    /// that configuration, then [`WasmKernel::transact`].
    fn run(
        &mut self,
        params: &SessionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError> {
        if self.terminal.as_ref() != Some(&params.terminal) {
            self.configure(&params.terminal)?;
        }
        self.transact(&params.transaction(), card)
    }

    fn configure(&mut self, terminal: &TerminalParams) -> Result<(), HostError> {
        Self::configure(self, terminal)
    }

    fn transact(
        &mut self,
        params: &TransactionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError> {
        Self::transact(self, params, card)
    }
}
