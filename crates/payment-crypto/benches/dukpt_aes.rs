//! Host-side AES-128 DUKPT: BDK + KSN → AES-128 PIN encryption working key.
//!
//! Each derivation costs one AES key schedule and block encryption for the initial key, one per
//! one-bit of the counter, and one for the working key, so the counter mix sets the cost. Two
//! mixes of 1024 KSNs (1024 devices under one BDK):
//! - `lifetime_2e16`: counters spread over a device's first 2^16 transactions (a SoftPOS phone at
//!   about 36 transactions a day for five years), about 8 one-bits on average;
//! - `heavy_2e20`: counters spread over the first 2^20 transactions (a busy lane terminal), about
//!   10 one-bits on average.
//!
//! Each is timed from the raw BDK (`derive_working_key`, which keys the BDK every call) and from a
//! [`HostBdk`] prepared once, in wall time and in this thread's CPU time (the machine's two cores
//! are shared with other work, which inflates wall time).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use payment_crypto::dukpt::aes::{HostBdk, InitialKeyId, Ksn, WorkingKeyUsage, derive_working_key};
use payment_crypto::{KeyAlgorithm, SecretKey};

/// The X9.24-3 Annex B BDK.
const BDK: [u8; 16] = [
    0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1,
];

/// 1024 KSNs, one per device, with counters below `2^counter_bits` and at most 16 one-bits,
/// spread by a fixed multiplicative step (deterministic, no RNG needed).
fn ksn_mix(counter_bits: u32) -> Vec<Ksn> {
    let mask = (1u32 << counter_bits) - 1;
    (1u32..)
        .map(|i| i.wrapping_mul(0x9E37_79B1) & mask)
        .filter(|&counter| counter != 0 && counter.count_ones() <= 16)
        .zip(0u32..1024)
        .map(|(counter, device)| {
            let mut id = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0];
            id[4..].copy_from_slice(&device.to_be_bytes());
            Ksn::new(InitialKeyId::new(id), counter)
        })
        .collect()
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), on Linux.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Option<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

/// CPU time this thread spends running `work` `iterations` times.
fn cpu_time_of(iterations: u64, mut work: impl FnMut()) -> Duration {
    let start = thread_cpu_time().unwrap_or_default();
    for _ in 0..iterations {
        work();
    }
    thread_cpu_time().unwrap_or_default().saturating_sub(start)
}

fn bench_mix(c: &mut Criterion, name: &str, counter_bits: u32) {
    let bdk = SecretKey::aes(&BDK).unwrap();
    let prepared = HostBdk::new(&bdk).unwrap();
    let ksns = ksn_mix(counter_bits);
    let ones: u32 = ksns.iter().map(|ksn| ksn.counter().count_ones()).sum();
    eprintln!(
        "{name}: {} KSNs, mean {:.1} one-bits",
        ksns.len(),
        f64::from(ones) / ksns.len() as f64
    );

    let from_bdk = || {
        for ksn in &ksns {
            let key = derive_working_key(
                black_box(&bdk),
                black_box(ksn),
                WorkingKeyUsage::PinEncryption,
                KeyAlgorithm::Aes128,
            );
            black_box(key.unwrap());
        }
    };
    let from_prepared_bdk = || {
        for ksn in &ksns {
            let key = black_box(&prepared).derive_working_key(
                black_box(ksn),
                WorkingKeyUsage::PinEncryption,
                KeyAlgorithm::Aes128,
            );
            black_box(key.unwrap());
        }
    };

    let mut group = c.benchmark_group(format!("dukpt_aes_{name}"));
    group.throughput(Throughput::Elements(ksns.len() as u64));
    group.bench_function("from_bdk", |b| b.iter(from_bdk));
    group.bench_function("prepared_bdk", |b| b.iter(from_prepared_bdk));
    if thread_cpu_time().is_some() {
        group.bench_function("from_bdk_cpu_time", |b| {
            b.iter_custom(|iterations| cpu_time_of(iterations, from_bdk));
        });
        group.bench_function("prepared_bdk_cpu_time", |b| {
            b.iter_custom(|iterations| cpu_time_of(iterations, from_prepared_bdk));
        });
    }
    group.finish();
}

fn host_derivation(c: &mut Criterion) {
    bench_mix(c, "lifetime_2e16", 16);
    bench_mix(c, "heavy_2e20", 20);
}

criterion_group!(benches, host_derivation);
criterion_main!(benches);
