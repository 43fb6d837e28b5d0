//! HTTP only: routes, extractors, wire types, the OpenAPI document. Handlers translate
//! between wire and domain types and call services; no rules and no SQL live here.

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod devices;
pub mod events;
pub mod extract;
pub mod health;
pub mod health_reports;
pub mod key_injection;
pub mod keys;
pub mod merchants;
pub mod paging;
pub mod payments;
pub mod release_keys;
pub mod releases;
pub mod state;
pub mod terminal_software;
pub mod threats;
pub mod tokens;
pub mod transactions;
pub mod users;
pub mod webhooks;

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
        (name = "releases", description = "Signed kernel and terminal-software releases"),
        (name = "health", description = "Device health reports, security policy, fleet health"),
        (name = "threats", description = "Threat events, incidents, statistics"),
        (name = "tokens", description = "Transaction Tokens, their keys and JWKS"),
        (name = "events", description = "Live threat and device-state events"),
        (name = "webhooks", description = "Outbound webhooks and their delivery log"),
        (name = "keys", description = "Key custody: BDKs, zone PIN keys, dual control, key sets"),
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
        .routes(routes!(
            payments::create_sale,
            payments::list_device_transactions
        ))
        .routes(routes!(payments::refund_device_transaction))
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
        .routes(routes!(releases::upload_kernel, releases::list_kernels))
        .routes(routes!(releases::get_kernel))
        .routes(routes!(releases::rerun_conformance))
        .routes(routes!(releases::publish_kernel))
        .routes(routes!(releases::pause_kernel))
        .routes(routes!(releases::resume_kernel))
        .routes(routes!(releases::deprecate_kernel))
        .routes(routes!(releases::rollback_channel))
        .routes(routes!(
            releases::get_compatibility,
            releases::replace_compatibility
        ))
        .routes(routes!(releases::device_kernel))
        .routes(routes!(releases::download_kernel))
        .routes(routes!(releases::public_kernel))
        .routes(routes!(releases::public_kernel_wasm))
        .routes(routes!(
            terminal_software::create_terminal_release,
            terminal_software::list_terminal_releases
        ))
        .routes(routes!(terminal_software::push_terminal_release))
        .routes(routes!(terminal_software::terminal_adoption))
        .routes(routes!(terminal_software::outdated_devices))
        .routes(routes!(terminal_software::device_check_in))
        .routes(routes!(terminal_software::report_task_result))
        .routes(routes!(health_reports::create_health_nonce))
        .routes(routes!(health_reports::submit_health_report))
        .routes(routes!(
            health_reports::get_security_policy,
            health_reports::update_security_policy
        ))
        .routes(routes!(health_reports::list_security_policy_versions))
        .routes(routes!(health_reports::device_health_history))
        .routes(routes!(health_reports::fleet_health_stats))
        .routes(routes!(health_reports::sweep_heartbeats))
        .routes(routes!(threats::list_threats))
        .routes(routes!(threats::threat_stats))
        .routes(routes!(threats::get_threat))
        .routes(routes!(threats::update_threat_state))
        .routes(routes!(tokens::issue_token))
        .routes(routes!(tokens::jwks))
        .routes(routes!(tokens::rotate_keys))
        .routes(routes!(tokens::introspect_token))
        .routes(routes!(events::create_ticket))
        .routes(routes!(events::stream_events))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(keys::list_keys))
        .routes(routes!(keys::get_key))
        .routes(routes!(keys::generate_key))
        .routes(routes!(keys::import_tr31))
        .routes(routes!(keys::activate_key))
        .routes(routes!(keys::retire_key))
        .routes(routes!(keys::open_ceremony))
        .routes(routes!(keys::get_ceremony))
        .routes(routes!(keys::submit_component))
        .routes(routes!(keys::confirm_ceremony))
        .routes(routes!(keys::rotate_master))
        .routes(routes!(
            release_keys::list_release_keys,
            release_keys::add_release_key
        ))
        .routes(routes!(release_keys::retire_release_key))
        .routes(routes!(keys::list_profiles))
        .routes(routes!(keys::update_profile))
        .routes(routes!(keys::list_key_sets))
        .routes(routes!(keys::rotate_key_set))
        .routes(routes!(key_injection::request_keys))
        .routes(routes!(key_injection::confirm_keys))
        .routes(routes!(key_injection::activate))
        .routes(routes!(key_injection::key_status))
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
                    otel.name = %format!("HTTP {}", req.method()),
                    otel.kind = "server",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %request_id,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
}
