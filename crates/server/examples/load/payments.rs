//! Payments and tokens load modes, on the real path: a release `softpos-server` process on
//! loopback, every device enrolled through HTTP as a terminal would, nothing stubbed.
//!
//! Setup (untimed), as an operator and a terminal fleet would do it:
//! 1. The admin generates and activates an AES-128 BDK and the `issuer-sim` connection's
//!    AES zone PIN key (format 4) through the key API, and raises the velocity rule of the
//!    security policy (default: 30 sales per device per minute, which a benchmark device
//!    passes in a second) through the policy API; both audited by the server.
//! 2. Per worker, one device: challenge → register (software attestation, allowed by
//!    `ALLOW_SOFTWARE_ATTESTATION`) → admin approval → signed health report → key request
//!    with an ephemeral P-256 key → ECDH + HKDF-SHA256 KEK → TR-31 version D unwrap by
//!    `payment-crypto` → KCV check → confirmation → activation (`ACTIVE`). The device's AES
//!    DUKPT originator is loaded from the unwrapped initial key.
//!
//! Timed operation (`--payments`): `POST /api/v1/device/tokens` (token issued after the
//! health verdict, threat and key-set checks) then `POST /api/v1/device/transactions` with
//! that token: token consumed, KSN compare-and-set, AES DUKPT card-data decryption, PIN
//! translation to the zone PIN key, ARQC and PIN verification by the issuer simulator,
//! persistence. Printed: approved sales/s, latency of the whole operation and of the sale
//! request alone (p50/p99). `--tokens`: the timed operation is the token request alone
//! (consumption is part of every sale above).
//!
//! The EMV data comes from one tap of the `visa-online-pin` virtual card through the real
//! kernel; card data and PIN block are encrypted afresh for every sale under its own KSN.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use emv_cards::Card;
use emv_kernel::{Date, OutcomeKind, Step, Transaction, TransactionParams};
use p256::ecdsa::SigningKey;
use payment_crypto::dukpt::aes::{InitialKeyId, Originator, WorkingKeyUsage};
use payment_crypto::kcv::{KcvMethod, kcv};
use payment_crypto::pinblock::{ClearPin, Pan, PinBlockFormat};
use payment_crypto::{KeyAlgorithm, RandomSource, SecretKey};
use serde_json::{Value, json};

use super::{ADMIN_PASSWORD, clean_report, percentile, sign_b64, signed_request};

const PROCESSOR: &str = "issuer-sim";
const CARD: &str = "visa-online-pin";
const AMOUNT: u64 = 4_000;
/// HKDF salt of the key-injection KEK (the server's `RKI_SALT`, from its API documentation).
const RKI_SALT: &[u8] = b"SUNBAY-SOFTPOS-RKI-KEK-V1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

struct OsRandom;
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        getrandom::fill(buf).expect("random");
    }
}

fn new_p256() -> SigningKey {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("random");
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            break key;
        }
    }
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

/// A running `softpos-server` child process (killed on drop) and, for PostgreSQL, its
/// throw-away database.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pg: Option<(sqlx::AnyPool, String)>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the release server next to this example, on SQLite (`shared == false`) or on
    /// a fresh PostgreSQL database plus Redis with a fresh key prefix.
    pub(crate) async fn start(shared: bool) -> Self {
        let exe = std::env::current_exe()
            .expect("exe")
            .parent()
            .and_then(|examples| examples.parent())
            .map(|release| release.join("softpos-server"))
            .expect("server path");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut command = Command::new(&exe);
        command
            .args(["--listen-addr", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("SOFTPOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("ALLOW_SOFTWARE_ATTESTATION", "true")
            .env(
                "RUST_LOG",
                std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .env(
                "DATABASE_MAX_CONNECTIONS",
                std::env::var("BENCH_DB_CONNECTIONS").unwrap_or_else(|_| "16".to_owned()),
            )
            .stdout(Stdio::piped());
        let mut pg = None;
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
            command
                .env(
                    "DATABASE_URL",
                    format!("postgres://postgres@127.0.0.1:5432/{name}"),
                )
                .env("REDIS_URL", "redis://127.0.0.1:6379")
                .env("REDIS_KEY_PREFIX", format!("{name}:"));
            pg = Some((admin, name));
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
        // With BENCH_RUST_LOG the server's log lines are worth reading: pass them on.
        let echo = std::env::var_os("BENCH_RUST_LOG").is_some();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if echo {
                    eprintln!("{line}");
                }
            }
        });
        println!(
            "softpos-server (release, separate process) at {base} on {}",
            if shared {
                "PostgreSQL + Redis"
            } else {
                "SQLite + in-process stores"
            }
        );
        Self {
            child,
            base,
            pg,
            _dir: dir,
        }
    }

    /// Stops the process and drops the PostgreSQL database.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((admin, name)) = self.pg.take() {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
        }
    }
}

