//! Real attestation chains published in Google's reference verifier test data (see
//! `tests/data/README.md`), verified at an injected instant.

use android_attestation::{
    Outcome, Policy, RevocationList, SecurityLevel, TrustAnchors, Verification, VerifiedBootState,
    parse_chain, verify, verify_bytes,
};

const NORMAL: &[u8] = include_bytes!("data/normal_cert_chain.pem");
const ATTEST_KEYS: &[u8] = include_bytes!("data/cert_chain_with_attest_keys.pem");
const STATUS: &[u8] = include_bytes!("data/status.json");
/// 2023-03-01T00:00:00Z: inside the validity of the chain's short-lived RKP intermediates
/// (Droid CA3 2023-02-19..2023-03-24).
const AT: i64 = 1_677_628_800;
/// SHA-256 of the example app's signing certificate, from the leaf's attestationApplicationId.
const DIGEST: &str = "68856d1d06f637d6255face5b224db43a9514ace538bb1548b844480fcd85c87";

fn policy() -> Policy {
    Policy {
        expected_challenge: Some(b"challenge".to_vec()),
        allowed_packages: vec!["com.google.attestationexample".to_owned()],
        allowed_signing_digests: vec![hex::decode(DIGEST).unwrap()],
        ..Policy::default()
    }
}

fn run(
    input: &[u8],
    policy: &Policy,
    revocations: Option<&RevocationList>,
    at: i64,
) -> Verification {
    verify_bytes(input, &TrustAnchors::google(), policy, revocations, at).unwrap()
}

fn outcome(v: &Verification, name: &str) -> Outcome {
    v.check(name)
        .unwrap_or_else(|| panic!("no check {name}"))
        .outcome
}

#[test]
fn real_chain_verifies_at_its_time() {
    let list = RevocationList::parse(STATUS, AT - 3600).unwrap();
    let v = run(NORMAL, &policy(), Some(&list), AT);
    let failed: Vec<_> = v.failed().collect();
    assert!(v.accepted, "{failed:?}");
    assert_eq!(v.attestation_certificate, 0);
    assert_eq!(v.leaf_key_type, "ec_p256");
    assert_eq!(v.leaf_public_key.len(), 65);
    assert!(
        v.check("chain_to_google_root")
            .unwrap()
            .reason
            .contains("google_rsa_4096_root")
    );
    for name in [
        "attestation_certificate_is_leaf",
        "chain_issuer_subject",
        "chain_signatures",
        "chain_validity",
        "chain_to_google_root",
        "challenge_matches",
        "security_level_attestation",
        "security_level_keymint",
        "verified_boot_verified",
        "device_locked",
        "package_allowed",
        "signing_digest_allowed",
        "revocation_list_fresh",
        "not_revoked",
    ] {
        assert_eq!(outcome(&v, name), Outcome::Pass, "{name}");
    }
    assert_eq!(v.chain.len(), 5);
    assert_eq!(v.chain[4].serial, "d50ff25ba3f2d6b3");
    // Serial 0388266760658996860E: leading zero dropped, lowercase.
    assert_eq!(v.chain[3].serial, "388266760658996860e");
}

#[test]
fn real_key_description_fields() {
    // Expected values read independently with `openssl asn1parse -strparse` on the leaf.
    let v = run(NORMAL, &policy(), None, AT);
    let kd = &v.key_description;
    assert_eq!(kd.attestation_version, 200);
    assert_eq!(kd.keymint_version, 200);
    assert_eq!(
        kd.attestation_security_level,
        SecurityLevel::TrustedEnvironment
    );
    assert_eq!(kd.keymint_security_level, SecurityLevel::TrustedEnvironment);
    assert_eq!(kd.attestation_challenge, b"challenge");
    assert!(kd.unique_id.is_empty());
    let hw = &kd.hardware_enforced;
    assert_eq!(hw.purposes, vec![2]);
    assert_eq!(hw.algorithm, Some(3));
    assert_eq!(hw.key_size, Some(256));
    assert_eq!(hw.digests, vec![4]);
    assert_eq!(hw.ec_curve, Some(1));
    assert!(hw.no_auth_required);
    assert_eq!(hw.origin, Some(0));
    assert_eq!(hw.os_version, Some(0x01_fbd0));
    assert_eq!(hw.os_patch_level, Some(0x03_163e));
    assert_eq!(hw.vendor_patch_level, Some(0x0134_b03d));
    assert_eq!(hw.boot_patch_level, Some(0x0134_b03d));
    let rot = hw.root_of_trust.as_ref().unwrap();
    assert!(rot.device_locked);
    assert_eq!(rot.verified_boot_state, VerifiedBootState::Verified);
    assert_eq!(
        hex::encode(&rot.verified_boot_key),
        "26ac4c60beb1e378357cad0c3061347af8df6fbabbb0d8cea2445855ee01e368"
    );
    assert_eq!(
        hex::encode(rot.verified_boot_hash.as_ref().unwrap()),
        "eaa453395774dfa111215c607b7d09f12557f76515d1fa971696c71dab167e41"
    );
    let sw = &kd.software_enforced;
    assert_eq!(sw.creation_date_time, Some(0x0186_c1a3_4296));
    // [400], [401], [402]: active/origination/usage expiry dates, not read but listed.
    assert_eq!(sw.other_tags, vec![400, 401, 402]);
    let app = sw.attestation_application_id.as_ref().unwrap();
    assert_eq!(app.packages.len(), 1);
    assert_eq!(app.packages[0].name, "com.google.attestationexample");
    assert_eq!(app.packages[0].version, 1);
    assert_eq!(hex::encode(&app.signature_digests[0]), DIGEST);
    assert!(kd.quirks.is_empty(), "{:?}", kd.quirks);
}

