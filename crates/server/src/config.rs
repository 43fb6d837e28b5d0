//! Configuration from command-line flags and environment variables (every flag has an env
//! twin; see `.env.sample`). Defaults are the safe ones: loopback only, embedded SQLite,
//! in-process stores, no CORS, no TLS.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// Back-end configuration. Every field is also an environment variable.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "softpos-server",
    version,
    about = "SUNBAY SoftPOS back end",
    after_help = "Offline tool: `softpos-server attestation verify --help` checks an Android Key Attestation chain as registration does."
)]
pub struct Config {
    /// Address to listen on. Loopback by default; tests pass `127.0.0.1:0`.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// Folder for the SQLite file, generated development secrets and certificates.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// `sqlite://…` (embedded, the default) or `postgres://…` to scale out.
    /// Unset: `sqlite://<DATA_DIR>/softpos.db?mode=rwc`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Maximum database connections in the pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Optional Redis for state shared across instances (nonces, rate limits, one-time
    /// flags, events). Unset: in-process stores (single instance only).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix for every Redis key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "softpos:")]
    pub redis_key_prefix: String,

    /// HS256 key for access tokens: at least 32 bytes, hex or base64. Every instance behind
    /// one load balancer needs the same value. Unset: generated into `<DATA_DIR>/jwt.key`
    /// (development only; a warning is logged).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Access-token lifetime in seconds.
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value_t = 600)]
    pub access_token_ttl_secs: u64,

    /// Refresh-token (session) lifetime in seconds.
    #[arg(long, env = "REFRESH_TOKEN_TTL_SECS", default_value_t = 12 * 3600)]
    pub refresh_token_ttl_secs: u64,

    /// Failed logins per account within the window before the account is throttled.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_ACCOUNT", default_value_t = 5)]
    pub login_max_failures_per_account: u64,

    /// Failed logins per client address within the window before the address is throttled.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_ADDR", default_value_t = 20)]
    pub login_max_failures_per_addr: u64,

    /// Login throttling window in seconds.
    #[arg(long, env = "LOGIN_THROTTLE_WINDOW_SECS", default_value_t = 900)]
    pub login_throttle_window_secs: u64,

    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// Password of the first `admin` user, used only when the database has no user yet.
    /// Unset: a random password is generated and printed once on stdout.
    #[arg(long, env = "SOFTPOS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Master key wrapping every stored key (AES-256-GCM): 64 hex digits (version 1), or
    /// `version:hex` entries separated by commas; the highest version wraps. Unset (and no
    /// file): generated into `<DATA_DIR>/master.key` (development only; a warning is logged).
    #[arg(long, env = "SOFTPOS_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,

    /// File holding the master keyring in the `SOFTPOS_MASTER_KEY` format.
    #[arg(long, env = "SOFTPOS_MASTER_KEY_FILE")]
    pub master_key_file: Option<std::path::PathBuf>,

    /// PEM certificate chain; with `TLS_KEY` enables TLS 1.3.
    #[arg(long, env = "TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `TLS_CERT`.
    #[arg(long, env = "TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Generate (once) a self-signed certificate for localhost in `<DATA_DIR>/tls` and serve
    /// TLS 1.3 with it. Development only.
    #[arg(
        long,
        env = "TLS_SELF_SIGNED",
        default_value_t = false,
        conflicts_with = "tls_cert"
    )]
    pub tls_self_signed: bool,

    /// Accept the software attestation format at device registration (desktop and web
    /// terminals). Test and development deployments only.
    #[arg(long, env = "ALLOW_SOFTWARE_ATTESTATION", default_value_t = false)]
    pub allow_software_attestation: bool,

    /// Largest accepted request body in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Per-request timeout in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Comma-separated list of origins allowed by CORS. Empty (default): CORS off.
    /// `*` is refused because the API uses credentials.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "")]
    pub cors_allowed_origins: String,

    /// Optional bearer token required to scrape `/metrics`. Unset: `/metrics` is open
    /// (bind to loopback or a private network).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// OTLP/gRPC collector endpoint for OpenTelemetry traces (e.g. `http://127.0.0.1:4317`);
    /// unset: no traces are exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// `service.name` of the exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "softpos-server")]
    pub otel_service_name: String,

    /// Which spans are exported (tracing `EnvFilter` syntax), independent of `RUST_LOG`.
    #[arg(long, env = "OTEL_TRACES_FILTER", default_value = "info")]
    pub otel_traces_filter: String,

    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Milliseconds the processor connector waits for an authorisation before it gives up
    /// and sends an automatic reversal.
    #[arg(long, env = "PROCESSOR_TIMEOUT_MS", default_value_t = 2000)]
    pub processor_timeout_ms: u64,

    /// Key of the PAN fingerprints (HMAC-SHA256, hex or base64, 32+ bytes). Unset: a
    /// development key is generated into the data folder.
    #[arg(long, env = "PAN_FINGERPRINT_KEY", hide_env_values = true)]
    pub pan_fingerprint_key: Option<String>,

    /// Android Key Attestation: comma-separated app packages allowed to register. Empty:
    /// the attested package must equal the package the device reports.
    #[arg(long, env = "ANDROID_ATTESTATION_ALLOWED_PACKAGES", default_value = "")]
    pub android_attestation_allowed_packages: String,

    /// Android Key Attestation: comma-separated SHA-256 digests (hex) of allowed app signing
    /// certificates. Empty: the attested digest must equal the one the device reports.
    #[arg(long, env = "ANDROID_ATTESTATION_ALLOWED_DIGESTS", default_value = "")]
    pub android_attestation_allowed_digests: String,

    /// Android Key Attestation: lowest accepted security level, `tee` or `strongbox`
    /// (`software` only for tests).
    #[arg(
        long,
        env = "ANDROID_ATTESTATION_SECURITY_LEVEL",
        default_value = "tee"
    )]
    pub android_attestation_security_level: String,

    /// Android Key Attestation: path of the operator's copy of Google's revocation status
    /// list (https://android.googleapis.com/attestation/status); its modification time is
    /// its fetch time. Unset: revocation is not checked (a warning is logged).
    #[arg(long, env = "ANDROID_ATTESTATION_REVOCATION_LIST")]
    pub android_attestation_revocation_list: Option<PathBuf>,

    /// Android Key Attestation: oldest accepted revocation list, seconds.
    #[arg(
        long,
        env = "ANDROID_ATTESTATION_REVOCATION_MAX_AGE_SECS",
        default_value_t = 86_400
    )]
    pub android_attestation_revocation_max_age_secs: u64,

    /// Android Key Attestation: accept unlocked bootloaders and unverified boot. Never in
    /// production.
    #[arg(
        long,
        env = "ANDROID_ATTESTATION_ALLOW_UNLOCKED_BOOTLOADER",
        default_value_t = false
    )]
    pub android_attestation_allow_unlocked_bootloader: bool,

    /// TESTING ONLY: comma-separated PEM files whose keys are trusted as extra attestation
    /// roots beside Google's. Default none.
    #[arg(
        long,
        env = "ANDROID_ATTESTATION_EXTRA_ROOTS_FOR_TESTING",
        default_value = ""
    )]
    pub android_attestation_extra_roots_for_testing: String,

    /// Trusted Ed25519 release public keys: comma-separated `id=key` entries, each key 32 bytes
    /// as 64 hex digits or base64. Unset with no file: release uploads are refused.
    #[arg(long, env = "RELEASE_PUBLIC_KEYS", default_value = "")]
    pub release_public_keys: String,

    /// File with more release public keys, one `id=key` per line (`#` comments allowed).
    #[arg(long, env = "RELEASE_PUBLIC_KEYS_FILE")]
    pub release_public_keys_file: Option<PathBuf>,

    /// Largest kernel upload in bytes (a per-route limit above `MAX_BODY_BYTES`).
    #[arg(long, env = "RELEASE_MAX_UPLOAD_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub release_max_upload_bytes: usize,
    /// Lifetime of a Transaction Token in seconds.
    #[arg(long, env = "TOKEN_TTL_SECS", default_value_t = 300)]
    pub token_ttl_secs: u64,

    /// Delivery attempts per webhook event and endpoint.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 6)]
    pub webhook_max_attempts: u32,

    /// Wait before the second webhook attempt, in milliseconds; doubles per attempt.
    #[arg(long, env = "WEBHOOK_RETRY_BASE_MS", default_value_t = 1000)]
    pub webhook_retry_base_ms: u64,

    /// Longest wait between webhook attempts, in milliseconds.
    #[arg(long, env = "WEBHOOK_RETRY_MAX_MS", default_value_t = 300_000)]
    pub webhook_retry_max_ms: u64,

    /// Per-attempt webhook timeout in seconds.
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
}

