//! Payments load mode: authorizations/s end to end over loopback HTTP.
//!
//! The server runs in this process (`build_state` + `api::router` on 127.0.0.1, release
//! build), because the Transaction Token, key and threat services it calls through ports are
//! built on other branches: this mode implements those three ports (a single-use token table,
//! a random AES BDK and zone PIN key, a threat counter), as the integration tests do. Each
//! request still does everything a sale does on the server: device signature check, token
//! consumed, KSN compare-and-set in the database, AES DUKPT derivation and card data
//! decryption, PIN block translation (format 4 → format 4 under the ZPK), the issuer
//! simulator's ARQC and PIN verification, and the transaction written and read back.
//!
//! One device (and DUKPT originator) per worker; the EMV data comes from one tap of the
//! `visa-online-pin` virtual card through the real kernel, card data and PIN block are
//! encrypted afresh for every request under its own KSN.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use emv_cards::Card;
use emv_kernel::{Date, OutcomeKind, Step, Transaction, TransactionParams};
use p256::ecdsa::SigningKey;
use payment_crypto::dukpt::aes::{HostBdk, InitialKeyId, Originator, WorkingKeyUsage};
use payment_crypto::pinblock::{ClearPin, Pan, PinBlockFormat};
use payment_crypto::{KeyAlgorithm, RandomSource, SecretKey};
use serde_json::{Value, json};
use server::domain::{DeviceId, DeviceState};
use server::error::{AppError, AppResult};
use server::repository::transactions::SqlTransactionRepository;
use server::service::RequestContext;
use server::service::payments::acquirer::SimulatedAcquirer;
use server::service::payments::{PaymentPorts, PaymentService};
use server::service::ports::{
    BlockingThreat, DeviceKeys, DukptHost, DukptScheme, KeySetInfo, ThreatReporter, ThreatSignal,
    TokenClaims, TokenConsumer, TransactionObservation, ZonePinKey,
};
use sha2::Digest;
use uuid::Uuid;

use super::{ADMIN_PASSWORD, percentile, sign_b64};

const PROCESSOR: &str = "issuer-sim";
const CARD: &str = "visa-online-pin";
const AMOUNT: u64 = 4_000;

#[derive(Debug, Default)]
struct Threats;

#[async_trait]
impl ThreatReporter for Threats {
    async fn report(&self, _: ThreatSignal, _: &RequestContext) -> AppResult<()> {
        Ok(())
    }
    async fn blocking_threat(&self, _: DeviceId) -> AppResult<Option<BlockingThreat>> {
        Ok(None)
    }
    async fn observe_transaction(
        &self,
        _: TransactionObservation,
        _: &RequestContext,
    ) -> AppResult<()> {
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Tokens(Mutex<HashMap<String, TokenClaims>>);

#[async_trait]
impl TokenConsumer for Tokens {
    async fn consume(
        &self,
        token: &str,
        device: DeviceId,
        _: &RequestContext,
    ) -> AppResult<TokenClaims> {
        let claims = self.0.lock().unwrap().remove(token);
        match claims {
            Some(claims) if claims.device_id == device => Ok(claims),
            _ => Err(AppError::Conflict {
                code: "token_reused",
                message: "token unknown or used",
            }),
        }
    }
}

#[derive(Debug)]
struct Keys {
    bdk: SecretKey,
    zpk: SecretKey,
    key_sets: Mutex<HashMap<DeviceId, KeySetInfo>>,
}

#[async_trait]
impl DeviceKeys for Keys {
    async fn active_key_set(&self, device: DeviceId) -> AppResult<Option<KeySetInfo>> {
        Ok(self.key_sets.lock().unwrap().get(&device).cloned())
    }
    async fn dukpt_host(&self, _: Uuid) -> AppResult<DukptHost> {
        Ok(DukptHost::Aes(Box::new(HostBdk::new(&self.bdk).unwrap())))
    }
    async fn zone_pin_key(&self, _: &str) -> AppResult<ZonePinKey> {
        Ok(ZonePinKey {
            key_id: Uuid::nil(),
            key: SecretKey::aes(self.zpk.expose_secret()).unwrap(),
            format: PinBlockFormat::Iso4,
        })
    }
}

struct OsRandom;
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("random");
    }
}

fn random_aes() -> SecretKey {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("random");
    SecretKey::aes(&bytes).unwrap()
}

