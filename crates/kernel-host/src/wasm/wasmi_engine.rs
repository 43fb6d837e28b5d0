//! The kernel module in wasmi (interpreter): eager compilation at load, fuel metering, a store
//! limiter per instance.

use wasmi::{
    CompilationMode, Config, Engine, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, TrapCode, TypedFunc,
};

use super::{AbiInstance, Limits, check_imports};
use crate::HostError;

/// A compiled module.
pub(super) struct Loaded {
    engine: Engine,
    module: Module,
}

/// What the store holds for the host: the limiter.
struct HostState {
    limits: StoreLimits,
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

fn trap(error: &wasmi::Error) -> HostError {
    match error.as_trap_code() {
        Some(TrapCode::OutOfFuel) => HostError::FuelExhausted,
        Some(TrapCode::GrowthOperationLimited) => HostError::MemoryLimit,
        _ => HostError::Trap(error.to_string()),
    }
}

impl Loaded {
    /// Compiles the module and refuses one with imports.
    pub(super) fn new(wasm: &[u8]) -> Result<Self, HostError> {
        let mut config = Config::default();
        config.consume_fuel(true);
        // Eager translation: compilation happens (and costs its time) at load, never during a
        // transaction, so the fuel a transaction uses depends only on the kernel and its inputs.
        config.compilation_mode(CompilationMode::Eager);
        let engine = Engine::new(&config);
        let module = Module::new(&engine, wasm)
            .map_err(|error| HostError::InvalidModule(error.to_string()))?;
        check_imports(
            module
                .imports()
                .map(|import| format!("{}.{}", import.module(), import.name()))
                .collect(),
        )?;
        Ok(Self { engine, module })
    }

    /// A fresh store (memory limit, full fuel) and instance.
    pub(super) fn instantiate(&self, limits: Limits) -> Result<Instance, HostError> {
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .memories(1)
            .tables(1)
            .instances(1)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState {
                limits: store_limits,
            },
        );
        store.limiter(|state| &mut state.limits);
        store
            .set_fuel(limits.fuel_per_transaction)
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
        Ok(Instance {
            memory: instance
                .get_memory(&store, "memory")
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

impl AbiInstance for Instance {
    fn abi_version(&mut self) -> Result<i32, HostError> {
        self.abi_version
            .call(&mut self.store, ())
            .map_err(|error| trap(&error))
    }

    fn alloc(&mut self, len: i32) -> Result<i32, HostError> {
        self.alloc
            .call(&mut self.store, len)
            .map_err(|error| trap(&error))
    }

    fn dealloc(&mut self, ptr: i32, len: i32) -> Result<(), HostError> {
        self.dealloc
            .call(&mut self.store, (ptr, len))
            .map_err(|error| trap(&error))
    }

    fn kernel_configure(&mut self, ptr: i32, len: i32) -> Result<i32, HostError> {
        self.kernel_configure
            .call(&mut self.store, (ptr, len))
            .map_err(|error| trap(&error))
    }

    fn session_create(&mut self, ptr: i32, len: i32) -> Result<i32, HostError> {
        self.session_create
            .call(&mut self.store, (ptr, len))
            .map_err(|error| trap(&error))
    }

    fn session_resume(&mut self, handle: i32, ptr: i32, len: i32) -> Result<i32, HostError> {
        self.session_resume
            .call(&mut self.store, (handle, ptr, len))
            .map_err(|error| trap(&error))
    }

    fn session_output_ptr(&mut self, handle: i32) -> Result<i32, HostError> {
        self.session_output_ptr
            .call(&mut self.store, handle)
            .map_err(|error| trap(&error))
    }

    fn session_output_len(&mut self, handle: i32) -> Result<i32, HostError> {
        self.session_output_len
            .call(&mut self.store, handle)
            .map_err(|error| trap(&error))
    }

    fn session_status(&mut self, handle: i32) -> Result<i32, HostError> {
        self.session_status
            .call(&mut self.store, handle)
            .map_err(|error| trap(&error))
    }

    fn session_free(&mut self, handle: i32) -> Result<i32, HostError> {
        self.session_free
            .call(&mut self.store, handle)
            .map_err(|error| trap(&error))
    }

    fn last_error_ptr(&mut self) -> Result<i32, HostError> {
        self.last_error_ptr
            .call(&mut self.store, ())
            .map_err(|error| trap(&error))
    }

    fn last_error_len(&mut self) -> Result<i32, HostError> {
        self.last_error_len
            .call(&mut self.store, ())
            .map_err(|error| trap(&error))
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
            .map_err(|error| HostError::Instantiation(error.to_string()))
    }
}
