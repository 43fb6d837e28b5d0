//! Kernel updates: the terminal asks which kernel it should run (`GET /api/v1/device/kernel`),
//! verifies the offer's Ed25519 manifest signature with its trusted release keys *before*
//! downloading, downloads the `.wasm`, checks its length and SHA-256 against the manifest,
//! loads it once in the kernel host (imports, exports, ABI version), and only then installs
//! it, keeping the previous kernel for rollback. Any failure leaves the installed kernel as it
//! was.
//!
//! On disk ([`KernelStore`]): `current.wasm` + `current.manifest.json` and `previous.wasm` +
//! `previous.manifest.json`, each written atomically. The files are not secret; their
//! integrity is re-checked against the signed manifest every time a kernel is loaded.

use std::path::{Path, PathBuf};

use base64::Engine;
use release_manifest::{ArtifactKind, KeyRing, SignedManifest};

use super::{Client, ClientError, KernelOffer};
use crate::store::write_atomic;

/// A kernel update or load failure. Codes are stable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The store holds no trusted release key: nothing can be verified.
    #[error("no trusted release key configured")]
    NoTrustedKeys,
    /// The manifest does not verify under the trusted keys (unknown key or bad signature).
    #[error("the kernel manifest signature does not verify ({0})")]
    BadSignature(&'static str),
    /// The manifest is not a kernel's.
    #[error("the manifest is not a kernel release")]
    NotAKernel,
    /// The downloaded file is not the one the manifest describes.
    #[error("the kernel file does not match its manifest (length or SHA-256)")]
    DigestMismatch,
    /// The kernel host refused the module.
    #[error("the kernel host refused the module ({0})")]
    Rejected(&'static str),
    /// Files could not be read or written.
    #[error("kernel files: {0}")]
    Io(String),
    /// No previous kernel to roll back to.
    #[error("no previous kernel to roll back to")]
    NoPrevious,
    /// No kernel installed.
    #[error("no kernel installed")]
    NoneInstalled,
}

impl KernelError {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoTrustedKeys => "kernel_no_trusted_keys",
            Self::BadSignature(_) => "kernel_bad_signature",
            Self::NotAKernel => "kernel_not_a_kernel",
            Self::DigestMismatch => "kernel_digest_mismatch",
            Self::Rejected(_) => "kernel_rejected",
            Self::Io(_) => "kernel_io",
            Self::NoPrevious => "kernel_no_previous",
            Self::NoneInstalled => "kernel_none_installed",
        }
    }

    fn io(error: &std::io::Error) -> Self {
        Self::Io(error.kind().to_string())
    }
}

/// Verifies a kernel artifact completely: manifest signature under `keys`, kind, length and
/// SHA-256, and that the kernel host loads it.
///
/// # Errors
/// `kernel_bad_signature`, `kernel_not_a_kernel`, `kernel_digest_mismatch`, `kernel_rejected`.
pub fn verify_kernel(
    manifest: &SignedManifest,
    keys: &KeyRing,
    wasm: &[u8],
) -> Result<kernel_host::WasmKernel, KernelError> {
    verify_manifest(manifest, keys)?;
    manifest
        .manifest
        .check_artifact(wasm)
        .map_err(|_| KernelError::DigestMismatch)?;
    kernel_host::WasmKernel::load(wasm, kernel_host::Limits::default())
        .map_err(|e| KernelError::Rejected(e.code()))
}

fn verify_manifest(manifest: &SignedManifest, keys: &KeyRing) -> Result<(), KernelError> {
    if keys.is_empty() {
        return Err(KernelError::NoTrustedKeys);
    }
    manifest
        .verify(keys)
        .map_err(|e| KernelError::BadSignature(e.code()))?;
    if manifest.manifest.kind != ArtifactKind::Kernel {
        return Err(KernelError::NotAKernel);
    }
    Ok(())
}

/// The installed kernels (see the module doc).
#[derive(Debug, Clone)]
pub struct KernelStore {
    dir: PathBuf,
}

