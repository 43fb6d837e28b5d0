//! `softpos-server`: the SUNBAY SoftPOS back end.
//!
//! Layers, top to bottom: [`api`] (HTTP only: routes, extractors, wire types, OpenAPI) →
//! [`service`] (business rules; no axum, no SQL) → [`repository`] (SQL over `sqlx::Any`, so
//! one body of code serves SQLite and PostgreSQL) → [`infra`] (pools, Redis, stores, keys,
//! TLS, telemetry). [`domain`] holds the types the services reason about.
//!
//! Services on this spine: device attestation (Android Key Attestation and the software
//! format) and lifecycle, health reports and threats, Transaction Tokens, key custody and
//! remote key injection, payments over a processor connector, signed releases, live events
//! and webhooks. They call each other only through the traits in [`service::ports`], wired
//! in [`build_state`].
//!
//! Security notes: passwords are Argon2id; refresh tokens and API keys are stored as SHA-256
//! hashes of 256-bit random values; access tokens are short-lived HS256 JWTs checked against
//! a live session on every request; every administrative and security action is appended
//! to a hash-chained audit log. Secrets never reach logs or error bodies.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod infra;
pub mod repository;
pub mod service;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use api::state::{AppState, HttpSettings};
use config::Config;
use infra::stores::Stores;
use repository::api_keys::SqlApiKeyRepository;
use repository::audit::SqlAuditRepository;
use repository::devices::SqlDeviceRepository;
use repository::health::SqlHealthRepository;
use repository::keys::SqlKeyRepository;
use repository::merchants::SqlMerchantRepository;
use repository::releases::SqlReleaseRepository;
use repository::sessions::SqlSessionRepository;
use repository::threats::SqlThreatRepository;
use repository::tokens::SqlTokenRepository;
use repository::transactions::SqlTransactionRepository;
use repository::users::SqlUserRepository;
use repository::webhooks::SqlWebhookRepository;
use service::api_keys::ApiKeyService;
use service::audit::AuditService;
use service::auth::{AuthService, AuthSettings};
use service::devices::{DevicePolicy, DeviceService};
use service::events::EventsService;
use service::events::webhooks::{WebhookService, WebhookSettings};
use service::health::{HealthService, PolicyStore};
use service::keys::KeyService;
use service::keys::store::{KeyStore, MasterKeyring, SealedKeyStore};
use service::merchants::MerchantService;
use service::payments::{PaymentPorts, PaymentService};
use service::releases::{ReleaseService, ReleaseSettings};
use service::threats::ThreatService;
use service::tokens::{TokenPorts, TokenService, TokenSettings};
use service::users::UserService;

