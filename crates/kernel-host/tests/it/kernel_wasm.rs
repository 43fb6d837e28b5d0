//! The kernel `.wasm` the tests and the benchmark run.
//!
//! `cargo xtask test` builds it first and passes its path in `KERNEL_WASM`. Without that
//! variable (a plain `cargo test`), it is built here with the command of `ABI.md`, and its
//! path is read from cargo's JSON messages, so any target directory works. Either way the bytes
//! are read once per test binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The kernel `.wasm` built from this workspace.
pub(crate) fn kernel_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let path = std::env::var_os("KERNEL_WASM")
            .map(PathBuf::from)
            .unwrap_or_else(build);
        std::fs::read(&path)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
    })
}

fn build() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(cargo)
        .current_dir(&workspace)
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
        "building the kernel .wasm failed (is the wasm32-unknown-unknown target installed? \
         `cargo xtask test` installs it):\n{}",
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
