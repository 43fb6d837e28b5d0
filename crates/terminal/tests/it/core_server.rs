//! A real `softpos-server` for the terminal core's integration tests, and the admin side of
//! onboarding (merchant, BDK, zone PIN key of the simulated issuer, approval).
//!
//! The process is the fleet's [`LocalServer`] (SQLite in its own data folder), started by
//! [`crate::local_server`], which finds or builds the binary.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use terminal::client::{Client, DeviceFacts};
use terminal::fleet::server::{LOCAL_ADMIN_PASSWORD, LocalServer};
use terminal::health::{AppFacts, HealthCollector};
use terminal::store::{DeviceConfig, SecureStore};
use uuid::Uuid;

/// A running server on a free loopback port with a temporary SQLite database.
pub(crate) struct TestServer {
    pub(crate) base: String,
    http: reqwest::Client,
    _server: LocalServer,
}

impl TestServer {
    pub(crate) fn start() -> Self {
        let server = crate::local_server(&[]);
        Self {
            base: server.base.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            _server: server,
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
                json!({ "username": "admin", "password": LOCAL_ADMIN_PASSWORD }),
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
