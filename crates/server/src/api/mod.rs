//! HTTP only: routes, extractors, wire types, the OpenAPI document. Handlers translate
//! between wire and domain types and call services; no rules and no SQL live here.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod extract;
pub mod health;
pub mod merchants;
pub mod payments;
pub mod state;
pub mod transactions;
pub mod users;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::error::AppError;
use crate::infra::telemetry::track_http;
use state::AppState;

/// The OpenAPI document's static part; paths come from the router.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "SUNBAY SoftPOS API", version = "1.0.0",
        description = "Back end of SUNBAY SoftPOS. Every error body is `{code, message, details?}`."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Login, tokens, sessions"),
        (name = "users", description = "User administration"),
        (name = "audit", description = "Hash-chained audit log"),
        (name = "api-keys", description = "Integration keys"),
        (name = "merchants", description = "Merchants"),
        (name = "devices", description = "Device onboarding and lifecycle"),
        (name = "device", description = "Calls signed by a device key"),
        (name = "ops", description = "Liveness, readiness, metrics"),
        (name = "transactions", description = "Transaction records, refunds, voids, reversals, statistics"),
    )
)]
struct ApiDoc;

/// Declares the `bearer` (JWT access token) and `api_key` (`X-API-Key`) schemes. Each
/// operation's security requirement lists the roles (bearer) or scope (api_key) it admits;
/// the integration tests hold the server to exactly that.
#[derive(Debug)]
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from /api/v1/auth/login; scopes list the roles admitted",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "device_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Device-Signature",
                "ECDSA P-256 signature by the device key with X-Device-Id, X-Device-Timestamp and X-Device-Nonce",
            ))),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "API key; scopes list the key scope required",
            ))),
        );
    }
}

/// Every route with its OpenAPI description.
pub fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::list_sessions))
        .routes(routes!(auth::revoke_session))
        .routes(routes!(auth::change_password))
        .routes(routes!(users::create_user, users::list_users))
        .routes(routes!(users::get_user))
        .routes(routes!(audit::list_audit_records))
        .routes(routes!(audit::verify_audit_chain))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(
            merchants::create_merchant,
            merchants::list_merchants
        ))
        .routes(routes!(merchants::get_merchant, merchants::update_merchant))
        .routes(routes!(devices::create_challenge))
        .routes(routes!(devices::register_device))
        .routes(routes!(devices::list_devices))
        .routes(routes!(devices::device_stats))
        .routes(routes!(devices::get_device))
        .routes(routes!(devices::approve_device))
        .routes(routes!(devices::reject_device))
        .routes(routes!(devices::suspend_device))
        .routes(routes!(devices::resume_device))
        .routes(routes!(devices::revoke_device))
        .routes(routes!(devices::device_self))
        .routes(routes!(payments::create_sale))
        .routes(routes!(payments::create_pin_operation))
        .routes(routes!(transactions::list_transactions))
        .routes(routes!(transactions::search_transactions))
        .routes(routes!(transactions::export_transactions))
        .routes(routes!(transactions::transaction_stats))
        .routes(routes!(transactions::get_transaction))
        .routes(routes!(transactions::refund_transaction))
        .routes(routes!(transactions::void_transaction))
        .routes(routes!(transactions::reverse_transaction))
        .routes(routes!(transactions::list_pin_operations))
}

/// The OpenAPI document alone (for `cargo xtask codegen` and tests).
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi_router().into_openapi()
}

/// HTTP-level limits.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Largest body in bytes.
    pub max_body_bytes: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// CORS origins; empty disables CORS.
    pub cors_origins: Vec<String>,
    /// Send HSTS (TLS is on).
    pub hsts: bool,
}

async fn not_found() -> AppError {
    AppError::NotFound("route")
}

/// The whole application router.
pub fn router(state: AppState, limits: &HttpLimits) -> Router {
    let (api, openapi) = openapi_router().split_for_parts();
    let x_request_id = HeaderName::from_static("x-request-id");

    let mut app = api
        .route_layer(axum::middleware::from_fn(track_http))
        .fallback(not_found)
        .with_state(state)
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    if limits.hsts {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    if !limits.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = limits
            .cors_origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_credentials(true)
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .max_age(Duration::from_secs(600)),
        );
    }
    app.layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default();
                // The path only: query strings may carry search text.
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %request_id,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}
