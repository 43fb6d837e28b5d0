//! The kernel `.wasm` built from this workspace: self-contained, small, speaking ABI 3, configured
//! once and then running transaction after transaction in one instance, refusing bad parameters
//! as the native path does, deterministic.

use emv_cards::Card;
use emv_kernel::Tag;
use emv_kernel_wasm::message::Hex;
use kernel_host::conformance::params;
use kernel_host::{EngineKind, HostError, Kernel, Limits, NativeKernel, WasmKernel};

use crate::kernel_wasm::kernel_wasm;

/// `ABI.md`: the optimised kernel is at most 400 KB.
const SIZE_BUDGET: usize = 400 * 1024;

#[test]
fn the_kernel_module_has_no_imports_and_exports_the_abi() {
    let engine = wasmi::Engine::default();
    let module = wasmi::Module::new(&engine, kernel_wasm()).unwrap();
    let imports: Vec<String> = module
        .imports()
        .map(|import| format!("{}.{}", import.module(), import.name()))
        .collect();
    assert_eq!(imports, Vec::<String>::new());
    let mut exports: Vec<&str> = module.exports().map(|export| export.name()).collect();
    exports.sort_unstable();
    for name in [
        "abi_version",
        "alloc",
        "dealloc",
        "kernel_configure",
        "last_error_len",
        "last_error_ptr",
        "memory",
        "session_create",
        "session_free",
        "session_output_len",
        "session_output_ptr",
        "session_resume",
        "session_status",
    ] {
        assert!(
            exports.contains(&name),
            "missing export {name}: {exports:?}"
        );
    }
    for &engine in EngineKind::available() {
        assert!(WasmKernel::with_engine(engine, kernel_wasm(), Limits::default()).is_ok());
    }
}

#[test]
fn the_kernel_module_is_within_its_size_budget() {
    let size = kernel_wasm().len();
    assert!(size <= SIZE_BUDGET, "kernel .wasm is {size} bytes");
    // A kernel with the ODA and both flows cannot be tiny: guards against an empty build.
    assert!(size > 50 * 1024, "kernel .wasm is only {size} bytes");
}

#[test]
fn invalid_parameters_are_refused_alike_on_both_paths() {
    for &engine in EngineKind::available() {
        let mut wasm = WasmKernel::with_engine(engine, kernel_wasm(), Limits::default()).unwrap();
        let mut native = NativeKernel::new();
        let mut bad = params(1_000, 1);
        bad.currency_code = Hex(vec![0x08]);
        let mut card = Card::profile("visa-fdda").unwrap();
        let wasm_error = wasm.run(&bad, &mut card).unwrap_err();
        let native_error = native.run(&bad, &mut card).unwrap_err();
        assert_eq!(wasm_error, native_error);
        assert_eq!(
            wasm_error,
            HostError::Rejected {
                code: "params_invalid".to_owned(),
                message: "invalid parameters: `currency_code` has the wrong length".to_owned(),
            }
        );
        let mut bad = params(1_000, 1);
        bad.terminal.aids[0].kernel = 7;
        let error = wasm.run(&bad, &mut card).unwrap_err();
        assert_eq!(error, native.run(&bad, &mut card).unwrap_err());
        assert!(matches!(error, HostError::Rejected { ref code, .. } if code == "params_invalid"));
    }
}

#[test]
fn the_wasm_path_is_deterministic() {
    for &engine in EngineKind::available() {
        let mut kernel = WasmKernel::with_engine(engine, kernel_wasm(), Limits::default()).unwrap();
        let run = |kernel: &mut WasmKernel| {
            let mut card = Card::profile("mc-cda").unwrap();
            kernel.run(&params(1_500, 7), &mut card).unwrap()
        };
        let first = run(&mut kernel);
        // The second transaction runs in the same instance, after the first one's memory was
        // freed and reused: the same outcome and commands.
        let second = run(&mut kernel);
        assert_eq!(first.outcome_message, second.outcome_message);
        assert_eq!(first.exchanges, second.exchanges);
        // Same fuel too in a fresh kernel: nothing in the kernel depends on anything but its
        // inputs.
        let mut fresh = WasmKernel::with_engine(engine, kernel_wasm(), Limits::default()).unwrap();
        let again = run(&mut fresh);
        assert_eq!(first, again);
        assert!(first.fuel_consumed.is_some());
    }
}