/// Connects everything, creates the first admin if needed, and builds the state.
///
/// # Errors
/// Unreachable database or Redis, bad secrets, failed migrations.
pub async fn build_state(config: &Config) -> anyhow::Result<AppState> {
    let metrics = infra::telemetry::init_metrics()?;
    let db = infra::db::connect(&config.database_url(), config.database_max_connections).await?;
    let stores = match &config.redis_url {
        Some(url) => Stores::redis(url, &config.redis_key_prefix)
            .await
            .context("cannot connect to Redis")?,
        None => Stores::memory(),
    };
    let jwt_secret = infra::keys::load_jwt_secret(config.jwt_secret.as_deref(), &config.data_dir)?;

    let users = Arc::new(SqlUserRepository::new(&db));
    let sessions = Arc::new(SqlSessionRepository::new(&db));
    let api_key_repo = Arc::new(SqlApiKeyRepository::new(&db));
    let audit = Arc::new(AuditService::new(
        Arc::new(SqlAuditRepository::new(&db)),
        stores.events.clone(),
    ));
    let auth = Arc::new(AuthService::new(
        users.clone(),
        sessions,
        api_key_repo.clone(),
        stores.limiter.clone(),
        audit.clone(),
        &jwt_secret,
        AuthSettings {
            access_ttl: Duration::from_secs(config.access_token_ttl_secs),
            refresh_ttl: Duration::from_secs(config.refresh_token_ttl_secs),
            max_failures_per_account: config.login_max_failures_per_account,
            max_failures_per_addr: config.login_max_failures_per_addr,
            throttle_window: Duration::from_secs(config.login_throttle_window_secs),
        },
    ));
    if let Some(password) = auth
        .ensure_initial_admin(config.admin_password.as_deref())
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the initial admin: {error:?}"))?
    {
        // Printed once, on stdout and not in the structured log.
        println!("==================================================================");
        println!("First run: created user `admin` with password: {password}");
        println!("It is shown only this once. Log in and change it.");
        println!("==================================================================");
    }
    let merchant_repo = Arc::new(SqlMerchantRepository::new(&db));
    let devices = Arc::new(
        DeviceService::new(
            Arc::new(SqlDeviceRepository::new(&db)),
            merchant_repo.clone(),
            stores.once.clone(),
            stores.limiter.clone(),
            audit.clone(),
            &jwt_secret,
            DevicePolicy {
                allow_software_attestation: config.allow_software_attestation,
            },
        )
        .with_attestation(
            android_attestation_verifier(config)?,
            Arc::new(repository::attestations::SqlAttestationRepository::new(&db)),
        ),
    );
    let health_repo = Arc::new(SqlHealthRepository::new(&db));
    let policies = Arc::new(PolicyStore::new(health_repo.clone(), audit.clone()));
    policies
        .ensure_default()
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the default security policy: {error:?}"))?;
    devices.set_events(stores.events.clone());
    let threats = Arc::new(ThreatService::new(
        Arc::new(SqlThreatRepository::new(&db)),
        policies.clone(),
        devices.clone(),
        audit.clone(),
        stores.events.clone(),
    ));
    let health = Arc::new(HealthService::new(
        health_repo,
        policies,
        threats.clone(),
        stores.once.clone(),
        &jwt_secret,
    ));
    devices.set_health_gate(health.clone());
    tokio::spawn(health.clone().run_heartbeat_sweeps());
    if config.allow_software_attestation {
        tracing::warn!("software attestation is ALLOWED: test and development deployments only");
    }
    let keyring = Arc::new(MasterKeyring::load(
        config.master_key.as_deref(),
        config.master_key_file.as_deref(),
        &config.data_dir,
    )?);
    let key_repo = Arc::new(SqlKeyRepository::new(&db));
    let key_store: Arc<dyn KeyStore> = Arc::new(SealedKeyStore::new(keyring, key_repo.clone()));
    service::keys::legacy::migrate_legacy_wraps(
        key_repo.as_ref(),
        key_store.as_ref(),
        jwt_secret.expose(),
    )
    .await
    .map_err(|error| anyhow::anyhow!("cannot move legacy wrapped keys: {error:?}"))?;
    let keys = Arc::new(
        KeyService::new(
            key_repo.clone(),
            key_store.clone(),
            devices.clone(),
            audit.clone(),
        )
        .with_health_gate(health.clone()),
    );
    let secure_cookies = config.tls_cert.is_some() || config.tls_self_signed;
    let pan_fingerprint_key = infra::keys::load_pan_fingerprint_key(
        config.pan_fingerprint_key.as_deref(),
        &config.data_dir,
    )?;
    // Configuration only seeds the key store's trusted release keys.
    let release_keys = config.release_keys()?;
    keys.seed_release_keys(&release_keys)
        .await
        .map_err(|error| anyhow::anyhow!("cannot seed the release keys: {error:?}"))?;
    if keys
        .list_release_keys()
        .await
        .map_err(|error| anyhow::anyhow!("cannot read the release keys: {error:?}"))?
        .is_empty()
    {
        tracing::warn!("no trusted release public key: kernel and terminal uploads are refused");
    }
    let releases = Arc::new(
        ReleaseService::new(
            Arc::new(SqlReleaseRepository::new(&db)),
            audit.clone(),
            ReleaseSettings {
                keys: release_keys,
                max_upload_bytes: config.release_max_upload_bytes,
            },
        )
        .with_trusted_keys(keys.clone()),
    );
    let token_ports = TokenPorts {
        health: health.clone(),
        threats: threats.clone(),
        keys: keys.clone(),
    };
    let tokens = Arc::new(TokenService::new(
        Arc::new(SqlTokenRepository::new(&db)),
        token_ports,
        stores.once.clone(),
        audit.clone(),
        key_store.clone(),
        TokenSettings {
            ttl: Duration::from_secs(config.token_ttl_secs),
        },
    ));
    let processor = Arc::new(service::payments::acquirer::SimulatedAcquirer::new(
        "issuer-sim",
        keys.clone(),
        Duration::from_millis(config.processor_timeout_ms),
    ));
    let payments = Arc::new(
        PaymentService::new(
            Arc::new(SqlTransactionRepository::new(&db)),
            PaymentPorts {
                tokens: tokens.clone(),
                keys: keys.clone(),
                threats: threats.clone(),
            },
            processor,
            audit.clone(),
            pan_fingerprint_key.expose(),
        )
        // The HTTP layer drops requests older than the timeout: a lease past it means a dead worker.
        .with_idempotency_lease(Duration::from_secs(config.request_timeout_secs + 2)),
    );
    let events = Arc::new(EventsService::new(
        stores.events.clone(),
        stores.once.clone(),
        jwt_secret.expose(),
    ));
    let webhooks = Arc::new(WebhookService::new(
        Arc::new(SqlWebhookRepository::new(&db)),
        stores.once.clone(),
        audit.clone(),
        key_store.clone(),
        WebhookSettings {
            max_attempts: config.webhook_max_attempts,
            base_delay: Duration::from_millis(config.webhook_retry_base_ms),
            max_delay: Duration::from_millis(config.webhook_retry_max_ms),
            timeout: Duration::from_secs(config.webhook_timeout_secs),
        },
    )?);
    webhooks.spawn_dispatcher(&stores.events);
    Ok(AppState {
        users: Arc::new(UserService::new(users, audit.clone())),
        api_keys: Arc::new(ApiKeyService::new(api_key_repo, audit.clone())),
        merchants: Arc::new(MerchantService::new(merchant_repo, audit.clone())),
        devices,
        keys,
        auth,
        audit,
        db,
        stores,
        metrics,
        settings: Arc::new(HttpSettings {
            trust_forwarded_for: config.trust_forwarded_for,
            secure_cookies,
            metrics_token: config.metrics_token.clone(),
        }),
        payments,
        releases,
        health,
        threats,
        tokens,
        events,
        webhooks,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: draining in-flight requests");
}

/// Runs the server until SIGINT/SIGTERM, then drains in-flight requests.
///
/// # Errors
/// Startup failures (configuration, database, Redis, TLS, bind).
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    let state = build_state(&config).await?;
    let tls = match (&config.tls_cert, &config.tls_key, config.tls_self_signed) {
        (Some(cert), Some(key), _) => Some(infra::tls::server_config(cert, key)?),
        (_, _, true) => {
            let (cert, key) = infra::tls::ensure_self_signed(&config.data_dir)?;
            Some(infra::tls::server_config(&cert, &key)?)
        }
        _ => None,
    };
    let limits = api::HttpLimits {
        max_body_bytes: config.max_body_bytes,
        request_timeout: Duration::from_secs(config.request_timeout_secs),
        cors_origins: config.cors_origins(),
        hsts: tls.is_some(),
    };
    let app =
        api::router(state.clone(), &limits).into_make_service_with_connect_info::<SocketAddr>();

    let listener = std::net::TcpListener::bind(config.listen_addr)
        .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Tests and scripts read this line to find the bound port.
    println!("softpos-server listening on {scheme}://{addr}");
    let _ = std::io::stdout().flush();
    tracing::info!(
        %addr,
        database = state.db.backend.as_str(),
        stores = state.stores.health.kind(),
        tls = tls.is_some(),
        "softpos-server started"
    );

    let grace = Duration::from_secs(config.shutdown_grace_secs);
    match tls {
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let shutdown_handle = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                shutdown_handle.graceful_shutdown(Some(grace));
            });
            axum_server::from_tcp_rustls(
                listener,
                axum_server::tls_rustls::RustlsConfig::from_config(tls),
            )?
            .handle(handle)
            .serve(app)
            .await?;
        }
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
    }
    state.db.close().await;
    tracing::info!("softpos-server stopped");
    Ok(())
}

/// The Android Key Attestation verifier from configuration.
fn android_attestation_verifier(
    config: &Config,
) -> anyhow::Result<Arc<service::attestation::AndroidKeyVerifier>> {
    let policy = service::attestation::AndroidPolicy::from_config(config)?;
    let extra = service::attestation::extra_roots(config);
    if !extra.is_empty() {
        tracing::warn!(
            count = extra.len(),
            "extra Android attestation roots are trusted: testing deployments only"
        );
    }
    if policy.revocation_list.is_none() {
        tracing::warn!(
            "ANDROID_ATTESTATION_REVOCATION_LIST unset: attestation revocation is not checked"
        );
    }
    Ok(Arc::new(service::attestation::AndroidKeyVerifier::new(
        policy, &extra,
    )?))
}
