//! The `.wasm` path: a kernel module in wasmi, one fresh instance per transaction, with a memory
//! limit and a fuel budget.

use std::fmt;

use emv_kernel_wasm::message::{Output, SessionParams};
use emv_kernel_wasm::session::{AbiError, ErrorMessage, STATUS_COMMAND, STATUS_OUTCOME};
use wasmi::{
    CompilationMode, Config, Engine, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TrapCode, TypedFunc,
};

use crate::{ABI_VERSION, CardSource, Exchange, HostError, Kernel, MAX_EXCHANGES, Transcript};

/// Resource limits of a kernel instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory, in bytes. Growing past it traps ([`HostError::MemoryLimit`]).
    pub memory_bytes: usize,
    /// Fuel for one whole transaction (instantiation, every call). Running out traps
    /// ([`HostError::FuelExhausted`]).
    pub fuel_per_transaction: u64,
}

impl Default for Limits {
    /// 16 MiB of memory (the kernel starts with about 1.1 MiB: 1 MiB stack plus data) and
    /// 200 million units of fuel, about 8 times what the costliest conformance transaction
    /// uses (about 25 million with fDDA or CDA), so a slower but honest kernel passes and a
    /// runaway one is stopped after about a quarter of a second.
    fn default() -> Self {
        Self {
            memory_bytes: 16 << 20,
            fuel_per_transaction: 200_000_000,
        }
    }
}

/// What the store holds for the host: the limiter.
struct HostState {
    limits: StoreLimits,
}

/// A loaded kernel module (compiled once; instantiated per transaction).
pub struct WasmKernel {
    engine: Engine,
    module: Module,
    limits: Limits,
}

impl fmt::Debug for WasmKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WasmKernel")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The ABI's exports, typed.
struct Exports {
    memory: Memory,
    abi_version: TypedFunc<(), i32>,
    alloc: TypedFunc<i32, i32>,
    dealloc: TypedFunc<(i32, i32), ()>,
    session_create: TypedFunc<(i32, i32), i32>,
    session_resume: TypedFunc<(i32, i32, i32), i32>,
    session_output_ptr: TypedFunc<i32, i32>,
    session_output_len: TypedFunc<i32, i32>,
    session_free: TypedFunc<i32, i32>,
    last_error_ptr: TypedFunc<(), i32>,
    last_error_len: TypedFunc<(), i32>,
}

/// One instance of the kernel.
struct Instance {
    store: Store<HostState>,
    exports: Exports,
}

fn trap(error: &wasmi::Error) -> HostError {
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => HostError::FuelExhausted,
        Some(TrapCode::GrowthOperationLimited) => HostError::MemoryLimit,
        _ => HostError::Trap(error.to_string()),
    }
}

impl WasmKernel {
    /// Compiles a kernel module and checks it: valid WebAssembly, no imports, the ABI exports
    /// with their types, and `abi_version() == ABI_VERSION`.
    ///
    /// # Errors
    /// [`HostError::InvalidModule`], [`HostError::Imports`], [`HostError::MissingExport`],
    /// [`HostError::AbiVersion`], or what instantiating it fails with.
    pub fn load(wasm: &[u8], limits: Limits) -> Result<Self, HostError> {
        let mut config = Config::default();
        config.consume_fuel(true);
        // Eager translation: compilation happens (and costs its time) at load, never during a
        // transaction, so the fuel a transaction uses depends only on the kernel and its inputs.
        config.compilation_mode(CompilationMode::Eager);
        let engine = Engine::new(&config);
        let module = Module::new(&engine, wasm)
            .map_err(|error| HostError::InvalidModule(error.to_string()))?;
        let imports: Vec<String> = module
            .imports()
            .map(|import| format!("{}.{}", import.module(), import.name()))
            .collect();
        if !imports.is_empty() {
            return Err(HostError::Imports(imports));
        }
        let kernel = Self {
            engine,
            module,
            limits,
        };
        let mut instance = kernel.instantiate()?;
        let found = instance
            .exports
            .abi_version
            .call(&mut instance.store, ())
            .map_err(|error| trap(&error))?;
        let found = u32::from_ne_bytes(found.to_ne_bytes());
        if found != ABI_VERSION {
            return Err(HostError::AbiVersion {
                found,
                expected: ABI_VERSION,
            });
        }
        Ok(kernel)
    }

    /// The limits every transaction runs under.
    #[must_use]
    pub const fn limits(&self) -> Limits {
        self.limits
    }

    fn instantiate(&self) -> Result<Instance, HostError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .memories(1)
            .tables(1)
            .instances(1)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, HostState { limits });
        store.limiter(|state| &mut state.limits);
        store
            .set_fuel(self.limits.fuel_per_transaction)
            .map_err(|error| HostError::Instantiation(error.to_string()))?;
        let instance = Linker::<HostState>::new(&self.engine)
            .instantiate_and_start(&mut store, &self.module)
            .map_err(|error| match trap(&error) {
                HostError::Trap(message) => HostError::Instantiation(message),
                other => other,
            })?;
        macro_rules! func {
            ($name:literal) => {
                instance
                    .get_typed_func(&store, $name)
                    .map_err(|_| HostError::MissingExport($name))?
            };
        }
        let exports = Exports {
            memory: instance
                .get_memory(&store, "memory")
                .ok_or(HostError::MissingExport("memory"))?,
            abi_version: func!("abi_version"),
            alloc: func!("alloc"),
            dealloc: func!("dealloc"),
            session_create: func!("session_create"),
            session_resume: func!("session_resume"),
            session_output_ptr: func!("session_output_ptr"),
            session_output_len: func!("session_output_len"),
            session_free: func!("session_free"),
            last_error_ptr: func!("last_error_ptr"),
            last_error_len: func!("last_error_len"),
        };
        Ok(Instance { store, exports })
    }
}

