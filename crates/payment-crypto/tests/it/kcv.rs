//! Tests of `kcv`: published check values first, then cross-checks, properties and bad input.

use hex_literal::hex;
use payment_crypto::kcv::{Kcv, KcvError, KcvMethod, kcv, kcv_with_len, verify};
use payment_crypto::{ErrorCode, SecretKey};
use proptest::prelude::*;

struct KcvVector {
    /// TDES when true, AES otherwise (both come in 16-byte keys).
    tdes: bool,
    key: &'static [u8],
    method: KcvMethod,
    kcv: &'static [u8],
}

/// Published check values:
/// - TDES `0123456789ABCDEFFEDCBA9876543210`, encrypt-zeros: `08D7B4`, the ZPK fixture of jPOS
///   (`SecureDESKey` in its PIN tests), the usual HSM manual example key.
/// - TDES `0123456789ABCDEF0123456789ABCDEF` (K1 = K2, so single DES of 0123456789ABCDEF),
///   encrypt-zeros: `D5D44F`, as a Thales-compatible HSM prints it (go_hsm README, key import);
///   it is the start of the classic DES known answer D5D44FF720683D0D.
/// - AES-128 `00112233445566778899AABBCCDDEEFF`: CMAC method `53E107` (3 bytes) and
///   encrypt-zeros `FDE4FB`, from the payments CyberChef fork's `Payment Calculate KCV` tests.
/// - AES-128 all-zero key, encrypt-zeros: `66E94B`, the start of E(0^128, 0^128) =
///   66E94BD4EF8A2C3B884CFA59CA342B2E (McGrew & Viega, GCM specification, test case 1, H).
const VECTORS: &[KcvVector] = &[
    KcvVector {
        tdes: true,
        key: &hex!("0123456789ABCDEFFEDCBA9876543210"),
        method: KcvMethod::EncryptZeros,
        kcv: &hex!("08D7B4"),
    },
    KcvVector {
        tdes: true,
        key: &hex!("0123456789ABCDEF0123456789ABCDEF"),
        method: KcvMethod::EncryptZeros,
        kcv: &hex!("D5D44FF720683D0D"),
    },
    KcvVector {
        tdes: false,
        key: &hex!("00112233445566778899AABBCCDDEEFF"),
        method: KcvMethod::Cmac,
        kcv: &hex!("53E107"),
    },
    KcvVector {
        tdes: false,
        key: &hex!("00112233445566778899AABBCCDDEEFF"),
        method: KcvMethod::EncryptZeros,
        kcv: &hex!("FDE4FB"),
    },
    KcvVector {
        tdes: false,
        key: &hex!("00000000000000000000000000000000"),
        method: KcvMethod::EncryptZeros,
        kcv: &hex!("66E94BD4EF8A2C3B"),
    },
];

#[test]
fn published_check_values() {
    for v in VECTORS {
        let key = if v.tdes {
            SecretKey::tdes(v.key).unwrap()
        } else {
            SecretKey::aes(v.key).unwrap()
        };
        let computed = kcv_with_len(&key, v.method, v.kcv.len()).unwrap();
        assert_eq!(computed.as_bytes(), v.kcv, "{:?} {:?}", key, v.method);
        assert!(verify(&key, v.method, &Kcv::from_bytes(v.kcv).unwrap()));
    }
}

#[test]
fn default_lengths_and_display() {
    let tdes = SecretKey::tdes(&hex!("0123456789ABCDEFFEDCBA9876543210")).unwrap();
    let legacy = kcv(&tdes, KcvMethod::EncryptZeros);
    assert_eq!(legacy.len(), 3);
    assert_eq!(legacy.to_string(), "08D7B4");
    assert_eq!(format!("{legacy:?}"), "Kcv(08D7B4)");

    let aes = SecretKey::aes(&hex!("00112233445566778899AABBCCDDEEFF")).unwrap();
    let cmac_kcv = kcv(&aes, KcvMethod::Cmac);
    // X9.24-1:2017 Annex A.3 keeps 40 bits; the first 24 are the published 53E107.
    assert_eq!(cmac_kcv.len(), 5);
    assert!(cmac_kcv.to_string().starts_with("53E107"));
    // The two methods give different values for the same AES key.
    assert_ne!(
        kcv(&aes, KcvMethod::EncryptZeros).as_bytes(),
        &cmac_kcv.as_bytes()[..3]
    );
}

#[test]
fn parsing_and_verification() {
    let tdes = SecretKey::tdes(&hex!("0123456789ABCDEFFEDCBA9876543210")).unwrap();
    let typed: Kcv = "08d7b4".parse().unwrap();
    assert!(verify(&tdes, KcvMethod::EncryptZeros, &typed));
    assert!(!verify(&tdes, KcvMethod::Cmac, &typed));
    let wrong: Kcv = "08D7B5".parse().unwrap();
    assert!(!verify(&tdes, KcvMethod::EncryptZeros, &wrong));
    assert_eq!(typed, "08D7B4".parse().unwrap());
    assert_ne!(typed, "08D7B400".parse().unwrap());
}

