//! One full transaction against each virtual card, natively and through the kernel `.wasm`
//! (wasmi, fresh instance per transaction, fuel metering on), at 9.99 USD: below the floor
//! limit, so the cards that can approve offline do, with their offline data authentication
//! (fDDA, CDA). Card personalisation is outside the measurement.
//!
//! `cargo bench -p kernel-host --bench transaction`. Targets (issue 3): native ≤ 1 ms per
//! transaction including ODA, `.wasm` ≤ 3× native.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use emv_cards::Card;
use kernel_host::conformance::{FLOOR_LIMIT, params, profiles};
use kernel_host::{Kernel, Limits, NativeKernel, WasmKernel};

#[path = "../tests/it/kernel_wasm.rs"]
mod kernel_wasm;

fn transaction(c: &mut Criterion) {
    let params = params(FLOOR_LIMIT - 1, 1);
    let mut native = NativeKernel::new();
    let mut wasm = WasmKernel::load(kernel_wasm::kernel_wasm(), Limits::default())
        .expect("the kernel .wasm loads");
    let mut group = c.benchmark_group("transaction");
    for profile in profiles() {
        for kernel in [&mut native as &mut dyn Kernel, &mut wasm] {
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
    c.bench_function("load/wasm-kernel", |b| {
        b.iter(|| WasmKernel::load(bytes, Limits::default()).expect("loads"));
    });
}

criterion_group!(benches, transaction, load);
criterion_main!(benches);
