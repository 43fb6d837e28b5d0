//! `softpos-terminal init`: creates the secure store (a fresh device key pair inside it) with the
//! back end's URL and the release keys the terminal trusts for kernel updates.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use crate::CliError;
use crate::commands::common::{store_error, store_key};
use crate::commands::output::{Reply, render};
use crate::store::{DeviceConfig, SecureStore};

/// Options of `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The back end, e.g. http://127.0.0.1:8080 (can also be given at `register`).
    #[arg(long)]
    pub server: Option<String>,
    /// A release public key trusted for kernel updates, `ID=KEY` (32 bytes, hex or base64);
    /// repeat for several.
    #[arg(long = "trusted-release-key", value_name = "ID=KEY")]
    pub trusted_release_keys: Vec<String>,
    /// Where verified kernels are kept [default: `kernels` next to the store].
    #[arg(long)]
    pub kernel_dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct InitView {
    store: String,
    key_fingerprint: String,
    public_key: String,
    server_url: Option<String>,
    trusted_release_key_ids: Vec<String>,
    kernel_dir: Option<String>,
}

/// Checks a server URL: `http(s)://host[:port]`, no path beyond `/`.
///
/// # Errors
/// `invalid_server_url`.
pub fn server_url(text: &str) -> Result<String, CliError> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|error| CliError::bad_input("invalid_server_url", format!("{text:?}: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CliError::bad_input(
            "invalid_server_url",
            format!("{text:?}: give http(s)://host[:port]"),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Runs `init`.
///
/// # Errors
/// Bad options (exit 2), a store already there or unwritable (7).
pub fn run(store_path: &Path, args: InitArgs) -> Result<Reply, CliError> {
    let server = args.server.as_deref().map(server_url).transpose()?;
    let trusted = args.trusted_release_keys.join(",");
    let ring = release_manifest::KeyRing::parse(&trusted).map_err(|_| {
        CliError::bad_input(
            "invalid_release_key",
            "--trusted-release-key takes ID=KEY with a 32-byte Ed25519 public key in hex or base64",
        )
    })?;
    let kernel_dir = args.kernel_dir.unwrap_or_else(|| {
        store_path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("kernels")
    });
    if store_path.exists() {
        return Err(store_error(&crate::store::StoreError::Exists));
    }
    let key = store_key(true)?;
    let config = DeviceConfig {
        server_url: server.clone(),
        trusted_release_keys: (!ring.is_empty()).then_some(trusted),
        kernel_dir: Some(kernel_dir.clone()),
        ..DeviceConfig::default()
    };
    let store = SecureStore::create(store_path, &key, config).map_err(|e| store_error(&e))?;
    let view = InitView {
        store: store_path.display().to_string(),
        key_fingerprint: store.key_fingerprint(),
        public_key: store.public_key_b64(),
        server_url: server,
        trusted_release_key_ids: ring.ids().map(str::to_owned).collect(),
        kernel_dir: Some(kernel_dir.display().to_string()),
    };
    render(&view, args.json, |view| {
        format!(
            "secure store created: {}\ndevice key fingerprint: {}\nserver: {}\ntrusted release keys: {}\nnext: softpos-terminal register --server URL --merchant ID",
            view.store,
            view.key_fingerprint,
            view.server_url.as_deref().unwrap_or("(not set)"),
            if view.trusted_release_key_ids.is_empty() {
                "none (kernel updates will be refused)".to_owned()
            } else {
                view.trusted_release_key_ids.join(", ")
            }
        )
    })
    .map(Reply::ok)
}
