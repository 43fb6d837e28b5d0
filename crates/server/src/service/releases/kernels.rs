//! Kernel releases: upload (signature, digest, ABI), conformance in the sandbox, the channel
//! lifecycle, and what each device (or the anonymous web demo) is served.
//!
//! Serving rule: for a device and a channel, the channel's `PUBLISHED` releases are tried from
//! the most recently published; the first one whose rollout includes the device
//! ([`super::rollout`]) and whose ABI the device's terminal version can run (compatibility
//! table) is the answer. A partial rollout therefore leaves the other devices on the previous
//! release, a paused release is offered to nobody (its devices fall back the same way), and a
//! rollback withdraws the newest release so the previous one serves everyone again.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kernel_host::EngineKind;
use release_manifest::{ArtifactKind, KeyRing, SignedManifest};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::model::{Channel, ConformanceSummary, KernelRelease, KernelStatus};
use super::rollout::in_rollout;
use super::{ReleaseService, SUPPORTED_ABI_VERSIONS, manifest_error};
use crate::domain::{Device, DeviceState, NewAuditRecord, Principal, now_millis};
use crate::error::{AppError, AppResult};
use crate::repository::releases::ReleaseRepository;
use crate::service::RequestContext;
use crate::service::audit::AuditService;

/// Stored report text is cut to this many bytes (the suite's text is a few KB).
const MAX_REPORT_TEXT: usize = 64 * 1024;

fn transition_refused(message: &'static str) -> AppError {
    AppError::Conflict {
        code: "invalid_release_transition",
        message,
    }
}

fn concurrent_change() -> AppError {
    AppError::Conflict {
        code: "release_changed_concurrently",
        message: "the release changed while this request ran; reload and retry",
    }
}

/// The outcome of a channel rollback.
#[derive(Debug, Clone)]
pub struct Rollback {
    /// The release withdrawn.
    pub rolled_back: KernelRelease,
    /// The release the channel serves again.
    pub now_serving: KernelRelease,
}

impl ReleaseService {
    /// Verifies and stores a kernel as a `DRAFT`, and starts the conformance suite in the
    /// background; when it finishes the release becomes `READY` (publishable) or `REJECTED`
    /// with the report stored. Compiling and running every virtual card takes seconds (far
    /// more in unoptimised builds), too long to hold an HTTP request open.
    ///
    /// # Errors
    /// `release_keys_not_configured`, manifest codes (`release_name_invalid`,
    /// `release_signature_invalid`, `release_key_unknown`, `release_hash_mismatch`, ...),
    /// `release_kind_mismatch`, `abi_version_unsupported`, `release_version_exists`.
    pub async fn upload_kernel(
        &self,
        principal: &Principal,
        signed: SignedManifest,
        artifact: Vec<u8>,
        ctx: &RequestContext,
    ) -> AppResult<KernelRelease> {
        let checked = match self.trusted_keys().await {
            Ok(keys) => Self::check_kernel_upload(&keys, &signed, &artifact),
            Err(error) => Err(error),
        };
        if let Err(error) = checked {
            // Refused uploads are security events too: who tried to ship what.
            self.record(
                principal.actor(),
                "kernel.upload_refused",
                format!(
                    "kernel:{}@{}",
                    signed.manifest.name.chars().take(80).collect::<String>(),
                    signed.manifest.version.chars().take(80).collect::<String>()
                ),
                Some(error.code().to_owned()),
                ctx,
            )
            .await?;
            return Err(error);
        }
        let now = now_millis();
        let release = KernelRelease {
            id: Uuid::now_v7(),
            signed,
            status: KernelStatus::Draft,
            conformance: None,
            channel: None,
            rollout_percent: 0,
            published_at: None,
            created_by: principal.actor(),
            created_at: now,
            updated_at: now,
        };
        self.repo.insert_kernel(&release, &artifact).await?;
        let manifest = &release.signed.manifest;
        self.record(
            principal.actor(),
            "kernel.upload",
            format!("kernel_release:{}", release.id),
            Some(format!(
                "{} {} abi {} sha256 {} signed by {}",
                manifest.name,
                manifest.version,
                manifest.abi_version.unwrap_or_default(),
                manifest.sha256,
                release.signed.key_id
            )),
            ctx,
        )
        .await?;

        self.start_conformance(release.clone(), artifact, ctx);
        Ok(release)
    }

