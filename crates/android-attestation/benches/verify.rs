//! Chain verification time on real chains from Google's sample verifier test data:
//! - `google_5_certs`: EC P-256 leaf, EC P-256/P-384 RKP intermediates, RSA-4096 root: three
//!   ECDSA verifications (P-256 and P-384) and two RSA-4096 PKCS#1 v1.5 verifications (the
//!   intermediate under the root, and the root's self-signature);
//! - `attest_key_7_certs`: the same issuers plus two attest-key certificates (two more P-256);
//! - `key_description_parse`: the leaf's extension alone.
//!
//! Run: `cargo bench -p android-attestation --bench verify`.

use android_attestation::{
    KEY_DESCRIPTION_OID, KeyDescription, Policy, TrustAnchors, parse_chain, verify_bytes,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const NORMAL: &[u8] = include_bytes!("../tests/data/normal_cert_chain.pem");
const ATTEST_KEYS: &[u8] = include_bytes!("../tests/data/cert_chain_with_attest_keys.pem");
const AT: i64 = 1_677_628_800;

fn chains(c: &mut Criterion) {
    let anchors = TrustAnchors::google();
    let policy = Policy {
        expected_challenge: Some(b"challenge".to_vec()),
        ..Policy::default()
    };
    let mut group = c.benchmark_group("attestation_verify");
    group.throughput(Throughput::Elements(1));
    for (name, pem) in [
        ("google_5_certs", NORMAL),
        ("attest_key_7_certs", ATTEST_KEYS),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| verify_bytes(black_box(pem), &anchors, &policy, None, AT).unwrap())
        });
    }
    let chain = parse_chain(NORMAL).unwrap();
    let ext = chain[0].extension(KEY_DESCRIPTION_OID).unwrap().to_vec();
    group.bench_function("key_description_parse", |b| {
        b.iter(|| KeyDescription::parse(black_box(&ext)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, chains);
criterion_main!(benches);
