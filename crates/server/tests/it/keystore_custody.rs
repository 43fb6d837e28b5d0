//! One key store for everything: Transaction Token signing keys, webhook secrets and trusted
//! release keys are wrapped under the master keyring with the payment keys. A master-key
//! rotation re-wraps them; after it, an instance holding only the new master key still signs
//! tokens that verify under the JWKS and webhooks whose signature verifies. Values older
//! versions wrapped under `JWT_SECRET` move into the key store at start. Release keys are
//! seeded from configuration, added and retired through the API (audited), and a sealed
//! release key moved onto another row is not trusted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use payment_crypto::SecretKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::infra::keys::parse_secret;
use server::repository::keys::SqlKeyRepository;
use server::service::keys::KeyService;
use server::service::keys::injection::{derive_kek, kek_info};
use server::service::keys::store::{
    KeyStore, KeyringStore, MasterKeyring, Sealed, token_key_label, webhook_secret_label,
};
use server::service::releases::TrustedReleaseKeys;
use server::service::tokens::wrap::Wrapper;

use crate::{ADMIN_PASSWORD, Backend, TestApp, TestDevice, expect_error};

const MASTER_1: &str = "1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const MASTER_2: &str = "2:f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
/// RFC 8032 §7.1 TEST 1 and TEST 2 public keys (valid Ed25519 points).
const RELEASE_KEY_A: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RELEASE_KEY_B: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

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

fn kcv_hex(key: &SecretKey) -> String {
    payment_crypto::kcv::kcv(key, payment_crypto::kcv::KcvMethod::Cmac).to_string()
}

