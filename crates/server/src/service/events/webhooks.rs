//! Outbound webhooks: admin-managed endpoints that receive the live events as signed POSTs.
//!
//! Signature: `X-SoftPOS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>`; a receiver recomputes it over the raw body and refuses old `t` values
//! to stop replays. The secret is shown once at creation and stored only wrapped by the key
//! store (`service::keys::store`, label `webhook:<id>`), so master-key rotation re-wraps it.
//!
//! Exactly one delivery per (event, endpoint) across instances: every instance sees every
//! event (Redis pub/sub), and each first claims `webhook:<event id>:<endpoint id>` in the
//! `OnceStore`; only the winner sends. The event id is the SHA-256 of the event's JSON
//! (identical on every instance, as `serde_json` writes maps in key order), so two
//! byte-identical events within the claim's day are delivered once — the publishers put
//! ids and times in their payloads, so distinct events differ.
//!
//! Retries: up to `max_attempts`, waiting `base_delay · 2^(n-1)` capped at `max_delay`
//! between attempts; 2xx is success, anything else (status, timeout, refused connection)
//! is retried. Each attempt is logged (attempt, outcome, status, latency, error). Redirects
//! are not followed; a deleted endpoint gets no further retry. Pending retries live in the
//! instance that claimed the pair: if it stops, they are lost (the claim holds for a day),
//! so delivery is at most once per (event, endpoint) with retries, not guaranteed. URLs: `http`/`https` only, no credentials in the URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{LIVE_KINDS, is_live_kind};
use crate::domain::{NewAuditRecord, Principal, now_millis};
use crate::error::{AppError, AppResult, FieldError};
use crate::infra::keys::random_token;
use crate::infra::stores::{Event, EventBus, OnceStore};
use crate::repository::webhooks::{DeliveryOutcome, DeliveryRow, EndpointRow, WebhookRepository};
use crate::service::RequestContext;
use crate::service::audit::AuditService;
use crate::service::keys::store::{KeyStore, Sealed, webhook_secret_label};

/// Delivery settings.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// Attempts per (event, endpoint), at least 1.
    pub max_attempts: u32,
    /// Wait before the second attempt.
    pub base_delay: Duration,
    /// Longest wait between attempts.
    pub max_delay: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

/// The wait after failed attempt `attempt` (1-based).
pub fn backoff(settings: &WebhookSettings, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    settings
        .base_delay
        .saturating_mul(factor)
        .min(settings.max_delay)
}

/// The signature header value for `body` at `t`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A stable id for an event (the same on every instance).
pub fn event_id(event: &Event) -> String {
    let bytes = serde_json::to_vec(event).expect("events serialize");
    hex::encode(&Sha256::digest(bytes)[..16])
}

/// A new endpoint as an admin asks for it.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Target URL.
    pub url: String,
    /// Kinds to receive.
    pub event_kinds: Vec<String>,
    /// Free text.
    pub description: Option<String>,
}

/// Webhook endpoints and delivery.
pub struct WebhookService {
    repo: Arc<dyn WebhookRepository>,
    once: Arc<dyn OnceStore>,
    audit: Arc<AuditService>,
    store: Arc<dyn KeyStore>,
    client: reqwest::Client,
    settings: WebhookSettings,
}

impl std::fmt::Debug for WebhookService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn validate(new: &NewEndpoint) -> Result<(String, Vec<String>), AppError> {
    let mut problems = Vec::new();
    let url = new.url.trim();
    match reqwest::Url::parse(url) {
        _ if url.len() > 2048 => problems.push(FieldError::new("url", "at most 2048 characters")),
        Ok(parsed) => {
            if !matches!(parsed.scheme(), "http" | "https") {
                problems.push(FieldError::new("url", "scheme must be http or https"));
            }
            if !parsed.username().is_empty() || parsed.password().is_some() {
                problems.push(FieldError::new("url", "credentials in the URL are refused"));
            }
            if parsed.host_str().is_none_or(str::is_empty) {
                problems.push(FieldError::new("url", "a host is required"));
            }
        }
        Err(_) => problems.push(FieldError::new("url", "not a valid URL")),
    }
    let mut kinds: Vec<String> = Vec::new();
    for kind in &new.event_kinds {
        if !LIVE_KINDS.contains(&kind.as_str()) {
            problems.push(FieldError::new(
                "event_kinds",
                format!("unknown kind {kind:?}; one of {}", LIVE_KINDS.join(", ")),
            ));
        } else if !kinds.contains(kind) {
            kinds.push(kind.clone());
        }
    }
    if new.event_kinds.is_empty() {
        problems.push(FieldError::new("event_kinds", "at least one kind"));
    }
    if new
        .description
        .as_ref()
        .is_some_and(|text| text.chars().count() > 200)
    {
        problems.push(FieldError::new("description", "at most 200 characters"));
    }
    if problems.is_empty() {
        Ok((url.to_owned(), kinds))
    } else {
        Err(AppError::Validation(problems))
    }
}