async fn json_ok(res: reqwest::Response, what: &str) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{what}: {status} {body}");
    body
}

async fn admin_post(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    path: &str,
    body: Value,
) -> Value {
    json_ok(
        client
            .post(format!("{base}{path}"))
            .bearer_auth(admin)
            .json(&body)
            .send()
            .await
            .expect(path),
        path,
    )
    .await
}

/// A signed device request that must succeed.
async fn device_post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    device: &str,
    key: &SigningKey,
    body: Vec<u8>,
) -> Value {
    json_ok(
        signed_request(client, base, path, device, key, body)
            .send()
            .await
            .expect(path),
        path,
    )
    .await
}

/// Logs in as admin, creates the keys and relaxes the velocity rule; returns the admin token.
async fn operator_setup(client: &reqwest::Client, base: &str) -> (String, String) {
    let login = json_ok(
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send()
            .await
            .expect("login"),
        "login",
    )
    .await;
    let admin = login["access_token"].as_str().expect("token").to_owned();
    for spec in [
        json!({ "name": "bench BDK", "usage": "bdk", "algorithm": "aes128" }),
        json!({ "name": "bench ZPK", "usage": "zpk", "algorithm": "aes128",
                "processor": PROCESSOR, "pin_format": 4 }),
    ] {
        let key = admin_post(client, base, &admin, "/api/v1/keys/generate", spec).await;
        let path = format!(
            "/api/v1/keys/{}/activate",
            key["id"].as_str().expect("key id")
        );
        admin_post(client, base, &admin, &path, json!({})).await;
    }
    let current = json_ok(
        client
            .get(format!("{base}/api/v1/security-policy"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("policy"),
        "policy",
    )
    .await;
    let mut policy = current["policy"].clone();
    policy["threat_rules"]["velocity"]["max_transactions"] = json!(100_000);
    admin_post(
        client,
        base,
        &admin,
        "/api/v1/security-policy",
        json!({ "based_on_version": current["version"], "policy": policy,
                "comment": "load benchmark: a benchmark device sells far faster than a shop" }),
    )
    .await;
    let merchant = admin_post(
        client,
        base,
        &admin,
        "/api/v1/merchants",
        json!({ "name": "Bench shop", "country": "DE", "mcc": "5411" }),
    )
    .await;
    (admin, merchant["id"].as_str().expect("merchant").to_owned())
}

struct Worker {
    device: String,
    key: SigningKey,
    originator: Originator,
}

/// Enrols one device the way a terminal does (see the module doc).
async fn enrol(client: &reqwest::Client, base: &str, admin: &str, merchant: &str) -> Worker {
    let key = new_p256();
    let challenge = json_ok(
        client
            .post(format!("{base}/api/v1/devices/challenge"))
            .send()
            .await
            .expect("challenge"),
        "challenge",
    )
    .await["challenge"]
        .as_str()
        .expect("challenge")
        .to_owned();
    let public_key = B64.encode(key.verifying_key().to_sec1_bytes());
    let device = json_ok(
        client
            .post(format!("{base}/api/v1/devices/register"))
            .json(&json!({
                "challenge": challenge,
                "public_key": public_key,
                "facts": {
                    "model": "Bench", "os_version": "14", "security_patch": "2026-10-05",
                    "app_package": "com.sunbay.softpos", "app_version": "1.2.0",
                    "app_signing_digest": "ab".repeat(32), "tee": true, "strongbox": false, "nfc": true
                },
                "mode": "softpos",
                "merchant_id": merchant,
                "attestation": {
                    "format": "software",
                    "signature": sign_b64(&key, &format!("softpos-device-registration-v1\n{challenge}\n{public_key}")),
                },
            }))
            .send()
            .await
            .expect("register"),
        "register",
    )
    .await;
    let id = device["id"].as_str().expect("device id").to_owned();
    let approve = format!("/api/v1/devices/{id}/approve");
    admin_post(
        client,
        base,
        admin,
        &approve,
        json!({ "reason": "benchmark fleet" }),
    )
    .await;
    health_report(client, base, &id, &key).await;

    // Remote key injection: ECDH with an ephemeral key, HKDF-SHA256, TR-31 D.
    let ephemeral = p256::SecretKey::from_slice(new_p256().to_bytes().as_slice()).expect("key");
    let ephemeral_public = ephemeral.public_key().to_sec1_bytes();
    let request =
        serde_json::to_vec(&json!({ "ephemeral_public_key": B64.encode(&ephemeral_public) }))
            .expect("json");
    let injection = device_post(client, base, "/api/v1/device/keys", &id, &key, request).await;
    assert_eq!(
        injection["scheme"], "aes128",
        "the softpos profile's default"
    );
    let server_public = p256::PublicKey::from_sec1_bytes(
        &B64.decode(injection["server_public_key"].as_str().expect("server key"))
            .expect("base64"),
    )
    .expect("server public key");
    let shared =
        p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), server_public.as_affine());
    let key_set_id = injection["key_set_id"]
        .as_str()
        .expect("key set")
        .to_owned();
    let mut info = format!("softpos-rki-v1|{id}|{key_set_id}|").into_bytes();
    info.extend_from_slice(&server_public.to_sec1_bytes());
    info.extend_from_slice(&ephemeral_public);
    let mut okm = zeroize::Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<sha2::Sha256>::new(Some(RKI_SALT), shared.raw_secret_bytes().as_slice())
        .expand(&info, okm.as_mut_slice())
        .expect("HKDF length");
    let kek = SecretKey::aes(okm.as_slice()).expect("AES-256 KEK");
    let (_, initial_key) =
        payment_crypto::tr31::unwrap(&kek, injection["key_block"].as_str().expect("block"))
            .expect("the key block unwraps under the ECDH KEK");
    let device_kcv = kcv(&initial_key, KcvMethod::Cmac).to_string();
    assert_eq!(
        device_kcv.to_uppercase(),
        injection["kcv"].as_str().expect("kcv").to_uppercase(),
        "KCV"
    );
    let confirm =
        serde_json::to_vec(&json!({ "key_set_id": key_set_id, "kcv": device_kcv })).expect("json");
    let mut activation = device_post(
        client,
        base,
        "/api/v1/device/keys/confirm",
        &id,
        &key,
        confirm,
    )
    .await;
    if activation["device_state"] != "ACTIVE" {
        health_report(client, base, &id, &key).await;
        activation = device_post(
            client,
            base,
            "/api/v1/device/keys/activate",
            &id,
            &key,
            Vec::new(),
        )
        .await;
    }
    assert_eq!(activation["device_state"], "ACTIVE", "{activation}");
    let ikid = hex::decode(injection["initial_key_id"].as_str().expect("ikid")).expect("hex");
    let ikid = InitialKeyId::from_slice(&ikid).expect("initial key id");
    Worker {
        device: id,
        key,
        originator: Originator::load_initial_key(&initial_key, ikid).expect("originator"),
    }
}

