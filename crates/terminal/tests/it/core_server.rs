//! A real `softpos-server` for the terminal core's integration tests, and the admin side of
//! onboarding (merchant, BDK, zone PIN key of the simulated issuer, approval).
//!
//! The binary: `SOFTPOS_SERVER_BIN`, else `softpos-server` in the target folder of this test
//! executable (`cargo xtask test` builds it first and exports the variable). When it is
//! missing, the tests fail under `CI=true`; elsewhere they build it once with
//! `cargo build -p server --bin softpos-server`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use serde_json::{Value, json};
use terminal::client::{Client, DeviceFacts};
use terminal::health::{AppFacts, HealthCollector};
use terminal::store::{DeviceConfig, SecureStore};
use uuid::Uuid;

const ADMIN_PASSWORD: &str = "terminal-core-admin-password";
const JWT_SECRET: &str = "5d2c7a9e1b3f4a6c8e0b1d3f5a7c9e8f3c1a9e5b7d2f4a6c8e0b1d3f5a7c9e8f";

fn server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Ok(path) = std::env::var("SOFTPOS_SERVER_BIN") {
                let path = PathBuf::from(path);
                assert!(
                    path.exists(),
                    "SOFTPOS_SERVER_BIN={} does not exist",
                    path.display()
                );
                return path;
            }
            // .../target/<profile>/deps/it-<hash> -> .../target/<profile>/softpos-server
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe
                .parent()
                .and_then(std::path::Path::parent)
                .expect("target/<profile>")
                .to_path_buf();
            let candidate = profile_dir.join("softpos-server");
            if candidate.exists() {
                return candidate;
            }
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "softpos-server not found at {} and CI=true: build it first (cargo xtask test \
                 does) or set SOFTPOS_SERVER_BIN",
                candidate.display()
            );
            eprintln!("building softpos-server for the terminal tests (once)...");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut args = vec!["build", "-p", "server", "--bin", "softpos-server"];
            if profile_dir
                .file_name()
                .is_some_and(|name| name == "release")
            {
                args.push("--release");
            }
            let status = Command::new(cargo)
                .args(&args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build -p server failed");
            assert!(
                candidate.exists(),
                "no softpos-server at {} after the build",
                candidate.display()
            );
            candidate
        })
        .clone()
}

/// A running server on a free loopback port with a temporary SQLite database.
pub(crate) struct TestServer {
    pub(crate) base: String,
    http: reqwest::Client,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestServer {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(server_binary())
            .arg("--listen-addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("REDIS_URL")
            .env_remove("TLS_CERT")
            .env_remove("TLS_KEY")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/softpos.db?mode=rwc", dir.path().display()),
            )
            .env("SOFTPOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "warn")
            .env("ALLOW_SOFTWARE_ATTESTATION", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start softpos-server");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
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
        let base = receiver
            .recv_timeout(Duration::from_secs(60))
            .expect("softpos-server did not report its address within 60 s");
        Self {
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            child,
            _dir: dir,
        }
    }

    async fn admin_call(&self, token: Option<&str>, path: &str, body: Value) -> Value {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.expect("admin request");
        let status = res.status();
        let body: Value = res.json().await.expect("json");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    /// An admin session.
    pub(crate) async fn admin(&self) -> Admin<'_> {
        let login = self
            .admin_call(
                None,
                "/api/v1/auth/login",
                json!({ "username": "admin", "password": ADMIN_PASSWORD }),
            )
            .await;
        Admin {
            server: self,
            token: login["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
        }
    }
}

/// The back office, logged in as the initial admin.
pub(crate) struct Admin<'a> {
    server: &'a TestServer,
    pub(crate) token: String,
}

impl Admin<'_> {
    pub(crate) async fn post(&self, path: &str, body: Value) -> Value {
        self.server.admin_call(Some(&self.token), path, body).await
    }

    /// `PUT` as the admin.
    pub(crate) async fn put(&self, path: &str, body: Value) -> Value {
        let res = self
            .server
            .http
            .put(format!("{}{path}", self.server.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("admin request");
        let status = res.status();
        let body: Value = res.json().await.expect("json");
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub(crate) async fn generate_active(&self, body: Value) -> Value {
        let key = self.post("/api/v1/keys/generate", body).await;
        let id = key["id"].as_str().expect("key id");
        self.post(&format!("/api/v1/keys/{id}/activate"), json!({}))
            .await
    }

    /// A merchant, an AES BDK and the simulated issuer's zone PIN key (format 4).
    pub(crate) async fn prepare_payments(&self) -> Uuid {
        self.generate_active(json!({ "name": "bdk", "usage": "bdk", "algorithm": "aes128" }))
            .await;
        self.generate_active(json!({
            "name": "issuer-sim zpk", "usage": "zpk", "algorithm": "aes128",
            "processor": "issuer-sim", "pin_format": 4,
        }))
        .await;
        let merchant = self
            .post(
                "/api/v1/merchants",
                json!({ "name": format!("Shop {}", Uuid::new_v4()), "country": "US", "mcc": "5411" }),
            )
            .await;
        merchant["id"]
            .as_str()
            .expect("merchant id")
            .parse()
            .expect("uuid")
    }

    pub(crate) async fn approve(&self, device: Uuid) {
        self.post(
            &format!("/api/v1/devices/{device}/approve"),
            json!({ "reason": "terminal core test" }),
        )
        .await;
    }
}

/// A terminal that went through register → approve → inject → health, ready to pay.
pub(crate) async fn onboarded(
    server: &TestServer,
    admin: &Admin<'_>,
    merchant: Uuid,
    store: SecureStore,
) -> Arc<Client> {
    let store = Arc::new(store);
    let client = Client::with_base(&server.base, store).expect("client");
    let facts = DeviceFacts::desktop(&AppFacts::development());
    let device = client
        .register(merchant, &facts, "softpos")
        .await
        .expect("register");
    admin.approve(device.id).await;
    client
        .wait_for_approval(Duration::from_millis(50), Duration::from_secs(10))
        .await
        .expect("approved");
    let activation = client.inject_keys().await.expect("key injection");
    assert_eq!(activation.pending.as_deref(), Some("no_health_check"));
    let verdict = client
        .report_health(&HealthCollector::simulated(AppFacts::development()))
        .await
        .expect("health report");
    assert!(verdict.passed, "clean report must pass: {verdict:?}");
    let activation = client.activate().await.expect("activate");
    assert_eq!(activation.device_state.as_str(), "ACTIVE", "{activation:?}");
    Arc::new(client)
}

/// A memory store.
pub(crate) fn memory_store() -> SecureStore {
    SecureStore::in_memory(DeviceConfig::default())
}
