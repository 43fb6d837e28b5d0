//! Transaction Tokens: issuance rules, single use (also under 100 concurrent consumers and
//! across two instances sharing PostgreSQL + Redis), forgeries, JWKS, rotation and
//! introspection.
//!
//! Until the health, threat and key services land, the running server answers "no health
//! check" for every device (see `service::tokens::pending`), so a token can only be issued
//! by a `TokenService` built here, in the test process, over the test server's own
//! database and stores, with the three ports played by the small in-memory models below.
//! The server (a real process) still serves the JWKS, rotation and introspection over the
//! same database. Devices are registered through the API and made `ACTIVE` by a direct
//! UPDATE in test setup, until the key-injection and health flow exists (the lead switches
//! these to the real endpoints after merging).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::domain::DeviceId;
use server::error::{AppError, AppResult};
use server::infra::stores::{MemoryStores, OnceStore, RedisStores};
use server::repository::audit::SqlAuditRepository;
use server::repository::devices::SqlDeviceRepository;
use server::repository::tokens::SqlTokenRepository;
use server::service::RequestContext;
use server::service::audit::AuditService;
use server::service::ports::{
    BlockingThreat, DeviceKeys, DukptHost, DukptScheme, HealthGate, HealthRefusal, HealthVerdict,
    KeySetInfo, Severity, ThreatKind, ThreatReporter, ThreatSignal, TokenConsumer,
    TransactionObservation, ZonePinKey,
};
use server::service::tokens::{TokenPorts, TokenService, TokenSettings};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use uuid::Uuid;

use crate::{Backend, TestApp, TestDevice, expect_error};

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Models the health service's answer per device: a verdict or a refusal, as set by the
/// test (no entry: the device never sent a report).
#[derive(Debug, Default)]
struct HealthModel(Mutex<HashMap<DeviceId, Result<HealthVerdict, HealthRefusal>>>);

#[async_trait]
impl HealthGate for HealthModel {
    async fn fresh_passing_verdict(
        &self,
        device: DeviceId,
    ) -> AppResult<Result<HealthVerdict, HealthRefusal>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&device)
            .cloned()
            .unwrap_or(Err(HealthRefusal::NoHealthCheck)))
    }
}

/// Models the threat service: records every signal; a device is blocked while the test
/// says so.
#[derive(Debug, Default)]
struct ThreatModel {
    signals: Mutex<Vec<ThreatSignal>>,
    blocked: Mutex<HashSet<DeviceId>>,
}

#[async_trait]
impl ThreatReporter for ThreatModel {
    async fn report(&self, signal: ThreatSignal, _ctx: &RequestContext) -> AppResult<()> {
        self.signals.lock().unwrap().push(signal);
        Ok(())
    }
    async fn blocking_threat(&self, device: DeviceId) -> AppResult<Option<BlockingThreat>> {
        Ok(self
            .blocked
            .lock()
            .unwrap()
            .contains(&device)
            .then_some(BlockingThreat {
                threat_id: Uuid::nil(),
                kind: ThreatKind::Rooted,
                severity: Severity::Critical,
            }))
    }
    async fn observe_transaction(
        &self,
        _observation: TransactionObservation,
        _ctx: &RequestContext,
    ) -> AppResult<()> {
        Ok(())
    }
}

impl ThreatModel {
    fn kinds(&self) -> Vec<ThreatKind> {
        self.signals
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.kind)
            .collect()
    }
}

/// Models the key service: every device has key set `KEY_SET`.
#[derive(Debug)]
struct KeyModel;

const KEY_SET: Uuid = Uuid::from_u128(0x5e7);

#[async_trait]
impl DeviceKeys for KeyModel {
    async fn active_key_set(&self, device: DeviceId) -> AppResult<Option<KeySetInfo>> {
        Ok(Some(KeySetInfo {
            id: KEY_SET,
            device_id: device,
            version: 1,
            scheme: DukptScheme::Aes128,
            initial_key_id: vec![0; 8],
            bdk_id: Uuid::nil(),
        }))
    }
    async fn dukpt_host(&self, _key_set: Uuid) -> AppResult<DukptHost> {
        Err(AppError::NotFound("key set"))
    }
    async fn zone_pin_key(&self, _processor: &str) -> AppResult<ZonePinKey> {
        Err(AppError::NotFound("zone PIN key"))
    }
}

