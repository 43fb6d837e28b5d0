use hex_literal::hex;

use super::*;

/// RFC 8032, section 7.1, TEST 1 and TEST 2 (Ed25519).
struct Vector {
    secret: [u8; 32],
    public: [u8; 32],
    message: &'static [u8],
    signature: [u8; 64],
}

const RFC8032: &[Vector] = &[
    Vector {
        secret: hex!("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
        public: hex!("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
        message: &[],
        signature: hex!(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
    },
    Vector {
        secret: hex!("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"),
        public: hex!("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"),
        message: &hex!("72"),
        signature: hex!(
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
    },
];

#[test]
fn rfc8032_vectors_through_our_key_parsers() {
    for vector in RFC8032 {
        let signing = parse_signing_key(&hex::encode(vector.secret)).unwrap();
        assert_eq!(signing.verifying_key().to_bytes(), vector.public);
        assert_eq!(signing.sign(vector.message).to_bytes(), vector.signature);
        let public = parse_public_key(&B64.encode(vector.public)).unwrap();
        public
            .verify_strict(vector.message, &Signature::from_bytes(&vector.signature))
            .unwrap();
    }
}

fn kernel_manifest() -> Manifest {
    Manifest {
        kind: ArtifactKind::Kernel,
        name: "sunbay-emv-kernel".to_owned(),
        version: "1.2.0".to_owned(),
        abi_version: Some(1),
        schemes: vec!["visa".to_owned(), "mastercard".to_owned()],
        aids: vec!["A0000000041010".to_owned(), "A0000000031010".to_owned()],
        sha256: sha256_hex(b"kernel bytes"),
        size: 12,
        created_at: 1_790_000_000,
    }
}

fn ring() -> (SigningKey, KeyRing) {
    let key = SigningKey::from_bytes(&RFC8032[0].secret);
    let ring = KeyRing::parse(&format!(
        "# release keys\nrel-2026={}\n, other={}",
        hex::encode(key.verifying_key().to_bytes()),
        B64.encode(RFC8032[1].public)
    ))
    .unwrap();
    (key, ring)
}

#[test]
fn canonical_bytes_are_the_documented_text() {
    let bytes = kernel_manifest().canonical_bytes().unwrap();
    let expected = format!(
        "softpos-release-manifest-v1\nkind:kernel\nname:sunbay-emv-kernel\nversion:1.2.0\nabi_version:1\n\
         schemes:mastercard,visa\naids:A0000000031010,A0000000041010\nsha256:{}\nsize:12\ncreated_at:1790000000\n",
        sha256_hex(b"kernel bytes")
    );
    assert_eq!(String::from_utf8(bytes).unwrap(), expected);
    // List order does not change the bytes: they are sorted.
    let mut reordered = kernel_manifest();
    reordered.schemes.reverse();
    reordered.aids.reverse();
    assert_eq!(
        reordered.canonical_bytes().unwrap(),
        kernel_manifest().canonical_bytes().unwrap()
    );
    let mut terminal = kernel_manifest();
    terminal.kind = ArtifactKind::Terminal;
    terminal.abi_version = None;
    let text = String::from_utf8(terminal.canonical_bytes().unwrap()).unwrap();
    assert!(text.contains("\nkind:terminal\n") && text.contains("\nabi_version:-\n"));
}

#[test]
fn sign_then_verify_and_every_tamper_fails() {
    let (key, ring) = ring();
    let signed = kernel_manifest().sign("rel-2026", &key).unwrap();
    signed.verify(&ring).unwrap();
    // The JSON form round-trips and still verifies.
    let json = serde_json::to_string(&signed).unwrap();
    serde_json::from_str::<SignedManifest>(&json)
        .unwrap()
        .verify(&ring)
        .unwrap();

    let mut tampered = signed.clone();
    tampered.manifest.version = "1.2.1".to_owned();
    assert_eq!(tampered.verify(&ring), Err(ManifestError::SignatureInvalid));
    let mut tampered = signed.clone();
    tampered.manifest.sha256 = sha256_hex(b"other bytes");
    assert_eq!(tampered.verify(&ring), Err(ManifestError::SignatureInvalid));
    let mut tampered = signed.clone();
    tampered.key_id = "other".to_owned();
    assert_eq!(tampered.verify(&ring), Err(ManifestError::SignatureInvalid));
    let mut tampered = signed.clone();
    tampered.key_id = "nobody".to_owned();
    assert_eq!(tampered.verify(&ring), Err(ManifestError::KeyUnknown));
    let mut tampered = signed;
    tampered.signature = "AAAA".to_owned();
    assert_eq!(tampered.verify(&ring), Err(ManifestError::SignatureInvalid));
}

#[test]
fn artifact_must_match_digest_and_size() {
    let manifest = kernel_manifest();
    manifest.check_artifact(b"kernel bytes").unwrap();
    assert_eq!(
        manifest.check_artifact(b"kernel bytez"),
        Err(ManifestError::HashMismatch)
    );
    assert_eq!(
        manifest.check_artifact(b"kernel bytes!"),
        Err(ManifestError::HashMismatch)
    );
}

fn check(change: impl Fn(&mut Manifest), expected: ManifestError) {
    let mut manifest = kernel_manifest();
    change(&mut manifest);
    assert_eq!(manifest.validate(), Err(expected.clone()), "{manifest:?}");
    assert_eq!(manifest.canonical_bytes(), Err(expected));
}

#[test]
fn invalid_fields_are_refused() {
    for name in [
        "",
        "../kernel",
        "a/b",
        "a\\b",
        ".hidden",
        "a..b",
        "Kernel",
        "kernel\n",
        "k:v",
        &"k".repeat(65),
    ] {
        check(|m| m.name = name.to_owned(), ManifestError::NameInvalid);
    }
    for version in [
        "1.2",
        "v1.2.0",
        "1.2.0\n",
        "",
        &format!("1.0.0-{}", "a".repeat(60)),
    ] {
        check(
            |m| m.version = version.to_owned(),
            ManifestError::VersionInvalid,
        );
    }
    check(|m| m.abi_version = None, ManifestError::AbiVersionMissing);
    check(
        |m| m.kind = ArtifactKind::Terminal,
        ManifestError::AbiVersionMissing,
    );
    check(
        |m| m.schemes.push("visa".to_owned()),
        ManifestError::SchemeInvalid,
    );
    check(
        |m| m.schemes.push("vi,sa".to_owned()),
        ManifestError::SchemeInvalid,
    );
    check(
        |m| m.aids.push("a0000000031010".to_owned()),
        ManifestError::AidInvalid,
    );
    check(
        |m| m.aids.push("A00000".to_owned()),
        ManifestError::AidInvalid,
    );
    check(
        |m| m.sha256.make_ascii_uppercase(),
        ManifestError::DigestInvalid,
    );
    check(|m| m.size = 0, ManifestError::SizeInvalid);
}

#[test]
fn key_ring_parsing() {
    let (_, ring) = ring();
    assert_eq!(ring.ids().collect::<Vec<_>>(), ["other", "rel-2026"]);
    for bad in [
        "noequals",
        "bad id=00",
        &format!("a={}", "00".repeat(31)),
        &format!("a={0},a={0}", hex::encode(RFC8032[0].public)),
    ] {
        assert_eq!(
            KeyRing::parse(bad),
            Err(ManifestError::KeyMalformed),
            "{bad}"
        );
    }
    // The identity point is a small-order (weak) key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        parse_public_key(&hex::encode(identity)),
        Err(ManifestError::KeyMalformed)
    );
}
