//! PIN translation throughput: a format 4 block under an AES-128 PIN working key (the key the
//! AES DUKPT host derives per transaction) into format 4 and format 0 under a zone key.
//! Target: ≥ 300,000 translations per second on one thread.
//!
//! `dukpt_aes128_derive_then_iso4_to_iso4` is the server's whole PIN path for one transaction:
//! derive the AES DUKPT PIN working key for the KSN from a prepared BDK, then translate.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use payment_crypto::dukpt::aes::{HostBdk, InitialKeyId, Ksn, WorkingKeyUsage};
use payment_crypto::pinblock::{self, ClearPin, Pan, PinBlockFormat, PinKey};
use payment_crypto::random::FixedBytes;
use payment_crypto::{KeyAlgorithm, SecretKey};
use std::hint::black_box;

fn pin_translate(c: &mut Criterion) {
    let pin_key = SecretKey::aes(&[0x2B; 16]).expect("16-byte AES key");
    let zone_aes = SecretKey::aes(&[0x5C; 16]).expect("16-byte AES key");
    let zone_tdes = SecretKey::tdes(&[0x6D; 16]).expect("16-byte TDES key");
    let pan = Pan::new("4111111111111111").expect("valid PAN");
    let pin = ClearPin::new("1234").expect("valid PIN");
    let mut rng = FixedBytes::new(&[0x3A, 0x91, 0x07, 0xC4, 0x5E]);
    let block = pinblock::encrypt_pin(&pin_key, PinBlockFormat::Iso4, &pin, Some(&pan), &mut rng)
        .expect("encrypt");

    let mut group = c.benchmark_group("pin_translate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("iso4_aes128_to_iso4_aes128", |b| {
        b.iter(|| {
            pinblock::translate(
                black_box(&block),
                (&pin_key, PinBlockFormat::Iso4),
                (&zone_aes, PinBlockFormat::Iso4),
                Some(&pan),
                &mut rng,
            )
            .expect("translate")
        });
    });
    group.bench_function("iso4_aes128_to_iso0_tdes2", |b| {
        b.iter(|| {
            pinblock::translate(
                black_box(&block),
                (&pin_key, PinBlockFormat::Iso4),
                (&zone_tdes, PinBlockFormat::Iso0),
                Some(&pan),
                &mut rng,
            )
            .expect("translate")
        });
    });
    // The server keeps the zone key's schedule expanded; the DUKPT working key changes per
    // transaction, so its schedule is expanded inside each iteration.
    let zone_tdes_prepared = PinKey::new(&zone_tdes);
    let zone_aes_prepared = PinKey::new(&zone_aes);
    group.bench_function("iso4_aes128_to_iso4_aes128_prepared_zone_key", |b| {
        b.iter(|| {
            pinblock::translate_with_keys(
                black_box(&block),
                (&PinKey::new(&pin_key), PinBlockFormat::Iso4),
                (&zone_aes_prepared, PinBlockFormat::Iso4),
                Some(&pan),
                &mut rng,
            )
            .expect("translate")
        });
    });
    group.bench_function("iso4_aes128_to_iso0_tdes2_prepared_zone_key", |b| {
        b.iter(|| {
            pinblock::translate_with_keys(
                black_box(&block),
                (&PinKey::new(&pin_key), PinBlockFormat::Iso4),
                (&zone_tdes_prepared, PinBlockFormat::Iso0),
                Some(&pan),
                &mut rng,
            )
            .expect("translate")
        });
    });
    // A device early in its life (counter 0x2A: three one-bits), under the X9.24-3 Annex B BDK.
    let bdk = SecretKey::aes(&[
        0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1,
        0xF1,
    ])
    .expect("16-byte AES key");
    let host_bdk = HostBdk::new(&bdk).expect("AES BDK");
    let ksn = Ksn::new(
        InitialKeyId::new([0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56]),
        0x2A,
    );
    let dukpt_pin_key = host_bdk
        .derive_working_key(&ksn, WorkingKeyUsage::PinEncryption, KeyAlgorithm::Aes128)
        .expect("derive");
    let dukpt_block = pinblock::encrypt_pin(
        &dukpt_pin_key,
        PinBlockFormat::Iso4,
        &pin,
        Some(&pan),
        &mut rng,
    )
    .expect("encrypt");
    group.bench_function("dukpt_aes128_derive_then_iso4_to_iso4", |b| {
        b.iter(|| {
            let pin_key = host_bdk
                .derive_working_key(
                    black_box(&ksn),
                    WorkingKeyUsage::PinEncryption,
                    KeyAlgorithm::Aes128,
                )
                .expect("derive");
            pinblock::translate_with_keys(
                black_box(&dukpt_block),
                (&PinKey::new(&pin_key), PinBlockFormat::Iso4),
                (&zone_aes_prepared, PinBlockFormat::Iso4),
                Some(&pan),
                &mut rng,
            )
            .expect("translate")
        });
    });
    group.finish();
}

criterion_group!(benches, pin_translate);
criterion_main!(benches);
