//! Key-service benchmark (not a test): what one payment costs the key store, measured in
//! process against a release build: a sale's `active_key_set` then `dukpt_host` (BDK lookup
//! and AES-GCM unwrap when not cached, DUKPT host setup) plus the PIN working-key derivation
//! for a fresh KSN, and `zone_pin_key` (lookup and unwrap), with p50/p99 latency.
//!
//! ```sh
//! cargo build --release -p server --example keys_bench
//! target/release/examples/keys_bench                   # SQLite (temporary file)
//! target/release/examples/keys_bench --postgres        # PostgreSQL on 127.0.0.1 (temporary database)
//! ```
//!
//! Options: `--seconds N` (default 5) per scenario, `--concurrency N` (default 16).
//!
//! Measured 2026-11-26 on the shared 2-core build machine (other builds running), 16 callers,
//! before `dukpt_host` took the key set read by `active_key_set` instead of reading it again:
//! SQLite: `dukpt_host` + PIN key 12,600 ops/s (p50 1.0 ms, p99 6.3 ms), `zone_pin_key` 22,800
//! ops/s (p50 0.6 ms, p99 2.5 ms), `active_key_set` 26,400 ops/s (p50 0.4 ms, p99 4.4 ms);
//! PostgreSQL: 2,900 ops/s (p50 4.3 ms, p99 17.5 ms), 5,100 ops/s (p50 2.0 ms, p99 13.5 ms),
//! 6,400 ops/s (p50 1.5 ms, p99 12.7 ms).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use payment_crypto::KeyAlgorithm;
use payment_crypto::dukpt::aes::{InitialKeyId, Ksn, WorkingKeyUsage};
use server::domain::{DeviceId, Principal};
use server::infra::keys::parse_secret;
use server::infra::stores::Stores;
use server::repository::audit::SqlAuditRepository;
use server::repository::devices::SqlDeviceRepository;
use server::repository::keys::SqlKeyRepository;
use server::repository::merchants::SqlMerchantRepository;
use server::service::RequestContext;
use server::service::audit::AuditService;
use server::service::devices::{DevicePolicy, DeviceService};
use server::service::keys::KeyService;
use server::service::keys::custody::KeySpec;
use server::service::keys::model::{KeyState, KeyUsageKind};
use server::service::keys::store::{MasterKeyring, SealedKeyStore};
use server::service::ports::{DeviceKeys, DukptHost};

