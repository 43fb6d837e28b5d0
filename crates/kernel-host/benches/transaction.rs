//! One full transaction against each virtual card, natively and through the kernel `.wasm` in
//! each engine of this build (wasmi; wasmtime with the `wasmtime` feature), fresh instance per
//! transaction, fuel metering on, at 9.99 USD: below the floor limit, so the cards that can
//! approve offline do, with their offline data authentication (fDDA, CDA). Card
//! personalisation is outside the measurement.
//!
//! `cargo bench -p kernel-host --bench transaction`. Targets (issue 3): native ≤ 1 ms per
//! transaction including ODA, `.wasm` ≤ 3× native.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use emv_cards::Card;
use kernel_host::conformance::{FLOOR_LIMIT, params, profiles};
use kernel_host::{EngineKind, Kernel, Limits, NativeKernel, WasmKernel};

#[path = "../tests/it/kernel_wasm.rs"]
mod kernel_wasm;

fn transaction(c: &mut Criterion) {
    let params = params(FLOOR_LIMIT - 1, 1);
    let mut kernels: Vec<Box<dyn Kernel>> = vec![Box::new(NativeKernel::new())];
    for &engine in EngineKind::available() {
        let wasm = WasmKernel::with_engine(engine, kernel_wasm::kernel_wasm(), Limits::default())
            .expect("the kernel .wasm loads");
        kernels.push(Box::new(wasm));
    }
    let mut group = c.benchmark_group("transaction");
    for profile in profiles() {
        for kernel in &mut kernels {
            let name = format!("{}/{profile}", kernel.name());
            group.bench_function(name, |b| {
                b.iter_batched(
                    || Card::profile(profile).expect("profile"),
                    |mut card| kernel.run(&params, &mut card).expect("an outcome"),
                    BatchSize::SmallInput,
                );
            });
        }
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

criterion_group!(benches, transaction, load);
criterion_main!(benches);