#[test]
fn time_is_injected_expired_intermediates_refuse() {
    // A year later the RKP intermediates have expired; the leaf's own dates never count.
    let v = run(NORMAL, &policy(), None, AT + 365 * 86_400);
    assert!(!v.accepted);
    assert_eq!(outcome(&v, "chain_validity"), Outcome::Fail);
    assert_eq!(v.failed().count(), 1);
}

#[test]
fn challenge_mismatch_refuses() {
    let mut p = policy();
    p.expected_challenge = Some(b"challengf".to_vec());
    let v = run(NORMAL, &p, None, AT);
    assert!(!v.accepted);
    assert_eq!(outcome(&v, "challenge_matches"), Outcome::Fail);
    assert_eq!(v.failed().count(), 1);
}

#[test]
fn package_and_digest_not_allowed_refuse() {
    let mut p = policy();
    p.allowed_packages = vec!["com.sunbay.softpos".to_owned()];
    p.allowed_signing_digests = vec![vec![0u8; 32]];
    let v = run(NORMAL, &p, None, AT);
    assert_eq!(outcome(&v, "package_allowed"), Outcome::Fail);
    assert_eq!(outcome(&v, "signing_digest_allowed"), Outcome::Fail);
    assert!(!v.accepted);
}

#[test]
fn strongbox_required_refuses_tee() {
    let mut p = policy();
    p.required_security_level = SecurityLevel::StrongBox;
    let v = run(NORMAL, &p, None, AT);
    assert_eq!(outcome(&v, "security_level_attestation"), Outcome::Fail);
    assert_eq!(outcome(&v, "security_level_keymint"), Outcome::Fail);
}

fn ders(pem: &[u8]) -> Vec<Vec<u8>> {
    parse_chain(pem)
        .unwrap()
        .iter()
        .map(|c| c.der().to_vec())
        .collect()
}

#[test]
fn tampered_certificate_fails_its_signature() {
    let mut certs = ders(NORMAL);
    // Flip one byte of the leaf's attestationChallenge: still parses, no longer signed.
    let at = certs[0].windows(9).position(|w| w == b"challenge").unwrap();
    certs[0][at] ^= 0x01;
    let chain = android_attestation::from_ders(certs).unwrap();
    let v = verify(
        &chain,
        &TrustAnchors::google(),
        &Policy::default(),
        None,
        AT,
    )
    .unwrap();
    assert!(!v.accepted);
    let check = v.check("chain_signatures").unwrap();
    assert_eq!(check.outcome, Outcome::Fail);
    assert!(check.reason.contains("[0]"), "{}", check.reason);

    // A flipped byte in the RSA root's signature breaks its self-signature.
    let mut certs = ders(NORMAL);
    let last = certs[4].len() - 5;
    certs[4][last] ^= 0x80;
    let chain = android_attestation::from_ders(certs).unwrap();
    let v = verify(
        &chain,
        &TrustAnchors::google(),
        &Policy::default(),
        None,
        AT,
    )
    .unwrap();
    assert!(v.check("chain_signatures").unwrap().reason.contains("[4]"));
}

#[test]
fn unknown_root_refuses() {
    let mut anchors = TrustAnchors::empty();
    anchors
        .add_pem("ec_only", include_bytes!("../data/google_root_ec_p384.pem"))
        .unwrap();
    let v = verify_bytes(NORMAL, &anchors, &policy(), None, AT).unwrap();
    assert!(!v.accepted);
    assert_eq!(outcome(&v, "chain_to_google_root"), Outcome::Fail);
    // Signatures between the chain's own certificates still verify.
    assert_eq!(outcome(&v, "chain_signatures"), Outcome::Pass);
}

#[test]
fn root_may_be_omitted() {
    let mut certs = ders(NORMAL);
    certs.pop();
    let chain = android_attestation::from_ders(certs).unwrap();
    let v = verify(&chain, &TrustAnchors::google(), &policy(), None, AT).unwrap();
    assert!(v.accepted, "{:?}", v.failed().collect::<Vec<_>>());
}

