//! Threats: each response action's effect on the device (record, alert, block, suspend in
//! `health.rs`, revoke), `blocking_threat`, the incident workflow, statistics, the
//! missed-heartbeat sweep, and the behaviour rules (decline streak, velocity, location
//! jump, repeated attestation failures), each triggered and not triggered.
//!
//! Behaviour rules run in `ThreatService::observe_transaction`, which payments call. The
//! tests build that service in-process on the test server's own database and stores (a
//! second instance, as in a scale-out deployment) and read the results over HTTP.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::domain::{DeviceId, now_millis};
use server::service::RequestContext;
use server::service::ports::{
    GeoPoint, Severity, ThreatKind, ThreatReporter, ThreatSignal, TransactionObservation,
};
use server::service::threats::ThreatService;

use crate::health::clean_report;
use crate::{TestApp, TestDevice, expect_error};

/// A `ThreatService` on the same database and stores as `app`.
async fn threat_service(app: &TestApp) -> Arc<ThreatService> {
    threat_service_with_bus(app).await.0
}

/// A `ThreatService` on the same database and stores as `app`, and its event bus.
async fn threat_service_with_bus(
    app: &TestApp,
) -> (Arc<ThreatService>, Arc<dyn server::infra::stores::EventBus>) {
    use server::repository::audit::SqlAuditRepository;
    use server::repository::devices::SqlDeviceRepository;
    use server::repository::health::SqlHealthRepository;
    use server::repository::merchants::SqlMerchantRepository;
    use server::repository::threats::SqlThreatRepository;
    use server::service::audit::AuditService;
    use server::service::devices::{DevicePolicy, DeviceService};
    use server::service::health::PolicyStore;

    let db = server::infra::db::connect(&app.storage.database_url, 2)
        .await
        .expect("database");
    let stores = match &app.storage.redis {
        Some((url, prefix)) => server::infra::stores::Stores::redis(url, prefix)
            .await
            .expect("redis"),
        None => server::infra::stores::Stores::memory(),
    };
    let audit = Arc::new(AuditService::new(
        Arc::new(SqlAuditRepository::new(&db)),
        stores.events.clone(),
    ));
    let secret = server::infra::keys::parse_secret(&"7e".repeat(32)).unwrap();
    let devices = Arc::new(DeviceService::new(
        Arc::new(SqlDeviceRepository::new(&db)),
        Arc::new(SqlMerchantRepository::new(&db)),
        stores.once.clone(),
        stores.limiter.clone(),
        audit.clone(),
        &secret,
        DevicePolicy {
            allow_software_attestation: true,
        },
    ));
    devices.set_events(stores.events.clone());
    let policies = Arc::new(PolicyStore::new(
        Arc::new(SqlHealthRepository::new(&db)),
        audit.clone(),
    ));
    let service = Arc::new(ThreatService::new(
        Arc::new(SqlThreatRepository::new(&db)),
        policies,
        devices,
        audit,
        stores.events.clone(),
    ));
    (service, stores.events)
}

fn device_id(device: &TestDevice) -> DeviceId {
    device.id.parse().unwrap()
}

fn observation(
    device: &TestDevice,
    at: i64,
    approved: bool,
    location: Option<(f64, f64)>,
) -> TransactionObservation {
    TransactionObservation {
        device_id: device_id(device),
        transaction_id: uuid::Uuid::new_v4(),
        at,
        approved,
        amount_minor: 1250,
        currency: "EUR".to_owned(),
        location: location.map(|(latitude, longitude)| GeoPoint {
            latitude,
            longitude,
            accuracy_m: Some(20.0),
        }),
    }
}

fn find_kind<'a>(threats: &'a [Value], kind: &str) -> &'a Value {
    threats
        .iter()
        .find(|t| t["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {threats:?}"))
}

fn count_kind(threats: &[Value], kind: &str) -> usize {
    threats.iter().filter(|t| t["kind"] == kind).count()
}

