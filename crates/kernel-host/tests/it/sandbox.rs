//! The sandbox against hand-written hostile modules (WAT): a kernel that loops, one that eats
//! memory, one that traps, one with imports, one with another ABI version, one without the ABI,
//! one that never ends the transaction, and one that fails its configuration. Every test runs on
//! every engine of this build.

use emv_cards::Card;
use kernel_host::conformance::params;
use kernel_host::{EngineKind, HostError, Kernel, Limits, WasmKernel};

/// A module with the ABI's exports; `create` is the body of `session_create`, `version` the body
/// of `abi_version`, `extra` more module fields (it may define `$configure`, the body of
/// `kernel_configure`, which otherwise accepts any configuration).
fn module(create: &str, version: &str, extra: &str) -> Vec<u8> {
    let configure = if extra.contains("$configure") {
        String::new()
    } else {
        r#"(func $configure (param i32 i32) (result i32) i32.const 0)"#.to_owned()
    };
    let text = format!(
        r#"(module
  {extra}
  {configure}
  (export "kernel_configure" (func $configure))
  (memory (export "memory") 1)
  (data (i32.const 16) "\00\a4\04\00\00")
  (func (export "abi_version") (result i32) {version})
  (func (export "alloc") (param i32) (result i32) i32.const 1024)
  (func (export "dealloc") (param i32 i32))
  (func (export "session_create") (param i32 i32) (result i32) {create})
  (func (export "session_resume") (param i32 i32 i32) (result i32) i32.const 1)
  (func (export "session_status") (param i32) (result i32) i32.const 1)
  (func (export "session_output_ptr") (param i32) (result i32) i32.const 16)
  (func (export "session_output_len") (param i32) (result i32) i32.const 5)
  (func (export "session_free") (param i32) (result i32) i32.const 0)
  (func (export "last_error_ptr") (result i32) i32.const 0)
  (func (export "last_error_len") (result i32) i32.const 0))"#
    );
    wat::parse_str(text).expect("valid WAT")
}

const LIMITS: Limits = Limits {
    memory_bytes: 1 << 20,
    fuel_per_transaction: 1_000_000,
};

fn load(engine: EngineKind, wasm: &[u8], limits: Limits) -> Result<WasmKernel, HostError> {
    let kernel = WasmKernel::with_engine(engine, wasm, limits)?;
    assert_eq!(kernel.engine(), engine);
    Ok(kernel)
}

fn run_on(engine: EngineKind, wasm: &[u8]) -> Result<kernel_host::Transcript, HostError> {
    let mut kernel = load(engine, wasm, LIMITS)?;
    let mut card = Card::profile("visa-fdda").unwrap();
    kernel.run(&params(1_000, 1), &mut card)
}

#[cfg(feature = "wasmtime")]
#[test]
fn both_engines_are_built_in() {
    assert_eq!(
        EngineKind::available(),
        [EngineKind::Wasmi, EngineKind::Wasmtime],
        "kernel-host is tested with its default features (wasmtime on)"
    );
}

#[test]
fn a_kernel_that_loops_runs_out_of_fuel() {
    for &engine in EngineKind::available() {
        let wasm = module("(loop $spin (br $spin)) i32.const 1", "i32.const 3", "");
        assert_eq!(run_on(engine, &wasm), Err(HostError::FuelExhausted));
    }
}

#[test]
fn a_kernel_that_loops_in_abi_version_is_refused_at_load() {
    for &engine in EngineKind::available() {
        let wasm = module("i32.const 1", "(loop $spin (br $spin)) i32.const 1", "");
        assert_eq!(
            load(engine, &wasm, LIMITS).unwrap_err(),
            HostError::FuelExhausted
        );
    }
}

#[test]
fn a_kernel_that_grows_memory_past_the_limit_fails() {
    for &engine in EngineKind::available() {
        // 64 pages = 4 MiB, over the 1 MiB limit.
        let wasm = module(
            "(drop (memory.grow (i32.const 64))) i32.const 1",
            "i32.const 3",
            "",
        );
        assert_eq!(run_on(engine, &wasm), Err(HostError::MemoryLimit));
        // Within the limit, growing is fine and the run goes on (to the chatty loop below).
        let wasm = module(
            "(drop (memory.grow (i32.const 2))) i32.const 1",
            "i32.const 3",
            "",
        );
        assert_eq!(run_on(engine, &wasm), Err(HostError::TooManyExchanges));
    }
}

#[test]
fn a_kernel_whose_initial_memory_is_over_the_limit_is_refused() {
    for &engine in EngineKind::available() {
        let text = r#"(module (memory (export "memory") 32))"#;
        let wasm = wat::parse_str(text).unwrap();
        let error = load(engine, &wasm, LIMITS).unwrap_err();
        assert!(
            matches!(error, HostError::Instantiation(_) | HostError::MemoryLimit),
            "{error:?}"
        );
    }
}

#[test]
fn a_kernel_that_traps_reports_a_trap() {
    for &engine in EngineKind::available() {
        let wasm = module("unreachable", "i32.const 3", "");
        assert!(matches!(run_on(engine, &wasm), Err(HostError::Trap(_))));
    }
}

#[test]
fn a_kernel_that_never_ends_is_stopped() {
    for &engine in EngineKind::available() {
        let wasm = module("i32.const 1", "i32.const 3", "");
        let mut kernel = load(engine, &wasm, Limits::default()).unwrap();
        let mut card = Card::profile("visa-fdda").unwrap();
        assert_eq!(
            kernel.run(&params(1_000, 1), &mut card),
            Err(HostError::TooManyExchanges)
        );
    }
}

