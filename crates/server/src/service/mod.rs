//! Services: the business rules. No axum and no SQL here; repositories and stores come in
//! as trait objects.

pub mod api_keys;
pub mod attestation;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod events;
pub mod health;
pub mod keys;
pub mod merchants;
pub mod payments;
pub mod ports;
pub mod releases;
pub mod threats;
pub mod tokens;
pub mod users;

/// Facts about the request that services record (audit) or use (throttling).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The `x-request-id` of the request.
    pub request_id: Option<String>,
    /// Client address (the peer, or `X-Forwarded-For` behind a trusted proxy).
    pub client_addr: Option<String>,
    /// `User-Agent`, truncated.
    pub user_agent: Option<String>,
}
