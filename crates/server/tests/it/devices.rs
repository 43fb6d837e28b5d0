//! Devices: registration with software attestation, identity by key, the lifecycle (every
//! state × action pair), signed device requests (stale, replayed, tampered), list filters.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Backend, TestApp, TestDevice, expect_error, facts, new_device_key};

async fn registration_and_identity(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let key = new_device_key();
    let challenge = app.challenge().await;
    let body = app.registration(
        &challenge,
        &key,
        &merchant,
        facts("Pixel 9", Some("356938035643809")),
    );
    let res = app.register(&body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let device: Value = res.json().await.unwrap();
    assert_eq!(device["state"], "REGISTERED");
    assert_eq!(device["attestation_format"], "software");
    assert!(!device["attestation_notes"].as_array().unwrap().is_empty());
    let id = device["id"].as_str().unwrap().to_owned();

    // The challenge is single use.
    let other_key = new_device_key();
    let res = app
        .register(&app.registration(&challenge, &other_key, &merchant, facts("Pixel 9", None)))
        .await;
    expect_error(res, StatusCode::CONFLICT, "challenge_already_used").await;

    // One key, one device: registering the same key again is refused.
    let res = app
        .register(&app.registration(
            &app.challenge().await,
            &key,
            &merchant,
            facts("Pixel 9", None),
        ))
        .await;
    expect_error(res, StatusCode::CONFLICT, "device_already_registered").await;

    // A known IMEI with a new key is a new device, never the old one's id.
    let res = app
        .register(&app.registration(
            &app.challenge().await,
            &other_key,
            &merchant,
            facts("Pixel 9", Some("356938035643809")),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let second: Value = res.json().await.unwrap();
    assert_ne!(second["id"], id.as_str());

    // Forged or foreign evidence.
    let res = app
        .register(&app.registration(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &new_device_key(),
            &merchant,
            facts("X", None),
        ))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_challenge").await;
    let mut body = app.registration(
        &app.challenge().await,
        &new_device_key(),
        &merchant,
        facts("X", None),
    );
    body["attestation"]["signature"] = app.registration(
        &app.challenge().await,
        &new_device_key(),
        &merchant,
        facts("X", None),
    )["attestation"]["signature"]
        .clone();
    expect_error(
        app.register(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_invalid",
    )
    .await;
    let mut body = app.registration(
        &app.challenge().await,
        &new_device_key(),
        &merchant,
        facts("X", None),
    );
    body["attestation"]["format"] = json!("android_key");
    expect_error(
        app.register(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_evidence_malformed",
    )
    .await;
    let mut body = app.registration(
        &app.challenge().await,
        &new_device_key(),
        &merchant,
        facts("X", None),
    );
    body["public_key"] = json!("BAAA");
    expect_error(
        app.register(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let body = app.registration(
        &app.challenge().await,
        &new_device_key(),
        &uuid::Uuid::new_v4().to_string(),
        facts("X", None),
    );
    expect_error(
        app.register(&body).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let mut bad_facts = facts("", None);
    bad_facts["security_patch"] = json!("last tuesday");
    let body = app.registration(
        &app.challenge().await,
        &new_device_key(),
        &merchant,
        bad_facts,
    );
    let res = expect_error(
        app.register(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(res["details"].as_array().unwrap().len(), 2, "{res}");

    // Detail with history; the registration is audited.
    let detail: Value = app
        .req(Method::GET, &format!("/api/v1/devices/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["history"][0]["action"], "register");
    assert_eq!(detail["facts"]["imei"], "356938035643809");
    let page: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/audit/records?target=device:{id}"),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["records"][0]["action"], "device.registered");
}

const STATES: &[&str] = &["REGISTERED", "APPROVED", "ACTIVE", "SUSPENDED", "REVOKED"];
const ACTIONS: &[&str] = &["approve", "reject", "suspend", "resume", "revoke"];

fn expected(state: &str, action: &str) -> Option<&'static str> {
    match (state, action) {
        ("REGISTERED", "approve") => Some("APPROVED"),
        ("REGISTERED", "reject") => Some("REVOKED"),
        ("ACTIVE", "suspend") => Some("SUSPENDED"),
        ("SUSPENDED", "resume") => Some("ACTIVE"),
        ("REGISTERED" | "APPROVED" | "ACTIVE" | "SUSPENDED", "revoke") => Some("REVOKED"),
        _ => None,
    }
}

async fn act(app: &TestApp, token: &str, id: &str, action: &str) -> reqwest::Response {
    app.req(Method::POST, &format!("/api/v1/devices/{id}/{action}"))
        .bearer_auth(token)
        .json(&json!({ "reason": format!("test {action}") }))
        .send()
        .await
        .unwrap()
}

/// Brings a fresh device into `state`. ACTIVE comes with key injection (a later issue), so
/// the test sets it in the database, as that service will.
async fn device_in(app: &TestApp, admin: &str, merchant: &str, state: &str) -> TestDevice {
    let device = app.device(merchant).await;
    match state {
        "REGISTERED" => {}
        "APPROVED" => assert_eq!(
            act(app, admin, &device.id, "approve").await.status(),
            StatusCode::OK
        ),
        "REVOKED" => assert_eq!(
            act(app, admin, &device.id, "revoke").await.status(),
            StatusCode::OK
        ),
        "ACTIVE" | "SUSPENDED" => {
            assert_eq!(
                act(app, admin, &device.id, "approve").await.status(),
                StatusCode::OK
            );
            let pool = app.db().await;
            sqlx::query("UPDATE devices SET state = 'ACTIVE' WHERE id = $1 AND state = 'APPROVED'")
                .bind(&device.id)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            if state == "SUSPENDED" {
                assert_eq!(
                    act(app, admin, &device.id, "suspend").await.status(),
                    StatusCode::OK
                );
                // Resume needs a passing health check received after the suspension.
                app.report_ok(&device, &crate::health::clean_report()).await;
            }
        }
        other => panic!("unknown state {other}"),
    }
    device
}

async fn every_state_and_action(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let mut checked = 0;
    for state in STATES {
        for action in ACTIONS {
            let device = device_in(&app, &admin, &merchant, state).await;
            let res = act(&app, &admin, &device.id, action).await;
            match expected(state, action) {
                Some(next) => {
                    assert_eq!(res.status(), StatusCode::OK, "{state} {action}");
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["state"], next, "{state} {action}");
                }
                None => {
                    let body =
                        expect_error(res, StatusCode::CONFLICT, "invalid_device_transition").await;
                    assert!(
                        body["message"].as_str().unwrap().contains("not allowed"),
                        "{body}"
                    );
                    // Nothing changed.
                    let detail: Value = app
                        .req(Method::GET, &format!("/api/v1/devices/{}", device.id))
                        .bearer_auth(&admin)
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    assert_eq!(detail["state"], *state, "{state} {action}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 25);
    // Reasons are required and recorded.
    let device = app.device(&merchant).await;
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/devices/{}/approve", device.id),
        )
        .bearer_auth(&admin)
        .json(&json!({ "reason": "  " }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/devices/{}/approve", uuid::Uuid::new_v4()),
        )
        .bearer_auth(&admin)
        .json(&json!({ "reason": "x" }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;
}

async fn signed_requests(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let device = app.device(&merchant).await;
    let path = "/api/v1/device/self";
    let body = br#"{"hello":"world"}"#;

    let res = app
        .signed(&device, Method::POST, path, body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["device_id"], device.id.as_str());
    assert_eq!(me["state"], "REGISTERED");
    assert_eq!(me["body_bytes"], body.len());

    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    // Replay of an exact request.
    let nonce = "replay-nonce-0000001";
    let first = app
        .signed_with(&device, Method::POST, path, body, now, nonce)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let again = app
        .signed_with(&device, Method::POST, path, body, now, nonce)
        .send()
        .await
        .unwrap();
    expect_error(again, StatusCode::UNAUTHORIZED, "replayed_nonce").await;
    // Stale and future timestamps.
    for skew in [-301, 301, -100_000] {
        let res = app
            .signed_with(
                &device,
                Method::POST,
                path,
                body,
                now + skew,
                &uuid::Uuid::new_v4().simple().to_string(),
            )
            .send()
            .await
            .unwrap();
        expect_error(res, StatusCode::UNAUTHORIZED, "stale_timestamp").await;
    }
    // Tampered body: signed one body, sent another.
    let mut tampered = app
        .signed(&device, Method::POST, path, body)
        .build()
        .unwrap();
    *tampered.body_mut() = Some(br#"{"hello":"WORLD"}"#.to_vec().into());
    let res = app.client.execute(tampered).await.unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "bad_signature").await;
    // Signed by another key.
    let impostor = TestDevice {
        id: device.id.clone(),
        key: new_device_key(),
    };
    let res = app
        .signed(&impostor, Method::POST, path, body)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "bad_signature").await;
    // Missing headers, unknown device.
    let res = app
        .req(Method::POST, path)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "missing_signature_headers").await;
    let ghost = TestDevice {
        id: uuid::Uuid::new_v4().to_string(),
        key: new_device_key(),
    };
    let res = app
        .signed(&ghost, Method::POST, path, body)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unknown_device").await;
    // Garbage nonce.
    let res = app
        .signed_with(&device, Method::POST, path, body, now, "short")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "malformed_signature_headers").await;
    // Revoked devices are refused.
    assert_eq!(
        act(&app, &admin, &device.id, "revoke").await.status(),
        StatusCode::OK
    );
    let res = app
        .signed(&device, Method::POST, path, body)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "device_revoked").await;
}

async fn list_filters(app: TestApp) {
    let admin = app.admin_token().await;
    let auditor = app.token_for_role(&admin, "auditor").await;
    let merchant_a = app.merchant(&admin).await;
    let merchant_b = app.merchant(&admin).await;
    let a = app.device(&merchant_a).await;
    let _b = app.device(&merchant_b).await;
    let key = new_device_key();
    let res = app
        .register(&app.registration(
            &app.challenge().await,
            &key,
            &merchant_b,
            facts("Galaxy S24", None),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        act(&app, &admin, &a.id, "approve").await.status(),
        StatusCode::OK
    );

    let list = |query: String| {
        let app = &app;
        let auditor = auditor.clone();
        async move {
            let res = app
                .req(Method::GET, &format!("/api/v1/devices{query}"))
                .bearer_auth(&auditor)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{query}");
            res.json::<Value>().await.unwrap()["devices"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(list(String::new()).await, 3);
    assert_eq!(list("?state=APPROVED".to_owned()).await, 1);
    assert_eq!(list(format!("?merchant_id={merchant_b}")).await, 2);
    assert_eq!(list("?model=galaxy".to_owned()).await, 1);
    assert_eq!(list("?model=%27%20OR%20%271%27%3D%271".to_owned()).await, 0);
    assert_eq!(
        list("?registered_since=2999-01-01T00:00:00Z".to_owned()).await,
        0
    );
    assert_eq!(list("?limit=2".to_owned()).await, 2);
    // Statistics are computed from the data.
    let stats: Value = app
        .req(Method::GET, "/api/v1/devices/stats")
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total"], 3, "{stats}");
    let count = |list: &str, key: &str| {
        stats[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["key"] == key)
            .map_or(0, |entry| entry["count"].as_i64().unwrap())
    };
    assert_eq!(count("by_state", "REGISTERED"), 2);
    assert_eq!(count("by_state", "APPROVED"), 1);
    assert_eq!(count("by_model", "Pixel 9"), 2);
    assert_eq!(count("by_model", "Galaxy S24"), 1);
    assert_eq!(count("by_merchant", &merchant_b), 2);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(count("registrations_per_day", &today), 3, "{stats}");

    let res = app
        .req(Method::GET, "/api/v1/devices?state=HACKED")
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_parameter").await;
}

crate::on_both_backends!(
    registration_and_identity,
    every_state_and_action,
    signed_requests,
    list_filters
);

/// Software attestation is refused unless policy allows it.
#[tokio::test]
async fn software_attestation_is_off_unless_allowed() {
    let Some(app) =
        TestApp::spawn(Backend::Sqlite, &[("ALLOW_SOFTWARE_ATTESTATION", "false")]).await
    else {
        return;
    };
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let body = app.registration(
        &app.challenge().await,
        &new_device_key(),
        &merchant,
        facts("X", None),
    );
    expect_error(
        app.register(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "attestation_format_not_allowed",
    )
    .await;
}

/// A nonce used on one instance is refused by another (shared through Redis).
#[tokio::test]
async fn nonces_are_shared_across_instances() {
    let Some(first) = TestApp::spawn(Backend::Postgres, &[]).await else {
        return;
    };
    let second = first.spawn_sharing(&[]);
    let admin = first.admin_token().await;
    let merchant = first.merchant(&admin).await;
    let device = first.device(&merchant).await;
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let nonce = "cross-instance-nonce-1";
    let res = first
        .signed_with(
            &device,
            Method::POST,
            "/api/v1/device/self",
            b"{}",
            now,
            nonce,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = second
        .signed_with(
            &device,
            Method::POST,
            "/api/v1/device/self",
            b"{}",
            now,
            nonce,
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "replayed_nonce").await;
    // And a challenge issued by one instance is accepted by the other.
    let challenge = first.challenge().await;
    let res = second
        .register(&second.registration(&challenge, &new_device_key(), &merchant, facts("X", None)))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}