/// One in-test "instance": its own pool and its own store connection.
struct Instance {
    tokens: TokenService,
    health: Arc<HealthModel>,
    threats: Arc<ThreatModel>,
    pool: AnyPool,
}

async fn instance(app: &TestApp, ttl: Duration) -> Instance {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .connect(&app.storage.database_url)
        .await
        .expect("pool");
    let stores: (Arc<dyn OnceStore>, Arc<dyn server::infra::stores::EventBus>) =
        match &app.storage.redis {
            Some((url, prefix)) => {
                let redis = Arc::new(RedisStores::connect(url, prefix).await.expect("redis"));
                (redis.clone(), redis)
            }
            None => {
                let memory = Arc::new(MemoryStores::default());
                (memory.clone(), memory)
            }
        };
    let health = Arc::new(HealthModel::default());
    let threats = Arc::new(ThreatModel::default());
    let audit = Arc::new(AuditService::new(
        Arc::new(SqlAuditRepository::new(pool.clone())),
        stores.1,
    ));
    let secret = server::infra::keys::parse_secret(crate::JWT_SECRET).unwrap();
    let tokens = TokenService::new(
        Arc::new(SqlTokenRepository::new(pool.clone())),
        Arc::new(SqlDeviceRepository::new(pool.clone())),
        TokenPorts {
            health: health.clone(),
            threats: threats.clone(),
            keys: Arc::new(KeyModel),
        },
        stores.0,
        audit,
        secret.expose(),
        TokenSettings { ttl },
    );
    Instance {
        tokens,
        health,
        threats,
        pool,
    }
}

fn verdict(device: &TestDevice, score: u8) -> HealthVerdict {
    HealthVerdict {
        report_id: Uuid::new_v4(),
        device_id: device_id(device),
        score,
        passed: true,
        failed_checks: vec![],
        policy_version: 1,
        received_at: server::domain::now_millis(),
        amount_ceiling_minor: Some(50_000),
    }
}

fn device_id(device: &TestDevice) -> DeviceId {
    DeviceId(device.id.parse().unwrap())
}

async fn set_state(pool: &AnyPool, device: &TestDevice, state: &str) {
    // Test setup only: the approve → key injection → health flow does not exist yet.
    sqlx::query("UPDATE devices SET state = $1 WHERE id = $2")
        .bind(state)
        .bind(&device.id)
        .execute(pool)
        .await
        .unwrap();
}

/// A registered device made ACTIVE with a passing verdict in `inst`.
async fn healthy_device(app: &TestApp, admin: &str, inst: &Instance) -> TestDevice {
    let merchant = app.merchant(admin).await;
    let device = app.device(&merchant).await;
    set_state(&inst.pool, &device, "ACTIVE").await;
    inst.health
        .0
        .lock()
        .unwrap()
        .insert(device_id(&device), Ok(verdict(&device, 92)));
    device
}

fn code(result: AppResult<impl std::fmt::Debug>) -> &'static str {
    match result {
        Ok(value) => panic!("expected a refusal, got {value:?}"),
        Err(error) => error.code(),
    }
}

async fn issuance_is_refused_over_http_until_active_and_healthy(app: TestApp) {
    let admin = app.admin_token().await;
    let merchant = app.merchant(&admin).await;
    let device = app.device(&merchant).await;
    let issue = || app.signed(&device, Method::POST, "/api/v1/device/tokens", b"{}");
    expect_error(
        issue().send().await.unwrap(),
        StatusCode::CONFLICT,
        "device_not_active",
    )
    .await;
    let pool = app.db().await;
    set_state(&pool, &device, "ACTIVE").await;
    // No health report was ever sent (and this server has no health service yet).
    expect_error(
        issue().send().await.unwrap(),
        StatusCode::CONFLICT,
        "no_health_check",
    )
    .await;
    set_state(&pool, &device, "SUSPENDED").await;
    expect_error(
        issue().send().await.unwrap(),
        StatusCode::CONFLICT,
        "device_not_active",
    )
    .await;
    set_state(&pool, &device, "REVOKED").await;
    expect_error(
        issue().send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "device_revoked",
    )
    .await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "a refused issuance stored a token");
}

