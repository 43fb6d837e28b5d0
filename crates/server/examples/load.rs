//! Load benchmark (not a test): starts a release `softpos-server` on loopback and measures
//! signed device requests/s and authenticated admin reads/s with p50/p99 latency.
//!
//! ```sh
//! cargo build --release -p server --bin softpos-server --example load
//! target/release/examples/load                     # SQLite + in-process stores
//! target/release/examples/load --postgres-redis    # PostgreSQL + Redis on 127.0.0.1
//! target/release/examples/load --tokens [--postgres-redis]   # Transaction Tokens
//! ```
//!
//! Options: `--seconds N` (default 10) per scenario, `--concurrency N` (default 16),
//! `--only admin|device|health` to run one scenario. The `health` scenario measures health
//! reports ingested per second: each operation fetches a health nonce and submits a signed
//! report with it (two signed requests, scored and stored), so req/s there is reports/s.
//!
//! Payments mode (`--payments`): a Transaction Token then a sale per operation, on the real
//! path (devices enrolled over HTTP, keys from the key API, tokens from the token service);
//! `--tokens`: token issuance alone over HTTP. See `examples/load/payments.rs`.
//!
//! `BENCH_DB_CONNECTIONS` (default 16) sets the server's `DATABASE_MAX_CONNECTIONS`; `BENCH_RUST_LOG` (default
//! `warn`) its `RUST_LOG`, e.g. `sqlx::query=debug` to see every statement.
//! Traffic goes to 127.0.0.1 only, bounded in time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::Digest;

#[path = "load/payments.rs"]
mod payments;

const ADMIN_PASSWORD: &str = "benchmark-admin-password";

fn arg_value(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn only(name: &str) -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .is_none_or(|wanted| wanted == name)
}

/// Headers of a device-signed request.
fn signed_request(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    device_id: &str,
    key: &SigningKey,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let message = format!(
        "SOFTPOS-DEVICE-V1\nPOST\n{path}\n{now}\n{nonce}\n{}",
        hex::encode(sha2::Sha256::digest(&body))
    );
    client
        .post(format!("{base}{path}"))
        .header("x-device-id", device_id)
        .header("x-device-timestamp", now.to_string())
        .header("x-device-nonce", nonce)
        .header("x-device-signature", sign_b64(key, &message))
        .header("content-type", "application/json")
        .body(body)
}

/// One health report as a clean device would send it.
fn clean_report() -> Value {
    let now = chrono::Utc::now();
    json!({
        "root_indicators": [], "hook_frameworks": [],
        "debugger_attached": false, "debuggable_build": false, "emulator": false,
        "app_version": "1.2.0", "app_signing_digest": "ab".repeat(32),
        "last_attestation_at": (now - chrono::Duration::days(1)).to_rfc3339(),
        "os_version": "14",
        "security_patch": (now - chrono::Duration::days(30)).format("%Y-%m-%d").to_string(),
        "developer_options": false, "adb_enabled": false, "overlay_detected": false,
        "screen_capture": false, "nfc_available": true, "device_time": now.to_rfc3339(),
    })
}

fn sign_b64(key: &SigningKey, message: &str) -> String {
    let signature: Signature = key.sign(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn run_scenario<F, Fut>(name: &str, seconds: u64, concurrency: u64, make: F)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let make = make.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let ok = make(worker * 1_000_000_000 + n).await;
                latencies.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
                n += 1;
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (latencies, worker_errors) = worker.await.expect("worker");
        all.extend(latencies);
        errors += worker_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "{name:<34} {:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests, {} errors, concurrency {concurrency})",
        all.len() as f64 / elapsed,
        percentile(&all, 0.50).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0,
        all.len(),
        errors
    );
}

