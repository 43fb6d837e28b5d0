//! Android Key Attestation: registration through the real server with test-generated chains
//! under a testing-only extra root (real chains cannot carry this server's random challenge),
//! refusals that store nothing, and the offline `softpos-server attestation verify` command.

use std::process::Command;

use android_attestation::{
    AttestationApplicationId, AuthorizationList, KeyDescription, PackageInfo, RootOfTrust,
    SecurityLevel, VerifiedBootState,
};
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, CustomExtension, IsCa, Issuer, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Backend, TestApp, expect_error, facts};

const OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 1, 17];
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A test root: its key signs leaves; its PEM goes in a file the server trusts.
struct TestRoot {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    dir: tempfile::TempDir,
}

impl TestRoot {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "softpos test attestation root");
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.pem"), cert.pem()).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            pem: cert.pem(),
            dir,
        }
    }

    fn path(&self) -> String {
        self.dir
            .path()
            .join("root.pem")
            .to_string_lossy()
            .into_owned()
    }

    /// base64 DER chain [leaf, root] for `leaf_key` carrying `kd`.
    fn chain(&self, leaf_key: &KeyPair, kd: &KeyDescription) -> Vec<String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Android Keystore Key");
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(OID, kd.to_der()));
        let leaf = params.signed_by(leaf_key, &self.issuer).unwrap();
        let root_der = pem_to_der(&self.pem);
        vec![B64.encode(leaf.der()), B64.encode(root_der)]
    }
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(body).unwrap()
}

fn key_description(challenge: &[u8], level: SecurityLevel) -> KeyDescription {
    KeyDescription {
        attestation_version: 400,
        attestation_security_level: level,
        keymint_version: 400,
        keymint_security_level: level,
        attestation_challenge: challenge.to_vec(),
        unique_id: Vec::new(),
        software_enforced: AuthorizationList {
            attestation_application_id: Some(AttestationApplicationId {
                packages: vec![PackageInfo {
                    name: "com.sunbay.softpos".to_owned(),
                    version: 1,
                }],
                // `facts()` reports "ab" * 32 as the signing digest.
                signature_digests: vec![vec![0xab; 32]],
            }),
            ..AuthorizationList::default()
        },
        hardware_enforced: AuthorizationList {
            purposes: vec![2],
            algorithm: Some(3),
            ec_curve: Some(1),
            origin: Some(0),
            root_of_trust: Some(RootOfTrust {
                verified_boot_key: vec![7; 32],
                device_locked: true,
                verified_boot_state: VerifiedBootState::Verified,
                verified_boot_hash: Some(vec![8; 32]),
            }),
            os_version: Some(150_000),
            os_patch_level: Some(202_510),
            ..AuthorizationList::default()
        },
        quirks: Vec::new(),
    }
}

fn body(challenge: &str, device_key: &KeyPair, merchant: &str, chain: Vec<String>) -> Value {
    json!({
        "challenge": challenge,
        "public_key": B64.encode(device_key.public_key_raw()),
        "facts": facts("Pixel 9a", None),
        "mode": "softpos",
        "merchant_id": merchant,
        "attestation": { "format": "android_key", "certificate_chain": chain },
    })
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    let pool = app.db().await;
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}

async fn spawn(backend: Backend, root: &TestRoot) -> Option<TestApp> {
    let path = root.path();
    TestApp::spawn(
        backend,
        &[
            ("ANDROID_ATTESTATION_EXTRA_ROOTS_FOR_TESTING", path.as_str()),
            ("ALLOW_SOFTWARE_ATTESTATION", "false"),
        ],
    )
    .await
}

