//! Key custody and remote key injection, end to end over HTTP. The device side (ECDH, HKDF,
//! TR-31 unwrap, KCV, DUKPT) is computed here with payment-crypto and p256, never by server
//! code; the server's own `DeviceKeys` answers are read through a `KeyService` built by the
//! test over the same database and master key.

use std::sync::Arc;

use base64::Engine;
use payment_crypto::{KeyAlgorithm, SecretKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::domain::DeviceId;
use server::infra::keys::parse_secret;
use server::infra::stores::Stores;
use server::repository::audit::SqlAuditRepository;
use server::repository::devices::SqlDeviceRepository;
use server::repository::keys::SqlKeyRepository;
use server::repository::merchants::SqlMerchantRepository;
use server::service::audit::AuditService;
use server::service::devices::{DevicePolicy, DeviceService};
use server::service::keys::KeyService;
use server::service::keys::store::{KeyStore, MasterKeyring, SealedKeyStore};
use server::service::ports::{DeviceKeys, DukptHost};

use crate::enrol::{device_unwrap, ephemeral, kcv_of};
use crate::{ADMIN_PASSWORD, Backend, TestApp, TestDevice, expect_error};

const MASTER_1: &str = "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const MASTER_2: &str = "2:f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000";

/// TR-31:2018 Annex A.7.3.2 (as quoted in payment-crypto's TR-31 tests and openemv/tr31
/// `test/tr31_decrypt_test.c`): a TDES BDK (usage B0, key version 12, KS optional block)
/// wrapped in a version B block under this KBPK.
const A732_KBPK: &str = "1D22BF32387C600AD97F9B97A51311AC";
const A732_BLOCK: &str = "B0104B0TX12S0100KS1800604B120F9292800000BB68BE8680A400D9191AD4ECE45B6E6C0D21C4738A52190E248719E24B433627";
const A732_KEY: &str = "E8BC63E5479455E26577F715D587FE68";

async fn spawn(backend: Backend) -> Option<TestApp> {
    TestApp::spawn(backend, &[("SOFTPOS_MASTER_KEY", MASTER_1)]).await
}

/// A user with `role`; returns (id, token).
async fn user(app: &TestApp, admin: &str, role: &str) -> (String, String) {
    let username = format!(
        "{}-{}",
        role.replace('_', "-"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let password = format!("{username}-long-password-1");
    let res = app
        .req(Method::POST, "/api/v1/users")
        .bearer_auth(admin)
        .json(&json!({ "username": username, "role": role, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = crate::token_of(&app.login_ok(&username, &password).await);
    (id, token)
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.req(Method::POST, path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn ok_json(res: reqwest::Response, status: StatusCode) -> Value {
    let got = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(got, status, "{body}");
    body
}

/// A key service in the test process over the app's database, with the server's key store.
async fn key_service(app: &TestApp, master: &str) -> KeyService {
    key_service_with(app, master, |keyring, repo| {
        Arc::new(SealedKeyStore::new(keyring, repo))
    })
    .await
}

/// A key service in the test process over the app's database, the key store built by
/// `store` from the master keyring and the key repository.
pub(crate) async fn key_service_with(
    app: &TestApp,
    master: &str,
    store: impl FnOnce(Arc<MasterKeyring>, Arc<SqlKeyRepository>) -> Arc<dyn KeyStore>,
) -> KeyService {
    let db = server::infra::db::connect(&app.storage.database_url, 2)
        .await
        .expect("database");
    let stores = Stores::memory();
    let audit = Arc::new(AuditService::new(
        Arc::new(SqlAuditRepository::new(&db)),
        stores.events.clone(),
    ));
    let devices = Arc::new(DeviceService::new(
        Arc::new(SqlDeviceRepository::new(&db)),
        Arc::new(SqlMerchantRepository::new(&db)),
        stores.once.clone(),
        stores.limiter.clone(),
        audit.clone(),
        &parse_secret(&"ab".repeat(32)).unwrap(),
        DevicePolicy {
            allow_software_attestation: true,
        },
    ));
    let repo = Arc::new(SqlKeyRepository::new(&db));
    let keyring = Arc::new(MasterKeyring::parse(master).unwrap());
    KeyService::new(repo.clone(), store(keyring, repo), devices, audit)
}

/// Where the SQLite file of a SQLite test server lives.
pub(crate) fn sqlite_path(app: &TestApp) -> Option<std::path::PathBuf> {
    let rest = app.storage.database_url.strip_prefix("sqlite://")?;
    Some(rest.split('?').next()?.into())
}

/// Every byte pattern under which `secret` could appear: raw, hex (both cases), base64.
pub(crate) fn patterns(secret: &[u8]) -> Vec<Vec<u8>> {
    vec![
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        hex::encode_upper(secret).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(secret)
            .into_bytes(),
    ]
}

/// Scans the SQLite file and its WAL (SQLite) and every key and audit column (both backends)
/// for `secrets`. `control` is a stored, non-secret value (a KCV) that the scan must find, so
/// the scan is shown to read the data it claims to.
pub(crate) async fn assert_nothing_secret_at_rest(app: &TestApp, control: &str, secrets: &[&[u8]]) {
    let mut haystacks: Vec<Vec<u8>> = Vec::new();
    if let Some(path) = sqlite_path(app) {
        for suffix in ["", "-wal"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(bytes) = std::fs::read(&file) {
                haystacks.push(bytes);
            }
        }
        assert!(!haystacks.is_empty(), "no SQLite file found");
    }
    let pool = app.db().await;
    for sql in [
        "SELECT COALESCE(wrapped, '') || COALESCE(kcv, '') || name FROM stored_keys",
        "SELECT COALESCE(wrapped, '') || COALESCE(component_kcv, '') FROM key_ceremony_custodians",
        "SELECT COALESCE(wrapped, '') || kcv || initial_key_id FROM device_key_sets",
        "SELECT COALESCE(reason, '') || COALESCE(target, '') FROM audit_log",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        haystacks.push(rows.join("\n").into_bytes());
    }
    pool.close().await;
    let found = |pattern: &[u8]| {
        haystacks
            .iter()
            .any(|haystack| haystack.windows(pattern.len()).any(|w| w == pattern))
    };
    assert!(
        found(control.as_bytes()),
        "the scan does not see the stored data"
    );
    if sqlite_path(app).is_some() {
        // The raw files alone (first haystacks) must show the control too.
        let files = haystacks.len() - 4;
        assert!(
            haystacks[..files]
                .iter()
                .any(|h| h.windows(control.len()).any(|w| w == control.as_bytes())),
            "the SQLite files do not show the stored data"
        );
    }
    for secret in secrets {
        for pattern in patterns(secret) {
            for haystack in &haystacks {
                assert!(
                    !haystack
                        .windows(pattern.len())
                        .any(|w| w == pattern.as_slice()),
                    "a clear key was found at rest"
                );
            }
        }
    }
}

/// Dual control: two custodians assemble a KEK; nobody else, and neither alone, can; a wrong
/// combined KCV is refused. The KEK then imports a published TR-31 block.
async fn dual_control_and_tr31_import(app: TestApp) {
    let admin = app.admin_token().await;
    let (officer_id, officer) = user(&app, &admin, "security_officer").await;
    let (operator_id, operator) = user(&app, &admin, "operator").await;
    let (_, outsider) = user(&app, &admin, "auditor").await;

    // Bad requests change nothing.
    let res = post(
        &app,
        &officer,
        "/api/v1/keys/ceremonies",
        json!({
            "key": { "name": "zmk", "usage": "kek", "algorithm": "tdes2" },
            "custodians": [officer_id]
        }),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = post(
        &app,
        &officer,
        "/api/v1/keys/ceremonies",
        json!({
            "key": { "name": "zmk", "usage": "kek", "algorithm": "tdes2" },
            "custodians": [officer_id, officer_id]
        }),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = post(
        &app,
        &operator,
        "/api/v1/keys/ceremonies",
        json!({
            "key": { "name": "zmk", "usage": "kek", "algorithm": "tdes2" },
            "custodians": [officer_id, operator_id]
        }),
    )
    .await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;

    let ceremony = ok_json(
        post(
            &app,
            &admin,
            "/api/v1/keys/ceremonies",
            json!({
                "key": { "name": "zone master key", "usage": "kek", "algorithm": "tdes2" },
                "custodians": [officer_id, operator_id]
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let ceremony_id = ceremony["id"].as_str().unwrap().to_owned();
    let key_id = ceremony["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(ceremony["state"], "OPEN");
    assert_eq!(ceremony["key"]["state"], "PENDING");
    assert!(ceremony["key"]["kcv"].is_null());

    let kek = hex::decode(A732_KBPK).unwrap();
    let first: Vec<u8> = (0..16u8).map(|i| i.wrapping_mul(37) ^ 0x5C).collect();
    let second: Vec<u8> = kek.iter().zip(&first).map(|(a, b)| a ^ b).collect();
    let components = format!("/api/v1/keys/ceremonies/{ceremony_id}/components");
    let confirm = format!("/api/v1/keys/ceremonies/{ceremony_id}/confirm");

    // Not a named custodian: refused, even an admin.
    for token in [&outsider, &admin] {
        let res = post(
            &app,
            token,
            &components,
            json!({ "component": hex::encode(&first) }),
        )
        .await;
        expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // Wrong length.
    let res = post(&app, &officer, &components, json!({ "component": "0011" })).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let receipt = ok_json(
        post(
            &app,
            &officer,
            &components,
            json!({ "component": hex::encode(&first) }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        receipt["component_kcv"],
        kcv_of(&SecretKey::tdes(&first).unwrap())
    );
    assert_eq!(receipt["submitted"], 1);
    assert_eq!(receipt["required"], 2);
    assert!(receipt["combined_kcv"].is_null());
    // The same custodian twice: refused.
    let res = post(
        &app,
        &officer,
        &components,
        json!({ "component": hex::encode(&second) }),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "component_already_submitted").await;
    // One custodian alone cannot complete.
    let kek_kcv = kcv_of(&SecretKey::tdes(&kek).unwrap());
    let res = post(&app, &officer, &confirm, json!({ "kcv": kek_kcv })).await;
    expect_error(res, StatusCode::CONFLICT, "ceremony_not_complete").await;

    let receipt = ok_json(
        post(
            &app,
            &operator,
            &components,
            json!({ "component": hex::encode(&second) }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(receipt["combined_kcv"], kek_kcv.as_str());
    assert_eq!(receipt["submitted"], 2);

    // Confirmation: not by outsiders, not with a wrong KCV.
    let res = post(&app, &outsider, &confirm, json!({ "kcv": kek_kcv })).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = post(&app, &operator, &confirm, json!({ "kcv": "000000" })).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "kcv_mismatch").await;
    let key: Value = app
        .req(Method::GET, &format!("/api/v1/keys/{key_id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key["state"], "READY");
    let key = ok_json(
        post(
            &app,
            &operator,
            &confirm,
            json!({ "kcv": kek_kcv.to_lowercase() }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(key["state"], "ACTIVE");
    assert_eq!(key["origin"], "components");
    assert_eq!(key["kcv"], kek_kcv.as_str());
    let res = post(
        &app,
        &operator,
        &components,
        json!({ "component": hex::encode(&second) }),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "component_already_submitted").await;
    // The components are erased once confirmed.
    let pool = app.db().await;
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM key_ceremony_custodians WHERE wrapped IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
    pool.close().await;

    // TR-31 import of the published block under the assembled KEK.
    let import = |usage: &str, block: &str| json!({ "name": "bdk from tr31", "usage": usage, "kek_id": key_id, "block": block });
    let mut tampered = A732_BLOCK.to_owned();
    tampered.replace_range(40..41, if &A732_BLOCK[40..41] == "0" { "1" } else { "0" });
    let res = post(
        &app,
        &officer,
        "/api/v1/keys/import-tr31",
        import("bdk", &tampered),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "tr31_mac_mismatch").await;
    let res = post(
        &app,
        &officer,
        "/api/v1/keys/import-tr31",
        import("zpk", A732_BLOCK),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "tr31_usage_mismatch").await;
    let bdk = ok_json(
        post(
            &app,
            &officer,
            "/api/v1/keys/import-tr31",
            import("bdk", A732_BLOCK),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let bdk_key = hex::decode(A732_KEY).unwrap();
    assert_eq!(
        bdk["kcv"],
        kcv_of(&SecretKey::tdes(&bdk_key).unwrap()).as_str()
    );
    assert_eq!(bdk["state"], "READY");
    assert_eq!(bdk["origin"], "tr31");
    assert_eq!(bdk["algorithm"], "tdes2");
    let path = format!("/api/v1/keys/{}/activate", bdk["id"].as_str().unwrap());
    assert_eq!(
        ok_json(post(&app, &officer, &path, json!({})).await, StatusCode::OK).await["state"],
        "ACTIVE"
    );
    let res = post(&app, &officer, &path, json!({})).await;
    expect_error(res, StatusCode::CONFLICT, "invalid_key_transition").await;

    // Every step is in the audit log.
    let pool = app.db().await;
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'keys.%'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    for expected in [
        "keys.ceremony_opened",
        "keys.component_refused",
        "keys.component_submitted",
        "keys.ceremony_complete",
        "keys.ceremony_kcv_mismatch",
        "keys.ceremony_confirmed",
        "keys.imported_tr31",
        "keys.activated",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} not audited"
        );
    }

    assert_nothing_secret_at_rest(&app, &kek_kcv, &[&kek, &first, &second, &bdk_key]).await;
}

async fn generate_active(
    app: &TestApp,
    token: &str,
    usage: &str,
    algorithm: &str,
    extra: Value,
) -> Value {
    let mut body =
        json!({ "name": format!("{usage} {algorithm}"), "usage": usage, "algorithm": algorithm });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    crate::enrol::generate_active(app, token, body).await
}

/// Injection end to end: refused before approval and with bad signatures; AES then TDES key
/// sets unwrap on the device side and agree with the server's DUKPT host; revocation destroys.
async fn key_injection_end_to_end(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let device = app.device(&merchant).await;
    let (eph, eph_public) = ephemeral();
    let request = serde_json::to_vec(&json!({ "ephemeral_public_key": eph_public })).unwrap();

    // No BDK yet, and the device is only REGISTERED.
    let res = app
        .signed(&device, Method::POST, "/api/v1/device/keys", &request)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT, "device_not_approved").await;
    let approve = format!("/api/v1/devices/{}/approve", device.id);
    ok_json(
        post(&app, &admin, &approve, json!({ "reason": "checked" })).await,
        StatusCode::OK,
    )
    .await;
    let res = app
        .signed(&device, Method::POST, "/api/v1/device/keys", &request)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT, "no_active_bdk").await;

    let bdk = generate_active(&app, &admin, "bdk", "aes128", json!({})).await;
    // A bad signature (another key) is refused and issues nothing.
    let impostor = TestDevice {
        id: device.id.clone(),
        key: crate::new_device_key(),
    };
    let res = app
        .signed(&impostor, Method::POST, "/api/v1/device/keys", &request)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "bad_signature").await;
    // A malformed ephemeral key.
    let bad = serde_json::to_vec(&json!({ "ephemeral_public_key": "AAAA" })).unwrap();
    let res = app
        .signed(&device, Method::POST, "/api/v1/device/keys", &bad)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let body = ok_json(
        app.signed(&device, Method::POST, "/api/v1/device/keys", &request)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["scheme"], "aes128");
    assert_eq!(body["version"], 1);
    let initial_key = device_unwrap(&device.id, &eph, &body);
    assert_eq!(initial_key.algorithm(), KeyAlgorithm::Aes128);
    let ik_hex = body["initial_key_id"].as_str().unwrap();
    assert_eq!(&ik_hex[..8], bdk["dukpt_key_id"].as_str().unwrap());
    let key_set_id: uuid::Uuid = body["key_set_id"].as_str().unwrap().parse().unwrap();

    // The KCV confirmation: wrong one refused, right one activates the key set.
    let confirm =
        |kcv: &str| serde_json::to_vec(&json!({ "key_set_id": key_set_id, "kcv": kcv })).unwrap();
    let res = app
        .signed(
            &device,
            Method::POST,
            "/api/v1/device/keys/confirm",
            &confirm("0000000000"),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "kcv_mismatch").await;
    let keys = key_service(&app, MASTER_1).await;
    let device_id = DeviceId(device.id.parse().unwrap());
    assert!(keys.active_key_set(device_id).await.unwrap().is_none());
    let activation = ok_json(
        app.signed(
            &device,
            Method::POST,
            "/api/v1/device/keys/confirm",
            &confirm(&kcv_of(&initial_key)),
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(activation["key_set_state"], "ACTIVE");
    // No health report yet: the device waits.
    assert_eq!(activation["device_state"], "APPROVED");
    assert_eq!(activation["pending"], "no_health_check");
    let res = app
        .signed(
            &device,
            Method::POST,
            "/api/v1/device/keys/confirm",
            &confirm(&kcv_of(&initial_key)),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT, "key_set_not_issued").await;
    let status = ok_json(
        app.signed(&device, Method::POST, "/api/v1/device/keys/status", b"")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(status["key_set_id"], key_set_id.to_string());
    assert_eq!(status["rotation_due"], false);
    assert_eq!(status["rotate_after"], 900_000);
    let rotate = format!("/api/v1/devices/{}/key-sets/rotate", device.id);
    let res = post(&app, &admin, &rotate, json!({ "reason": " " })).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    ok_json(
        post(&app, &admin, &rotate, json!({ "reason": "policy" })).await,
        StatusCode::OK,
    )
    .await;
    let status = ok_json(
        app.signed(&device, Method::POST, "/api/v1/device/keys/status", b"")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(status["rotation_due"], true);

    // The server's DUKPT host and the device's originator agree on the PIN key.
    let info = keys
        .active_key_set(device_id)
        .await
        .unwrap()
        .expect("active key set");
    assert_eq!(info.id, key_set_id);
    assert_eq!(hex::encode_upper(&info.initial_key_id), ik_hex);
    let ik = payment_crypto::dukpt::aes::InitialKeyId::from_slice(&info.initial_key_id).unwrap();
    for counter in [1u32, 7, 0x10_0000] {
        let ksn = payment_crypto::dukpt::aes::Ksn::new(ik, counter);
        let device_pin_key = payment_crypto::dukpt::aes::derive_working_key_from_initial_key(
            &initial_key,
            &ksn,
            payment_crypto::dukpt::aes::WorkingKeyUsage::PinEncryption,
            KeyAlgorithm::Aes128,
        )
        .unwrap();
        let DukptHost::Aes(host) = keys.dukpt_host(&info).await.unwrap() else {
            panic!("expected an AES DUKPT host");
        };
        let server_pin_key = host
            .derive_working_key(
                &ksn,
                payment_crypto::dukpt::aes::WorkingKeyUsage::PinEncryption,
                KeyAlgorithm::Aes128,
            )
            .unwrap();
        assert_eq!(device_pin_key, server_pin_key, "counter {counter}");
    }

    // Rotation to a TDES profile: the admin pins the scheme; the device asks again.
    let tdes_bdk = generate_active(&app, &admin, "bdk", "tdes2", json!({})).await;
    let officer = app.token_for_role(&admin, "security_officer").await;
    let res = app
        .req(Method::PUT, "/api/v1/keys/profiles/softpos")
        .bearer_auth(&officer)
        .json(&json!({ "scheme": "tdes", "bdk_id": null, "rotate_after": 1000 }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .req(Method::PUT, "/api/v1/keys/profiles/softpos")
        .bearer_auth(&admin)
        .json(&json!({ "scheme": "tdes", "bdk_id": bdk["id"], "rotate_after": 1000 }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let profile = ok_json(
        app.req(Method::PUT, "/api/v1/keys/profiles/softpos")
            .bearer_auth(&admin)
            .json(&json!({ "scheme": "tdes", "bdk_id": tdes_bdk["id"], "rotate_after": 1000 }))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(profile["scheme"], "tdes");
    let (eph2, eph2_public) = ephemeral();
    let request2 = serde_json::to_vec(&json!({ "ephemeral_public_key": eph2_public })).unwrap();
    let body2 = ok_json(
        app.signed(&device, Method::POST, "/api/v1/device/keys", &request2)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(body2["scheme"], "tdes");
    assert_eq!(body2["version"], 2);
    // The first ephemeral key does not open the second block.
    let ipek = device_unwrap(&device.id, &eph2, &body2);
    assert_eq!(ipek.algorithm(), KeyAlgorithm::Tdes2);
    let set2: uuid::Uuid = body2["key_set_id"].as_str().unwrap().parse().unwrap();
    let confirm2 =
        serde_json::to_vec(&json!({ "key_set_id": set2, "kcv": kcv_of(&ipek) })).unwrap();
    ok_json(
        app.signed(
            &device,
            Method::POST,
            "/api/v1/device/keys/confirm",
            &confirm2,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    let ksn = payment_crypto::dukpt::tdes::Ksn::from_bytes(
        &hex::decode(body2["initial_key_id"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
    .with_counter(5)
    .unwrap();
    let device_keys =
        payment_crypto::dukpt::tdes::derive_transaction_keys_from_ipek(&ipek, &ksn).unwrap();
    let info2 = keys
        .active_key_set(device_id)
        .await
        .unwrap()
        .expect("the rotated key set is active");
    assert_eq!(info2.id, set2);
    let DukptHost::Tdes(host) = keys.dukpt_host(&info2).await.unwrap() else {
        panic!("expected a TDES DUKPT host");
    };
    assert_eq!(
        device_keys.pin_encryption_key(),
        host.derive_transaction_keys(&ksn)
            .unwrap()
            .pin_encryption_key()
    );
    // The payment pipeline's counter check flags rotation past the profile's threshold.
    let ctx = server::service::RequestContext::default();
    assert!(!keys.note_counter(set2, 1000, &ctx).await.unwrap());
    assert!(keys.note_counter(set2, 1001, &ctx).await.unwrap());
    let status = ok_json(
        app.signed(&device, Method::POST, "/api/v1/device/keys/status", b"")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(status["version"], 2);
    assert_eq!(status["rotation_due"], true);
    let sets: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/devices/{}/key-sets", device.id),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sets["key_sets"][0]["state"], "ACTIVE");
    assert_eq!(sets["key_sets"][1]["state"], "SUPERSEDED");

    // Activation once a health check passes: a signed report, then the device asks again.
    let activate = || {
        app.signed(&device, Method::POST, "/api/v1/device/keys/activate", b"")
            .send()
    };
    let pending = ok_json(activate().await.unwrap(), StatusCode::OK).await;
    assert_eq!(pending["device_state"], "APPROVED");
    assert_eq!(pending["pending"], "no_health_check");
    app.report_ok(&device, &crate::health::clean_report()).await;
    let activation = ok_json(activate().await.unwrap(), StatusCode::OK).await;
    assert_eq!(activation["device_state"], "ACTIVE", "{activation}");
    assert!(activation["pending"].is_null());
    assert_eq!(activation["key_set_id"], set2.to_string());

    // Revocation destroys the key records and keeps tombstones.
    let revoke = format!("/api/v1/devices/{}/revoke", device.id);
    ok_json(
        post(&app, &admin, &revoke, json!({ "reason": "lost" })).await,
        StatusCode::OK,
    )
    .await;
    let sets: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/devices/{}/key-sets", device.id),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for set in sets["key_sets"].as_array().unwrap() {
        assert_eq!(set["state"], "DESTROYED");
        assert!(set["destroyed_at"].is_string());
    }
    let pool = app.db().await;
    let wrapped: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM device_key_sets WHERE wrapped IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(wrapped, 0);
    // No active set is left to derive from (a sale reads it first).
    assert!(keys.active_key_set(device_id).await.unwrap().is_none());
    let res = app
        .signed(&device, Method::POST, "/api/v1/device/keys", &request2)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "device_revoked").await;

    let initial: &[u8] = initial_key.expose_secret();
    let ipek_bytes: &[u8] = ipek.expose_secret();
    assert_nothing_secret_at_rest(&app, &kcv_of(&ipek), &[initial, ipek_bytes]).await;
}

/// Master rotation re-wraps everything under the new version; afterwards the old master key
/// is no longer needed, and alone it no longer opens anything.
async fn master_key_rotation(app: TestApp) {
    let admin = app.admin_token().await;
    let zpk = generate_active(
        &app,
        &admin,
        "zpk",
        "aes128",
        json!({ "processor": "acq-1", "pin_format": 4 }),
    )
    .await;
    let res = post(&app, &admin, "/api/v1/keys/generate", json!({
        "name": "bad zpk", "usage": "zpk", "algorithm": "aes128", "processor": "acq 1", "pin_format": 0
    })).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let before = key_service(&app, MASTER_1)
        .await
        .zone_pin_key("acq-1")
        .await
        .unwrap();
    assert_eq!(kcv_of(&before.key), zpk["kcv"].as_str().unwrap());
    assert_eq!(
        before.format,
        payment_crypto::pinblock::PinBlockFormat::Iso4
    );

    let both = app.spawn_sharing(&[("SOFTPOS_MASTER_KEY", &format!("{MASTER_1},{MASTER_2}"))]);
    let both_admin = crate::token_of(&both.login_ok("admin", ADMIN_PASSWORD).await);
    let officer = both.token_for_role(&both_admin, "security_officer").await;
    let res = post(&both, &officer, "/api/v1/keys/master/rotate", json!({})).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    let rotated = ok_json(
        post(&both, &both_admin, "/api/v1/keys/master/rotate", json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rotated["master_version"], 2);
    assert_eq!(rotated["rewrapped"], 1);
    let again = ok_json(
        post(&both, &both_admin, "/api/v1/keys/master/rotate", json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(again["rewrapped"], 0);

    let after = key_service(&app, MASTER_2)
        .await
        .zone_pin_key("acq-1")
        .await
        .unwrap();
    assert_eq!(after.key, before.key);
    assert!(
        key_service(&app, MASTER_1)
            .await
            .zone_pin_key("acq-1")
            .await
            .is_err()
    );
    let pool = app.db().await;
    let action: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'keys.master_rotated'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(action, 2);
    assert_nothing_secret_at_rest(
        &app,
        zpk["kcv"].as_str().unwrap(),
        &[before.key.expose_secret()],
    )
    .await;
}

/// TR-31:2018 Annex A.7.4 / ANSI X9.143-2021 8.1 (as quoted in payment-crypto's TR-31
/// tests): an AES-128 PIN encryption key (P0) in a version D block under an AES-256 KBPK.
const A74_KBPK: &str = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
const A74_BLOCK: &str = "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34";
const A74_KEY: &str = "3F419E1CB7079442AA37474C2EFBF8B8";

/// A zone PIN key imported as a TR-31 version D block under an AES-256 KEK that three
/// custodians assembled; keys listed and shown carry no material.
async fn zone_pin_key_by_three_custodians_and_listings(app: TestApp) {
    let admin = app.admin_token().await;
    let mut custodians = Vec::new();
    for role in ["security_officer", "operator", "auditor"] {
        custodians.push(user(&app, &admin, role).await);
    }
    let ids: Vec<&String> = custodians.iter().map(|(id, _)| id).collect();
    let ceremony = ok_json(
        post(
            &app,
            &admin,
            "/api/v1/keys/ceremonies",
            json!({
                "key": { "name": "acquirer ZMK", "usage": "kek", "algorithm": "aes256" },
                "custodians": ids
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let ceremony_id = ceremony["id"].as_str().unwrap();
    let kek = hex::decode(A74_KBPK).unwrap();
    let first = [0x11u8; 32];
    let second: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(91)).collect();
    let third: Vec<u8> = kek
        .iter()
        .zip(&first)
        .zip(&second)
        .map(|((k, a), b)| k ^ a ^ b)
        .collect();
    let components = format!("/api/v1/keys/ceremonies/{ceremony_id}/components");
    for ((_, token), part) in custodians.iter().zip([&first[..], &second, &third]) {
        let receipt = ok_json(
            post(
                &app,
                token,
                &components,
                json!({ "component": hex::encode(part) }),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            receipt["component_kcv"],
            kcv_of(&SecretKey::aes(part).unwrap()).as_str()
        );
        assert_eq!(receipt["required"], 3);
    }
    let kek_kcv = kcv_of(&SecretKey::aes(&kek).unwrap());
    let officer = app.token_for_role(&admin, "security_officer").await;
    let key = ok_json(
        post(
            &app,
            &officer,
            &format!("/api/v1/keys/ceremonies/{ceremony_id}/confirm"),
            json!({ "kcv": kek_kcv }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(key["state"], "ACTIVE");
    let zpk = ok_json(
        post(
            &app,
            &admin,
            "/api/v1/keys/import-tr31",
            json!({
                "name": "acquirer 2 ZPK", "usage": "zpk", "processor": "acq-2", "pin_format": 4,
                "kek_id": key["id"], "block": A74_BLOCK
            }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let zpk_key = hex::decode(A74_KEY).unwrap();
    assert_eq!(
        zpk["kcv"],
        kcv_of(&SecretKey::aes(&zpk_key).unwrap()).as_str()
    );
    let keys = key_service(&app, MASTER_1).await;
    assert!(keys.zone_pin_key("acq-2").await.is_err(), "not active yet");
    let zpk_path = |action: &str| format!("/api/v1/keys/{}/{action}", zpk["id"].as_str().unwrap());
    ok_json(
        post(&app, &admin, &zpk_path("activate"), json!({})).await,
        StatusCode::OK,
    )
    .await;
    let active = keys.zone_pin_key("acq-2").await.unwrap();
    assert_eq!(active.key.expose_secret(), zpk_key.as_slice());
    assert_eq!(
        active.format,
        payment_crypto::pinblock::PinBlockFormat::Iso4
    );
    ok_json(
        post(&app, &admin, &zpk_path("retire"), json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert!(keys.zone_pin_key("acq-2").await.is_err(), "retired");
    assert_nothing_secret_at_rest(&app, &kek_kcv, &[&kek, &first, &second, &third, &zpk_key]).await;

    generate_active(&app, &admin, "bdk", "aes256", json!({})).await;
    let res = post(
        &app,
        &admin,
        "/api/v1/keys/generate",
        json!({ "name": "x", "usage": "bdk", "algorithm": "tdes3" }),
    )
    .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let list: Value = app
        .req(Method::GET, "/api/v1/keys?usage=bdk")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = list["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let fields: Vec<&String> = keys[0].as_object().unwrap().keys().collect();
    for field in fields {
        assert!(
            !["wrapped", "key", "material", "sealed"].contains(&field.as_str()),
            "{field}"
        );
    }
    let profiles: Value = app
        .req(Method::GET, "/api/v1/keys/profiles")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profiles["profiles"].as_array().unwrap().len(), 2);
    assert_eq!(profiles["profiles"][0]["scheme"], "aes128");
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dual_control_and_tr31_import() {
        if let Some(app) = super::spawn(crate::Backend::Sqlite).await {
            super::dual_control_and_tr31_import(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_injection_end_to_end() {
        if let Some(app) = super::spawn(crate::Backend::Sqlite).await {
            super::key_injection_end_to_end(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn master_key_rotation() {
        if let Some(app) = super::spawn(crate::Backend::Sqlite).await {
            super::master_key_rotation(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zone_pin_key_by_three_custodians_and_listings() {
        if let Some(app) = super::spawn(crate::Backend::Sqlite).await {
            super::zone_pin_key_by_three_custodians_and_listings(app).await;
        }
    }
}

mod postgres_redis {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dual_control_and_tr31_import() {
        if let Some(app) = super::spawn(crate::Backend::Postgres).await {
            super::dual_control_and_tr31_import(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn key_injection_end_to_end() {
        if let Some(app) = super::spawn(crate::Backend::Postgres).await {
            super::key_injection_end_to_end(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn master_key_rotation() {
        if let Some(app) = super::spawn(crate::Backend::Postgres).await {
            super::master_key_rotation(app).await;
        }
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zone_pin_key_by_three_custodians_and_listings() {
        if let Some(app) = super::spawn(crate::Backend::Postgres).await {
            super::zone_pin_key_by_three_custodians_and_listings(app).await;
        }
    }
}
