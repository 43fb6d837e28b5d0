//! Signed releases: EMV kernel `.wasm` files and terminal software.
//!
//! Owns the rules of distribution: only manifests signed by a trusted release key (Ed25519,
//! `release_manifest`) whose artifact matches their SHA-256 are stored; a kernel must pass the
//! conformance suite in the kernel host's sandbox (wasmtime, fuel and memory limits) before it
//! can be published; channels with rollout percentages ([`rollout`]), pause, resume, rollback
//! and deprecation; what a device should run (never a draft, never a kernel its terminal
//! version cannot run according to the compatibility table); terminal-software push tasks and
//! check-ins. Every administrative step and every refused upload is audited.
//!
//! Kernel operations are in [`kernels`], terminal software in [`terminal`].

pub mod kernels;
pub mod model;
pub mod rollout;
pub mod terminal;

use std::sync::Arc;

use release_manifest::{KeyRing, ManifestError};
use tokio::sync::Semaphore;

use super::RequestContext;
use super::audit::AuditService;
use crate::domain::NewAuditRecord;
use crate::error::{AppError, AppResult};
use crate::repository::releases::ReleaseRepository;

/// Kernel ABI versions this server can run and serve.
pub const SUPPORTED_ABI_VERSIONS: &[u32] = &[kernel_host::ABI_VERSION];

/// Where the trusted release keys live (the key store); see
/// `service::keys::release_keys`.
#[async_trait::async_trait]
pub trait TrustedReleaseKeys: Send + Sync + std::fmt::Debug {
    /// The keys uploads are verified with now.
    ///
    /// # Errors
    /// Storage errors.
    async fn trusted_release_keys(&self) -> AppResult<KeyRing>;
}

/// Release settings.
#[derive(Debug, Clone)]
pub struct ReleaseSettings {
    /// Trusted release public keys when no [`TrustedReleaseKeys`] source is attached (the
    /// server attaches the key store, which configuration only seeds).
    pub keys: KeyRing,
    /// Largest artifact upload, bytes.
    pub max_upload_bytes: usize,
}

/// Release rules; see the module documentation.
#[derive(Debug)]
pub struct ReleaseService {
    repo: Arc<dyn ReleaseRepository>,
    audit: Arc<AuditService>,
    settings: ReleaseSettings,
    trusted: Option<Arc<dyn TrustedReleaseKeys>>,
    // One conformance run at a time: each compiles a module and runs every virtual card.
    conformance_slots: Arc<Semaphore>,
    // Releases whose conformance run is in progress in this instance.
    conformance_running: Arc<std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>>,
}

/// A refused manifest as an API error with the manifest crate's stable code.
pub(crate) fn manifest_error(error: &ManifestError) -> AppError {
    AppError::Unprocessable {
        code: error.code(),
        message: error.message(),
    }
}

impl ReleaseService {
    /// Builds the service.
    pub fn new(
        repo: Arc<dyn ReleaseRepository>,
        audit: Arc<AuditService>,
        settings: ReleaseSettings,
    ) -> Self {
        Self {
            repo,
            audit,
            settings,
            trusted: None,
            conformance_slots: Arc::new(Semaphore::new(1)),
            conformance_running: Arc::default(),
        }
    }

    /// Largest artifact upload, bytes.
    pub fn max_upload_bytes(&self) -> usize {
        self.settings.max_upload_bytes
    }

    /// Verifies uploads with the keys of `source` (read at each upload) instead of the
    /// configured ones.
    #[must_use]
    pub fn with_trusted_keys(mut self, source: Arc<dyn TrustedReleaseKeys>) -> Self {
        self.trusted = Some(source);
        self
    }

    /// The trusted keys now; refuses when there are none.
    async fn trusted_keys(&self) -> AppResult<KeyRing> {
        let keys = match &self.trusted {
            Some(source) => source.trusted_release_keys().await?,
            None => self.settings.keys.clone(),
        };
        if keys.is_empty() {
            return Err(AppError::Unprocessable {
                code: "release_keys_not_configured",
                message: "no trusted release public key (seed RELEASE_PUBLIC_KEYS or add one)",
            });
        }
        Ok(keys)
    }

    async fn record(
        &self,
        actor: String,
        action: &str,
        target: String,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        self.audit
            .append(NewAuditRecord {
                actor,
                action: action.to_owned(),
                target: Some(target),
                reason,
                request_id: ctx.request_id.clone(),
            })
            .await
            .map(|_| ())
    }
}
