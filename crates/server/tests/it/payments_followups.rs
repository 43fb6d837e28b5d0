//! Payment follow-ups over HTTP against the real binary, devices enrolled through the real
//! endpoints (`enrol`): the device's own history and refunds, refunds that never exceed the
//! captured amount under concurrency, follow-ups sent by another instance than the one that
//! made the sale (nothing kept in memory), and idempotency keys whose worker died.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::TestApp;
use crate::enrol::{ActiveDevice, Sale};

/// A device's signed refund of `transaction` (`POST .../refunds`); status, body and whether
/// the answer was a replay.
async fn device_refund(
    app: &TestApp,
    device: &ActiveDevice,
    transaction: &str,
    amount: u64,
    key: &str,
) -> (StatusCode, Value, bool) {
    let body =
        serde_json::to_vec(&json!({ "amount_minor": amount, "reason": "returned" })).unwrap();
    let res = device
        .signed_post(
            app,
            &format!("/api/v1/device/transactions/{transaction}/refunds"),
            &body,
            Some(key),
        )
        .send()
        .await
        .unwrap();
    answer(res).await
}

/// A staff refund (`admin` token) of `transaction`.
async fn staff_refund(
    app: &TestApp,
    admin: &str,
    transaction: &str,
    amount: u64,
    key: &str,
) -> (StatusCode, Value, bool) {
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/transactions/{transaction}/refunds"),
        )
        .bearer_auth(admin)
        .header("idempotency-key", key)
        .json(&json!({ "amount_minor": amount, "reason": "returned" }))
        .send()
        .await
        .unwrap();
    answer(res).await
}

async fn answer(res: reqwest::Response) -> (StatusCode, Value, bool) {
    let status = res.status();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    let body: Value = res.json().await.unwrap();
    (status, body, replayed)
}

