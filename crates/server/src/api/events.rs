//! `/api/v1/events`: the live stream of threat and device-state events (server-sent
//! events) and the one-time tickets browsers use to open it.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use chrono::{DateTime, Utc};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

use super::extract::{AnyStaff, Authorized, Policy};
use super::state::AppState;
use crate::domain::{Principal, to_rfc3339};
use crate::error::{AppError, ErrorBody};
use crate::service::events::is_live_kind;

/// A one-time stream ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    /// Pass as `?ticket=` to `GET /api/v1/events/stream` once, before `expires_at`.
    pub ticket: String,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Issues a single-use, 60-second ticket that opens the event stream for the caller
/// (browsers cannot set `Authorization` on `EventSource`).
#[utoipa::path(post, path = "/api/v1/events/ticket", tag = "events",
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, body = TicketResponse), (status = 401, body = ErrorBody)))]
pub async fn create_ticket(
    _auth: Authorized<AnyStaff>,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<TicketResponse>, AppError> {
    // `Authorized` accepted a bearer token (API keys have no scope here), so it is present.
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or(AppError::Unauthorized)?;
    let (ticket, expires_at) = state.events.ticket(token.trim());
    Ok(Json(TicketResponse {
        ticket,
        expires_at: to_rfc3339(expires_at),
    }))
}

/// Stream query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// A ticket from `POST /api/v1/events/ticket`, instead of `Authorization`.
    pub ticket: Option<String>,
}

/// A person allowed to watch the stream, by bearer token or by ticket.
#[derive(Debug)]
pub struct EventViewer {
    /// The caller.
    pub principal: Principal,
    /// The access token it authenticated with, re-checked while the stream is open.
    access_token: String,
}

fn bearer(parts: &Parts) -> Option<String> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|token| token.trim().to_owned())
}

/// How often an open stream re-checks its access token (session revoked, user disabled,
/// token expired): the stream lives no longer than the credential that opened it.
pub const STREAM_RECHECK: Duration = Duration::from_secs(5);

impl<S> FromRequestParts<S> for EventViewer
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ticket = Query::<StreamQuery>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|Query(query)| query.ticket);
        let Some(ticket) = ticket else {
            let auth = Authorized::<AnyStaff>::from_request_parts(parts, state).await?;
            // `Authorized` accepted a bearer token (API keys have no scope here).
            let access_token = bearer(parts).ok_or(AppError::Unauthorized)?;
            return Ok(Self {
                principal: auth.principal,
                access_token,
            });
        };
        let app = AppState::from_ref(state);
        let token = app.events.redeem(&ticket).await?;
        let principal = app.auth.authenticate_access(&token).await?;
        let allowed =
            matches!(&principal, Principal::User { role, .. } if AnyStaff::ROLES.contains(role));
        if !allowed {
            return Err(AppError::Forbidden);
        }
        Ok(Self {
            principal,
            access_token: token,
        })
    }
}

/// Live `threat.*` and `device.state_changed` events from every instance, as server-sent
/// events (`event:` the kind, `data:` its JSON payload), with keep-alive comments every
/// 15 s. At most once: no ids, no replay on reconnect (`Last-Event-ID` is ignored).
/// Authenticate with `Authorization: Bearer` or `?ticket=`; the stream ends when that
/// access token stops being valid (logout, expiry, disabled user): open a new one.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events",
    params(StreamQuery),
    security(("bearer" = ["admin", "security_officer", "operator", "auditor"])),
    responses((status = 200, content_type = "text/event-stream", body = String,
            description = "an endless stream of events"),
        (status = 401, body = ErrorBody)))]
pub async fn stream_events(
    viewer: EventViewer,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    tracing::debug!(actor = %viewer.principal.actor(), "event stream opened");
    // Subscribed before the response head is sent: anything published after the client
    // saw the 200 reaches it.
    let receiver = state.events.subscribe();
    let mut recheck = tokio::time::interval(STREAM_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watch = (receiver, recheck, state.auth.clone(), viewer.access_token);
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            let (receiver, recheck, auth, token) = &mut watch;
            tokio::select! {
                received = receiver.recv() => match received {
                    Ok(event) if is_live_kind(&event.kind) => {
                        let sse = SseEvent::default()
                            .event(event.kind.clone())
                            .data(event.payload.to_string());
                        return Some((Ok(sse), watch));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "event stream subscriber lagged; events skipped");
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = recheck.tick() => {
                    if auth.authenticate_access(token).await.is_err() {
                        return None;
                    }
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
