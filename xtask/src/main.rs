//! Project automation, so a fresh machine needs exactly two commands.
//!
//! - `cargo xtask run`: builds everything and starts `softpos-server` (see README); with
//!   arguments, runs `softpos-keytool` with them instead.
//! - `cargo xtask test`: every check CI runs: formatting, clippy, the whole test suite, and the
//!   `no_std` crates built for `wasm32-unknown-unknown`. It installs what it needs (the wasm
//!   target; as root on Debian, pcscd, vsmartcard-vpcd and libpcsclite-dev for the terminal's
//!   PC/SC tests) and builds the kernel `.wasm` that `kernel-host`'s tests load (`KERNEL_WASM`).
//!   Under `CI=true` it first makes sure PostgreSQL and Redis answer on 127.0.0.1 (starting
//!   them if they are down), because the server's tests run against them there.
//!
//! It shells out to cargo and rustup through `xshell`; it owns no project logic.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// Crates that must build without `std` for the browser and embedded targets.
const NO_STD_CRATES: &[&str] = &["payment-crypto", "emv-kernel"];

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The terminal's PC/SC reader source, on for clippy and the tests.
const PCSC_FEATURE: &str = "terminal/pcsc";

/// Debian packages the PC/SC tests need: pcscd and vsmartcard's vpcd driver to run against,
/// libpcsclite-dev and pkg-config to link the `pcsc` feature.
const PCSC_PACKAGES: &[&str] = &["pcscd", "vsmartcard-vpcd", "libpcsclite-dev", "pkg-config"];

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

/// Builds the workspace, shows the programs, and starts `softpos-server` in the foreground
/// (configuration from the environment or `.env`; see `.env.sample`).
///
/// With arguments, runs `softpos-keytool` with them instead (`cargo xtask run kcv --key ...`).
fn run(sh: &Shell, args: &[String]) -> Result<()> {
    cmd!(sh, "cargo build --workspace --bins").run()?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project_root().join("target"), PathBuf::from);
    let bin_dir = target_dir.join("debug");
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
    } else {
        let server = bin_dir.join("softpos-server");
        println!();
        println!("Starting softpos-server (Ctrl-C stops it; API docs at /api/docs/) ...");
        cmd!(sh, "{server}").run()?;
    }
    Ok(())
}

/// Every check, in the order that fails fastest.
fn test(sh: &Shell) -> Result<()> {
    if std::env::var("CI").as_deref() == Ok("true") {
        ensure_services(sh)?;
    }
    ensure_wasm_target(sh)?;
    ensure_pcsc_packages(sh)?;
    cmd!(sh, "cargo fmt --all --check")
        .run()
        .context("formatting: run `cargo fmt --all`")?;
    // The terminal's PC/SC reader source (feature `pcsc`, which links libpcsclite) is linted,
    // built and tested with everything else: its tests run pcscd with the vpcd driver.
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked --features {PCSC_FEATURE} -- -D warnings"
    )
    .run()?;
    // And the terminal as it builds without a PC/SC stack (`--reader` is `pcsc_not_built`).
    cmd!(
        sh,
        "cargo clippy -p terminal --all-targets --locked -- -D warnings"
    )
    .run()?;
    // kernel-host's tests load the kernel .wasm; build it once here rather than from each test.
    let kernel_wasm = build_kernel_wasm(sh)?;
    let _kernel_wasm = sh.push_env("KERNEL_WASM", &kernel_wasm);
    // The terminal's tests drive a real softpos-server process; build it once here.
    let server_bin = build_server(sh)?;
    let _server_bin = sh.push_env("SOFTPOS_SERVER_BIN", &server_bin);
    if cmd!(sh, "cargo nextest --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        cmd!(
            sh,
            "cargo nextest run --workspace --locked --no-fail-fast --features {PCSC_FEATURE}"
        )
        .run()?;
    } else {
        cmd!(
            sh,
            "cargo test --workspace --locked --no-fail-fast --features {PCSC_FEATURE}"
        )
        .run()?;
    }
    // nextest does not run doctests.
    cmd!(
        sh,
        "cargo test --workspace --locked --doc --features {PCSC_FEATURE}"
    )
    .run()?;
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