async fn issuance_rules_and_claims(app: TestApp) {
    let admin = app.admin_token().await;
    let inst = instance(&app, Duration::from_secs(300)).await;
    let device = healthy_device(&app, &admin, &inst).await;
    let id = device_id(&device);
    for refusal in [
        HealthRefusal::NoHealthCheck,
        HealthRefusal::HealthCheckFailed,
        HealthRefusal::HealthCheckStale,
    ] {
        inst.health.0.lock().unwrap().insert(id, Err(refusal));
        assert_eq!(code(inst.tokens.issue(id).await), refusal.code());
    }
    let passing = verdict(&device, 92);
    inst.health
        .0
        .lock()
        .unwrap()
        .insert(id, Ok(passing.clone()));
    inst.threats.blocked.lock().unwrap().insert(id);
    assert_eq!(code(inst.tokens.issue(id).await), "blocking_threat");
    inst.threats.blocked.lock().unwrap().clear();

    let issued = inst.tokens.issue(id).await.expect("issued");
    let claims = &issued.claims;
    assert_eq!(claims.sub, id.0);
    assert_eq!(claims.exp - claims.iat, 300);
    assert_eq!(claims.health_report_id, passing.report_id);
    assert_eq!(claims.health_score, 92);
    assert_eq!(claims.amount_ceiling_minor, Some(50_000));
    assert_eq!(claims.key_set_id, Some(KEY_SET));
    assert_eq!(claims.device_state, server::domain::DeviceState::Active);
    // The JWS header names ES256 and the kid.
    let header: Value = serde_json::from_slice(
        &B64URL
            .decode(issued.token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], issued.kid.as_str());
    // Stored as hash + claims, never the token.
    let stored: (String, String) =
        sqlx::query_as("SELECT token_hash, claims FROM tokens WHERE jti = $1")
            .bind(claims.jti.to_string())
            .fetch_one(&inst.pool)
            .await
            .unwrap();
    assert_ne!(stored.0, issued.token);
    assert!(!stored.1.contains(&issued.token));
    let signature = issued.token.rsplit('.').next().unwrap();
    let any: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tokens WHERE token_hash LIKE $1 OR claims LIKE $1",
    )
    .bind(format!("%{signature}%"))
    .fetch_one(&inst.pool)
    .await
    .unwrap();
    assert_eq!(any, 0);
}

async fn consumed_once_then_reuse_is_a_threat(app: TestApp) {
    let admin = app.admin_token().await;
    let inst = instance(&app, Duration::from_secs(300)).await;
    let device = healthy_device(&app, &admin, &inst).await;
    let id = device_id(&device);
    let issued = inst.tokens.issue(id).await.unwrap();
    let ctx = RequestContext::default();

    let auditor = app.token_for_role(&admin, "auditor").await;
    let introspect = |who: String| {
        app.req(
            Method::GET,
            &format!("/api/v1/tokens/{}", issued.claims.jti),
        )
        .bearer_auth(who)
        .send()
    };
    let before: Value = introspect(auditor.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["state"], "issued");
    assert_eq!(before["claims"]["sub"], device.id.as_str());
    assert!(!before.to_string().contains(&issued.token));

    let claims = inst.tokens.consume(&issued.token, id, &ctx).await.unwrap();
    assert_eq!(claims.token_id, issued.claims.jti);
    assert_eq!(claims.key_set_id, Some(KEY_SET));
    assert_eq!(
        code(inst.tokens.consume(&issued.token, id, &ctx).await),
        "token_reused"
    );
    assert_eq!(inst.threats.kinds(), vec![ThreatKind::TokenReuse]);

    let after: Value = introspect(auditor).await.unwrap().json().await.unwrap();
    assert_eq!(after["state"], "consumed");
    assert!(after["consumed_at"].is_string());
    let operator = app.token_for_role(&admin, "operator").await;
    assert_eq!(
        introspect(operator).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let missing = app
        .req(Method::GET, &format!("/api/v1/tokens/{}", Uuid::new_v4()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_error(missing, StatusCode::NOT_FOUND, "not_found").await;
}

/// 100 concurrent consumptions of one token: exactly one wins. With PostgreSQL + Redis
/// the consumers are spread over two instances (each its own pool and Redis connection).
async fn hundred_concurrent_consumptions_one_success(app: TestApp) {
    let admin = app.admin_token().await;
    let first = Arc::new(instance(&app, Duration::from_secs(300)).await);
    let second = if app.backend == Backend::Postgres {
        let other = Arc::new(instance(&app, Duration::from_secs(300)).await);
        Some(other)
    } else {
        None
    };
    let device = healthy_device(&app, &admin, &first).await;
    let id = device_id(&device);
    let issued = first.tokens.issue(id).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..100 {
        let inst = match (&second, n % 2) {
            (Some(other), 1) => other.clone(),
            _ => first.clone(),
        };
        let token = issued.token.clone();
        tasks.push(tokio::spawn(async move {
            inst.tokens
                .consume(&token, id, &RequestContext::default())
                .await
                .map_err(|error| error.code())
        }));
    }
    let mut wins = 0;
    let mut reused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err("token_reused") => reused += 1,
            Err(other) => panic!("unexpected refusal {other}"),
        }
    }
    assert_eq!((wins, reused), (1, 99));
    let consumed: Option<i64> = sqlx::query_scalar("SELECT consumed_at FROM tokens WHERE jti = $1")
        .bind(issued.claims.jti.to_string())
        .fetch_one(&first.pool)
        .await
        .unwrap();
    assert!(consumed.is_some());
    let signals = first.threats.kinds().len()
        + second
            .as_ref()
            .map_or(0, |other| other.threats.kinds().len());
    assert_eq!(
        signals, 99,
        "every losing consumption is a TokenReuse signal"
    );
}

fn forge(token: &str, header: &Value, claims: Option<&Value>, signature: &[u8]) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = claims.map_or_else(
        || parts[1].to_owned(),
        |claims| B64URL.encode(claims.to_string()),
    );
    format!(
        "{}.{payload}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(signature)
    )
}

