//! Payments end to end over HTTP: requests built by `payment-crypto` (AES DUKPT originator,
//! PIN block format 4, card data encryption) and the real kernel against `emv-cards` virtual
//! cards for the EMV data, never by server code; the built-in acquirer over the issuer
//! simulator answers. Each scenario runs on SQLite and on PostgreSQL + Redis.
//!
//! The server runs in this process (`build_state` + `api::router` on `127.0.0.1:0`) because
//! these tests were written before the Transaction Token, key and threat services were merged:
//! they implement those ports below (`TestTokens`, `TestKeys`, `TestThreats`: a single-use
//! token table, a random AES BDK and zone PIN key, a threat recorder) and activate devices
//! through the database. `build_state` now wires the real services. LEAD / next step: spawn
//! the binary with `crate::TestApp`, issue tokens through the token endpoint, inject keys
//! through the key endpoints (BDK and the `issuer-sim` ZPK through the key store), and read
//! threats from the threat endpoints; the assertions stay the same.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clap::Parser;
use emv_cards::Card;
use emv_cards::keys::test_ca_public_keys;
use emv_kernel::entry_point::{AidConfig, Kernel};
use emv_kernel::oda::{CaKeyTable, CaPublicKey};
use emv_kernel::{Date, OutcomeKind, Step, Tag, TerminalConfig, Transaction, TransactionParams};
use payment_crypto::dukpt::aes::{HostBdk, InitialKeyId, Originator, WorkingKeyUsage};
use payment_crypto::pinblock::{ClearPin, Pan, PinBlockFormat};
use payment_crypto::{KeyAlgorithm, RandomSource, SecretKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::domain::{DeviceId, DeviceState};
use server::error::{AppError, AppResult};
use server::repository::transactions::SqlTransactionRepository;
use server::service::RequestContext;
use server::service::payments::acquirer::SimulatedAcquirer;
use server::service::payments::{PaymentPorts, PaymentService};
use server::service::ports::{
    BlockingThreat, DeviceKeys, DukptHost, DukptScheme, KeySetInfo, Severity, ThreatKind,
    ThreatReporter, ThreatSignal, TokenClaims, TokenConsumer, TransactionObservation, ZonePinKey,
};
use uuid::Uuid;

use crate::{ADMIN_PASSWORD, Backend, TestDevice};

const PROCESSOR: &str = "issuer-sim";

// ---------------------------------------------------------------------------------------
// Ports built on other branches, implemented for the test (see the module doc).

#[derive(Debug, Default)]
struct TestThreats {
    signals: Mutex<Vec<(ThreatKind, DeviceId)>>,
    observed: Mutex<Vec<(Uuid, bool)>>,
}

impl TestThreats {
    fn kinds(&self) -> Vec<ThreatKind> {
        self.signals
            .lock()
            .unwrap()
            .iter()
            .map(|(kind, _)| *kind)
            .collect()
    }
}

#[async_trait]
impl ThreatReporter for TestThreats {
    async fn report(&self, signal: ThreatSignal, _: &RequestContext) -> AppResult<()> {
        self.signals
            .lock()
            .unwrap()
            .push((signal.kind, signal.device_id));
        Ok(())
    }
    async fn blocking_threat(&self, _: DeviceId) -> AppResult<Option<BlockingThreat>> {
        Ok(None)
    }
    async fn observe_transaction(
        &self,
        observation: TransactionObservation,
        _: &RequestContext,
    ) -> AppResult<()> {
        self.observed
            .lock()
            .unwrap()
            .push((observation.transaction_id, observation.approved));
        Ok(())
    }
}

#[derive(Debug)]
struct TestTokens {
    live: Mutex<HashMap<String, TokenClaims>>,
    used: Mutex<HashSet<String>>,
    threats: Arc<TestThreats>,
}

impl TestTokens {
    fn issue(&self, device: DeviceId, key_set: Uuid, ceiling: Option<u64>) -> String {
        let token = Uuid::new_v4().to_string();
        let now = server::domain::now_millis();
        self.live.lock().unwrap().insert(
            token.clone(),
            TokenClaims {
                token_id: Uuid::new_v4(),
                device_id: device,
                issued_at: now,
                expires_at: now + 300_000,
                health_report_id: Uuid::new_v4(),
                health_score: 95,
                device_state: DeviceState::Active,
                key_set_id: Some(key_set),
                amount_ceiling_minor: ceiling,
            },
        );
        token
    }
}

#[async_trait]
impl TokenConsumer for TestTokens {
    async fn consume(
        &self,
        token: &str,
        device: DeviceId,
        ctx: &RequestContext,
    ) -> AppResult<TokenClaims> {
        let claims = self.live.lock().unwrap().remove(token);
        match claims {
            Some(claims) => {
                self.used.lock().unwrap().insert(token.to_owned());
                if claims.device_id != device {
                    return Err(AppError::Unprocessable {
                        code: "token_device_mismatch",
                        message: "token of another device",
                    });
                }
                Ok(claims)
            }
            None if self.used.lock().unwrap().contains(token) => {
                self.threats
                    .report(
                        ThreatSignal {
                            device_id: device,
                            kind: ThreatKind::TokenReuse,
                            severity: Severity::High,
                            evidence: json!({}),
                            observed_at: server::domain::now_millis(),
                        },
                        ctx,
                    )
                    .await?;
                Err(AppError::Conflict {
                    code: "token_reused",
                    message: "token already used",
                })
            }
            None => Err(AppError::Unprocessable {
                code: "token_invalid",
                message: "unknown token",
            }),
        }
    }
}

#[derive(Debug)]
struct TestKeys {
    bdk: SecretKey,
    zpk: SecretKey,
    key_sets: Mutex<HashMap<DeviceId, KeySetInfo>>,
}

#[async_trait]
impl DeviceKeys for TestKeys {
    async fn active_key_set(&self, device: DeviceId) -> AppResult<Option<KeySetInfo>> {
        Ok(self.key_sets.lock().unwrap().get(&device).cloned())
    }
    async fn dukpt_host(&self, _: Uuid) -> AppResult<DukptHost> {
        Ok(DukptHost::Aes(Box::new(HostBdk::new(&self.bdk).unwrap())))
    }
    async fn zone_pin_key(&self, processor: &str) -> AppResult<ZonePinKey> {
        assert_eq!(processor, PROCESSOR);
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
        getrandom::fill(buf).unwrap();
    }
}

fn random_key() -> SecretKey {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).unwrap();
    SecretKey::aes(&bytes).unwrap()
}

