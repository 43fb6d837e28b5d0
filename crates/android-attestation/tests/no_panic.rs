//! Parsing never panics: bit flips in a real chain and arbitrary bytes as a KeyDescription.

use android_attestation::{
    KeyDescription, Policy, RevocationList, TrustAnchors, parse_chain, verify_bytes,
};
use proptest::prelude::*;

const NORMAL: &[u8] = include_bytes!("data/normal_cert_chain.pem");

fn der() -> Vec<u8> {
    parse_chain(NORMAL)
        .unwrap()
        .iter()
        .flat_map(|c| c.der().to_vec())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn flipped_bits_in_a_real_chain_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4)) {
        let mut bytes = der();
        for (index, bit) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        let _ = verify_bytes(&bytes, &TrustAnchors::google(), &Policy::default(), None, 1_677_628_800);
    }

    #[test]
    fn arbitrary_key_descriptions_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = KeyDescription::parse(&bytes);
    }

    #[test]
    fn arbitrary_chains_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = verify_bytes(&bytes, &TrustAnchors::google(), &Policy::default(), None, 0);
        let _ = RevocationList::parse(&bytes, 0);
    }
}

#[test]
fn every_single_byte_truncation_of_the_leaf_extension_is_an_error_not_a_panic() {
    let chain = parse_chain(NORMAL).unwrap();
    let ext = chain[0]
        .extension(android_attestation::KEY_DESCRIPTION_OID)
        .unwrap();
    for len in 0..ext.len() {
        assert!(KeyDescription::parse(&ext[..len]).is_err(), "prefix {len}");
    }
    assert!(KeyDescription::parse(ext).is_ok());
}
