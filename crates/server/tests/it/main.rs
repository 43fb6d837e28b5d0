//! Integration tests: each test starts the real `softpos-server` binary on `127.0.0.1:0` with
//! a temporary data folder and drives it over HTTP.
//!
//! Every scenario runs twice: against SQLite with in-process stores, and against PostgreSQL
//! (`postgres://postgres@127.0.0.1:5432/test`, a fresh database per test, dropped afterwards)
//! with Redis (`redis://127.0.0.1:6379`, a per-test key prefix). When `CI=true` and either
//! service is unreachable the PostgreSQL variant fails; elsewhere it is skipped with a reason.

mod api_keys;
mod attestation;
mod audit;
mod auth;
mod authz;
mod bad_input;
mod devices;
mod enrol;
mod events;
mod health;
mod keys;
mod keystore_custody;
mod merchants;
mod ops;
mod payments;
mod payments_followups;
mod payments_tdes;
mod releases;
mod threats;
mod tokens;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

/// Runs each named scenario `async fn name(app: TestApp)` on both backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Backend::Sqlite, &[]).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod postgres_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::TestApp::spawn($crate::Backend::Postgres, &[]).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// Which storage a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file + in-process stores.
    Sqlite,
    /// PostgreSQL + Redis.
    Postgres,
}

const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// The admin password every test server starts with.
pub const ADMIN_PASSWORD: &str = "integration-admin-password";
const JWT_SECRET: &str = "8f3c1a9e5b7d2f4a6c8e0b1d3f5a7c9e8f3c1a9e5b7d2f4a6c8e0b1d3f5a7c9e";
/// Master keyring and PAN fingerprint key every instance of a test deployment shares (as
/// instances behind one load balancer must); a test may pass its own.
const MASTER_KEY: &str = "1:5f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const PAN_FINGERPRINT_KEY: &str =
    "3c5a7e9b1d2f4a6c8e0b3c5a7e9b1d2f4a6c8e0b3c5a7e9b1d2f4a6c8e0b1d2f";

fn service_up(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// PostgreSQL and Redis are both reachable; otherwise fail under CI, skip elsewhere.
fn shared_services_available() -> bool {
    let pg = service_up("127.0.0.1:5432");
    let redis = service_up("127.0.0.1:6379");
    if pg && redis {
        return true;
    }
    let reason = format!("PostgreSQL reachable: {pg}, Redis reachable: {redis}");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the shared services are missing ({reason})"
    );
    eprintln!("SKIPPED (PostgreSQL + Redis variant): {reason}");
    false
}

/// Where a test server keeps its state, so a second instance can share it.
#[derive(Debug, Clone)]
pub struct Storage {
    /// `DATABASE_URL`.
    pub database_url: String,
    /// `REDIS_URL` and `REDIS_KEY_PREFIX`, if any.
    pub redis: Option<(String, String)>,
    /// PostgreSQL database to drop at the end.
    pg_database: Option<String>,
}

/// A running server and what the test needs to talk to it.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// HTTP client (rustls, cookies off).
    pub client: reqwest::Client,
    /// Backend in use.
    pub backend: Backend,
    /// Storage, shareable with [`TestApp::spawn_sharing`].
    pub storage: Storage,
    child: Child,
    owns_storage: bool,
    logs: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.owns_storage {
            return;
        }
        let pg_database = self.storage.pg_database.take();
        let redis = self.storage.redis.take();
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                if let Some(name) = pg_database
                    && let Ok(pool) = admin_pool().await
                {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
                if let Some((url, prefix)) = redis
                    && let Ok(client) = redis::Client::open(url.as_str())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<i64, _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        })
        .join();
    }
}

async fn admin_pool() -> Result<AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(PG_ADMIN_URL)
        .await
}