    fn start_conformance(&self, draft: KernelRelease, artifact: Vec<u8>, ctx: &RequestContext) {
        let runner = ConformanceRunner {
            repo: self.repo.clone(),
            audit: self.audit.clone(),
            slots: self.conformance_slots.clone(),
            running: self.conformance_running.clone(),
        };
        let request_id = ctx.request_id.clone();
        // Marked before the task starts, so a second request cannot start a twin run.
        if let Ok(mut running) = self.conformance_running.lock() {
            running.insert(draft.id);
        }
        tokio::spawn(async move {
            let id = draft.id;
            if let Err(error) = runner.run(draft, artifact, request_id).await {
                tracing::error!(release = %id, ?error, "conformance run could not be recorded");
            }
        });
    }

    /// Starts the conformance suite again for a `DRAFT` whose run was lost (the server
    /// stopped while it ran).
    ///
    /// # Errors
    /// `not_found`, `invalid_release_transition` (not a draft), `conformance_running`.
    pub async fn rerun_conformance(
        &self,
        principal: &Principal,
        id: Uuid,
        ctx: &RequestContext,
    ) -> AppResult<KernelRelease> {
        let release = self.kernel(id).await?;
        if release.status != KernelStatus::Draft {
            return Err(transition_refused(
                "only a draft (whose conformance run was lost) can be run again",
            ));
        }
        if self.is_running(id) {
            return Err(AppError::Conflict {
                code: "conformance_running",
                message: "the conformance suite is running for this release",
            });
        }
        let artifact = self.artifact_of(&release).await?;
        self.record(
            principal.actor(),
            "kernel.conformance_rerun",
            format!("kernel_release:{id}"),
            None,
            ctx,
        )
        .await?;
        self.start_conformance(release.clone(), artifact, ctx);
        Ok(release)
    }

    fn is_running(&self, id: Uuid) -> bool {
        self.conformance_running
            .lock()
            .is_ok_and(|running| running.contains(&id))
    }

    fn check_kernel_upload(
        keys: &KeyRing,
        signed: &SignedManifest,
        artifact: &[u8],
    ) -> AppResult<()> {
        let manifest = &signed.manifest;
        manifest.validate().map_err(|e| manifest_error(&e))?;
        if manifest.kind != ArtifactKind::Kernel {
            return Err(AppError::Unprocessable {
                code: "release_kind_mismatch",
                message: "this endpoint takes kernel manifests (kind \"kernel\")",
            });
        }
        if !manifest
            .abi_version
            .is_some_and(|abi| SUPPORTED_ABI_VERSIONS.contains(&abi))
        {
            return Err(AppError::Unprocessable {
                code: "abi_version_unsupported",
                message: "this server does not know the kernel ABI version of the manifest",
            });
        }
        signed.verify(keys).map_err(|e| manifest_error(&e))?;
        manifest
            .check_artifact(artifact)
            .map_err(|e| manifest_error(&e))
    }

    /// One release.
    ///
    /// # Errors
    /// `not_found`.
    pub async fn kernel(&self, id: Uuid) -> AppResult<KernelRelease> {
        self.repo
            .find_kernel(id)
            .await?
            .ok_or(AppError::NotFound("kernel release"))
    }