#[test]
fn a_configured_instance_runs_many_transactions_and_matches_the_native_kernel() {
    let base = params(1_500, 1);
    for &engine in EngineKind::available() {
        let mut wasm = WasmKernel::with_engine(engine, kernel_wasm(), Limits::default()).unwrap();
        let mut native = NativeKernel::new();
        let mut card = Card::profile("visa-fdda").unwrap();
        // Nothing runs before a configuration.
        assert_eq!(
            wasm.transact(&base.transaction(), &mut card),
            Err(HostError::NotConfigured)
        );
        assert_eq!(
            native.transact(&base.transaction(), &mut card),
            Err(HostError::NotConfigured)
        );
        wasm.configure(&base.terminal).unwrap();
        native.configure(&base.terminal).unwrap();
        let after_configure = wasm.instantiations();
        for (case, profile) in ["visa-fdda", "mc-cda", "malformed", "visa-fdda"]
            .into_iter()
            .enumerate()
        {
            let mut transaction = base.transaction();
            transaction.unpredictable_number = Hex(vec![0x11, 0x22, 0x33, case as u8]);
            let mut card = Card::profile(profile).unwrap();
            let from_wasm = wasm.transact(&transaction, &mut card).unwrap();
            let mut card = Card::profile(profile).unwrap();
            let from_native = native.transact(&transaction, &mut card).unwrap();
            assert_eq!(from_wasm.outcome_message, from_native.outcome_message);
            assert_eq!(from_wasm.exchanges, from_native.exchanges);
            // A refused transaction leaves the instance in use.
            let mut bad = transaction.clone();
            bad.date = "2026-02-30".to_owned();
            let error = wasm.transact(&bad, &mut card).unwrap_err();
            assert_eq!(error, native.transact(&bad, &mut card).unwrap_err());
        }
        assert_eq!(wasm.instantiations(), after_configure, "{engine}");
        // The same configuration through `run` does not reconfigure; another one does.
        let mut card = Card::profile("visa-fdda").unwrap();
        wasm.run(&base, &mut card).unwrap();
        assert_eq!(wasm.instantiations(), after_configure);
        let mut other = base.clone();
        other.terminal.online_capable = false;
        let mut card = Card::profile("visa-fdda").unwrap();
        wasm.run(&other, &mut card).unwrap();
        assert_eq!(wasm.instantiations(), after_configure + 1);
        assert_eq!(wasm.configuration(), Some(&other.terminal));
    }
}

#[test]
fn a_transcript_does_not_print_the_pan() {
    let mut kernel = WasmKernel::load(kernel_wasm(), Limits::default()).unwrap();
    let mut card = Card::profile("visa-fdda").unwrap();
    let transcript = kernel.run(&params(1_500, 2), &mut card).unwrap();
    assert_eq!(
        transcript.outcome.get(Tag::ApplicationPan),
        Some(&[0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10][..])
    );
    assert_eq!(
        transcript.outcome.masked_pan().as_deref(),
        Some("476173******0010")
    );
    let shown = format!("{transcript:?}");
    assert!(!shown.contains("4761739001010010"), "{shown}");
    assert!(shown.contains("476173******0010"), "{shown}");
    // The outcome's TLV for field 55 holds the clear PAN for the terminal to encrypt.
    let tlv = transcript.outcome.data_tlv();
    assert!(
        tlv.windows(10)
            .any(|window| window == [0x5A, 0x08, 0x47, 0x61, 0x73, 0x90, 0x01, 0x01, 0x00, 0x10])
    );
}

#[test]
fn a_tight_fuel_budget_stops_the_real_kernel() {
    for &engine in EngineKind::available() {
        let limits = Limits {
            fuel_per_transaction: 10_000,
            ..Limits::default()
        };
        // Loading needs little fuel; a transaction needs far more than 10 000.
        let mut kernel = WasmKernel::with_engine(engine, kernel_wasm(), limits).unwrap();
        let mut card = Card::profile("visa-fdda").unwrap();
        assert_eq!(
            kernel.run(&params(1_500, 3), &mut card),
            Err(HostError::FuelExhausted)
        );
    }
}
