//! Host-side AES-128 DUKPT: BDK + KSN → AES-128 PIN encryption working key.
//!
//! The counter mix stands for what a host sees from a fleet: 1024 devices, counters spread over
//! each device's first 2^20 transactions (about 10 one-bits on average, so about 12 AES key
//! schedules and block encryptions per derivation, initial key included).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use payment_crypto::dukpt::aes::{HostBdk, InitialKeyId, Ksn, WorkingKeyUsage, derive_working_key};
use payment_crypto::{KeyAlgorithm, SecretKey};

/// Counters with at most 16 one-bits, spread over the first 2^20 transactions of a device by a
/// fixed multiplicative step (deterministic, no RNG needed).
fn counter_mix(count: usize) -> Vec<u32> {
    (1u32..)
        .map(|i| i.wrapping_mul(0x9E37_79B1) & 0x000F_FFFF)
        .filter(|&c| c != 0 && c.count_ones() <= 16)
        .take(count)
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

fn host_derivation(c: &mut Criterion) {
    let bdk = SecretKey::aes(&[
        0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1,
        0xF1,
    ])
    .unwrap();
    let ksns: Vec<Ksn> = counter_mix(1024)
        .into_iter()
        .enumerate()
        .map(|(device, counter)| {
            let mut id = [0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0];
            id[4..].copy_from_slice(&(device as u32).to_be_bytes());
            Ksn::new(InitialKeyId::new(id), counter)
        })
        .collect();
    let mean_ones =
        ksns.iter().map(|k| k.counter().count_ones()).sum::<u32>() as f64 / ksns.len() as f64;
    eprintln!(
        "counter mix: {} KSNs, mean {mean_ones:.1} one-bits",
        ksns.len()
    );

    let mut group = c.benchmark_group("dukpt_aes");
    group.throughput(Throughput::Elements(ksns.len() as u64));
    let from_bdk = |ksns: &[Ksn]| {
        for ksn in ksns {
            let key = derive_working_key(
                black_box(&bdk),
                black_box(ksn),
                WorkingKeyUsage::PinEncryption,
                KeyAlgorithm::Aes128,
            )
            .unwrap();
            black_box(key);
        }
    };
    let prepared = HostBdk::new(&bdk).unwrap();
    let from_prepared_bdk = |ksns: &[Ksn]| {
        for ksn in ksns {
            let key = black_box(&prepared)
                .derive_working_key(
                    black_box(ksn),
                    WorkingKeyUsage::PinEncryption,
                    KeyAlgorithm::Aes128,
                )
                .unwrap();
            black_box(key);
        }
    };
    group.bench_function("host_pin_key_aes128_from_bdk", |b| {
        b.iter(|| from_bdk(&ksns));
    });
    group.bench_function("host_pin_key_aes128_prepared_bdk", |b| {
        b.iter(|| from_prepared_bdk(&ksns));
    });
    // The same work timed in this thread's CPU time, so that other processes competing for the
    // machine's two cores do not count against the single-thread figure.
    if thread_cpu_time().is_some() {
        group.bench_function("host_pin_key_aes128_from_bdk_cpu_time", |b| {
            b.iter_custom(|iterations| cpu_time_of(iterations, || from_bdk(&ksns)));
        });
        group.bench_function("host_pin_key_aes128_prepared_bdk_cpu_time", |b| {
            b.iter_custom(|iterations| cpu_time_of(iterations, || from_prepared_bdk(&ksns)));
        });
    }
    group.finish();
}

criterion_group!(benches, host_derivation);
criterion_main!(benches);