#[test]
fn certificates_after_the_attestation_certificate_refuse() {
    // Google's attest-key sample: two app-controlled keys certify further keys below the
    // hardware-signed attestation certificate (index 2).
    let v = run(ATTEST_KEYS, &policy(), None, AT);
    assert!(!v.accepted);
    assert_eq!(v.attestation_certificate, 2);
    let check = v.check("attestation_certificate_is_leaf").unwrap();
    assert_eq!(check.outcome, Outcome::Fail);
    assert!(check.reason.starts_with("2 certificate(s)"));
    // The chain itself is genuine: only the position rule refuses it.
    assert_eq!(outcome(&v, "chain_signatures"), Outcome::Pass);
    assert_eq!(outcome(&v, "chain_to_google_root"), Outcome::Pass);
    assert_eq!(v.key_description.hardware_enforced.purposes, vec![7]);
}

#[test]
fn revoked_serial_refuses() {
    // Droid CA3's serial, written with a leading zero and upper case.
    let list = RevocationList::parse(
        br#"{"entries":{"00D05FACF443ED535548D994F6845E6D3C":{"status":"REVOKED","reason":"KEY_COMPROMISE"}}}"#,
        AT,
    )
    .unwrap();
    let v = run(NORMAL, &policy(), Some(&list), AT);
    assert!(!v.accepted);
    let check = v.check("not_revoked").unwrap();
    assert_eq!(check.outcome, Outcome::Fail);
    assert!(check.reason.contains("certificate 1") && check.reason.contains("KEY_COMPROMISE"));
}

#[test]
fn stale_revocation_list_refuses() {
    let list = RevocationList::parse(STATUS, AT - 2 * 86_400).unwrap();
    let v = run(NORMAL, &policy(), Some(&list), AT);
    assert!(!v.accepted);
    assert_eq!(outcome(&v, "revocation_list_fresh"), Outcome::Fail);
    assert_eq!(outcome(&v, "not_revoked"), Outcome::Pass);
}

#[test]
fn missing_list_refuses_only_when_required() {
    let mut p = policy();
    let v = run(NORMAL, &p, None, AT);
    assert_eq!(outcome(&v, "not_revoked"), Outcome::Skipped);
    assert!(v.accepted);
    p.require_revocation_list = true;
    let v = run(NORMAL, &p, None, AT);
    assert_eq!(outcome(&v, "not_revoked"), Outcome::Fail);
    assert!(!v.accepted);
}

#[test]
fn der_input_is_accepted() {
    let der: Vec<u8> = ders(NORMAL).concat();
    let v = run(&der, &policy(), None, AT);
    assert!(v.accepted);
}

#[test]
fn bad_input_gives_typed_errors() {
    let anchors = TrustAnchors::google();
    let p = Policy::default();
    let code = |input: &[u8]| {
        verify_bytes(input, &anchors, &p, None, AT)
            .unwrap_err()
            .code()
    };
    assert_eq!(code(b""), "attestation_empty_input");
    assert_eq!(code(b"   \n"), "attestation_empty_input");
    assert_eq!(
        code(b"garbage that is not a chain"),
        "attestation_bad_encoding"
    );
    assert_eq!(
        code(&NORMAL[..NORMAL.len() / 2]),
        "attestation_bad_encoding"
    );
    let der: Vec<u8> = ders(NORMAL).concat();
    assert_eq!(code(&der[..der.len() - 10]), "attestation_bad_encoding");
    let first_only = ders(NORMAL)[0].clone();
    assert_eq!(code(&first_only), "attestation_chain_length");
    // Two valid certificates without the extension.
    let issuers: Vec<u8> = ders(NORMAL)[1..].concat();
    assert_eq!(code(&issuers), "attestation_extension_missing");
    // A certificate body replaced by a well-formed but meaningless SEQUENCE.
    let mut certs = ders(NORMAL);
    certs[1] = vec![0x30, 0x03, 0x02, 0x01, 0x00];
    assert_eq!(code(&certs.concat()), "attestation_bad_certificate");
}

#[test]
fn keymaster_4_strongbox_leaf_parses() {
    // A Keymaster 4 (attestation version 3) StrongBox leaf from Google's examples.
    let pem = include_bytes!("data/key_RSA_StrongBox_on_cert0.pem");
    let body: String = std::str::from_utf8(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64_decode(&body);
    let cert = android_attestation::ChainCert::from_der(der, 0).unwrap();
    let ext = cert
        .extension(android_attestation::KEY_DESCRIPTION_OID)
        .unwrap();
    let kd = android_attestation::KeyDescription::parse(ext).unwrap();
    assert_eq!(kd.attestation_version, 3);
    assert_eq!(kd.keymint_version, 4);
    assert_eq!(kd.attestation_security_level, SecurityLevel::StrongBox);
    assert_eq!(kd.keymint_security_level, SecurityLevel::StrongBox);
    assert_eq!(kd.attestation_challenge, b"abc");
    let app = kd.application_id().unwrap();
    assert_eq!(app.packages.len(), 13);
    assert!(
        app.packages
            .iter()
            .any(|p| p.name == "com.android.keychain" && p.version == 29)
    );
    let rot = kd.root_of_trust().unwrap();
    assert!(!rot.device_locked);
    assert_eq!(rot.verified_boot_state, VerifiedBootState::Unverified);
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
