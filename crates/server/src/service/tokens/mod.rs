//! Transaction Tokens: single-use ES256 JWS that let an `ACTIVE`, healthy device start one
//! payment; their signing keys (rotation, JWKS); consumption; introspection.
//!
//! Issuance asks, in this order: is the device `ACTIVE` (`device_not_active`), does it
//! have a fresh passing health verdict ([`HealthGate`]: `no_health_check`,
//! `health_check_failed`, `health_check_stale`), and is no open threat blocking it
//! ([`ThreatReporter::blocking_threat`]: `blocking_threat`)? Each refusal is a 409 whose
//! code names the rule. The claims carry the verdict (report id, score, amount ceiling),
//! the device state and the active key set ([`DeviceKeys`]).
//!
//! Single use, across instances — two guards, one authority:
//! 1. `OnceStore::claim("token:<jti>")` (Redis `SET NX PX` or the in-process map), TTL =
//!    remaining lifetime + a minute: a fast filter that turns a replay storm away before
//!    it reaches the database;
//! 2. `UPDATE tokens SET consumed_at = $1 WHERE jti = $2 AND consumed_at IS NULL` with
//!    rows-affected = 1: **the authority**. It is durable (a Redis flush, restart or
//!    failover cannot resurrect a spent token; the stores are allowed to be volatile) and
//!    atomic in both SQLite and PostgreSQL, so exactly one caller on any instance wins even
//!    if the filter was lost. A claim won in step 1 whose UPDATE then fails leaves the
//!    token burned: the failure mode is "refused", never "used twice".
//!
//! A second use is `token_reused` (409) and a [`ThreatKind::TokenReuse`] signal; a token
//! with another device's `sub` is `token_wrong_device` (422) and a
//! [`ThreatKind::TokenForgery`] signal; expired `token_expired` (422); a bad signature,
//! unknown `kid`, any `alg` but ES256 or altered claims `token_invalid` (422); a device no
//! longer `ACTIVE` `device_not_active` (409).
//!
//! Keys: P-256 pairs with a random `kid`; the private scalar is stored only wrapped by the
//! key store (`service::keys::store`, label `token-key:<kid>`), so master-key rotation
//! re-wraps it with every other key. Each instance caches the keys for [`KEY_CACHE_TTL`]; a rotated-out key
//! stays published for the token lifetime plus that cache age plus a minute, so every
//! token any instance signed with it can still be verified by a JWKS client.

pub mod jws;
pub mod wrap;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use p256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;
use utoipa::ToSchema;
use uuid::Uuid;

use super::RequestContext;
use super::audit::AuditService;
use super::ports::{
    DeviceKeys, HealthGate, Severity, ThreatKind, ThreatReporter, ThreatSignal, TokenClaims,
    TokenConsumer,
};
use crate::domain::{
    Device, DeviceId, DeviceState, NewAuditRecord, Principal, UnixMillis, now_millis,
};
use crate::error::{AppError, AppResult};
use crate::infra::ecdsa::{P256Signer, P256Verifier};
use crate::infra::keys::{random_bytes, random_token};
use crate::infra::stores::OnceStore;
use crate::repository::tokens::{SigningKeyRow, TokenRepository, TokenRow};
use crate::service::keys::store::{KeyStore, Sealed, token_key_label};
use jws::{EcJwk, JwsError};

/// How long an instance trusts its cached key set before reading it again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(10);
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Token settings.
#[derive(Debug, Clone, Copy)]
pub struct TokenSettings {
    /// Lifetime of a token (default 5 minutes).
    pub ttl: Duration,
}

/// The claims as signed (JWT registered names plus ours).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WireClaims {
    /// Token id.
    pub jti: Uuid,
    /// Device id.
    pub sub: Uuid,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Health report the token was issued on.
    pub health_report_id: Uuid,
    /// Its score 0–100.
    pub health_score: u8,
    /// Device state at issue.
    pub device_state: DeviceState,
    /// The device's active key set at issue.
    pub key_set_id: Option<Uuid>,
    /// Largest amount (minor units) the token allows, if the policy caps it at this score.
    pub amount_ceiling_minor: Option<u64>,
}

