//! Tests of `data`: NIST CBC vectors for the cipher layer, ISO/IEC 9797-1 padding, bad input, and
//! round-trip properties for every key algorithm.

use hex_literal::hex;
use payment_crypto::data::{
    self, DataError, Padding, decrypt, decrypt_with_zero_iv, encrypt, encrypt_with_zero_iv, zero_iv,
};
use payment_crypto::{ErrorCode, KeyAlgorithm, SecretKey};
use proptest::prelude::*;

/// A CBC vector: key, IV, plaintext, ciphertext (whole blocks, so padding method 1 adds nothing).
struct CbcVector {
    key: &'static [u8],
    iv: &'static [u8],
    plaintext: &'static [u8],
    ciphertext: &'static [u8],
}

/// The four plaintext blocks shared by NIST SP 800-38A Appendix F and NIST's TDES_CBC example.
const SP800_38A_PLAINTEXT: [u8; 64] = hex!(
    "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710"
);
const SP800_38A_IV: [u8; 16] = hex!("000102030405060708090a0b0c0d0e0f");

/// NIST SP 800-38A Appendix F.2.1 (CBC-AES128.Encrypt), F.2.3 (CBC-AES192.Encrypt) and F.2.5
/// (CBC-AES256.Encrypt).
const AES_CBC_VECTORS: &[CbcVector] = &[
    CbcVector {
        key: &hex!("2b7e151628aed2a6abf7158809cf4f3c"),
        iv: &SP800_38A_IV,
        plaintext: &SP800_38A_PLAINTEXT,
        ciphertext: &hex!(
            "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2"
            "73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7"
        ),
    },
    CbcVector {
        key: &hex!("8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b"),
        iv: &SP800_38A_IV,
        plaintext: &SP800_38A_PLAINTEXT,
        ciphertext: &hex!(
            "4f021db243bc633d7178183a9fa071e8 b4d9ada9ad7dedf4e5e738763f69145a"
            "571b242012fb7ae07fa9baac3df102e0 08b0e27988598881d920a9e64f5615cd"
        ),
    },
    CbcVector {
        key: &hex!("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
        iv: &SP800_38A_IV,
        plaintext: &SP800_38A_PLAINTEXT,
        ciphertext: &hex!(
            "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d"
            "39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b"
        ),
    },
];

/// NIST CSRC "Block Cipher Modes of Operation" example values, TDES_CBC.pdf: TCBC with three
/// distinct keys, then with keying option 2 (K3 = K1), which is our double-length key.
const TDES_CBC_VECTORS: &[CbcVector] = &[
    CbcVector {
        key: &hex!("0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123"),
        iv: &hex!("F69F2445DF4F9B17"),
        plaintext: &hex!("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"),
        ciphertext: &hex!("2079c3d53aa763e193b79e2569ab5262516570481f25b50f73c0bda85c8e0da7"),
    },
    CbcVector {
        key: &hex!("0123456789ABCDEF 23456789ABCDEF01"),
        iv: &hex!("F69F2445DF4F9B17"),
        plaintext: &hex!("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"),
        ciphertext: &hex!("7401ce1eab6d003caff84bf47b36cc2154f0238f9ffecd8f6acf118392b45581"),
    },
];

fn check_cbc(vectors: &[CbcVector], make_key: fn(&[u8]) -> SecretKey) {
    for vector in vectors {
        let key = make_key(vector.key);
        let ciphertext = encrypt(&key, vector.iv, Padding::Iso9797Method1, vector.plaintext);
        assert_eq!(ciphertext.unwrap(), vector.ciphertext, "{key:?}");
        let plaintext = decrypt(&key, vector.iv, Padding::Iso9797Method1, vector.ciphertext);
        assert_eq!(plaintext.unwrap().as_slice(), vector.plaintext, "{key:?}");
    }
}

#[test]
fn aes_cbc_matches_sp800_38a() {
    check_cbc(AES_CBC_VECTORS, |k| SecretKey::aes(k).unwrap());
}

#[test]
fn tdes_cbc_matches_nist_example() {
    check_cbc(TDES_CBC_VECTORS, |k| SecretKey::tdes(k).unwrap());
}

/// ISO/IEC 9797-1 §6.1.1 and §6.1.2: the padded plaintext, seen by decrypting without removing
/// anything (method 1 keeps whatever the last block holds).
#[test]
fn padding_methods_produce_the_iso_9797_1_layout() {
    let key = SecretKey::tdes(&hex!("0123456789ABCDEF23456789ABCDEF01")).unwrap();
    let cases: &[(Padding, &[u8], &[u8])] = &[
        (
            Padding::Iso9797Method1,
            &hex!("0102030405"),
            &hex!("0102030405000000"),
        ),
        (
            Padding::Iso9797Method1,
            &hex!("0102030405060708"),
            &hex!("0102030405060708"),
        ),
        (
            Padding::Iso9797Method2,
            &hex!("0102030405"),
            &hex!("0102030405800000"),
        ),
        (
            Padding::Iso9797Method2,
            &hex!("01020304050607"),
            &hex!("0102030405060780"),
        ),
        (
            Padding::Iso9797Method2,
            &hex!("0102030405060708"),
            &hex!("0102030405060708 8000000000000000"),
        ),
    ];
    for (padding, data, padded) in cases {
        let ciphertext = encrypt_with_zero_iv(&key, *padding, data).unwrap();
        assert_eq!(ciphertext.len(), padded.len());
        let seen = decrypt_with_zero_iv(&key, Padding::Iso9797Method1, &ciphertext).unwrap();
        assert_eq!(seen.as_slice(), *padded, "{padding:?}");
        let stripped = decrypt_with_zero_iv(&key, Padding::Iso9797Method2, &ciphertext);
        if *padding == Padding::Iso9797Method2 {
            assert_eq!(stripped.unwrap().as_slice(), *data);
        }
    }
}

#[test]
fn zero_iv_has_the_block_length() {
    assert_eq!(zero_iv(KeyAlgorithm::Tdes2), [0u8; 8]);
    assert_eq!(zero_iv(KeyAlgorithm::Tdes3), [0u8; 8]);
    assert_eq!(zero_iv(KeyAlgorithm::Aes256), [0u8; 16]);
}

#[test]
fn bad_input_gets_specific_errors() {
    let tdes = SecretKey::tdes(&[0x11; 16]).unwrap();
    let aes = SecretKey::aes(&[0x22; 16]).unwrap();
    let method_2 = Padding::Iso9797Method2;

    let err = encrypt(&aes, &[0; 8], method_2, b"card").unwrap_err();
    assert_eq!(
        err,
        DataError::WrongIvLength {
            expected: 16,
            actual: 8
        }
    );
    assert_eq!(err.code(), "data_wrong_iv_length");
    assert_eq!(
        decrypt(&tdes, &[0; 16], method_2, &[0; 8]).unwrap_err(),
        DataError::WrongIvLength {
            expected: 8,
            actual: 16
        }
    );
    assert_eq!(
        decrypt_with_zero_iv(&aes, method_2, &[0; 24]).unwrap_err(),
        DataError::CiphertextNotBlockAligned {
            len: 24,
            block_len: 16
        }
    );
    assert_eq!(
        encrypt_with_zero_iv(&tdes, method_2, &[]).unwrap_err(),
        DataError::EmptyInput
    );
    assert_eq!(
        decrypt_with_zero_iv(&tdes, method_2, &[]).unwrap_err(),
        DataError::EmptyInput
    );

    // Plaintexts that, read as method 2, have no marker, a wrong last non-zero byte, or a
    // "padding" longer than one block.
    let not_method_2: &[&[u8]] = &[
        &hex!("0000000000000000"),
        &hex!("0102030405060701"),
        &hex!("8000000000000000 0000000000000000"),
    ];
    for plaintext in not_method_2 {
        let ciphertext = encrypt_with_zero_iv(&tdes, Padding::Iso9797Method1, plaintext).unwrap();
        assert_eq!(
            decrypt_with_zero_iv(&tdes, method_2, &ciphertext).unwrap_err(),
            DataError::BadPadding
        );
    }
}

fn any_key() -> impl Strategy<Value = SecretKey> {
    (0usize..5, any::<[u8; 32]>()).prop_map(|(choice, bytes)| match choice {
        0 => SecretKey::tdes(&bytes[..16]).unwrap(),
        1 => SecretKey::tdes(&bytes[..24]).unwrap(),
        2 => SecretKey::aes(&bytes[..16]).unwrap(),
        3 => SecretKey::aes(&bytes[..24]).unwrap(),
        _ => SecretKey::aes(&bytes).unwrap(),
    })
}

proptest! {
    /// Method 2 round-trips exactly; method 1 round-trips up to its trailing zeros.
    #[test]
    fn round_trips_for_every_key_algorithm(
        key in any_key(),
        iv_bytes in any::<[u8; 16]>(),
        plaintext in proptest::collection::vec(any::<u8>(), 1..100),
    ) {
        let iv = &iv_bytes[..key.algorithm().block_len()];
        let ciphertext = encrypt(&key, iv, Padding::Iso9797Method2, &plaintext).unwrap();
        prop_assert_eq!(ciphertext.len() % key.algorithm().block_len(), 0);
        prop_assert!(ciphertext.len() > plaintext.len());
        let decrypted = decrypt(&key, iv, Padding::Iso9797Method2, &ciphertext).unwrap();
        prop_assert_eq!(decrypted.as_slice(), plaintext.as_slice());

        let ciphertext = encrypt(&key, iv, Padding::Iso9797Method1, &plaintext).unwrap();
        let decrypted = decrypt(&key, iv, Padding::Iso9797Method1, &ciphertext).unwrap();
        prop_assert_eq!(&decrypted[..plaintext.len()], plaintext.as_slice());
        prop_assert!(decrypted[plaintext.len()..].iter().all(|&b| b == 0));
        prop_assert!(decrypted.len() - plaintext.len() < key.algorithm().block_len());
    }

    /// Random ciphertexts and IVs of any length give a result or a typed error, never a panic.
    #[test]
    fn decrypt_never_panics(
        key in any_key(),
        iv in proptest::collection::vec(any::<u8>(), 0..20),
        ciphertext in proptest::collection::vec(any::<u8>(), 0..70),
    ) {
        for padding in [Padding::Iso9797Method1, Padding::Iso9797Method2] {
            match data::decrypt(&key, &iv, padding, &ciphertext) {
                Ok(plaintext) => prop_assert!(plaintext.len() <= ciphertext.len()),
                Err(
                    DataError::WrongIvLength { .. }
                    | DataError::CiphertextNotBlockAligned { .. }
                    | DataError::EmptyInput
                    | DataError::BadPadding,
                ) => {}
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }
    }
}