#[test]
fn bad_lengths_and_hex_are_rejected() {
    let aes = SecretKey::aes(&[0; 16]).unwrap();
    assert_eq!(
        kcv_with_len(&aes, KcvMethod::Cmac, 9).unwrap_err(),
        KcvError::LengthOutOfRange(9)
    );
    assert_eq!(
        kcv_with_len(&aes, KcvMethod::EncryptZeros, 1).unwrap_err(),
        KcvError::LengthOutOfRange(1)
    );
    assert_eq!(
        kcv_with_len(&aes, KcvMethod::Cmac, 0).unwrap_err().code(),
        "kcv_length_out_of_range"
    );
    assert_eq!(
        Kcv::from_bytes(&[]).unwrap_err(),
        KcvError::LengthOutOfRange(0)
    );
    assert_eq!("08D7B".parse::<Kcv>().unwrap_err(), KcvError::OddHexLength);
    assert_eq!(
        "08D7BZ".parse::<Kcv>().unwrap_err(),
        KcvError::InvalidHexDigit
    );
    assert_eq!(
        "".parse::<Kcv>().unwrap_err(),
        KcvError::LengthOutOfRange(0)
    );
    assert_eq!(
        "00112233445566778899".parse::<Kcv>().unwrap_err(),
        KcvError::LengthOutOfRange(10)
    );
    assert_eq!(KcvError::InvalidHexDigit.code(), "kcv_invalid_hex_digit");
}

/// CMAC of one zero block under `key`, with RustCrypto's `cmac` used directly (an independent
/// path from the crate's own dispatch).
fn reference_cmac_of_zeros(key: &[u8]) -> Vec<u8> {
    use cmac::{KeyInit, Mac};
    fn run<C: cmac::block_api::CmacCipher + KeyInit>(key: &[u8], block_len: usize) -> Vec<u8> {
        let mut mac = <cmac::Cmac<C> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(&vec![0u8; block_len]);
        mac.finalize().into_bytes().to_vec()
    }
    match key.len() {
        16 => run::<aes::Aes128>(key, 16),
        24 => run::<aes::Aes192>(key, 16),
        _ => run::<aes::Aes256>(key, 16),
    }
}

fn reference_tdes_cmac_of_zeros(key: &[u8]) -> Vec<u8> {
    use cmac::{KeyInit, Mac};
    let mut mac = <cmac::Cmac<des::TdesEde3> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(&[0u8; 8]);
    mac.finalize().into_bytes().to_vec()
}

proptest! {
    /// The CMAC method is the leftmost bytes of CMAC(key, zero block) for every AES size, at
    /// every allowed length, and verification accepts exactly that prefix.
    #[test]
    fn aes_cmac_method_matches_reference(
        key in prop_oneof![
            prop::collection::vec(any::<u8>(), 16),
            prop::collection::vec(any::<u8>(), 24),
            prop::collection::vec(any::<u8>(), 32),
        ],
        len in 2usize..=8,
    ) {
        let secret = SecretKey::aes(&key).unwrap();
        let expected = reference_cmac_of_zeros(&key);
        let computed = kcv_with_len(&secret, KcvMethod::Cmac, len).unwrap();
        prop_assert_eq!(computed.as_bytes(), &expected[..len]);
        prop_assert!(verify(&secret, KcvMethod::Cmac, &computed));
        let default_len = kcv(&secret, KcvMethod::Cmac);
        prop_assert_eq!(default_len.as_bytes(), &expected[..5]);
    }

    /// The TDES CMAC method matches the reference for triple-length keys.
    #[test]
    fn tdes_cmac_method_matches_reference(key in prop::collection::vec(any::<u8>(), 24)) {
        let secret = SecretKey::tdes(&key).unwrap();
        let expected = reference_tdes_cmac_of_zeros(&key);
        let default_len = kcv(&secret, KcvMethod::Cmac);
        prop_assert_eq!(default_len.as_bytes(), &expected[..5]);
    }

    /// Display then parse gives the same KCV.
    #[test]
    fn kcv_hex_round_trips(bytes in prop::collection::vec(any::<u8>(), 2..=8)) {
        let value = Kcv::from_bytes(&bytes).unwrap();
        prop_assert_eq!(value.to_string().parse::<Kcv>().unwrap(), value);
        prop_assert_eq!(value.to_string().to_lowercase().parse::<Kcv>().unwrap(), value);
    }

    /// Parsing never panics on arbitrary text and only accepts 4 to 16 hex digits.
    #[test]
    fn kcv_parsing_never_panics(text in ".{0,24}") {
        if let Ok(parsed) = text.parse::<Kcv>() {
            prop_assert_eq!(parsed.len() * 2, text.len());
        }
    }

    /// A KCV that differs in any byte does not verify.
    #[test]
    fn altered_kcv_does_not_verify(key in any::<[u8; 16]>(), index in 0usize..5, flip in 1u8..) {
        let secret = SecretKey::aes(&key).unwrap();
        let mut bytes = kcv(&secret, KcvMethod::Cmac).as_bytes().to_vec();
        bytes[index] ^= flip;
        prop_assert!(!verify(&secret, KcvMethod::Cmac, &Kcv::from_bytes(&bytes).unwrap()));
    }
}
