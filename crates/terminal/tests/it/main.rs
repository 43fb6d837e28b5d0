//! Tests of the `softpos-terminal` binary: they run it as a user would.

mod cli_lifecycle;
mod cli_pay;
mod cli_security;
mod cli_support;
mod core_flow;
mod core_kernel;
mod core_refund;
mod core_server;
mod core_store;
mod fleet_admin;
mod fleet_run;
mod kernel_replay;
#[cfg(feature = "pcsc")]
mod pcsc;
#[cfg(feature = "pcsc")]
mod pcsc_stack;
mod virtual_reader;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The emv-replay transcripts directory.
pub(crate) fn transcripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../emv-replay/tests/transcripts")
}

/// Runs the binary with `args` in the transcripts directory.
pub(crate) fn softpos_terminal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softpos-terminal"))
        .args(args)
        .current_dir(transcripts())
        .output()
        .expect("binary runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The `softpos-server` binary for the end-to-end tests: `SOFTPOS_SERVER_BIN`, else the one in
/// this test's target folder; when missing it is built once (`cargo build -p server --bin
/// softpos-server`), except under `CI=true`, where a missing binary is a failure (`cargo xtask
/// test` builds it first).
pub(crate) fn server_binary() -> PathBuf {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(found) = terminal::fleet::server::server_binary() {
                return found;
            }
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but softpos-server is not built: set SOFTPOS_SERVER_BIN or build it first"
            );
            let exe = std::env::current_exe().expect("test executable");
            // .../target/<profile>/deps/it-… → .../target
            let target_dir = exe
                .parent()
                .and_then(Path::parent)
                .and_then(Path::parent)
                .expect("target folder");
            eprintln!("building softpos-server for the end-to-end tests…");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "-p",
                    "server",
                    "--bin",
                    "softpos-server",
                    "--target-dir",
                ])
                .arg(target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building softpos-server failed");
            terminal::fleet::server::server_binary()
                .expect("softpos-server next to the test executable after building it")
        })
        .clone()
}

/// A fresh local server (see [`terminal::fleet::server::LocalServer`]).
pub(crate) fn local_server(env: &[(&str, &str)]) -> terminal::fleet::server::LocalServer {
    let options = terminal::fleet::server::LocalServerOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        log: None,
    };
    terminal::fleet::server::LocalServer::start(&server_binary(), &options)
        .expect("start softpos-server")
}

/// An admin client logged in with the local server's first admin password.
pub(crate) fn admin_client(base: &str) -> terminal::fleet::admin::AdminClient {
    terminal::fleet::admin::AdminClient::new(
        base,
        terminal::fleet::admin::AdminCredentials::Password {
            username: "admin".to_owned(),
            password: terminal::fleet::server::LOCAL_ADMIN_PASSWORD.to_owned(),
        },
    )
    .expect("admin client")
}

/// The kernel `.wasm` of this workspace: `KERNEL_WASM` (set by `cargo xtask test`), else built
/// with the command of `crates/emv-kernel-wasm/ABI.md`.
pub(crate) fn kernel_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let path = std::env::var_os("KERNEL_WASM").map_or_else(build_kernel, PathBuf::from);
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    })
}

fn build_kernel() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            "emv-kernel-wasm",
            "--profile",
            "wasm",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building the kernel .wasm failed (is the wasm32-unknown-unknown target installed?):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|name| name.as_str().map(PathBuf::from))
        .find(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .expect("cargo reported the .wasm artifact")
}
