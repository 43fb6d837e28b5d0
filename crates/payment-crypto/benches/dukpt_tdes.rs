//! Host-side TDES DUKPT throughput: BDK + KSN to PIN encryption key, over a realistic mix of
//! counters (every counter value an originator uses in its first 4096 transactions and near the
//! end of its life, so the number of "one" bits ranges from 1 to 10).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use payment_crypto::SecretKey;
use payment_crypto::dukpt::tdes::{
    BaseDerivationKey, Ksn, Originator, derive_ipek, derive_transaction_keys,
    derive_transaction_keys_from_ipek,
};
use std::hint::black_box;

const BDK: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10,
];
const INITIAL_KSN: [u8; 10] = [0xFF, 0xFF, 0x98, 0x76, 0x54, 0x32, 0x10, 0xE0, 0x00, 0x00];

/// KSNs in the order a terminal sends them, plus a run of high counters.
fn counter_mix(bdk: &SecretKey) -> Vec<Ksn> {
    let initial = Ksn::new(INITIAL_KSN);
    let ipek = derive_ipek(bdk, &initial).expect("double-length BDK");
    let mut originator = Originator::initialize(&ipek, &initial).expect("double-length IPEK");
    let mut ksns: Vec<Ksn> = (0..4096)
        .map(|_| {
            originator
                .next_transaction()
                .expect("fresh originator")
                .ksn()
        })
        .collect();
    ksns.extend(
        (0x1F_0000u32..0x1F_FFFF)
            .filter(|counter| counter.count_ones() <= 10)
            .take(1024)
            .map(|counter| initial.with_counter(counter).expect("21-bit counter")),
    );
    ksns
}

fn host_derivation(c: &mut Criterion) {
    let bdk = SecretKey::tdes(&BDK).expect("16-byte key");
    let ksns = counter_mix(&bdk);
    let mut group = c.benchmark_group("dukpt_tdes_host");
    group.throughput(Throughput::Elements(ksns.len() as u64));
    // A host keeps its BDK keyed: only the per-KSN work is measured.
    let keyed_bdk = BaseDerivationKey::new(&bdk).expect("double-length BDK");
    group.bench_function("keyed_bdk_and_ksn_to_pin_key", |b| {
        b.iter(|| {
            for ksn in &ksns {
                let keys = keyed_bdk
                    .derive_transaction_keys(black_box(ksn))
                    .expect("originator KSNs are receivable");
                black_box(keys.pin_encryption_key());
            }
        });
    });
    // The one-call form, which also keys the BDK for every KSN.
    group.bench_function("bdk_and_ksn_to_pin_key", |b| {
        b.iter(|| {
            for ksn in &ksns {
                let keys = derive_transaction_keys(black_box(&bdk), black_box(ksn))
                    .expect("originator KSNs are receivable");
                black_box(keys.pin_encryption_key());
            }
        });
    });
    group.finish();
}

/// The two parts of a host derivation, to see where the time goes: the initial key (two TDEA
/// encryptions) and one non-reversible key generation step per counter "one" bit.
fn host_derivation_parts(c: &mut Criterion) {
    let bdk = SecretKey::tdes(&BDK).expect("16-byte key");
    let initial = Ksn::new(INITIAL_KSN);
    let ipek = derive_ipek(&bdk, &initial).expect("double-length BDK");
    let mut group = c.benchmark_group("dukpt_tdes_host_parts");
    group.bench_function("ipek", |b| {
        b.iter(|| derive_ipek(black_box(&bdk), black_box(&initial)));
    });
    for counter in [0x1, 0x3FF] {
        let ksn = initial.with_counter(counter).expect("21-bit counter");
        let name = format!("from_ipek_{}_one_bits", counter.count_ones());
        group.bench_function(name, |b| {
            b.iter(|| derive_transaction_keys_from_ipek(black_box(&ipek), black_box(&ksn)));
        });
    }
    group.finish();
}

criterion_group!(benches, host_derivation, host_derivation_parts);
criterion_main!(benches);