impl WireClaims {
    fn to_claims(&self) -> TokenClaims {
        TokenClaims {
            token_id: self.jti,
            device_id: DeviceId(self.sub),
            issued_at: self.iat * 1000,
            expires_at: self.exp * 1000,
            health_report_id: self.health_report_id,
            health_score: self.health_score,
            device_state: self.device_state,
            key_set_id: self.key_set_id,
            amount_ceiling_minor: self.amount_ceiling_minor,
        }
    }
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The compact JWS (given to the device once, stored nowhere).
    pub token: String,
    /// Signing key id.
    pub kid: String,
    /// Its claims.
    pub claims: WireClaims,
}

/// Lifecycle state of a stored token as the console sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// Issued, unused, not expired.
    Issued,
    /// Used once.
    Consumed,
    /// Never used and past its expiry.
    Expired,
}

/// What introspection reveals about a token (never the token).
#[derive(Debug, Clone)]
pub struct Introspection {
    /// State now.
    pub state: TokenState,
    /// Signing key.
    pub kid: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// Claims as signed.
    pub claims: WireClaims,
    /// When it was consumed.
    pub consumed_at: Option<UnixMillis>,
}

/// Result of a rotation.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new signing key.
    pub kid: String,
    /// Keys retired by it.
    pub retired: u64,
    /// Until when the retired keys stay published.
    pub retired_published_until: UnixMillis,
}

struct KeyCache {
    loaded_at: Instant,
    signer_kid: String,
    signer: Arc<P256Signer>,
    verifiers: HashMap<String, P256Verifier>,
}

/// Issues, verifies and consumes Transaction Tokens; manages their signing keys.
pub struct TokenService {
    repo: Arc<dyn TokenRepository>,
    health: Arc<dyn HealthGate>,
    threats: Arc<dyn ThreatReporter>,
    keys: Arc<dyn DeviceKeys>,
    once: Arc<dyn OnceStore>,
    audit: Arc<AuditService>,
    store: Arc<dyn KeyStore>,
    settings: TokenSettings,
    cache: RwLock<Option<KeyCache>>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The ports the token service calls.
#[derive(Debug, Clone)]
pub struct TokenPorts {
    /// Health verdicts.
    pub health: Arc<dyn HealthGate>,
    /// Threats (blocking check, reuse and forgery signals).
    pub threats: Arc<dyn ThreatReporter>,
    /// Key sets (the `key_set_id` claim).
    pub keys: Arc<dyn DeviceKeys>,
}

fn refused(code: &'static str, message: &'static str) -> AppError {
    AppError::Conflict { code, message }
}

fn invalid() -> AppError {
    AppError::Unprocessable {
        code: "token_invalid",
        message: "the token is not a valid Transaction Token",
    }
}

impl TokenService {
    /// Builds the service; `store` (the server's key store) wraps and unwraps the signing keys.
    pub fn new(
        repo: Arc<dyn TokenRepository>,
        ports: TokenPorts,
        once: Arc<dyn OnceStore>,
        audit: Arc<AuditService>,
        store: Arc<dyn KeyStore>,
        settings: TokenSettings,
    ) -> Self {
        Self {
            repo,
            health: ports.health,
            threats: ports.threats,
            keys: ports.keys,
            once,
            audit,
            store,
            settings,
            cache: RwLock::new(None),
        }
    }

