//! The `.wasm`-to-native ratio per virtual card, the figure issue 3 sets a target for (at most
//! 3×): one transaction per card on a configured kernel (as `benches/transaction.rs` measures
//! it), the kernels interleaved round by round so that a shared, loaded machine slows all of
//! them alike, and the median of each kernel's per-transaction wall time, so a round in which
//! the thread was preempted does not count. Also prints the one-time cost of configuring
//! (for a `.wasm`: a fresh instance plus `kernel_configure`).
//!
//! `cargo bench -p kernel-host --bench ratio` (`-- ROUNDS` to change the 400 rounds per card;
//! card profile names after it to measure only those, e.g. for a profiler).

use std::hint::black_box;
use std::time::{Duration, Instant};

use emv_cards::Card;
use kernel_host::conformance::{FLOOR_LIMIT, params, profiles};
use kernel_host::{EngineKind, Kernel, Limits, NativeKernel, WasmKernel};

#[path = "../tests/it/kernel_wasm.rs"]
mod kernel_wasm;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(400);
    // cargo bench passes `--bench`; anything else that is not a number names a card.
    let only: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|arg| !arg.starts_with('-') && arg.parse::<usize>().is_err())
        .collect();
    let params = params(FLOOR_LIMIT - 1, 1);
    let transaction = params.transaction();
    let mut kernels: Vec<Box<dyn Kernel>> = vec![Box::new(NativeKernel::new())];
    for &engine in EngineKind::available() {
        let wasm = WasmKernel::with_engine(engine, kernel_wasm::kernel_wasm(), Limits::default())
            .expect("the kernel .wasm loads");
        kernels.push(Box::new(wasm));
    }

    // One-time cost: configure, interleaved likewise.
    let mut configure: Vec<Vec<Duration>> = vec![Vec::new(); kernels.len()];
    for _ in 0..rounds / 4 {
        for (kernel, samples) in kernels.iter_mut().zip(&mut configure) {
            let start = Instant::now();
            kernel.configure(&params.terminal).expect("configured");
            samples.push(start.elapsed());
        }
    }
    print!("configure (µs, median):");
    for (kernel, samples) in kernels.iter().zip(configure) {
        print!("  {} {:.1}", kernel.name(), micros(median(samples)));
    }
    println!();

    print!("{:<18}", "card (µs, median)");
    for kernel in &kernels {
        print!(" {:>10}", kernel.name());
    }
    for kernel in kernels.iter().skip(1) {
        print!(" {:>14}", format!("{}/native", kernel.name()));
    }
    println!();
    for profile in profiles()
        .into_iter()
        .filter(|profile| only.is_empty() || only.contains(profile))
    {
        let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); kernels.len()];
        // Warm-up rounds are not counted.
        for round in 0..rounds + 20 {
            for (kernel, samples) in kernels.iter_mut().zip(&mut samples) {
                let mut card = Card::profile(profile).expect("profile");
                let start = Instant::now();
                black_box(
                    kernel
                        .transact(&transaction, &mut card)
                        .expect("an outcome"),
                );
                let elapsed = start.elapsed();
                if round >= 20 {
                    samples.push(elapsed);
                }
            }
        }
        let medians: Vec<Duration> = samples.into_iter().map(median).collect();
        print!("{profile:<18}");
        for median in &medians {
            print!(" {:>10.1}", micros(*median));
        }
        for median in medians.iter().skip(1) {
            print!(" {:>14.2}", median.as_secs_f64() / medians[0].as_secs_f64());
        }
        println!();
    }
}
