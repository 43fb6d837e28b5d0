//! Shared application state handed to handlers.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::infra::db::Database;
use crate::infra::stores::Stores;
use crate::service::api_keys::ApiKeyService;
use crate::service::audit::AuditService;
use crate::service::auth::AuthService;
use crate::service::devices::DeviceService;
use crate::service::events::EventsService;
use crate::service::events::webhooks::WebhookService;
use crate::service::health::HealthService;
use crate::service::keys::KeyService;
use crate::service::merchants::MerchantService;
use crate::service::payments::PaymentService;
use crate::service::releases::ReleaseService;
use crate::service::threats::ThreatService;
use crate::service::tokens::TokenService;
use crate::service::users::UserService;

/// HTTP-level settings the handlers need.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Take the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// Mark cookies `Secure` (TLS is on).
    pub secure_cookies: bool,
    /// Bearer token guarding `/metrics`, if any.
    pub metrics_token: Option<String>,
}

/// Everything a handler may need; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Authentication.
    pub auth: Arc<AuthService>,
    /// Users.
    pub users: Arc<UserService>,
    /// Audit log.
    pub audit: Arc<AuditService>,
    /// API keys.
    pub api_keys: Arc<ApiKeyService>,
    /// Merchants.
    pub merchants: Arc<MerchantService>,
    /// Devices.
    pub devices: Arc<DeviceService>,
    /// Key custody and injection (also the payment pipeline's `DeviceKeys`).
    pub keys: Arc<KeyService>,
    /// Database (readiness).
    pub db: Database,
    /// Shared stores (readiness).
    pub stores: Stores,
    /// Prometheus renderer.
    pub metrics: PrometheusHandle,
    /// HTTP settings.
    pub settings: Arc<HttpSettings>,
    /// Payments: sales, follow-ups, records, statistics.
    pub payments: Arc<PaymentService>,
    /// Kernel and terminal-software releases.
    pub releases: Arc<ReleaseService>,
    /// Health reports and the security policy.
    pub health: Arc<HealthService>,
    /// Threat events and incidents.
    pub threats: Arc<ThreatService>,
    /// Transaction Tokens.
    pub tokens: Arc<TokenService>,
    /// Live event stream and tickets.
    pub events: Arc<EventsService>,
    /// Outbound webhooks.
    pub webhooks: Arc<WebhookService>,
}
