//! Payments end to end through the real endpoints, as a device sends them: devices are
//! enrolled through the API (`enrol`: approval, health report, remote key injection), tokens
//! come from `POST /api/v1/device/tokens`, and the sale bodies are built by `payment-crypto`
//! (the AES DUKPT originator of the injected key, PIN block format 4, card data encryption)
//! and the real kernel against `emv-cards` virtual cards, never by server code. The BDK and
//! the `issuer-sim` zone PIN key come from the key API; the built-in acquirer over the issuer
//! simulator answers; threats are read from `/api/v1/threats`. Each scenario runs on SQLite
//! and on PostgreSQL + Redis.

use emv_cards::Card;
use emv_kernel::Tag;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::TestApp;
use crate::enrol::{ActiveDevice, Sale, card_pan};

/// Every payment test server: a short processor timeout, so the issuer-timeout scenario
/// reverses quickly.
const ENV: &[(&str, &str)] = &[("PROCESSOR_TIMEOUT_MS", "300")];

/// The admin, the server's payment keys, and one enrolled `softpos` device.
async fn setup(app: &TestApp) -> (String, ActiveDevice) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let device = app.enrol(&admin).await;
    (admin, device)
}

async fn expect_code(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

/// The kinds of the device's threats, newest first.
async fn threat_kinds(app: &TestApp, admin: &str, device: &ActiveDevice) -> Vec<String> {
    app.threats_of(admin, &device.device)
        .await
        .iter()
        .map(|threat| threat["kind"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Scenarios.

async fn approved_declined_tampered_and_idempotent_retry(app: TestApp) {
    let (admin, mut terminal) = setup(&app).await;
    // Velocity limit 2 per minute: the third decided sale shows every decided sale (and
    // only those) reached the behaviour rules.
    app.change_policy(&admin, |policy| {
        policy["threat_rules"]["velocity"]["max_transactions"] = json!(2);
    })
    .await;

    let token = terminal.token(&app).await;
    let body = terminal.sale(&token, &Sale::new("mc-cda", 2_000));
    let key = Uuid::new_v4().to_string();
    let (status, approved) = terminal.submit(&app, &body, &key).await;
    assert_eq!(status, StatusCode::CREATED, "{approved}");
    assert_eq!(approved["state"], "APPROVED", "{approved}");
    assert_eq!(approved["response_code"], "00");
    assert_eq!(approved["scheme"], "mastercard");
    assert!(approved["arpc"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(approved["authorisation_code"].is_string());
    let pan = card_pan("mc-cda");
    assert_eq!(
        approved["pan_masked"].as_str().unwrap(),
        format!(
            "{}{}{}",
            &pan[..6],
            "*".repeat(pan.len() - 10),
            &pan[pan.len() - 4..]
        )
    );
    assert!(!approved.to_string().contains(pan));

    // Same key, same body: the first answer, marked as a replay; nothing new recorded.
    let bytes = serde_json::to_vec(&body).unwrap();
    let res = terminal
        .signed_post(&app, "/api/v1/device/transactions", &bytes, Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(res.json::<Value>().await.unwrap(), approved);
    // Same key, another body.
    let mut other = body.clone();
    other["amount_minor"] = json!(2_001);
    let (status, error) = terminal.submit(&app, &other, &key).await;
    expect_code(
        status,
        &error,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    )
    .await;

    // Insufficient funds (amount ending in 51), and a tampered ARQC.
    let (status, declined) = terminal.pay(&app, &Sale::new("mc-cda", 2_051)).await;
    assert_eq!(status, StatusCode::CREATED, "{declined}");
    assert_eq!(declined["state"], "DECLINED");
    assert_eq!(declined["response_code"], "51");
    assert_eq!(declined["decline_reason"], "insufficient_funds");
    let mut tampered = Sale::new("visa-fdda", 2_500);
    tampered.tamper_arqc = true;
    let (status, declined) = terminal.pay(&app, &tampered).await;
    assert_eq!(status, StatusCode::CREATED, "{declined}");
    assert_eq!(declined["state"], "DECLINED", "{declined}");
    assert_eq!(declined["decline_reason"], "arqc_invalid");
    let threats = app.threats_of(&admin, &terminal.device).await;
    assert_eq!(threats.len(), 1, "{threats:?}");
    assert_eq!(threats[0]["kind"], "velocity");
    assert_eq!(threats[0]["evidence"]["transactions"], 3);

    // Records: filters, detail, statistics and the CSV export agree with what happened.
    let list: Value = app
        .req(Method::GET, "/api/v1/transactions?state=DECLINED")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["transactions"].as_array().unwrap().len(), 2, "{list}");
    let last4 = &pan[pan.len() - 4..];
    let list: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/transactions?last4={last4}&min_amount=2000&max_amount=2000"),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["transactions"][0]["id"], approved["id"], "{list}");
    let found: Value = app
        .req(Method::POST, "/api/v1/transactions/search")
        .bearer_auth(&admin)
        .json(&json!({ "pan": pan }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        found["transactions"].as_array().unwrap().len(),
        2,
        "{found}"
    );
    let detail: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/transactions/{}", approved["id"].as_str().unwrap()),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["location"]["latitude"], 52.52);
    // The sale answered from memory exactly what its row says.
    for (field, value) in approved.as_object().unwrap() {
        assert_eq!(&detail[field], value, "{field}");
    }
    let now = chrono::Utc::now();
    let stats: Value = app
        .req(Method::GET, "/api/v1/transactions/stats")
        .query(&[
            ("from", (now - chrono::Duration::hours(1)).to_rfc3339()),
            ("to", (now + chrono::Duration::hours(1)).to_rfc3339()),
            ("group_by", "scheme".to_owned()),
        ])
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total_count"], 3, "{stats}");
    assert_eq!(stats["total_approved"], 1, "{stats}");
    let mastercard = stats["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == "mastercard")
        .unwrap();
    assert_eq!(mastercard["count"], 2);
    assert_eq!(mastercard["volume_minor"], 4_051);
    assert_eq!(mastercard["approval_rate"], 0.5);
    let res = app
        .req(Method::GET, "/api/v1/transactions/export")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.starts_with("id,created_at,"));
    assert!(!csv.contains(pan));
}

async fn online_pin_approved_and_wrong_pin_declined(app: TestApp) {
    let (_admin, mut terminal) = setup(&app).await;
    let right = Card::profile("visa-online-pin").unwrap().test_pin();
    let wrong = if right == "9999" { "1111" } else { "9999" };
    let mut sale = Sale::new("visa-online-pin", 4_000);
    sale.pin = Some(right.to_owned());
    let (status, approved) = terminal.pay(&app, &sale).await;
    assert_eq!(status, StatusCode::CREATED, "{approved}");
    assert_eq!(approved["state"], "APPROVED", "{approved}");
    assert_eq!(approved["online_pin"], true);
    sale.pin = Some(wrong.to_owned());
    let (status, declined) = terminal.pay(&app, &sale).await;
    assert_eq!(status, StatusCode::CREATED, "{declined}");
    assert_eq!(declined["state"], "DECLINED");
    assert_eq!(declined["response_code"], "55");
}

async fn ksn_replay_and_token_reuse_are_refused(app: TestApp) {
    let (admin, mut terminal) = setup(&app).await;
    // Every token up front: the KSN threats below block new issuance (high severity).
    let first_token = terminal.token(&app).await;
    let second_token = terminal.token(&app).await;
    let replay_token = terminal.token(&app).await;
    let first = terminal.sale(&first_token, &Sale::new("mc-cda", 2_000));
    let second = terminal.sale(&second_token, &Sale::new("mc-cda", 2_000));
    let (status, body) = terminal.submit(&app, &second, "k-second").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Replaying the second KSN with a fresh token: refused, threat recorded, nothing paid.
    let mut replay = second.clone();
    replay["token"] = json!(replay_token);
    let (status, body) = terminal.submit(&app, &replay, "k-replay").await;
    expect_code(status, &body, StatusCode::CONFLICT, "ksn_replay").await;
    // The first KSN is lower than the second: rollback.
    let (status, body) = terminal.submit(&app, &first, "k-first").await;
    expect_code(status, &body, StatusCode::CONFLICT, "ksn_rollback").await;
    assert_eq!(
        threat_kinds(&app, &admin, &terminal).await,
        ["ksn_rollback", "ksn_replay"]
    );
    let threats = app.threats_of(&admin, &terminal.device).await;
    assert_eq!(threats[1]["evidence"]["ksn"], second["ksn"]);
    assert_eq!(threats[0]["evidence"]["ksn"], first["ksn"]);
    // They block new tokens until an officer looks at them.
    crate::expect_error(
        terminal.request_token(&app).await,
        StatusCode::CONFLICT,
        "blocking_threat",
    )
    .await;

    // The first token was spent by the rollback attempt: using it again is token reuse.
    let third = terminal.sale(&first_token, &Sale::new("mc-cda", 2_000));
    let (status, body) = terminal.submit(&app, &third, "k-third").await;
    expect_code(status, &body, StatusCode::CONFLICT, "token_reused").await;
    assert_eq!(
        threat_kinds(&app, &admin, &terminal).await,
        ["token_reuse", "ksn_rollback", "ksn_replay"]
    );
    let list: Value = app
        .req(Method::GET, "/api/v1/transactions")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["transactions"].as_array().unwrap().len(), 1, "{list}");
}

async fn refunds_never_exceed_captured(app: TestApp) {
    let (admin, mut terminal) = setup(&app).await;
    let (_, sale) = terminal.pay(&app, &Sale::new("mc-cda", 2_000)).await;
    assert_eq!(sale["state"], "APPROVED", "{sale}");
    let id = sale["id"].as_str().unwrap();
    let refund = |amount: u64, key: &'static str| {
        app.req(Method::POST, &format!("/api/v1/transactions/{id}/refunds"))
            .bearer_auth(&admin)
            .header("idempotency-key", key)
            .json(&json!({ "amount_minor": amount, "reason": "customer return" }))
            .send()
    };
    let res = refund(2_001, "r1").await.unwrap();
    let status = res.status();
    expect_code(
        status,
        &res.json().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_captured",
    )
    .await;
    let res = refund(1_500, "r2").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let partly: Value = res.json().await.unwrap();
    assert_eq!(partly["state"], "APPROVED", "{partly}");
    assert_eq!(partly["refunded_minor"], 1_500);
    // Retried with the same key: replayed, not refunded twice.
    let res = refund(1_500, "r2").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["refunded_minor"], 1_500);
    let res = refund(501, "r3").await.unwrap();
    let status = res.status();
    expect_code(
        status,
        &res.json().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_captured",
    )
    .await;
    let res = refund(500, "r4").await.unwrap();
    let full: Value = res.json().await.unwrap();
    assert_eq!(full["state"], "REFUNDED", "{full}");
    assert_eq!(full["events"].as_array().unwrap().len(), 2);
    let res = app
        .req(Method::POST, &format!("/api/v1/transactions/{id}/void"))
        .bearer_auth(&admin)
        .header("idempotency-key", "v1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = res.status();
    expect_code(
        status,
        &res.json().await.unwrap(),
        StatusCode::CONFLICT,
        "transaction_not_cancellable",
    )
    .await;
    // Without credentials: refused.
    let res = app
        .req(Method::POST, &format!("/api/v1/transactions/{id}/refunds"))
        .header("idempotency-key", "r5")
        .json(&json!({ "amount_minor": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

async fn processor_timeout_is_reversed(app: TestApp) {
    let (admin, mut terminal) = setup(&app).await;
    // Amounts ending in 91: the simulated issuer never answers.
    let (status, failed) = terminal.pay(&app, &Sale::new("mc-cda", 2_091)).await;
    assert_eq!(status, StatusCode::CREATED, "{failed}");
    assert_eq!(failed["state"], "FAILED", "{failed}");
    assert_eq!(failed["decline_reason"], "processor_timeout");
    assert_eq!(failed["reversal_reason"], "processor_timeout");
    assert!(failed["reversed_at"].is_string(), "{failed}");
    let detail: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/transactions/{}", failed["id"].as_str().unwrap()),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = detail["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{detail}");
    assert_eq!(events[0]["kind"], "reversal");
    assert_eq!(events[0]["actor"], "system:payments");
    assert_eq!(events[0]["response_code"], "00");
}

async fn pinpad_operations_are_logged_and_counted(app: TestApp) {
    let (admin, softpos) = setup(&app).await;
    let pinpad = app.enrol_as(&admin, "pinpad").await;
    let report =
        json!({ "ksn": "FFFF9876543210E00001", "result": "accepted", "reference": "POS-77" });
    let bytes = serde_json::to_vec(&report).unwrap();
    for _ in 0..2 {
        let res = app
            .signed(
                &pinpad.device,
                Method::POST,
                "/api/v1/device/pin-operations",
                &bytes,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = app
        .signed(
            &softpos.device,
            Method::POST,
            "/api/v1/device/pin-operations",
            &bytes,
        )
        .send()
        .await
        .unwrap();
    let status = res.status();
    expect_code(
        status,
        &res.json().await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "device_mode_mismatch",
    )
    .await;
    let page: Value = app
        .req(
            Method::GET,
            &format!("/api/v1/pin-operations?device_id={}", pinpad.device.id),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 2, "{page}");
    assert_eq!(page["operations"][0]["ksn"], "FFFF9876543210E00001");
}

async fn bad_sales_change_nothing(app: TestApp) {
    let (admin, mut terminal) = setup(&app).await;
    let token = terminal.token(&app).await;
    let body = terminal.sale(&token, &Sale::new("mc-cda", 2_000));
    let bytes = serde_json::to_vec(&body).unwrap();
    // No Idempotency-Key.
    let res = terminal
        .signed_post(&app, "/api/v1/device/transactions", &bytes, None)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut bad = body.clone();
    bad["ksn"] = json!("zz");
    let (status, error) = terminal.submit(&app, &bad, "b1").await;
    expect_code(
        status,
        &error,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // Card data that does not decrypt under the KSN's key.
    let mut garbled = body.clone();
    garbled["card_data"] = json!("00".repeat(32));
    let (status, error) = terminal.submit(&app, &garbled, "b2").await;
    expect_code(
        status,
        &error,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_data_undecryptable",
    )
    .await;
    // A PAN in clear inside the EMV data.
    let token = terminal.token(&app).await;
    let mut leaky = terminal.sale(&token, &Sale::new("mc-cda", 2_000));
    let mut emv = hex::decode(leaky["emv_data"].as_str().unwrap()).unwrap();
    emv_kernel::tlv::encode(Tag::ApplicationPan, &[0x54, 0x13, 0x33], &mut emv);
    leaky["emv_data"] = json!(hex::encode(emv));
    let (status, error) = terminal.submit(&app, &leaky, "b3").await;
    expect_code(
        status,
        &error,
        StatusCode::UNPROCESSABLE_ENTITY,
        "emv_data_contains_cardholder_data",
    )
    .await;
    // Above the token's ceiling: the policy caps scores 70-89 at 10.00, and a report with
    // ADB and developer options on scores 80.
    app.change_policy(&admin, |policy| {
        policy["amount_ceilings"] = json!([
            { "min_score": 70, "ceiling_minor": 1_000 },
            { "min_score": 90, "ceiling_minor": null },
        ]);
    })
    .await;
    let mut report = crate::health::clean_report();
    report["adb_enabled"] = json!(true);
    report["developer_options"] = json!(true);
    assert_eq!(app.report_ok(&terminal.device, &report).await["score"], 80);
    let capped_token = terminal.token_body(&app).await;
    assert_eq!(capped_token["claims"]["amount_ceiling_minor"], 1_000);
    let token = capped_token["token"].as_str().unwrap().to_owned();
    let capped = terminal.sale(&token, &Sale::new("mc-cda", 2_000));
    let (status, error) = terminal.submit(&app, &capped, "b4").await;
    expect_code(
        status,
        &error,
        StatusCode::UNPROCESSABLE_ENTITY,
        "amount_above_token_ceiling",
    )
    .await;
    let list: Value = app
        .req(Method::GET, "/api/v1/transactions")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["transactions"].as_array().unwrap().len(), 0, "{list}");
}

/// After approved, PIN, declined and timed-out sales, neither the database (the SQLite
/// files, and the transaction, idempotency, key and audit rows on either backend) nor the
/// server's log output (at DEBUG) holds a test PAN, the PIN or the device's initial key.
async fn nothing_secret_at_rest_or_in_logs(app: TestApp) {
    let admin = app.admin_token().await;
    let keys = app.payment_keys(&admin).await;
    assert_eq!(keys.zpk["processor"], crate::enrol::PROCESSOR);
    assert_eq!(keys.zpk["pin_format"], 4);
    let mut terminal = app.enrol(&admin).await;
    // The injected key descends from the BDK: its initial key id starts with the BDK's id.
    let ksn = terminal.originator.ksn().unwrap();
    assert_eq!(
        hex::encode_upper(&ksn.initial_key_id().as_bytes()[..4]),
        keys.bdk["dukpt_key_id"].as_str().unwrap()
    );
    let pin = Card::profile("visa-online-pin").unwrap().test_pin();
    let mut sale = Sale::new("visa-online-pin", 4_000);
    sale.pin = Some(pin.to_owned());
    let (_, approved) = terminal.pay(&app, &sale).await;
    assert_eq!(approved["state"], "APPROVED", "{approved}");
    let (_, declined) = terminal.pay(&app, &Sale::new("mc-cda", 2_051)).await;
    assert_eq!(declined["state"], "DECLINED", "{declined}");
    let (_, failed) = terminal.pay(&app, &Sale::new("mc-cda", 2_091)).await;
    assert_eq!(failed["state"], "FAILED", "{failed}");
    let res = app
        .req(
            Method::POST,
            &format!(
                "/api/v1/transactions/{}/refunds",
                approved["id"].as_str().unwrap()
            ),
        )
        .bearer_auth(&admin)
        .header("idempotency-key", "refund-1")
        .json(&json!({ "amount_minor": 1_000, "reason": "customer return" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let pans = [card_pan("visa-online-pin"), card_pan("mc-cda")];
    // The PIN as a JSON string or as the PIN field of a format 4 block would hold it.
    let pin_patterns = [format!("\"{pin}\""), format!("4{}{pin}", pin.len())];
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(path) = crate::keys::sqlite_path(&app) {
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            if let Ok(bytes) = std::fs::read(&file) {
                haystacks.push((file, bytes));
            }
        }
        assert!(!haystacks.is_empty(), "no SQLite file scanned");
    }
    let pool = app.db().await;
    for (what, sql) in [
        (
            "transactions",
            "SELECT id || pan_masked || pan_last4 || pan_fingerprint || ksn || \
             COALESCE(location, '') || COALESCE(arpc, '') FROM transactions",
        ),
        (
            "idempotency_keys",
            "SELECT idem_key || COALESCE(response, '') FROM idempotency_keys",
        ),
        (
            "audit_log",
            "SELECT action || COALESCE(reason, '') || COALESCE(target, '') FROM audit_log",
        ),
        (
            "threat_events",
            "SELECT COALESCE(evidence, '') FROM threat_events",
        ),
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        haystacks.push((what.to_owned(), rows.join("\n").into_bytes()));
    }
    pool.close().await;
    let logs = app.logs();
    assert!(logs.contains("\"level\""), "no JSON log output captured");
    haystacks.push(("log output".to_owned(), logs.into_bytes()));
    // The scan reads what it claims to: the masked PAN is in the rows and the files.
    let masked = approved["pan_masked"].as_str().unwrap().as_bytes();
    let contains =
        |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    assert!(
        haystacks.iter().any(|(_, h)| contains(h, masked)),
        "the scan does not see the stored transactions"
    );
    for (what, haystack) in &haystacks {
        for pan in pans {
            assert!(!contains(haystack, pan.as_bytes()), "PAN found in {what}");
        }
        for pattern in &pin_patterns {
            assert!(
                !contains(haystack, pattern.as_bytes()),
                "PIN found in {what}"
            );
        }
        for pattern in crate::keys::patterns(terminal.initial_key.expose_secret()) {
            assert!(!contains(haystack, &pattern), "initial key found in {what}");
        }
    }
    // The key tables: no clear initial key beside its KCV.
    let initial: &[u8] = terminal.initial_key.expose_secret();
    crate::keys::assert_nothing_secret_at_rest(
        &app,
        &crate::enrol::kcv_of(&terminal.initial_key),
        &[initial],
    )
    .await;
    crate::keys::assert_nothing_secret_at_rest(&app, keys.zpk["kcv"].as_str().unwrap(), &[initial])
        .await;
}

/// Runs each scenario on a fresh server per backend (with [`ENV`]).
macro_rules! payments_on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Backend::Sqlite, super::ENV).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Backend::Postgres, super::ENV).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

payments_on_both_backends!(
    approved_declined_tampered_and_idempotent_retry,
    online_pin_approved_and_wrong_pin_declined,
    ksn_replay_and_token_reuse_are_refused,
    refunds_never_exceed_captured,
    processor_timeout_is_reversed,
    pinpad_operations_are_logged_and_counted,
    bad_sales_change_nothing,
);

/// The secrets scan runs with the server logging at DEBUG.
mod secrets {
    const ENV: &[(&str, &str)] = &[("PROCESSOR_TIMEOUT_MS", "300"), ("RUST_LOG", "debug")];

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_secret_at_rest_or_in_logs_sqlite() {
        if let Some(app) = crate::TestApp::spawn(crate::Backend::Sqlite, ENV).await {
            super::nothing_secret_at_rest_or_in_logs(app).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_secret_at_rest_or_in_logs_postgres_redis() {
        if let Some(app) = crate::TestApp::spawn(crate::Backend::Postgres, ENV).await {
            super::nothing_secret_at_rest_or_in_logs(app).await;
        }
    }
}
