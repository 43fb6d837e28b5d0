//! Health reports: scoring over the stored policy, the first report not assumed clean,
//! nonce problems (missing, forged, expired, reused, other device) and replayed or unsigned
//! requests, policy versions and their validation, fleet statistics, and the recovery path
//! (suspended by a threat → fresh passing check → explicit resume).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestApp, TestDevice, expect_error};

/// A report with every check passing under the default policy.
pub(crate) fn clean_report() -> Value {
    let now = chrono::Utc::now();
    json!({
        "root_indicators": [],
        "hook_frameworks": [],
        "debugger_attached": false,
        "debuggable_build": false,
        "emulator": false,
        "app_version": "1.2.0",
        "app_signing_digest": "ab".repeat(32),
        "last_attestation_at": (now - chrono::Duration::days(1)).to_rfc3339(),
        "os_version": "14",
        "security_patch": (now - chrono::Duration::days(30)).format("%Y-%m-%d").to_string(),
        "developer_options": false,
        "adb_enabled": false,
        "overlay_detected": false,
        "screen_capture": false,
        "nfc_available": true,
        "device_time": now.to_rfc3339(),
    })
}

impl TestApp {
    /// A registered device moved to `ACTIVE`. Approval goes through the API; activation
    /// (after key injection, another module's job) is written to the database directly.
    pub async fn active_device(&self, admin: &str) -> TestDevice {
        let merchant = self.merchant(admin).await;
        let device = self.device(&merchant).await;
        let res = self
            .req(
                Method::POST,
                &format!("/api/v1/devices/{}/approve", device.id),
            )
            .bearer_auth(admin)
            .json(&json!({ "reason": "test" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let pool = self.db().await;
        sqlx::query("UPDATE devices SET state = 'ACTIVE' WHERE id = $1 AND state = 'APPROVED'")
            .bind(&device.id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        device
    }

    /// A fresh health nonce for `device`.
    pub async fn health_nonce(&self, device: &TestDevice) -> String {
        let res = self
            .signed(device, Method::POST, "/api/v1/device/health/nonce", b"")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["nonce"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Submits `report` with `nonce`, signed by `device`.
    pub async fn submit_report(
        &self,
        device: &TestDevice,
        nonce: &str,
        report: &Value,
    ) -> reqwest::Response {
        let body = serde_json::to_vec(&json!({ "nonce": nonce, "report": report })).unwrap();
        self.signed(device, Method::POST, "/api/v1/device/health", &body)
            .send()
            .await
            .unwrap()
    }

    /// Submits `report` with a fresh nonce and expects it stored.
    pub async fn report_ok(&self, device: &TestDevice, report: &Value) -> Value {
        let nonce = self.health_nonce(device).await;
        let res = self.submit_report(device, &nonce, report).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    /// Replaces the security policy: `change` edits the current one.
    pub async fn change_policy(&self, token: &str, change: impl FnOnce(&mut Value)) -> Value {
        let current: Value = self
            .req(Method::GET, "/api/v1/security-policy")
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut policy = current["policy"].clone();
        change(&mut policy);
        let res = self
            .req(Method::POST, "/api/v1/security-policy")
            .bearer_auth(token)
            .json(&json!({
                "based_on_version": current["version"],
                "policy": policy,
                "comment": "test change",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED, "policy update refused");
        res.json().await.unwrap()
    }

    /// The device's threat events, newest first.
    pub async fn threats_of(&self, token: &str, device: &TestDevice) -> Vec<Value> {
        let body: Value = self
            .req(
                Method::GET,
                &format!("/api/v1/threats?device_id={}&limit=200", device.id),
            )
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["threats"].as_array().unwrap().clone()
    }

    /// The device's state.
    pub async fn device_state(&self, token: &str, device: &TestDevice) -> String {
        let body: Value = self
            .req(Method::GET, &format!("/api/v1/devices/{}", device.id))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["state"].as_str().unwrap().to_owned()
    }
}

fn kinds(threats: &[Value]) -> Vec<String> {
    threats
        .iter()
        .map(|t| t["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn reports_are_scored_and_kept(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    // The very first report of a device is scored like any other: a rooted phone fails.
    let rooted = app.device(&merchant).await;
    let mut report = clean_report();
    report["root_indicators"] = json!(["su_binary", "magisk"]);
    let body = app.report_ok(&rooted, &report).await;
    assert_eq!(body["score"], 40);
    assert_eq!(body["passed"], false);
    assert_eq!(body["failed_checks"], json!(["root"]));
    assert_eq!(body["critical_failures"], json!(["root"]));
    assert_eq!(body["policy_version"], 1);
    assert_eq!(body["threats_raised"], 1);
    let threats = app.threats_of(&admin, &rooted).await;
    assert_eq!(kinds(&threats), ["rooted"]);
    assert_eq!(threats[0]["severity"], "critical");
    assert_eq!(
        threats[0]["evidence"]["detail"]["indicators"],
        json!(["su_binary", "magisk"])
    );
    // Suspend needs an ACTIVE device; this one is REGISTERED, so the event blocks instead.
    assert_eq!(threats[0]["action"], "suspend");
    assert_eq!(
        threats[0]["action_outcome"],
        "not_applicable: device REGISTERED"
    );

    let clean = app.device(&merchant).await;
    let body = app.report_ok(&clean, &clean_report()).await;
    assert_eq!(
        (body["score"].as_u64(), body["passed"].as_bool()),
        (Some(100), Some(true))
    );
    assert_eq!(body["failed_checks"], json!([]));
    assert!(body["amount_ceiling_minor"].is_null());
    let mut report = clean_report();
    report["adb_enabled"] = json!(true);
    report["developer_options"] = json!(true);
    let body = app.report_ok(&clean, &report).await;
    assert_eq!(body["score"], 80);
    assert_eq!(body["passed"], true);
    assert_eq!(body["failed_checks"], json!(["developer_options", "adb"]));
    assert_eq!(body["amount_ceiling_minor"], 5000);
    let mut report = clean_report();
    report["app_version"] = json!("0.9.1");
    report["app_signing_digest"] = json!("cd".repeat(32));
    let body = app.report_ok(&clean, &report).await;
    assert_eq!(
        body["failed_checks"],
        json!(["app_signature", "app_outdated"])
    );
    assert_eq!(body["score"], 10);

    // History, newest first.
    let history: Value = app
        .req(Method::GET, &format!("/api/v1/devices/{}/health", clean.id))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scores: Vec<u64> = history["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_u64().unwrap())
        .collect();
    assert_eq!(scores, [10, 80, 100]);
    let res = app
        .req(
            Method::GET,
            &format!("/api/v1/devices/{}/health", uuid::Uuid::new_v4()),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::NOT_FOUND, "not_found").await;

    // Fleet statistics come from these stored reports.
    let stats: Value = app
        .req(
            Method::GET,
            "/api/v1/health/stats?window_secs=3600&bucket_secs=600",
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["reports"], 4);
    assert_eq!(stats["passed"], 2);
    assert_eq!(stats["failed"], 2);
    assert_eq!(stats["devices_reporting"], 2);
    assert_eq!(stats["mean_score"], 57.5);
    let distribution: Vec<(String, i64)> = stats["score_distribution"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["count"].as_i64().unwrap() > 0)
        .map(|b| {
            (
                b["key"].as_str().unwrap().to_owned(),
                b["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        distribution,
        [
            ("10-19".to_owned(), 1),
            ("40-49".to_owned(), 1),
            ("80-89".to_owned(), 1),
            ("90-100".to_owned(), 1)
        ]
    );
    let failed: Vec<(String, i64)> = stats["failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["key"].as_str().unwrap().to_owned(),
                b["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(failed.contains(&("root".to_owned(), 1)));
    assert!(failed.contains(&("adb".to_owned(), 1)));
    let series_total: i64 = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reports"].as_i64().unwrap())
        .sum();
    assert_eq!(series_total, 4);
    let res = app
        .req(Method::GET, "/api/v1/health/stats?window_secs=5")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // Bad input changes nothing.
    let mut report = clean_report();
    report["os_version"] = json!("");
    let nonce = app.health_nonce(&clean).await;
    let res = app.submit_report(&clean, &nonce, &report).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app
        .signed(
            &clean,
            Method::POST,
            "/api/v1/device/health",
            b"{\"nonce\":1}",
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
    // The nonce was not spent by the refused body.
    let res = app.submit_report(&clean, &nonce, &clean_report()).await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

async fn bad_nonces_and_replays_are_refused_and_recorded(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let device = app.device(&merchant).await;
    let other = app.device(&merchant).await;

    // Missing / forged.
    let res = app.submit_report(&device, "", &clean_report()).await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_health_nonce",
    )
    .await;
    let forged = {
        let real = app.health_nonce(&device).await;
        let mut bytes = real.into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };
    let res = app.submit_report(&device, &forged, &clean_report()).await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_health_nonce",
    )
    .await;
    // Another device's nonce.
    let foreign = app.health_nonce(&other).await;
    let res = app.submit_report(&device, &foreign, &clean_report()).await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "health_nonce_other_device",
    )
    .await;
    // Reused.
    let nonce = app.health_nonce(&device).await;
    app.submit_report(&device, &nonce, &clean_report()).await;
    let res = app.submit_report(&device, &nonce, &clean_report()).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "health_nonce_reused").await;
    // A replayed signed request (same headers, same body).
    let nonce = app.health_nonce(&device).await;
    let body = serde_json::to_vec(&json!({ "nonce": nonce, "report": clean_report() })).unwrap();
    let timestamp = chrono::Utc::now().timestamp();
    let request_nonce = uuid::Uuid::new_v4().simple().to_string();
    let send = || {
        app.signed_with(
            &device,
            Method::POST,
            "/api/v1/device/health",
            &body,
            timestamp,
            &request_nonce,
        )
        .send()
    };
    assert_eq!(send().await.unwrap().status(), StatusCode::CREATED);
    expect_error(
        send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "replayed_nonce",
    )
    .await;
    // Unsigned and wrongly signed reports prove nothing about the device: refused, no event.
    let res = app
        .req(Method::POST, "/api/v1/device/health")
        .header("x-device-id", &device.id)
        .json(&json!({ "nonce": app.health_nonce(&device).await, "report": clean_report() }))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "missing_signature_headers").await;
    let impostor = TestDevice {
        id: device.id.clone(),
        key: crate::new_device_key(),
    };
    let res = app
        .submit_report(&impostor, &app.health_nonce(&device).await, &clean_report())
        .await;
    expect_error(res, StatusCode::UNAUTHORIZED, "bad_signature").await;

    // Expired: shorten the nonce lifetime to one second.
    app.change_policy(&admin, |policy| policy["nonce_ttl_secs"] = json!(1))
        .await;
    let nonce = app.health_nonce(&device).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let res = app.submit_report(&device, &nonce, &clean_report()).await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "health_nonce_expired",
    )
    .await;

    let threats = app.threats_of(&admin, &device).await;
    let mut reasons: Vec<String> = threats
        .iter()
        .map(|t| {
            assert_eq!(t["kind"], "invalid_health_report");
            t["evidence"]["reason"].as_str().unwrap().to_owned()
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "health_nonce_expired",
            "health_nonce_other_device",
            "health_nonce_reused",
            "invalid_health_nonce",
            "invalid_health_nonce",
            "replayed_request",
        ]
    );
    assert!(app.threats_of(&admin, &other).await.is_empty());
    // Only the two accepted reports were stored.
    let history: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/devices/{}/health", device.id),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["reports"].as_array().unwrap().len(), 2);
}

async fn policy_versions_are_validated_kept_and_audited(app: TestApp) {
    let admin = app.admin_token().await;
    let officer = app.token_for_role(&admin, "security_officer").await;
    let current: Value = app
        .req(Method::GET, "/api/v1/security-policy")
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["version"], 1);
    assert_eq!(current["policy"]["pass_score"], 70);

    let post = |body: Value| {
        app.req(Method::POST, "/api/v1/security-policy")
            .bearer_auth(&officer)
            .json(&body)
            .send()
    };
    let mut bad = current["policy"].clone();
    bad["pass_score"] = json!(150);
    bad["checks"].as_object_mut().unwrap().remove("root");
    bad["min_app_version"] = json!("one");
    bad["responses"] = json!([]);
    let res = post(json!({ "based_on_version": 1, "policy": bad }))
        .await
        .unwrap();
    let body = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let fields: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for field in ["pass_score", "checks.root", "min_app_version", "responses"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let mut unknown = current["policy"].clone();
    unknown["surprise"] = json!(true);
    let res = post(json!({ "based_on_version": 1, "policy": unknown }))
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "malformed_body").await;
    let res = post(json!({ "based_on_version": 7, "policy": current["policy"] }))
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT, "policy_version_conflict").await;

    // A heavier ADB weight: the same report now fails.
    let merchant = app.merchant(&admin).await;
    let device = app.device(&merchant).await;
    let mut report = clean_report();
    report["adb_enabled"] = json!(true);
    assert_eq!(app.report_ok(&device, &report).await["score"], 85);
    let updated = app
        .change_policy(&officer, |policy| {
            policy["checks"]["adb"]["weight"] = json!(50);
        })
        .await;
    assert_eq!(updated["version"], 2);
    assert!(updated["created_by"].as_str().unwrap().starts_with("user:"));
    let body = app.report_ok(&device, &report).await;
    assert_eq!(
        (body["score"].as_u64(), body["passed"].as_bool()),
        (Some(50), Some(false))
    );
    assert_eq!(body["policy_version"], 2);
    // Concurrent edits of one version: the second is a conflict.
    let res = post(json!({ "based_on_version": 1, "policy": current["policy"] }))
        .await
        .unwrap();
    expect_error(res, StatusCode::CONFLICT, "policy_version_conflict").await;

    let versions: Value = app
        .req(Method::GET, "/api/v1/security-policy/versions")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let numbers: Vec<i64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    assert_eq!(
        versions["versions"][1]["policy"]["checks"]["adb"]["weight"],
        15
    );
    let audit: Value = app
        .req(Method::GET, "/api/v1/audit/records?limit=500")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(text.contains("security_policy.updated"), "{text}");
}

async fn suspended_device_recovers_only_after_a_fresh_passing_check(app: TestApp) {
    let admin = app.admin_token().await;
    let officer = app.token_for_role(&admin, "security_officer").await;
    let device = app.active_device(&admin).await;
    // A passing check before anything happens.
    app.report_ok(&device, &clean_report()).await;
    // Frida is a critical threat: the default response suspends.
    let mut report = clean_report();
    report["hook_frameworks"] = json!(["frida"]);
    let body = app.report_ok(&device, &report).await;
    assert_eq!(body["passed"], false);
    assert_eq!(app.device_state(&admin, &device).await, "SUSPENDED");
    let threats = app.threats_of(&admin, &device).await;
    assert_eq!(kinds(&threats), ["hook_framework"]);
    assert_eq!(threats[0]["action_outcome"], "suspended");
    let threat_id = threats[0]["id"].as_str().unwrap().to_owned();
    // The suspension is in the device history as the threat response, with the event id.
    let detail: Value = app
        .req(Method::GET, &format!("/api/v1/devices/{}", device.id))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = detail["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["actor"], "system:threat_response");
    assert!(last["reason"].as_str().unwrap().contains(&threat_id));

    let resume = || {
        app.req(
            Method::POST,
            &format!("/api/v1/devices/{}/resume", device.id),
        )
        .bearer_auth(&officer)
        .json(&json!({ "reason": "checked" }))
        .send()
    };
    // The passing check from before the suspension does not count.
    expect_error(
        resume().await.unwrap(),
        StatusCode::CONFLICT,
        "resume_requires_health_check",
    )
    .await;
    // Neither does a failing one.
    app.report_ok(&device, &report).await;
    expect_error(
        resume().await.unwrap(),
        StatusCode::CONFLICT,
        "resume_requires_health_check",
    )
    .await;
    assert_eq!(app.device_state(&admin, &device).await, "SUSPENDED");
    // A fresh passing check, then an explicit resume.
    app.report_ok(&device, &clean_report()).await;
    assert_eq!(app.device_state(&admin, &device).await, "SUSPENDED");
    let res = resume().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.device_state(&admin, &device).await, "ACTIVE");

    // A stale passing check (max report age 1 s) does not count either.
    app.change_policy(&admin, |policy| policy["max_report_age_secs"] = json!(1))
        .await;
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/devices/{}/suspend", device.id),
        )
        .bearer_auth(&officer)
        .json(&json!({ "reason": "manual" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.report_ok(&device, &clean_report()).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let body = expect_error(
        resume().await.unwrap(),
        StatusCode::CONFLICT,
        "resume_requires_health_check",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("older"));
}

crate::on_both_backends!(
    reports_are_scored_and_kept,
    bad_nonces_and_replays_are_refused_and_recorded,
    policy_versions_are_validated_kept_and_audited,
    suspended_device_recovers_only_after_a_fresh_passing_check,
);