async fn registers_and_stores_the_verdict(backend: Backend) {
    let root = TestRoot::new();
    let Some(app) = spawn(backend, &root).await else {
        return;
    };
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let challenge = app.challenge().await;
    let device_key = KeyPair::generate().unwrap();
    let kd = key_description(
        &B64URL.decode(&challenge).unwrap(),
        SecurityLevel::TrustedEnvironment,
    );
    let res = app
        .register(&body(
            &challenge,
            &device_key,
            &merchant,
            root.chain(&device_key, &kd),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let device: Value = res.json().await.unwrap();
    assert_eq!(device["attestation_format"], "android_key");
    let notes: Vec<String> = serde_json::from_value(device["attestation_notes"].clone()).unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("chain_to_google_root: pass")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("device_key_matches: pass"))
    );

    let id = device["id"].as_str().unwrap();
    let res = app
        .req(Method::GET, &format!("/api/v1/devices/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let detail: Value = res.json().await.unwrap();
    let attestation = &detail["attestation"];
    assert_eq!(attestation["format"], "android_key");
    assert_eq!(attestation["verdict"], "accepted");
    assert_eq!(
        attestation["attestation_security_level"],
        "TRUSTED_ENVIRONMENT"
    );
    assert_eq!(attestation["attestation_version"], 400);
    assert_eq!(
        attestation["key_description"]["hardware_enforced"]["os_version"],
        150_000
    );
    let checks = attestation["checks"].as_array().unwrap();
    for name in [
        "challenge_matches",
        "chain_signatures",
        "device_locked",
        "package_allowed",
        "signing_digest_allowed",
        "device_key_matches",
    ] {
        let check = checks.iter().find(|c| c["name"] == name).unwrap();
        assert_eq!(check["outcome"], "pass", "{name}");
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM device_attestations").await,
        1
    );
}

async fn refusals_store_nothing(backend: Backend) {
    let root = TestRoot::new();
    let Some(app) = spawn(backend, &root).await else {
        return;
    };
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let tee = SecurityLevel::TrustedEnvironment;

    // The attestation carries another challenge than the one presented.
    let challenge = app.challenge().await;
    let other = app.challenge().await;
    let key = KeyPair::generate().unwrap();
    let kd = key_description(&B64URL.decode(&other).unwrap(), tee);
    let res = app
        .register(&body(&challenge, &key, &merchant, root.chain(&key, &kd)))
        .await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_challenge_mismatch",
    )
    .await;

    // The attested key is not the key being registered.
    let challenge = app.challenge().await;
    let attested = KeyPair::generate().unwrap();
    let registered = KeyPair::generate().unwrap();
    let kd = key_description(&B64URL.decode(&challenge).unwrap(), tee);
    let res = app
        .register(&body(
            &challenge,
            &registered,
            &merchant,
            root.chain(&attested, &kd),
        ))
        .await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_key_mismatch",
    )
    .await;

    // Software-level keys are refused by the default policy (TEE).
    let challenge = app.challenge().await;
    let key = KeyPair::generate().unwrap();
    let kd = key_description(&B64URL.decode(&challenge).unwrap(), SecurityLevel::Software);
    let res = app
        .register(&body(&challenge, &key, &merchant, root.chain(&key, &kd)))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "attestation_refused").await;

    // A chain under a root the server does not trust.
    let stranger = TestRoot::new();
    let challenge = app.challenge().await;
    let key = KeyPair::generate().unwrap();
    let kd = key_description(&B64URL.decode(&challenge).unwrap(), tee);
    let res = app
        .register(&body(
            &challenge,
            &key,
            &merchant,
            stranger.chain(&key, &kd),
        ))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "attestation_refused").await;

    // Not a chain at all, or none.
    for chain in [
        json!(["bm90IGEgY2VydGlmaWNhdGU="]),
        json!([]),
        json!(["%%%"]),
    ] {
        let challenge = app.challenge().await;
        let key = KeyPair::generate().unwrap();
        let mut request = body(&challenge, &key, &merchant, Vec::new());
        request["attestation"]["certificate_chain"] = chain;
        expect_error(
            app.register(&request).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "attestation_evidence_malformed",
        )
        .await;
    }

    assert_eq!(count(&app, "SELECT COUNT(*) FROM devices").await, 0);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM device_attestations").await,
        0
    );

    // The refused challenges were not spent: the last one still registers a good chain,
    // sent this time as one PEM text.
    let key = KeyPair::generate().unwrap();
    let kd = key_description(&B64URL.decode(&challenge).unwrap(), tee);
    let pem: String = root
        .chain(&key, &kd)
        .iter()
        .map(|der| format!("-----BEGIN CERTIFICATE-----\n{der}\n-----END CERTIFICATE-----\n"))
        .collect();
    let res = app
        .register(&body(&challenge, &key, &merchant, vec![pem]))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registers_and_stores_the_verdict() {
        super::registers_and_stores_the_verdict(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_store_nothing() {
        super::refusals_store_nothing(Backend::Sqlite).await;
    }
}

mod postgres_redis {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registers_and_stores_the_verdict() {
        super::registers_and_stores_the_verdict(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_store_nothing() {
        super::refusals_store_nothing(Backend::Postgres).await;
    }
}

/// Without the testing-only root setting, a test chain is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_roots_are_not_trusted_by_default() {
    let Some(app) = TestApp::spawn(Backend::Sqlite, &[]).await else {
        return;
    };
    let root = TestRoot::new();
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let challenge = app.challenge().await;
    let key = KeyPair::generate().unwrap();
    let kd = key_description(
        &B64URL.decode(&challenge).unwrap(),
        SecurityLevel::TrustedEnvironment,
    );
    let res = app
        .register(&body(&challenge, &key, &merchant, root.chain(&key, &kd)))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "attestation_refused").await;
}

// ---- the offline CLI ----

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../android-attestation/tests/data"
);

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_softpos-server"))
        .arg("attestation")
        .arg("verify")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn chain_path(name: &str) -> String {
    format!("{DATA}/{name}")
}

