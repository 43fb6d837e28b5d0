//! Project automation, so a fresh machine needs exactly two commands.
//!
//! - `cargo xtask run`: builds everything and starts what exists (see README).
//! - `cargo xtask test`: every check CI runs: formatting, clippy, the whole test suite, and the
//!   `no_std` crates built for `wasm32-unknown-unknown`. It installs what it needs (the wasm target)
//!   and builds the kernel `.wasm` that `kernel-host`'s tests load (`KERNEL_WASM`).
//!
//! It shells out to cargo and rustup through `xshell`; it owns no project logic.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// Crates that must build without `std` for the browser and embedded targets.
const NO_STD_CRATES: &[&str] = &["payment-crypto", "emv-kernel"];

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&sh, &args[1..]),
        Some("test") => test(&sh),
        _ => {
            eprintln!("usage: cargo xtask <run|test>");
            eprintln!("  run   build and start the system (see README.md)");
            eprintln!("  test  every check CI runs");
            std::process::exit(2)
        }
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Builds the workspace and shows the programs that exist so far.
///
/// With arguments, runs `softpos-keytool` with them (`cargo xtask run kcv --key ...`).
fn run(sh: &Shell, args: &[String]) -> Result<()> {
    cmd!(sh, "cargo build --workspace --bins").run()?;
    let bin_dir = project_root().join("target/debug");
    let mut programs: Vec<String> = std::fs::read_dir(&bin_dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("softpos-") && !name.contains('.'))
        .collect();
    programs.sort();
    println!();
    println!(
        "SUNBAY SoftPOS is built. Programs in {}:",
        bin_dir.display()
    );
    for program in &programs {
        println!("  {program}");
    }
    if !args.is_empty() {
        let keytool = bin_dir.join("softpos-keytool");
        cmd!(sh, "{keytool} {args...}").run()?;
    } else if programs.iter().any(|p| p == "softpos-keytool") {
        let keytool = bin_dir.join("softpos-keytool");
        cmd!(sh, "{keytool} --help").run()?;
    }
    Ok(())
}

/// Every check, in the order that fails fastest.
fn test(sh: &Shell) -> Result<()> {
    ensure_wasm_target(sh)?;
    cmd!(sh, "cargo fmt --all --check")
        .run()
        .context("formatting: run `cargo fmt --all`")?;
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()?;
    // kernel-host's tests load the kernel .wasm; build it once here rather than from each test.
    let kernel_wasm = build_kernel_wasm(sh)?;
    let _kernel_wasm = sh.push_env("KERNEL_WASM", &kernel_wasm);
    if cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        cmd!(sh, "cargo nextest run --workspace --locked --no-fail-fast").run()?;
    } else {
        cmd!(sh, "cargo test --workspace --locked --no-fail-fast").run()?;
    }
    // nextest does not run doctests.
    cmd!(sh, "cargo test --workspace --locked --doc").run()?;
    for krate in NO_STD_CRATES {
        cmd!(
            sh,
            "cargo build --locked -p {krate} --no-default-features --target {WASM_TARGET}"
        )
        .run()
        .with_context(|| format!("{krate} must build for {WASM_TARGET} without std"))?;
    }
    // Benchmarks are compiled by clippy --all-targets; running them is `cargo bench`.
    println!("xtask test: all checks passed");
    Ok(())
}

/// Builds the kernel `.wasm` (`crates/emv-kernel-wasm/ABI.md`) and returns its path.
fn build_kernel_wasm(sh: &Shell) -> Result<PathBuf> {
    cmd!(
        sh,
        "cargo build --locked -p emv-kernel-wasm --profile wasm --target {WASM_TARGET}"
    )
    .run()?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || project_root().join("target"),
        |dir| project_root().join(dir),
    );
    let wasm = target_dir.join(format!("{WASM_TARGET}/wasm/emv_kernel_wasm.wasm"));
    if !wasm.is_file() {
        bail!("the kernel .wasm is not at {}", wasm.display());
    }
    Ok(wasm)
}

fn ensure_wasm_target(sh: &Shell) -> Result<()> {
    let installed = cmd!(sh, "rustup target list --installed").read()?;
    if !installed.lines().any(|line| line.trim() == WASM_TARGET) {
        cmd!(sh, "rustup target add {WASM_TARGET}").run()?;
    }
    let installed = cmd!(sh, "rustup target list --installed").read()?;
    if !installed.lines().any(|line| line.trim() == WASM_TARGET) {
        bail!("could not install the {WASM_TARGET} target");
    }
    Ok(())
}