#[tokio::main]
async fn main() {
    let seconds = arg_value("--seconds", 10);
    let concurrency = arg_value("--concurrency", 16);
    let shared = std::env::args().any(|a| a == "--postgres-redis");
    if std::env::args().any(|a| a == "--payments") {
        payments::run(seconds, concurrency, shared, false).await;
        return;
    }
    if std::env::args().any(|a| a == "--tokens") {
        payments::run(seconds, concurrency, shared, true).await;
        return;
    }
    let server = payments::Server::start(shared).await;
    let base = server.base.clone();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token").to_owned();
    for n in 0..50 {
        client
            .post(format!("{base}/api/v1/merchants"))
            .bearer_auth(&token)
            .json(&json!({ "name": format!("Bench merchant {n}"), "country": "DE", "mcc": "5411" }))
            .send()
            .await
            .expect("merchant");
    }
    let merchants: Value = client
        .get(format!("{base}/api/v1/merchants?limit=1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let merchant_id = merchants["merchants"][0]["id"]
        .as_str()
        .expect("merchant")
        .to_owned();

    // One registered device.
    let key = loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("random");
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            break key;
        }
    };
    let challenge: Value = client
        .post(format!("{base}/api/v1/devices/challenge"))
        .send()
        .await
        .expect("challenge")
        .json()
        .await
        .expect("json");
    let challenge = challenge["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned();
    let public_key =
        base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_sec1_bytes());
    let registration = json!({
        "challenge": challenge,
        "public_key": public_key,
        "facts": {
            "model": "Bench", "os_version": "14", "security_patch": "2026-10-05",
            "app_package": "com.sunbay.softpos", "app_version": "1.0.0",
            "app_signing_digest": "ab".repeat(32), "tee": true, "strongbox": false, "nfc": true
        },
        "mode": "softpos",
        "merchant_id": merchant_id,
        "attestation": {
            "format": "software",
            "signature": sign_b64(&key, &format!("softpos-device-registration-v1\n{challenge}\n{public_key}")),
        },
    });
    let device: Value = client
        .post(format!("{base}/api/v1/devices/register"))
        .json(&registration)
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("json");
    let device_id = device["id"].as_str().expect("device id").to_owned();

    if only("admin") {
        let client = client.clone();
        let base = base.clone();
        let token = token.clone();
        run_scenario(
            "admin reads (GET merchants, 20)",
            seconds,
            concurrency,
            move |_| {
                let request = client
                    .get(format!("{base}/api/v1/merchants?limit=20"))
                    .bearer_auth(&token);
                async move { matches!(request.send().await, Ok(res) if res.status().is_success()) }
            },
        )
        .await;
    }
    let key = Arc::new(key);
    if only("health") {
        let client = client.clone();
        let base = base.clone();
        let key = key.clone();
        let device_id = device_id.clone();
        run_scenario(
            "health reports (nonce + report)",
            seconds,
            concurrency,
            move |_| {
                let client = client.clone();
                let base = base.clone();
                let key = key.clone();
                let device_id = device_id.clone();
                async move {
                    let nonce_request = signed_request(
                        &client,
                        &base,
                        "/api/v1/device/health/nonce",
                        &device_id,
                        &key,
                        Vec::new(),
                    );
                    let Ok(res) = nonce_request.send().await else {
                        return false;
                    };
                    let Ok(body) = res.json::<Value>().await else {
                        return false;
                    };
                    let Some(nonce) = body["nonce"].as_str() else {
                        return false;
                    };
                    let report = serde_json::to_vec(&json!({ "nonce": nonce, "report": clean_report() }))
                        .expect("json");
                    let request = signed_request(
                        &client,
                        &base,
                        "/api/v1/device/health",
                        &device_id,
                        &key,
                        report,
                    );
                    matches!(request.send().await, Ok(res) if res.status() == reqwest::StatusCode::CREATED)
                }
            },
        )
        .await;
    }
    if only("device") {
        let client = client.clone();
        let base = base.clone();
        run_scenario(
            "signed device requests (POST self)",
            seconds,
            concurrency,
            move |n| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_secs();
                let nonce = format!("bench-{n:020}-{}", uuid::Uuid::new_v4().simple());
                let body = br#"{"ping":1}"#;
                let path = "/api/v1/device/self";
                let message = format!(
                    "SOFTPOS-DEVICE-V1\nPOST\n{path}\n{now}\n{nonce}\n{}",
                    hex::encode(sha2::Sha256::digest(body))
                );
                let request = client
                    .post(format!("{base}{path}"))
                    .header("x-device-id", &device_id)
                    .header("x-device-timestamp", now.to_string())
                    .header("x-device-nonce", nonce)
                    .header("x-device-signature", sign_b64(&key, &message))
                    .header("content-type", "application/json")
                    .body(body.to_vec());
                async move { matches!(request.send().await, Ok(res) if res.status().is_success()) }
            },
        )
        .await;
    }

    server.stop().await;
}
