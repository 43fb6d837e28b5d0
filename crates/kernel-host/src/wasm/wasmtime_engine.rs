//! The kernel module in wasmtime (Cranelift): compiled to machine code once at load, then a
//! pre-linked instance per transaction, with fuel metering and a resource limiter per store.

use wasmtime::{
    Config, Engine, InstancePre, Linker, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc,
};

use super::{AbiInstance, Limits, check_imports};
use crate::HostError;

/// Largest table a kernel may grow to, in elements (its function table has a few hundred).
const MAX_TABLE_ELEMENTS: usize = 1 << 16;

/// A compiled, pre-linked module.
pub(super) struct Loaded {
    engine: Engine,
    pre: InstancePre<HostState>,
}

/// The store's limiter: one instance, one memory of at most `memory_bytes`, one table. A denied
/// memory growth is an error (a trap in the guest) and is remembered, so the host reports
/// [`HostError::MemoryLimit`] rather than a generic trap.
struct HostState {
    memory_bytes: usize,
    memory_denied: bool,
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_denied = true;
            return Err(wasmtime::Error::msg(
                "kernel memory would exceed the host's limit",
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

/// One instance and its typed ABI exports.
pub(super) struct Instance {
    store: Store<HostState>,
    memory: Memory,
    abi_version: TypedFunc<(), i32>,
    alloc: TypedFunc<i32, i32>,
    dealloc: TypedFunc<(i32, i32), ()>,
    kernel_configure: TypedFunc<(i32, i32), i32>,
    session_create: TypedFunc<(i32, i32), i32>,
    session_resume: TypedFunc<(i32, i32, i32), i32>,
    session_output_ptr: TypedFunc<i32, i32>,
    session_output_len: TypedFunc<i32, i32>,
    session_status: TypedFunc<i32, i32>,
    session_free: TypedFunc<i32, i32>,
    last_error_ptr: TypedFunc<(), i32>,
    last_error_len: TypedFunc<(), i32>,
}

/// Maps an error from a call into the module.
fn trap(store: &Store<HostState>, error: &wasmtime::Error) -> HostError {
    if store.data().memory_denied {
        return HostError::MemoryLimit;
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => HostError::FuelExhausted,
        _ => HostError::Trap(format!("{error:#}")),
    }
}

impl Loaded {
    /// Compiles the module, refuses one with imports, and pre-links it (no imports to resolve).
    pub(super) fn new(wasm: &[u8]) -> Result<Self, HostError> {
        let mut config = Config::new();
        // Fuel, not epochs: deterministic like wasmi's, and no timer thread. Compilation
        // happens here, once per kernel, never during a transaction.
        config.consume_fuel(true);
        let engine =
            Engine::new(&config).map_err(|error| HostError::Instantiation(format!("{error:#}")))?;
        let module = Module::new(&engine, wasm)
            .map_err(|error| HostError::InvalidModule(format!("{error:#}")))?;
        check_imports(
            module
                .imports()
                .map(|import| format!("{}.{}", import.module(), import.name()))
                .collect(),
        )?;
        let pre = Linker::<HostState>::new(&engine)
            .instantiate_pre(&module)
            .map_err(|error| HostError::Instantiation(format!("{error:#}")))?;
        Ok(Self { engine, pre })
    }

    /// A fresh store (memory limit, full fuel) and instance.
    pub(super) fn instantiate(&self, limits: Limits) -> Result<Instance, HostError> {
        let mut store = Store::new(
            &self.engine,
            HostState {
                memory_bytes: limits.memory_bytes,
                memory_denied: false,
            },
        );
        store.limiter(|state| state);
        store
            .set_fuel(limits.fuel_per_transaction)
            .map_err(|error| HostError::Instantiation(format!("{error:#}")))?;
        let instance =
            self.pre
                .instantiate(&mut store)
                .map_err(|error| match trap(&store, &error) {
                    HostError::Trap(message) => HostError::Instantiation(message),
                    other => other,
                })?;
        macro_rules! func {
            ($name:literal) => {
                instance
                    .get_typed_func(&mut store, $name)
                    .map_err(|_| HostError::MissingExport($name))?
            };
        }
        Ok(Instance {
            memory: instance
                .get_memory(&mut store, "memory")
                .ok_or(HostError::MissingExport("memory"))?,
            abi_version: func!("abi_version"),
            alloc: func!("alloc"),
            dealloc: func!("dealloc"),
            kernel_configure: func!("kernel_configure"),
            session_create: func!("session_create"),
            session_resume: func!("session_resume"),
            session_output_ptr: func!("session_output_ptr"),
            session_output_len: func!("session_output_len"),
            session_status: func!("session_status"),
            session_free: func!("session_free"),
            last_error_ptr: func!("last_error_ptr"),
            last_error_len: func!("last_error_len"),
            store,
        })
    }
}

/// Calls an export, mapping its errors.
fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    store: &mut Store<HostState>,
    func: &TypedFunc<P, R>,
    params: P,
) -> Result<R, HostError> {
    func.call(&mut *store, params)
        .map_err(|error| trap(store, &error))
}

impl AbiInstance for Instance {
    fn abi_version(&mut self) -> Result<i32, HostError> {
        call(&mut self.store, &self.abi_version, ())
    }

    fn alloc(&mut self, len: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.alloc, len)
    }

    fn dealloc(&mut self, ptr: i32, len: i32) -> Result<(), HostError> {
        call(&mut self.store, &self.dealloc, (ptr, len))
    }

    fn kernel_configure(&mut self, ptr: i32, len: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.kernel_configure, (ptr, len))
    }

    fn session_create(&mut self, ptr: i32, len: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.session_create, (ptr, len))
    }

    fn session_resume(&mut self, handle: i32, ptr: i32, len: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.session_resume, (handle, ptr, len))
    }

    fn session_output_ptr(&mut self, handle: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.session_output_ptr, handle)
    }

    fn session_output_len(&mut self, handle: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.session_output_len, handle)
    }

    fn session_status(&mut self, handle: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.session_status, handle)
    }

    fn session_free(&mut self, handle: i32) -> Result<i32, HostError> {
        call(&mut self.store, &self.session_free, handle)
    }

    fn last_error_ptr(&mut self) -> Result<i32, HostError> {
        call(&mut self.store, &self.last_error_ptr, ())
    }

    fn last_error_len(&mut self) -> Result<i32, HostError> {
        call(&mut self.store, &self.last_error_len, ())
    }

    fn memory(&self) -> &[u8] {
        self.memory.data(&self.store)
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) -> bool {
        self.memory.write(&mut self.store, offset, bytes).is_ok()
    }

    fn fuel_left(&self) -> Option<u64> {
        self.store.get_fuel().ok()
    }

    fn set_fuel(&mut self, fuel: u64) -> Result<(), HostError> {
        self.store
            .set_fuel(fuel)
            .map_err(|error| HostError::Instantiation(format!("{error:#}")))
    }
}