/// One tap through the real kernel: DE 55 without cardholder data.
fn tap() -> Vec<u8> {
    use chrono::Datelike;
    let mut card = Card::profile(CARD).unwrap();
    let today = chrono::Utc::now().date_naive();
    let (mut transaction, mut step) = Transaction::new(TransactionParams {
        amount: AMOUNT,
        amount_other: 0,
        currency_code: [0x08, 0x40],
        currency_exponent: 2,
        transaction_type: 0x00,
        date: Date::new(
            u16::try_from(today.year()).unwrap(),
            u8::try_from(today.month()).unwrap(),
            u8::try_from(today.day()).unwrap(),
        )
        .unwrap(),
        time: [0x12, 0x00, 0x00],
        unpredictable_number: [0x1A, 0x2B, 0x3C, 0x4D],
        config: emv_cards::reader_config(),
    });
    let outcome = loop {
        match step {
            Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)),
            Step::Done(outcome) => break outcome,
        }
    };
    assert_eq!(outcome.kind, OutcomeKind::OnlineRequest);
    let cardholder = [0x56u32, 0x57, 0x5A, 0x5F20, 0x9F1F, 0x9F20, 0x9F0B, 0x9F6B];
    let mut emv = Vec::new();
    for tag in outcome.data.tags() {
        let number = tag
            .to_vec()
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        if !cardholder.contains(&number) {
            emv_kernel::tlv::encode(tag, outcome.data.get(tag).unwrap(), &mut emv);
        }
    }
    emv
}

struct Worker {
    device_id: DeviceId,
    device: String,
    key: SigningKey,
    key_set: Uuid,
    originator: Originator,
}