/// The device's history page at `query` (`?limit=..&cursor=..`, signed with the query).
async fn history(app: &TestApp, device: &ActiveDevice, query: &str) -> (StatusCode, Value) {
    let res = app
        .signed(
            &device.device,
            Method::GET,
            &format!("/api/v1/device/transactions{query}"),
            b"",
        )
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn transaction(app: &TestApp, admin: &str, id: &str) -> Value {
    let res = app
        .req(Method::GET, &format!("/api/v1/transactions/{id}"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn approved_sale(app: &TestApp, device: &mut ActiveDevice, amount: u64) -> String {
    let (status, sale) = device.pay(app, &Sale::new("mc-cda", amount)).await;
    assert_eq!(status, StatusCode::CREATED, "{sale}");
    assert_eq!(sale["state"], "APPROVED", "{sale}");
    sale["id"].as_str().unwrap().to_owned()
}

/// Counts rows of `follow_up_attempts` of `transaction` in `state`.
async fn attempts(app: &TestApp, transaction: &str, state: &str) -> i64 {
    let pool = app.db().await;
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM follow_up_attempts WHERE transaction_id = $1 AND state = $2",
    )
    .bind(transaction)
    .bind(state)
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    n
}

/// History: only the device's own transactions, newest first, paged; refunds: own sales only,
/// never above the captured amount, idempotent, audited with the device as actor.
async fn device_history_and_refunds(app: TestApp) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let mut device = app.enrol(&admin).await;
    let mut other = app.enrol(&admin).await;
    let first = approved_sale(&app, &mut device, 2_000).await;
    let (status, declined) = device.pay(&app, &Sale::new("mc-cda", 2_051)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(declined["state"], "DECLINED", "{declined}");
    let third = approved_sale(&app, &mut device, 1_200).await;
    let foreign = approved_sale(&app, &mut other, 3_000).await;

    let (status, page) = history(&app, &device, "?limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [third.as_str(), declined["id"].as_str().unwrap()]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a full page has a cursor");
    let (status, page) = history(&app, &device, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["id"], first.as_str());
    assert!(page["next_cursor"].is_null(), "{page}");
    assert!(page["items"][0]["pan_masked"].is_string(), "{page}");
    assert!(
        !page.to_string().contains(crate::enrol::card_pan("mc-cda")),
        "masked PAN only: {page}"
    );
    let (status, page) = history(&app, &other, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], foreign.as_str());
    let (status, error) = history(&app, &device, "?limit=0").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["code"], "validation_failed");
    // The query string is signed: a cursor added after signing is a bad signature.
    let res = app
        .signed(
            &device.device,
            Method::GET,
            "/api/v1/device/transactions",
            b"",
        )
        .query(&[("limit", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Refunds of the device's own sale.
    let (status, refunded, replayed) = device_refund(&app, &device, &first, 500, "d-r1").await;
    assert_eq!(status, StatusCode::OK, "{refunded}");
    assert!(!replayed);
    assert_eq!(refunded["refunded_minor"], 500);
    assert_eq!(refunded["state"], "APPROVED");
    assert_eq!(refunded["events"][0]["kind"], "refund");
    assert_eq!(
        refunded["events"][0]["actor"],
        format!("device:{}", device.id())
    );
    let (status, again, replayed) = device_refund(&app, &device, &first, 500, "d-r1").await;
    assert_eq!((status, replayed), (StatusCode::OK, true));
    assert_eq!(again, refunded);
    let (status, error, _) = device_refund(&app, &device, &first, 501, "d-r1").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["code"], "idempotency_key_reused");
    let (status, error, _) = device_refund(&app, &device, &first, 1_501, "d-r2").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["code"], "refund_exceeds_captured");
    // Another device's sale, and a sale that does not exist: not there for this device.
    for id in [foreign.clone(), Uuid::new_v4().to_string()] {
        let (status, error, _) = device_refund(&app, &device, &id, 100, "d-r3").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
        assert_eq!(error["code"], "transaction_not_found");
    }
    assert_eq!(
        transaction(&app, &admin, &foreign).await["refunded_minor"],
        0
    );
    let (status, error, _) =
        device_refund(&app, &device, declined["id"].as_str().unwrap(), 100, "d-r4").await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["code"], "transaction_not_refundable");
    // Refunding the rest makes it REFUNDED; the staff view agrees.
    let (status, full, _) = device_refund(&app, &device, &first, 1_500, "d-r5").await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!(full["state"], "REFUNDED");
    assert_eq!(transaction(&app, &admin, &first).await, full);
    // Unsigned: refused.
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/device/transactions/{third}/refunds"),
        )
        .header("idempotency-key", "d-r6")
        .json(&json!({ "amount_minor": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Audited like a staff refund, with the device as actor.
    let audit = app
        .get_json(
            &admin,
            "/api/v1/audit/records?action=transaction.refund&limit=10",
        )
        .await;
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{audit}");
    for record in records {
        assert_eq!(record["actor"], format!("device:{}", device.id()));
        assert_eq!(record["target"], format!("transaction:{first}"));
    }

    // A suspended device neither lists nor refunds.
    let res = app
        .req(
            Method::POST,
            &format!("/api/v1/devices/{}/suspend", device.id()),
        )
        .bearer_auth(&admin)
        .json(&json!({ "reason": "lost" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, error) = history(&app, &device, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["code"], "device_not_active");
    let (status, error, _) = device_refund(&app, &device, &third, 100, "d-r7").await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["code"], "device_not_active");
    assert_eq!(transaction(&app, &admin, &third).await["refunded_minor"], 0);
}

/// Eight concurrent partial refunds of 600 (staff and device, distinct keys) against 2,000
/// captured: exactly three pass, the others are refused, and every accepted processor refund
/// is recorded.
async fn concurrent_refunds_never_exceed_captured(app: TestApp) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let mut device = app.enrol(&admin).await;
    let sale = approved_sale(&app, &mut device, 2_000).await;
    let requests = (0..8).map(|i| {
        let key = format!("c-{i}");
        let (app, admin, device, sale) = (&app, &admin, &device, &sale);
        async move {
            if i % 2 == 0 {
                staff_refund(app, admin, sale, 600, &key).await
            } else {
                device_refund(app, device, sale, 600, &key).await
            }
        }
    });
    let answers = join_all(requests).await;
    let passed = answers
        .iter()
        .filter(|(status, _, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(passed, 3, "{answers:?}");
    for (status, body, _) in &answers {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["code"], "refund_exceeds_captured", "{body}");
        }
    }
    let detail = transaction(&app, &admin, &sale).await;
    assert_eq!(detail["refunded_minor"], 1_800, "{detail}");
    assert_eq!(detail["reserved_minor"], 0, "{detail}");
    assert_eq!(detail["state"], "APPROVED");
    assert_eq!(detail["events"].as_array().unwrap().len(), 3, "{detail}");
    assert_eq!(attempts(&app, &sale, "SETTLED").await, 3);
    assert_eq!(attempts(&app, &sale, "RESERVED").await, 0);
    // What is left can still be refunded, exactly.
    let (status, body, _) = staff_refund(&app, &admin, &sale, 201, "c-left-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body, _) = staff_refund(&app, &admin, &sale, 200, "c-left-2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "REFUNDED");
}

/// The sale is made on instance A; refunds (staff and device), a void and a reversal are sent
/// by instance B, which never saw the card: follow-ups need only what is stored, and the
/// database holds no PAN.
async fn follow_ups_on_another_instance(app: TestApp) {
    let admin = app.admin_token().await;
    let keys = app.payment_keys(&admin).await;
    assert_eq!(keys.bdk["state"], "ACTIVE", "{:?}", keys.bdk);
    assert_eq!(keys.zpk["state"], "ACTIVE", "{:?}", keys.zpk);
    let mut device = app.enrol(&admin).await;
    let refunded = approved_sale(&app, &mut device, 2_500).await;
    let voided = approved_sale(&app, &mut device, 1_700).await;
    let reversed = approved_sale(&app, &mut device, 1_900).await;
    // Every test server has the same master keyring and PAN fingerprint key, as a deployment's
    // instances do.
    let other = app.spawn_sharing(&[]);

    let (status, body, _) = staff_refund(&other, &admin, &refunded, 1_000, "x-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["refunded_minor"], 1_000);
    assert_eq!(body["events"][0]["response_code"], "00");
    let (status, body, _) = device_refund(&other, &device, &refunded, 1_500, "x-2").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "REFUNDED");
    for (path, id, state) in [
        ("void", &voided, "VOIDED"),
        ("reversal", &reversed, "REVERSED"),
    ] {
        let res = other
            .req(Method::POST, &format!("/api/v1/transactions/{id}/{path}"))
            .bearer_auth(&admin)
            .header("idempotency-key", format!("x-{path}"))
            .json(&json!({ "reason": "cashier error" }))
            .send()
            .await
            .unwrap();
        let (status, body, _) = answer(res).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["state"], state, "{body}");
        assert_eq!(body["reserved_minor"], 0);
    }
    // Retried on the first instance with the same key: the first answer, not a second refund.
    let (status, body, replayed) = staff_refund(&app, &admin, &refunded, 1_000, "x-1").await;
    assert_eq!((status, replayed), (StatusCode::OK, true), "{body}");
    assert_eq!(
        transaction(&app, &admin, &refunded).await["refunded_minor"],
        2_500
    );
    // A sale approved before processor references were stored cannot be followed up.
    let legacy = approved_sale(&app, &mut device, 1_300).await;
    let pool = app.db().await;
    sqlx::query("UPDATE transactions SET processor_reference = NULL WHERE id = $1")
        .bind(&legacy)
        .execute(&pool)
        .await
        .unwrap();
    // Nothing at rest names a card: no column of any transaction holds a test PAN.
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT COALESCE(processor_reference, '') || '|' || pan_masked || '|' || ksn FROM transactions",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), 4);
    let pan = crate::enrol::card_pan("mc-cda");
    assert!(rows.iter().all(|row| !row.contains(pan)), "{rows:?}");
    let (status, body, _) = staff_refund(&other, &admin, &legacy, 100, "x-3").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "transaction_not_referenceable");
    // Neither instance logged the PAN or the device's injected key.
    let initial_key = hex::encode_upper(device.initial_key.expose_secret());
    for logs in [app.logs(), other.logs()] {
        assert!(!logs.contains(pan));
        assert!(!logs.to_uppercase().contains(&initial_key));
    }
}

/// A sale whose worker died (the request timed out while the issuer stayed silent) leaves
/// its idempotency key unanswered; after the lease, exactly one of several concurrent retries
/// takes it over and finishes the recorded sale (never paid twice); the others replay it.
async fn dead_workers_key_is_taken_over_once(app: TestApp) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let mut device = app.enrol(&admin).await;
    // A second instance whose requests time out after 2 s while its issuer waits 10 s: the
    // worker is dropped with the key claimed and the sale PENDING.
    let slow = app.spawn_sharing(&[
        ("REQUEST_TIMEOUT_SECS", "2"),
        ("PROCESSOR_TIMEOUT_MS", "10000"),
    ]);
    let token = device.token(&app).await;
    // Amounts ending in 91: the simulated issuer never answers.
    let body = device.sale(&token, &Sale::new("mc-cda", 2_091));
    let bytes = serde_json::to_vec(&body).unwrap();
    let res = device
        .signed_post(&slow, "/api/v1/device/transactions", &bytes, Some("dead-1"))
        .send()
        .await
        .unwrap();
    // The HTTP layer's timeout answers and drops the worker mid-sale.
    let first = res.status();
    assert_eq!(first, StatusCode::REQUEST_TIMEOUT);
    drop(slow);
    let pool = app.db().await;
    let states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM transactions WHERE device_id = $1")
            .bind(device.id())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        ["PENDING"],
        "the dead worker recorded the sale: {first}"
    );
    // Past the lease (request timeout + 2 s from the claim).
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let retries = (0..4).map(|_| {
        let (app, device, bytes) = (&app, &device, bytes.clone());
        async move {
            let res = device
                .signed_post(app, "/api/v1/device/transactions", &bytes, Some("dead-1"))
                .send()
                .await
                .unwrap();
            answer(res).await
        }
    });
    let answers = join_all(retries).await;
    let fresh = answers.iter().filter(|(_, _, replayed)| !replayed).count();
    assert_eq!(fresh, 1, "exactly one retry proceeds: {answers:?}");
    for (status, body, _) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        assert_eq!(body["state"], "FAILED", "{body}");
        assert_eq!(
            body["decline_reason"], "processor_outcome_unknown",
            "{body}"
        );
        assert_eq!(body["id"], answers[0].1["id"]);
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE device_id = $1")
        .bind(device.id())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(count, 1, "the retry never paid again");
    // Another body under the key is still refused.
    let mut changed = body.clone();
    changed["amount_minor"] = json!(2_092);
    let (status, error) = device.submit(&app, &changed, "dead-1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["code"], "idempotency_key_reused");
}