async fn health_report(client: &reqwest::Client, base: &str, device: &str, key: &SigningKey) {
    let nonce = device_post(
        client,
        base,
        "/api/v1/device/health/nonce",
        device,
        key,
        Vec::new(),
    )
    .await["nonce"]
        .as_str()
        .expect("nonce")
        .to_owned();
    let report =
        serde_json::to_vec(&json!({ "nonce": nonce, "report": clean_report() })).expect("json");
    let verdict = device_post(client, base, "/api/v1/device/health", device, key, report).await;
    assert_eq!(verdict["passed"], true, "clean report: {verdict}");
}

/// The sale body for the next KSN of `worker`.
fn sale_body(
    worker: &mut Worker,
    token: &str,
    emv: &str,
    card_json: &str,
    pan: &str,
    pin: &str,
) -> Vec<u8> {
    let ksn = worker.originator.ksn().expect("ksn");
    let data_key = worker
        .originator
        .derive_working_key(WorkingKeyUsage::DataEncryptionEncrypt, KeyAlgorithm::Aes128)
        .expect("data key");
    let pin_key = worker
        .originator
        .derive_working_key(WorkingKeyUsage::PinEncryption, KeyAlgorithm::Aes128)
        .expect("pin key");
    worker.originator.advance().expect("advance");
    let card_data = payment_crypto::data::encrypt_with_zero_iv(
        &data_key,
        payment_crypto::data::Padding::Iso9797Method2,
        card_json.as_bytes(),
    )
    .expect("encrypt");
    let pin_block = payment_crypto::pinblock::encrypt_pin(
        &pin_key,
        PinBlockFormat::Iso4,
        &ClearPin::new(pin).expect("pin"),
        Some(&Pan::new(pan).expect("pan")),
        &mut OsRandom,
    )
    .expect("pin block");
    serde_json::to_vec(&json!({
        "token": token,
        "amount_minor": AMOUNT,
        "currency": "USD",
        "emv_data": emv,
        "card_data": hex::encode_upper(&card_data),
        "pin_block": hex::encode_upper(pin_block.as_bytes()),
        "ksn": hex::encode_upper(ksn.to_bytes()),
    }))
    .expect("json")
}

/// Why an answer is not the expected one: `token:<code>` / `sale:<code or state>`.
async fn failure(step: &str, res: Result<reqwest::Response, reqwest::Error>) -> String {
    match res {
        Err(error) => format!("{step}:transport ({error})"),
        Ok(res) => {
            let status = res.status();
            let body = res.json::<Value>().await.unwrap_or_default();
            let code = body["code"].as_str().or(body["decline_reason"].as_str());
            format!("{step}:{} {}", status.as_u16(), code.unwrap_or("-"))
        }
    }
}

