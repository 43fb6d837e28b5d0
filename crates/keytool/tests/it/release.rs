//! `release`: keys, signing and verification of release manifests. The signing key is the
//! secret of RFC 8032 section 7.1 TEST 1, whose public key is published there; the signature
//! is checked against the `release-manifest` crate the server verifies with.

use release_manifest::ed25519_dalek::SigningKey;
use release_manifest::{ArtifactKind, KeyRing, Manifest, SignedManifest, sha256_hex};

use crate::{bad_input, fails, field, json, ok};

/// RFC 8032, section 7.1, TEST 1.
const SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("release.key"), format!("{SECRET}\n")).unwrap();
        std::fs::write(dir.path().join("kernel.wasm"), b"\0asm\x01\0\0\0 kernel").unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

fn sign_args(files: &Files, name: &str) -> Vec<String> {
    [
        "release",
        "sign",
        "--key",
        &files.path("release.key"),
        "--key-id",
        "rel-1",
        "--wasm",
        &files.path("kernel.wasm"),
        "--name",
        name,
        "--version",
        "1.2.0",
        "--abi-version",
        "1",
        "--scheme",
        "visa",
        "--scheme",
        "mastercard",
        "--aid",
        "a0000000031010",
        "--created-at",
        "1790000000",
        "--out",
        &files.path("signed.json"),
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect()
}

#[test]
fn public_key_of_the_rfc_8032_secret() {
    let files = Files::new();
    let out = json(
        &[
            "release",
            "public-key",
            "--key",
            &files.path("release.key"),
            "--key-id",
            "rel-1",
        ],
        &[
            "public_key_hex",
            "public_key_base64",
            "release_public_keys_entry",
        ],
    );
    assert_eq!(out["public_key_hex"], PUBLIC);
    assert_eq!(out["release_public_keys_entry"], format!("rel-1={PUBLIC}"));
}

#[test]
fn sign_matches_the_shared_crate_and_verifies() {
    let files = Files::new();
    let args = sign_args(&files, "sunbay-emv-kernel");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = json(
        &args,
        &[
            "sha256",
            "size",
            "key_id",
            "signature",
            "manifest_header",
            "signed_manifest",
        ],
    );
    let wasm = std::fs::read(files.path("kernel.wasm")).unwrap();
    let expected = Manifest {
        kind: ArtifactKind::Kernel,
        name: "sunbay-emv-kernel".to_owned(),
        version: "1.2.0".to_owned(),
        abi_version: Some(1),
        schemes: vec!["visa".to_owned(), "mastercard".to_owned()],
        aids: vec!["A0000000031010".to_owned()],
        sha256: sha256_hex(&wasm),
        size: wasm.len() as u64,
        created_at: 1_790_000_000,
    }
    .sign(
        "rel-1",
        &SigningKey::from_bytes(&hex::decode(SECRET).unwrap().try_into().unwrap()),
    )
    .unwrap();
    assert_eq!(out["signature"], expected.signature.as_str());
    let written: SignedManifest =
        serde_json::from_str(&std::fs::read_to_string(files.path("signed.json")).unwrap()).unwrap();
    assert_eq!(written, expected);
    let ring = KeyRing::parse(&format!("rel-1={PUBLIC}")).unwrap();
    written.verify(&ring).unwrap();

    let verify = |artifact: &str| {
        vec![
            "release".to_owned(),
            "verify".to_owned(),
            "--public-key".to_owned(),
            PUBLIC.to_owned(),
            "--manifest".to_owned(),
            files.path("signed.json"),
            "--artifact".to_owned(),
            files.path(artifact),
        ]
    };
    let args = verify("kernel.wasm");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(field(&ok(&args), "valid"), "true");
    // A tampered artifact is a mismatch (exit 1), and so is another key.
    std::fs::write(files.path("tampered.wasm"), b"\0asm\x01\0\0\0 kernel!").unwrap();
    let args = verify("tampered.wasm");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(&args, 1, "release_hash_mismatch");
    let mut args = verify("kernel.wasm");
    args[3] = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c".to_owned();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    fails(&args, 1, "release_signature_invalid");
}

#[test]
fn bad_input_is_refused() {
    let files = Files::new();
    for name in ["../evil", &"k".repeat(65)] {
        let args = sign_args(&files, name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bad_input(&args, "release_name_invalid");
    }
    std::fs::write(files.path("short.key"), "00ff").unwrap();
    let mut args = sign_args(&files, "k");
    args[3] = files.path("short.key");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bad_input(&args, "release_key_malformed");
    // keygen refuses to overwrite a key file.
    bad_input(
        &["release", "keygen", "--out", &files.path("release.key")],
        "file_unwritable",
    );
    let fresh = json(
        &[
            "release",
            "keygen",
            "--out",
            &files.path("new.key"),
            "--key-id",
            "rel-2",
        ],
        &[
            "public_key_hex",
            "public_key_base64",
            "release_public_keys_entry",
        ],
    );
    let again = json(
        &[
            "release",
            "public-key",
            "--key",
            &files.path("new.key"),
            "--key-id",
            "rel-2",
        ],
        &[
            "public_key_hex",
            "public_key_base64",
            "release_public_keys_entry",
        ],
    );
    assert_eq!(fresh, again);
    assert_ne!(fresh["public_key_hex"], PUBLIC);
}
