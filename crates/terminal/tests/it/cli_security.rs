//! What the server refuses and what the terminal refuses: a replayed (or stale, or tampered)
//! signed device request; a kernel update whose manifest does not verify under the terminal's
//! trusted release key, after which the installed kernel keeps working.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use release_manifest::ed25519_dalek::SigningKey;
use release_manifest::{ArtifactKind, Manifest};
use terminal::client::Client;
use terminal::store::{SecureStore, StoreKey};

use crate::cli_support::{Terminal, active_terminal, active_terminal_with};
use crate::{kernel_wasm, local_server};

fn open_client(terminal: &Terminal) -> Client {
    let key = StoreKey::from_hex(&terminal.store_key).unwrap();
    let store = SecureStore::open(&terminal.store(), &key).unwrap();
    Client::new(Arc::new(store)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_stale_and_tampered_signed_requests_are_refused() {
    let server = local_server(&[]);
    let (terminal, _admin, _) = active_terminal(&server).await;
    let client = open_client(&terminal);

    // A signed request is accepted once; the same bytes again are a replay.
    let request = client
        .sign_now(reqwest::Method::POST, "/api/v1/device/self", b"")
        .unwrap();
    let first = client.send(&request).await.unwrap();
    assert_eq!(first.status, 200);
    let replayed = client.send(&request).await.unwrap();
    assert_eq!(replayed.status, 401);
    assert_eq!(error_code(&replayed.body), "replayed_nonce");

    // An hour-old timestamp, with a fresh nonce.
    let stale = client
        .sign(
            reqwest::Method::POST,
            "/api/v1/device/self",
            b"",
            chrono::Utc::now().timestamp() - 3600,
            "stalenonce0123456789",
        )
        .unwrap();
    let res = client.send(&stale).await.unwrap();
    assert_eq!(
        (res.status, error_code(&res.body)),
        (401, "stale_timestamp".to_owned())
    );

    // A body other than the signed one.
    let mut tampered = client
        .sign_now(reqwest::Method::POST, "/api/v1/device/self", b"{}")
        .unwrap();
    tampered.body = b"{\"x\":1}".to_vec();
    let res = client.send(&tampered).await.unwrap();
    assert_eq!(
        (res.status, error_code(&res.body)),
        (401, "bad_signature".to_owned())
    );

    // The terminal still works afterwards (no state was changed by the refused requests).
    let paid = terminal
        .run(&["pay", "--amount", "3.00", "--card", "visa-fdda", "--json"])
        .ok_json();
    assert_eq!(paid["result"], "approved");
}

fn error_code(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap();
    value["code"].as_str().unwrap().to_owned()
}

fn manifest_header(version: &str, key_id: &str, key: &SigningKey, wasm: &[u8]) -> String {
    let manifest = Manifest {
        kind: ArtifactKind::Kernel,
        name: "sunbay-emv-kernel".to_owned(),
        version: version.to_owned(),
        abi_version: Some(kernel_host::ABI_VERSION),
        schemes: vec!["visa".to_owned(), "mastercard".to_owned()],
        aids: vec!["A0000000031010".to_owned(), "A0000000041010".to_owned()],
        sha256: release_manifest::sha256_hex(wasm),
        size: wasm.len() as u64,
        created_at: 1_790_000_000,
    };
    let signed = manifest.sign(key_id, key).unwrap();
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&signed).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_signed_by_an_untrusted_key_is_refused_and_the_old_one_keeps_working() {
    let release = SigningKey::from_bytes(&[0x3c; 32]);
    let other = SigningKey::from_bytes(&[0xc3; 32]);
    let public = |key: &SigningKey| hex::encode(key.verifying_key().to_bytes());
    // The server trusts both keys; the terminal trusts only the release key.
    let server_keys = format!("rel-main={},rel-other={}", public(&release), public(&other));
    let server = local_server(&[("RELEASE_PUBLIC_KEYS", &server_keys)]);
    let trusted = format!("rel-main={}", public(&release));
    let (terminal, admin, _) =
        active_terminal_with(&server, &["--trusted-release-key", &trusted]).await;

    let show = terminal.run(&["kernel", "show", "--json"]).ok_json();
    assert_eq!(show["active"], "native");
    assert_eq!(show["trusted_release_key_ids"][0], "rel-main");
    let none = terminal.run(&["kernel", "update", "--json"]).ok_json();
    assert_eq!(none["update"]["result"], "none_offered");
    // Terminals of version 1.0.0 (what this one reports) run kernels of the host's ABI.
    admin
        .allow_kernel_abi("1.0.0", kernel_host::ABI_VERSION)
        .await
        .unwrap();

    // 1.0.0, signed with the trusted key: installed, and payments run on it.
    let wasm = kernel_wasm();
    let good = admin
        .upload_kernel(wasm, &manifest_header("1.0.0", "rel-main", &release, wasm))
        .await
        .unwrap();
    let verdict = admin
        .wait_kernel_verdict(&good, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(verdict, "READY");
    admin.publish_kernel(&good, "stable", 100).await.unwrap();
    let installed = terminal.run(&["kernel", "update", "--json"]).ok_json();
    assert_eq!(installed["update"]["result"], "installed", "{installed}");
    assert_eq!(installed["update"]["version"], "1.0.0");
    assert_eq!(installed["active"], "wasm 1.0.0");
    let paid = terminal
        .run(&["pay", "--amount", "4.00", "--card", "mc-cda", "--json"])
        .ok_json();
    assert_eq!(paid["result"], "approved");
    assert!(
        paid["kernel"].as_str().unwrap().starts_with("wasm 1.0.0"),
        "{paid}"
    );

    // 1.1.0, signed with a key the server trusts but this terminal does not: refused with
    // exit code 9, nothing installed, 1.0.0 still runs payments.
    let rogue = admin
        .upload_kernel(wasm, &manifest_header("1.1.0", "rel-other", &other, wasm))
        .await
        .unwrap();
    let verdict = admin
        .wait_kernel_verdict(&rogue, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(verdict, "READY");
    admin.publish_kernel(&rogue, "stable", 100).await.unwrap();
    terminal
        .run(&["kernel", "update"])
        .expect_error(9, "kernel_bad_signature");
    let show = terminal.run(&["kernel", "show", "--json"]).ok_json();
    assert_eq!(show["current"]["version"], "1.0.0", "{show}");
    assert_eq!(show["active"], "wasm 1.0.0");
    assert_eq!(show["previous"], serde_json::Value::Null);
    let paid = terminal
        .run(&["pay", "--amount", "5.00", "--card", "visa-fdda", "--json"])
        .ok_json();
    assert_eq!(paid["result"], "approved");
    assert!(paid["kernel"].as_str().unwrap().starts_with("wasm 1.0.0"));
    // Nothing to roll back to.
    terminal
        .run(&["kernel", "rollback"])
        .expect_error(2, "kernel_no_previous");
}