async fn forged_expired_and_foreign_tokens_are_refused(app: TestApp) {
    let admin = app.admin_token().await;
    let inst = instance(&app, Duration::from_secs(300)).await;
    let device = healthy_device(&app, &admin, &inst).await;
    let id = device_id(&device);
    let ctx = RequestContext::default();
    let issued = inst.tokens.issue(id).await.unwrap();
    let parts: Vec<&str> = issued.token.split('.').collect();
    let kid = issued.kid.clone();
    let es256 = json!({"alg": "ES256", "typ": "JWT", "kid": kid});

    // Wrong key: signed by a key the server never had, under the real kid.
    let rogue = crate::new_device_key();
    let input = format!("{}.{}", B64URL.encode(es256.to_string()), parts[1]);
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&rogue, input.as_bytes());
    let wrong_key = format!("{input}.{}", B64URL.encode(sig.to_bytes()));
    // alg: none.
    let none = forge(
        &issued.token,
        &json!({"alg": "none", "kid": kid}),
        None,
        b"",
    );
    // HS256 keyed with the server's public key (from the JWKS).
    let jwks: Value = app
        .req(Method::GET, "/api/v1/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .expect("issuing key published");
    let mut public = vec![4u8];
    public.extend(B64URL.decode(jwk["x"].as_str().unwrap()).unwrap());
    public.extend(B64URL.decode(jwk["y"].as_str().unwrap()).unwrap());
    let hs_header = B64URL.encode(json!({"alg": "HS256", "kid": kid}).to_string());
    let hs_input = format!("{hs_header}.{}", parts[1]);
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(&public).unwrap();
    hmac::Mac::update(&mut mac, hs_input.as_bytes());
    let hs256 = format!(
        "{hs_input}.{}",
        B64URL.encode(hmac::Mac::finalize(mac).into_bytes())
    );
    // Modified claims (a higher ceiling) under the original signature.
    let mut claims: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    claims["amount_ceiling_minor"] = json!(99_999_999);
    let modified = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(claims.to_string()),
        parts[2]
    );
    // Unknown kid.
    let unknown_kid = format!(
        "{}.{}.{}",
        B64URL.encode(json!({"alg": "ES256", "kid": "nope"}).to_string()),
        parts[1],
        parts[2]
    );
    for (what, token) in [
        ("wrong key", wrong_key),
        ("alg none", none),
        ("HS256 with the public key", hs256),
        ("modified claims", modified),
        ("unknown kid", unknown_kid),
        ("garbage", "a.b.c".to_owned()),
    ] {
        let result = inst.tokens.consume(&token, id, &ctx).await;
        assert_eq!(code(result), "token_invalid", "{what}");
    }

    // Another device presents it: refused and a forgery signal against the presenter.
    let other = healthy_device(&app, &admin, &inst).await;
    assert_eq!(
        code(
            inst.tokens
                .consume(&issued.token, device_id(&other), &ctx)
                .await
        ),
        "token_wrong_device"
    );
    let signals = inst.threats.signals.lock().unwrap().clone();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].kind, ThreatKind::TokenForgery);
    assert_eq!(signals[0].device_id, device_id(&other));

    // Suspended device: its own valid token is refused.
    set_state(&inst.pool, &device, "SUSPENDED").await;
    assert_eq!(
        code(inst.tokens.consume(&issued.token, id, &ctx).await),
        "device_not_active"
    );
    assert_eq!(code(inst.tokens.issue(id).await), "device_not_active");
    set_state(&inst.pool, &device, "REVOKED").await;
    assert_eq!(
        code(inst.tokens.consume(&issued.token, id, &ctx).await),
        "device_not_active"
    );
    // Test setup only: back to ACTIVE to show the refusals above did not spend the token.
    set_state(&inst.pool, &device, "ACTIVE").await;
    // None of the refusals spent it.
    inst.tokens.consume(&issued.token, id, &ctx).await.unwrap();

    // Expired: a one-second token, presented after it ran out.
    let short = instance(&app, Duration::from_secs(1)).await;
    short
        .health
        .0
        .lock()
        .unwrap()
        .insert(id, Ok(verdict(&device, 90)));
    let brief = short.tokens.issue(id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        code(short.tokens.consume(&brief.token, id, &ctx).await),
        "token_expired"
    );
}

