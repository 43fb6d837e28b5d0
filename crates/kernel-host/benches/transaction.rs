//! One full transaction against each virtual card, natively and through the kernel `.wasm` in
//! each engine of this build (wasmi; wasmtime with the `wasmtime` feature), at 9.99 USD: below
//! the floor limit, so the cards that can approve offline do, with their offline data
//! authentication (fDDA, CDA). Card personalisation is outside the measurement.
//!
//! Each kernel is configured once (reader configuration, AIDs, CA keys) and then measured per
//! transaction (`transaction/<kernel>/<card>`: `Kernel::transact` on the configured instance,
//! fuel metering on); the one-time costs are measured apart: `configure/<kernel>` (for a `.wasm`:
//! a fresh instance plus `kernel_configure`) and `load/<engine>` (compiling the module).
//!
//! `cargo bench -p kernel-host --bench transaction`. Targets (issue 3): native ≤ 1 ms per
//! transaction including ODA, `.wasm` ≤ 3× native. `benches/ratio.rs` prints the ratio per card.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use emv_cards::Card;
use kernel_host::conformance::{FLOOR_LIMIT, params, profiles};
use kernel_host::{EngineKind, Kernel, Limits, NativeKernel, WasmKernel};

#[path = "../tests/it/kernel_wasm.rs"]
mod kernel_wasm;

fn kernels() -> Vec<Box<dyn Kernel>> {
    let mut kernels: Vec<Box<dyn Kernel>> = vec![Box::new(NativeKernel::new())];
    for &engine in EngineKind::available() {
        let wasm = WasmKernel::with_engine(engine, kernel_wasm::kernel_wasm(), Limits::default())
            .expect("the kernel .wasm loads");
        kernels.push(Box::new(wasm));
    }
    kernels
}

fn transaction(c: &mut Criterion) {
    let params = params(FLOOR_LIMIT - 1, 1);
    let transaction = params.transaction();
    let mut kernels = kernels();
    for kernel in &mut kernels {
        kernel.configure(&params.terminal).expect("configured");
    }
    let mut group = c.benchmark_group("transaction");
    for profile in profiles() {
        for kernel in &mut kernels {
            let name = format!("{}/{profile}", kernel.name());
            group.bench_function(name, |b| {
                b.iter_batched(
                    || Card::profile(profile).expect("profile"),
                    |mut card| {
                        kernel
                            .transact(&transaction, &mut card)
                            .expect("an outcome")
                    },
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

fn configure(c: &mut Criterion) {
    let terminal = params(FLOOR_LIMIT - 1, 1).terminal;
    let mut group = c.benchmark_group("configure");
    for mut kernel in kernels() {
        let name = kernel.name();
        group.bench_function(name, |b| {
            b.iter(|| kernel.configure(&terminal).expect("configured"));
        });
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let bytes = kernel_wasm::kernel_wasm();
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    for &engine in EngineKind::available() {
        group.bench_function(engine.name(), |b| {
            b.iter(|| WasmKernel::with_engine(engine, bytes, Limits::default()).expect("loads"));
        });
    }
    group.finish();
}

criterion_group!(benches, transaction, configure, load);
criterion_main!(benches);