#[test]
fn cli_accepts_a_real_chain_at_its_time() {
    let chain = chain_path("normal_cert_chain.pem");
    let (code, out, _) = cli(&[
        "--chain",
        &chain,
        "--at",
        "2023-03-01T00:00:00Z",
        "--challenge",
        &hex::encode("challenge"),
        "--package",
        "com.google.attestationexample",
        "--digest",
        "68856d1d06f637d6255face5b224db43a9514ace538bb1548b844480fcd85c87",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("verdict: ACCEPTED\n"), "{out}");
    assert!(out.contains("\"attestation_version\": 200"));
    assert!(out.contains("pass chain_to_google_root"));
    assert!(!out.contains("failed checks:"));
}

#[test]
fn cli_refuses_and_lists_failed_checks() {
    let chain = chain_path("normal_cert_chain.pem");
    // Default time is now: the 2023 intermediates have expired; the challenge is wrong.
    let (code, out, _) = cli(&["--chain", &chain, "--challenge", "00ff"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("verdict: REFUSED\n"));
    let failed = out.split("failed checks:\n").nth(1).unwrap();
    assert!(failed.contains("challenge_matches:"), "{failed}");
    assert!(failed.contains("chain_validity:"), "{failed}");
    assert!(!failed.contains("chain_signatures:"), "{failed}");

    // DER input, JSON output, a revocation list naming Droid CA3.
    let der_path = tempfile::NamedTempFile::new().unwrap();
    let pem = std::fs::read_to_string(&chain).unwrap();
    let der: Vec<u8> = pem
        .split("-----END CERTIFICATE-----")
        .filter(|block| block.contains("BEGIN"))
        .flat_map(|block| pem_to_der(block.trim()))
        .collect();
    std::fs::write(der_path.path(), der).unwrap();
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        list.path(),
        r#"{"entries":{"d05facf443ed535548d994f6845e6d3c":{"status":"REVOKED","reason":"KEY_COMPROMISE"}}}"#,
    )
    .unwrap();
    let (code, out, _) = cli(&[
        "--chain",
        der_path.path().to_str().unwrap(),
        "--at",
        "2023-03-01T00:00:00Z",
        "--revocations",
        list.path().to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let verdict: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(verdict["accepted"], false);
    let failed: Vec<&str> = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "fail")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["not_revoked"]);
}

#[test]
fn cli_bad_input_exits_2_with_one_line() {
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"this is not a certificate chain").unwrap();
    let chain = chain_path("normal_cert_chain.pem");
    for (args, code_prefix) in [
        (
            vec!["--chain", garbage.path().to_str().unwrap()],
            "error: attestation_bad_encoding: ",
        ),
        (
            vec!["--chain", "/nonexistent/chain.pem"],
            "error: chain_unreadable: ",
        ),
        (
            vec!["--chain", chain.as_str(), "--at", "yesterday"],
            "error: bad_time: ",
        ),
        (
            vec!["--chain", chain.as_str(), "--challenge", "zz"],
            "error: attestation_bad_hex: ",
        ),
    ] {
        let (code, out, err) = cli(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty());
        assert!(err.starts_with(code_prefix), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The revocation list file: refused while it is stale or names the chain, re-read when the
/// operator replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_list_file_is_enforced_and_reloaded() {
    let root = TestRoot::new();
    let list = root.dir.path().join("status.json");
    let write = |json: &str| std::fs::write(&list, json).unwrap();
    write(r#"{"entries":{}}"#);
    // Three days old: older than the one day the policy allows.
    let touched = Command::new("touch")
        .arg("-d")
        .arg("3 days ago")
        .arg(&list)
        .status()
        .unwrap();
    assert!(touched.success());
    let list_path = list.to_string_lossy().into_owned();
    let root_path = root.path();
    let Some(app) = TestApp::spawn(
        Backend::Sqlite,
        &[
            (
                "ANDROID_ATTESTATION_EXTRA_ROOTS_FOR_TESTING",
                root_path.as_str(),
            ),
            ("ANDROID_ATTESTATION_REVOCATION_LIST", list_path.as_str()),
        ],
    )
    .await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let attempt = || async {
        let challenge = app.challenge().await;
        let key = KeyPair::generate().unwrap();
        let kd = key_description(
            &B64URL.decode(&challenge).unwrap(),
            SecurityLevel::TrustedEnvironment,
        );
        app.register(&body(&challenge, &key, &merchant, root.chain(&key, &kd)))
            .await
    };
    expect_error(
        attempt().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_refused",
    )
    .await;

    // The operator refreshes the list; now it names the test root's serial.
    let root_serial = {
        let der = pem_to_der(&root.pem);
        let chain = android_attestation::from_ders(vec![der.clone(), der]).unwrap();
        chain[0].serial_hex()
    };
    write(&format!(
        r#"{{"entries":{{"{root_serial}":{{"status":"REVOKED","reason":"KEY_COMPROMISE"}}}}}}"#
    ));
    expect_error(
        attempt().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_refused",
    )
    .await;

    // A fresh list without the serial: accepted.
    write(r#"{"entries":{"1":{"status":"REVOKED"}}}"#);
    assert_eq!(attempt().await.status(), StatusCode::CREATED);

    // A list that no longer parses refuses registrations with its own code.
    write("{not json");
    expect_error(
        attempt().await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_revocation_list_unavailable",
    )
    .await;
}