/// Builds `softpos-server` (test profile's binary, `debug`) for the terminal's integration tests.
fn build_server(sh: &Shell) -> Result<PathBuf> {
    cmd!(sh, "cargo build --locked -p server --bin softpos-server").run()?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || project_root().join("target"),
        |dir| project_root().join(dir),
    );
    let server = target_dir.join("debug/softpos-server");
    if !server.is_file() {
        bail!("softpos-server is not at {}", server.display());
    }
    Ok(server)
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

fn deb_installed(sh: &Shell, package: &str) -> bool {
    // A variable, because xshell would read the braces of `${Status}` as interpolation.
    let format = "${Status}";
    cmd!(sh, "dpkg-query --show --showformat {format} {package}")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok_and(|status| status.trim() == "install ok installed")
}

/// Installs the missing [`PCSC_PACKAGES`] with apt-get (as root; the package lists are only
/// updated when an install fails). Without root it fails under `CI=true` and warns elsewhere
/// (the PC/SC tests then skip, saying why).
fn ensure_pcsc_packages(sh: &Shell) -> Result<()> {
    let missing: Vec<&str> = PCSC_PACKAGES
        .iter()
        .copied()
        .filter(|package| !deb_installed(sh, package))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let install_hint = format!("apt-get install {}", missing.join(" "));
    let is_root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
    let has_apt = cmd!(sh, "apt-get --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if !is_root || !has_apt {
        let why = format!("the PC/SC tests need Debian packages: run `sudo {install_hint}`");
        if std::env::var("CI").as_deref() == Ok("true") {
            bail!("{why}");
        }
        eprintln!("xtask test: {why}; the PC/SC tests will skip");
        return Ok(());
    }
    println!("xtask test: {install_hint}");
    let _frontend = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    let packages = &missing;
    let install = || {
        cmd!(
            sh,
            "apt-get install -y -qq --no-install-recommends {packages...}"
        )
        .quiet()
        .ignore_stdout()
        .run()
    };
    // A fresh machine's package lists may be missing or stale: update them only then.
    if install().is_err() {
        cmd!(sh, "apt-get update -qq")
            .quiet()
            .ignore_stdout()
            .run()?;
        install().with_context(|| format!("`{install_hint}` failed"))?;
    }
    if let Some(package) = missing.iter().find(|package| !deb_installed(sh, package)) {
        bail!("{package} is still not installed after `{install_hint}`");
    }
    Ok(())
}

/// A service the server's tests use in CI, and how to start it when it is down (the
/// commands of this project's machines; PostgreSQL refuses to run as root, hence
/// `pg_ctlcluster`).
struct Service {
    name: &'static str,
    addr: &'static str,
    start: &'static str,
}

const SERVICES: &[Service] = &[
    Service {
        name: "PostgreSQL",
        addr: "127.0.0.1:5432",
        start: "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    },
    Service {
        name: "Redis",
        addr: "127.0.0.1:6379",
        start: "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save '' \
                --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
    },
];

fn answers(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("service address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Makes sure PostgreSQL and Redis answer; starts them if they are down; fails otherwise.
fn ensure_services(sh: &Shell) -> Result<()> {
    for service in SERVICES {
        if answers(service.addr) {
            continue;
        }
        eprintln!("{} is down on {}; starting it", service.name, service.addr);
        let start = service.start;
        if let Err(error) = cmd!(sh, "sh -c {start}").run() {
            eprintln!("starting {} failed: {error}", service.name);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(service.addr) {
            if Instant::now() > deadline {
                bail!(
                    "{} does not answer on {} (CI=true needs it for the server tests)",
                    service.name,
                    service.addr
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    println!("xtask test: PostgreSQL and Redis answer");
    Ok(())
}
