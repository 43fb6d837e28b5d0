//! Live events and webhooks across two server processes sharing PostgreSQL + Redis: the
//! stream on one instance receives an event published on the bus by another, tickets are
//! single use across instances, and a webhook endpoint gets each event exactly once with a
//! valid signature, after retries, with every attempt in the delivery log.
//!
//! The events are published straight onto the Redis channel the instances share, exactly
//! as another instance's `EventBus::publish` writes them: the services that publish threat
//! and device-state events (threats, lifecycle) land in other branches.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Backend, TestApp, expect_error};

async fn publish(app: &TestApp, kind: &str, payload: Value) {
    let (url, prefix) = app.storage.redis.as_ref().expect("Redis");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}events"))
        .arg(json!({ "kind": kind, "payload": payload }).to_string())
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// The next `(event, data)` of a server-sent-event stream, skipping keep-alive comments.
async fn next_event(res: &mut reqwest::Response, buf: &mut String) -> (String, String) {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    event = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim());
                }
            }
            if !event.is_empty() {
                return (event, data);
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), res.chunk())
            .await
            .expect("no event within 10 s")
            .expect("stream error")
            .expect("stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

async fn ticket(app: &TestApp, token: &str) -> String {
    let res = app
        .req(Method::POST, "/api/v1/events/ticket")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_on_one_instance_sees_events_of_another_postgres_redis() {
    let Some(first) = TestApp::spawn(Backend::Postgres, &[]).await else {
        return;
    };
    let second = first.spawn_sharing(&[]);
    let admin = first.admin_token().await;
    let auditor = first.token_for_role(&admin, "auditor").await;

    // Without credentials, with a forged ticket: refused.
    let res = second
        .req(Method::GET, "/api/v1/events/stream")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = second
        .req(
            Method::GET,
            "/api/v1/events/stream?ticket=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A ticket from the first instance opens the stream on the second, once.
    let ticket = ticket(&first, &auditor).await;
    let path = format!("/api/v1/events/stream?ticket={ticket}");
    let mut stream = second.req(Method::GET, &path).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let again = first.req(Method::GET, &path).send().await.unwrap();
    expect_error(again, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Not a live kind: never forwarded. Then a threat and a device-state change.
    publish(&first, "audit.appended", json!({ "seq": 1 })).await;
    publish(
        &first,
        "threat.recorded",
        json!({ "threat_id": "t-1", "severity": "high" }),
    )
    .await;
    publish(
        &first,
        "device.state_changed",
        json!({ "device_id": "d-1", "to": "SUSPENDED" }),
    )
    .await;
    let mut buf = String::new();
    let (event, data) = next_event(&mut stream, &mut buf).await;
    assert_eq!(event, "threat.recorded");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap()["threat_id"],
        "t-1"
    );
    let (event, _) = next_event(&mut stream, &mut buf).await;
    assert_eq!(event, "device.state_changed");

    // A bearer token works too (non-browser clients).
    let mut direct = first
        .req(Method::GET, "/api/v1/events/stream")
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::OK);
    publish(
        &second,
        "threat.updated",
        json!({ "threat_id": "t-1", "state": "acknowledged" }),
    )
    .await;
    let mut buf = String::new();
    assert_eq!(next_event(&mut direct, &mut buf).await.0, "threat.updated");

    // Logging out ends both streams opened with that session (re-checked every 5 s).
    let res = first
        .req(Method::POST, "/api/v1/auth/logout")
        .bearer_auth(&auditor)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for open in [&mut stream, &mut direct] {
        let ended = tokio::time::timeout(Duration::from_secs(12), async {
            while let Some(_chunk) = open.chunk().await.expect("stream error") {}
        })
        .await;
        assert!(ended.is_ok(), "stream still open after logout");
    }
}

/// A local endpoint that checks each delivery's signature and fails the first ones.
#[derive(Clone, Default)]
struct Receiver {
    secret: Arc<Mutex<Option<String>>>,
    fail_first: usize,
    /// (event id, signature valid, status answered)
    hits: Arc<Mutex<Vec<(String, bool, u16)>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> AxumStatus {
    let secret = receiver.secret.lock().unwrap().clone().unwrap_or_default();
    let header = headers
        .get("x-softpos-signature")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut t = "";
    let mut v1 = "";
    for part in header.split(',') {
        if let Some(value) = part.strip_prefix("t=") {
            t = value;
        } else if let Some(value) = part.strip_prefix("v1=") {
            v1 = value;
        }
    }
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    hmac::Mac::update(&mut mac, format!("{t}.").as_bytes());
    hmac::Mac::update(&mut mac, &body);
    let expected = hex::encode(hmac::Mac::finalize(mac).into_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = t.parse::<u64>().is_ok_and(|t| now.abs_diff(t) < 300);
    let valid = fresh && !v1.is_empty() && expected == v1;
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body["id"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut hits = receiver.hits.lock().unwrap();
    let status = if hits.len() < receiver.fail_first || !valid {
        500
    } else {
        204
    };
    hits.push((id, valid, status));
    AxumStatus::from_u16(status).unwrap()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivered_once_signed_after_retries_postgres_redis() {
    let env = [
        ("WEBHOOK_RETRY_BASE_MS", "100"),
        ("WEBHOOK_MAX_ATTEMPTS", "4"),
    ];
    let Some(first) = TestApp::spawn(Backend::Postgres, &env).await else {
        return;
    };
    let second = first.spawn_sharing(&env);
    let admin = first.admin_token().await;
    let receiver = Receiver {
        fail_first: 2,
        ..Receiver::default()
    };
    let url = start_receiver(receiver.clone()).await;

    // Validation and authorization.
    let create = |body: Value, token: String| {
        first
            .req(Method::POST, "/api/v1/webhooks")
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    for bad in [
        json!({ "url": "https://user:pw@example.com/x", "event_kinds": ["threat.recorded"] }),
        json!({ "url": "ftp://example.com/x", "event_kinds": ["threat.recorded"] }),
        json!({ "url": "https://example.com/x", "event_kinds": ["audit.appended"] }),
        json!({ "url": "https://example.com/x", "event_kinds": [] }),
    ] {
        let res = create(bad.clone(), admin.clone()).await.unwrap();
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let officer = first.token_for_role(&admin, "security_officer").await;
    let res = create(
        json!({ "url": url, "event_kinds": ["threat.recorded"] }),
        officer,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = create(
        json!({ "url": url, "event_kinds": ["threat.recorded"], "description": "SIEM" }),
        admin.clone(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let webhook_id = created["id"].as_str().unwrap().to_owned();
    *receiver.secret.lock().unwrap() = Some(secret.clone());
    let listed: Value = second
        .req(Method::GET, "/api/v1/webhooks")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret), "secret shown again");

    // Both instances see the event; only one delivers it, after two failed attempts.
    publish(
        &first,
        "device.state_changed",
        json!({ "device_id": "d-9" }),
    )
    .await;
    publish(
        &first,
        "threat.recorded",
        json!({ "threat_id": "t-9", "kind": "token_reuse" }),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while receiver.hits.lock().unwrap().iter().all(|hit| hit.2 != 204) {
        assert!(tokio::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Room for a duplicate from the other instance to show up, if there were one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits = receiver.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 3, "attempts: {hits:?}");
    assert!(
        hits.iter().all(|hit| hit.1),
        "a signature did not verify: {hits:?}"
    );
    assert!(
        hits.iter()
            .all(|hit| hit.0 == hits[0].0 && !hit.0.is_empty())
    );
    assert_eq!(
        hits.iter().map(|hit| hit.2).collect::<Vec<_>>(),
        vec![500, 500, 204]
    );

    // The delivery log, from either instance.
    let log: Value = second
        .req(
            Method::GET,
            &format!("/api/v1/webhooks/{webhook_id}/deliveries"),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0]["attempt"], 3);
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(log[0]["http_status"], 204);
    for entry in &log[1..] {
        assert_eq!(entry["outcome"], "retrying");
        assert_eq!(entry["http_status"], 500);
        assert!(entry["latency_ms"].as_i64().unwrap() >= 0);
        assert_eq!(entry["event_id"], hits[0].0.as_str());
    }

    // Deleting stops the endpoint; its log is then gone from the API too.
    let delete = || {
        first
            .req(Method::DELETE, &format!("/api/v1/webhooks/{webhook_id}"))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(delete().await.unwrap().status(), StatusCode::NO_CONTENT);
    expect_error(delete().await.unwrap(), StatusCode::NOT_FOUND, "not_found").await;
    publish(&first, "threat.recorded", json!({ "threat_id": "t-10" })).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.hits.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_gives_up_after_the_cap_postgres_redis() {
    let env = [
        ("WEBHOOK_RETRY_BASE_MS", "50"),
        ("WEBHOOK_MAX_ATTEMPTS", "3"),
    ];
    let Some(app) = TestApp::spawn(Backend::Postgres, &env).await else {
        return;
    };
    let admin = app.admin_token().await;
    let receiver = Receiver {
        fail_first: usize::MAX,
        ..Receiver::default()
    };
    let url = start_receiver(receiver.clone()).await;
    let created: Value = app
        .req(Method::POST, "/api/v1/webhooks")
        .bearer_auth(&admin)
        .json(&json!({ "url": url, "event_kinds": ["threat.recorded"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    *receiver.secret.lock().unwrap() = created["secret"].as_str().map(str::to_owned);
    publish(&app, "threat.recorded", json!({ "threat_id": "t-cap" })).await;
    let path = format!(
        "/api/v1/webhooks/{}/deliveries",
        created["id"].as_str().unwrap()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log: Value = app
            .req(Method::GET, &path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if log.as_array().unwrap().len() == 3 {
            assert_eq!(log[0]["outcome"], "failed");
            assert_eq!(log[0]["attempt"], 3);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "log: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        receiver.hits.lock().unwrap().len(),
        3,
        "no attempt beyond the cap"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_retries_stop_when_the_endpoint_is_deleted_postgres_redis() {
    let env = [
        ("WEBHOOK_RETRY_BASE_MS", "1500"),
        ("WEBHOOK_MAX_ATTEMPTS", "5"),
    ];
    let Some(app) = TestApp::spawn(Backend::Postgres, &env).await else {
        return;
    };
    let admin = app.admin_token().await;
    let receiver = Receiver {
        fail_first: usize::MAX,
        ..Receiver::default()
    };
    let url = start_receiver(receiver.clone()).await;
    let created: Value = app
        .req(Method::POST, "/api/v1/webhooks")
        .bearer_auth(&admin)
        .json(&json!({ "url": url, "event_kinds": ["threat.recorded"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    *receiver.secret.lock().unwrap() = created["secret"].as_str().map(str::to_owned);
    publish(&app, "threat.recorded", json!({ "threat_id": "t-del" })).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while receiver.hits.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never attempted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = app
        .req(
            Method::DELETE,
            &format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap()),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The retry would have come 1.5 s after the first attempt.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(receiver.hits.lock().unwrap().len(), 1);
}