impl Config {
    /// Trace export settings, when an OTLP endpoint is configured.
    pub fn otlp(&self) -> Option<crate::infra::telemetry::OtlpSettings> {
        self.otlp_endpoint
            .as_ref()
            .filter(|endpoint| !endpoint.trim().is_empty())
            .map(|endpoint| crate::infra::telemetry::OtlpSettings {
                endpoint: endpoint.trim().to_owned(),
                service_name: self.otel_service_name.clone(),
                filter: self.otel_traces_filter.clone(),
            })
    }

    /// The effective database URL.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}/softpos.db?mode=rwc",
                self.data_dir.to_string_lossy()
            ),
        }
    }

    /// The CORS origins, parsed.
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The trusted release keys from `RELEASE_PUBLIC_KEYS` and `RELEASE_PUBLIC_KEYS_FILE`.
    ///
    /// # Errors
    /// A malformed entry, an unreadable file or an id given twice.
    pub fn release_keys(&self) -> anyhow::Result<release_manifest::KeyRing> {
        let mut text = self.release_public_keys.clone();
        if let Some(path) = &self.release_public_keys_file {
            let file = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            text.push('\n');
            text.push_str(&file);
        }
        release_manifest::KeyRing::parse(&text)
            .map_err(|error| anyhow::anyhow!("RELEASE_PUBLIC_KEYS: {error}"))
    }

    /// Checks cross-field rules once at startup.
    ///
    /// # Errors
    /// A human-readable reason when the configuration is unsafe or inconsistent.
    pub fn validate(&self) -> anyhow::Result<()> {
        let url = self.database_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            bail!("DATABASE_URL must start with sqlite: or postgres:");
        }
        if let Some(redis) = &self.redis_url
            && !(redis.starts_with("redis://") || redis.starts_with("rediss://"))
        {
            bail!("REDIS_URL must start with redis:// or rediss://");
        }
        for origin in self.cors_origins() {
            if origin == "*" {
                bail!("CORS_ALLOWED_ORIGINS must list origins; `*` is refused");
            }
            axum::http::HeaderValue::from_str(&origin)
                .with_context(|| format!("invalid CORS origin {origin:?}"))?;
        }
        if self.access_token_ttl_secs == 0 || self.access_token_ttl_secs > 3600 {
            bail!("ACCESS_TOKEN_TTL_SECS must be between 1 and 3600");
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            bail!("REFRESH_TOKEN_TTL_SECS must not be shorter than ACCESS_TOKEN_TTL_SECS");
        }
        if self.login_throttle_window_secs == 0
            || self.login_max_failures_per_account == 0
            || self.login_max_failures_per_addr == 0
        {
            bail!("login throttling settings must be positive");
        }
        if !(50..=60_000).contains(&self.processor_timeout_ms) {
            bail!("PROCESSOR_TIMEOUT_MS must be between 50 and 60000");
        }
        if self.webhook_max_attempts == 0 || self.webhook_max_attempts > 20 {
            bail!("WEBHOOK_MAX_ATTEMPTS must be between 1 and 20");
        }
        if self.webhook_timeout_secs == 0 || self.webhook_retry_max_ms < self.webhook_retry_base_ms
        {
            bail!(
                "WEBHOOK_TIMEOUT_SECS must be positive and WEBHOOK_RETRY_MAX_MS at least WEBHOOK_RETRY_BASE_MS"
            );
        }
        if self.token_ttl_secs == 0 || self.token_ttl_secs > 3600 {
            bail!("TOKEN_TTL_SECS must be between 1 and 3600");
        }
        if self.max_body_bytes < 1024 {
            bail!("MAX_BODY_BYTES must be at least 1024");
        }
        if self.release_max_upload_bytes < 1024 {
            bail!("RELEASE_MAX_UPLOAD_BYTES must be at least 1024");
        }
        self.release_keys()?;
        Ok(())
    }
}
