//! The operator's side of the fleet: the admin API calls that stand for what a person does in
//! the console (log in, create a merchant, make sure payment keys exist, approve devices, read a
//! device's state and threats).
//!
//! Credentials: the admin password (login → short-lived access token, renewed by logging in
//! again when the server says it expired) or an API key (`X-API-Key`). The server lets API keys
//! only reach the endpoints their scopes cover: a fleet key needs `merchants:write` (unless
//! `--merchant` is given), `devices:approve` and `devices:read`; key custody (the BDK and zone
//! PIN key) stays with people, so with a key those must exist already. [`AdminClient`] reports
//! the server's `forbidden` / `unauthorized` as typed errors rather than guessing.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::RwLock;

/// What an admin call can end in. `code` is the server's stable code or one of ours
/// (`unreachable`, `bad_response`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AdminError {
    /// Stable code.
    pub code: String,
    /// HTTP status (0 when the server was not reached).
    pub status: u16,
    /// Human text from the server (never key material).
    pub message: String,
}

impl AdminError {
    fn transport(error: &reqwest::Error) -> Self {
        Self {
            code: "unreachable".to_owned(),
            status: 0,
            message: format!("the server cannot be reached: {error}"),
        }
    }

    fn bad_response(what: &str) -> Self {
        Self {
            code: "bad_response".to_owned(),
            status: 0,
            message: format!("unexpected answer from the server: {what}"),
        }
    }
}

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum AdminCredentials {
    /// Username and password (an access token is fetched and renewed).
    Password {
        /// Username, e.g. `admin`.
        username: String,
        /// Password.
        password: String,
    },
    /// An API key (`sbk_…`).
    ApiKey(String),
}

/// The admin API over HTTP.
#[derive(Debug)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
    credentials: AdminCredentials,
    access_token: RwLock<Option<String>>,
}

/// One stored key as the admin API lists it (no key material).
#[derive(Debug, Clone, Deserialize)]
pub struct KeyInfo {
    /// Id.
    pub id: String,
    /// `bdk`, `zpk`, `kek`.
    pub usage: String,
    /// `aes128`, `tdes2`, …
    pub algorithm: String,
    /// `ACTIVE`, `READY`, `RETIRED`, …
    pub state: String,
    /// ZPK: processor connection.
    #[serde(default)]
    pub processor: Option<String>,
}

/// The processor connection the server's built-in acquirer uses.
pub const ISSUER_SIM_PROCESSOR: &str = "issuer-sim";

