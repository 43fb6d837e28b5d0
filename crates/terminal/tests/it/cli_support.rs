//! Running `softpos-terminal` as a user would, with its own store file and store key, against a
//! local server.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::admin_client;

/// What one run of the binary gave.
#[derive(Debug)]
pub(crate) struct Run {
    /// Exit code.
    pub(crate) code: i32,
    /// Standard output.
    pub(crate) stdout: String,
    /// Standard error.
    pub(crate) stderr: String,
}

impl Run {
    /// Standard output as JSON (panics with the whole run when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {self:?}"))
    }

    /// Asserts success and returns the JSON output.
    pub(crate) fn ok_json(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        assert!(self.stderr.is_empty(), "{self:?}");
        self.json()
    }

    /// Asserts a one-line error with `code` and exit code `exit`, and nothing on stdout.
    pub(crate) fn expect_error(&self, exit: i32, code: &str) {
        assert_eq!(self.code, exit, "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:?}");
        assert!(
            self.stderr.starts_with(&format!("error: {code}: ")),
            "expected {code}: {self:?}"
        );
    }
}

/// One desktop terminal: a store file in its own folder, opened with a random store key.
#[derive(Debug)]
pub(crate) struct Terminal {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) store_key: String,
    pub(crate) env: Vec<(String, String)>,
}

impl Terminal {
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("random");
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            store_key: hex::encode(key),
            env: Vec::new(),
        }
    }

    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("terminal.store")
    }

    /// Starts `softpos-terminal ARGS` with `stdin` as standard input; [`finish`] collects it.
    pub(crate) fn spawn(&self, args: &[&str], stdin: &str) -> std::process::Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_softpos-terminal"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("SOFTPOS_TERMINAL_STORE", self.store())
            .env("SOFTPOS_STORE_KEY", &self.store_key)
            .env_remove("SOFTPOS_STORE_KEY_FILE")
            .env_remove("SOFTPOS_STORE_PASSPHRASE")
            .env_remove("SOFTPOS_TERMINAL_CRASH_AFTER")
            .env_remove("SOFTPOS_ADMIN_PASSWORD")
            .env_remove("SOFTPOS_API_KEY")
            .env("SOFTPOS_TERMINAL_PROGRESS", "never")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("softpos-terminal runs");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        child
    }

    /// Runs `softpos-terminal ARGS` with `stdin` as standard input.
    pub(crate) fn run_with_input(&self, args: &[&str], stdin: &str) -> Run {
        finish(self.spawn(args, stdin))
    }

    /// Runs `softpos-terminal ARGS`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, "")
    }
}

/// Waits for a started run and collects what it gave.
pub(crate) fn finish(child: std::process::Child) -> Run {
    let output = child.wait_with_output().expect("softpos-terminal finishes");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}
/// A registered, approved, keyed and healthy (ACTIVE) terminal, the admin client and the
/// device id.
pub(crate) async fn active_terminal(
    server: &terminal::fleet::server::LocalServer,
) -> (Terminal, terminal::fleet::admin::AdminClient, String) {
    active_terminal_with(server, &[]).await
}

/// As [`active_terminal`], with extra `init` options (e.g. trusted release keys).
pub(crate) async fn active_terminal_with(
    server: &terminal::fleet::server::LocalServer,
    init_options: &[&str],
) -> (Terminal, terminal::fleet::admin::AdminClient, String) {
    let admin = admin_client(&server.base);
    admin.ensure_payment_keys().await.expect("payment keys");
    let merchant = admin
        .create_merchant(&format!("CLI shop {}", uuid::Uuid::new_v4()))
        .await
        .expect("merchant");
    let terminal = Terminal::new();
    let mut init = vec!["init", "--server", &server.base, "--json"];
    init.extend_from_slice(init_options);
    terminal.run(&init).ok_json();
    let registered = terminal
        .run(&["register", "--merchant", &merchant, "--no-wait", "--json"])
        .ok_json();
    assert_eq!(registered["state"], "REGISTERED");
    let device_id = registered["device_id"].as_str().unwrap().to_owned();
    admin.approve_device(&device_id, "cli test").await.unwrap();
    terminal.run(&["keys", "inject", "--json"]).ok_json();
    let health = terminal
        .run(&["health", "--no-root-check", "--json"])
        .ok_json();
    assert_eq!(health["device_state"], "ACTIVE", "{health}");
    (terminal, admin, device_id)
}