/// Runs the payments scenario and prints authorizations/s with p50/p99.
pub(crate) async fn run(seconds: u64, concurrency: u64, shared: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = vec![
        "softpos-server".to_owned(),
        "--listen-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--data-dir".to_owned(),
        dir.path().to_string_lossy().into_owned(),
        "--admin-password".to_owned(),
        ADMIN_PASSWORD.to_owned(),
        "--allow-software-attestation".to_owned(),
        "--database-max-connections".to_owned(),
        "16".to_owned(),
    ];
    let mut pg = None;
    let database_url = if shared {
        sqlx::any::install_default_drivers();
        let name = format!("softpos_bench_{}", Uuid::new_v4().simple());
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .expect("PostgreSQL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("create database");
        args.extend([
            "--redis-url".to_owned(),
            "redis://127.0.0.1:6379".to_owned(),
            "--redis-key-prefix".to_owned(),
            format!("{name}:"),
        ]);
        pg = Some((admin, name.clone()));
        format!("postgres://postgres@127.0.0.1:5432/{name}")
    } else {
        format!(
            "sqlite://{}/softpos.db?mode=rwc",
            dir.path().to_string_lossy()
        )
    };
    args.extend(["--database-url".to_owned(), database_url.clone()]);
    let config = server::config::Config::try_parse_from(args).expect("config");
    let mut state = server::build_state(&config).await.expect("state");
    let tokens = Arc::new(Tokens::default());
    let keys = Arc::new(Keys {
        bdk: random_aes(),
        zpk: random_aes(),
        key_sets: Mutex::default(),
    });
    state.payments = Arc::new(PaymentService::new(
        Arc::new(SqlTransactionRepository::new(state.db.pool.clone())),
        PaymentPorts {
            tokens: tokens.clone(),
            keys: keys.clone(),
            threats: Arc::new(Threats),
        },
        Arc::new(SimulatedAcquirer::new(
            PROCESSOR,
            keys.clone(),
            Duration::from_secs(2),
        )),
        state.audit.clone(),
        b"benchmark PAN fingerprint key, 32 bytes",
    ));
    let limits = server::api::HttpLimits {
        max_body_bytes: 64 * 1024,
        request_timeout: Duration::from_secs(30),
        cors_origins: Vec::new(),
        hsts: false,
    };
    let app =
        server::api::router(state, &limits).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    println!(
        "payments at {base} on {} (in-process release server)",
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
    let admin = login["access_token"].as_str().expect("token").to_owned();
    let merchant: Value = client
        .post(format!("{base}/api/v1/merchants"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "Bench shop", "country": "DE", "mcc": "5411" }))
        .send()
        .await
        .expect("merchant")
        .json()
        .await
        .expect("json");
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await
        .expect("db");
    let mut workers = Vec::new();
    for _ in 0..concurrency {
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
        use base64::Engine;
        let public_key =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_sec1_bytes());
        let device: Value = client
            .post(format!("{base}/api/v1/devices/register"))
            .json(&json!({
                "challenge": challenge,
                "public_key": public_key,
                "facts": {
                    "model": "Bench", "os_version": "14", "security_patch": "2026-10-05",
                    "app_package": "com.sunbay.softpos", "app_version": "1.0.0",
                    "app_signing_digest": "ab".repeat(32), "tee": true, "strongbox": false, "nfc": true
                },
                "mode": "softpos",
                "merchant_id": merchant["id"],
                "attestation": {
                    "format": "software",
                    "signature": sign_b64(&key, &format!("softpos-device-registration-v1\n{challenge}\n{public_key}")),
                },
            }))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("json");
        let id = device["id"].as_str().expect("device id").to_owned();
        // Activation belongs to the key and health services (other branches): set directly.
        sqlx::query("UPDATE devices SET state = 'ACTIVE' WHERE id = $1")
            .bind(&id)
            .execute(&pool)
            .await
            .expect("activate");
        let device_id = DeviceId(id.parse().expect("uuid"));
        let mut ikid = [0u8; 8];
        getrandom::fill(&mut ikid).expect("random");
        let key_set = KeySetInfo {
            id: Uuid::new_v4(),
            device_id,
            version: 1,
            scheme: DukptScheme::Aes128,
            initial_key_id: ikid.to_vec(),
            bdk_id: Uuid::new_v4(),
        };
        keys.key_sets
            .lock()
            .unwrap()
            .insert(device_id, key_set.clone());
        let initial = HostBdk::new(&keys.bdk)
            .unwrap()
            .derive_initial_key(&InitialKeyId::new(ikid));
        workers.push(Worker {
            device_id,
            device: id,
            key,
            key_set: key_set.id,
            originator: Originator::load_initial_key(&initial, InitialKeyId::new(ikid)).unwrap(),
        });
    }
    pool.close().await;
    let emv = Arc::new(hex::encode_upper(tap()));
    let card = Card::profile(CARD).unwrap();
    let pan: &'static str = card.pan();
    let pin: &'static str = card.test_pin();
    let expiry = hex::encode(&card.expiry()[..2]);
    let psn = card.pan_sequence_number();
    let card_json = Arc::new(
        json!({ "pan": pan, "expiry": expiry, "pan_sequence_number": (psn >> 4) * 10 + (psn & 0x0F) })
            .to_string(),
    );

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut worker in workers {
        let client = client.clone();
        let base = base.clone();
        let tokens = tokens.clone();
        let emv = emv.clone();
        let card_json = card_json.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut approved, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let token = Uuid::new_v4().to_string();
                let now = server::domain::now_millis();
                tokens.0.lock().unwrap().insert(
                    token.clone(),
                    TokenClaims {
                        token_id: Uuid::new_v4(),
                        device_id: worker.device_id,
                        issued_at: now,
                        expires_at: now + 300_000,
                        health_report_id: Uuid::nil(),
                        health_score: 100,
                        device_state: DeviceState::Active,
                        key_set_id: Some(worker.key_set),
                        amount_ceiling_minor: None,
                    },
                );
                let ksn = worker.originator.ksn().unwrap();
                let data_key = worker
                    .originator
                    .derive_working_key(
                        WorkingKeyUsage::DataEncryptionEncrypt,
                        KeyAlgorithm::Aes128,
                    )
                    .unwrap();
                let pin_key = worker
                    .originator
                    .derive_working_key(WorkingKeyUsage::PinEncryption, KeyAlgorithm::Aes128)
                    .unwrap();
                worker.originator.advance().unwrap();
                let card_data = payment_crypto::data::encrypt_with_zero_iv(
                    &data_key,
                    payment_crypto::data::Padding::Iso9797Method2,
                    card_json.as_bytes(),
                )
                .unwrap();
                let pin_block = payment_crypto::pinblock::encrypt_pin(
                    &pin_key,
                    PinBlockFormat::Iso4,
                    &ClearPin::new(pin).unwrap(),
                    Some(&Pan::new(pan).unwrap()),
                    &mut OsRandom,
                )
                .unwrap();
                let body = serde_json::to_vec(&json!({
                    "token": token,
                    "amount_minor": AMOUNT,
                    "currency": "USD",
                    "emv_data": *emv,
                    "card_data": hex::encode_upper(&card_data),
                    "pin_block": hex::encode_upper(pin_block.as_bytes()),
                    "ksn": hex::encode_upper(ksn.to_bytes()),
                }))
                .unwrap();
                let path = "/api/v1/device/transactions";
                let timestamp = chrono::Utc::now().timestamp();
                let nonce = Uuid::new_v4().simple().to_string();
                let message = format!(
                    "SOFTPOS-DEVICE-V1\nPOST\n{path}\n{timestamp}\n{nonce}\n{}",
                    hex::encode(sha2::Sha256::digest(&body))
                );
                let request = client
                    .post(format!("{base}{path}"))
                    .header("x-device-id", &worker.device)
                    .header("x-device-timestamp", timestamp.to_string())
                    .header("x-device-nonce", nonce)
                    .header("x-device-signature", sign_b64(&worker.key, &message))
                    .header("idempotency-key", Uuid::new_v4().to_string())
                    .header("content-type", "application/json")
                    .body(body);
                let t = Instant::now();
                let res = request.send().await;
                let ok = match res {
                    Ok(res) if res.status().as_u16() == 201 => res
                        .json::<Value>()
                        .await
                        .is_ok_and(|body| body["state"] == "APPROVED"),
                    _ => false,
                };
                latencies.push(t.elapsed());
                if ok {
                    approved += 1;
                } else {
                    errors += 1;
                }
            }
            (latencies, approved, errors)
        }));
    }
    let (mut all, mut approved, mut errors) = (Vec::new(), 0, 0);
    for task in tasks {
        let (latencies, worker_approved, worker_errors) = task.await.expect("worker");
        all.extend(latencies);
        approved += worker_approved;
        errors += worker_errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    println!(
        "{:<34} {:>8.0} auth/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} approved, {} not, concurrency {concurrency})",
        "authorizations (PIN, ARQC)",
        approved as f64 / elapsed,
        percentile(&all, 0.50).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0,
        approved,
        errors
    );
    if let Some((admin, name)) = pg {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await;
    }
}
