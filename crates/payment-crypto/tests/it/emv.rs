//! Tests of `emv`: published ICC master key, session key, ARQC and ARPC vectors first, then
//! properties and bad input.
//!
//! Most published EMV vectors identify derived keys by their key check value (the leftmost bytes
//! of the key's encryption of a zero block), so [`kcv`] computes it: with padding method 1, the
//! CBC-MAC of one zero block is exactly that encryption.

use hex_literal::hex;
use payment_crypto::emv::{
    self, ArpcMethod, ArpcResponse, Atc, CardKeys, Cryptogram, CryptogramVersion, EmvCryptoError,
    MasterKeyDerivation, Pan, PanSequenceNumber, TransactionInputs, UnpredictableNumber,
};
use payment_crypto::mac::{MacAlgorithm, Padding, compute_mac};
use payment_crypto::{ErrorCode, KeyAlgorithm, SecretKey};
use proptest::prelude::*;

/// The issuer master key of every pyemv vector below.
const PYEMV_IMK: [u8; 16] = hex!("0123456789ABCDEFFEDCBA9876543210");
/// The diversification value the pyemv HSM vectors use for their session keys.
const PYEMV_R: [u8; 8] = hex!("1234567890123456");
/// The cryptogram data of the pyemv HSM vectors.
const PYEMV_DATA: [u8; 16] = hex!("0123456789ABCDEF0123456789ABCDEF");

fn tdes(bytes: &[u8]) -> SecretKey {
    SecretKey::tdes(bytes).unwrap()
}

fn pan(digits: &str) -> Pan {
    Pan::from_digits(digits).unwrap()
}

fn psn(digits: &str) -> PanSequenceNumber {
    PanSequenceNumber::from_digits(digits).unwrap()
}

/// The 2-byte key check value (encryption of a zero block, leftmost bytes).
fn kcv(key: &SecretKey) -> [u8; 2] {
    let mac = compute_mac(MacAlgorithm::CbcMac(Padding::Method1), key, &[0; 8], 4).unwrap();
    [mac.as_bytes()[0], mac.as_bytes()[1]]
}

fn icc_mk(method: MasterKeyDerivation, pan_digits: &str, psn_digits: &str) -> SecretKey {
    emv::derive_icc_master_key(method, &tdes(&PYEMV_IMK), &pan(pan_digits), psn(psn_digits))
        .unwrap()
}