    /// The newest releases.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn kernels(&self, limit: i64) -> AppResult<Vec<KernelRelease>> {
        self.repo.list_kernels(limit).await
    }

    async fn save(
        &self,
        release: &mut KernelRelease,
        from: KernelStatus,
        principal: &Principal,
        action: &str,
        reason: String,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        release.updated_at = now_millis();
        if !self.repo.update_kernel(release, from).await? {
            return Err(concurrent_change());
        }
        self.record(
            principal.actor(),
            action,
            format!("kernel_release:{}", release.id),
            Some(reason),
            ctx,
        )
        .await
    }

    /// Publishes a `READY` (or rolled-back) release to a channel at a rollout percentage, or
    /// changes the channel or percentage of a published one.
    ///
    /// # Errors
    /// `validation_failed` (percentage), `not_found`, `release_not_publishable` (draft or
    /// failed conformance), `invalid_release_transition`.
    pub async fn publish(
        &self,
        principal: &Principal,
        id: Uuid,
        channel: Channel,
        rollout_percent: u8,
        ctx: &RequestContext,
    ) -> AppResult<KernelRelease> {
        if !(1..=100).contains(&rollout_percent) {
            return Err(AppError::field("rollout_percent", "1 to 100"));
        }
        let mut release = self.kernel(id).await?;
        let from = release.status;
        match from {
            KernelStatus::Draft | KernelStatus::Rejected => {
                return Err(AppError::Conflict {
                    code: "release_not_publishable",
                    message: "only a release that passed conformance can be published",
                });
            }
            KernelStatus::Paused => {
                return Err(transition_refused(
                    "the release is paused: resume it to change its rollout",
                ));
            }
            KernelStatus::Deprecated => {
                return Err(transition_refused("a deprecated release stays deprecated"));
            }
            KernelStatus::Ready | KernelStatus::RolledBack => {
                release.published_at = Some(now_millis());
            }
            KernelStatus::Published => {
                if release.channel != Some(channel) {
                    release.published_at = Some(now_millis());
                }
            }
        }
        release.status = KernelStatus::Published;
        release.channel = Some(channel);
        release.rollout_percent = rollout_percent;
        let reason = format!("channel {channel}, rollout {rollout_percent}%");
        self.save(&mut release, from, principal, "kernel.publish", reason, ctx)
            .await?;
        Ok(release)
    }

    /// Halts a published release's rollout (offered to nobody until resumed).
    ///
    /// # Errors
    /// `not_found`, `invalid_release_transition`.
    pub async fn pause(
        &self,
        principal: &Principal,
        id: Uuid,
        ctx: &RequestContext,
    ) -> AppResult<KernelRelease> {
        let mut release = self.kernel(id).await?;
        if release.status != KernelStatus::Published {
            return Err(transition_refused("only a published release can be paused"));
        }
        release.status = KernelStatus::Paused;
        self.save(
            &mut release,
            KernelStatus::Published,
            principal,
            "kernel.pause",
            "rollout paused".to_owned(),
            ctx,
        )
        .await?;
        Ok(release)
    }

    /// Resumes a paused release with its channel and percentage.
    ///
    /// # Errors
    /// `not_found`, `invalid_release_transition`.
    pub async fn resume(
        &self,
        principal: &Principal,
        id: Uuid,
        ctx: &RequestContext,
    ) -> AppResult<KernelRelease> {
        let mut release = self.kernel(id).await?;
        if release.status != KernelStatus::Paused {
            return Err(transition_refused("only a paused release can be resumed"));
        }
        release.status = KernelStatus::Published;
        self.save(
            &mut release,
            KernelStatus::Paused,
            principal,
            "kernel.resume",
            "rollout resumed".to_owned(),
            ctx,
        )
        .await?;
        Ok(release)
    }

    /// Retires a release for good.
    ///
    /// # Errors
    /// `not_found`, `invalid_release_transition` (drafts and deprecated releases).
    pub async fn deprecate(
        &self,
        principal: &Principal,
        id: Uuid,
        reason: String,
        ctx: &RequestContext,
    ) -> AppResult<KernelRelease> {
        let mut release = self.kernel(id).await?;
        let from = release.status;
        if matches!(from, KernelStatus::Draft | KernelStatus::Deprecated) {
            return Err(transition_refused(
                "drafts and deprecated releases cannot be deprecated",
            ));
        }
        release.status = KernelStatus::Deprecated;
        self.save(
            &mut release,
            from,
            principal,
            "kernel.deprecate",
            reason,
            ctx,
        )
        .await?;
        Ok(release)
    }

    /// Withdraws the channel's most recently published release (published or paused); the
    /// previous published release serves the channel again.
    ///
    /// # Errors
    /// `no_release_to_roll_back`, `no_previous_release`.
    pub async fn rollback(
        &self,
        principal: &Principal,
        channel: Channel,
        reason: String,
        ctx: &RequestContext,
    ) -> AppResult<Rollback> {
        let published = self
            .repo
            .channel_kernels(channel, KernelStatus::Published)
            .await?;
        let paused = self
            .repo
            .channel_kernels(channel, KernelStatus::Paused)
            .await?;
        let newest = published
            .iter()
            .chain(paused.iter())
            .max_by_key(|release| (release.published_at, release.id))
            .cloned()
            .ok_or(AppError::Conflict {
                code: "no_release_to_roll_back",
                message: "the channel has no published release",
            })?;
        let previous = published
            .iter()
            .find(|release| release.id != newest.id)
            .cloned()
            .ok_or(AppError::Conflict {
                code: "no_previous_release",
                message: "the channel has no earlier published release to return to",
            })?;
        let mut rolled_back = newest;
        let from = rolled_back.status;
        rolled_back.status = KernelStatus::RolledBack;
        let reason = format!(
            "channel {channel}: back to {} ({}); {reason}",
            previous.signed.manifest.version, previous.id
        );
        self.save(
            &mut rolled_back,
            from,
            principal,
            "kernel.rollback",
            reason,
            ctx,
        )
        .await?;
        Ok(Rollback {
            rolled_back,
            now_serving: previous,
        })
    }

    /// The ABI versions the device's terminal version can run.
    async fn runnable_abis(&self, device: &Device) -> AppResult<BTreeSet<u32>> {
        let fleet = self
            .repo
            .fleet_device(device.id)
            .await?
            .ok_or(AppError::NotFound("device"))?;
        let terminal_version = fleet.current_terminal_version().to_owned();
        Ok(self
            .repo
            .compat()
            .await?
            .into_iter()
            .filter(|entry| entry.terminal_version == terminal_version)
            .map(|entry| entry.abi_version)
            .collect())
    }

    fn require_eligible(device: &Device) -> AppResult<()> {
        if matches!(device.state, DeviceState::Approved | DeviceState::Active) {
            Ok(())
        } else {
            Err(AppError::Conflict {
                code: "device_not_eligible",
                message: "only approved or active devices receive kernels",
            })
        }
    }

    /// The kernel `device` should run from `channel`, if any.
    ///
    /// # Errors
    /// `device_not_eligible`, storage errors.
    pub async fn kernel_for_device(
        &self,
        device: &Device,
        channel: Channel,
    ) -> AppResult<Option<KernelRelease>> {
        Self::require_eligible(device)?;
        let abis = self.runnable_abis(device).await?;
        Ok(self
            .repo
            .channel_kernels(channel, KernelStatus::Published)
            .await?
            .into_iter()
            .find(|release| {
                in_rollout(device.id.0, release.id, release.rollout_percent)
                    && release
                        .signed
                        .manifest
                        .abi_version
                        .is_some_and(|abi| abis.contains(&abi))
            }))
    }

    /// The artifact of a release the device may download: published, in its rollout and
    /// runnable by its terminal version. Anything else is "not found", so drafts and other
    /// devices' rollouts are not even revealed.
    ///
    /// # Errors
    /// `device_not_eligible`, `not_found`.
    pub async fn kernel_artifact_for_device(
        &self,
        device: &Device,
        id: Uuid,
    ) -> AppResult<(KernelRelease, Vec<u8>)> {
        Self::require_eligible(device)?;
        let release = self
            .repo
            .find_kernel(id)
            .await?
            .ok_or(AppError::NotFound("kernel release"))?;
        let abis = self.runnable_abis(device).await?;
        let servable = release.status == KernelStatus::Published
            && in_rollout(device.id.0, release.id, release.rollout_percent)
            && release
                .signed
                .manifest
                .abi_version
                .is_some_and(|abi| abis.contains(&abi));
        if !servable {
            return Err(AppError::NotFound("kernel release"));
        }
        let bytes = self.artifact_of(&release).await?;
        Ok((release, bytes))
    }

    /// The kernel anyone may read (the web demo): the most recently published `stable`
    /// release rolled out to 100 %.
    ///
    /// # Errors
    /// `not_found` when there is none.
    pub async fn public_kernel(&self) -> AppResult<KernelRelease> {
        self.repo
            .channel_kernels(Channel::Stable, KernelStatus::Published)
            .await?
            .into_iter()
            .find(|release| release.rollout_percent == 100)
            .ok_or(AppError::NotFound("published stable kernel"))
    }

    /// The public kernel and its bytes.
    ///
    /// # Errors
    /// `not_found`.
    pub async fn public_kernel_artifact(&self) -> AppResult<(KernelRelease, Vec<u8>)> {
        let release = self.public_kernel().await?;
        let bytes = self.artifact_of(&release).await?;
        Ok((release, bytes))
    }

    async fn artifact_of(&self, release: &KernelRelease) -> AppResult<Vec<u8>> {
        let bytes = self
            .repo
            .artifact(&release.signed.manifest.sha256)
            .await?
            .ok_or_else(|| crate::repository::corrupt("release_artifacts: missing artifact"))?;
        // Defence in depth: what leaves the server is what was signed.
        release
            .signed
            .manifest
            .check_artifact(&bytes)
            .map_err(|_| crate::repository::corrupt("release_artifacts: digest mismatch"))?;
        Ok(bytes)
    }
}