/// An `i32` from the module as an offset or length in its memory.
fn offset(value: i32) -> usize {
    // wasm32 pointers are unsigned 32-bit offsets carried in `i32`.
    u32::from_ne_bytes(value.to_ne_bytes()) as usize
}

impl Instance {
    /// Calls `f(ptr, len)` with `bytes` copied into a buffer from the module's `alloc`.
    fn with_input(
        &mut self,
        bytes: &[u8],
        f: impl FnOnce(&mut Self, i32, i32) -> Result<i32, wasmi::Error>,
    ) -> Result<i32, HostError> {
        let len = i32::try_from(bytes.len()).map_err(|_| HostError::MemoryLimit)?;
        let ptr = self
            .exports
            .alloc
            .call(&mut self.store, len)
            .map_err(|error| trap(&error))?;
        if ptr == 0 && len > 0 {
            return Err(HostError::Protocol("alloc returned null".to_owned()));
        }
        self.exports
            .memory
            .write(&mut self.store, offset(ptr), bytes)
            .map_err(|_| HostError::Protocol("alloc returned a buffer out of memory".to_owned()))?;
        let result = f(self, ptr, len).map_err(|error| trap(&error))?;
        self.exports
            .dealloc
            .call(&mut self.store, (ptr, len))
            .map_err(|error| trap(&error))?;
        Ok(result)
    }

    fn read(&self, ptr: i32, len: i32) -> Result<Vec<u8>, HostError> {
        let start = offset(ptr);
        let len =
            usize::try_from(len).map_err(|_| HostError::Protocol("negative length".to_owned()))?;
        self.exports
            .memory
            .data(&self.store)
            .get(start..start.saturating_add(len))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| HostError::Protocol("buffer out of memory bounds".to_owned()))
    }

    fn output(&mut self, handle: i32) -> Result<Vec<u8>, HostError> {
        let len = self
            .exports
            .session_output_len
            .call(&mut self.store, handle)
            .map_err(|error| trap(&error))?;
        if len < 0 {
            return Err(self.rejected(len));
        }
        let ptr = self
            .exports
            .session_output_ptr
            .call(&mut self.store, handle)
            .map_err(|error| trap(&error))?;
        self.read(ptr, len)
    }

    /// The kernel's own account of a negative status.
    fn rejected(&mut self, status: i32) -> HostError {
        let message = (|| {
            let len = self.exports.last_error_len.call(&mut self.store, ()).ok()?;
            let ptr = self.exports.last_error_ptr.call(&mut self.store, ()).ok()?;
            serde_json::from_slice::<ErrorMessage>(&self.read(ptr, len).ok()?).ok()
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

    fn fuel_consumed(&self, budget: u64) -> Option<u64> {
        self.store
            .get_fuel()
            .ok()
            .map(|left| budget.saturating_sub(left))
    }
}

impl Kernel for WasmKernel {
    fn name(&self) -> &'static str {
        "wasm"
    }

    fn run(
        &mut self,
        params: &SessionParams,
        card: &mut dyn CardSource,
    ) -> Result<Transcript, HostError> {
        let mut instance = self.instantiate()?;
        let params =
            serde_json::to_vec(params).map_err(|error| HostError::Protocol(error.to_string()))?;
        let create = instance.exports.session_create;
        let handle = instance.with_input(&params, |instance, ptr, len| {
            create.call(&mut instance.store, (ptr, len))
        })?;
        if handle <= 0 {
            return Err(instance.rejected(handle));
        }
        let resume = instance.exports.session_resume;
        let mut exchanges = Vec::new();
        let mut expected = None;
        loop {
            let message = instance.output(handle)?;
            let output: Output = serde_json::from_slice(&message)
                .map_err(|error| HostError::Protocol(format!("output message: {error}")))?;
            match output {
                Output::Command { capdu } => {
                    if expected.is_some_and(|status| status != STATUS_COMMAND) {
                        return Err(HostError::Protocol("status and output disagree".to_owned()));
                    }
                    if exchanges.len() >= MAX_EXCHANGES {
                        return Err(HostError::TooManyExchanges);
                    }
                    let rapdu = card.transmit(capdu.as_slice())?;
                    let status = instance.with_input(&rapdu, |instance, ptr, len| {
                        resume.call(&mut instance.store, (handle, ptr, len))
                    })?;
                    if status < 0 {
                        return Err(instance.rejected(status));
                    }
                    if status != STATUS_COMMAND && status != STATUS_OUTCOME {
                        return Err(HostError::Protocol(format!("unknown status {status}")));
                    }
                    expected = Some(status);
                    exchanges.push(Exchange {
                        capdu: capdu.0,
                        rapdu,
                    });
                }
                Output::Outcome { outcome } => {
                    if expected.is_some_and(|status| status != STATUS_OUTCOME) {
                        return Err(HostError::Protocol("status and output disagree".to_owned()));
                    }
                    let freed = instance
                        .exports
                        .session_free
                        .call(&mut instance.store, handle)
                        .map_err(|error| trap(&error))?;
                    if freed != 0 {
                        return Err(instance.rejected(freed));
                    }
                    return Ok(Transcript {
                        outcome: *outcome,
                        outcome_message: message,
                        exchanges,
                        fuel_consumed: instance.fuel_consumed(self.limits.fuel_per_transaction),
                    });
                }
            }
        }
    }
}
