//! Extractors: JSON, query and path with our error shape; the request context; and
//! `Authorized<P>`, which authenticates the caller and enforces a role/scope policy before
//! the handler runs.

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::state::AppState;
use crate::domain::{Principal, Role, Scope};
use crate::error::AppError;
use crate::service::RequestContext;

/// `axum::Json` with our error body on rejection.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for AppJson<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType,
            JsonRejection::BytesRejection(inner)
                if inner.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                AppError::PayloadTooLarge
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
            other => AppError::MalformedBody(other.body_text()),
        }
    }
}

/// `axum::extract::Query` with our error body on rejection.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> Self {
        AppError::InvalidParameter(rejection.body_text())
    }
}

/// `axum::extract::Path` with our error body on rejection.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct AppPath<T>(pub T);

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> Self {
        AppError::InvalidParameter(rejection.body_text())
    }
}

/// Request facts for services: request id, client address, user agent.
#[derive(Debug, Clone)]
pub struct Ctx(pub RequestContext);

impl<S> FromRequestParts<S> for Ctx
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.chars().take(256).collect::<String>())
        };
        let forwarded = if state.settings.trust_forwarded_for {
            header("x-forwarded-for")
                .and_then(|value| value.split(',').next().map(|addr| addr.trim().to_owned()))
                .filter(|addr| addr.parse::<std::net::IpAddr>().is_ok())
        } else {
            None
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        Ok(Ctx(RequestContext {
            request_id: header("x-request-id"),
            client_addr: forwarded.or(peer),
            user_agent: header("user-agent"),
        }))
    }
}

/// Who may call an endpoint: people with one of `ROLES`, or API keys carrying `SCOPE`.
pub trait Policy: Send + Sync + 'static {
    /// Roles allowed.
    const ROLES: &'static [Role];
    /// Scope an API key needs; `None`: API keys are refused.
    const SCOPE: Option<Scope>;
}

macro_rules! policy {
    ($(#[$meta:meta])* $name:ident, [$($role:ident),*], $scope:expr) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name;
        impl Policy for $name {
            const ROLES: &'static [Role] = &[$(Role::$role),*];
            const SCOPE: Option<Scope> = $scope;
        }
    };
}

policy!(
    /// Any logged-in person (own account and sessions).
    AnyStaff, [Admin, SecurityOfficer, Operator, Auditor], None
);
policy!(
    /// Administrators only (users, API keys).
    AdminOnly, [Admin], None
);
policy!(
    /// Reading and verifying the audit log.
    AuditReaders, [Admin, SecurityOfficer, Auditor], Some(Scope::AuditRead)
);
policy!(
    /// Reading merchants.
    MerchantReaders, [Admin, SecurityOfficer, Operator, Auditor], Some(Scope::MerchantsRead)
);
policy!(
    /// Reading devices.
    DeviceReaders, [Admin, SecurityOfficer, Operator, Auditor], Some(Scope::DevicesRead)
);
policy!(
    /// Approving or rejecting registrations.
    DeviceApprovers, [Admin, Operator], Some(Scope::DevicesApprove)
);
policy!(
    /// Suspending, resuming and revoking devices.
    DeviceGuardians, [Admin, SecurityOfficer], None
);
policy!(
    /// Creating and changing merchants.
    MerchantWriters, [Admin, Operator], Some(Scope::MerchantsWrite)
);

/// An authenticated caller that satisfies policy `P`.
#[derive(Debug)]
pub struct Authorized<P: Policy> {
    /// The caller.
    pub principal: Principal,
    _policy: PhantomData<P>,
}

impl<P: Policy> Authorized<P> {
    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
}

/// Extracts the caller from `Authorization: Bearer` or `X-API-Key`.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, AppError> {
    if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| AppError::Unauthorized)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AppError::Unauthorized)?;
        return state.auth.authenticate_access(token.trim()).await;
    }
    if let Some(value) = parts.headers.get("x-api-key") {
        let key = value.to_str().map_err(|_| AppError::Unauthorized)?;
        return state.auth.authenticate_api_key(key.trim()).await;
    }
    Err(AppError::Unauthorized)
}

impl<P, S> FromRequestParts<S> for Authorized<P>
where
    P: Policy,
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let principal = authenticate(parts, &state).await?;
        let allowed = match &principal {
            Principal::User { role, .. } => P::ROLES.contains(role),
            Principal::ApiKey { scopes, .. } => {
                P::SCOPE.is_some_and(|scope| scopes.contains(&scope))
            }
            // Requests never authenticate as the server itself.
            Principal::System { .. } => false,
        };
        if !allowed {
            tracing::info!(actor = %principal.actor(), "forbidden by policy");
            return Err(AppError::Forbidden);
        }
        Ok(Self {
            principal,
            _policy: PhantomData,
        })
    }
}

/// A request signed by a registered device (see `service::devices`), with its body.
#[derive(Debug)]
pub struct SignedDevice {
    /// The authenticated device.
    pub device: crate::domain::Device,
    /// The raw body the signature covered.
    pub body: axum::body::Bytes,
}

impl<S> FromRequest<S> for SignedDevice
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let (device_id, timestamp, nonce, signature, method, path) = {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            let (Some(device_id), Some(timestamp), Some(nonce), Some(signature)) = (
                header("x-device-id"),
                header("x-device-timestamp"),
                header("x-device-nonce"),
                header("x-device-signature"),
            ) else {
                return Err(AppError::DeviceAuth("missing_signature_headers"));
            };
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
            (
                device_id,
                timestamp,
                nonce,
                signature,
                req.method().as_str().to_owned(),
                path,
            )
        };
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::PayloadTooLarge)?;
        let device = app
            .devices
            .authenticate(&crate::service::devices::SignedRequest {
                device_id: &device_id,
                method: &method,
                path: &path,
                timestamp: &timestamp,
                nonce: &nonce,
                body: &body,
                signature: &signature,
            })
            .await?;
        Ok(Self { device, body })
    }
}