impl AdminClient {
    /// A client for the server at `base` (`http://127.0.0.1:8080`, no trailing slash needed).
    ///
    /// # Errors
    /// `bad_request` when the HTTP client cannot be built.
    pub fn new(base: &str, credentials: AdminCredentials) -> Result<Self, AdminError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|error| AdminError::transport(&error))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            credentials,
            access_token: RwLock::new(None),
        })
    }

    /// The server's base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn login(&self) -> Result<String, AdminError> {
        let AdminCredentials::Password { username, password } = &self.credentials else {
            return Err(AdminError::bad_response("an API key cannot log in"));
        };
        let body = json!({ "username": username, "password": password });
        let res = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|error| AdminError::transport(&error))?;
        let value = read(res).await?;
        let token = value["access_token"]
            .as_str()
            .ok_or_else(|| AdminError::bad_response("login answer without access_token"))?
            .to_owned();
        *self.access_token.write().await = Some(token.clone());
        Ok(token)
    }

    /// Checks the credentials now (a login, or with the API key a read that every fleet key
    /// needs: `devices:read`).
    ///
    /// # Errors
    /// The server's error (`invalid_credentials`, `unauthorized`, `too_many_requests`) or
    /// `unreachable`.
    pub async fn authenticate(&self) -> Result<(), AdminError> {
        match &self.credentials {
            AdminCredentials::Password { .. } => self.login().await.map(drop),
            AdminCredentials::ApiKey(_) => self
                .call(Method::GET, "/api/v1/devices?limit=1", None)
                .await
                .map(drop),
        }
    }

    /// An authenticated call; with a password, an expired token is renewed once.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, AdminError> {
        let mut renewed = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            match &self.credentials {
                AdminCredentials::ApiKey(key) => req = req.header("x-api-key", key),
                AdminCredentials::Password { .. } => {
                    let cached = self.access_token.read().await.clone();
                    let token = match cached {
                        Some(token) => token,
                        None => self.login().await?,
                    };
                    req = req.bearer_auth(token);
                }
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let res = req
                .send()
                .await
                .map_err(|error| AdminError::transport(&error))?;
            if res.status() == StatusCode::UNAUTHORIZED
                && !renewed
                && matches!(self.credentials, AdminCredentials::Password { .. })
            {
                renewed = true;
                *self.access_token.write().await = None;
                continue;
            }
            return read(res).await;
        }
    }

    /// Creates a merchant named `name` (unique on the server); returns its id.
    ///
    /// # Errors
    /// The server's error, e.g. `merchant_name_taken` or `validation_failed`.
    pub async fn create_merchant(&self, name: &str) -> Result<String, AdminError> {
        let body = json!({ "name": name, "country": "DE", "mcc": "5411" });
        let value = self
            .call(Method::POST, "/api/v1/merchants", Some(&body))
            .await?;
        string_field(&value, "id")
    }

    /// Creates an API key with `scopes` (admins only); returns its secret, shown this once.
    ///
    /// # Errors
    /// The server's error.
    pub async fn create_api_key(&self, name: &str, scopes: &[&str]) -> Result<String, AdminError> {
        let body = json!({ "name": name, "scopes": scopes });
        let value = self
            .call(Method::POST, "/api/v1/api-keys", Some(&body))
            .await?;
        string_field(&value, "secret")
    }

    /// Approves a registered device (`REGISTERED → APPROVED`).
    ///
    /// # Errors
    /// The server's error, e.g. `invalid_device_transition` or `forbidden` for an API key.
    pub async fn approve_device(&self, device_id: &str, reason: &str) -> Result<(), AdminError> {
        let body = json!({ "reason": reason });
        self.call(
            Method::POST,
            &format!("/api/v1/devices/{device_id}/approve"),
            Some(&body),
        )
        .await
        .map(drop)
    }

    /// The device's state as the server records it (`REGISTERED`, `APPROVED`, `ACTIVE`,
    /// `SUSPENDED`, `REVOKED`).
    ///
    /// # Errors
    /// The server's error, e.g. `not_found`.
    pub async fn device_state(&self, device_id: &str) -> Result<String, AdminError> {
        let value = self
            .call(Method::GET, &format!("/api/v1/devices/{device_id}"), None)
            .await?;
        string_field(&value, "state")
    }

    /// The kinds of the device's threat events (`hook_framework`, `ksn_replay`, …), newest
    /// first.
    ///
    /// # Errors
    /// The server's error.
    pub async fn threat_kinds(&self, device_id: &str) -> Result<Vec<String>, AdminError> {
        let value = self
            .call(
                Method::GET,
                &format!("/api/v1/threats?device_id={device_id}"),
                None,
            )
            .await?;
        let items = value["threats"]
            .as_array()
            .ok_or_else(|| AdminError::bad_response("threat list without threats"))?;
        Ok(items
            .iter()
            .filter_map(|item| item["kind"].as_str().map(str::to_owned))
            .collect())
    }

    /// Stored keys of one usage (`bdk`, `zpk`, `kek`), newest first.
    ///
    /// # Errors
    /// The server's error.
    pub async fn keys(&self, usage: &str) -> Result<Vec<KeyInfo>, AdminError> {
        let value = self
            .call(Method::GET, &format!("/api/v1/keys?usage={usage}"), None)
            .await?;
        serde_json::from_value(value["keys"].clone())
            .map_err(|_| AdminError::bad_response("key list"))
    }

    /// Generates and activates a key (`POST /keys/generate` then `/activate`); returns its id.
    ///
    /// # Errors
    /// The server's error.
    pub async fn generate_active_key(&self, spec: &Value) -> Result<String, AdminError> {
        let key = self
            .call(Method::POST, "/api/v1/keys/generate", Some(spec))
            .await?;
        let id = string_field(&key, "id")?;
        self.call(
            Method::POST,
            &format!("/api/v1/keys/{id}/activate"),
            Some(&json!({})),
        )
        .await?;
        Ok(id)
    }

    /// Makes sure payments can run: an active AES-128 BDK for key injection and an active AES
    /// zone PIN key (format 4) for the built-in acquirer. Keys already active are kept; returns
    /// what was created (`bdk`, `zpk`).
    ///
    /// # Errors
    /// The server's error (`forbidden` unless the caller is an admin or security officer).
    pub async fn ensure_payment_keys(&self) -> Result<Vec<&'static str>, AdminError> {
        let mut created = Vec::new();
        let active = |keys: &[KeyInfo]| keys.iter().any(|key| key.state == "ACTIVE");
        if !active(&self.keys("bdk").await?) {
            self.generate_active_key(&json!({
                "name": "fleet BDK", "usage": "bdk", "algorithm": "aes128",
            }))
            .await?;
            created.push("bdk");
        }
        let zpks = self.keys("zpk").await?;
        let zpk_active = zpks.iter().any(|key| {
            key.state == "ACTIVE" && key.processor.as_deref() == Some(ISSUER_SIM_PROCESSOR)
        });
        if !zpk_active {
            self.generate_active_key(&json!({
                "name": "fleet ZPK", "usage": "zpk", "algorithm": "aes128",
                "processor": ISSUER_SIM_PROCESSOR, "pin_format": 4,
            }))
            .await?;
            created.push("zpk");
        }
        Ok(created)
    }
}

