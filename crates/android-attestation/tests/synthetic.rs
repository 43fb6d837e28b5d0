//! Chains built in the test with rcgen under a test-only root, carrying KeyDescriptions from
//! the crate's encoder: cases real chains cannot show (software level, unlocked bootloader,
//! newer attestation versions).

use android_attestation::{
    AttestationApplicationId, AuthorizationList, KeyDescription, Outcome, PackageInfo, Policy,
    RootOfTrust, SecurityLevel, TrustAnchors, VerifiedBootState, verify_bytes,
};
use rcgen::{BasicConstraints, CertificateParams, CustomExtension, IsCa, Issuer, KeyPair};

const OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 1, 17];
const NOW: i64 = 1_790_000_000;

fn description(version: i64, level: SecurityLevel) -> KeyDescription {
    KeyDescription {
        attestation_version: version,
        attestation_security_level: level,
        keymint_version: version,
        keymint_security_level: level,
        attestation_challenge: b"server-challenge".to_vec(),
        unique_id: Vec::new(),
        software_enforced: AuthorizationList {
            creation_date_time: Some(1_758_900_680_964),
            attestation_application_id: Some(AttestationApplicationId {
                packages: vec![PackageInfo {
                    name: "com.sunbay.softpos".to_owned(),
                    version: 42,
                }],
                signature_digests: vec![vec![0xab; 32]],
            }),
            ..AuthorizationList::default()
        },
        hardware_enforced: AuthorizationList {
            purposes: vec![2, 3],
            algorithm: Some(3),
            key_size: Some(256),
            digests: vec![4],
            ec_curve: Some(1),
            no_auth_required: true,
            origin: Some(0),
            root_of_trust: Some(RootOfTrust {
                verified_boot_key: vec![1; 32],
                device_locked: true,
                verified_boot_state: VerifiedBootState::Verified,
                verified_boot_hash: Some(vec![2; 32]),
            }),
            os_version: Some(160_000),
            os_patch_level: Some(202_602),
            attestation_id_model: Some("Pixel 9a".to_owned()),
            vendor_patch_level: Some(20_260_205),
            boot_patch_level: Some(20_260_205),
            ..AuthorizationList::default()
        },
        quirks: Vec::new(),
    }
}

/// (chain PEM leaf first, root PEM)
fn chain(kd: &KeyDescription) -> (String, String) {
    let root_key = KeyPair::generate().unwrap();
    let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test attestation root");
    let root = root_params.self_signed(&root_key).unwrap();
    let issuer = Issuer::new(root_params, root_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Android Keystore Key");
    leaf_params
        .custom_extensions
        .push(CustomExtension::from_oid_content(OID, kd.to_der()));
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    (format!("{}{}", leaf.pem(), root.pem()), root.pem())
}

fn anchors(root_pem: &str) -> TrustAnchors {
    let mut anchors = TrustAnchors::google();
    anchors.add_pem("test_root", root_pem.as_bytes()).unwrap();
    anchors
}

fn policy() -> Policy {
    Policy {
        expected_challenge: Some(b"server-challenge".to_vec()),
        allowed_packages: vec!["com.sunbay.softpos".to_owned()],
        allowed_signing_digests: vec![vec![0xab; 32]],
        ..Policy::default()
    }
}

#[test]
fn encoder_round_trips_through_a_signed_chain() {
    for version in [3, 4, 100, 200, 300, 400, 500] {
        let kd = description(version, SecurityLevel::TrustedEnvironment);
        let (pem, root) = chain(&kd);
        let v = verify_bytes(pem.as_bytes(), &anchors(&root), &policy(), None, NOW).unwrap();
        assert!(
            v.accepted,
            "{version}: {:?}",
            v.failed().collect::<Vec<_>>()
        );
        assert_eq!(v.key_description, kd);
        assert!(
            v.check("chain_to_google_root")
                .unwrap()
                .reason
                .contains("test_root")
        );
    }
}

#[test]
fn software_level_refused_when_tee_required() {
    let kd = description(300, SecurityLevel::Software);
    let (pem, root) = chain(&kd);
    let v = verify_bytes(pem.as_bytes(), &anchors(&root), &policy(), None, NOW).unwrap();
    assert!(!v.accepted);
    assert_eq!(
        v.check("security_level_attestation").unwrap().outcome,
        Outcome::Fail
    );
    assert_eq!(
        v.check("security_level_keymint").unwrap().outcome,
        Outcome::Fail
    );
    let mut lenient = policy();
    lenient.required_security_level = SecurityLevel::Software;
    let v = verify_bytes(pem.as_bytes(), &anchors(&root), &lenient, None, NOW).unwrap();
    assert!(v.accepted);
}

#[test]
fn unlocked_bootloader_refused_unless_policy_allows() {
    let mut kd = description(400, SecurityLevel::StrongBox);
    let rot = kd.hardware_enforced.root_of_trust.as_mut().unwrap();
    rot.device_locked = false;
    rot.verified_boot_state = VerifiedBootState::Unverified;
    let (pem, root) = chain(&kd);
    let v = verify_bytes(pem.as_bytes(), &anchors(&root), &policy(), None, NOW).unwrap();
    assert_eq!(v.check("device_locked").unwrap().outcome, Outcome::Fail);
    assert_eq!(
        v.check("verified_boot_verified").unwrap().outcome,
        Outcome::Fail
    );
    let mut allow = policy();
    allow.require_device_locked = false;
    allow.require_verified_boot = false;
    let v = verify_bytes(pem.as_bytes(), &anchors(&root), &allow, None, NOW).unwrap();
    assert!(v.accepted);
    assert_eq!(v.check("device_locked").unwrap().outcome, Outcome::Skipped);
}

#[test]
fn test_root_is_not_trusted_by_default() {
    let kd = description(400, SecurityLevel::TrustedEnvironment);
    let (pem, _) = chain(&kd);
    let v = verify_bytes(
        pem.as_bytes(),
        &TrustAnchors::google(),
        &policy(),
        None,
        NOW,
    )
    .unwrap();
    assert!(!v.accepted);
    assert_eq!(
        v.check("chain_to_google_root").unwrap().outcome,
        Outcome::Fail
    );
}

#[test]
fn serials_beyond_rfc5280_limits_are_tolerated() {
    // Some OEM batch certificates have serials longer than RFC 5280's 20 octets; Google's
    // verifier (Java's parser) reads them, so this one does too.
    let root_key = KeyPair::generate().unwrap();
    let mut root_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test attestation root");
    let root = root_params.self_signed(&root_key).unwrap();
    let issuer = Issuer::new(root_params, root_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x7f; 25]));
    leaf_params
        .custom_extensions
        .push(CustomExtension::from_oid_content(
            OID,
            description(300, SecurityLevel::TrustedEnvironment).to_der(),
        ));
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let pem = format!("{}{}", leaf.pem(), root.pem());
    let v = verify_bytes(pem.as_bytes(), &anchors(&root.pem()), &policy(), None, NOW).unwrap();
    assert!(v.accepted, "{:?}", v.failed().collect::<Vec<_>>());
    assert_eq!(v.chain[0].serial, "7f".repeat(25));
}