// ---------------------------------------------------------------------------------------
// The server, in process.

pub(crate) struct PayApp {
    pub base: String,
    pub client: reqwest::Client,
    tokens: Arc<TestTokens>,
    keys: Arc<TestKeys>,
    threats: Arc<TestThreats>,
    pub database_url: String,
    pub dir: tempfile::TempDir,
    pg_database: Option<String>,
    server: tokio::task::JoinHandle<()>,
    logs: Arc<Mutex<Vec<u8>>>,
}

impl Drop for PayApp {
    fn drop(&mut self) {
        self.server.abort();
        if std::thread::panicking() {
            eprintln!(
                "server log:\n{}",
                String::from_utf8_lossy(&self.logs.lock().unwrap())
            );
        }
        let Some(name) = self.pg_database.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(pool) = pg_admin().await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                }
            });
        })
        .join();
    }
}

async fn pg_admin() -> Result<sqlx::AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect("postgres://postgres@127.0.0.1:5432/test")
        .await
}

impl PayApp {
    pub(crate) async fn spawn(backend: Backend) -> Option<Self> {
        let logs = capture_logs();
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "softpos-server".to_owned(),
            "--listen-addr".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--data-dir".to_owned(),
            dir.path().to_string_lossy().into_owned(),
            "--jwt-secret".to_owned(),
            "8f3c1a9e5b7d2f4a6c8e0b1d3f5a7c9e8f3c1a9e5b7d2f4a6c8e0b1d3f5a7c9e".to_owned(),
            "--admin-password".to_owned(),
            ADMIN_PASSWORD.to_owned(),
            "--allow-software-attestation".to_owned(),
        ];
        let (database_url, pg_database) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}/softpos.db?mode=rwc",
                    dir.path().to_string_lossy()
                ),
                None,
            ),
            Backend::Postgres => {
                if !crate::shared_services_available() {
                    return None;
                }
                let name = format!("softpos_test_{}", Uuid::new_v4().simple());
                let pool = pg_admin().await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                args.extend([
                    "--redis-url".to_owned(),
                    "redis://127.0.0.1:6379".to_owned(),
                    "--redis-key-prefix".to_owned(),
                    format!("softpos-test:{}:", Uuid::new_v4().simple()),
                ]);
                (
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    Some(name),
                )
            }
        };
        args.extend(["--database-url".to_owned(), database_url.clone()]);
        let config = server::config::Config::try_parse_from(args).unwrap();
        let mut state = server::build_state(&config).await.unwrap();
        let threats = Arc::new(TestThreats::default());
        let tokens = Arc::new(TestTokens {
            live: Mutex::default(),
            used: Mutex::default(),
            threats: threats.clone(),
        });
        let keys = Arc::new(TestKeys {
            bdk: random_key(),
            zpk: random_key(),
            key_sets: Mutex::default(),
        });
        let processor = Arc::new(SimulatedAcquirer::new(
            PROCESSOR,
            keys.clone(),
            Duration::from_millis(300),
        ));
        state.payments = Arc::new(PaymentService::new(
            Arc::new(SqlTransactionRepository::new(state.db.pool.clone())),
            PaymentPorts {
                tokens: tokens.clone(),
                keys: keys.clone(),
                threats: threats.clone(),
            },
            processor,
            state.audit.clone(),
            b"test PAN fingerprint key, 32 bytes or more",
        ));
        let limits = server::api::HttpLimits {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            hsts: false,
        };
        let app =
            server::api::router(state, &limits).into_make_service_with_connect_info::<SocketAddr>();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Some(Self {
            base,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            tokens,
            keys,
            threats,
            database_url,
            dir,
            pg_database,
            server,
            logs,
        })
    }

    pub(crate) fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    pub(crate) async fn admin(&self) -> String {
        let res = self
            .req(Method::POST, "/api/v1/auth/login")
            .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        crate::token_of(&res.json().await.unwrap())
    }

    /// Registers a device (`softpos` or `pinpad`), activates it and gives it a key set.
    async fn terminal(&self, admin: &str, mode: &str) -> Terminal {
        let merchant: Value = self
            .req(Method::POST, "/api/v1/merchants")
            .bearer_auth(admin)
            .json(&json!({ "name": format!("Shop {}", Uuid::new_v4()), "country": "DE", "mcc": "5411" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let challenge: Value = self
            .req(Method::POST, "/api/v1/devices/challenge")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let challenge = challenge["challenge"].as_str().unwrap();
        let key = crate::new_device_key();
        let public_key = crate::public_key_b64(&key);
        let message = format!("softpos-device-registration-v1\n{challenge}\n{public_key}");
        let res = self
            .req(Method::POST, "/api/v1/devices/register")
            .json(&json!({
                "challenge": challenge,
                "public_key": public_key,
                "facts": crate::facts("Pixel 9", None),
                "mode": mode,
                "merchant_id": merchant["id"],
                "attestation": { "format": "software", "signature": crate::sign_b64(&key, &message) },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // LEAD: once keys/health are merged, activate through key injection + health check.
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.database_url)
            .await
            .unwrap();
        sqlx::query("UPDATE devices SET state = 'ACTIVE' WHERE id = $1")
            .bind(&id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let device_id = DeviceId(id.parse().unwrap());
        let mut ikid = [0u8; 8];
        getrandom::fill(&mut ikid).unwrap();
        let initial_key_id = InitialKeyId::new(ikid);
        let key_set = KeySetInfo {
            id: Uuid::new_v4(),
            device_id,
            version: 1,
            scheme: DukptScheme::Aes128,
            initial_key_id: ikid.to_vec(),
            bdk_id: Uuid::new_v4(),
        };
        self.keys
            .key_sets
            .lock()
            .unwrap()
            .insert(device_id, key_set.clone());
        let initial_key = HostBdk::new(&self.keys.bdk)
            .unwrap()
            .derive_initial_key(&initial_key_id);
        Terminal {
            device: TestDevice { id, key },
            device_id,
            key_set_id: key_set.id,
            originator: Originator::load_initial_key(&initial_key, initial_key_id).unwrap(),
        }
    }

    fn token(&self, terminal: &Terminal) -> String {
        self.tokens
            .issue(terminal.device_id, terminal.key_set_id, Some(100_000))
    }

    /// A request signed by the device, with `Idempotency-Key` if given.
    pub(crate) fn signed(
        &self,
        device: &TestDevice,
        path: &str,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        use sha2::Digest;
        let timestamp = chrono::Utc::now().timestamp();
        let nonce = Uuid::new_v4().simple().to_string();
        let message = format!(
            "SOFTPOS-DEVICE-V1\nPOST\n{path}\n{timestamp}\n{nonce}\n{}",
            hex::encode(sha2::Sha256::digest(body))
        );
        let mut req = self
            .req(Method::POST, path)
            .header("x-device-id", &device.id)
            .header("x-device-timestamp", timestamp.to_string())
            .header("x-device-nonce", nonce)
            .header("x-device-signature", crate::sign_b64(&device.key, &message))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        req
    }

    async fn submit(&self, terminal: &Terminal, body: &Value, key: &str) -> (StatusCode, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let res = self
            .signed(
                &terminal.device,
                "/api/v1/device/transactions",
                &bytes,
                Some(key),
            )
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap())
    }

    async fn sale(&self, terminal: &mut Terminal, sale: Sale) -> (StatusCode, Value) {
        let token = self.token(terminal);
        let body = terminal.build(&token, &sale);
        self.submit(terminal, &body, &Uuid::new_v4().to_string())
            .await
    }
}

// ---------------------------------------------------------------------------------------
// The terminal side: kernel, DUKPT originator, PIN block, data encryption.

struct Terminal {
    device: TestDevice,
    device_id: DeviceId,
    key_set_id: Uuid,
    originator: Originator,
}

#[derive(Debug, Clone)]
struct Sale {
    card: &'static str,
    amount: u64,
    pin: Option<String>,
    tamper_arqc: bool,
}

impl Sale {
    fn new(card: &'static str, amount: u64) -> Self {
        Self {
            card,
            amount,
            pin: None,
            tamper_arqc: false,
        }
    }
}

fn kernel_config() -> TerminalConfig {
    let mut ca_keys = CaKeyTable::new();
    for key in test_ca_public_keys() {
        ca_keys.insert(CaPublicKey::new(key.rid, key.index, &key.modulus, &key.exponent).unwrap());
    }
    let mut visa = AidConfig::new(&[0xA0, 0x00, 0x00, 0x00, 0x03], Kernel::C3);
    visa.transaction_limit = Some(100_000);
    visa.floor_limit = Some(5_000);
    visa.cvm_required_limit = Some(3_000);
    visa.ttq = [0x27, 0x00, 0x40, 0x00];
    let mut mastercard = AidConfig::new(&[0xA0, 0x00, 0x00, 0x00, 0x04], Kernel::C2);
    mastercard.transaction_limit = Some(100_000);
    mastercard.floor_limit = Some(5_000);
    mastercard.cvm_required_limit = Some(3_000);
    TerminalConfig {
        country_code: [0x08, 0x40],
        terminal_type: 0x22,
        terminal_capabilities: [0x00, 0x68, 0xC8],
        additional_terminal_capabilities: [0x60, 0x00, 0xF0, 0xA0, 0x01],
        ifd_serial_number: Some(*b"SUNBAY01"),
        merchant_category_code: Some([0x54, 0x11]),
        merchant_identifier: None,
        terminal_identification: Some(*b"TERM0001"),
        merchant_name_and_location: None,
        online_capable: true,
        aids: vec![visa, mastercard],
        ca_keys,
    }
}

/// Runs the kernel against a fresh virtual card; returns the card and the DE 55 data.
fn tap(card_name: &str, amount: u64) -> (Card, Vec<u8>) {
    let mut card = Card::profile(card_name).unwrap();
    let today = chrono::Utc::now().date_naive();
    use chrono::Datelike;
    let mut un = [0u8; 4];
    getrandom::fill(&mut un).unwrap();
    let (mut transaction, mut step) = Transaction::new(TransactionParams {
        amount,
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
        unpredictable_number: un,
        config: kernel_config(),
    });
    let outcome = loop {
        match step {
            Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)),
            Step::Done(outcome) => break outcome,
        }
    };
    assert_eq!(
        outcome.kind,
        OutcomeKind::OnlineRequest,
        "{card_name} {amount}: {outcome:?}"
    );
    // The terminal sends cardholder data only inside the encrypted card data.
    let cardholder = [0x56u32, 0x57, 0x5A, 0x5F20, 0x9F1F, 0x9F20, 0x9F0B, 0x9F6B];
    let mut emv = Vec::new();
    for tag in outcome.data.tags() {
        let raw = tag.to_vec();
        let number = raw.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        if cardholder.contains(&number) {
            continue;
        }
        emv_kernel::tlv::encode(tag, outcome.data.get(tag).unwrap(), &mut emv);
    }
    (card, emv)
}

impl Terminal {
    /// Builds the sale body with the next KSN.
    fn build(&mut self, token: &str, sale: &Sale) -> Value {
        let (card, mut emv) = tap(sale.card, sale.amount);
        if sale.tamper_arqc {
            let objects = emv_kernel::tlv::parse_all(&emv).unwrap();
            let mut tampered = Vec::new();
            for object in objects {
                let mut value = object.value.to_vec();
                if object.tag == Tag::ApplicationCryptogram {
                    value[7] ^= 0x01;
                }
                emv_kernel::tlv::encode(object.tag, &value, &mut tampered);
            }
            emv = tampered;
        }
        let ksn = self.originator.ksn().unwrap();
        let data_key = self
            .originator
            .derive_working_key(WorkingKeyUsage::DataEncryptionEncrypt, KeyAlgorithm::Aes128)
            .unwrap();
        let pin_key = self
            .originator
            .derive_working_key(WorkingKeyUsage::PinEncryption, KeyAlgorithm::Aes128)
            .unwrap();
        self.originator.advance().unwrap();
        let psn = card.pan_sequence_number();
        let card_json = json!({
            "pan": card.pan(),
            "expiry": hex::encode(&card.expiry()[..2]),
            "pan_sequence_number": (psn >> 4) * 10 + (psn & 0x0F),
        });
        let card_data = payment_crypto::data::encrypt_with_zero_iv(
            &data_key,
            payment_crypto::data::Padding::Iso9797Method2,
            card_json.to_string().as_bytes(),
        )
        .unwrap();
        let pin_block = sale.pin.as_deref().map(|pin| {
            let block = payment_crypto::pinblock::encrypt_pin(
                &pin_key,
                PinBlockFormat::Iso4,
                &ClearPin::new(pin).unwrap(),
                Some(&Pan::new(card.pan()).unwrap()),
                &mut OsRandom,
            )
            .unwrap();
            hex::encode_upper(block.as_bytes())
        });
        json!({
            "token": token,
            "amount_minor": sale.amount,
            "currency": "USD",
            "emv_data": hex::encode_upper(&emv),
            "card_data": hex::encode_upper(&card_data),
            "pin_block": pin_block,
            "ksn": hex::encode_upper(ksn.to_bytes()),
            "location": { "latitude": 52.52, "longitude": 13.405, "accuracy_m": 20.0 },
        })
    }
}

fn card_pan(name: &str) -> &'static str {
    Card::profile(name).unwrap().pan()
}

async fn expect_code(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
}

// ---------------------------------------------------------------------------------------
// Scenarios.

async fn approved_declined_tampered_and_idempotent_retry(app: PayApp) {
    let admin = app.admin().await;
    let mut terminal = app.terminal(&admin, "softpos").await;

    let token = app.token(&terminal);
    let body = terminal.build(&token, &Sale::new("mc-cda", 2_000));
    let key = Uuid::new_v4().to_string();
    let (status, approved) = app.submit(&terminal, &body, &key).await;
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
    let res = app
        .signed(
            &terminal.device,
            "/api/v1/device/transactions",
            &bytes,
            Some(&key),
        )
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
    let (status, error) = app.submit(&terminal, &other, &key).await;
    expect_code(
        status,
        &error,
        StatusCode::CONFLICT,
        "idempotency_key_reused",
    )
    .await;

    // Insufficient funds (amount ending in 51), and a tampered ARQC.
    let (status, declined) = app.sale(&mut terminal, Sale::new("mc-cda", 2_051)).await;
    assert_eq!(status, StatusCode::CREATED, "{declined}");
    assert_eq!(declined["state"], "DECLINED");
    assert_eq!(declined["response_code"], "51");
    assert_eq!(declined["decline_reason"], "insufficient_funds");
    let mut tampered = Sale::new("visa-fdda", 2_500);
    tampered.tamper_arqc = true;
    let (status, declined) = app.sale(&mut terminal, tampered).await;
    assert_eq!(status, StatusCode::CREATED, "{declined}");
    assert_eq!(declined["state"], "DECLINED", "{declined}");
    assert_eq!(declined["decline_reason"], "arqc_invalid");
    assert_eq!(app.threats.observed.lock().unwrap().len(), 3);

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

async fn online_pin_approved_and_wrong_pin_declined(app: PayApp) {
    let admin = app.admin().await;
    let mut terminal = app.terminal(&admin, "softpos").await;
    let right = Card::profile("visa-online-pin").unwrap().test_pin();
    let wrong = if right == "9999" { "1111" } else { "9999" };
    let mut sale = Sale::new("visa-online-pin", 4_000);
    sale.pin = Some(right.to_owned());
    let (status, approved) = app.sale(&mut terminal, sale.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{approved}");
    assert_eq!(approved["state"], "APPROVED", "{approved}");
    assert_eq!(approved["online_pin"], true);
    sale.pin = Some(wrong.to_owned());
    let (status, declined) = app.sale(&mut terminal, sale).await;
    assert_eq!(status, StatusCode::CREATED, "{declined}");
    assert_eq!(declined["state"], "DECLINED");
    assert_eq!(declined["response_code"], "55");
}

async fn ksn_replay_and_token_reuse_are_refused(app: PayApp) {
    let admin = app.admin().await;
    let mut terminal = app.terminal(&admin, "softpos").await;
    let first_token = app.token(&terminal);
    let first = terminal.build(&first_token, &Sale::new("mc-cda", 2_000));
    let second = terminal.build(&app.token(&terminal), &Sale::new("mc-cda", 2_000));
    let (status, body) = app.submit(&terminal, &second, "k-second").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Replaying the second KSN with a fresh token: refused, threat recorded, nothing paid.
    let mut replay = second.clone();
    replay["token"] = json!(app.token(&terminal));
    let (status, body) = app.submit(&terminal, &replay, "k-replay").await;
    expect_code(status, &body, StatusCode::CONFLICT, "ksn_replay").await;
    // The first KSN is lower than the second: rollback.
    let (status, body) = app.submit(&terminal, &first, "k-first").await;
    expect_code(status, &body, StatusCode::CONFLICT, "ksn_rollback").await;
    assert_eq!(
        app.threats.kinds(),
        vec![ThreatKind::KsnReplay, ThreatKind::KsnRollback]
    );

    // The first token was spent by the rollback attempt: using it again is token reuse.
    let third = terminal.build(&first_token, &Sale::new("mc-cda", 2_000));
    let (status, body) = app.submit(&terminal, &third, "k-third").await;
    expect_code(status, &body, StatusCode::CONFLICT, "token_reused").await;
    assert_eq!(app.threats.kinds().last(), Some(&ThreatKind::TokenReuse));
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

async fn refunds_never_exceed_captured(app: PayApp) {
    let admin = app.admin().await;
    let mut terminal = app.terminal(&admin, "softpos").await;
    let (_, sale) = app.sale(&mut terminal, Sale::new("mc-cda", 2_000)).await;
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

async fn processor_timeout_is_reversed(app: PayApp) {
    let admin = app.admin().await;
    let mut terminal = app.terminal(&admin, "softpos").await;
    // Amounts ending in 91: the simulated issuer never answers.
    let (status, failed) = app.sale(&mut terminal, Sale::new("mc-cda", 2_091)).await;
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

async fn pinpad_operations_are_logged_and_counted(app: PayApp) {
    let admin = app.admin().await;
    let pinpad = app.terminal(&admin, "pinpad").await;
    let softpos = app.terminal(&admin, "softpos").await;
    let report =
        json!({ "ksn": "FFFF9876543210E00001", "result": "accepted", "reference": "POS-77" });
    let bytes = serde_json::to_vec(&report).unwrap();
    for _ in 0..2 {
        let res = app
            .signed(
                &pinpad.device,
                "/api/v1/device/pin-operations",
                &bytes,
                None,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = app
        .signed(
            &softpos.device,
            "/api/v1/device/pin-operations",
            &bytes,
            None,
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

async fn bad_sales_change_nothing(app: PayApp) {
    let admin = app.admin().await;
    let mut terminal = app.terminal(&admin, "softpos").await;
    let body = terminal.build(&app.token(&terminal), &Sale::new("mc-cda", 2_000));
    let bytes = serde_json::to_vec(&body).unwrap();
    let res = app
        .signed(
            &terminal.device,
            "/api/v1/device/transactions",
            &bytes,
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut bad = body.clone();
    bad["ksn"] = json!("zz");
    let (status, error) = app.submit(&terminal, &bad, "b1").await;
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
    let (status, error) = app.submit(&terminal, &garbled, "b2").await;
    expect_code(
        status,
        &error,
        StatusCode::UNPROCESSABLE_ENTITY,
        "card_data_undecryptable",
    )
    .await;
    // A PAN in clear inside the EMV data.
    let mut leaky = terminal.build(&app.token(&terminal), &Sale::new("mc-cda", 2_000));
    let mut emv = hex::decode(leaky["emv_data"].as_str().unwrap()).unwrap();
    emv_kernel::tlv::encode(Tag::ApplicationPan, &[0x54, 0x13, 0x33], &mut emv);
    leaky["emv_data"] = json!(hex::encode(emv));
    let (status, error) = app.submit(&terminal, &leaky, "b3").await;
    expect_code(
        status,
        &error,
        StatusCode::UNPROCESSABLE_ENTITY,
        "emv_data_contains_cardholder_data",
    )
    .await;
    // Above the token's ceiling.
    let token = app
        .tokens
        .issue(terminal.device_id, terminal.key_set_id, Some(1_000));
    let capped = terminal.build(&token, &Sale::new("mc-cda", 2_000));
    let (status, error) = app.submit(&terminal, &capped, "b4").await;
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

/// After approved, PIN and declined sales, neither the SQLite files nor the server's log
/// output contain a test PAN or PIN.
async fn nothing_secret_at_rest_or_in_logs(app: PayApp) {
    let admin = app.admin().await;
    let mut terminal = app.terminal(&admin, "softpos").await;
    let pin = Card::profile("visa-online-pin").unwrap().test_pin();
    let mut sale = Sale::new("visa-online-pin", 4_000);
    sale.pin = Some(pin.to_owned());
    let (_, approved) = app.sale(&mut terminal, sale).await;
    assert_eq!(approved["state"], "APPROVED", "{approved}");
    let (_, declined) = app.sale(&mut terminal, Sale::new("mc-cda", 2_051)).await;
    assert_eq!(declined["state"], "DECLINED", "{declined}");
    let (_, failed) = app.sale(&mut terminal, Sale::new("mc-cda", 2_091)).await;
    assert_eq!(failed["state"], "FAILED", "{failed}");

    let pans = [card_pan("visa-online-pin"), card_pan("mc-cda")];
    let mut scanned = 0;
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("softpos.db") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += bytes.len();
        let text = String::from_utf8_lossy(&bytes);
        for pan in pans {
            assert!(!text.contains(pan), "PAN found in {name}");
        }
        // The PIN as the PIN field of a format 4 block would hold it, or as text.
        assert!(!text.contains(&format!("\"{pin}\"")), "PIN found in {name}");
    }
    assert!(scanned > 0, "no database file scanned");
    let output = app.logs.lock().unwrap().clone();
    let output = String::from_utf8_lossy(&output);
    assert!(!output.is_empty(), "no log output captured");
    for pan in pans {
        assert!(!output.contains(pan), "PAN found in the log output");
    }
}

/// Captures this process's tracing output at DEBUG (each test runs in its own process under
/// nextest, so the global subscriber is this test's).
pub(crate) fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(buffer.clone());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .try_init();
    buffer
}

macro_rules! payments_on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = super::PayApp::spawn($crate::Backend::Sqlite).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = super::PayApp::spawn($crate::Backend::Postgres).await {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_at_rest_or_in_logs_sqlite() {
    if let Some(app) = PayApp::spawn(Backend::Sqlite).await {
        nothing_secret_at_rest_or_in_logs(app).await;
    }
}
