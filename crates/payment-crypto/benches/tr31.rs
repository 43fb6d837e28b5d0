//! TR-31 unwrap throughput: the published version D block of TR-31:2018 A.7.4 (AES-256 KBPK,
//! AES-128 PIN key).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use payment_crypto::SecretKey;
use payment_crypto::tr31;
use std::hint::black_box;

const KBPK: [u8; 32] = [
    0x88, 0xE1, 0xAB, 0x2A, 0x2E, 0x3D, 0xD3, 0x8C, 0x1F, 0xA0, 0x39, 0xA5, 0x36, 0x50, 0x0C, 0xC8,
    0xA8, 0x7A, 0xB9, 0xD6, 0x2D, 0xC9, 0x2C, 0x01, 0x05, 0x8F, 0xA7, 0x9F, 0x44, 0x65, 0x7D, 0xE6,
];
const BLOCK: &str = "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34";

fn tr31_unwrap(c: &mut Criterion) {
    let kbpk = SecretKey::aes(&KBPK).expect("32-byte AES key");
    let mut group = c.benchmark_group("tr31");
    group.throughput(Throughput::Elements(1));
    group.bench_function("unwrap_version_d_aes256", |b| {
        b.iter(|| tr31::unwrap(&kbpk, black_box(BLOCK)).expect("unwrap"));
    });
    group.finish();
}

criterion_group!(benches, tr31_unwrap);
criterion_main!(benches);