/// Integrations: an API key with `transactions:read` lists and reads but cannot refund; one
/// with `transactions:refund` refunds (audited as the key); keys of other scopes see nothing.
async fn api_key_scopes_for_transactions(app: TestApp) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let mut device = app.enrol(&admin).await;
    let sale = approved_sale(&app, &mut device, 2_000).await;
    let reader = app.api_key(&admin, &["transactions:read"]).await;
    let refunder = app.api_key(&admin, &["transactions:refund"]).await;
    let other = app.api_key(&admin, &["merchants:read"]).await;
    let get = |key: &str, path: &str| app.req(Method::GET, path).header("x-api-key", key).send();
    let refund = |key: &str, idem: &str| {
        app.req(
            Method::POST,
            &format!("/api/v1/transactions/{sale}/refunds"),
        )
        .header("x-api-key", key)
        .header("idempotency-key", idem)
        .json(&json!({ "amount_minor": 300, "reason": "integration" }))
        .send()
    };
    let res = get(&reader, "/api/v1/transactions").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["transactions"][0]["id"], sale.as_str());
    let res = get(&reader, &format!("/api/v1/transactions/{sale}"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        refund(&reader, "k-1").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&refunder, "/api/v1/transactions")
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&other, "/api/v1/transactions").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let (status, body, _) = answer(refund(&refunder, "k-2").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["refunded_minor"], 300);
    let actor = body["events"][0]["actor"].as_str().unwrap();
    assert!(actor.starts_with("api_key:"), "{actor}");
}