impl TestApp {
    /// Starts a server on fresh storage. `None` when the backend is unavailable here (and
    /// not under CI).
    pub async fn spawn(backend: Backend, env: &[(&str, &str)]) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = match backend {
            Backend::Sqlite => Storage {
                database_url: format!(
                    "sqlite://{}/softpos.db?mode=rwc",
                    dir.path().to_string_lossy()
                ),
                redis: None,
                pg_database: None,
            },
            Backend::Postgres => {
                if !shared_services_available() {
                    return None;
                }
                let name = format!("softpos_test_{}", uuid::Uuid::new_v4().simple());
                let pool = admin_pool().await.expect("connect to PostgreSQL");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                Storage {
                    database_url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    redis: Some((
                        REDIS_URL.to_owned(),
                        format!("softpos-test:{}:", uuid::Uuid::new_v4().simple()),
                    )),
                    pg_database: Some(name),
                }
            }
        };
        Some(Self::start(backend, storage, dir, env, true))
    }

    /// Starts a second instance on the same database and Redis (scale-out tests).
    pub fn spawn_sharing(&self, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start(self.backend, self.storage.clone(), dir, env, false)
    }

    fn start(
        backend: Backend,
        storage: Storage,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
        owns_storage: bool,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_softpos-server"));
        command
            .arg("--listen-addr")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("REDIS_URL")
            .env_remove("TLS_CERT")
            .env_remove("TLS_KEY")
            .env("DATABASE_URL", &storage.database_url)
            .env("SOFTPOS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("JWT_SECRET", JWT_SECRET)
            .env("SOFTPOS_MASTER_KEY", MASTER_KEY)
            .env("PAN_FINGERPRINT_KEY", PAN_FINGERPRINT_KEY)
            .env_remove("SOFTPOS_MASTER_KEY_FILE")
            .env("RUST_LOG", "warn")
            .env("ALLOW_SOFTWARE_ATTESTATION", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((url, prefix)) = &storage.redis {
            command
                .env("REDIS_URL", url)
                .env("REDIS_KEY_PREFIX", prefix);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start softpos-server");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        // Keep draining stdout for the whole run so the server never blocks on a full pipe;
        // keep what it said (the JSON log goes to stdout) for the secrets-in-logs scans.
        std::thread::spawn(move || {
            let mut sender = Some(sender);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut logs) = sink.lock() {
                    logs.push_str(&line);
                    logs.push('\n');
                }
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
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            base,
            client,
            backend,
            storage,
            child,
            owns_storage,
            logs,
            dir,
        }
    }

    /// Everything the server wrote to stdout so far (its JSON log and startup lines).
    pub fn logs(&self) -> String {
        self.logs.lock().expect("log buffer").clone()
    }

    /// The data folder of this instance (the SQLite file lives here on that backend).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A request to `path` (absolute path on the server).
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Logs in; returns the raw response.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.req(Method::POST, "/api/v1/auth/login")
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("login request")
    }

    /// Logs in and returns the token response body (panics on failure).
    pub async fn login_ok(&self, username: &str, password: &str) -> Value {
        let res = self.login(username, password).await;
        assert_eq!(res.status(), StatusCode::OK, "login of {username} failed");
        res.json().await.expect("token json")
    }

    /// `GET path` as `token`; the JSON body (whatever the status).
    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        self.req(Method::GET, path)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// An access token for the initial admin.
    pub async fn admin_token(&self) -> String {
        token_of(&self.login_ok("admin", ADMIN_PASSWORD).await)
    }

    /// Creates a user with `role` (as admin) and returns its password.
    pub async fn create_user(&self, admin: &str, username: &str, role: &str) -> String {
        let password = format!("{username}-long-password-1");
        let res = self
            .req(Method::POST, "/api/v1/users")
            .bearer_auth(admin)
            .json(&json!({ "username": username, "role": role, "password": password }))
            .send()
            .await
            .expect("create user");
        assert_eq!(res.status(), StatusCode::CREATED, "create user {username}");
        password
    }

    /// Creates a user with `role` and returns an access token for it.
    pub async fn token_for_role(&self, admin: &str, role: &str) -> String {
        let username = format!(
            "{}-{}",
            role.replace('_', "-"),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let password = self.create_user(admin, &username, role).await;
        token_of(&self.login_ok(&username, &password).await)
    }

    /// Creates an API key with `scopes`; returns the secret.
    pub async fn api_key(&self, admin: &str, scopes: &[&str]) -> String {
        let res = self
            .req(Method::POST, "/api/v1/api-keys")
            .bearer_auth(admin)
            .json(&json!({ "name": "test key", "scopes": scopes }))
            .send()
            .await
            .expect("create api key");
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.expect("json");
        body["secret"].as_str().expect("secret").to_owned()
    }

    /// A direct connection to the server's database (for tampering and counting).
    pub async fn db(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.storage.database_url)
            .await
            .expect("connect to the test database")
    }

    /// `SELECT COUNT(*)` of a table (names are test constants, never input).
    pub async fn count(&self, table: &'static str) -> i64 {
        let pool = self.db().await;
        let sql = match table {
            "merchants" => "SELECT COUNT(*) FROM merchants",
            "users" => "SELECT COUNT(*) FROM users",
            "audit_log" => "SELECT COUNT(*) FROM audit_log",
            "api_keys" => "SELECT COUNT(*) FROM api_keys",
            other => panic!("unknown table {other}"),
        };
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        n
    }
}

/// The access token of a token response.
pub fn token_of(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// Reads a JSON error body and checks its code.
pub async fn expect_error(res: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "unexpected status");
    let body: Value = res.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "unexpected error code in {body}");
    assert!(
        body["message"].is_string(),
        "error message missing in {body}"
    );
    body
}

