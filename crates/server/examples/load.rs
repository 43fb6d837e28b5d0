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
//! Payments mode (`--payments`, with or without `--postgres-redis`): authorizations/s end to
//! end over loopback HTTP (token consumed, KSN compare-and-set, DUKPT decryption of the card
//! data, PIN translation to the zone PIN key, ARQC and PIN verification by the issuer
//! simulator, persistence), see `examples/load/payments.rs`.
//!
//! `--tokens` measures Transaction Tokens issued + consumed per second (one operation =
//! issue, then consume, each a signed JWS, a database write and, for consumption, the
//! `OnceStore` claim plus the conditional UPDATE). Issuance needs a passing health verdict
//! and the health service is not part of this server yet, so the scenario drives a
//! `TokenService` in this process over the server's own database (and Redis), with the
//! health, threat and key ports answered by the benchmark harness below (always healthy,
//! never blocked, no key set); the device is made ACTIVE by SQL in setup.
//! Measured 2026-11-26 on the shared 2-core build machine (load average about 12 from
//! other builds, so figures are pessimistic), 10 s, concurrency 16: SQLite + in-process
//! stores 428 issue+consume/s, p50 5.6 ms, p99 666 ms (SQLite write lock); PostgreSQL +
//! Redis 297/s, p50 44 ms, p99 175 ms.
//! Traffic goes to 127.0.0.1 only, bounded in time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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

/// Benchmark harness for the token service's ports: every device healthy (score 90), no
/// threat, no key set. Measures the token path alone.
mod harness {
    use async_trait::async_trait;
    use server::domain::{DeviceId, now_millis};
    use server::error::{AppError, AppResult};
    use server::service::RequestContext;
    use server::service::ports::{
        BlockingThreat, DeviceKeys, DukptHost, HealthGate, HealthRefusal, HealthVerdict,
        KeySetInfo, ThreatReporter, ThreatSignal, TransactionObservation, ZonePinKey,
    };

    #[derive(Debug)]
    pub(crate) struct AlwaysHealthy;

    #[async_trait]
    impl HealthGate for AlwaysHealthy {
        async fn fresh_passing_verdict(
            &self,
            device: DeviceId,
        ) -> AppResult<Result<HealthVerdict, HealthRefusal>> {
            Ok(Ok(HealthVerdict {
                report_id: uuid::Uuid::new_v4(),
                device_id: device,
                score: 90,
                passed: true,
                failed_checks: vec![],
                policy_version: 1,
                received_at: now_millis(),
                amount_ceiling_minor: None,
            }))
        }
    }

    #[async_trait]
    impl ThreatReporter for AlwaysHealthy {
        async fn report(&self, _signal: ThreatSignal, _ctx: &RequestContext) -> AppResult<()> {
            Ok(())
        }
        async fn blocking_threat(&self, _device: DeviceId) -> AppResult<Option<BlockingThreat>> {
            Ok(None)
        }
        async fn observe_transaction(
            &self,
            _observation: TransactionObservation,
            _ctx: &RequestContext,
        ) -> AppResult<()> {
            Ok(())
        }
    }

    #[async_trait]
    impl DeviceKeys for AlwaysHealthy {
        async fn active_key_set(&self, _device: DeviceId) -> AppResult<Option<KeySetInfo>> {
            Ok(None)
        }
        async fn dukpt_host(&self, _key_set: uuid::Uuid) -> AppResult<DukptHost> {
            Err(AppError::NotFound("key set"))
        }
        async fn zone_pin_key(&self, _processor: &str) -> AppResult<ZonePinKey> {
            Err(AppError::NotFound("zone PIN key"))
        }
    }
}