impl AdminClient {
    /// Uploads a kernel `.wasm` with its signed manifest (`X-Release-Manifest`: base64 of the
    /// manifest JSON); returns the release id (a `DRAFT` until the conformance suite ran).
    ///
    /// # Errors
    /// The server's error (`bad_signature`, `release_version_exists`, …); an API key cannot.
    pub async fn upload_kernel(
        &self,
        wasm: &[u8],
        manifest_header: &str,
    ) -> Result<String, AdminError> {
        let AdminCredentials::Password { .. } = &self.credentials else {
            return Err(AdminError::bad_response(
                "kernel uploads need an admin login",
            ));
        };
        let token = match self.access_token.read().await.clone() {
            Some(token) => token,
            None => self.login().await?,
        };
        // A fresh connection: a refused upload is answered before its body is read.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|error| AdminError::transport(&error))?;
        let res = http
            .post(format!("{}/api/v1/kernels", self.base))
            .bearer_auth(token)
            .header("content-type", "application/wasm")
            .header("x-release-manifest", manifest_header)
            .body(wasm.to_vec())
            .send()
            .await
            .map_err(|error| AdminError::transport(&error))?;
        string_field(&read(res).await?, "id")
    }

    /// A kernel release (`status`: `DRAFT`, `READY`, `REJECTED`, `PUBLISHED`, …).
    ///
    /// # Errors
    /// The server's error.
    pub async fn kernel_release(&self, id: &str) -> Result<Value, AdminError> {
        self.call(Method::GET, &format!("/api/v1/kernels/{id}"), None)
            .await
    }

    /// Waits (polling every 250 ms, at most `timeout`) until the conformance verdict of a
    /// release is in; returns its status.
    ///
    /// # Errors
    /// The server's error, or `timeout`.
    pub async fn wait_kernel_verdict(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<String, AdminError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let release = self.kernel_release(id).await?;
            let status = string_field(&release, "status")?;
            if status != "DRAFT" {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdminError {
                    code: "timeout".to_owned(),
                    status: 0,
                    message: "the conformance verdict did not come in time".to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Adds `terminal_version` × `abi_version` to the compatibility table (admins only), so
    /// devices reporting that terminal version are offered kernels of that ABI.
    ///
    /// # Errors
    /// The server's error.
    pub async fn allow_kernel_abi(
        &self,
        terminal_version: &str,
        abi_version: u32,
    ) -> Result<(), AdminError> {
        let table = self
            .call(Method::GET, "/api/v1/kernel-compatibility", None)
            .await?;
        let mut entries = table["entries"].as_array().cloned().unwrap_or_default();
        let entry = json!({ "terminal_version": terminal_version, "abi_version": abi_version });
        if !entries.contains(&entry) {
            entries.push(entry);
        }
        self.call(
            Method::POST,
            "/api/v1/kernel-compatibility",
            Some(&json!({ "entries": entries })),
        )
        .await
        .map(drop)
    }

    /// Publishes a `READY` release to `channel` for `rollout_percent` of the devices.
    ///
    /// # Errors
    /// The server's error (`release_not_publishable`, …).
    pub async fn publish_kernel(
        &self,
        id: &str,
        channel: &str,
        rollout_percent: u8,
    ) -> Result<(), AdminError> {
        let body = json!({ "channel": channel, "rollout_percent": rollout_percent });
        self.call(
            Method::POST,
            &format!("/api/v1/kernels/{id}/publish"),
            Some(&body),
        )
        .await
        .map(drop)
    }
}

fn string_field(value: &Value, field: &str) -> Result<String, AdminError> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AdminError::bad_response(&format!("answer without {field}")))
}

/// Reads a JSON answer; a non-2xx status becomes the server's `{code, message}`.
async fn read(res: reqwest::Response) -> Result<Value, AdminError> {
    let status = res.status();
    let bytes = res
        .bytes()
        .await
        .map_err(|error| AdminError::transport(&error))?;
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).map_err(|_| AdminError {
            code: "bad_response".to_owned(),
            status: status.as_u16(),
            message: format!("HTTP {status} with a body that is not JSON"),
        })?
    };
    if status.is_success() {
        return Ok(value);
    }
    Err(AdminError {
        code: value["code"].as_str().unwrap_or("http_error").to_owned(),
        status: status.as_u16(),
        message: value["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned),
    })
}