async fn jwks_verifies_tokens_across_rotation(app: TestApp) {
    let admin = app.admin_token().await;
    let inst = instance(&app, Duration::from_secs(300)).await;
    let device = healthy_device(&app, &admin, &inst).await;
    let id = device_id(&device);
    let before = inst.tokens.issue(id).await.unwrap();

    let jwks = |app: &TestApp| {
        let request = app.req(Method::GET, "/api/v1/.well-known/jwks.json").send();
        async move {
            let set: jsonwebtoken::jwk::JwkSet = request.await.unwrap().json().await.unwrap();
            set
        }
    };
    let verify = |set: &jsonwebtoken::jwk::JwkSet, token: &str| {
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = set
            .find(header.kid.as_deref().unwrap())
            .expect("kid published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .expect("verifies with the published key")
            .claims
    };
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 1);
    let claims = verify(&set, &before.token);
    assert_eq!(claims["jti"], before.claims.jti.to_string());

    // Rotation: security officers and admins only; audited.
    let operator = app.token_for_role(&admin, "operator").await;
    let rotate = |who: String| {
        app.req(Method::POST, "/api/v1/tokens/keys/rotate")
            .bearer_auth(who)
            .send()
    };
    assert_eq!(
        rotate(operator).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let officer = app.token_for_role(&admin, "security_officer").await;
    let res = rotate(officer).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let rotation: Value = res.json().await.unwrap();
    assert_eq!(rotation["retired"], 1);
    assert_ne!(rotation["kid"], before.kid.as_str());

    // Both keys published: the old one until its tokens expired.
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 2);
    verify(&set, &before.token);
    // A fresh instance signs with the new key; the old token still consumes.
    let fresh = instance(&app, Duration::from_secs(300)).await;
    fresh
        .health
        .0
        .lock()
        .unwrap()
        .insert(id, Ok(verdict(&device, 95)));
    let after = fresh.tokens.issue(id).await.unwrap();
    assert_eq!(after.kid, rotation["kid"].as_str().unwrap());
    verify(&set, &after.token);
    let ctx = RequestContext::default();
    fresh.tokens.consume(&before.token, id, &ctx).await.unwrap();
    fresh.tokens.consume(&after.token, id, &ctx).await.unwrap();

    let audit: Value = app
        .req(
            Method::GET,
            "/api/v1/audit/records?action=token.signing_key_rotated",
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains("token.signing_key_rotated"),
        "rotation not audited: {audit}"
    );
    // The private key is stored only wrapped.
    let wrapped: Vec<String> = sqlx::query_scalar("SELECT private_wrapped FROM token_signing_keys")
        .fetch_all(&inst.pool)
        .await
        .unwrap();
    assert_eq!(wrapped.len(), 2);
}

crate::on_both_backends!(
    issuance_is_refused_over_http_until_active_and_healthy,
    issuance_rules_and_claims,
    consumed_once_then_reuse_is_a_threat,
    hundred_concurrent_consumptions_one_success,
    forged_expired_and_foreign_tokens_are_refused,
    jwks_verifies_tokens_across_rotation,
);
