//! Releases: the real kernel `.wasm` signed by a test release key uploads, passes the
//! conformance suite in the sandbox and publishes; refused uploads (bad signature, tampered
//! `.wasm`, path-like and oversized names, unknown ABI, over-limit body, duplicate version)
//! store nothing; modules failing conformance are never publishable; a multi-MB kernel uploads;
//! rollout, pause, rollback and deprecation decide what devices are served; drafts are never
//! served; compatibility is enforced; terminal-software push tasks move through their states.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use release_manifest::ed25519_dalek::SigningKey;
use release_manifest::{ArtifactKind, Manifest, SignedManifest, sha256_hex};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;

use crate::{Backend, TestApp, TestDevice, expect_error};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const KEY_ID: &str = "test-release-2026";

/// The trusted test release key (a fixed seed: tests only).
fn release_key() -> SigningKey {
    SigningKey::from_bytes(&[0x5a; 32])
}

/// A key the server does not trust.
fn rogue_key() -> SigningKey {
    SigningKey::from_bytes(&[0xa5; 32])
}

/// The kernel `.wasm` of this workspace: `KERNEL_WASM` (set by `cargo xtask test`), else built
/// with the command of `crates/emv-kernel-wasm/ABI.md`, as `kernel-host`'s tests do.
fn kernel_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let path = std::env::var_os("KERNEL_WASM")
            .map(PathBuf::from)
            .unwrap_or_else(build_kernel);
        std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
    })
}

fn build_kernel() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            "emv-kernel-wasm",
            "--profile",
            "wasm",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the kernel .wasm failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|name| name.as_str().map(PathBuf::from))
        .find(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .expect("cargo reported the .wasm artifact")
}

/// `wasm` with a custom section of `len` bytes appended (engines ignore custom sections;
/// WebAssembly core spec 5.5.3): a valid kernel of any size.
fn with_custom_section(wasm: &[u8], len: usize) -> Vec<u8> {
    fn leb128(mut value: usize, out: &mut Vec<u8>) {
        loop {
            let byte = u8::try_from(value & 0x7f).unwrap();
            value >>= 7;
            if value == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"padding";
    let mut payload = Vec::with_capacity(len + 16);
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.resize(payload.len() + len, 0x5a);
    let mut out = wasm.to_vec();
    out.push(0);
    leb128(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// A module with the kernel ABI whose behaviour is wrong: `create` is the body of
/// `session_create` (after the sandbox tests of `kernel-host`).
fn wrong_kernel(create: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 16) "\00\a4\04\00\00")
  (func (export "abi_version") (result i32) i32.const 3)
  (func (export "kernel_configure") (param i32 i32) (result i32) i32.const 0)
  (func (export "alloc") (param i32) (result i32) i32.const 1024)
  (func (export "dealloc") (param i32 i32))
  (func (export "session_create") (param i32 i32) (result i32) {create})
  (func (export "session_resume") (param i32 i32 i32) (result i32) i32.const 1)
  (func (export "session_status") (param i32) (result i32) i32.const 1)
  (func (export "session_output_ptr") (param i32) (result i32) i32.const 16)
  (func (export "session_output_len") (param i32) (result i32) i32.const 5)
  (func (export "session_free") (param i32) (result i32) i32.const 0)
  (func (export "last_error_ptr") (result i32) i32.const 0)
  (func (export "last_error_len") (result i32) i32.const 0))"#
    ))
    .expect("valid WAT")
}

fn manifest(name: &str, version: &str, wasm: &[u8]) -> Manifest {
    Manifest {
        kind: ArtifactKind::Kernel,
        name: name.to_owned(),
        version: version.to_owned(),
        abi_version: Some(kernel_host::ABI_VERSION),
        schemes: vec!["visa".to_owned(), "mastercard".to_owned()],
        aids: vec!["A0000000031010".to_owned(), "A0000000041010".to_owned()],
        sha256: sha256_hex(wasm),
        size: wasm.len() as u64,
        created_at: 1_790_000_000,
    }
}

fn signed(manifest: &Manifest) -> SignedManifest {
    manifest.sign(KEY_ID, &release_key()).expect("sign")
}