/// A kernel read from disk and verified.
#[derive(Debug)]
pub struct InstalledKernel {
    /// Its manifest.
    pub manifest: SignedManifest,
    /// The loaded kernel, ready to run.
    pub kernel: kernel_host::WasmKernel,
}

impl KernelStore {
    /// Kernels kept in `dir` (created on first install).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, slot: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{slot}.wasm")),
            self.dir.join(format!("{slot}.manifest.json")),
        )
    }

    fn read_slot(&self, slot: &str) -> Result<Option<(SignedManifest, Vec<u8>)>, KernelError> {
        let (wasm_path, manifest_path) = self.paths(slot);
        if !manifest_path.exists() {
            return Ok(None);
        }
        let manifest_text = std::fs::read(&manifest_path).map_err(|e| KernelError::io(&e))?;
        let manifest: SignedManifest = serde_json::from_slice(&manifest_text)
            .map_err(|_| KernelError::BadSignature("manifest_unreadable"))?;
        let wasm = std::fs::read(&wasm_path).map_err(|e| KernelError::io(&e))?;
        Ok(Some((manifest, wasm)))
    }

    fn write_slot(
        &self,
        slot: &str,
        manifest: &SignedManifest,
        wasm: &[u8],
    ) -> Result<(), KernelError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| KernelError::io(&e))?;
        let (wasm_path, manifest_path) = self.paths(slot);
        let manifest_bytes =
            serde_json::to_vec_pretty(manifest).map_err(|e| KernelError::Io(e.to_string()))?;
        // The module first: a crash between the two writes leaves a manifest that no longer
        // matches, which the next load refuses, rather than an unverified module.
        write_atomic(&wasm_path, wasm).map_err(|e| KernelError::io(&e))?;
        write_atomic(&manifest_path, &manifest_bytes).map_err(|e| KernelError::io(&e))
    }

    /// The manifest of the installed kernel, if any (not verified: for display).
    ///
    /// # Errors
    /// `kernel_io`.
    pub fn current_manifest(&self) -> Result<Option<SignedManifest>, KernelError> {
        Ok(self.read_slot("current")?.map(|(manifest, _)| manifest))
    }

    /// The manifest of the previous kernel, if any.
    ///
    /// # Errors
    /// `kernel_io`.
    pub fn previous_manifest(&self) -> Result<Option<SignedManifest>, KernelError> {
        Ok(self.read_slot("previous")?.map(|(manifest, _)| manifest))
    }

    /// Loads the installed kernel, verifying it again.
    ///
    /// # Errors
    /// `kernel_none_installed` and the [`verify_kernel`] errors.
    pub fn load(&self, keys: &KeyRing) -> Result<InstalledKernel, KernelError> {
        let (manifest, wasm) = self
            .read_slot("current")?
            .ok_or(KernelError::NoneInstalled)?;
        let kernel = verify_kernel(&manifest, keys, &wasm)?;
        Ok(InstalledKernel { manifest, kernel })
    }

    /// Verifies and installs a kernel; the current one becomes the previous one.
    ///
    /// # Errors
    /// The [`verify_kernel`] errors (nothing changes then), `kernel_io`.
    pub fn install(
        &self,
        manifest: &SignedManifest,
        keys: &KeyRing,
        wasm: &[u8],
    ) -> Result<(), KernelError> {
        verify_kernel(manifest, keys, wasm)?;
        if let Some((old_manifest, old_wasm)) = self.read_slot("current")? {
            self.write_slot("previous", &old_manifest, &old_wasm)?;
        }
        self.write_slot("current", manifest, wasm)
    }

    /// Puts the previous kernel back (after verifying it); the current one becomes previous.
    ///
    /// # Errors
    /// `kernel_no_previous`, the [`verify_kernel`] errors, `kernel_io`.
    pub fn rollback(&self, keys: &KeyRing) -> Result<SignedManifest, KernelError> {
        let (previous, previous_wasm) =
            self.read_slot("previous")?.ok_or(KernelError::NoPrevious)?;
        verify_kernel(&previous, keys, &previous_wasm)?;
        let current = self.read_slot("current")?;
        self.write_slot("current", &previous, &previous_wasm)?;
        if let Some((manifest, wasm)) = current {
            self.write_slot("previous", &manifest, &wasm)?;
        }
        Ok(previous)
    }
}