impl WebhookService {
    /// Builds the service; `store` (the server's key store) wraps endpoint secrets.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        repo: Arc<dyn WebhookRepository>,
        once: Arc<dyn OnceStore>,
        audit: Arc<AuditService>,
        store: Arc<dyn KeyStore>,
        settings: WebhookSettings,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .user_agent("SUNBAY-SoftPOS-Webhooks/1")
            .build()?;
        Ok(Self {
            repo,
            once,
            audit,
            store,
            client,
            settings,
        })
    }

    /// Creates an endpoint; returns it with its secret (shown this once). Audited.
    ///
    /// # Errors
    /// `validation_failed`; storage errors.
    pub async fn create(
        &self,
        principal: &Principal,
        new: NewEndpoint,
        ctx: &RequestContext,
    ) -> AppResult<(EndpointRow, String)> {
        let (url, event_kinds) = validate(&new)?;
        let id = Uuid::new_v4();
        let secret = format!("whsec_{}", random_token::<32>());
        let sealed = self
            .store
            .wrap(&webhook_secret_label(id), secret.as_bytes())?;
        let row = EndpointRow {
            id,
            url,
            event_kinds,
            description: new.description.map(|text| text.trim().to_owned()),
            secret_wrapped: sealed.wrapped,
            master_version: Some(sealed.master_version),
            created_by: principal.actor(),
            created_at: now_millis(),
        };
        self.repo.insert_endpoint(&row).await?;
        self.audit
            .append(NewAuditRecord {
                actor: principal.actor(),
                action: "webhook.created".to_owned(),
                target: Some(format!("webhook:{id}")),
                reason: Some(format!("{} for {}", row.url, row.event_kinds.join(","))),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok((row, secret))
    }

    /// Endpoints not deleted.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self) -> AppResult<Vec<EndpointRow>> {
        self.repo.list_endpoints().await
    }

    /// Deletes an endpoint (its log stays). Audited.
    ///
    /// # Errors
    /// `not_found`; storage errors.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: Uuid,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        if !self.repo.delete_endpoint(id, now_millis()).await? {
            return Err(AppError::NotFound("webhook"));
        }
        self.audit
            .append(NewAuditRecord {
                actor: principal.actor(),
                action: "webhook.deleted".to_owned(),
                target: Some(format!("webhook:{id}")),
                reason: None,
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(())
    }

    /// An endpoint's delivery attempts, newest first.
    ///
    /// # Errors
    /// `not_found`; storage errors.
    pub async fn deliveries(&self, id: Uuid, limit: i64) -> AppResult<Vec<DeliveryRow>> {
        if !self.repo.endpoint_exists(id).await? {
            return Err(AppError::NotFound("webhook"));
        }
        self.repo.list_deliveries(id, limit.clamp(1, 500)).await
    }

    /// Forwards live events from `bus` to the endpoints until the bus closes.
    pub fn spawn_dispatcher(self: &Arc<Self>, bus: &Arc<dyn EventBus>) {
        let mut events = bus.subscribe();
        let service = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) if is_live_kind(&event.kind) => {
                        if let Err(error) = service.dispatch(event).await {
                            tracing::error!(?error, "webhook dispatch failed");
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "webhook dispatcher lagged behind the event bus");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    async fn dispatch(self: &Arc<Self>, event: Event) -> AppResult<()> {
        let id = event_id(&event);
        for endpoint in self.repo.list_endpoints().await? {
            if !endpoint.event_kinds.contains(&event.kind) {
                continue;
            }
            let claim = format!("webhook:{id}:{}", endpoint.id);
            if !self.once.claim(&claim, Duration::from_secs(86_400)).await? {
                continue;
            }
            let service = Arc::clone(self);
            let event = event.clone();
            let id = id.clone();
            tokio::spawn(async move { service.deliver(endpoint, event, id).await });
        }
        Ok(())
    }

    async fn deliver(&self, endpoint: EndpointRow, event: Event, event_id: String) {
        let opened = endpoint
            .master_version
            .ok_or_else(|| AppError::Other(anyhow::anyhow!("legacy wrap not yet migrated")))
            .and_then(|master_version| {
                self.store.unwrap_bytes(
                    &webhook_secret_label(endpoint.id),
                    &Sealed {
                        wrapped: endpoint.secret_wrapped.clone(),
                        master_version,
                    },
                )
            });
        let secret = match opened {
            Ok(secret) => secret,
            Err(error) => {
                tracing::error!(%error, endpoint = %endpoint.id, "webhook secret does not open");
                return;
            }
        };
        let body = serde_json::json!({
            "id": event_id,
            "kind": event.kind,
            "payload": event.payload,
        })
        .to_string();
        let max_attempts = self.settings.max_attempts.max(1);
        for attempt in 1..=max_attempts {
            // An endpoint deleted while its retries wait gets no further attempt.
            if attempt > 1 && !matches!(self.repo.endpoint_exists(endpoint.id).await, Ok(true)) {
                return;
            }
            let t = now_millis() / 1000;
            let started = Instant::now();
            let result = self
                .client
                .post(&endpoint.url)
                .header("content-type", "application/json")
                .header(
                    "x-softpos-signature",
                    signature(&secret, t, body.as_bytes()),
                )
                .header("x-softpos-event", &event.kind)
                .header("x-softpos-event-id", &event_id)
                .body(body.clone())
                .send()
                .await;
            let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let (http_status, error) = match &result {
                Ok(response) if response.status().is_success() => {
                    (Some(i64::from(response.status().as_u16())), None)
                }
                Ok(response) => (
                    Some(i64::from(response.status().as_u16())),
                    Some(format!("HTTP {}", response.status())),
                ),
                Err(error) => (None, Some(transport_error(error))),
            };
            let outcome = match (&error, attempt == max_attempts) {
                (None, _) => DeliveryOutcome::Delivered,
                (Some(_), false) => DeliveryOutcome::Retrying,
                (Some(_), true) => DeliveryOutcome::Failed,
            };
            self.log(
                &endpoint,
                &event,
                &event_id,
                attempt,
                outcome,
                http_status,
                latency_ms,
                error,
            )
            .await;
            metrics::counter!("webhook_attempts_total", "outcome" => outcome.as_str()).increment(1);
            if outcome != DeliveryOutcome::Retrying {
                return;
            }
            tokio::time::sleep(backoff(&self.settings, attempt)).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        endpoint: &EndpointRow,
        event: &Event,
        event_id: &str,
        attempt: u32,
        outcome: DeliveryOutcome,
        http_status: Option<i64>,
        latency_ms: i64,
        error: Option<String>,
    ) {
        let row = DeliveryRow {
            id: Uuid::new_v4(),
            endpoint_id: endpoint.id,
            event_id: event_id.to_owned(),
            event_kind: event.kind.clone(),
            attempt: i64::from(attempt),
            outcome,
            http_status,
            latency_ms,
            error,
            created_at: now_millis(),
        };
        if let Err(error) = self.repo.insert_delivery(&row).await {
            tracing::error!(?error, endpoint = %endpoint.id, "could not log a webhook delivery");
        }
    }
}

/// A transport error in words, without the URL (it may carry a token in its query).
fn transport_error(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else if error.is_redirect() {
        "redirect refused".to_owned()
    } else {
        "request failed".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The primitive against RFC 4231 §4.3 (HMAC-SHA-256, test case 2: key "Jefe", data
    /// "what do ya want for nothing?"), then the header as that HMAC over "<t>.<body>".
    #[test]
    fn signature_is_hmac_sha256_over_t_dot_body() {
        // RFC 4231 test case 2 through the primitive we use.
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // And the header is that HMAC over "<t>.<body>".
        let header = signature(b"Jefe", 1_700_000_000, b"{\"a\":1}");
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        assert_eq!(
            header,
            format!(
                "t=1700000000,v1={}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let settings = WebhookSettings {
            max_attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
        };
        let waits: Vec<u128> = (1..=5).map(|n| backoff(&settings, n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
        assert_eq!(backoff(&settings, 60).as_millis(), 500);
    }

    #[test]
    fn urls_and_kinds_are_validated() {
        let ok = |url: &str| {
            validate(&NewEndpoint {
                url: url.to_owned(),
                event_kinds: vec!["threat.recorded".to_owned()],
                description: None,
            })
        };
        assert!(ok("https://hooks.example.com/softpos").is_ok());
        assert!(ok("http://127.0.0.1:9000/x").is_ok());
        assert!(ok("ftp://example.com/").is_err());
        assert!(ok("https://user:pass@example.com/").is_err());
        assert!(ok("https://user@example.com/").is_err());
        assert!(ok("not a url").is_err());
        assert!(ok("file:///etc/passwd").is_err());
        let kinds = validate(&NewEndpoint {
            url: "https://example.com".to_owned(),
            event_kinds: vec!["audit.appended".to_owned()],
            description: None,
        });
        assert!(kinds.is_err());
        let (_, deduped) = validate(&NewEndpoint {
            url: "https://example.com".to_owned(),
            event_kinds: vec!["threat.recorded".to_owned(), "threat.recorded".to_owned()],
            description: None,
        })
        .unwrap();
        assert_eq!(deduped, vec!["threat.recorded"]);
    }

    #[test]
    fn event_ids_are_stable_and_distinct() {
        let a = Event {
            kind: "threat.recorded".to_owned(),
            payload: serde_json::json!({"b": 1, "a": 2}),
        };
        let same: Event = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(event_id(&a), event_id(&same));
        let other = Event {
            kind: "threat.recorded".to_owned(),
            payload: serde_json::json!({"b": 1, "a": 3}),
        };
        assert_ne!(event_id(&a), event_id(&other));
    }
}
