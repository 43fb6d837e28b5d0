//! ARQC verification throughput: issuer master key → ICC master key (EMV Book 2 A1.4) →
//! session key (A1.3.1) → application cryptogram MAC (A1.2), for each cryptogram version.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hex_literal::hex;
use payment_crypto::SecretKey;
use payment_crypto::emv::{
    Atc, CardKeys, CryptogramVersion, Pan, PanSequenceNumber, TransactionInputs,
    UnpredictableNumber,
};
use std::hint::black_box;

/// CDOL1 data of a typical Visa transaction (9F02 .. 9F36 and issuer application data).
const CDOL_DATA: [u8; 40] = hex!(
    "000000004000 000000000000 0124 8000048000 0124 191105 01 52BF4585 1800 001C"
    "06011203A0B800"
);

fn verify_arqc(c: &mut Criterion) {
    let issuer_master_key = SecretKey::tdes(&hex!("0123456789ABCDEFFEDCBA9876543210")).unwrap();
    let pan = Pan::from_digits("4761739001010010").unwrap();
    let psn = PanSequenceNumber::from_digits("01").unwrap();
    let inputs = TransactionInputs {
        atc: Atc::from(0x001C),
        unpredictable_number: Some(UnpredictableNumber(hex!("52BF4585"))),
    };

    let mut group = c.benchmark_group("arqc_verify_from_issuer_master_key");
    group.throughput(Throughput::Elements(1));
    for (name, version) in [
        ("emv_common_session_key", CryptogramVersion::Emv),
        ("visa_cvn10", CryptogramVersion::VisaCvn10),
        ("visa_cvn18", CryptogramVersion::VisaCvn18),
        ("mchip", CryptogramVersion::MChip),
    ] {
        let card = CardKeys::derive(version, &issuer_master_key, &pan, psn).unwrap();
        let arqc = card.generate_cryptogram(&inputs, &CDOL_DATA).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                let card =
                    CardKeys::derive(version, black_box(&issuer_master_key), &pan, psn).unwrap();
                card.verify_cryptogram(&inputs, black_box(&CDOL_DATA), &arqc)
                    .unwrap();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, verify_arqc);
criterion_main!(benches);