fn arpc1(key: &SecretKey, arqc: &Cryptogram, response_code: [u8; 2]) -> Vec<u8> {
    emv::arpc(key, arqc, &ArpcResponse::Method1 { response_code })
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn arpc2(key: &SecretKey, arqc: &Cryptogram, proprietary_data: &[u8]) -> Vec<u8> {
    let response = ArpcResponse::Method2 {
        card_status_update: [0; 4],
        proprietary_data,
    };
    emv::arpc(key, arqc, &response).unwrap().as_bytes().to_vec()
}

struct MasterKeyVector {
    method: MasterKeyDerivation,
    pan: &'static str,
    psn: &'static str,
    icc_master_key: [u8; 16],
}

/// pyemv `pyemv/kd.py` documentation examples of `derive_icc_mk_a` and `derive_icc_mk_b`
/// (EMV Book 2 A1.4.1 and A1.4.2), issuer master key `0123456789ABCDEFFEDCBA9876543210`.
const MASTER_KEYS: &[MasterKeyVector] = &[
    MasterKeyVector {
        method: MasterKeyDerivation::OptionA,
        pan: "12345678901234567",
        psn: "01",
        icc_master_key: hex!("73AD54688CEF2934B0979857E3C719F1"),
    },
    MasterKeyVector {
        method: MasterKeyDerivation::OptionB,
        pan: "12345678901234567",
        psn: "01",
        icc_master_key: hex!("AD406D7F6D7570916D75E5DCAB8CF737"),
    },
    MasterKeyVector {
        method: MasterKeyDerivation::OptionA,
        pan: "99012345678901234",
        psn: "45",
        icc_master_key: hex!("67F8292358083E5EA7AB7FDA58D53B6B"),
    },
];

#[test]
fn icc_master_keys_match_pyemv_examples() {
    for vector in MASTER_KEYS {
        let key = icc_mk(vector.method, vector.pan, vector.psn);
        assert_eq!(key.expose_secret(), vector.icc_master_key, "{}", vector.pan);
        assert_eq!(key.algorithm(), KeyAlgorithm::Tdes2);
    }
}

/// pyemv `pyemv/kd.py` documentation example of `derive_common_sk` (EMV Book 2 A1.3.1):
/// MK `0123456789ABCDEFFEDCBA9876543210`, R = ATC `001C` || 00 .. 00.
#[test]
fn common_session_key_matches_pyemv_example() {
    let sk = emv::derive_session_key(&tdes(&PYEMV_IMK), &hex!("001C000000000000")).unwrap();
    assert_eq!(sk.expose_secret(), hex!("E9FB384AF807B940FEDCEA613461B0C4"));
    // The same key through the cryptogram-version API (EMV common derivation from the ATC).
    let keys = CardKeys::from_icc_master_key(CryptogramVersion::Emv, tdes(&PYEMV_IMK)).unwrap();
    let inputs = TransactionInputs {
        atc: Atc(hex!("001C")),
        unpredictable_number: None,
    };
    assert_eq!(keys.cryptogram_key(&inputs).unwrap(), sk);
}

/// One chain of pyemv's HSM-verified vectors: ICC master key, session key with
/// R = `1234567890123456`, ARQC over `0123456789ABCDEF0123456789ABCDEF` (retail MAC, padding
/// method 2) and the ARPC. Keys are given by their 2-byte check values.
struct HsmChain {
    method: MasterKeyDerivation,
    pan: &'static str,
    psn: &'static str,
    icc_mk_kcv: Option<[u8; 2]>,
    session_key_kcv: [u8; 2],
    arqc: [u8; 8],
}

/// pyemv `tests/test_kd_hsm.py` (vectors checked against a payment HSM), issuer master key
/// `0123456789ABCDEFFEDCBA9876543210` (check value 08D7).
const HSM_CHAINS: &[HsmChain] = &[
    // test_derive_icc_mk_a_psn / test_derive_common_sk
    HsmChain {
        method: MasterKeyDerivation::OptionA,
        pan: "12345678901234567",
        psn: "45",
        icc_mk_kcv: Some(hex!("FF08")),
        session_key_kcv: hex!("DF82"),
        arqc: hex!("19C1FBC83EBDC0D5"),
    },
    // test_derive_icc_mk_a_no_psn
    HsmChain {
        method: MasterKeyDerivation::OptionA,
        pan: "12345678901234567",
        psn: "00",
        icc_mk_kcv: None,
        session_key_kcv: hex!("3F4F"),
        arqc: hex!("8698A7319324FD93"),
    },
    // test_derive_icc_mk_b_pan16: option B on a 16-digit PAN is option A.
    HsmChain {
        method: MasterKeyDerivation::OptionB,
        pan: "1234567890123456",
        psn: "00",
        icc_mk_kcv: Some(hex!("BAB0")),
        session_key_kcv: hex!("BC19"),
        arqc: hex!("0CE77D211CB5459A"),
    },
    // test_derive_icc_mk_b_pan17_psn
    HsmChain {
        method: MasterKeyDerivation::OptionB,
        pan: "12345678901234567",
        psn: "45",
        icc_mk_kcv: Some(hex!("0BAF")),
        session_key_kcv: hex!("4262"),
        arqc: hex!("5760EE07B4FA65D1"),
    },
    // test_derive_icc_mk_b_pan17_no_psn
    HsmChain {
        method: MasterKeyDerivation::OptionB,
        pan: "12345678901234567",
        psn: "00",
        icc_mk_kcv: Some(hex!("4626")),
        session_key_kcv: hex!("7F36"),
        arqc: hex!("0BAA251EA8989442"),
    },
    // test_derive_icc_mk_b_pan18
    HsmChain {
        method: MasterKeyDerivation::OptionB,
        pan: "123456789012345679",
        psn: "00",
        icc_mk_kcv: Some(hex!("C2F3")),
        session_key_kcv: hex!("7C35"),
        arqc: hex!("DC95BCE3EBBE0296"),
    },
    // test_ac_hsm.py test_generate_ac_emv_arpc1
    HsmChain {
        method: MasterKeyDerivation::OptionA,
        pan: "9901234567890123",
        psn: "45",
        icc_mk_kcv: Some(hex!("1DA5")),
        session_key_kcv: hex!("0995"),
        arqc: hex!("4B46013359B7A58B"),
    },
];

#[test]
fn hsm_chains_match_pyemv() {
    for chain in HSM_CHAINS {
        let mk = icc_mk(chain.method, chain.pan, chain.psn);
        if let Some(expected) = chain.icc_mk_kcv {
            assert_eq!(kcv(&mk), expected, "ICC MK of {}", chain.pan);
        }
        let sk = emv::derive_session_key(&mk, &PYEMV_R).unwrap();
        assert_eq!(kcv(&sk), chain.session_key_kcv, "SK of {}", chain.pan);
        let arqc = emv::application_cryptogram(&sk, &PYEMV_DATA, Padding::Method2).unwrap();
        assert_eq!(arqc.as_bytes(), &chain.arqc, "ARQC of {}", chain.pan);
    }
}

/// pyemv `tests/test_kd_hsm.py` and `tests/test_ac_hsm.py`: ARPC method 1 (ARC `0000`) under the
/// ICC master key or the session key, and ARPC method 2 (CSU `00000000`) under the session key.
#[test]
fn arpcs_match_pyemv_hsm_vectors() {
    let arqc = |bytes: [u8; 8]| Cryptogram::from_bytes(&bytes).unwrap();
    let sk_of = |mk: &SecretKey| emv::derive_session_key(mk, &PYEMV_R).unwrap();

    let mk = icc_mk(MasterKeyDerivation::OptionA, "12345678901234567", "45");
    let sk = sk_of(&mk);
    assert_eq!(
        arpc1(&mk, &arqc(hex!("19C1FBC83EBDC0D5")), [0, 0]),
        hex!("78A372523FA35A03")
    );
    assert_eq!(
        arpc1(&sk, &arqc(hex!("19C1FBC83EBDC0D5")), [0, 0]),
        hex!("C3620580668E5B65")
    );

    let mk = icc_mk(MasterKeyDerivation::OptionA, "12345678901234567", "00");
    assert_eq!(
        arpc1(&mk, &arqc(hex!("8698A7319324FD93")), [0, 0]),
        hex!("BEA11C8F4A47EF6F")
    );

    let method2 = [
        (
            "1234567890123456",
            "00",
            hex!("0CE77D211CB5459A"),
            hex!("8CD9AA5D"),
        ),
        (
            "12345678901234567",
            "45",
            hex!("5760EE07B4FA65D1"),
            hex!("106B81D9"),
        ),
        (
            "12345678901234567",
            "00",
            hex!("0BAA251EA8989442"),
            hex!("C1C41F3A"),
        ),
        (
            "123456789012345679",
            "00",
            hex!("DC95BCE3EBBE0296"),
            hex!("ECCA0C4B"),
        ),
    ];
    for (pan_digits, psn_digits, arqc_bytes, expected) in method2 {
        let sk = sk_of(&icc_mk(
            MasterKeyDerivation::OptionB,
            pan_digits,
            psn_digits,
        ));
        assert_eq!(arpc2(&sk, &arqc(arqc_bytes), &[]), expected, "{pan_digits}");
    }

    let mk = icc_mk(MasterKeyDerivation::OptionA, "9901234567890123", "45");
    let sk = sk_of(&mk);
    let arqc_4b46 = arqc(hex!("4B46013359B7A58B"));
    assert_eq!(arpc1(&mk, &arqc_4b46, [0, 0]), hex!("F8C9CECAABD55AD1"));
    assert_eq!(
        arpc2(&sk, &arqc_4b46, &hex!("1234567890ABCDEF")),
        hex!("4962B76C")
    );
    assert_eq!(arpc2(&sk, &arqc_4b46, &[]), hex!("7DFB1188"));
}

/// pyemv `tests/test_ac_hsm.py`, "Visa padding" cases: the retail MAC with ISO/IEC 9797-1 padding
/// method 1 (zeros, none when aligned) under the session key, ARPC method 1 under the master key.
#[test]
fn zero_padded_cryptograms_match_pyemv_hsm_vectors() {
    let mk = icc_mk(MasterKeyDerivation::OptionA, "9901234567890123", "45");
    let sk = emv::derive_session_key(&mk, &PYEMV_R).unwrap();
    let cases = [
        (
            &hex!("0123456789ABCDEF0123456789ABCDEF01")[..],
            hex!("2E141C6BC4A20DA8"),
            hex!("16A49AAB314B9262"),
        ),
        (
            &PYEMV_DATA[..],
            hex!("922F3E83125EB46B"),
            hex!("8AE6E836084B0E80"),
        ),
    ];
    for (data, expected_arqc, expected_arpc) in cases {
        let arqc = emv::application_cryptogram(&sk, data, Padding::Method1).unwrap();
        assert_eq!(arqc.as_bytes(), &expected_arqc);
        assert_eq!(arpc1(&mk, &arqc, [0, 0]), expected_arpc);
    }
}

/// pyemv `tests/test_kd_hsm.py` `test_derive_icc_mk_b_sha_pad`: a PAN whose SHA-1 has fewer than
/// 16 decimal digits, so A1.4.2 step 3 decimalises hexadecimal letters. Session key with
/// R = ATC `001C` || 00 .. 00.
#[test]
fn option_b_decimalisation_of_letters_matches_pyemv() {
    let mk = icc_mk(MasterKeyDerivation::OptionB, "000000000000000005", "23");
    assert_eq!(kcv(&mk), hex!("DD73"));
    let sk = emv::derive_session_key(&mk, &hex!("001C000000000000")).unwrap();
    assert_eq!(kcv(&sk), hex!("04F8"));
    let data = hex!(
        "000000004000 000000000000 0124 8000048000 0124 191105 01 52BF4585 1800 001C"
        "06011203A0B800"
    );
    let arqc = emv::application_cryptogram(&sk, &data, Padding::Method2).unwrap();
    assert_eq!(arqc.as_bytes(), &hex!("8CAD6F2489C640B1"));
    assert_eq!(arpc2(&sk, &arqc, &hex!("12345678")), hex!("E39F1876"));
}

/// The CDOL1 data of pyemv's Visa vectors: 9F02, 9F03, 9F1A, 95, 5F2A, 9A, 9C, 9F37, 82, 9F36.
const VISA_CDOL_PREFIX: [u8; 33] =
    hex!("000000004000 000000000000 0124 8000048000 0124 191105 01 52BF4585 1800 001C");

fn with_suffix(prefix: &[u8], suffix: &[u8]) -> Vec<u8> {
    [prefix, suffix].concat()
}

/// pyemv `tests/test_cvn_hsm.py` `test_visa_cvn10`: PAN 1234567890123456, PSN 00, ATC 001C,
/// data ending with the CVR `03A06010`, ARC `3030`.
#[test]
fn visa_cvn10_matches_pyemv_hsm_vector() {
    let keys = CardKeys::derive(
        CryptogramVersion::VisaCvn10,
        &tdes(&PYEMV_IMK),
        &pan("1234567890123456"),
        PanSequenceNumber::ABSENT,
    )
    .unwrap();
    assert_eq!(kcv(keys.icc_master_key()), hex!("BAB0"));
    let inputs = TransactionInputs {
        atc: Atc(hex!("001C")),
        unpredictable_number: None,
    };
    let data = with_suffix(&VISA_CDOL_PREFIX, &hex!("03A06010"));
    let arqc = keys.generate_cryptogram(&inputs, &data).unwrap();
    assert_eq!(arqc.as_bytes(), &hex!("29CCA15AE665FA2E"));
    keys.verify_cryptogram(&inputs, &data, &arqc).unwrap();
    let response = ArpcResponse::Method1 {
        response_code: hex!("3030"),
    };
    let arpc = keys.generate_arpc(&inputs, &arqc, &response).unwrap();
    assert_eq!(arpc.as_bytes(), hex!("28993816AFAE4AEB"));
    keys.verify_arpc(&inputs, &arqc, &response, &hex!("28993816AFAE4AEB"))
        .unwrap();
}

/// pyemv `tests/test_cvn_hsm.py` `test_visa_cvn18`: as CVN 10, data ending with the issuer
/// application data `06011203A0B800`, session key check value 22C8, CSU `00000000`.
#[test]
fn visa_cvn18_and_cvn22_match_pyemv_hsm_vector() {
    for version in [CryptogramVersion::VisaCvn18, CryptogramVersion::VisaCvn22] {
        let keys = CardKeys::derive(
            version,
            &tdes(&PYEMV_IMK),
            &pan("1234567890123456"),
            psn("00"),
        )
        .unwrap();
        let inputs = TransactionInputs {
            atc: Atc::from(0x001C),
            unpredictable_number: None,
        };
        assert_eq!(kcv(&keys.cryptogram_key(&inputs).unwrap()), hex!("22C8"));
        let data = with_suffix(&VISA_CDOL_PREFIX, &hex!("06011203A0B800"));
        let arqc = keys.generate_cryptogram(&inputs, &data).unwrap();
        assert_eq!(arqc.as_bytes(), &hex!("7A788EA6B8A3E733"));
        let response = ArpcResponse::Method2 {
            card_status_update: [0; 4],
            proprietary_data: &[],
        };
        let arpc = keys.generate_arpc(&inputs, &arqc, &response).unwrap();
        assert_eq!(arpc.as_bytes(), hex!("9AF514C1"));
    }
}

/// pyemv `tests/test_cvn_hsm.py` `test_interac_cvn133`, whose session key is Mastercard's
/// (`R = ATC || 00 00 || UN`), cryptogram with padding method 2 and ARPC method 1 under the
/// session key: the M/Chip derivation modelled by `CryptogramVersion::MChip`.
#[test]
fn mchip_session_key_matches_pyemv_hsm_vector() {
    let keys = CardKeys::derive(
        CryptogramVersion::MChip,
        &tdes(&PYEMV_IMK),
        &pan("1234567890123456"),
        psn("00"),
    )
    .unwrap();
    let inputs = TransactionInputs {
        atc: Atc(hex!("001C")),
        unpredictable_number: Some(UnpredictableNumber(hex!("ABCDEF12"))),
    };
    assert_eq!(kcv(&keys.cryptogram_key(&inputs).unwrap()), hex!("2FD5"));
    let data = hex!(
        "000000009999 000000000000 0124 8000000000 0124 209906 00 ABCDEF12 1800 001C"
        "1501850440B100000000B00000000000000000000000"
    );
    let arqc = keys.generate_cryptogram(&inputs, &data).unwrap();
    assert_eq!(arqc.as_bytes(), &hex!("18932FECA2D84326"));
    let response = ArpcResponse::Method1 {
        response_code: [0, 0],
    };
    let arpc = keys.generate_arpc(&inputs, &arqc, &response).unwrap();
    assert_eq!(arpc.as_bytes(), hex!("4DF171A49396C363"));
}

/// Cross-check of A1.3.1 for AES-128 (`k = n`: `SK = AES(MK)[R]`) against FIPS-197 Appendix C.1:
/// with R equal to the FIPS plaintext, the session key is the FIPS ciphertext.
#[test]
fn aes128_session_key_is_one_encryption_of_r() {
    let mk = SecretKey::aes(&hex!("000102030405060708090a0b0c0d0e0f")).unwrap();
    let sk = emv::derive_session_key(&mk, &hex!("00112233445566778899aabbccddeeff")).unwrap();
    assert_eq!(sk.algorithm(), KeyAlgorithm::Aes128);
    assert_eq!(sk.expose_secret(), hex!("69c4e0d86a7b0430d8cdb78070b4c55a"));
}

/// Cross-check of A1.3.1 for AES-192/256 (`n < k <= 2n`): the key is the leftmost `k` bytes of
/// `AES(MK)[F1] || AES(MK)[F2]`, recomputed here block by block through the CBC-MAC of one block.
#[test]
fn aes256_and_aes192_session_keys_are_built_from_f1_and_f2() {
    let r = hex!("001C0000000000000000000000000000");
    let mut f1 = r;
    f1[2] = 0xF0;
    let mut f2 = r;
    f2[2] = 0x0F;
    for len in [24, 32] {
        let mk = SecretKey::aes(&[0x5A; 32][..len]).unwrap();
        let block = |data: &[u8]| {
            let mac = compute_mac(MacAlgorithm::CbcMac(Padding::Method1), &mk, data, 16).unwrap();
            mac.as_bytes().to_vec()
        };
        let expected = [block(&f1), block(&f2)].concat();
        let sk = emv::derive_session_key(&mk, &r).unwrap();
        assert_eq!(sk.expose_secret(), &expected[..len]);
        assert_eq!(sk.algorithm(), mk.algorithm());
    }
}

/// AES cryptograms are CMAC truncated to 8 bytes (A1.2.2); checked against the NIST SP 800-38B
/// CMAC-AES128 example 2 with the session key replaced by the NIST key.
#[test]
fn aes_cryptogram_is_truncated_cmac() {
    let key = SecretKey::aes(&hex!("2b7e151628aed2a6abf7158809cf4f3c")).unwrap();
    let data = hex!("6bc1bee22e409f96e93d7e117393172a");
    let ac = emv::application_cryptogram(&key, &data, Padding::Method2).unwrap();
    assert_eq!(ac.as_bytes(), &hex!("070a16b46b4d4144"));
    let arqc = Cryptogram::from_bytes(&hex!("070a16b46b4d4144")).unwrap();
    let response = ArpcResponse::Method2 {
        card_status_update: [0; 4],
        proprietary_data: &[],
    };
    assert_eq!(
        emv::arpc(&key, &arqc, &response).unwrap().as_bytes().len(),
        4
    );
}

#[test]
fn pan_parsing_rejects_bad_input_with_typed_errors() {
    assert_eq!(
        Pan::from_digits("41111111111111a1").unwrap_err(),
        EmvCryptoError::PanNotNumeric
    );
    assert_eq!(
        Pan::from_digits("4111 1111 1111 1111").unwrap_err(),
        EmvCryptoError::PanNotNumeric
    );
    assert_eq!(
        Pan::from_digits("12345678901").unwrap_err(),
        EmvCryptoError::PanLength { digits: 11 }
    );
    assert_eq!(
        Pan::from_digits("12345678901234567890").unwrap_err(),
        EmvCryptoError::PanLength { digits: 20 }
    );
    assert_eq!(
        Pan::from_digits("").unwrap_err(),
        EmvCryptoError::PanLength { digits: 0 }
    );
    assert_eq!(Pan::from_digits("123456789012").unwrap().len(), 12);
    assert_eq!(Pan::from_digits("1234567890123456789").unwrap().len(), 19);
    assert_eq!(EmvCryptoError::PanNotNumeric.code(), "emv_pan_not_numeric");
    assert_eq!(
        EmvCryptoError::PanLength { digits: 0 }.code(),
        "emv_pan_length"
    );
}

#[test]
fn pan_debug_shows_no_digits() {
    let printed = format!("{:?}", pan("5413330089010434"));
    assert!(!printed.contains("5413"), "{printed}");
    assert!(printed.contains("16"));
}

#[test]
fn psn_parsing_rejects_bad_input() {
    for bad in ["", "1", "123", "0a", " 1", "٠١"] {
        assert_eq!(
            PanSequenceNumber::from_digits(bad).unwrap_err(),
            EmvCryptoError::InvalidPanSequenceNumber,
            "{bad:?}"
        );
    }
    assert_eq!(PanSequenceNumber::from_bcd(0x45).unwrap(), psn("45"));
    assert_eq!(
        PanSequenceNumber::from_bcd(0x0A).unwrap_err(),
        EmvCryptoError::InvalidPanSequenceNumber
    );
    assert_eq!(
        PanSequenceNumber::from_bcd(0xA0).unwrap_err().code(),
        "emv_invalid_pan_sequence_number"
    );
}

#[test]
fn fixed_length_fields_reject_wrong_lengths() {
    assert_eq!(
        Atc::from_bytes(&[1, 2, 3]).unwrap_err(),
        EmvCryptoError::FieldLength {
            field: "ATC (9F36)",
            expected: 2,
            actual: 3
        }
    );
    assert!(matches!(
        UnpredictableNumber::from_bytes(&[1, 2]),
        Err(EmvCryptoError::FieldLength {
            expected: 4,
            actual: 2,
            ..
        })
    ));
    let err = Cryptogram::from_bytes(&[0; 7]).unwrap_err();
    assert!(matches!(
        err,
        EmvCryptoError::FieldLength {
            expected: 8,
            actual: 7,
            ..
        }
    ));
    assert_eq!(err.code(), "emv_field_length");
}

#[test]
fn unsupported_keys_are_refused() {
    let aes = SecretKey::aes(&[1; 16]).unwrap();
    let tdes3 = tdes(&[1; 24]);
    for imk in [&aes, &tdes3] {
        let err = emv::derive_icc_master_key(
            MasterKeyDerivation::OptionA,
            imk,
            &pan("1234567890123456"),
            PanSequenceNumber::ABSENT,
        )
        .unwrap_err();
        assert_eq!(
            err,
            EmvCryptoError::UnsupportedKey {
                algorithm: imk.algorithm()
            }
        );
        assert_eq!(err.code(), "emv_unsupported_key");
    }
    assert!(matches!(
        emv::derive_session_key(&tdes3, &[0; 8]),
        Err(EmvCryptoError::UnsupportedKey { .. })
    ));
    assert!(matches!(
        emv::application_cryptogram(&tdes3, b"data", Padding::Method2),
        Err(EmvCryptoError::UnsupportedKey { .. })
    ));
    let arqc = Cryptogram::from_bytes(&[0; 8]).unwrap();
    assert!(matches!(
        emv::arpc(
            &aes,
            &arqc,
            &ArpcResponse::Method1 {
                response_code: [0, 0]
            }
        ),
        Err(EmvCryptoError::UnsupportedKey { .. })
    ));
    for version in [
        CryptogramVersion::VisaCvn10,
        CryptogramVersion::VisaCvn18,
        CryptogramVersion::VisaCvn22,
        CryptogramVersion::MChip,
    ] {
        assert!(matches!(
            CardKeys::from_icc_master_key(version, aes.clone()),
            Err(EmvCryptoError::UnsupportedKey { .. })
        ));
    }
    assert!(CardKeys::from_icc_master_key(CryptogramVersion::Emv, aes).is_ok());
}

#[test]
fn diversification_value_must_be_one_block() {
    let err = emv::derive_session_key(&tdes(&PYEMV_IMK), &[0; 16]).unwrap_err();
    assert_eq!(
        err,
        EmvCryptoError::DiversificationLength {
            expected: 8,
            actual: 16
        }
    );
    assert_eq!(err.code(), "emv_diversification_length");
    let aes = SecretKey::aes(&[1; 32]).unwrap();
    assert_eq!(
        emv::derive_session_key(&aes, &[0; 8]).unwrap_err(),
        EmvCryptoError::DiversificationLength {
            expected: 16,
            actual: 8
        }
    );
}

#[test]
fn mchip_needs_the_unpredictable_number() {
    let keys = CardKeys::from_icc_master_key(CryptogramVersion::MChip, tdes(&PYEMV_IMK)).unwrap();
    let inputs = TransactionInputs {
        atc: Atc::from(1),
        unpredictable_number: None,
    };
    let err = keys.generate_cryptogram(&inputs, b"data").unwrap_err();
    assert_eq!(
        err,
        EmvCryptoError::MissingUnpredictableNumber {
            version: CryptogramVersion::MChip
        }
    );
    assert_eq!(err.code(), "emv_missing_unpredictable_number");
}

#[test]
fn versions_refuse_arpc_methods_they_do_not_use() {
    let inputs = TransactionInputs {
        atc: Atc::from(1),
        unpredictable_number: Some(UnpredictableNumber([1, 2, 3, 4])),
    };
    let arqc = Cryptogram::from_bytes(&[0; 8]).unwrap();
    let method1 = ArpcResponse::Method1 {
        response_code: [0x30, 0x30],
    };
    let method2 = ArpcResponse::Method2 {
        card_status_update: [0; 4],
        proprietary_data: &[],
    };
    let cases = [
        (CryptogramVersion::VisaCvn10, &method2, ArpcMethod::Method2),
        (CryptogramVersion::VisaCvn18, &method1, ArpcMethod::Method1),
        (CryptogramVersion::VisaCvn22, &method1, ArpcMethod::Method1),
        (CryptogramVersion::MChip, &method2, ArpcMethod::Method2),
    ];
    for (version, response, method) in cases {
        let keys = CardKeys::from_icc_master_key(version, tdes(&PYEMV_IMK)).unwrap();
        let err = keys.generate_arpc(&inputs, &arqc, response).unwrap_err();
        assert_eq!(err, EmvCryptoError::ArpcMethodNotUsed { version, method });
        assert_eq!(err.code(), "emv_arpc_method_not_used");
    }
}

#[test]
fn proprietary_data_longer_than_eight_bytes_is_refused() {
    let arqc = Cryptogram::from_bytes(&[0; 8]).unwrap();
    let response = ArpcResponse::Method2 {
        card_status_update: [0; 4],
        proprietary_data: &[0; 9],
    };
    let err = emv::arpc(&tdes(&PYEMV_IMK), &arqc, &response).unwrap_err();
    assert_eq!(err, EmvCryptoError::ProprietaryDataTooLong { len: 9 });
    assert_eq!(err.code(), "emv_proprietary_data_too_long");
}

#[test]
fn wrong_cryptograms_and_arpcs_are_mismatches() {
    let keys = CardKeys::from_icc_master_key(CryptogramVersion::Emv, tdes(&PYEMV_IMK)).unwrap();
    let inputs = TransactionInputs {
        atc: Atc::from(7),
        unpredictable_number: None,
    };
    let arqc = keys.generate_cryptogram(&inputs, b"cdol data").unwrap();
    let mut wrong = *arqc.as_bytes();
    wrong[0] ^= 1;
    let wrong = Cryptogram::from_bytes(&wrong).unwrap();
    let err = keys
        .verify_cryptogram(&inputs, b"cdol data", &wrong)
        .unwrap_err();
    assert_eq!(err, EmvCryptoError::CryptogramMismatch);
    assert_eq!(err.code(), "emv_cryptogram_mismatch");
    let response = ArpcResponse::Method1 {
        response_code: [0x30, 0x30],
    };
    let err = keys
        .verify_arpc(&inputs, &arqc, &response, &[0; 8])
        .unwrap_err();
    assert_eq!(err, EmvCryptoError::ArpcMismatch);
    assert_eq!(err.code(), "emv_arpc_mismatch");
    // A received ARPC of the wrong length is a mismatch too, not a panic.
    assert_eq!(
        keys.verify_arpc(&inputs, &arqc, &response, &[0; 3]),
        Err(EmvCryptoError::ArpcMismatch)
    );
}

fn any_version() -> impl Strategy<Value = CryptogramVersion> {
    prop_oneof![
        Just(CryptogramVersion::Emv),
        Just(CryptogramVersion::VisaCvn10),
        Just(CryptogramVersion::VisaCvn18),
        Just(CryptogramVersion::VisaCvn22),
        Just(CryptogramVersion::MChip),
    ]
}

fn any_pan_digits() -> impl Strategy<Value = String> {
    "[0-9]{12,19}"
}

proptest! {
    /// Issuer and card agree: a cryptogram generated from the issuer master key verifies; any
    /// change to the CDOL data, the ATC or the cryptogram is a mismatch.
    #[test]
    fn cryptograms_verify_and_tampering_is_caught(
        version in any_version(),
        imk in prop::array::uniform16(any::<u8>()),
        pan_digits in any_pan_digits(),
        psn_value in 0u8..100,
        atc in any::<u16>(),
        un in prop::array::uniform4(any::<u8>()),
        data in prop::collection::vec(any::<u8>(), 1..64),
        flip in any::<usize>(),
    ) {
        let psn = PanSequenceNumber::from_digits(&format!("{psn_value:02}")).unwrap();
        let keys = CardKeys::derive(version, &tdes(&imk), &pan(&pan_digits), psn).unwrap();
        let inputs = TransactionInputs {
            atc: Atc::from(atc),
            unpredictable_number: Some(UnpredictableNumber(un)),
        };
        let arqc = keys.generate_cryptogram(&inputs, &data).unwrap();
        prop_assert!(keys.verify_cryptogram(&inputs, &data, &arqc).is_ok());

        let mut tampered = data.clone();
        tampered[flip % data.len()] ^= 1 << (flip % 8);
        prop_assert_eq!(
            keys.verify_cryptogram(&inputs, &tampered, &arqc),
            Err(EmvCryptoError::CryptogramMismatch)
        );
        let mut wrong = *arqc.as_bytes();
        wrong[flip % 8] ^= 0x40;
        prop_assert_eq!(
            keys.verify_cryptogram(&inputs, &data, &Cryptogram::from_bytes(&wrong).unwrap()),
            Err(EmvCryptoError::CryptogramMismatch)
        );
        // Visa CVN 10 has no session key, so only the other versions depend on the ATC.
        if version != CryptogramVersion::VisaCvn10 {
            let other_atc = TransactionInputs { atc: Atc::from(atc.wrapping_add(1)), ..inputs };
            prop_assert_eq!(
                keys.verify_cryptogram(&other_atc, &data, &arqc),
                Err(EmvCryptoError::CryptogramMismatch)
            );
        }
    }

    /// The card accepts the issuer's ARPC for the response it was computed over, and no other.
    #[test]
    fn arpcs_verify_for_their_own_response_only(
        version in any_version(),
        mk in prop::array::uniform16(any::<u8>()),
        arqc in prop::array::uniform8(any::<u8>()),
        code in prop::array::uniform2(any::<u8>()),
        csu in prop::array::uniform4(any::<u8>()),
        proprietary in prop::collection::vec(any::<u8>(), 0..=8),
    ) {
        let keys = CardKeys::from_icc_master_key(version, tdes(&mk)).unwrap();
        let inputs = TransactionInputs {
            atc: Atc::from(1),
            unpredictable_number: Some(UnpredictableNumber([9; 4])),
        };
        let arqc = Cryptogram::from_bytes(&arqc).unwrap();
        let response = if version.uses_arpc_method(ArpcMethod::Method1) {
            ArpcResponse::Method1 { response_code: code }
        } else {
            ArpcResponse::Method2 { card_status_update: csu, proprietary_data: &proprietary }
        };
        let arpc = keys.generate_arpc(&inputs, &arqc, &response).unwrap();
        prop_assert!(keys.verify_arpc(&inputs, &arqc, &response, arpc.as_bytes()).is_ok());
        let other = match response {
            ArpcResponse::Method1 { response_code } => ArpcResponse::Method1 {
                response_code: [response_code[0] ^ 1, response_code[1]],
            },
            _ => ArpcResponse::Method2 {
                card_status_update: [csu[0] ^ 1, csu[1], csu[2], csu[3]],
                proprietary_data: &proprietary,
            },
        };
        prop_assert_eq!(
            keys.verify_arpc(&inputs, &arqc, &other, arpc.as_bytes()),
            Err(EmvCryptoError::ArpcMismatch)
        );
    }

    /// Option B is option A for PANs of up to 16 digits (A1.4.2), and every ICC master key has
    /// odd parity (A1.4.1).
    #[test]
    fn option_b_equals_option_a_up_to_sixteen_digits(
        imk in prop::array::uniform16(any::<u8>()),
        pan_digits in any_pan_digits(),
        psn_value in 0u8..100,
    ) {
        let psn = PanSequenceNumber::from_digits(&format!("{psn_value:02}")).unwrap();
        let imk = tdes(&imk);
        let pan = pan(&pan_digits);
        let a = emv::derive_icc_master_key(MasterKeyDerivation::OptionA, &imk, &pan, psn).unwrap();
        let b = emv::derive_icc_master_key(MasterKeyDerivation::OptionB, &imk, &pan, psn).unwrap();
        prop_assert_eq!(pan_digits.len() <= 16, a == b);
        for key in [&a, &b] {
            prop_assert!(key.expose_secret().iter().all(|byte| byte.count_ones() % 2 == 1));
        }
    }

    /// PAN parsing never panics, and accepts exactly the strings of 12 to 19 ASCII digits.
    #[test]
    fn pan_parsing_never_panics(text in "\\PC{0,25}") {
        let valid = (12..=19).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
        prop_assert_eq!(Pan::from_digits(&text).is_ok(), valid);
    }

    /// Field parsers accept exactly their length and never panic on random bytes.
    #[test]
    fn field_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..12)) {
        prop_assert_eq!(Atc::from_bytes(&bytes).is_ok(), bytes.len() == 2);
        prop_assert_eq!(UnpredictableNumber::from_bytes(&bytes).is_ok(), bytes.len() == 4);
        prop_assert_eq!(Cryptogram::from_bytes(&bytes).is_ok(), bytes.len() == 8);
        if let Some(first) = bytes.first() {
            let valid = first >> 4 <= 9 && first & 0x0F <= 9;
            prop_assert_eq!(PanSequenceNumber::from_bcd(*first).is_ok(), valid);
        }
    }

    /// Session keys from random diversification values never panic: one block is accepted,
    /// anything else is a typed length error.
    #[test]
    fn session_key_derivation_checks_the_length(
        key_len in prop_oneof![Just(16usize), Just(24), Just(32)],
        r in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mk = SecretKey::aes(&[3u8; 32][..key_len]).unwrap();
        let result = emv::derive_session_key(&mk, &r);
        if r.len() == 16 {
            prop_assert_eq!(result.unwrap().algorithm(), mk.algorithm());
        } else {
            prop_assert_eq!(
                result.unwrap_err(),
                EmvCryptoError::DiversificationLength { expected: 16, actual: r.len() }
            );
        }
    }
}
