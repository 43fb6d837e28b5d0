//! The one error type every request can end in, and its JSON shape.
//!
//! `code` is stable and machine-readable; `message` is for humans; internals (database and
//! library errors) are logged inside the request span and never shown to the client.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// A field-level validation problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The request field at fault (dotted path).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: &'static str,
    /// Human-readable text; never contains internals.
    pub message: String,
    /// Optional structured details (field errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

/// Every error a request can end in. The `Display` text is what clients see.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No or invalid credentials.
    #[error("authentication required")]
    Unauthorized,
    /// Username or password wrong (deliberately not saying which).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The refresh token is unknown, expired, spent or revoked.
    #[error("refresh token invalid, expired or revoked")]
    InvalidRefreshToken,
    /// Authenticated, but the principal's role or scopes do not allow this.
    #[error("not allowed for this principal")]
    Forbidden,
    /// The resource does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Not found, with a code naming what (`transaction_not_found`), for endpoints whose
    /// clients match on it.
    #[error("{message}")]
    Missing {
        /// Stable code, e.g. `transaction_not_found`.
        code: &'static str,
        /// Human-readable explanation.
        message: &'static str,
    },
    /// The request conflicts with current state; the code names the conflict.
    #[error("{message}")]
    Conflict {
        /// Stable code, e.g. `username_taken`.
        code: &'static str,
        /// Human-readable explanation.
        message: &'static str,
    },
    /// The request is well-formed but refused by a rule; the code names the rule.
    #[error("{message}")]
    Unprocessable {
        /// Stable code, e.g. `attestation_format_not_allowed`.
        code: &'static str,
        /// Human-readable explanation.
        message: &'static str,
    },
    /// A device-signed request failed authentication; the code says why.
    #[error("device request refused: {0}")]
    DeviceAuth(&'static str),
    /// Field validation failed.
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    /// The body is not valid JSON or does not match the schema.
    #[error("malformed request body: {0}")]
    MalformedBody(String),
    /// A query string or path parameter could not be parsed.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The body is not `application/json`.
    #[error("expected a request with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Too many attempts; retry after the given delay.
    #[error("too many attempts, retry later")]
    TooManyRequests {
        /// When the client may try again.
        retry_after: Duration,
    },
    /// A dependency (database, Redis) is unavailable.
    #[error("service unavailable")]
    Unavailable,
    /// Internal: logged, never shown.
    #[error("internal error")]
    Sqlx(#[from] sqlx::Error),
    /// Internal: logged, never shown.
    #[error("internal error")]
    Redis(#[from] redis::RedisError),
    /// Internal: logged, never shown.
    #[error("internal error")]
    Other(#[from] anyhow::Error),
}

impl AppError {
    /// Shorthand for a validation error on one field.
    pub fn field(field: &str, problem: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, problem)])
    }

    /// The HTTP status for this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized
            | Self::InvalidCredentials
            | Self::InvalidRefreshToken
            | Self::DeviceAuth(_) => StatusCode::UNAUTHORIZED,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::Missing { .. } => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::MalformedBody(_) | Self::InvalidParameter(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Sqlx(_) | Self::Redis(_) | Self::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Missing { code, .. } => code,
            Self::DeviceAuth(code) => code,
            Self::Validation(_) => "validation_failed",
            Self::MalformedBody(_) => "malformed_body",
            Self::InvalidParameter(_) => "invalid_parameter",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable => "service_unavailable",
            Self::Sqlx(_) | Self::Redis(_) | Self::Other(_) => "internal_error",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            // The trace layer's span carries the request id, so this line can be correlated.
            tracing::error!(error = ?self, "request failed");
        }
        let details = match &self {
            Self::Validation(fields) => Some(fields.clone()),
            _ => None,
        };
        let body = ErrorBody {
            code: self.code(),
            message: self.to_string(),
            details,
        };
        let mut res = (status, Json(body)).into_response();
        match self {
            Self::TooManyRequests { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            Self::Unauthorized | Self::InvalidCredentials | Self::InvalidRefreshToken => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"softpos\""),
                );
            }
            _ => {}
        }
        res
    }
}

/// Result alias used across services and repositories.
pub type AppResult<T> = Result<T, AppError>;