/// What a kernel update did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum KernelUpdate {
    /// The server offers no kernel for this device.
    NoneOffered,
    /// The offered kernel is already installed.
    UpToDate {
        /// Version.
        version: String,
    },
    /// A new kernel was installed.
    Installed {
        /// New version.
        version: String,
        /// The version kept for rollback.
        previous: Option<String>,
    },
}

/// The trusted release keys configured in the store.
///
/// # Errors
/// `kernel_no_trusted_keys` when none are configured or they do not parse.
pub fn trusted_keys(client: &Client) -> Result<KeyRing, KernelError> {
    let text = client
        .store()
        .config()
        .trusted_release_keys
        .ok_or(KernelError::NoTrustedKeys)?;
    let keys = KeyRing::parse(&text).map_err(|_| KernelError::NoTrustedKeys)?;
    if keys.is_empty() {
        return Err(KernelError::NoTrustedKeys);
    }
    Ok(keys)
}

impl Client {
    /// The kernel the server wants this device to run (`channel`: `stable` by default);
    /// `None` when it offers none (404).
    ///
    /// # Errors
    /// Transport, `device_not_eligible`.
    pub async fn kernel_offer(
        &self,
        channel: Option<&str>,
    ) -> Result<Option<KernelOffer>, ClientError> {
        let path = match channel {
            Some(channel) => format!("/api/v1/device/kernel?channel={channel}"),
            None => "/api/v1/device/kernel".to_owned(),
        };
        let request = self.sign_now(reqwest::Method::GET, &path, b"")?;
        let res = self.send(&request).await?;
        if res.status == 404 {
            return Ok(None);
        }
        res.json().map(Some)
    }

    /// Downloads the offered `.wasm` (unverified bytes; see [`Client::update_kernel`]).
    ///
    /// # Errors
    /// Transport, the server's codes.
    pub async fn download_kernel(&self, offer: &KernelOffer) -> Result<Vec<u8>, ClientError> {
        let request = self.sign_now(reqwest::Method::GET, &offer.download_url, b"")?;
        let res = self.send(&request).await?;
        if !(200..300).contains(&res.status) {
            return Err(ClientError::from_body(res.status, &res.body));
        }
        // The download repeats the manifest; it must be the one offered.
        if let Some(header) = res.header("x-release-manifest") {
            let repeated: Option<SignedManifest> = base64::engine::general_purpose::STANDARD
                .decode(header.trim())
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            if repeated.as_ref() != Some(&offer.signed_manifest) {
                return Err(
                    super::kernel::KernelError::BadSignature("manifest_header_differs").into(),
                );
            }
        }
        Ok(res.body)
    }

    /// Checks for a kernel update and installs it after full verification, keeping the
    /// previous kernel. A bad signature is refused before the download; a bad file after it;
    /// either way the installed kernel stays.
    ///
    /// # Errors
    /// [`KernelError`] codes (`kernel_bad_signature`, `kernel_digest_mismatch`, ...),
    /// transport.
    pub async fn update_kernel(
        &self,
        kernels: &KernelStore,
        channel: Option<&str>,
    ) -> Result<KernelUpdate, ClientError> {
        let keys = trusted_keys(self)?;
        let Some(offer) = self.kernel_offer(channel).await? else {
            return Ok(KernelUpdate::NoneOffered);
        };
        verify_manifest(&offer.signed_manifest, &keys)?;
        let current = kernels.current_manifest()?;
        if current.as_ref() == Some(&offer.signed_manifest) {
            return Ok(KernelUpdate::UpToDate {
                version: offer.version,
            });
        }
        let wasm = self.download_kernel(&offer).await?;
        kernels.install(&offer.signed_manifest, &keys, &wasm)?;
        Ok(KernelUpdate::Installed {
            version: offer.signed_manifest.manifest.version.clone(),
            previous: current.map(|manifest| manifest.manifest.version),
        })
    }
}
