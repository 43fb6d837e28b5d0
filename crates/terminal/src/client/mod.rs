//! The back-end client (reqwest with rustls, async): signed device requests exactly as the
//! server verifies them, and every device flow on top of them: registration, waiting for
//! approval, key injection, health reports, the token cache, sales with idempotent retry,
//! refunds, history, key status and rotation, check-in and kernel updates ([`kernel`]).
//!
//! Signature scheme (the server's `api::devices::device_self` doc): headers `X-Device-Id`,
//! `X-Device-Timestamp` (Unix seconds), `X-Device-Nonce` (single use), `X-Device-Signature`:
//! base64 DER ECDSA P-256/SHA-256 by the device key over
//! `SOFTPOS-DEVICE-V1\n<METHOD>\n<path?query>\n<timestamp>\n<nonce>\n<hex sha256(body)>`.
//! [`Client::sign`] builds such a request with any timestamp and nonce and [`Client::send`]
//! sends it as is, so a test can replay a request byte for byte.

pub mod error;
pub mod kernel;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use error::ClientError;
pub use wire::*;

use crate::attestation;
use crate::health::{HealthCollector, HealthReport};
use crate::store::{InjectionPackage, SecureStore};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// First line of the signed device message.
pub const SIGNATURE_DOMAIN: &str = "SOFTPOS-DEVICE-V1";

/// How sales are retried on transport failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubled each time.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            backoff: Duration::from_millis(200),
        }
    }
}

/// A device request ready to send: method, path, body and the signature headers.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path and query, as signed.
    pub path: String,
    /// Body, as signed.
    pub body: Vec<u8>,
    /// Headers (the four signature headers, `Idempotency-Key` if any).
    pub headers: Vec<(String, String)>,
}

/// A raw answer.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header value.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Parses a 2xx body as `T`, or maps the error body.
    ///
    /// # Errors
    /// [`ClientError::Server`], [`ClientError::BadResponse`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        if !(200..300).contains(&self.status) {
            return Err(ClientError::from_body(self.status, &self.body));
        }
        serde_json::from_slice(&self.body).map_err(|e| ClientError::BadResponse(e.to_string()))
    }
}

/// The device client. Share it behind an `Arc`: the token cache is inside.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    store: Arc<SecureStore>,
    token: tokio::sync::Mutex<Option<IssuedToken>>,
    retry: RetryPolicy,
    /// Sent with every request, after the request's own headers (see [`Client::with_header`]).
    extra_headers: Vec<(String, String)>,
}

/// Seconds of validity a cached token must still have to be used.
const TOKEN_MARGIN_SECS: i64 = 5;

fn fresh_nonce() -> String {
    Uuid::new_v4().simple().to_string()
}

impl Client {
    /// A client for the server URL in the store's configuration.
    ///
    /// # Errors
    /// [`ClientError::ServerUrl`].
    pub fn new(store: Arc<SecureStore>) -> Result<Self, ClientError> {
        let base = store
            .config()
            .server_url
            .ok_or_else(|| ClientError::ServerUrl("not configured".to_owned()))?;
        Self::with_base(&base, store)
    }

    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    ///
    /// # Errors
    /// [`ClientError::ServerUrl`].
    pub fn with_base(base: &str, store: Arc<SecureStore>) -> Result<Self, ClientError> {
        let base = base.trim().trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::ServerUrl(
                "must start with http:// or https://".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::ServerUrl(e.to_string()))?;
        Ok(Self {
            http,
            base,
            store,
            token: tokio::sync::Mutex::new(None),
            retry: RetryPolicy::default(),
            extra_headers: Vec::new(),
        })
    }

    /// Adds a header to every request this client sends. The fleet simulator registers each
    /// virtual device with its own `X-Forwarded-For` address, since the server caps
    /// registrations per client address.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Uses another retry policy for sales and refunds.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The server's base URL.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The secure store.
    #[must_use]
    pub fn store(&self) -> &Arc<SecureStore> {
        &self.store
    }