    fn ttl_secs(&self) -> i64 {
        i64::try_from(self.settings.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    fn new_key_row(&self, now: UnixMillis) -> AppResult<SigningKeyRow> {
        let signer = loop {
            if let Ok(key) =
                SigningKey::from_slice(&zeroize::Zeroizing::new(random_bytes::<32>())[..])
            {
                break key;
            }
        };
        let kid = random_token::<12>();
        let sealed = self.store.wrap(
            &token_key_label(&kid),
            &zeroize::Zeroizing::new(signer.to_bytes())[..],
        )?;
        Ok(SigningKeyRow {
            public_key: B64.encode(signer.verifying_key().to_sec1_bytes()),
            private_wrapped: sealed.wrapped,
            master_version: Some(sealed.master_version),
            kid,
            retired_at: None,
            publish_until: None,
            created_at: now,
        })
    }

    async fn load_keys(&self) -> AppResult<KeyCache> {
        let now = now_millis();
        let mut rows = self.repo.live_keys(now).await?;
        if !rows.iter().any(|row| row.retired_at.is_none()) {
            // First start (or every key retired by hand): create one. Two instances racing
            // here both insert; both keys are valid and the newest signs everywhere.
            self.repo.insert_key(&self.new_key_row(now)?).await?;
            rows = self.repo.live_keys(now).await?;
        }
        let mut verifiers = HashMap::new();
        for row in &rows {
            let public = B64
                .decode(&row.public_key)
                .ok()
                .and_then(|bytes| P256Verifier::from_sec1(&bytes))
                .ok_or_else(|| crate::repository::corrupt("token_signing_keys.public_key"))?;
            verifiers.insert(row.kid.clone(), public);
        }
        let active = rows
            .iter()
            .rev()
            .find(|row| row.retired_at.is_none())
            .ok_or_else(|| AppError::Other(anyhow::anyhow!("no active token signing key")))?;
        let master_version = active.master_version.ok_or_else(|| {
            AppError::Other(anyhow::anyhow!(
                "token signing key {} still has its legacy wrap (restart to migrate it)",
                active.kid
            ))
        })?;
        let scalar = self.store.unwrap_bytes(
            &token_key_label(&active.kid),
            &Sealed {
                wrapped: active.private_wrapped.clone(),
                master_version,
            },
        )?;
        let signer = P256Signer::from_scalar(&scalar)
            .map(Arc::new)
            .ok_or_else(|| crate::repository::corrupt("token_signing_keys.private_wrapped"))?;
        Ok(KeyCache {
            loaded_at: Instant::now(),
            signer_kid: active.kid.clone(),
            signer,
            verifiers,
        })
    }

    /// Reloads the cache when older than `max_age`.
    async fn refresh(&self, max_age: Duration) -> AppResult<()> {
        let fresh = |cache: Option<&KeyCache>| {
            cache.is_some_and(|cache| cache.loaded_at.elapsed() < max_age)
        };
        if fresh(self.cache.read().await.as_ref()) {
            return Ok(());
        }
        // One load at a time: concurrent first requests each found no key, created one and
        // cached their own, so a token signed under one key met a cache holding another
        // (`token_invalid`, seen once under the payment benchmark).
        let mut cache = self.cache.write().await;
        if !fresh(cache.as_ref()) {
            *cache = Some(self.load_keys().await?);
        }
        Ok(())
    }

    async fn signer(&self) -> AppResult<(String, Arc<P256Signer>)> {
        self.refresh(KEY_CACHE_TTL).await?;
        let cache = self.cache.read().await;
        let cache = cache.as_ref().expect("refreshed above");
        Ok((cache.signer_kid.clone(), cache.signer.clone()))
    }

    async fn verifier(&self, kid: &str) -> AppResult<Option<P256Verifier>> {
        self.refresh(KEY_CACHE_TTL).await?;
        if let Some(key) = self.lookup(kid).await {
            return Ok(Some(key));
        }
        // Maybe another instance rotated since; re-read, but at most once a second so
        // forged kids cannot turn into a database load.
        self.refresh(Duration::from_secs(1)).await?;
        Ok(self.lookup(kid).await)
    }

    async fn lookup(&self, kid: &str) -> Option<P256Verifier> {
        self.cache
            .read()
            .await
            .as_ref()
            .and_then(|cache| cache.verifiers.get(kid).cloned())
    }

    /// Issues a token to `device` if every rule allows it.
    ///
    /// # Errors
    /// 409 `device_not_active`, `no_health_check`, `health_check_failed`,
    /// `health_check_stale`, `blocking_threat`; storage errors.
    /// `current` is the device as the request's authentication read it.
    pub async fn issue(&self, current: &Device) -> AppResult<IssuedToken> {
        let device = current.id;
        if current.state != DeviceState::Active {
            return Err(refused(
                "device_not_active",
                "tokens are issued only to ACTIVE devices",
            ));
        }
        let verdict = match self.health.fresh_passing_verdict(device).await? {
            Ok(verdict) => verdict,
            Err(refusal) => {
                let message = match refusal {
                    super::ports::HealthRefusal::NoHealthCheck => {
                        "the device has no valid health check"
                    }
                    super::ports::HealthRefusal::HealthCheckFailed => {
                        "the device's latest health check failed the policy"
                    }
                    super::ports::HealthRefusal::HealthCheckStale => {
                        "the device's latest health check is older than the policy allows"
                    }
                };
                return Err(refused(refusal.code(), message));
            }
        };
        if self.threats.blocking_threat(device).await?.is_some() {
            return Err(refused(
                "blocking_threat",
                "an open threat blocks transactions for this device",
            ));
        }
        let key_set = self.keys.active_key_set(device).await?;
        let (kid, signer) = self.signer().await?;
        let iat = now_millis() / 1000;
        let claims = WireClaims {
            jti: Uuid::new_v4(),
            sub: device.0,
            iat,
            exp: iat + self.ttl_secs(),
            health_report_id: verdict.report_id,
            health_score: verdict.score,
            device_state: current.state,
            key_set_id: key_set.map(|set| set.id),
            amount_ceiling_minor: verdict.amount_ceiling_minor,
        };
        let payload = serde_json::to_vec(&claims).map_err(anyhow::Error::from)?;
        let token = jws::sign(&signer, &kid, &payload)
            .map_err(|_| AppError::Other(anyhow::anyhow!("system random source failed")))?;
        self.repo
            .insert_token(&TokenRow {
                jti: claims.jti,
                device_id: device,
                kid: kid.clone(),
                token_hash: hex::encode(Sha256::digest(token.as_bytes())),
                claims: String::from_utf8(payload).map_err(anyhow::Error::from)?,
                issued_at: claims.iat * 1000,
                expires_at: claims.exp * 1000,
                consumed_at: None,
            })
            .await?;
        metrics::counter!("tokens_issued_total").increment(1);
        Ok(IssuedToken { token, kid, claims })
    }

    /// Verifies signature and structure only (no device, expiry or use checks).
    async fn verify_signature(&self, token: &str) -> AppResult<WireClaims> {
        if token.len() > 4096 {
            return Err(invalid());
        }
        let kid = jws::es256_kid(token).map_err(|_| invalid())?;
        let key = self.verifier(&kid).await?.ok_or_else(invalid)?;
        let payload = jws::verify(token, &key).map_err(|error| match error {
            JwsError::Malformed
            | JwsError::Algorithm
            | JwsError::UnknownKey
            | JwsError::Signature => invalid(),
        })?;
        serde_json::from_slice(&payload).map_err(|_| invalid())
    }

    async fn signal(
        &self,
        device: DeviceId,
        kind: ThreatKind,
        evidence: serde_json::Value,
        ctx: &RequestContext,
    ) {
        let signal = ThreatSignal {
            device_id: device,
            kind,
            severity: Severity::High,
            evidence,
            observed_at: now_millis(),
        };
        if let Err(error) = self.threats.report(signal, ctx).await {
            tracing::error!(?error, ?kind, "could not report a token threat");
        }
    }

    /// Introspection for the console.
    ///
    /// # Errors
    /// `not_found`; storage errors.
    pub async fn introspect(&self, jti: Uuid) -> AppResult<Introspection> {
        let row = self
            .repo
            .find_token(jti)
            .await?
            .ok_or(AppError::NotFound("token"))?;
        let claims: WireClaims = serde_json::from_str(&row.claims)
            .map_err(|_| crate::repository::corrupt("tokens.claims"))?;
        let state = match row.consumed_at {
            Some(_) => TokenState::Consumed,
            None if now_millis() >= row.expires_at => TokenState::Expired,
            None => TokenState::Issued,
        };
        Ok(Introspection {
            state,
            kid: row.kid,
            token_hash: row.token_hash,
            claims,
            consumed_at: row.consumed_at,
        })
    }

    /// The public keys to publish (signing and recently retired), as JWKs.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn jwks(&self) -> AppResult<Vec<EcJwk>> {
        // From the database, not the cache: a key rotated on another instance is
        // published everywhere at once.
        self.refresh(KEY_CACHE_TTL).await?;
        let rows = self.repo.live_keys(now_millis()).await?;
        rows.iter()
            .map(|row| {
                let key = B64
                    .decode(&row.public_key)
                    .ok()
                    .and_then(|bytes| P256Verifier::from_sec1(&bytes))
                    .ok_or_else(|| crate::repository::corrupt("token_signing_keys.public_key"))?;
                Ok(EcJwk::from_key(&key, &row.kid))
            })
            .collect()
    }

    /// Creates a new signing key and retires the others (published until their tokens
    /// expired). Audited.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn rotate(&self, principal: &Principal, ctx: &RequestContext) -> AppResult<Rotation> {
        let now = now_millis();
        let row = self.new_key_row(now + 1)?;
        self.repo.insert_key(&row).await?;
        let grace = self.settings.ttl + KEY_CACHE_TTL + Duration::from_secs(60);
        let publish_until = now + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX / 2);
        let retired = self
            .repo
            .retire_all_but(&row.kid, now, publish_until)
            .await?;
        *self.cache.write().await = None;
        self.audit
            .append(NewAuditRecord {
                actor: principal.actor(),
                action: "token.signing_key_rotated".to_owned(),
                target: Some(format!("token_key:{}", row.kid)),
                reason: Some(format!(
                    "{retired} key(s) retired, published until {publish_until}"
                )),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(Rotation {
            kid: row.kid,
            retired,
            retired_published_until: publish_until,
        })
    }
}

#[async_trait::async_trait]
impl TokenConsumer for TokenService {
    async fn consume(
        &self,
        token: &str,
        device: &Device,
        ctx: &RequestContext,
    ) -> AppResult<TokenClaims> {
        let result = self.consume_inner(token, device, ctx).await;
        let outcome = match &result {
            Ok(_) => "consumed",
            Err(error) => error.code(),
        };
        metrics::counter!("tokens_consumed_total", "outcome" => outcome).increment(1);
        result
    }

