//! A private PC/SC stack for the `pcsc` tests: Debian's pcscd with vsmartcard's vpcd driver,
//! and `softpos-terminal virtual-reader` putting virtual cards in vpcd's field.
//!
//! pcscd 1.9.9 always serves `/run/pcscd/pcscd.comm`, so each test runs its own pcscd in a mount
//! namespace where a temporary folder is bind-mounted on `/run`; the client library reaches it
//! through `PCSCLITE_CSOCK_NAME`. Its configuration folder holds one vpcd reader on a free port
//! (vpcd serves two slots, on that port and the next), so tests run in parallel and never touch
//! a pcscd of the machine.
//!
//! Missing programs fail the test under `CI=true` (`cargo xtask test` installs them) and skip
//! it with a printed reason elsewhere.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli_support::{Run, finish};

/// The reader's name in the configuration; pcscd appends the slot (`00 00`, `00 01`).
pub(crate) const READER: &str = "SoftPOS Test Reader";

/// Where Debian's vsmartcard-vpcd puts the driver, when `/etc/reader.conf.d/vpcd` does not say.
const DEBIAN_VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// A running pcscd with a vpcd reader.
#[derive(Debug)]
pub(crate) struct PcscStack {
    dir: tempfile::TempDir,
    pcscd: Option<Child>,
    port: u16,
}

/// The prerequisite `reason` is missing: a failure under `CI=true`, a printed skip elsewhere.
fn unavailable(reason: &str) -> Option<PcscStack> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and the PC/SC stack is unusable: {reason} \
         (`cargo xtask test` installs pcscd, libpcsclite-dev and vsmartcard-vpcd)"
    );
    eprintln!("skipping this PC/SC test: {reason}");
    None
}

fn program(candidates: &[&str]) -> Option<PathBuf> {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
}

/// The vpcd driver: the `LIBPATH` of the installed reader configuration, else Debian's path.
fn vpcd_driver() -> Option<PathBuf> {
    let configured = std::fs::read_to_string("/etc/reader.conf.d/vpcd")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.trim().strip_prefix("LIBPATH"))
                .map(|path| PathBuf::from(path.trim()))
        });
    configured
        .into_iter()
        .chain([PathBuf::from(DEBIAN_VPCD_DRIVER)])
        .find(|path| path.is_file())
}

/// A port that is free together with the next one (vpcd's two slots), on every address (vpcd
/// binds them all).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind a free port");
        let port = first.local_addr().expect("local address").port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::UNSPECIFIED, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free ports in a row");
}

impl PcscStack {
    /// Starts pcscd with a vpcd reader; `None` when the stack is missing and the test may skip.
    pub(crate) fn start() -> Option<Self> {
        let Some(pcscd) = program(&["/usr/sbin/pcscd", "/usr/local/sbin/pcscd"]) else {
            return unavailable("pcscd is not installed (Debian package pcscd)");
        };
        let Some(unshare) = program(&["/usr/bin/unshare", "/bin/unshare"]) else {
            return unavailable("unshare is not installed (util-linux)");
        };
        let Some(driver) = vpcd_driver() else {
            return unavailable(
                "the vpcd driver is not installed (Debian package vsmartcard-vpcd)",
            );
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let (run, config) = (dir.path().join("run"), dir.path().join("reader.conf.d"));
        std::fs::create_dir(&run).expect("run folder");
        std::fs::create_dir(&config).expect("config folder");
        let port = free_port_pair();
        std::fs::write(
            config.join("vpcd"),
            format!(
                "FRIENDLYNAME \"{READER}\"\nDEVICENAME /dev/null:{port}\nLIBPATH {}\nCHANNELID {port}\n",
                driver.display()
            ),
        )
        .expect("reader configuration");
        let log = std::fs::File::create(dir.path().join("pcscd.log")).expect("log file");
        let mut command = Command::new(unshare);
        command.arg("--mount");
        // Without root, a user namespace grants the mount (where the kernel allows it).
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(0)
            != 0
        {
            command.arg("--map-root-user");
        }
        let child = command
            .args([
                "sh",
                "-c",
                r#"mount --bind "$0" /run && exec "$1" --foreground --config "$2""#,
            ])
            .args([&run, &pcscd, &config])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start unshare");
        let mut stack = Self {
            dir,
            pcscd: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stack.socket().exists() {
            if let Some(status) = stack
                .pcscd
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let log = stack.log();
                if log.contains("unshare failed") || log.contains("mount: ") {
                    return unavailable(&format!("no private mount namespace here: {log}"));
                }
                panic!("pcscd exited ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "pcscd did not start:\n{}",
                stack.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(stack)
    }

    /// pcscd's socket, for `PCSCLITE_CSOCK_NAME`.
    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("run/pcscd/pcscd.comm")
    }

    /// The environment a PC/SC client of this stack needs.
    pub(crate) fn client_env(&self) -> (String, String) {
        (
            "PCSCLITE_CSOCK_NAME".to_owned(),
            self.socket().display().to_string(),
        )
    }

    /// The reader of `slot` (0 or 1) as pcscd names it.
    pub(crate) fn reader(slot: u16) -> String {
        format!("{READER} 00 {slot:02}")
    }

    /// vpcd's address for `slot`.
    pub(crate) fn vpcd(&self, slot: u16) -> String {
        format!("127.0.0.1:{}", self.port + slot)
    }

    /// Starts `softpos-terminal virtual-reader --card CARD` on `slot`, with `extra` options.
    pub(crate) fn insert(&self, slot: u16, card: &str, extra: &[&str]) -> Child {
        let vpcd = self.vpcd(slot);
        let mut args = vec!["--json", "--card", card, "--vpcd", &vpcd];
        args.extend_from_slice(extra);
        crate::virtual_reader::start(&args)
    }

    /// Stops pcscd, which closes every vpcd connection.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.pcscd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pcscd.log")).unwrap_or_default()
    }
}

impl Drop for PcscStack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for a `virtual-reader` run, failing the test if it does not end in `timeout`.
pub(crate) fn finish_within(mut child: Child, timeout: Duration) -> Run {
    let deadline = Instant::now() + timeout;
    while child.try_wait().expect("wait for virtual-reader").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "virtual-reader did not end within {timeout:?}: {:?}",
                finish(child)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    finish(child)
}
