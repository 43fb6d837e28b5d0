//! A local `softpos-server` process for tests and benchmarks: started on a free loopback port
//! with its own data folder, software attestation allowed (desktop terminals), a known first
//! admin password and a trusted release key; stopped and cleaned up on drop.
//!
//! The terminal never links the server crate: it finds the binary (`SOFTPOS_SERVER_BIN`, else
//! `softpos-server` next to the running executable's target folder) and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first admin password every local server starts with.
pub const LOCAL_ADMIN_PASSWORD: &str = "local-fleet-admin-password";

/// A fixed development JWT key (local servers only; a real deployment sets its own).
const LOCAL_JWT_SECRET: &str = "6b1f0c2e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c";

/// Where the `softpos-server` binary is: `SOFTPOS_SERVER_BIN`, else next to the running
/// executable (`target/<profile>/softpos-server` seen from `target/<profile>/deps/…` or
/// `target/<profile>/examples/…`, or from `target/<profile>/` itself).
#[must_use]
pub fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SOFTPOS_SERVER_BIN") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if matches!(
        dir.file_name().and_then(|n| n.to_str()),
        Some("deps" | "examples")
    ) {
        dir = dir.parent()?;
    }
    let candidate = dir.join(format!("softpos-server{}", std::env::consts::EXE_SUFFIX));
    candidate.is_file().then_some(candidate)
}

/// A running local server.
#[derive(Debug)]
pub struct LocalServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data folder (removed on drop).
    pub data_dir: PathBuf,
    child: Child,
}

/// Options of [`LocalServer::start`].
#[derive(Debug, Clone, Default)]
pub struct LocalServerOptions {
    /// Extra environment (e.g. `RELEASE_PUBLIC_KEYS`, `DATABASE_URL`).
    pub env: Vec<(String, String)>,
    /// Server log filter (`RUST_LOG`); default `warn`.
    pub log: Option<String>,
}

impl LocalServer {
    /// Starts `binary` and waits (up to 60 s) until it prints its address.
    ///
    /// # Errors
    /// A message when the process cannot start or never reports its address.
    pub fn start(binary: &Path, options: &LocalServerOptions) -> Result<Self, String> {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let data_dir =
            std::env::temp_dir().join(format!("softpos-local-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&data_dir)
            .map_err(|error| format!("cannot create {}: {error}", data_dir.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("--listen-addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("TLS_CERT")
            .env_remove("TLS_KEY")
            .env("SOFTPOS_ADMIN_PASSWORD", LOCAL_ADMIN_PASSWORD)
            .env("JWT_SECRET", LOCAL_JWT_SECRET)
            .env("ALLOW_SOFTWARE_ATTESTATION", "true")
            .env("RUST_LOG", options.log.as_deref().unwrap_or("warn"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (sender, receiver) = mpsc::channel();
        // Keep draining standard output for the whole run so the server never blocks on a full
        // pipe.
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("softpos-server listening on ")
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(rest.trim().to_owned());
                }
            }
        });
        match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Ok(Self {
                base,
                data_dir,
                child,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&data_dir);
                Err(format!(
                    "{} did not report its address within 60 s",
                    binary.display()
                ))
            }
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
