//! `kernel show`, `kernel update` and `kernel rollback`: the verified kernel `.wasm` the terminal
//! runs, kept in the store's kernel folder with the previous one for rollback.

use std::path::Path;

use clap::Args;
use serde::Serialize;

use crate::CliError;
use crate::client::kernel::{KernelStore, KernelUpdate, trusted_keys};
use crate::commands::common::{block_on, client_error, kernel_error, open_client, open_store};
use crate::commands::output::{Progress, Reply, render};
use crate::store::SecureStore;

/// Options of `kernel show` and `kernel rollback`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `kernel update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Release channel [default: the server's default, `stable`].
    #[arg(long)]
    pub channel: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct KernelView {
    /// What runs payments: `wasm <version>` or `native` (development fallback).
    active: String,
    current: Option<ManifestView>,
    previous: Option<ManifestView>,
    kernel_dir: String,
    trusted_release_key_ids: Vec<String>,
    /// What `update` / `rollback` did.
    #[serde(skip_serializing_if = "Option::is_none")]
    update: Option<KernelUpdate>,
    /// The version `rollback` put back.
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back_to: Option<String>,
}

#[derive(Debug, Serialize)]
struct ManifestView {
    name: String,
    version: String,
    sha256: String,
    size: u64,
    key_id: String,
}

fn manifest_view(signed: &release_manifest::SignedManifest) -> ManifestView {
    ManifestView {
        name: signed.manifest.name.clone(),
        version: signed.manifest.version.clone(),
        sha256: signed.manifest.sha256.clone(),
        size: signed.manifest.size,
        key_id: signed.key_id.clone(),
    }
}

fn kernel_store(store: &SecureStore) -> Result<KernelStore, CliError> {
    let dir = store.config().kernel_dir.ok_or_else(|| {
        CliError::bad_input(
            "kernel_dir_not_set",
            "this store has no kernel folder; create it with `init`",
        )
    })?;
    Ok(KernelStore::new(dir))
}

fn view(store: &SecureStore, update: Option<KernelUpdate>) -> Result<KernelView, CliError> {
    let kernels = kernel_store(store)?;
    let current = kernels.current_manifest().map_err(|e| kernel_error(&e))?;
    let previous = kernels.previous_manifest().map_err(|e| kernel_error(&e))?;
    let keys = store
        .config()
        .trusted_release_keys
        .and_then(|text| release_manifest::KeyRing::parse(&text).ok())
        .unwrap_or_default();
    // What a payment would load: the current kernel only if it verifies again now.
    let active = match kernels.load(&keys) {
        Ok(installed) => format!("wasm {}", installed.manifest.manifest.version),
        Err(_) => "native".to_owned(),
    };
    Ok(KernelView {
        active,
        current: current.as_ref().map(manifest_view),
        previous: previous.as_ref().map(manifest_view),
        kernel_dir: kernels.dir().display().to_string(),
        trusted_release_key_ids: keys.ids().map(str::to_owned).collect(),
        update,
        rolled_back_to: None,
    })
}

fn text(view: &KernelView) -> String {
    let line = |m: &Option<ManifestView>| {
        m.as_ref().map_or_else(
            || "none".to_owned(),
            |m| {
                format!(
                    "{} {} (sha256 {}, key {})",
                    m.name, m.version, m.sha256, m.key_id
                )
            },
        )
    };
    let mut out = String::new();
    if let Some(version) = &view.rolled_back_to {
        out.push_str(&format!("rolled back to {version}\n"));
    }
    if let Some(update) = &view.update {
        out.push_str(&match update {
            KernelUpdate::NoneOffered => {
                "update: the server offers no kernel for this device\n".to_owned()
            }
            KernelUpdate::UpToDate { version } => {
                format!("update: {version} is already installed\n")
            }
            KernelUpdate::Installed { version, previous } => format!(
                "update: installed {version} (kept {} for rollback)\n",
                previous.as_deref().unwrap_or("nothing")
            ),
        });
    }
    out.push_str(&format!(
        "active: {}\ncurrent: {}\nprevious: {}\nfolder: {}\n",
        view.active,
        line(&view.current),
        line(&view.previous),
        view.kernel_dir
    ));
    out
}

/// Runs `kernel show`.
///
/// # Errors
/// Store (7), no kernel folder (2), unreadable kernel files (1).
pub fn run_show(store_path: &Path, args: &ShowArgs) -> Result<Reply, CliError> {
    let store = open_store(store_path)?;
    render(&view(&store, None)?, args.json, text).map(Reply::ok)
}

/// Runs `kernel update`.
///
/// # Errors
/// Verification failures (9: `kernel_bad_signature`, `kernel_digest_mismatch`,
/// `kernel_rejected`, `kernel_no_trusted_keys`), server (3, 4, 5), store (7).
pub fn run_update(store_path: &Path, args: &UpdateArgs) -> Result<Reply, CliError> {
    let client = open_client(store_path)?;
    let kernels = kernel_store(client.store())?;
    let mut progress = Progress::new(args.json);
    progress.step("kernel update: offer, signature, download, digest, load…");
    let update = block_on(client.update_kernel(&kernels, args.channel.as_deref()))?
        .map_err(|e| client_error(&e))?;
    progress.finish();
    render(&view(client.store(), Some(update))?, args.json, text).map(Reply::ok)
}

/// Runs `kernel rollback`.
///
/// # Errors
/// `kernel_no_previous` (2), verification failures (9), store (7).
pub fn run_rollback(store_path: &Path, args: &ShowArgs) -> Result<Reply, CliError> {
    let client = open_client(store_path)?;
    let kernels = kernel_store(client.store())?;
    let keys = trusted_keys(&client).map_err(|e| kernel_error(&e))?;
    let restored = kernels.rollback(&keys).map_err(|e| kernel_error(&e))?;
    let mut shown = view(client.store(), None)?;
    shown.rolled_back_to = Some(restored.manifest.version);
    render(&shown, args.json, text).map(Reply::ok)
}