    /// This device's id.
    ///
    /// # Errors
    /// [`ClientError::NotRegistered`].
    pub fn device_id(&self) -> Result<Uuid, ClientError> {
        self.store
            .config()
            .device_id
            .ok_or(ClientError::NotRegistered)
    }

    /// Builds a signed device request with an explicit timestamp and nonce.
    ///
    /// # Errors
    /// [`ClientError::NotRegistered`].
    pub fn sign(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> Result<SignedRequest, ClientError> {
        let device_id = self.device_id()?;
        let message = format!(
            "{SIGNATURE_DOMAIN}\n{}\n{path}\n{timestamp}\n{nonce}\n{}",
            method.as_str(),
            hex::encode(Sha256::digest(body))
        );
        let signature = B64.encode(self.store.sign(message.as_bytes()));
        Ok(SignedRequest {
            method,
            path: path.to_owned(),
            body: body.to_vec(),
            headers: vec![
                ("x-device-id".to_owned(), device_id.to_string()),
                ("x-device-timestamp".to_owned(), timestamp.to_string()),
                ("x-device-nonce".to_owned(), nonce.to_owned()),
                ("x-device-signature".to_owned(), signature),
            ],
        })
    }

    /// Builds a signed device request now, with a fresh nonce.
    ///
    /// # Errors
    /// [`ClientError::NotRegistered`].
    pub fn sign_now(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &[u8],
    ) -> Result<SignedRequest, ClientError> {
        self.sign(method, path, body, Utc::now().timestamp(), &fresh_nonce())
    }

    /// Sends a prepared request as is.
    ///
    /// # Errors
    /// [`ClientError::Transport`].
    pub async fn send(&self, request: &SignedRequest) -> Result<RawResponse, ClientError> {
        let mut builder = self
            .http
            .request(
                request.method.clone(),
                format!("{}{}", self.base, request.path),
            )
            .header("content-type", "application/json")
            .body(request.body.clone());
        for (name, value) in request.headers.iter().chain(&self.extra_headers) {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let res = builder
            .send()
            .await
            .map_err(|e| ClientError::from_reqwest(&e))?;
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|value| (name.as_str().to_owned(), value.to_owned()))
            })
            .collect();
        let body = res
            .bytes()
            .await
            .map_err(|e| ClientError::from_reqwest(&e))?
            .to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    async fn signed_call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &[u8],
    ) -> Result<T, ClientError> {
        let request = self.sign_now(method, path, body)?;
        self.send(&request).await?.json()
    }

    async fn signed_post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes =
            serde_json::to_vec(body).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        self.signed_call(reqwest::Method::POST, path, &bytes).await
    }

    async fn anonymous_post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let mut builder = self.http.post(format!("{}{path}", self.base));
        for (name, value) in &self.extra_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let res = builder
            .send()
            .await
            .map_err(|e| ClientError::from_reqwest(&e))?;
        let status = res.status().as_u16();
        let body = res
            .bytes()
            .await
            .map_err(|e| ClientError::from_reqwest(&e))?;
        RawResponse {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
        }
        .json()
    }

    /// Registers this device: challenge, software attestation over it, registration. Stores
    /// the device id, merchant, mode and server URL.
    ///
    /// # Errors
    /// The server's codes (`attestation_rejected`, `merchant_not_found`, ...), transport.
    pub async fn register(
        &self,
        merchant_id: Uuid,
        facts: &DeviceFacts,
        mode: &str,
    ) -> Result<DeviceInfo, ClientError> {
        let challenge: ChallengeResponse = self
            .anonymous_post::<(), _>("/api/v1/devices/challenge", None)
            .await?;
        let evidence = attestation::software_evidence(&self.store, &challenge.challenge);
        let body = serde_json::json!({
            "challenge": challenge.challenge,
            "public_key": self.store.public_key_b64(),
            "facts": facts,
            "mode": mode,
            "merchant_id": merchant_id,
            "attestation": { "format": evidence.format, "signature": evidence.signature },
        });
        let device: DeviceInfo = self
            .anonymous_post("/api/v1/devices/register", Some(&body))
            .await?;
        let base = self.base.clone();
        let mode = mode.to_owned();
        self.store.update_config(|config| {
            config.server_url = Some(base);
            config.device_id = Some(device.id);
            config.merchant_id = Some(device.merchant_id);
            config.mode = Some(mode);
            config.attested_at = Some(Utc::now());
        })?;
        Ok(device)
    }

    /// The device's state and the server's clock.
    ///
    /// # Errors
    /// Signature errors (`bad_signature`, `device_revoked`, ...), transport.
    pub async fn device_self(&self) -> Result<DeviceSelf, ClientError> {
        self.signed_call(reqwest::Method::POST, "/api/v1/device/self", b"")
            .await
    }

    /// The device clock minus the server's, in milliseconds, measured against the middle of
    /// the round trip of a signed `device/self` call (the desktop's clock-skew check).
    ///
    /// # Errors
    /// As [`Client::device_self`].
    pub async fn measure_clock_skew(&self) -> Result<i64, ClientError> {
        let sent = Utc::now();
        let answer = self.device_self().await?;
        let received = Utc::now();
        let middle = sent + (received - sent) / 2;
        Ok((middle - answer.server_time).num_milliseconds())
    }

    /// Polls [`Client::device_self`] every `interval` until the device has left `REGISTERED`
    /// (approved or rejected), at most `timeout`.
    ///
    /// # Errors
    /// [`ClientError::Timeout`], the server's codes.
    pub async fn wait_for_approval(
        &self,
        interval: Duration,
        timeout: Duration,
    ) -> Result<DeviceState, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let state = self.device_self().await?.state;
            if state != DeviceState::Registered {
                return Ok(state);
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(ClientError::Timeout("approval"));
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Key injection (or rotation, for an `ACTIVE` device): ephemeral P-256 key from the
    /// store, signed key request, ECDH + HKDF + TR-31 unwrap + KCV check in the store, KCV
    /// confirmation, then the key set becomes the store's active one.
    ///
    /// # Errors
    /// `device_not_approved`, `no_active_bdk`, `kcv_mismatch`, `key_block_invalid`, ...
    pub async fn inject_keys(&self) -> Result<Activation, ClientError> {
        let device_id = self.device_id()?;
        let ephemeral = self.store.begin_key_injection();
        let answer: KeyInjectionResponse = self
            .signed_post(
                "/api/v1/device/keys",
                &serde_json::json!({ "ephemeral_public_key": B64.encode(&ephemeral) }),
            )
            .await?;
        let server_public = B64
            .decode(answer.server_public_key.trim())
            .map_err(|_| ClientError::BadResponse("server_public_key".to_owned()))?;
        let initial_key_id = hex::decode(answer.initial_key_id.trim())
            .map_err(|_| ClientError::BadResponse("initial_key_id".to_owned()))?;
        let kcv = self.store.finish_key_injection(&InjectionPackage {
            device_id,
            key_set_id: answer.key_set_id,
            version: answer.version,
            scheme: answer.scheme,
            server_public_key: &server_public,
            key_block: &answer.key_block,
            kcv: &answer.kcv,
            initial_key_id: &initial_key_id,
        })?;
        let activation: Activation = self
            .signed_post(
                "/api/v1/device/keys/confirm",
                &serde_json::json!({ "key_set_id": answer.key_set_id, "kcv": kcv }),
            )
            .await?;
        self.store.activate_key_set(answer.key_set_id)?;
        // A cached token names the previous key set.
        self.clear_token().await;
        Ok(activation)
    }

    /// Asks the server to activate an `APPROVED` device with confirmed keys (after a health
    /// report).
    ///
    /// # Errors
    /// `no_confirmed_key_set`, transport.
    pub async fn activate(&self) -> Result<Activation, ClientError> {
        self.signed_call(reqwest::Method::POST, "/api/v1/device/keys/activate", b"")
            .await
    }

    /// The active key set's status on the server; records `rotate_after` in the store.
    ///
    /// # Errors
    /// `no_confirmed_key_set`, transport.
    pub async fn key_status(&self) -> Result<KeyStatus, ClientError> {
        let status: KeyStatus = self
            .signed_call(reqwest::Method::POST, "/api/v1/device/keys/status", b"")
            .await?;
        let rotate_after = u32::try_from(status.rotate_after).ok();
        if self.store.active_key_set().is_some() {
            self.store.set_rotate_after(rotate_after)?;
        }
        Ok(status)
    }

    /// Rotates keys when the server asks for it or the local counter passed its threshold.
    /// Returns the new activation when it rotated.
    ///
    /// # Errors
    /// As [`Client::key_status`] and [`Client::inject_keys`].
    pub async fn rotate_keys_if_due(&self) -> Result<Option<Activation>, ClientError> {
        let status = self.key_status().await?;
        let local_due = self.store.active_key_set().is_some_and(|set| {
            set.next_counter.is_none_or(|counter| {
                counter
                    >= set
                        .rotate_after
                        .unwrap_or_else(|| set.scheme.default_rotate_after())
            })
        });
        if status.rotation_due || local_due {
            return self.inject_keys().await.map(Some);
        }
        Ok(None)
    }

    /// Reports health every `interval` in the background (the first report at once) until
    /// the returned handle is aborted; each verdict, or error, goes to `on_report`. A failed
    /// report clears the token cache ([`Client::report_health`]).
    pub fn spawn_health_schedule(
        self: &Arc<Self>,
        collector: HealthCollector,
        interval: Duration,
        on_report: impl Fn(Result<HealthVerdict, ClientError>) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let client = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                on_report(client.report_health(&collector).await);
            }
        })
    }

    /// A fresh single-use health nonce.
    ///
    /// # Errors
    /// Transport, signature errors.
    pub async fn health_nonce(&self) -> Result<String, ClientError> {
        let nonce: HealthNonce = self
            .signed_call(reqwest::Method::POST, "/api/v1/device/health/nonce", b"")
            .await?;
        Ok(nonce.nonce)
    }

    /// Submits a report with `nonce`.
    ///
    /// # Errors
    /// `invalid_health_nonce`, `health_nonce_reused`, ..., transport.
    pub async fn submit_health(
        &self,
        nonce: &str,
        report: &HealthReport,
    ) -> Result<HealthVerdict, ClientError> {
        self.signed_post(
            "/api/v1/device/health",
            &serde_json::json!({ "nonce": nonce, "report": report }),
        )
        .await
    }

    /// Nonce, collect, submit: one health report now.
    ///
    /// # Errors
    /// As [`Client::health_nonce`] and [`Client::submit_health`].
    pub async fn report_health(
        &self,
        collector: &HealthCollector,
    ) -> Result<HealthVerdict, ClientError> {
        let nonce = self.health_nonce().await?;
        let mut collector = collector.clone();
        if collector.last_attestation_at.is_none() {
            collector.last_attestation_at = self.store.config().attested_at;
        }
        let verdict = self.submit_health(&nonce, &collector.collect()).await?;
        if !verdict.passed {
            // The server stops honouring tokens of a device that failed its check.
            self.clear_token().await;
        }
        Ok(verdict)
    }

    /// Asks for a new Transaction Token (not cached).
    ///
    /// # Errors
    /// `device_not_active`, `no_health_check`, `health_check_failed`, `health_check_stale`,
    /// `blocking_threat`, transport.
    pub async fn issue_token(&self) -> Result<IssuedToken, ClientError> {
        self.signed_call(reqwest::Method::POST, "/api/v1/device/tokens", b"")
            .await
    }

    /// Fills the token cache ahead of the next sale, if it is empty or about to expire.
    ///
    /// # Errors
    /// As [`Client::issue_token`].
    pub async fn prefetch_token(&self) -> Result<(), ClientError> {
        let mut cached = self.token.lock().await;
        let usable = cached.as_ref().is_some_and(|token| {
            token.expires_at > Utc::now() + chrono::Duration::seconds(TOKEN_MARGIN_SECS)
        });
        if !usable {
            *cached = Some(self.issue_token().await?);
        }
        Ok(())
    }

    /// Takes a token for one sale: the cached one while it is valid, else a new one. A token
    /// is single use, so it leaves the cache here.
    ///
    /// # Errors
    /// As [`Client::issue_token`].
    pub async fn take_token(&self) -> Result<IssuedToken, ClientError> {
        let cached = self.token.lock().await.take();
        match cached {
            Some(token)
                if token.expires_at > Utc::now() + chrono::Duration::seconds(TOKEN_MARGIN_SECS) =>
            {
                Ok(token)
            }
            _ => self.issue_token().await,
        }
    }

    /// Puts back a token that was taken but not sent (the sale failed before submission), unless
    /// another one is cached already.
    pub async fn restore_token(&self, token: IssuedToken) {
        let mut cached = self.token.lock().await;
        if cached.is_none() {
            *cached = Some(token);
        }
    }

    /// Drops the cached token (after a health change, say).
    pub async fn clear_token(&self) {
        self.token.lock().await.take();
    }

    /// Sends a signed request with an `Idempotency-Key`, retrying transport failures with the
    /// same key and the same body (re-signed: every attempt needs a fresh request nonce).
    async fn idempotent_post(
        &self,
        path: &str,
        body: &[u8],
        idempotency_key: &str,
    ) -> Result<RawResponse, ClientError> {
        let mut wait = self.retry.backoff;
        let mut attempt = 1;
        loop {
            let mut request = self.sign_now(reqwest::Method::POST, path, body)?;
            request
                .headers
                .push(("idempotency-key".to_owned(), idempotency_key.to_owned()));
            match self.send(&request).await {
                Err(error) if error.is_transport() && attempt < self.retry.attempts.max(1) => {
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                other => return other,
            }
        }
    }

    /// Submits a sale. A decline is `Ok` with `state = DECLINED`.
    ///
    /// # Errors
    /// `token_invalid`, `token_reused`, `ksn_replay`, `idempotency_key_reused`, ...,
    /// transport after the last retry.
    pub async fn submit_sale(
        &self,
        sale: &SaleBody,
        idempotency_key: &str,
    ) -> Result<TransactionView, ClientError> {
        let body = serde_json::to_vec(sale).map_err(|e| ClientError::BadResponse(e.to_string()))?;
        self.idempotent_post("/api/v1/device/transactions", &body, idempotency_key)
            .await?
            .json()
    }

    /// Refunds (part of) one of this device's sales.
    ///
    /// # Errors
    /// `transaction_not_found`, `refund_exceeds_captured`, ..., transport.
    pub async fn refund(
        &self,
        transaction_id: Uuid,
        amount_minor: u64,
        reason: Option<&str>,
        idempotency_key: &str,
    ) -> Result<TransactionView, ClientError> {
        let body = serde_json::to_vec(&serde_json::json!({
            "amount_minor": amount_minor,
            "reason": reason,
        }))
        .map_err(|e| ClientError::BadResponse(e.to_string()))?;
        self.idempotent_post(
            &format!("/api/v1/device/transactions/{transaction_id}/refunds"),
            &body,
            idempotency_key,
        )
        .await?
        .json()
    }

    /// One page of this device's transactions, newest first.
    ///
    /// # Errors
    /// Transport, validation (`limit`, `cursor`).
    pub async fn history(
        &self,
        limit: Option<u32>,
        cursor: Option<&str>,
    ) -> Result<TransactionPage, ClientError> {
        let mut query = Vec::new();
        if let Some(limit) = limit {
            query.push(format!("limit={limit}"));
        }
        if let Some(cursor) = cursor {
            let encoded: String = cursor
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            query.push(format!("cursor={encoded}"));
        }
        let path = if query.is_empty() {
            "/api/v1/device/transactions".to_owned()
        } else {
            format!("/api/v1/device/transactions?{}", query.join("&"))
        };
        self.signed_call(reqwest::Method::GET, &path, b"").await
    }

    /// Reports the versions this terminal runs and receives its update tasks.
    ///
    /// # Errors
    /// Transport, validation.
    pub async fn check_in(
        &self,
        terminal_version: &str,
        kernel_version: Option<&str>,
    ) -> Result<CheckIn, ClientError> {
        self.signed_post(
            "/api/v1/device/check-in",
            &serde_json::json!({
                "terminal_version": terminal_version,
                "kernel_version": kernel_version,
            }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::AppFacts;
    use crate::store::DeviceConfig;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn signed_requests_verify_with_the_device_key() {
        let store = Arc::new(SecureStore::in_memory(DeviceConfig {
            device_id: Some(Uuid::nil()),
            ..DeviceConfig::default()
        }));
        let client = Client::with_base("http://127.0.0.1:9", Arc::clone(&store)).unwrap();
        let body = br#"{"amount_minor":100}"#;
        let request = client
            .sign(
                reqwest::Method::POST,
                "/api/v1/device/transactions",
                body,
                1_764_000_000,
                "nonce0123456789abcdef",
            )
            .unwrap();
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap()
        };
        assert_eq!(header("x-device-id"), Uuid::nil().to_string());
        assert_eq!(header("x-device-timestamp"), "1764000000");
        let message = format!(
            "SOFTPOS-DEVICE-V1\nPOST\n/api/v1/device/transactions\n1764000000\nnonce0123456789abcdef\n{}",
            hex::encode(Sha256::digest(body))
        );
        let der = B64.decode(header("x-device-signature")).unwrap();
        let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&store.public_key_sec1()).unwrap();
        assert!(key.verify(message.as_bytes(), &signature).is_ok());
        assert!(key.verify(b"another message", &signature).is_err());
    }

    /// Accepts one HTTP request on a loopback port, answers it with a 409 error body and
    /// returns the request's head, lower-cased.
    async fn one_request_head(listener: tokio::net::TcpListener) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed before the end of the request head"
            );
            head.extend_from_slice(&buf[..n]);
        }
        let body = br#"{"code":"test_refusal","message":"refused"}"#;
        let response = format!(
            "HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.write_all(body).await.unwrap();
        String::from_utf8_lossy(&head).to_ascii_lowercase()
    }

    #[tokio::test]
    async fn extra_headers_go_with_anonymous_and_signed_requests() {
        let store = Arc::new(SecureStore::in_memory(DeviceConfig {
            device_id: Some(Uuid::nil()),
            ..DeviceConfig::default()
        }));
        for with_header in [true, false] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let mut client = Client::with_base(&base, Arc::clone(&store)).unwrap();
            if with_header {
                client = client.with_header("X-Forwarded-For", "198.18.0.7");
            }
            let server = tokio::spawn(one_request_head(listener));
            let error = client
                .register(
                    Uuid::nil(),
                    &DeviceFacts::desktop(&AppFacts::development()),
                    "softpos",
                )
                .await
                .unwrap_err();
            assert_eq!(error.code(), "test_refusal");
            let head = server.await.unwrap();
            assert!(
                head.starts_with("post /api/v1/devices/challenge "),
                "{head}"
            );
            assert_eq!(
                head.contains("\r\nx-forwarded-for: 198.18.0.7\r\n"),
                with_header,
                "{head}"
            );
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let client = Client::with_base(&base, Arc::clone(&store))
            .unwrap()
            .with_header("X-Forwarded-For", "198.18.0.8");
        let server = tokio::spawn(one_request_head(listener));
        assert_eq!(
            client.device_self().await.unwrap_err().code(),
            "test_refusal"
        );
        let head = server.await.unwrap();
        assert!(head.contains("\r\nx-device-signature: "), "{head}");
        assert!(
            head.contains("\r\nx-forwarded-for: 198.18.0.8\r\n"),
            "{head}"
        );
    }

    #[test]
    fn unregistered_devices_cannot_sign_and_urls_are_checked() {
        let store = Arc::new(SecureStore::in_memory(DeviceConfig::default()));
        let client = Client::with_base("http://127.0.0.1:9/", Arc::clone(&store)).unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:9");
        let err = client
            .sign_now(reqwest::Method::POST, "/api/v1/device/self", b"")
            .unwrap_err();
        assert_eq!(err.code(), "not_registered");
        assert_eq!(
            Client::with_base("ftp://x", store).unwrap_err().code(),
            "server_url"
        );
    }
}
