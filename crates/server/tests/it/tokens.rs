//! Transaction Tokens through the real endpoints, as a device uses them: issuance rules (the
//! refusing rule named in the answer), claims and storage, single use (also under 100
//! concurrent sales with one token, and across two server processes sharing PostgreSQL +
//! Redis), forgeries, expiry, other-device and revoked-device tokens, JWKS, rotation and
//! introspection.
//!
//! Devices are enrolled through the API (`enrol`); tokens come from
//! `POST /api/v1/device/tokens` and are consumed by sales on `POST /api/v1/device/transactions`
//! (the only consumer); threats are read from `/api/v1/threats`. The database is read only to
//! check what is stored.

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::enrol::{ActiveDevice, Sale};
use crate::health::clean_report;
use crate::{Backend, TestApp, expect_error};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The admin, the server's payment keys, and one enrolled device.
async fn setup(app: &TestApp) -> (String, ActiveDevice) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let device = app.enrol(&admin).await;
    (admin, device)
}

fn expect_code(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}

/// A sale of 20.00 with `token` (otherwise valid: the device's next KSN, a real card).
async fn sale_with(app: &TestApp, device: &mut ActiveDevice, token: &str) -> (StatusCode, Value) {
    let body = device.sale(token, &Sale::new("mc-cda", 2_000));
    device.submit(app, &body, &Uuid::new_v4().to_string()).await
}

fn approved(answer: &(StatusCode, Value)) {
    assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.1);
    assert_eq!(answer.1["state"], "APPROVED", "{}", answer.1);
}

