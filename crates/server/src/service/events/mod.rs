//! Live events for the console (server-sent events) and outbound webhooks.
//!
//! Both consume the `EventBus` (Redis pub/sub when configured, so every instance sees every
//! event) and forward only the live kinds: `threat.*` and `device.state_changed`.
//!
//! Stream semantics: at most once, no replay. A subscriber sees the events published while
//! it is connected; `Last-Event-ID` is not supported (events carry no SSE id) and a
//! reconnecting console reloads its lists instead. A subscriber too slow for the bus
//! buffer skips what it missed (logged). Keep-alive comments every 15 s keep proxies from
//! closing an idle stream.
//!
//! Browsers cannot set `Authorization` on `EventSource`, so a logged-in person first asks
//! for a ticket (`POST /api/v1/events/ticket`, with the bearer token) and opens
//! `GET /api/v1/events/stream?ticket=…`. The ticket is the access token sealed with
//! AES-256-GCM under a key derived from the server secret, with an expiry (60 s) and a
//! nonce; it is single use across instances (`OnceStore` on the nonce), unreadable to
//! whoever sees the URL in a log, and redeeming it re-runs the full access-token check
//! (session live, user enabled, role), so logging out also kills unused tickets. An open
//! stream re-checks its access token every 5 s and ends when it is no longer valid
//! (logout, expiry, disabled user), so a stream never outlives its credential.

pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::ports::{EVENT_DEVICE_STATE_CHANGED, EVENT_THREAT_RECORDED, EVENT_THREAT_UPDATED};
use super::tokens::wrap::Wrapper;
use crate::domain::{UnixMillis, now_millis};
use crate::error::{AppError, AppResult};
use crate::infra::keys::random_token;
use crate::infra::stores::{Event, EventBus, OnceStore};

/// The event kinds forwarded to consoles and webhooks.
pub const LIVE_KINDS: [&str; 3] = [
    EVENT_THREAT_RECORDED,
    EVENT_THREAT_UPDATED,
    EVENT_DEVICE_STATE_CHANGED,
];

/// Whether `kind` goes to consoles and webhooks.
pub fn is_live_kind(kind: &str) -> bool {
    kind.starts_with("threat.") || kind == EVENT_DEVICE_STATE_CHANGED
}

/// Lifetime of a stream ticket.
pub const TICKET_TTL: Duration = Duration::from_secs(60);
const TICKET_AAD: &str = "events-ticket-v1";
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Serialize, Deserialize)]
struct TicketBody {
    /// The access token.
    t: String,
    /// Expiry, Unix millis.
    e: UnixMillis,
    /// Single-use nonce.
    n: String,
}

/// Stream subscriptions and tickets.
pub struct EventsService {
    bus: Arc<dyn EventBus>,
    once: Arc<dyn OnceStore>,
    wrapper: Wrapper,
}

impl std::fmt::Debug for EventsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventsService").finish_non_exhaustive()
    }
}

impl EventsService {
    /// Builds the service; `server_secret` derives the ticket key.
    pub fn new(bus: Arc<dyn EventBus>, once: Arc<dyn OnceStore>, server_secret: &[u8]) -> Self {
        Self {
            bus,
            once,
            wrapper: Wrapper::derive(server_secret, "events-ticket"),
        }
    }

    /// A single-use ticket standing for `access_token` for [`TICKET_TTL`].
    pub fn ticket(&self, access_token: &str) -> (String, UnixMillis) {
        let expires_at =
            now_millis() + i64::try_from(TICKET_TTL.as_millis()).unwrap_or(i64::MAX / 2);
        let body = serde_json::to_vec(&TicketBody {
            t: access_token.to_owned(),
            e: expires_at,
            n: random_token::<16>(),
        })
        .expect("ticket serializes");
        (
            B64URL.encode(self.wrapper.seal(&body, TICKET_AAD)),
            expires_at,
        )
    }

    /// Redeems a ticket once, returning the access token it stands for.
    ///
    /// # Errors
    /// `Unauthorized` when the ticket is malformed, forged, expired or already used.
    pub async fn redeem(&self, ticket: &str) -> AppResult<String> {
        if ticket.len() > 4096 {
            return Err(AppError::Unauthorized);
        }
        let sealed = B64URL.decode(ticket).map_err(|_| AppError::Unauthorized)?;
        let body = self
            .wrapper
            .open(&sealed, TICKET_AAD)
            .map_err(|_| AppError::Unauthorized)?;
        let body: TicketBody = serde_json::from_slice(&body).map_err(|_| AppError::Unauthorized)?;
        let now = now_millis();
        if now >= body.e {
            return Err(AppError::Unauthorized);
        }
        let ttl = Duration::from_millis(u64::try_from(body.e - now).unwrap_or(0))
            + Duration::from_secs(1);
        if !self
            .once
            .claim(&format!("events-ticket:{}", body.n), ttl)
            .await?
        {
            return Err(AppError::Unauthorized);
        }
        Ok(body.t)
    }

    /// A subscription to every event of every instance (filter with [`is_live_kind`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.bus.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::stores::MemoryStores;

    #[tokio::test]
    async fn tickets_are_single_use_and_unforgeable() {
        let stores = Arc::new(MemoryStores::default());
        let service = EventsService::new(stores.clone(), stores.clone(), &[1u8; 32]);
        let (ticket, _) = service.ticket("access.token.value");
        assert!(!ticket.contains("access"));
        assert_eq!(service.redeem(&ticket).await.unwrap(), "access.token.value");
        assert!(matches!(
            service.redeem(&ticket).await,
            Err(AppError::Unauthorized)
        ));
        let other = EventsService::new(stores.clone(), stores, &[2u8; 32]);
        let (foreign, _) = other.ticket("x");
        assert!(service.redeem(&foreign).await.is_err());
        assert!(service.redeem("not-a-ticket").await.is_err());
    }

    #[test]
    fn live_kinds_are_threats_and_device_states_only() {
        assert!(LIVE_KINDS.iter().all(|kind| is_live_kind(kind)));
        assert!(is_live_kind("threat.anything"));
        assert!(!is_live_kind("audit.appended"));
        assert!(!is_live_kind("device.registered"));
    }
}