/// An `ACTIVE` device through the real flow: approval, a clean health report, remote key
/// injection (device side computed here), KCV confirmation. Returns it with its initial key.
async fn active_device(app: &TestApp, admin: &str) -> (TestDevice, SecretKey) {
    let merchant = app.merchant(admin).await;
    let device = app.device(&merchant).await;
    let approve = format!("/api/v1/devices/{}/approve", device.id);
    ok_json(
        post(app, admin, &approve, json!({ "reason": "checked" })).await,
        StatusCode::OK,
    )
    .await;
    app.report_ok(&device, &crate::health::clean_report()).await;
    let ephemeral =
        p256::SecretKey::from_slice(crate::new_device_key().to_bytes().as_slice()).unwrap();
    let request = serde_json::to_vec(
        &json!({ "ephemeral_public_key": B64.encode(ephemeral.public_key().to_sec1_bytes()) }),
    )
    .unwrap();
    let body = ok_json(
        app.signed(&device, Method::POST, "/api/v1/device/keys", &request)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let server_public = p256::PublicKey::from_sec1_bytes(
        &B64.decode(body["server_public_key"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let shared =
        p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), server_public.as_affine());
    let kek = derive_kek(
        shared.raw_secret_bytes().as_slice(),
        &kek_info(
            device.id.parse().unwrap(),
            body["key_set_id"].as_str().unwrap().parse().unwrap(),
            &server_public.to_sec1_bytes(),
            &ephemeral.public_key().to_sec1_bytes(),
        ),
    );
    let (_, initial_key) =
        payment_crypto::tr31::unwrap(&kek, body["key_block"].as_str().unwrap()).unwrap();
    let confirm = serde_json::to_vec(
        &json!({ "key_set_id": body["key_set_id"], "kcv": kcv_hex(&initial_key) }),
    )
    .unwrap();
    let activation = ok_json(
        app.signed(
            &device,
            Method::POST,
            "/api/v1/device/keys/confirm",
            &confirm,
        )
        .send()
        .await
        .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(activation["device_state"], "ACTIVE", "{activation}");
    (device, initial_key)
}

/// Issues a token to `device` on `app` and verifies its ES256 signature under the JWKS
/// `app` publishes; returns the `kid`.
async fn token_verifies(app: &TestApp, device: &TestDevice) -> String {
    let issued = ok_json(
        app.signed(device, Method::POST, "/api/v1/device/tokens", b"")
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let token = issued["token"].as_str().unwrap();
    let jwks: Value = app
        .req(Method::GET, "/api/v1/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = issued["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid)
        .expect("the signing key is published");
    let mut sec1 = vec![0x04];
    sec1.extend(B64URL.decode(jwk["x"].as_str().unwrap()).unwrap());
    sec1.extend(B64URL.decode(jwk["y"].as_str().unwrap()).unwrap());
    let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = p256::ecdsa::Signature::from_slice(&B64URL.decode(signature).unwrap()).unwrap();
    public
        .verify(signing_input.as_bytes(), &signature)
        .expect("ES256 signature verifies under the JWKS");
    kid.to_owned()
}

/// A local webhook receiver recording whether each signature verified.
#[derive(Clone, Default)]
struct Receiver {
    secret: Arc<Mutex<String>>,
    hits: Arc<Mutex<Vec<bool>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let header = headers
        .get("x-softpos-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let part = |prefix: &str| {
        header
            .split(',')
            .find_map(|p| p.strip_prefix(prefix))
            .unwrap_or_default()
            .to_owned()
    };
    let secret = receiver.secret.lock().unwrap().clone();
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    hmac::Mac::update(&mut mac, format!("{}.", part("t=")).as_bytes());
    hmac::Mac::update(&mut mac, &body);
    let valid = hex::encode(hmac::Mac::finalize(mac).into_bytes()) == part("v1=");
    receiver.hits.lock().unwrap().push(valid);
    AxumStatus::NO_CONTENT
}

async fn start_receiver(receiver: Receiver) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn sqlite_path(app: &TestApp) -> Option<std::path::PathBuf> {
    let rest = app.storage.database_url.strip_prefix("sqlite://")?;
    Some(rest.split('?').next()?.into())
}

/// Scans the SQLite file and WAL (SQLite) and the key-holding columns (both backends): the
/// control value must be found, none of the secrets (raw, hex, base64).
async fn assert_not_at_rest(app: &TestApp, control: &str, secrets: &[&[u8]]) {
    let mut haystacks: Vec<Vec<u8>> = Vec::new();
    if let Some(path) = sqlite_path(app) {
        for suffix in ["", "-wal"] {
            if let Ok(bytes) = std::fs::read(format!("{}{suffix}", path.display())) {
                haystacks.push(bytes);
            }
        }
    }
    let pool = app.db().await;
    for sql in [
        "SELECT private_wrapped || public_key FROM token_signing_keys",
        "SELECT secret_wrapped || url FROM webhook_endpoints",
        "SELECT wrapped || fingerprint FROM release_keys",
        "SELECT COALESCE(wrapped, '') || kcv FROM device_key_sets",
        "SELECT COALESCE(reason, '') || COALESCE(target, '') FROM audit_log",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        haystacks.push(rows.join("\n").into_bytes());
    }
    pool.close().await;
    let found = |pattern: &[u8]| {
        haystacks
            .iter()
            .any(|h| h.windows(pattern.len()).any(|w| w == pattern))
    };
    assert!(found(control.as_bytes()), "the scan does not see the data");
    for secret in secrets {
        for pattern in [
            secret.to_vec(),
            hex::encode(secret).into_bytes(),
            hex::encode_upper(secret).into_bytes(),
            B64.encode(secret).into_bytes(),
        ] {
            assert!(!found(&pattern), "a secret is stored in clear");
        }
    }
}

async fn master_versions(app: &TestApp) -> Vec<i64> {
    let pool = app.db().await;
    let mut versions = Vec::new();
    for sql in [
        "SELECT master_version FROM token_signing_keys",
        "SELECT master_version FROM webhook_endpoints",
        "SELECT master_version FROM release_keys",
    ] {
        let rows: Vec<Option<i64>> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        assert!(!rows.is_empty(), "{sql}: no row");
        versions.extend(
            rows.into_iter()
                .map(|v| v.expect("wrapped by the key store")),
        );
    }
    pool.close().await;
    versions
}

async fn rotation_rewraps_tokens_webhooks_and_release_keys(app: TestApp) {
    let admin = app.admin_token().await;
    let bdk = ok_json(
        post(
            &app,
            &admin,
            "/api/v1/keys/generate",
            json!({ "name": "bdk", "usage": "bdk", "algorithm": "aes128" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let activate = format!("/api/v1/keys/{}/activate", bdk["id"].as_str().unwrap());
    ok_json(
        post(&app, &admin, &activate, json!({})).await,
        StatusCode::OK,
    )
    .await;
    let (device, initial_key) = active_device(&app, &admin).await;
    let kid = token_verifies(&app, &device).await;

    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await;
    let created = ok_json(
        post(
            &app,
            &admin,
            "/api/v1/webhooks",
            json!({ "url": url, "event_kinds": ["device.state_changed"] }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    *receiver.secret.lock().unwrap() = secret.clone();
    let release = ok_json(
        post(
            &app,
            &admin,
            "/api/v1/keys/release-keys",
            json!({ "key_id": "rel-a", "public_key": RELEASE_KEY_A }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(master_versions(&app).await, vec![1, 1, 1]);

    // Rotation on an instance that holds both master keys.
    let both = app.spawn_sharing(&[("SOFTPOS_MASTER_KEY", &format!("{MASTER_1},{MASTER_2}"))]);
    let both_admin = crate::token_of(&both.login_ok("admin", ADMIN_PASSWORD).await);
    let rotated = ok_json(
        post(&both, &both_admin, "/api/v1/keys/master/rotate", json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rotated["master_version"], 2);
    // The BDK, the device's initial key, the token key, the webhook secret, the release key.
    assert_eq!(rotated["rewrapped"], 5, "{rotated}");
    assert_eq!(master_versions(&app).await, vec![2, 2, 2]);

    // An instance with only the new master key: the same token key still signs, the webhook
    // secret still signs deliveries, the release key is still trusted.
    let new_only = app.spawn_sharing(&[("SOFTPOS_MASTER_KEY", MASTER_2)]);
    assert_eq!(token_verifies(&new_only, &device).await, kid);
    if app.backend == Backend::Sqlite {
        // In-process event bus: the instance that changes the device state delivers.
        let new_admin = crate::token_of(&new_only.login_ok("admin", ADMIN_PASSWORD).await);
        let merchant = new_only.merchant(&new_admin).await;
        let other = new_only.device(&merchant).await;
        let approve = format!("/api/v1/devices/{}/approve", other.id);
        ok_json(
            post(&new_only, &new_admin, &approve, json!({ "reason": "ok" })).await,
            StatusCode::OK,
        )
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while receiver.hits.lock().unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "never delivered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            receiver.hits.lock().unwrap().iter().all(|valid| *valid),
            "the webhook signature does not verify after rotation"
        );
    }
    let keys = key_service(&app, MASTER_2).await;
    let ring = keys.trusted_release_keys().await.unwrap();
    assert_eq!(
        ring.get("rel-a").map(|key| hex::encode(key.to_bytes())),
        Some(RELEASE_KEY_A.to_owned())
    );
    assert_not_at_rest(
        &app,
        release["fingerprint"].as_str().unwrap(),
        &[secret.as_bytes(), initial_key.expose_secret()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewraps_tokens_webhooks_and_release_keys_sqlite() {
    let app = TestApp::spawn(Backend::Sqlite, &[("SOFTPOS_MASTER_KEY", MASTER_1)])
        .await
        .unwrap();
    rotation_rewraps_tokens_webhooks_and_release_keys(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewraps_tokens_webhooks_and_release_keys_postgres_redis() {
    let Some(app) = TestApp::spawn(Backend::Postgres, &[("SOFTPOS_MASTER_KEY", MASTER_1)]).await
    else {
        return;
    };
    rotation_rewraps_tokens_webhooks_and_release_keys(app).await;
}

/// A `KeyService` over the test server's database with `master`.
async fn key_service(app: &TestApp, master: &str) -> KeyService {
    crate::keys::key_service_with(app, master, |keyring, _repo| {
        Arc::new(KeyringStore::new(keyring))
    })
    .await
}

/// Rows written by older versions (wrapped under `JWT_SECRET`) move under the master key at
/// start; a wrong `JWT_SECRET` stops the move and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_wraps_move_under_the_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/legacy.db?mode=rwc", dir.path().display());
    let db = server::infra::db::connect(&url, 2).await.unwrap();
    let jwt = parse_secret(&"5c".repeat(32)).unwrap();
    let scalar = crate::new_device_key().to_bytes();
    let public = B64.encode(
        p256::ecdsa::SigningKey::from_slice(&scalar)
            .unwrap()
            .verifying_key()
            .to_sec1_bytes(),
    );
    let kid = "legacy-kid";
    sqlx::query(
        "INSERT INTO token_signing_keys (kid, public_key, private_wrapped, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, 1)",
    )
    .bind(kid)
    .bind(&public)
    .bind(Wrapper::derive(jwt.expose(), "token-signing-key").wrap(&scalar, kid))
    .execute(&db.writer)
    .await
    .unwrap();
    let endpoint = uuid::Uuid::new_v4();
    let secret = "whsec_legacy-webhook-secret-0123456789";
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, event_kinds, secret_wrapped, created_by, \
         created_at, updated_at) VALUES ($1, 'http://127.0.0.1:9/hook', '[\"threat.recorded\"]', \
         $2, 'user:x', 1, 1)",
    )
    .bind(endpoint.to_string())
    .bind(
        Wrapper::derive(jwt.expose(), "webhook-secret")
            .wrap(secret.as_bytes(), &endpoint.to_string()),
    )
    .execute(&db.writer)
    .await
    .unwrap();

    let repo = SqlKeyRepository::new(&db);
    let store = KeyringStore::new(Arc::new(MasterKeyring::parse(MASTER_2).unwrap()));
    let wrong = parse_secret(&"5d".repeat(32)).unwrap();
    assert!(
        server::service::keys::legacy::migrate_legacy_wraps(&repo, &store, wrong.expose())
            .await
            .is_err()
    );
    let pending: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM token_signing_keys WHERE master_version IS NULL) + \
         (SELECT COUNT(*) FROM webhook_endpoints WHERE master_version IS NULL)",
    )
    .fetch_one(&db.reader)
    .await
    .unwrap();
    assert_eq!(pending, 2, "a failed move changes nothing");

    let moved = server::service::keys::legacy::migrate_legacy_wraps(&repo, &store, jwt.expose())
        .await
        .unwrap();
    assert_eq!(moved, 2);
    let (wrapped, version): (String, i64) = sqlx::query_as(
        "SELECT private_wrapped, master_version FROM token_signing_keys WHERE kid = $1",
    )
    .bind(kid)
    .fetch_one(&db.reader)
    .await
    .unwrap();
    let sealed = Sealed {
        wrapped,
        master_version: u32::try_from(version).unwrap(),
    };
    assert_eq!(sealed.master_version, 2);
    assert_eq!(
        store
            .unwrap_bytes(&token_key_label(kid), &sealed)
            .unwrap()
            .as_slice(),
        scalar.as_slice()
    );
    let (wrapped, version): (String, i64) = sqlx::query_as(
        "SELECT secret_wrapped, master_version FROM webhook_endpoints WHERE id = $1",
    )
    .bind(endpoint.to_string())
    .fetch_one(&db.reader)
    .await
    .unwrap();
    let opened = store
        .unwrap_bytes(
            &webhook_secret_label(endpoint),
            &Sealed {
                wrapped: wrapped.clone(),
                master_version: u32::try_from(version).unwrap(),
            },
        )
        .unwrap();
    assert_eq!(opened.as_slice(), secret.as_bytes());
    // The old derivation no longer opens what is stored.
    assert!(
        Wrapper::derive(jwt.expose(), "webhook-secret")
            .unwrap(&wrapped, &endpoint.to_string())
            .is_err()
    );
    assert_eq!(
        server::service::keys::legacy::migrate_legacy_wraps(&repo, &store, jwt.expose())
            .await
            .unwrap(),
        0,
        "nothing left to move"
    );
}

/// Release keys: configuration seeds, administrators add and retire (audited), others are
/// refused, bad input changes nothing, and a sealed key moved to another row is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_keys_are_seeded_added_retired_and_sealed() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("SOFTPOS_MASTER_KEY", MASTER_1),
            ("RELEASE_PUBLIC_KEYS", &format!("seed-1={RELEASE_KEY_A}")),
        ],
    )
    .await
    .unwrap();
    let admin = app.admin_token().await;
    let officer = app.token_for_role(&admin, "security_officer").await;
    let list = |token: String| {
        let request = app
            .req(Method::GET, "/api/v1/keys/release-keys")
            .bearer_auth(token);
        async move { ok_json(request.send().await.unwrap(), StatusCode::OK).await }
    };
    let listed = list(officer.clone()).await;
    assert_eq!(listed["keys"][0]["key_id"], "seed-1");
    assert_eq!(listed["keys"][0]["origin"], "config");
    assert_eq!(listed["keys"][0]["state"], "ACTIVE");
    assert!(!listed.to_string().contains(RELEASE_KEY_A));

    let add = json!({ "key_id": "rel-b", "public_key": RELEASE_KEY_B });
    let res = post(&app, &officer, "/api/v1/keys/release-keys", add.clone()).await;
    expect_error(res, StatusCode::FORBIDDEN, "forbidden").await;
    for bad in [
        json!({ "key_id": "rel b", "public_key": RELEASE_KEY_B }),
        json!({ "key_id": "rel-b", "public_key": "abcd" }),
        json!({ "key_id": "rel-b", "public_key": format!("{RELEASE_KEY_B},x={RELEASE_KEY_A}") }),
    ] {
        let res = post(&app, &admin, "/api/v1/keys/release-keys", bad).await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    assert_eq!(
        list(admin.clone()).await["keys"].as_array().unwrap().len(),
        1
    );
    ok_json(
        post(&app, &admin, "/api/v1/keys/release-keys", add.clone()).await,
        StatusCode::CREATED,
    )
    .await;
    let res = post(&app, &admin, "/api/v1/keys/release-keys", add).await;
    expect_error(res, StatusCode::CONFLICT, "release_key_exists").await;

    let keys = key_service(&app, MASTER_1).await;
    let ring = keys.trusted_release_keys().await.unwrap();
    assert_eq!(ring.len(), 2);

    let retired = ok_json(
        post(
            &app,
            &admin,
            "/api/v1/keys/release-keys/seed-1/retire",
            json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(retired["state"], "RETIRED");
    let res = post(
        &app,
        &admin,
        "/api/v1/keys/release-keys/seed-1/retire",
        json!({}),
    )
    .await;
    expect_error(res, StatusCode::CONFLICT, "release_key_not_active").await;
    let res = post(
        &app,
        &admin,
        "/api/v1/keys/release-keys/nope/retire",
        json!({}),
    )
    .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
    let ring = keys.trusted_release_keys().await.unwrap();
    assert!(ring.get("seed-1").is_none() && ring.get("rel-b").is_some());

    // A database writer copies rel-b's sealed key onto a new row: it does not authenticate
    // under that id, so it is not trusted.
    let pool = app.db().await;
    sqlx::query(
        "INSERT INTO release_keys (key_id, wrapped, master_version, fingerprint, state, origin, \
         created_by, created_at, updated_at) \
         SELECT 'forged', wrapped, master_version, fingerprint, 'ACTIVE', 'api', 'user:x', 1, 1 \
         FROM release_keys WHERE key_id = 'rel-b'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT actor || ' ' || action FROM audit_log WHERE action LIKE 'keys.release_key_%' \
         ORDER BY seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    let ring = keys.trusted_release_keys().await.unwrap();
    assert!(ring.get("forged").is_none(), "a forged row is trusted");
    assert_eq!(ring.len(), 1);
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(actions[0].starts_with("system:config keys.release_key_added"));
    assert!(actions[1].ends_with("keys.release_key_added"));
    assert!(actions[2].ends_with("keys.release_key_retired"));
}