async fn upload(
    app: &TestApp,
    token: &str,
    signed: &SignedManifest,
    wasm: &[u8],
) -> reqwest::Response {
    // A fresh connection per upload: a refused upload is answered before its body is read,
    // and the server then closes that connection, which a pooled client could race with.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    client
        .post(format!("{}/api/v1/kernels", app.base))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .header(
            "x-release-manifest",
            B64.encode(serde_json::to_vec(signed).unwrap()),
        )
        .body(wasm.to_vec())
        .send()
        .await
        .unwrap()
}

/// An upload's request line and headers declaring `length` body bytes, none of them sent;
/// returns the whole answer as text (the server closes the connection after it).
async fn headers_only_upload(
    app: &TestApp,
    token: &str,
    signed: &SignedManifest,
    length: usize,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /api/v1/kernels HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/wasm\r\nx-release-manifest: {}\r\n\
         content-length: {length}\r\n\r\n",
        B64.encode(serde_json::to_vec(signed).unwrap())
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server answers and closes")
    .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Uploads, checks the answer is a draft, and waits for the conformance verdict.
async fn upload_ok(app: &TestApp, token: &str, version: &str, wasm: &[u8]) -> Value {
    let res = upload(
        app,
        token,
        &signed(&manifest("sunbay-emv-kernel", version, wasm)),
        wasm,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED, "upload {version}");
    let draft: Value = res.json().await.unwrap();
    assert_eq!(draft["status"], "DRAFT");
    wait_verdict(app, token, draft["id"].as_str().unwrap(), version).await
}

/// Polls a release until its conformance verdict is in.
async fn wait_verdict(app: &TestApp, token: &str, id: &str, version: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let release: Value = app
            .req(Method::GET, &format!("/api/v1/kernels/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if release["status"] != "DRAFT" {
            eprintln!(
                "conformance of {version}: {} after {:?} (run {} ms)",
                release["status"],
                started.elapsed(),
                release["conformance"]["duration_ms"]
            );
            return release;
        }
        assert!(
            release["conformance"].is_null(),
            "a draft has no verdict yet"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(900),
            "conformance of {version} did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.req(Method::POST, path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn publish(
    app: &TestApp,
    token: &str,
    id: &str,
    channel: &str,
    percent: u8,
) -> reqwest::Response {
    post(
        app,
        token,
        &format!("/api/v1/kernels/{id}/publish"),
        json!({ "channel": channel, "rollout_percent": percent }),
    )
    .await
}

async fn kernel_count(app: &TestApp, token: &str) -> usize {
    let res = app
        .req(Method::GET, "/api/v1/kernels?limit=200")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Vec<Value>>().await.unwrap().len()
}

/// A registered and approved device.
async fn approved_device(app: &TestApp, admin: &str, merchant: &str) -> TestDevice {
    let device = app.device(merchant).await;
    let res = post(
        app,
        admin,
        &format!("/api/v1/devices/{}/approve", device.id),
        json!({ "reason": "release tests" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    device
}

async fn set_compat(app: &TestApp, admin: &str, entries: Value) {
    let res = post(
        app,
        admin,
        "/api/v1/kernel-compatibility",
        json!({ "entries": entries }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn check_in(app: &TestApp, device: &TestDevice, terminal: &str) -> Value {
    let body = serde_json::to_vec(&json!({ "terminal_version": terminal, "kernel_version": null }))
        .unwrap();
    let res = app
        .signed(device, Method::POST, "/api/v1/device/check-in", &body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// What `GET /api/v1/device/kernel` offers the device: the release id, or `None` on 404.
async fn offered(app: &TestApp, device: &TestDevice, channel: &str) -> Option<String> {
    let res = app
        .signed(
            device,
            Method::GET,
            &format!("/api/v1/device/kernel?channel={channel}"),
            b"",
        )
        .send()
        .await
        .unwrap();
    if res.status() == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    Some(body["release_id"].as_str().unwrap().to_owned())
}

async fn download(app: &TestApp, device: &TestDevice, id: &str) -> reqwest::Response {
    app.signed(
        device,
        Method::GET,
        &format!("/api/v1/kernels/{id}/wasm"),
        b"",
    )
    .send()
    .await
    .unwrap()
}

/// The documented rollout rule, computed independently of the server.
fn in_rollout(device: &str, release: &str, percent: u64) -> bool {
    let digest = sha2::Sha256::digest(format!("softpos-rollout-v1\n{device}\n{release}"));
    u64::from_be_bytes(digest[..8].try_into().unwrap()) % 100 < percent
}

async fn audit_actions(app: &TestApp, admin: &str) -> Vec<String> {
    let res = app
        .req(Method::GET, "/api/v1/audit/records?limit=500")
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn kernel_uploads_pass_conformance_and_publish(app: TestApp) {
    let admin = app.admin_token().await;
    let officer = app.token_for_role(&admin, "security_officer").await;
    let wasm = kernel_wasm();
    let release = upload_ok(&app, &officer, "1.0.0", wasm).await;
    assert_eq!(release["status"], "READY", "{release}");
    assert_eq!(release["conformance"]["passed"], true);
    assert_eq!(release["conformance"]["engine"], "wasmtime");
    assert!(release["conformance"]["cases"].as_u64().unwrap() > 0);
    assert_eq!(release["sha256"], sha256_hex(wasm));
    let id = release["id"].as_str().unwrap().to_owned();

    // The stored report comes back with the release.
    let res = app
        .req(Method::GET, &format!("/api/v1/kernels/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let stored: Value = res.json().await.unwrap();
    assert!(
        stored["conformance"]["report"]
            .as_str()
            .unwrap()
            .contains("passed")
    );

    // Nothing public before publication; then the web demo reads it anonymously.
    let res = app
        .req(Method::GET, "/api/v1/public/kernel")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = publish(&app, &officer, &id, "stable", 100).await;
    assert_eq!(res.status(), StatusCode::OK);
    let published: Value = res.json().await.unwrap();
    assert_eq!(published["status"], "PUBLISHED");
    let res = app
        .req(Method::GET, "/api/v1/public/kernel")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let offer: Value = res.json().await.unwrap();
    assert_eq!(offer["release_id"], id.as_str());
    // The signature in the offer verifies with the release key (what the demo checks).
    let signed: SignedManifest = serde_json::from_value(offer["signed_manifest"].clone()).unwrap();
    let mut ring = release_manifest::KeyRing::default();
    ring.insert(KEY_ID, release_key().verifying_key());
    signed.verify(&ring).unwrap();
    let res = app
        .req(Method::GET, offer["download_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/wasm");
    assert!(res.headers().contains_key("x-release-manifest"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), wasm);

    // A draft whose run was lost (simulated: the row reset as a crash would leave it) is run
    // again on request; anything else is refused.
    expect_error(
        post(
            &app,
            &officer,
            &format!("/api/v1/kernels/{id}/conformance"),
            json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_release_transition",
    )
    .await;
    let other = upload_ok(&app, &officer, "1.0.1", wasm).await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let pool = app.db().await;
    sqlx::query(
        "UPDATE kernel_releases SET status = 'DRAFT', conformance_report = NULL WHERE id = $1",
    )
    .bind(&other_id)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let res = post(
        &app,
        &officer,
        &format!("/api/v1/kernels/{other_id}/conformance"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let rerun = wait_verdict(&app, &officer, &other_id, "1.0.1").await;
    assert_eq!(rerun["status"], "READY");

    // The same version again is refused.
    let res = upload(&app, &officer, &signed, wasm).await;
    expect_error(res, StatusCode::CONFLICT, "release_version_exists").await;

    let actions = audit_actions(&app, &admin).await;
    for action in ["kernel.upload", "kernel.conformance", "kernel.publish"] {
        assert!(actions.iter().any(|a| a == action), "{action} not audited");
    }
}

async fn bad_uploads_are_refused_and_store_nothing(app: TestApp) {
    let admin = app.admin_token().await;
    let wasm = kernel_wasm();
    let good = manifest("sunbay-emv-kernel", "2.0.0", wasm);

    // Signed by a key the server does not trust, under a trusted key id.
    let forged = good.sign(KEY_ID, &rogue_key()).unwrap();
    expect_error(
        upload(&app, &admin, &forged, wasm).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "release_signature_invalid",
    )
    .await;
    // Signed manifest altered after signing.
    let mut altered = signed(&good);
    altered.manifest.version = "2.0.1".to_owned();
    expect_error(
        upload(&app, &admin, &altered, wasm).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "release_signature_invalid",
    )
    .await;
    // Unknown key id.
    let stranger = good.sign("nobody", &rogue_key()).unwrap();
    expect_error(
        upload(&app, &admin, &stranger, wasm).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "release_key_unknown",
    )
    .await;
    // Tampered .wasm: one byte changed after signing.
    let mut tampered = wasm.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    expect_error(
        upload(&app, &admin, &signed(&good), &tampered).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "release_hash_mismatch",
    )
    .await;
    // Path-like and oversized names, even when properly signed (the signer validates too,
    // so the manifest is built by hand as an attacker would).
    for name in ["../../etc/passwd", "kernels/evil", "..", &"k".repeat(65)] {
        let mut bad = good.clone();
        bad.name = name.to_owned();
        let forged = SignedManifest {
            manifest: bad,
            key_id: KEY_ID.to_owned(),
            signature: B64.encode([0u8; 64]),
        };
        expect_error(
            upload(&app, &admin, &forged, wasm).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "release_name_invalid",
        )
        .await;
    }
    // Unknown ABI version, properly signed.
    let mut future = good.clone();
    future.abi_version = Some(kernel_host::ABI_VERSION + 1);
    expect_error(
        upload(&app, &admin, &signed(&future), wasm).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "abi_version_unsupported",
    )
    .await;
    // Missing or garbage manifest header.
    let res = app
        .req(Method::POST, "/api/v1/kernels")
        .bearer_auth(&admin)
        .body(wasm.to_vec())
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
    // Over the per-route limit (16 MiB): refused on its declared length, before any of the body
    // is read. Sent by hand with headers only: a client still writing 16 MiB when the server
    // answers and closes would see a broken pipe instead of the answer.
    let huge_len = 16 * 1024 * 1024 + 1;
    let huge_manifest = manifest("sunbay-emv-kernel", "9.9.9", &vec![0u8; huge_len]);
    let answer = headers_only_upload(&app, &admin, &signed(&huge_manifest), huge_len).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
    // Operators and auditors may not upload (refused before the body is read, so a small one).
    let operator = app.token_for_role(&admin, "operator").await;
    expect_error(
        upload(&app, &operator, &signed(&good), b"\0asm\x01\0\0\0").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    assert_eq!(
        kernel_count(&app, &admin).await,
        0,
        "a refused upload was stored"
    );
    let actions = audit_actions(&app, &admin).await;
    assert!(
        actions
            .iter()
            .filter(|a| *a == "kernel.upload_refused")
            .count()
            >= 8,
        "refusals are audited: {actions:?}"
    );
}

async fn failing_kernels_are_never_publishable(app: TestApp) {
    let admin = app.admin_token().await;
    // Answers the same command forever (never reaches an outcome), and one that traps.
    for (version, wasm) in [
        ("0.0.1", wrong_kernel("i32.const 1")),
        ("0.0.2", wrong_kernel("unreachable")),
    ] {
        let release = upload_ok(&app, &admin, version, &wasm).await;
        assert_eq!(release["status"], "REJECTED", "{release}");
        assert_eq!(release["conformance"]["passed"], false);
        let id = release["id"].as_str().unwrap();
        for percent in [1, 100] {
            expect_error(
                publish(&app, &admin, id, "stable", percent).await,
                StatusCode::CONFLICT,
                "release_not_publishable",
            )
            .await;
        }
    }
    // Not a WebAssembly module at all: stored, rejected at load.
    let release = upload_ok(&app, &admin, "0.0.3", b"\0asm but not really").await;
    assert_eq!(release["status"], "REJECTED");
    assert!(release["conformance"]["load_error"].is_string());
}

async fn a_multi_megabyte_kernel_uploads(app: TestApp) {
    let admin = app.admin_token().await;
    let big = with_custom_section(kernel_wasm(), 6 * 1024 * 1024);
    assert!(big.len() > 6_000_000);
    let release = upload_ok(&app, &admin, "3.0.0", &big).await;
    assert_eq!(release["status"], "READY", "{release}");
    assert_eq!(release["size"], big.len());
}

async fn serving_rollout_pause_rollback_and_drafts(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let wasm = kernel_wasm();
    let devices = {
        let mut devices = Vec::new();
        for _ in 0..12 {
            devices.push(approved_device(&app, &admin, &merchant).await);
        }
        devices
    };
    // Registration reported app version 1.0.0; it runs this build's kernel ABI.
    set_compat(
        &app,
        &admin,
        json!([{ "terminal_version": "1.0.0", "abi_version": kernel_host::ABI_VERSION }]),
    )
    .await;

    // A READY release that is not published, and a rejected one: never served.
    let ready = upload_ok(&app, &admin, "1.0.0", wasm).await;
    let ready_id = ready["id"].as_str().unwrap().to_owned();
    let rejected = upload_ok(&app, &admin, "0.9.0", &wrong_kernel("unreachable")).await;
    let rejected_id = rejected["id"].as_str().unwrap().to_owned();
    for device in &devices[..2] {
        assert_eq!(offered(&app, device, "stable").await, None);
        for id in [&ready_id, &rejected_id] {
            expect_error(
                download(&app, device, id).await,
                StatusCode::NOT_FOUND,
                "not_found",
            )
            .await;
        }
    }

    // 1.0.0 to everyone on stable.
    assert_eq!(
        publish(&app, &admin, &ready_id, "stable", 100)
            .await
            .status(),
        StatusCode::OK
    );
    for device in &devices {
        assert_eq!(
            offered(&app, device, "stable").await.as_deref(),
            Some(ready_id.as_str())
        );
        assert_eq!(offered(&app, device, "beta").await, None);
    }
    let res = download(&app, &devices[0], &ready_id).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().as_ref(), wasm);

    // 1.1.0 to half of them: each device gets exactly what the documented hash says.
    let next = upload_ok(&app, &admin, "1.1.0", wasm).await;
    let next_id = next["id"].as_str().unwrap().to_owned();
    assert_eq!(
        publish(&app, &admin, &next_id, "stable", 50).await.status(),
        StatusCode::OK
    );
    let mut reached = 0;
    for device in &devices {
        let expected = if in_rollout(&device.id, &next_id, 50) {
            reached += 1;
            &next_id
        } else {
            &ready_id
        };
        assert_eq!(
            offered(&app, device, "stable").await.as_deref(),
            Some(expected.as_str())
        );
        let download_status = download(&app, device, &next_id).await.status();
        let expected_status = if expected == &next_id {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(download_status, expected_status);
    }
    eprintln!("50% rollout reached {reached} of {} devices", devices.len());
    // The public kernel stays the one at 100 %.
    let offer: Value = app
        .req(Method::GET, "/api/v1/public/kernel")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(offer["release_id"], ready_id.as_str());

    // Widen to 100 %, pause (everyone back on 1.0.0), resume.
    assert_eq!(
        publish(&app, &admin, &next_id, "stable", 100)
            .await
            .status(),
        StatusCode::OK
    );
    for device in &devices[..3] {
        assert_eq!(
            offered(&app, device, "stable").await.as_deref(),
            Some(next_id.as_str())
        );
    }
    let res = post(
        &app,
        &admin,
        &format!("/api/v1/kernels/{next_id}/pause"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    expect_error(
        publish(&app, &admin, &next_id, "stable", 100).await,
        StatusCode::CONFLICT,
        "invalid_release_transition",
    )
    .await;
    for device in &devices[..3] {
        assert_eq!(
            offered(&app, device, "stable").await.as_deref(),
            Some(ready_id.as_str())
        );
    }
    let res = post(
        &app,
        &admin,
        &format!("/api/v1/kernels/{next_id}/resume"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        offered(&app, &devices[0], "stable").await.as_deref(),
        Some(next_id.as_str())
    );

    // Roll the channel back: 1.1.0 withdrawn, 1.0.0 serves everyone again.
    let res = post(
        &app,
        &admin,
        "/api/v1/kernel-channels/stable/rollback",
        json!({ "reason": "field reports" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let rollback: Value = res.json().await.unwrap();
    assert_eq!(rollback["rolled_back"]["id"], next_id.as_str());
    assert_eq!(rollback["rolled_back"]["status"], "ROLLED_BACK");
    assert_eq!(rollback["now_serving"]["id"], ready_id.as_str());
    for device in &devices[..3] {
        assert_eq!(
            offered(&app, device, "stable").await.as_deref(),
            Some(ready_id.as_str())
        );
    }
    expect_error(
        download(&app, &devices[0], &next_id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Nothing earlier to return to.
    expect_error(
        post(
            &app,
            &admin,
            "/api/v1/kernel-channels/stable/rollback",
            json!({ "reason": "again" }),
        )
        .await,
        StatusCode::CONFLICT,
        "no_previous_release",
    )
    .await;

    // Compatibility is enforced: a terminal version without ABI 1 is offered nothing.
    check_in(&app, &devices[0], "0.9.0").await;
    assert_eq!(offered(&app, &devices[0], "stable").await, None);
    expect_error(
        download(&app, &devices[0], &ready_id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    set_compat(
        &app,
        &admin,
        json!([
            { "terminal_version": "1.0.0", "abi_version": kernel_host::ABI_VERSION },
            { "terminal_version": "0.9.0", "abi_version": kernel_host::ABI_VERSION }
        ]),
    )
    .await;
    assert_eq!(
        offered(&app, &devices[0], "stable").await.as_deref(),
        Some(ready_id.as_str())
    );

    // Deprecation takes the last release out of service; unapproved devices get nothing.
    let res = post(
        &app,
        &admin,
        &format!("/api/v1/kernels/{ready_id}/deprecate"),
        json!({ "reason": "superseded" }),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(offered(&app, &devices[1], "stable").await, None);
    let unapproved = app.device(&merchant).await;
    let res = app
        .signed(&unapproved, Method::GET, "/api/v1/device/kernel", b"")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT, "device_not_eligible").await;

    let actions = audit_actions(&app, &admin).await;
    for action in [
        "kernel.pause",
        "kernel.resume",
        "kernel.rollback",
        "kernel.deprecate",
        "release_compatibility.replace",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} not audited");
    }
}

fn terminal_manifest(version: &str) -> Manifest {
    let artifact = format!("softpos-terminal {version} apk bytes");
    Manifest {
        kind: ArtifactKind::Terminal,
        name: "sunbay-softpos-android".to_owned(),
        version: version.to_owned(),
        abi_version: None,
        schemes: Vec::new(),
        aids: Vec::new(),
        sha256: sha256_hex(artifact.as_bytes()),
        size: artifact.len() as u64,
        created_at: 1_790_000_000,
    }
}

async fn terminal_software_push_tasks_and_adoption(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let other_merchant = app.merchant(&admin).await;
    let device = approved_device(&app, &admin, &merchant).await;
    let elsewhere = approved_device(&app, &admin, &other_merchant).await;

    let create = |version: &str, signed: SignedManifest, merchants: Vec<String>| {
        let body = json!({
            "signed_manifest": signed,
            "update_type": "security",
            "min_os_version": "13",
            "targets": { "merchant_ids": merchants },
            "release_notes": format!("Version {version}: fixes"),
        });
        let app = &app;
        let admin = admin.clone();
        async move { post(app, &admin, "/api/v1/terminal-software", body).await }
    };
    // Bad signature and wrong kind are refused.
    let forged = terminal_manifest("1.1.0")
        .sign(KEY_ID, &rogue_key())
        .unwrap();
    expect_error(
        create("1.1.0", forged, vec![]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "release_signature_invalid",
    )
    .await;
    let kernel = signed(&manifest("sunbay-emv-kernel", "1.1.0", b"x"));
    expect_error(
        create("1.1.0", kernel, vec![]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "release_kind_mismatch",
    )
    .await;

    let res = create(
        "1.1.0",
        terminal_manifest("1.1.0")
            .sign(KEY_ID, &release_key())
            .unwrap(),
        vec![merchant.clone()],
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let release: Value = res.json().await.unwrap();
    let release_id = release["id"].as_str().unwrap().to_owned();
    assert_eq!(release["update_type"], "security");
    expect_error(
        create(
            "1.1.0",
            terminal_manifest("1.1.0")
                .sign(KEY_ID, &release_key())
                .unwrap(),
            vec![],
        )
        .await,
        StatusCode::CONFLICT,
        "release_version_exists",
    )
    .await;

    // Both devices are outdated (1.0.0 < 1.1.0); only one is in the target group.
    let outdated: Value = app
        .req(Method::GET, "/api/v1/terminal-software/outdated")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outdated["latest_version"], "1.1.0");
    assert_eq!(outdated["devices"].as_array().unwrap().len(), 2);
    let res = post(
        &app,
        &admin,
        &format!("/api/v1/terminal-software/{release_id}/push"),
        json!({}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let push: Value = res.json().await.unwrap();
    assert_eq!(push, json!({ "targeted": 1, "created": 1 }));
    // Pushing again creates nothing new.
    let res = post(
        &app,
        &admin,
        &format!("/api/v1/terminal-software/{release_id}/push"),
        json!({}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap()["created"], 0);

    // The task is pending until the device checks in; then delivered.
    let none = check_in(&app, &elsewhere, "1.0.0").await;
    assert_eq!(none["tasks"].as_array().unwrap().len(), 0);
    let answer = check_in(&app, &device, "1.0.0").await;
    let tasks = answer["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["state"], "delivered");
    assert_eq!(tasks[0]["release"]["version"], "1.1.0");
    let task_id = tasks[0]["task_id"].as_str().unwrap().to_owned();
    // Delivered tasks come back until the device reports a result.
    assert_eq!(
        check_in(&app, &device, "1.0.0").await["tasks"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let report = |who: &TestDevice, state: &str| {
        let body = serde_json::to_vec(&json!({ "state": state, "detail": null })).unwrap();
        app.signed(
            who,
            Method::POST,
            &format!("/api/v1/device/tasks/{task_id}/result"),
            &body,
        )
        .send()
    };
    // Another device cannot touch it; `pending` is not a result.
    expect_error(
        report(&elsewhere, "installed").await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        report(&device, "pending").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let res = report(&device, "installed").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["state"], "installed");
    expect_error(
        report(&device, "failed").await.unwrap(),
        StatusCode::CONFLICT,
        "task_already_finished",
    )
    .await;
    check_in(&app, &device, "1.1.0").await;

    let adoption: Value = app
        .req(Method::GET, "/api/v1/terminal-software/adoption")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(adoption["devices"], 2);
    assert_eq!(adoption["latest_version"], "1.1.0");
    assert_eq!(adoption["up_to_date"], 1);
    let tasks = &adoption["tasks"][0];
    assert_eq!(
        (
            tasks["pending"].as_i64(),
            tasks["delivered"].as_i64(),
            tasks["installed"].as_i64()
        ),
        (Some(0), Some(0), Some(1))
    );
    let outdated: Value = app
        .req(Method::GET, "/api/v1/terminal-software/outdated")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = outdated["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [elsewhere.id.as_str()]);

    let actions = audit_actions(&app, &admin).await;
    for action in [
        "terminal_release.create",
        "terminal_release.push",
        "terminal_task.result",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} not audited");
    }
}

/// The environment every release test server gets: the test release key is trusted.
pub(crate) fn release_env() -> Vec<(&'static str, String)> {
    vec![(
        "RELEASE_PUBLIC_KEYS",
        format!(
            "{KEY_ID}={}",
            hex::encode(release_key().verifying_key().to_bytes())
        ),
    )]
}

async fn spawn(backend: Backend) -> Option<TestApp> {
    // Built before the server starts so its build does not count against request timeouts.
    kernel_wasm();
    let env = release_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::spawn(backend, &env).await
}

macro_rules! releases_on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = super::spawn($crate::Backend::Sqlite).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = super::spawn($crate::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

releases_on_both_backends!(
    kernel_uploads_pass_conformance_and_publish,
    bad_uploads_are_refused_and_store_nothing,
    failing_kernels_are_never_publishable,
    a_multi_megabyte_kernel_uploads,
    serving_rollout_pause_rollback_and_drafts,
    terminal_software_push_tasks_and_adoption,
);