    async fn token_id(&self, token: &str) -> AppResult<Uuid> {
        Ok(self.verify_signature(token).await?.jti)
    }
}

impl TokenService {
    async fn consume_inner(
        &self,
        token: &str,
        current: &Device,
        ctx: &RequestContext,
    ) -> AppResult<TokenClaims> {
        let device = current.id;
        let claims = self.verify_signature(token).await?;
        if claims.sub != device.0 {
            self.signal(
                device,
                ThreatKind::TokenForgery,
                serde_json::json!({ "reason": "token_wrong_device", "token_id": claims.jti,
                    "token_device": claims.sub }),
                ctx,
            )
            .await;
            return Err(AppError::Unprocessable {
                code: "token_wrong_device",
                message: "the token was issued to another device",
            });
        }
        let now = now_millis();
        if now >= claims.exp * 1000 {
            return Err(AppError::Unprocessable {
                code: "token_expired",
                message: "the token has expired",
            });
        }
        if current.state != DeviceState::Active {
            return Err(refused(
                "device_not_active",
                "the device is no longer ACTIVE",
            ));
        }
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        let remaining = u64::try_from(claims.exp * 1000 - now).unwrap_or(0);
        let ttl = Duration::from_millis(remaining) + Duration::from_secs(60);
        if !self
            .once
            .claim(&format!("token:{}", claims.jti), ttl)
            .await?
        {
            return Err(self.reused(device, claims.jti, ctx).await);
        }
        // One statement consumes the row issued for exactly this token to this device; only
        // when it finds none is the row read, to tell a used token from one never issued.
        if !self.repo.consume(claims.jti, device, &hash, now).await? {
            let row = self
                .repo
                .find_token(claims.jti)
                .await?
                .ok_or_else(invalid)?;
            if row.device_id != device
                || !bool::from(subtle::ConstantTimeEq::ct_eq(
                    hash.as_bytes(),
                    row.token_hash.as_bytes(),
                ))
            {
                return Err(invalid());
            }
            return Err(self.reused(device, claims.jti, ctx).await);
        }
        Ok(claims.to_claims())
    }

    /// Reports a token presented twice and returns the refusal.
    async fn reused(&self, device: DeviceId, jti: Uuid, ctx: &RequestContext) -> AppError {
        self.signal(
            device,
            ThreatKind::TokenReuse,
            serde_json::json!({ "token_id": jti }),
            ctx,
        )
        .await;
        refused("token_reused", "the token was already used")
    }
}