/// Runs the conformance suite for one draft and records the verdict; owns clones of what it
/// needs so it can outlive the upload request.
#[derive(Debug)]
struct ConformanceRunner {
    repo: Arc<dyn ReleaseRepository>,
    audit: Arc<AuditService>,
    slots: Arc<Semaphore>,
    running: Arc<Mutex<HashSet<Uuid>>>,
}

/// Removes a release from the running set when its run ends, however it ends.
struct RunningGuard {
    running: Arc<Mutex<HashSet<Uuid>>>,
    id: Uuid,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.id);
        }
    }
}

impl ConformanceRunner {
    async fn run(
        self,
        mut release: KernelRelease,
        artifact: Vec<u8>,
        request_id: Option<String>,
    ) -> AppResult<()> {
        let _running = RunningGuard {
            running: self.running.clone(),
            id: release.id,
        };
        let summary = {
            // One run at a time: each compiles a module and runs every virtual card.
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| AppError::Unavailable)?;
            run_suite(artifact).await?
        };
        release.status = if summary.passed {
            KernelStatus::Ready
        } else {
            KernelStatus::Rejected
        };
        let verdict = if summary.passed {
            format!("passed {} cases on {}", summary.cases, summary.engine)
        } else if let Some(error) = &summary.load_error {
            format!("failed: not loaded ({error})")
        } else {
            format!("failed {} of {} cases", summary.failures, summary.cases)
        };
        release.conformance = Some(summary);
        release.updated_at = now_millis();
        if !self
            .repo
            .update_kernel(&release, KernelStatus::Draft)
            .await?
        {
            return Err(concurrent_change());
        }
        self.audit
            .append(NewAuditRecord {
                actor: Principal::System {
                    component: "conformance",
                }
                .actor(),
                action: "kernel.conformance".to_owned(),
                target: Some(format!("kernel_release:{}", release.id)),
                reason: Some(verdict),
                request_id,
            })
            .await
            .map(|_| ())
    }
}

async fn run_suite(artifact: Vec<u8>) -> AppResult<ConformanceSummary> {
    let engine = EngineKind::Wasmtime;
    let started = Instant::now();
    // Compiling and running the module is CPU-bound: keep it off the async workers.
    let report =
        tokio::task::spawn_blocking(move || kernel_host::conformance::run_on(engine, &artifact))
            .await
            .map_err(|error| {
                AppError::Other(anyhow::anyhow!("conformance run panicked: {error}"))
            })?;
    let mut text = report.to_string();
    if text.len() > MAX_REPORT_TEXT {
        let mut cut = MAX_REPORT_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Ok(ConformanceSummary {
        passed: report.passed(),
        engine: engine.name().to_owned(),
        cases: report.cases.len(),
        failures: report.failures().count(),
        load_error: report.load_error.as_ref().map(ToString::to_string),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        report: text,
    })
}
