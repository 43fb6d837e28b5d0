//! The back-end client's error: a stable code for every failure, the server's own code when it
//! answered with an error body.

use crate::store::StoreError;

/// A client failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error status. `code` is its stable code (`{"code": ...}`,
    /// or `{"error": {"code": ...}}`), or `http_<status>` when the body had none.
    #[error("server refused ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's stable code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The request did not get an answer (connection refused, reset, timeout).
    #[error("transport failure: {0}")]
    Transport(String),
    /// The answer did not parse.
    #[error("unexpected answer from the server: {0}")]
    BadResponse(String),
    /// The device is not registered yet (no device id in the store).
    #[error("this terminal is not registered")]
    NotRegistered,
    /// No server URL configured, or it is malformed.
    #[error("no usable server URL ({0})")]
    ServerUrl(String),
    /// Waiting for a state change took too long.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// A secure store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A kernel update failure.
    #[error(transparent)]
    Kernel(#[from] super::kernel::KernelError),
}

impl ClientError {
    /// Stable machine-readable code (the server's for [`ClientError::Server`]).
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Self::Server { code, .. } => code,
            Self::Transport(_) => "transport",
            Self::BadResponse(_) => "bad_response",
            Self::NotRegistered => "not_registered",
            Self::ServerUrl(_) => "server_url",
            Self::Timeout(_) => "timeout",
            Self::Store(inner) => inner.code(),
            Self::Kernel(inner) => inner.code(),
        }
    }

    /// The HTTP status when the server answered.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A transport failure, worth retrying with the same idempotency key.
    #[must_use]
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Transport(_))
    }

    pub(crate) fn from_reqwest(error: &reqwest::Error) -> Self {
        // reqwest's text can include the URL but never bodies or headers.
        let kind = if error.is_timeout() {
            "timeout"
        } else if error.is_connect() {
            "connect"
        } else {
            "request"
        };
        Self::Transport(format!("{kind}: {error}"))
    }

    /// Maps an error answer.
    pub(crate) fn from_body(status: u16, body: &[u8]) -> Self {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let object = parsed
            .as_ref()
            .map(|value| value.get("error").unwrap_or(value));
        let field = |name: &str| {
            object
                .and_then(|object| object.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Self::Server {
            status,
            code: field("code").unwrap_or_else(|| format!("http_{status}")),
            message: field("message").unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_error_body_shapes_map_to_the_code() {
        let flat = ClientError::from_body(409, br#"{"code":"device_not_active","message":"no"}"#);
        assert_eq!(flat.code(), "device_not_active");
        assert_eq!(flat.status(), Some(409));
        let nested = ClientError::from_body(
            404,
            br#"{"error":{"code":"transaction_not_found","message":"x"}}"#,
        );
        assert_eq!(nested.code(), "transaction_not_found");
        assert_eq!(ClientError::from_body(502, b"<html>").code(), "http_502");
    }
}