async fn issue_token(
    client: &reqwest::Client,
    base: &str,
    worker: &Worker,
) -> Result<String, String> {
    let res = signed_request(
        client,
        base,
        "/api/v1/device/tokens",
        &worker.device,
        &worker.key,
        Vec::new(),
    )
    .send()
    .await;
    match res {
        Ok(res) if res.status() == reqwest::StatusCode::CREATED => res
            .json::<Value>()
            .await
            .ok()
            .and_then(|body| body["token"].as_str().map(str::to_owned))
            .ok_or_else(|| "token:unreadable answer".to_owned()),
        other => Err(failure("token", other).await),
    }
}

#[derive(Default)]
struct Tally {
    ops: Vec<Duration>,
    sales: Vec<Duration>,
    ok: u64,
    failed: u64,
    reasons: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn fail(&mut self, reason: String) {
        self.failed += 1;
        *self.reasons.entry(reason).or_default() += 1;
    }
}

/// Runs `--payments` (`tokens_only == false`) or `--tokens` and prints the figures.
pub(crate) async fn run(seconds: u64, concurrency: u64, shared: bool, tokens_only: bool) {
    let server = Server::start(shared).await;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let (admin, merchant) = operator_setup(&client, &base).await;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        workers.push(enrol(&client, &base, &admin, &merchant).await);
    }
    println!("{concurrency} devices enrolled over HTTP (approve, health, keys, KCV, ACTIVE)");
    let emv = Arc::new(hex::encode_upper(tap()));
    let card = Card::profile(CARD).expect("card");
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
        let emv = emv.clone();
        let card_json = card_json.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let t = Instant::now();
                let token = match issue_token(&client, &base, &worker).await {
                    Ok(token) => token,
                    Err(reason) => {
                        tally.fail(reason);
                        tally.ops.push(t.elapsed());
                        continue;
                    }
                };
                if tokens_only {
                    tally.ok += 1;
                    tally.ops.push(t.elapsed());
                    continue;
                }
                let body = sale_body(&mut worker, &token, &emv, &card_json, pan, pin);
                let request = signed_request(
                    &client,
                    &base,
                    "/api/v1/device/transactions",
                    &worker.device,
                    &worker.key,
                    body,
                )
                .header("idempotency-key", uuid::Uuid::new_v4().to_string());
                let s = Instant::now();
                let outcome = match request.send().await {
                    Ok(res) if res.status() == reqwest::StatusCode::CREATED => {
                        match res.json::<Value>().await {
                            Ok(body) if body["state"] == "APPROVED" => Ok(()),
                            Ok(body) => Err(format!(
                                "sale:{} {}",
                                body["state"].as_str().unwrap_or("-"),
                                body["decline_reason"].as_str().unwrap_or("-")
                            )),
                            Err(_) => Err("sale:unreadable answer".to_owned()),
                        }
                    }
                    other => Err(failure("sale", other).await),
                };
                tally.sales.push(s.elapsed());
                tally.ops.push(t.elapsed());
                match outcome {
                    Ok(()) => tally.ok += 1,
                    Err(reason) => tally.fail(reason),
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.expect("worker");
        all.ops.extend(tally.ops);
        all.sales.extend(tally.sales);
        all.ok += tally.ok;
        all.failed += tally.failed;
        for (reason, count) in tally.reasons {
            *all.reasons.entry(reason).or_default() += count;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.ops.sort();
    all.sales.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if tokens_only {
        println!(
            "{:<34} {:>8.0} tokens/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} issued, {} refused, concurrency {concurrency})",
            "tokens issued (HTTP, real gate)",
            all.ok as f64 / elapsed,
            ms(percentile(&all.ops, 0.50)),
            ms(percentile(&all.ops, 0.99)),
            all.ok,
            all.failed
        );
    } else {
        println!(
            "{:<34} {:>8.0} auth/s   token+sale p50 {:>7.2} ms p99 {:>7.2} ms   sale p50 {:>7.2} ms p99 {:>7.2} ms   ({} approved, {} not, concurrency {concurrency})",
            "authorizations (token, PIN, ARQC)",
            all.ok as f64 / elapsed,
            ms(percentile(&all.ops, 0.50)),
            ms(percentile(&all.ops, 0.99)),
            ms(percentile(&all.sales, 0.50)),
            ms(percentile(&all.sales, 0.99)),
            all.ok,
            all.failed
        );
    }
    for (reason, count) in &all.reasons {
        println!("    not approved: {count} × {reason}");
    }
    server.stop().await;
}