async fn response_actions_and_incident_workflow(app: TestApp) {
    let admin = app.admin_token().await;
    let officer = app.token_for_role(&admin, "security_officer").await;
    let service = threat_service(&app).await;
    app.change_policy(&officer, |policy| {
        policy["responses"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "kind": "rooted", "severity": "critical", "action": "revoke" }));
    })
    .await;

    let device = app.active_device(&admin).await;
    assert_eq!(
        service.blocking_threat(device_id(&device)).await.unwrap(),
        None
    );
    // Clock skew (low) → record; ADB (medium) → alert: the device stays ACTIVE, unblocked.
    let mut report = clean_report();
    report["device_time"] =
        json!((chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc3339());
    report["adb_enabled"] = json!(true);
    app.report_ok(&device, &report).await;
    let threats = app.threats_of(&admin, &device).await;
    let outcome = |kind: &str| {
        threats
            .iter()
            .find(|t| t["kind"] == kind)
            .map(|t| (t["action"].clone(), t["action_outcome"].clone()))
            .unwrap()
    };
    assert_eq!(outcome("clock_skew"), (json!("record"), json!("recorded")));
    assert_eq!(
        outcome("unsafe_device_settings"),
        (json!("alert"), json!("alerted"))
    );
    assert_eq!(app.device_state(&admin, &device).await, "ACTIVE");
    assert_eq!(
        service.blocking_threat(device_id(&device)).await.unwrap(),
        None
    );

    // Overlay (high) → block transactions: still ACTIVE, but blocked.
    let mut report = clean_report();
    report["overlay_detected"] = json!(true);
    app.report_ok(&device, &report).await;
    assert_eq!(app.device_state(&admin, &device).await, "ACTIVE");
    let threats = app.threats_of(&admin, &device).await;
    let overlay = threats[0].clone();
    assert_eq!(overlay["severity"], "high");
    assert_eq!(overlay["action"], "block_transactions");
    assert_eq!(overlay["action_outcome"], "transactions_blocked");
    let blocking = service
        .blocking_threat(device_id(&device))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        blocking.threat_id.to_string(),
        overlay["id"].as_str().unwrap()
    );
    assert_eq!(blocking.kind, ThreatKind::UnsafeDeviceSettings);

    // The incident workflow: acknowledge, then resolve; the block ends with it.
    let overlay_id = overlay["id"].as_str().unwrap();
    let step = |token: &str, id: &str, state: &str, note: &str| {
        app.req(Method::POST, &format!("/api/v1/threats/{id}/state"))
            .bearer_auth(token)
            .json(&json!({ "state": state, "note": note }))
            .send()
    };
    let res = step(&officer, overlay_id, "acknowledged", "looking at it")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        service
            .blocking_threat(device_id(&device))
            .await
            .unwrap()
            .is_some()
    );
    expect_error(
        step(&officer, overlay_id, "resolved", "  ").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    expect_error(
        step(&officer, overlay_id, "open", "reopen").await.unwrap(),
        StatusCode::CONFLICT,
        "invalid_threat_transition",
    )
    .await;
    let res = step(
        &admin,
        overlay_id,
        "resolved",
        "screen reader app, uninstalled",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let detail: Value = res.json().await.unwrap();
    assert_eq!(detail["state"], "resolved");
    let notes: Vec<(String, String)> = detail["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["to_state"].as_str().unwrap().to_owned(),
                n["note"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        notes,
        [
            ("acknowledged".to_owned(), "looking at it".to_owned()),
            (
                "resolved".to_owned(),
                "screen reader app, uninstalled".to_owned()
            )
        ]
    );
    assert!(
        detail["notes"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("user:")
    );
    expect_error(
        step(&officer, overlay_id, "false_positive", "again")
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "invalid_threat_transition",
    )
    .await;
    expect_error(
        step(&officer, &uuid::Uuid::new_v4().to_string(), "resolved", "x")
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        service.blocking_threat(device_id(&device)).await.unwrap(),
        None
    );

    // Rooted (critical) → revoke, per the kind-specific line: the device is gone for good.
    let rooted = app.active_device(&admin).await;
    let mut report = clean_report();
    report["root_indicators"] = json!(["magisk"]);
    app.report_ok(&rooted, &report).await;
    assert_eq!(app.device_state(&admin, &rooted).await, "REVOKED");
    let threats = app.threats_of(&admin, &rooted).await;
    assert_eq!(threats[0]["action_outcome"], "revoked");
    let res = app
        .signed(&rooted, Method::POST, "/api/v1/device/health/nonce", b"")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "device_revoked").await;

    // Every automatic action is audited with the event that caused it.
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
    for action in [
        "threat.recorded",
        "threat.response.alert",
        "threat.response.block_transactions",
        "threat.response.revoke",
        "threat.acknowledged",
        "threat.resolved",
    ] {
        assert!(text.contains(action), "{action} missing from the audit log");
    }
    assert!(text.contains(threats[0]["id"].as_str().unwrap()));

    // Statistics from the stored events.
    let stats: Value = app
        .req(Method::GET, "/api/v1/threats/stats?window_secs=3600")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["total"], 4);
    let get = |list: &str, key: &str| {
        stats[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .map_or(0, |c| c["count"].as_i64().unwrap())
    };
    assert_eq!(get("by_state", "resolved"), 1);
    assert_eq!(get("by_state", "open"), 3);
    assert_eq!(get("by_severity", "critical"), 1);
    assert_eq!(get("by_severity", "high"), 1);
    assert_eq!(get("by_kind", "unsafe_device_settings"), 2);
    assert_eq!(get("by_kind", "rooted"), 1);
}

async fn missed_heartbeats_are_detected(app: TestApp) {
    let admin = app.admin_token().await;
    let silent = app.active_device(&admin).await;
    let chatty = app.active_device(&admin).await;
    app.change_policy(&admin, |policy| {
        policy["heartbeat_interval_secs"] = json!(4);
        policy["threat_rules"]["missed_heartbeat"]["grace_secs"] = json!(0);
    })
    .await;
    let sweep = || async {
        let res = app
            .req(Method::POST, "/api/v1/health/heartbeat-sweep")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    };
    app.report_ok(&chatty, &clean_report()).await;
    sweep().await;
    assert_eq!(
        count_kind(&app.threats_of(&admin, &silent).await, "missed_heartbeat"),
        0
    );
    // The chatty device keeps reporting every ~2.3 s; the silent one never does.
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
        app.report_ok(&chatty, &clean_report()).await;
    }
    sweep().await;
    let threats = app.threats_of(&admin, &silent).await;
    // Once per silent period, whether the periodic sweep or this one found it first.
    assert_eq!(count_kind(&threats, "missed_heartbeat"), 1, "{threats:?}");
    assert!(threats[0]["evidence"]["last_report_at"].is_null());
    assert_eq!(
        count_kind(&app.threats_of(&admin, &chatty).await, "missed_heartbeat"),
        0
    );
    let stats: Value = app
        .req(Method::GET, "/api/v1/health/stats")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let overdue: Vec<&str> = stats["overdue_devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(overdue, [silent.id.as_str()]);
    assert_eq!(stats["overdue_after_secs"], 4);
}

async fn behaviour_rules(app: TestApp) {
    let admin = app.admin_token().await;
    let service = threat_service(&app).await;
    let ctx = RequestContext::default();
    app.change_policy(&admin, |policy| {
        policy["threat_rules"]["decline_streak"]["max_consecutive"] = json!(3);
        policy["threat_rules"]["velocity"]["max_transactions"] = json!(5);
        policy["threat_rules"]["velocity"]["window_secs"] = json!(60);
        policy["threat_rules"]["attestation_failures"]["max_failures"] = json!(3);
    })
    .await;
    let now = now_millis();

    // Decline streak: two declines, an approval, then three declines fire once.
    let decliner = app.active_device(&admin).await;
    for (offset, approved) in [(0, false), (1, false), (2, true), (3, false), (4, false)] {
        service
            .observe_transaction(
                observation(&decliner, now - 100_000 + offset * 1000, approved, None),
                &ctx,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        count_kind(&app.threats_of(&admin, &decliner).await, "decline_streak"),
        0
    );
    service
        .observe_transaction(observation(&decliner, now - 94_000, false, None), &ctx)
        .await
        .unwrap();
    service
        .observe_transaction(observation(&decliner, now - 93_000, false, None), &ctx)
        .await
        .unwrap();
    let threats = app.threats_of(&admin, &decliner).await;
    assert_eq!(count_kind(&threats, "decline_streak"), 1);
    let streak = find_kind(&threats, "decline_streak");
    assert_eq!(streak["evidence"]["consecutive_declines"], 3);
    assert_eq!(streak["severity"], "medium");

    // Velocity: five transactions within a minute are fine, the sixth fires, once.
    let busy = app.active_device(&admin).await;
    for n in 0..5 {
        service
            .observe_transaction(
                observation(&busy, now - 30_000 + n * 1000, true, None),
                &ctx,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        count_kind(&app.threats_of(&admin, &busy).await, "velocity"),
        0
    );
    // Spread over more than the window: no threat either.
    let steady = app.active_device(&admin).await;
    for n in 0..8 {
        service
            .observe_transaction(
                observation(&steady, now - 900_000 + n * 61_000, true, None),
                &ctx,
            )
            .await
            .unwrap();
    }
    assert_eq!(
        count_kind(&app.threats_of(&admin, &steady).await, "velocity"),
        0
    );
    for n in 5..8 {
        service
            .observe_transaction(
                observation(&busy, now - 30_000 + n * 1000, true, None),
                &ctx,
            )
            .await
            .unwrap();
    }
    let threats = app.threats_of(&admin, &busy).await;
    assert_eq!(count_kind(&threats, "velocity"), 1);
    assert_eq!(
        find_kind(&threats, "velocity")["evidence"]["transactions"],
        6
    );
    assert_eq!(
        find_kind(&threats, "velocity")["action"],
        "block_transactions"
    );
    assert!(
        service
            .blocking_threat(device_id(&busy))
            .await
            .unwrap()
            .is_some()
    );

    // Location: Paris → London in 10 minutes is impossible, in 2 hours it is not.
    let paris = (48.8566, 2.3522);
    let london = (51.5074, -0.1278);
    let flyer = app.active_device(&admin).await;
    service
        .observe_transaction(
            observation(&flyer, now - 3_000_000, true, Some(paris)),
            &ctx,
        )
        .await
        .unwrap();
    service
        .observe_transaction(
            observation(&flyer, now - 3_000_000 + 600_000, true, Some(london)),
            &ctx,
        )
        .await
        .unwrap();
    let threats = app.threats_of(&admin, &flyer).await;
    assert_eq!(count_kind(&threats, "location_jump"), 1);
    let evidence = &find_kind(&threats, "location_jump")["evidence"];
    assert!(
        (evidence["distance_km"].as_f64().unwrap() - 343.56).abs() < 0.02,
        "{evidence}"
    );
    assert_eq!(evidence["elapsed_secs"], 600.0);
    let traveller = app.active_device(&admin).await;
    service
        .observe_transaction(
            observation(&traveller, now - 8_000_000, true, Some(paris)),
            &ctx,
        )
        .await
        .unwrap();
    // A transaction without a location in between changes nothing.
    service
        .observe_transaction(observation(&traveller, now - 5_000_000, true, None), &ctx)
        .await
        .unwrap();
    service
        .observe_transaction(
            observation(&traveller, now - 800_000, true, Some(london)),
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(
        count_kind(&app.threats_of(&admin, &traveller).await, "location_jump"),
        0
    );

    // A transaction observed twice is evaluated once; bad observations are refused.
    let twice = observation(&decliner, now - 92_000, false, None);
    service
        .observe_transaction(twice.clone(), &ctx)
        .await
        .unwrap();
    service.observe_transaction(twice, &ctx).await.unwrap();
    let mut bad = observation(&traveller, now, true, Some((91.0, 0.0)));
    let error = service
        .observe_transaction(bad.clone(), &ctx)
        .await
        .unwrap_err();
    assert_eq!(error.code(), "validation_failed");
    bad.location = None;
    bad.currency = "euro".to_owned();
    assert_eq!(
        service
            .observe_transaction(bad, &ctx)
            .await
            .unwrap_err()
            .code(),
        "validation_failed"
    );

    // Attestation failures: low until the third within the window, then high (blocks).
    let attester = app.active_device(&admin).await;
    let signal = || ThreatSignal {
        device_id: device_id(&attester),
        kind: ThreatKind::AttestationFailure,
        severity: Severity::Low,
        evidence: json!({ "reason": "chain does not verify" }),
        observed_at: now_millis(),
    };
    service.report(signal(), &ctx).await.unwrap();
    service.report(signal(), &ctx).await.unwrap();
    assert!(
        service
            .blocking_threat(device_id(&attester))
            .await
            .unwrap()
            .is_none()
    );
    service.report(signal(), &ctx).await.unwrap();
    let threats = app.threats_of(&admin, &attester).await;
    let severities: Vec<&str> = threats
        .iter()
        .map(|t| t["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["high", "low", "low"]);
    assert_eq!(threats[0]["evidence"]["repeated"]["failures"], 3);
    assert!(
        service
            .blocking_threat(device_id(&attester))
            .await
            .unwrap()
            .is_some()
    );
}

async fn live_events_are_published(app: TestApp) {
    let admin = app.admin_token().await;
    let (service, bus) = threat_service_with_bus(&app).await;
    let mut events = bus.subscribe();
    let device = app.active_device(&admin).await;
    let ctx = RequestContext::default();
    let event = service
        .record(
            ThreatSignal {
                device_id: device_id(&device),
                kind: ThreatKind::HookFramework,
                severity: Severity::Critical,
                evidence: json!({ "frameworks": ["frida"] }),
                observed_at: now_millis(),
            },
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(event.action_outcome, "suspended");
    let principal = server::domain::Principal::System { component: "test" };
    service
        .update_state(
            &principal,
            event.id,
            server::service::threats::ThreatState::Acknowledged,
            "seen".to_owned(),
            &ctx,
        )
        .await
        .unwrap();
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        let received = tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .expect("live events within 10 s")
            .expect("bus open");
        if received.payload["device_id"] == device.id.as_str() {
            assert!(
                received.payload["id"]
                    .as_str()
                    .unwrap()
                    .parse::<uuid::Uuid>()
                    .is_ok()
            );
            seen.insert(received.kind.clone(), received.payload);
        }
    }
    let state = &seen["device.state_changed"];
    assert_eq!(state["from"], "ACTIVE");
    assert_eq!(state["to"], "SUSPENDED");
    assert_eq!(state["action"], "suspend");
    assert_eq!(state["actor"], "system:threat_response");
    assert!(
        state["reason"]
            .as_str()
            .unwrap()
            .contains(&event.id.to_string())
    );
    assert_eq!(seen["threat.recorded"]["threat_id"], event.id.to_string());
    assert_eq!(seen["threat.recorded"]["action_outcome"], "suspended");
    assert_eq!(seen["threat.updated"]["state"], "acknowledged");
}

crate::on_both_backends!(
    live_events_are_published,
    response_actions_and_incident_workflow,
    missed_heartbeats_are_detected,
    behaviour_rules,
);