async fn token_count(app: &TestApp) -> i64 {
    let pool = app.db().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// The device's threats of `kind`.
async fn threats_of_kind(
    app: &TestApp,
    admin: &str,
    device: &ActiveDevice,
    kind: &str,
) -> Vec<Value> {
    app.threats_of(admin, &device.device)
        .await
        .into_iter()
        .filter(|threat| threat["kind"] == kind)
        .collect()
}

async fn resolve_threat(app: &TestApp, admin: &str, threat: &Value) {
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/threats/{}/state", threat["id"].as_str().unwrap()),
        )
        .bearer_auth(admin)
        .json(&json!({ "state": "resolved", "note": "checked by the test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn device_action(app: &TestApp, admin: &str, device: &ActiveDevice, action: &str) {
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/devices/{}/{action}", device.id()),
        )
        .bearer_auth(admin)
        .json(&json!({ "reason": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{action}");
}

/// Each issuance rule refuses with its own code, and a refusal stores no token.
async fn issuance_is_refused_per_rule(app: TestApp) {
    let (admin, device) = setup(&app).await;
    let stored = token_count(&app).await;

    // Not ACTIVE: registered only, then approved (keys not yet injected).
    let merchant = app.merchant(&admin).await;
    let registered = app.device(&merchant).await;
    let issue = |who: &crate::TestDevice| {
        app.signed(who, Method::POST, "/api/v1/device/tokens", b"{}")
            .send()
    };
    expect_error(
        issue(&registered).await.unwrap(),
        StatusCode::CONFLICT,
        "device_not_active",
    )
    .await;
    let approved_only = app.approved_device(&admin, "softpos").await;
    expect_error(
        issue(&approved_only).await.unwrap(),
        StatusCode::CONFLICT,
        "device_not_active",
    )
    .await;
    // Without a health check the device cannot even become ACTIVE: activation names the
    // same rule and waits.
    let injected = app.inject_keys(&approved_only).await;
    let activation = app.confirm_keys(&approved_only, &injected).await;
    assert_eq!(activation["device_state"], "APPROVED");
    assert_eq!(activation["pending"], "no_health_check");
    expect_error(
        issue(&approved_only).await.unwrap(),
        StatusCode::CONFLICT,
        "device_not_active",
    )
    .await;

    // The latest check failed (an outdated app is a critical check under the policy).
    let mut failing = clean_report();
    failing["app_version"] = json!("0.9.1");
    let report = app.report_ok(&device.device, &failing).await;
    assert_eq!(report["passed"], false, "{report}");
    let body = expect_error(
        device.request_token(&app).await,
        StatusCode::CONFLICT,
        "health_check_failed",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("failed"));
    // A passing one again: issued.
    app.report_ok(&device.device, &clean_report()).await;
    device.token(&app).await;

    // The latest check is older than the policy's maximum report age.
    app.change_policy(&admin, |policy| policy["max_report_age_secs"] = json!(1))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    expect_error(
        device.request_token(&app).await,
        StatusCode::CONFLICT,
        "health_check_stale",
    )
    .await;
    app.change_policy(&admin, |policy| policy["max_report_age_secs"] = json!(900))
        .await;
    device.token(&app).await;

    // An open threat whose response blocks transactions (an overlay is a high-severity
    // check): refused even after a passing check, until an officer resolves it.
    let mut overlay = clean_report();
    overlay["overlay_detected"] = json!(true);
    app.report_ok(&device.device, &overlay).await;
    app.report_ok(&device.device, &clean_report()).await;
    let body = expect_error(
        device.request_token(&app).await,
        StatusCode::CONFLICT,
        "blocking_threat",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("threat"));
    let threats = app.threats_of(&admin, &device.device).await;
    let blocking: Vec<&Value> = threats
        .iter()
        .filter(|t| t["action_outcome"] == "transactions_blocked")
        .collect();
    assert_eq!(blocking.len(), 1, "{threats:?}");
    resolve_threat(&app, &admin, blocking[0]).await;
    device.token(&app).await;

    // Suspended, then revoked.
    device_action(&app, &admin, &device, "suspend").await;
    expect_error(
        device.request_token(&app).await,
        StatusCode::CONFLICT,
        "device_not_active",
    )
    .await;
    device_action(&app, &admin, &device, "revoke").await;
    expect_error(
        device.request_token(&app).await,
        StatusCode::UNAUTHORIZED,
        "device_revoked",
    )
    .await;
    assert_eq!(
        token_count(&app).await,
        stored + 3,
        "only the three granted issuances stored a token"
    );
}

/// The claims carry the verdict, state and key set; the JWS names ES256 and the kid; the
/// server keeps a hash, never the token.
async fn issued_claims_and_storage(app: TestApp) {
    let (_admin, device) = setup(&app).await;
    let report = app.report_ok(&device.device, &clean_report()).await;
    let issued = device.token_body(&app).await;
    let token = issued["token"].as_str().unwrap();
    let claims = &issued["claims"];
    assert_eq!(claims["sub"], device.id());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(claims["health_report_id"], report["id"], "{report}");
    assert_eq!(claims["health_score"], 100);
    assert!(claims["amount_ceiling_minor"].is_null());
    assert_eq!(claims["key_set_id"], device.key_set_id.to_string());
    assert_eq!(claims["device_state"], "ACTIVE");
    assert_eq!(issued["token_id"], claims["jti"]);
    // The signed payload is exactly these claims.
    let payload: Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(&payload, claims);
    let header: Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], issued["kid"]);

    // A lower score (ADB and developer options) brings the policy's amount ceiling.
    let mut report = clean_report();
    report["adb_enabled"] = json!(true);
    report["developer_options"] = json!(true);
    let lower = app.report_ok(&device.device, &report).await;
    assert_eq!(lower["score"], 80);
    let capped = device.token_body(&app).await;
    assert_eq!(capped["claims"]["health_score"], 80);
    assert_eq!(capped["claims"]["amount_ceiling_minor"], 5000);

    let pool = app.db().await;
    let stored: (String, String) =
        sqlx::query_as("SELECT token_hash, claims FROM tokens WHERE jti = $1")
            .bind(issued["token_id"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_ne!(stored.0, token);
    assert!(!stored.1.contains(token));
    let signature = token.rsplit('.').next().unwrap();
    let any: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tokens WHERE token_hash LIKE $1 OR claims LIKE $1",
    )
    .bind(format!("%{signature}%"))
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(any, 0);
}

/// One sale consumes the token; a second sale with it is refused and a TOKEN_REUSE threat.
async fn consumed_once_then_reuse_is_a_threat(app: TestApp) {
    let (admin, mut device) = setup(&app).await;
    let issued = device.token_body(&app).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let token_id = issued["token_id"].as_str().unwrap().to_owned();

    let auditor = app.token_for_role(&admin, "auditor").await;
    let introspect = |who: String| {
        app.req(Method::GET, &format!("/api/v1/tokens/{token_id}"))
            .bearer_auth(who)
            .send()
    };
    let before: Value = introspect(auditor.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["state"], "issued");
    assert_eq!(before["claims"]["sub"], device.id());
    assert!(!before.to_string().contains(&token));

    approved(&sale_with(&app, &mut device, &token).await);
    let again = sale_with(&app, &mut device, &token).await;
    expect_code(&again, StatusCode::CONFLICT, "token_reused");
    let reuse = threats_of_kind(&app, &admin, &device, "token_reuse").await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(reuse[0]["evidence"]["token_id"], token_id.as_str());

    let after: Value = introspect(auditor).await.unwrap().json().await.unwrap();
    assert_eq!(after["state"], "consumed");
    assert!(after["consumed_at"].is_string());
    let operator = app.token_for_role(&admin, "operator").await;
    assert_eq!(
        introspect(operator).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let missing = app
        .req(Method::GET, &format!("/api/v1/tokens/{}", Uuid::new_v4()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_error(missing, StatusCode::NOT_FOUND, "not_found").await;
}

/// 100 concurrent sales with one token, each otherwise valid (its own KSN and idempotency
/// key): exactly one is paid, 99 are `token_reused` and each a TOKEN_REUSE threat. With
/// PostgreSQL + Redis the sales alternate between two server processes sharing them.
async fn hundred_concurrent_sales_with_one_token_one_succeeds(app: TestApp) {
    let (admin, mut device) = setup(&app).await;
    let second = (app.backend == Backend::Postgres).then(|| app.spawn_sharing(&[]));
    let issued = device.token_body(&app).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let bodies: Vec<Vec<u8>> = (0..100)
        .map(|_| serde_json::to_vec(&device.sale(&token, &Sale::new("mc-cda", 2_000))).unwrap())
        .collect();
    let requests = bodies.iter().enumerate().map(|(n, body)| {
        let server = match (&second, n % 2) {
            (Some(other), 1) => other,
            _ => &app,
        };
        let key = Uuid::new_v4().to_string();
        let request = device.signed_post(server, "/api/v1/device/transactions", body, Some(&key));
        async move {
            let res = request.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let mut paid = 0;
    let mut reused = 0;
    for answer in &answers {
        match (answer.0, answer.1["code"].as_str()) {
            (StatusCode::CREATED, _) => {
                approved(answer);
                paid += 1;
            }
            (StatusCode::CONFLICT, Some("token_reused")) => reused += 1,
            _ => panic!("unexpected answer {} {}", answer.0, answer.1),
        }
    }
    assert_eq!((paid, reused), (1, 99));

    let pool = app.db().await;
    let consumed: Option<i64> = sqlx::query_scalar("SELECT consumed_at FROM tokens WHERE jti = $1")
        .bind(issued["token_id"].as_str().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(consumed.is_some());
    let list = app.get_json(&admin, "/api/v1/transactions").await;
    assert_eq!(list["transactions"].as_array().unwrap().len(), 1, "{list}");
    let reuse = threats_of_kind(&app, &admin, &device, "token_reuse").await;
    assert_eq!(reuse.len(), 99, "every losing sale is a TOKEN_REUSE threat");
}

fn forge(token: &str, header: &Value, signature: &[u8]) -> String {
    let payload = token.split('.').nth(1).unwrap();
    format!(
        "{}.{payload}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(signature)
    )
}

/// Forged, other-device, suspended-device, expired and revoked-device tokens are refused
/// with distinct codes, and none of the refusals spends the token.
async fn forged_expired_and_foreign_tokens_are_refused(app: TestApp) {
    let (admin, mut device) = setup(&app).await;
    let issued = device.token_body(&app).await;
    let token = issued["token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = token.split('.').collect();
    let kid = issued["kid"].as_str().unwrap().to_owned();
    let es256 = json!({"alg": "ES256", "typ": "JWT", "kid": kid});

    // Wrong key: signed by a key the server never had, under the real kid.
    let rogue = crate::new_device_key();
    let input = format!("{}.{}", B64URL.encode(es256.to_string()), parts[1]);
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&rogue, input.as_bytes());
    let wrong_key = format!("{input}.{}", B64URL.encode(sig.to_bytes()));
    let none = forge(&token, &json!({"alg": "none", "kid": kid}), b"");
    // HS256 keyed with the server's public key (from the JWKS).
    let jwks: Value = app
        .req(Method::GET, "/api/v1/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .expect("issuing key published");
    let mut public = vec![4u8];
    public.extend(B64URL.decode(jwk["x"].as_str().unwrap()).unwrap());
    public.extend(B64URL.decode(jwk["y"].as_str().unwrap()).unwrap());
    let hs_header = B64URL.encode(json!({"alg": "HS256", "kid": kid}).to_string());
    let hs_input = format!("{hs_header}.{}", parts[1]);
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&public).unwrap();
    hmac::Mac::update(&mut mac, hs_input.as_bytes());
    let hs256 = format!(
        "{hs_input}.{}",
        B64URL.encode(hmac::Mac::finalize(mac).into_bytes())
    );
    // Modified claims (a higher ceiling) under the original signature.
    let mut claims: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    claims["amount_ceiling_minor"] = json!(99_999_999);
    let modified = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(claims.to_string()),
        parts[2]
    );
    let unknown_kid = format!(
        "{}.{}.{}",
        B64URL.encode(json!({"alg": "ES256", "kid": "nope"}).to_string()),
        parts[1],
        parts[2]
    );
    for (what, forged) in [
        ("wrong key", wrong_key),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("modified claims", modified),
        ("unknown kid", unknown_kid),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let answer = sale_with(&app, &mut device, &forged).await;
        assert_eq!(answer.1["code"], "token_invalid", "{what}: {}", answer.1);
        assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    }

    // Another device presents it: refused, and a forgery threat against the presenter.
    let mut other = app.enrol(&admin).await;
    let answer = sale_with(&app, &mut other, &token).await;
    expect_code(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "token_wrong_device",
    );
    let forgery = threats_of_kind(&app, &admin, &other, "token_forgery").await;
    assert_eq!(forgery.len(), 1);
    assert_eq!(forgery[0]["evidence"]["reason"], "token_wrong_device");
    assert!(
        threats_of_kind(&app, &admin, &device, "token_forgery")
            .await
            .is_empty()
    );

    // Suspended device: its own valid token is refused.
    device_action(&app, &admin, &device, "suspend").await;
    let answer = sale_with(&app, &mut device, &token).await;
    expect_code(&answer, StatusCode::CONFLICT, "device_not_active");
    // Back to ACTIVE the way an officer does it: a fresh passing check, then resume.
    app.report_ok(&device.device, &clean_report()).await;
    device_action(&app, &admin, &device, "resume").await;
    // None of the refusals spent it.
    approved(&sale_with(&app, &mut device, &token).await);

    // Expired: a one-second token from an instance configured so, presented after it ran out.
    let short = app.spawn_sharing(&[("TOKEN_TTL_SECS", "1")]);
    let brief = device.token(&short).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let answer = sale_with(&app, &mut device, &brief).await;
    expect_code(&answer, StatusCode::UNPROCESSABLE_ENTITY, "token_expired");

    // Revoked device: a token issued before the revocation is refused with its own code.
    let last = device.token(&app).await;
    device_action(&app, &admin, &device, "revoke").await;
    let answer = sale_with(&app, &mut device, &last).await;
    expect_code(&answer, StatusCode::UNAUTHORIZED, "device_revoked");
}

async fn jwks_verifies_tokens_across_rotation(app: TestApp) {
    let (admin, mut device) = setup(&app).await;
    let before = device.token_body(&app).await;

    let jwks = |app: &TestApp| {
        let request = app.req(Method::GET, "/api/v1/.well-known/jwks.json").send();
        async move {
            let set: jsonwebtoken::jwk::JwkSet = request.await.unwrap().json().await.unwrap();
            set
        }
    };
    let verify = |set: &jsonwebtoken::jwk::JwkSet, token: &str| {
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = set
            .find(header.kid.as_deref().unwrap())
            .expect("kid published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .expect("verifies with the published key")
            .claims
    };
    let before_token = before["token"].as_str().unwrap().to_owned();
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 1);
    let claims = verify(&set, &before_token);
    assert_eq!(claims["jti"], before["token_id"]);

    // Rotation: security officers and admins only; audited.
    let operator = app.token_for_role(&admin, "operator").await;
    let rotate = |who: String| {
        app.req(Method::POST, "/api/v1/tokens/keys/rotate")
            .bearer_auth(who)
            .send()
    };
    assert_eq!(
        rotate(operator).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let officer = app.token_for_role(&admin, "security_officer").await;
    let res = rotate(officer).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotation: Value = res.json().await.unwrap();
    assert_eq!(rotation["retired"], 1);
    assert_ne!(rotation["kid"], before["kid"]);

    // Both keys published: the old one until its tokens expired.
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 2);
    verify(&set, &before_token);
    // New tokens are signed with the new key; the old token still pays.
    let after = device.token_body(&app).await;
    assert_eq!(after["kid"], rotation["kid"]);
    verify(&set, after["token"].as_str().unwrap());
    approved(&sale_with(&app, &mut device, &before_token).await);
    approved(&sale_with(&app, &mut device, after["token"].as_str().unwrap()).await);
    // A second instance started after the rotation signs with the new key too.
    let fresh = app.spawn_sharing(&[]);
    let elsewhere = device.token_body(&fresh).await;
    assert_eq!(elsewhere["kid"], rotation["kid"]);
    approved(&sale_with(&fresh, &mut device, elsewhere["token"].as_str().unwrap()).await);

    let audit: Value = app
        .req(
            Method::GET,
            "/api/v1/audit/records?action=token.signing_key_rotated",
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains("token.signing_key_rotated"),
        "rotation not audited: {audit}"
    );
    // The private keys are stored only wrapped.
    let pool = app.db().await;
    let wrapped: Vec<String> = sqlx::query_scalar("SELECT private_wrapped FROM token_signing_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(wrapped.len(), 2);
}

/// The signing key is created on first use; concurrent first uses on a fresh server create
/// exactly one, and the tokens issued right after share it and verify (each first load
/// used to create a key and cache its own, so a token signed under one met a cache holding
/// another: `token_invalid`).
async fn concurrent_first_tokens_share_one_signing_key(app: TestApp) {
    let jwks = futures_util::future::join_all((0..32).map(|_| async {
        let res = app
            .req(Method::GET, "/api/v1/.well-known/jwks.json")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()
    }))
    .await;
    let pool = app.db().await;
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_signing_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(keys, 1);
    assert!(jwks.iter().all(|set| set == &jwks[0]), "{jwks:?}");
    let (_admin, mut device) = setup(&app).await;
    let issued = futures_util::future::join_all((0..16).map(|_| device.token_body(&app))).await;
    assert!(
        issued
            .iter()
            .all(|body| body["kid"] == jwks[0]["keys"][0]["kid"])
    );
    for body in issued.iter().take(3) {
        approved(&sale_with(&app, &mut device, body["token"].as_str().unwrap()).await);
    }
}

crate::on_both_backends!(
    issuance_is_refused_per_rule,
    issued_claims_and_storage,
    consumed_once_then_reuse_is_a_threat,
    hundred_concurrent_sales_with_one_token_one_succeeds,
    forged_expired_and_foreign_tokens_are_refused,
    jwks_verifies_tokens_across_rotation,
    concurrent_first_tokens_share_one_signing_key,
);