/// A refund whose worker died after reserving (the processor's answer was lost with it): the
/// reservation holds the amount against other refunds, and the client's retry with the same
/// key resends that same attempt and settles it, never a second refund.
async fn lost_refund_answer_is_resent_not_repeated(app: TestApp) {
    let admin = app.admin_token().await;
    app.payment_keys(&admin).await;
    let mut device = app.enrol(&admin).await;
    let sale = approved_sale(&app, &mut device, 2_000).await;
    // What the dead worker left: its attempt and the amount it reserved.
    let attempt = Uuid::now_v7().to_string();
    let pool = app.db().await;
    sqlx::query(
        "INSERT INTO follow_up_attempts (id, transaction_id, kind, idem_scope, idem_key, \
         amount_minor, state, created_at, updated_at) \
         VALUES ($1, $2, 'refund', $3, 'lost-1', 1500, 'RESERVED', 1, 1)",
    )
    .bind(&attempt)
    .bind(&sale)
    .bind(format!("refund:{sale}"))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE transactions SET reserved_minor = 1500 WHERE id = $1")
        .bind(&sale)
        .execute(&pool)
        .await
        .unwrap();
    // The held amount counts as spent for other refunds.
    let (status, body, _) = staff_refund(&app, &admin, &sale, 600, "other-1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "refund_exceeds_captured");
    let res = app
        .req(Method::POST, &format!("/api/v1/transactions/{sale}/void"))
        .bearer_auth(&admin)
        .header("idempotency-key", "void-1")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, body, _) = answer(res).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "transaction_not_cancellable");
    // The retry: the same attempt, sent and settled once.
    let (status, body, replayed) = staff_refund(&app, &admin, &sale, 1_500, "lost-1").await;
    assert_eq!((status, replayed), (StatusCode::OK, false), "{body}");
    assert_eq!(body["refunded_minor"], 1_500);
    assert_eq!(body["reserved_minor"], 0);
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
    let settled: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM follow_up_attempts WHERE transaction_id = $1 AND state = 'SETTLED'",
    )
    .bind(&sale)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(settled, [attempt]);
    let (status, body, replayed) = staff_refund(&app, &admin, &sale, 1_500, "lost-1").await;
    assert_eq!((status, replayed), (StatusCode::OK, true), "{body}");
    assert_eq!(
        transaction(&app, &admin, &sale).await["refunded_minor"],
        1_500
    );
}

crate::on_both_backends!(
    lost_refund_answer_is_resent_not_repeated,
    api_key_scopes_for_transactions,
    device_history_and_refunds,
    concurrent_refunds_never_exceed_captured,
    follow_ups_on_another_instance,
    dead_workers_key_is_taken_over_once,
);