/// Issue + consume per second through an in-process `TokenService` over the server's
/// database and stores.
async fn token_scenario(
    database_url: &str,
    redis: Option<(&str, &str)>,
    device_id: &str,
    seconds: u64,
    concurrency: u64,
) {
    use server::infra::stores::{EventBus, MemoryStores, OnceStore, RedisStores};
    use server::service::ports::TokenConsumer;
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(16)
        .connect(database_url)
        .await
        .expect("database");
    // Benchmark setup: the approve → keys → health flow is not in this server yet.
    sqlx::query("UPDATE devices SET state = 'ACTIVE' WHERE id = $1")
        .bind(device_id)
        .execute(&pool)
        .await
        .expect("activate device");
    let (once, bus): (Arc<dyn OnceStore>, Arc<dyn EventBus>) = match redis {
        Some((url, prefix)) => {
            let stores = Arc::new(RedisStores::connect(url, prefix).await.expect("Redis"));
            (stores.clone(), stores)
        }
        None => {
            let stores = Arc::new(MemoryStores::default());
            (stores.clone(), stores)
        }
    };
    let ports = Arc::new(harness::AlwaysHealthy);
    let audit = Arc::new(server::service::audit::AuditService::new(
        Arc::new(server::repository::audit::SqlAuditRepository::new(
            pool.clone(),
        )),
        bus,
    ));
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("random");
    let tokens = Arc::new(server::service::tokens::TokenService::new(
        Arc::new(server::repository::tokens::SqlTokenRepository::new(
            pool.clone(),
        )),
        Arc::new(server::repository::devices::SqlDeviceRepository::new(
            pool.clone(),
        )),
        server::service::tokens::TokenPorts {
            health: ports.clone(),
            threats: ports.clone(),
            keys: ports,
        },
        once,
        audit,
        &secret,
        server::service::tokens::TokenSettings {
            ttl: Duration::from_secs(300),
        },
    ));
    let device = server::domain::DeviceId(device_id.parse().expect("device id"));
    run_scenario(
        "tokens issued + consumed",
        seconds,
        concurrency,
        move |_| {
            let tokens = tokens.clone();
            async move {
                let Ok(issued) = tokens.issue(device).await else {
                    return false;
                };
                tokens
                    .consume(
                        &issued.token,
                        device,
                        &server::service::RequestContext::default(),
                    )
                    .await
                    .is_ok()
            }
        },
    )
    .await;
}

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
        payments::run(seconds, concurrency, shared).await;
        return;
    }
    let tokens_mode = std::env::args().any(|a| a == "--tokens");
    let server = std::env::current_exe()
        .expect("exe")
        .parent()
        .and_then(|examples| examples.parent())
        .map(|release| release.join("softpos-server"))
        .expect("server path");
    let dir = tempfile::tempdir().expect("tempdir");

    let mut command = Command::new(&server);
    command
        .args(["--listen-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("SOFTPOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("ALLOW_SOFTWARE_ATTESTATION", "true")
        .env("RUST_LOG", "warn")
        .env("DATABASE_MAX_CONNECTIONS", "16")
        .stdout(Stdio::piped());
    let mut pg_database = None;
    let mut database_url = format!("sqlite://{}/softpos.db?mode=rwc", dir.path().display());
    let mut redis_prefix = None;
    if shared {
        sqlx::any::install_default_drivers();
        let name = format!("softpos_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .expect("PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("create database");
        database_url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        redis_prefix = Some(format!("{name}:"));
        command
            .env(
                "DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:5432/{name}"),
            )
            .env("REDIS_URL", "redis://127.0.0.1:6379")
            .env("REDIS_KEY_PREFIX", format!("{name}:"));
        pg_database = Some((admin, name));
    } else {
        command.env_remove("DATABASE_URL").env_remove("REDIS_URL");
    }
    let mut child = command
        .spawn()
        .expect("start softpos-server (build it with --release)");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("server exited").expect("read");
        if let Some(rest) = line.strip_prefix("softpos-server listening on ") {
            break rest.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    println!(
        "softpos-server at {base} on {}",
        if shared {
            "PostgreSQL + Redis"
        } else {
            "SQLite + in-process stores"
        }
    );

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

    if tokens_mode {
        token_scenario(
            &database_url,
            redis_prefix
                .as_deref()
                .map(|prefix| ("redis://127.0.0.1:6379", prefix)),
            &device_id,
            seconds,
            concurrency,
        )
        .await;
    }
    if !tokens_mode && only("admin") {
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
    if !tokens_mode && only("health") {
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
    if !tokens_mode && only("device") {
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

    let _ = child.kill();
    let _ = child.wait();
    if let Some((admin, name)) = pg_database {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await;
    }
}