#[test]
fn a_kernel_with_imports_is_refused() {
    for &engine in EngineKind::available() {
        let wasm = module(
            "i32.const 1",
            "i32.const 3",
            r#"(import "env" "clock" (func $clock (result i64)))"#,
        );
        assert_eq!(
            load(engine, &wasm, LIMITS).unwrap_err(),
            HostError::Imports(vec!["env.clock".to_owned()])
        );
    }
}

#[test]
fn a_kernel_with_another_abi_version_is_refused() {
    for &engine in EngineKind::available() {
        for (version, found) in [("i32.const 2", 2), ("i32.const 4", 4)] {
            let wasm = module("i32.const 1", version, "");
            assert_eq!(
                load(engine, &wasm, LIMITS).unwrap_err(),
                HostError::AbiVersion { found, expected: 3 }
            );
        }
    }
}

#[test]
fn a_module_without_the_abi_is_refused() {
    for &engine in EngineKind::available() {
        let wasm = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
        assert_eq!(
            load(engine, &wasm, LIMITS).unwrap_err(),
            HostError::MissingExport("abi_version")
        );
        assert!(matches!(
            load(engine, b"not wasm", LIMITS).unwrap_err(),
            HostError::InvalidModule(_)
        ));
    }
}

#[test]
fn a_kernel_that_writes_garbage_breaks_the_protocol() {
    for &engine in EngineKind::available() {
        // Status 2 (the outcome) with an output that holds the "type" key only: not a whole
        // message.
        let text = r#"(module
      (memory (export "memory") 1)
      (data (i32.const 16) "{\"type\":")
      (func (export "abi_version") (result i32) i32.const 3)
      (func (export "kernel_configure") (param i32 i32) (result i32) i32.const 0)
      (func (export "alloc") (param i32) (result i32) i32.const 1024)
      (func (export "dealloc") (param i32 i32))
      (func (export "session_create") (param i32 i32) (result i32) i32.const 1)
      (func (export "session_resume") (param i32 i32 i32) (result i32) i32.const 1)
      (func (export "session_status") (param i32) (result i32) i32.const 2)
      (func (export "session_output_ptr") (param i32) (result i32) i32.const 16)
      (func (export "session_output_len") (param i32) (result i32) i32.const 8)
      (func (export "session_free") (param i32) (result i32) i32.const 0)
      (func (export "last_error_ptr") (result i32) i32.const 0)
      (func (export "last_error_len") (result i32) i32.const 0))"#;
        let wasm = wat::parse_str(text).unwrap();
        assert!(matches!(run_on(engine, &wasm), Err(HostError::Protocol(_))));
        // An output pointer past the end of memory.
        let text = text.replace(
            "(func (export \"session_output_ptr\") (param i32) (result i32) i32.const 16)",
            "(func (export \"session_output_ptr\") (param i32) (result i32) i32.const 65535)",
        );
        let wasm = wat::parse_str(&text).unwrap();
        assert!(matches!(run_on(engine, &wasm), Err(HostError::Protocol(_))));
        // A status the ABI does not have.
        let text = text.replace(
            "(func (export \"session_status\") (param i32) (result i32) i32.const 2)",
            "(func (export \"session_status\") (param i32) (result i32) i32.const 7)",
        );
        let wasm = wat::parse_str(text).unwrap();
        assert!(matches!(run_on(engine, &wasm), Err(HostError::Protocol(_))));
    }
}

#[test]
fn a_kernel_that_loops_or_refuses_in_configure_runs_nothing() {
    for &engine in EngineKind::available() {
        let looping = module(
            "i32.const 1",
            "i32.const 3",
            "(func $configure (param i32 i32) (result i32) (loop $spin (br $spin)) i32.const 0)",
        );
        assert_eq!(run_on(engine, &looping), Err(HostError::FuelExhausted));
        let refusing = module(
            "i32.const 1",
            "i32.const 3",
            "(func $configure (param i32 i32) (result i32) i32.const -2)",
        );
        let mut kernel = load(engine, &refusing, LIMITS).unwrap();
        let error = kernel.configure(&params(1_000, 1).terminal).unwrap_err();
        assert_eq!(error.code(), "rejected", "{error:?}");
        // No configuration, no transaction.
        let mut card = Card::profile("visa-fdda").unwrap();
        assert_eq!(
            kernel.transact(&params(1_000, 1).transaction(), &mut card),
            Err(HostError::NotConfigured)
        );
        assert_eq!(kernel.configuration(), None);
    }
}

/// `session_create` traps in an instance's first transaction and succeeds (into an endless
/// exchange) afterwards: a kernel that reused the trapped instance would see the second
/// behaviour; the host drops it and runs the next transaction in a fresh, reconfigured one.
#[test]
fn an_instance_that_trapped_is_never_used_again() {
    for &engine in EngineKind::available() {
        let wasm = module(
            "global.get $used (global.set $used (i32.const 1)) (if (i32.eqz) (then unreachable)) i32.const 1",
            "i32.const 3",
            "(global $used (mut i32) (i32.const 0))",
        );
        let mut kernel = load(engine, &wasm, LIMITS).unwrap();
        let params = params(1_000, 1);
        for _ in 0..3 {
            let mut card = Card::profile("visa-fdda").unwrap();
            assert!(matches!(
                kernel.run(&params, &mut card),
                Err(HostError::Trap(_))
            ));
        }
        let instances = kernel.instantiations();
        // One to check the ABI version at load, then one per failed transaction.
        assert_eq!(instances, 4);
    }
}