/// The JSON body of a response that must have `status` (the body is in the failure message).
pub async fn expect_json(res: reqwest::Response, status: StatusCode) -> Value {
    let actual = res.status();
    let body: Value = res.json().await.expect("response body is JSON");
    assert_eq!(actual, status, "{body}");
    body
}

/// A registered test device and its private key.
#[derive(Debug, Clone)]
pub struct TestDevice {
    /// Device id.
    pub id: String,
    /// Its key.
    pub key: p256::ecdsa::SigningKey,
}

/// A fresh random P-256 key.
pub fn new_device_key() -> p256::ecdsa::SigningKey {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("random");
        if let Ok(key) = p256::ecdsa::SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// Base64 of the SEC1 uncompressed public key.
pub fn public_key_b64(key: &p256::ecdsa::SigningKey) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_sec1_bytes())
}

/// ECDSA P-256/SHA-256 signature, DER, base64.
pub fn sign_b64(key: &p256::ecdsa::SigningKey, message: &str) -> String {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    let signature: p256::ecdsa::Signature = key.sign(message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
}

/// Valid device facts.
pub fn facts(model: &str, imei: Option<&str>) -> Value {
    json!({
        "model": model,
        "os_version": "14",
        "security_patch": "2026-10-05",
        "app_package": "com.sunbay.softpos",
        "app_version": "1.0.0",
        "app_signing_digest": "ab".repeat(32),
        "tee": true,
        "strongbox": false,
        "nfc": true,
        "imei": imei,
    })
}

impl TestApp {
    /// A fresh registration challenge.
    pub async fn challenge(&self) -> String {
        let res = self
            .req(Method::POST, "/api/v1/devices/challenge")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["challenge"].as_str().unwrap().to_owned()
    }

    /// A registration request body with software attestation by `key`.
    pub fn registration(
        &self,
        challenge: &str,
        key: &p256::ecdsa::SigningKey,
        merchant_id: &str,
        facts: Value,
    ) -> Value {
        let public_key = public_key_b64(key);
        let message = format!("softpos-device-registration-v1\n{challenge}\n{public_key}");
        json!({
            "challenge": challenge,
            "public_key": public_key,
            "facts": facts,
            "mode": "softpos",
            "merchant_id": merchant_id,
            "attestation": { "format": "software", "signature": sign_b64(key, &message) },
        })
    }

    /// Posts a registration.
    pub async fn register(&self, body: &Value) -> reqwest::Response {
        self.req(Method::POST, "/api/v1/devices/register")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates a merchant; returns its id.
    pub async fn merchant(&self, admin: &str) -> String {
        let res = self
            .req(Method::POST, "/api/v1/merchants")
            .bearer_auth(admin)
            .json(&json!({ "name": format!("Merchant {}", uuid::Uuid::new_v4()), "country": "DE", "mcc": "5411" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Registers a device for `merchant_id`.
    pub async fn device(&self, merchant_id: &str) -> TestDevice {
        let key = new_device_key();
        let challenge = self.challenge().await;
        let res = self
            .register(&self.registration(&challenge, &key, merchant_id, facts("Pixel 9", None)))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        TestDevice {
            id: body["id"].as_str().unwrap().to_owned(),
            key,
        }
    }

    /// A request signed by `device` with explicit timestamp and nonce.
    pub fn signed_with(
        &self,
        device: &TestDevice,
        method: Method,
        path: &str,
        body: &[u8],
        timestamp: i64,
        nonce: &str,
    ) -> RequestBuilder {
        use sha2::Digest;
        let message = format!(
            "SOFTPOS-DEVICE-V1\n{}\n{path}\n{timestamp}\n{nonce}\n{}",
            method.as_str(),
            hex::encode(sha2::Sha256::digest(body))
        );
        self.req(method, path)
            .header("x-device-id", &device.id)
            .header("x-device-timestamp", timestamp.to_string())
            .header("x-device-nonce", nonce)
            .header("x-device-signature", sign_b64(&device.key, &message))
            .header("content-type", "application/json")
            .body(body.to_vec())
    }

    /// A request signed by `device` now, with a fresh nonce.
    pub fn signed(
        &self,
        device: &TestDevice,
        method: Method,
        path: &str,
        body: &[u8],
    ) -> RequestBuilder {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        self.signed_with(
            device,
            method,
            path,
            body,
            i64::try_from(now).unwrap(),
            &nonce,
        )
    }
}