fn arg_value(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn run<F, Fut>(name: &str, seconds: u64, concurrency: u64, op: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                op().await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{name:<40} {:>9.0} ops/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} ops)",
        all.len() as f64 / elapsed,
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.len()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let postgres = std::env::args().any(|a| a == "--postgres");
    let seconds = arg_value("--seconds", 5);
    let concurrency = arg_value("--concurrency", 16);
    let dir = tempfile::tempdir()?;
    let pg_name = format!("keys_bench_{}", uuid::Uuid::new_v4().simple());
    let url = if postgres {
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{pg_name}\""
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        format!("postgres://postgres@127.0.0.1:5432/{pg_name}")
    } else {
        format!("sqlite://{}/bench.db?mode=rwc", dir.path().display())
    };
    let db = server::infra::db::connect(&url, 16).await?;
    let stores = Stores::memory();
    let audit = Arc::new(AuditService::new(
        Arc::new(SqlAuditRepository::new(&db)),
        stores.events.clone(),
    ));
    let devices = Arc::new(DeviceService::new(
        Arc::new(SqlDeviceRepository::new(&db)),
        Arc::new(SqlMerchantRepository::new(&db)),
        stores.once.clone(),
        stores.limiter.clone(),
        audit.clone(),
        &parse_secret(&"ab".repeat(32))?,
        DevicePolicy {
            allow_software_attestation: true,
        },
    ));
    let repo = Arc::new(SqlKeyRepository::new(&db));
    let keyring = Arc::new(MasterKeyring::parse(&"5a".repeat(32))?);
    let keys = Arc::new(KeyService::new(
        repo.clone(),
        Arc::new(SealedKeyStore::new(keyring, repo)),
        devices.clone(),
        audit,
    ));
    let ctx = RequestContext::default();
    let admin = Principal::System {
        component: "keys_bench",
    };

    // One merchant and one approved device, written directly: registration is not measured.
    let merchant = uuid::Uuid::new_v4().to_string();
    let device = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO merchants (id, name, country, mcc, status, created_at, updated_at) \
         VALUES ($1, 'bench', 'DE', '5411', 'active', 0, 0)",
    )
    .bind(&merchant)
    .execute(&db.writer)
    .await?;
    sqlx::query(
        "INSERT INTO devices (id, merchant_id, public_key, key_fingerprint, mode, state, model, \
         facts, attestation_format, attestation_notes, created_at, updated_at) \
         VALUES ($1, $2, 'none', $3, 'softpos', 'APPROVED', 'bench', $4, 'software', '[]', 0, 0)",
    )
    .bind(device.to_string())
    .bind(&merchant)
    .bind(device.simple().to_string())
    .bind(
        serde_json::json!({
            "model": "bench", "os_version": "14", "security_patch": "2026-10-05",
            "app_package": "com.sunbay.softpos", "app_version": "1.0.0",
            "app_signing_digest": "ab".repeat(32), "tee": true, "strongbox": false,
            "nfc": true, "imei": null,
        })
        .to_string(),
    )
    .execute(&db.writer)
    .await?;

    let spec = |usage, algorithm: &str| KeySpec {
        name: format!("bench {algorithm}"),
        usage,
        algorithm: algorithm.to_owned(),
        processor: (usage == KeyUsageKind::Zpk).then(|| "bench-acquirer".to_owned()),
        pin_format: (usage == KeyUsageKind::Zpk).then_some(4),
    };
    for (usage, algorithm) in [(KeyUsageKind::Bdk, "aes128"), (KeyUsageKind::Zpk, "aes128")] {
        let key = keys.generate(&admin, &spec(usage, algorithm), &ctx).await?;
        keys.transition(&admin, key.id, KeyState::Active, &ctx)
            .await?;
    }
    let device_row = devices.get(DeviceId(device)).await?;
    let ephemeral = p256::SecretKey::from_slice(&[7u8; 32])?;
    let public =
        base64::engine::general_purpose::STANDARD.encode(ephemeral.public_key().to_sec1_bytes());
    let injection = keys.request_keys(&device_row, &public, &ctx).await?;
    let key_set = injection.key_set.id;
    keys.confirm_keys(&device_row, key_set, &injection.key_set.kcv, &ctx)
        .await?;
    let initial_key_id = InitialKeyId::from_slice(&injection.key_set.initial_key_id)?;

    println!(
        "backend {}, {concurrency} concurrent callers, {seconds} s per scenario",
        db.backend.as_str()
    );
    let counter = Arc::new(AtomicU32::new(0));
    {
        let keys = keys.clone();
        let counter = counter.clone();
        run(
            "active_key_set + dukpt_host + PIN key derivation",
            seconds,
            concurrency,
            move || {
                let keys = keys.clone();
                let counter = counter.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::Relaxed) % 0xFFFF + 1;
                    // As a sale: the device's active set, then its host.
                    let Ok(Some(info)) = keys.active_key_set(DeviceId(device)).await else {
                        panic!("active_key_set failed");
                    };
                    assert_eq!(info.id, key_set);
                    let Ok(DukptHost::Aes(host)) = keys.dukpt_host(&info).await else {
                        panic!("dukpt_host failed");
                    };
                    // Counters with few one-bits, as a device walks them.
                    let ksn = Ksn::new(initial_key_id, n.reverse_bits() >> 16 | 1);
                    if let Ok(key) = host.derive_working_key(
                        &ksn,
                        WorkingKeyUsage::PinEncryption,
                        KeyAlgorithm::Aes128,
                    ) {
                        std::hint::black_box(key);
                    }
                }
            },
        )
        .await;
    }
    {
        let keys = keys.clone();
        run("zone_pin_key", seconds, concurrency, move || {
            let keys = keys.clone();
            async move {
                let key = keys.zone_pin_key("bench-acquirer").await.expect("zpk");
                std::hint::black_box(key);
            }
        })
        .await;
    }
    {
        let keys = keys.clone();
        run("active_key_set", seconds, concurrency, move || {
            let keys = keys.clone();
            async move {
                let set = keys.active_key_set(DeviceId(device)).await.expect("set");
                std::hint::black_box(set);
            }
        })
        .await;
    }
    db.close().await;
    if postgres {
        let admin = sqlx::AnyPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{pg_name}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
    }
    Ok(())
}
