//! The server's device-facing JSON, as the terminal reads and writes it. Answers are parsed
//! leniently (unknown fields ignored) so a newer server does not break an older terminal;
//! requests carry exactly the fields the server accepts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dukpt::DukptScheme;

/// Device facts sent at registration (the server's `DeviceFacts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// Manufacturer and model.
    pub model: String,
    /// OS version.
    pub os_version: String,
    /// Security patch level, `YYYY-MM-DD`.
    pub security_patch: String,
    /// App package name.
    pub app_package: String,
    /// App version.
    pub app_version: String,
    /// App signing digest, hex.
    pub app_signing_digest: String,
    /// TEE present.
    pub tee: bool,
    /// StrongBox present.
    pub strongbox: bool,
    /// NFC present.
    pub nfc: bool,
    /// IMEI (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    /// Serial number (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

impl DeviceFacts {
    /// Facts of a desktop terminal built from `app` facts.
    #[must_use]
    pub fn desktop(app: &crate::health::AppFacts) -> Self {
        Self {
            model: "SUNBAY Desktop Terminal".to_owned(),
            os_version: app.os_version.clone(),
            security_patch: (Utc::now() - chrono::Duration::days(app.patch_age_days))
                .format("%Y-%m-%d")
                .to_string(),
            app_package: "com.sunbay.softpos".to_owned(),
            app_version: app.app_version.clone(),
            app_signing_digest: app.app_signing_digest.clone(),
            tee: false,
            strongbox: false,
            nfc: true,
            imei: None,
            serial: None,
        }
    }
}

/// A device's lifecycle state (the server's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeviceState {
    /// Waiting for an operator.
    Registered,
    /// Approved; waiting for keys and a passing health check.
    Approved,
    /// May transact.
    Active,
    /// Blocked for now.
    Suspended,
    /// Final.
    Revoked,
}

impl DeviceState {
    /// Stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::Approved => "APPROVED",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Revoked => "REVOKED",
        }
    }
}

/// The registered device.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DeviceInfo {
    /// Id.
    pub id: Uuid,
    /// Merchant.
    pub merchant_id: Uuid,
    /// State.
    pub state: DeviceState,
    /// SHA-256 of the public key, hex.
    pub key_fingerprint: String,
}

/// `POST /api/v1/device/self`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DeviceSelf {
    /// Id.
    pub device_id: Uuid,
    /// State.
    pub state: DeviceState,
    /// Server time.
    pub server_time: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChallengeResponse {
    pub(crate) challenge: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyInjectionResponse {
    pub(crate) key_set_id: Uuid,
    pub(crate) version: i64,
    pub(crate) scheme: DukptScheme,
    pub(crate) server_public_key: String,
    pub(crate) key_block: String,
    pub(crate) kcv: String,
    pub(crate) initial_key_id: String,
}

/// Where activation stands after a key confirmation or an activation attempt.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Activation {
    /// The active key set.
    pub key_set_id: Uuid,
    /// Its state.
    pub key_set_state: String,
    /// The device's state.
    pub device_state: DeviceState,
    /// Why the device is not `ACTIVE` yet (`no_health_check`, ...).
    pub pending: Option<String>,
}

/// `POST /api/v1/device/keys/status`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KeyStatus {
    /// Active key set.
    pub key_set_id: Uuid,
    /// Version.
    pub version: i64,
    /// Scheme.
    pub scheme: DukptScheme,
    /// The server asks for a new key set now.
    pub rotation_due: bool,
    /// Rotate once the counter passes this.
    pub rotate_after: i64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HealthNonce {
    pub(crate) nonce: String,
}

/// The server's verdict on a health report.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct HealthVerdict {
    /// Report id.
    pub id: Uuid,
    /// 0-100.
    pub score: u8,
    /// Passed the policy.
    pub passed: bool,
    /// Failed checks.
    pub failed_checks: Vec<String>,
    /// Failed critical checks.
    #[serde(default)]
    pub critical_failures: Vec<String>,
    /// Threat events raised.
    #[serde(default)]
    pub threats_raised: usize,
    /// Device clock minus server clock, ms.
    pub clock_skew_ms: i64,
    /// Amount ceiling at this score.
    pub amount_ceiling_minor: Option<u64>,
}

/// A Transaction Token issued to this device.
#[derive(Clone, Deserialize, Serialize)]
pub struct IssuedToken {
    /// The compact JWS.
    pub token: String,
    /// Token id.
    pub token_id: Uuid,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The signed claims.
    #[serde(default)]
    pub claims: serde_json::Value,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token_id", &self.token_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A location for the location-jump rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
}

/// A sale as the server takes it (binary fields hex).
#[derive(Clone, Serialize)]
pub struct SaleBody {
    /// Transaction Token.
    pub token: String,
    /// Amount, minor units.
    pub amount_minor: u64,
    /// ISO 4217 alpha.
    pub currency: String,
    /// DE 55 without cardholder data.
    pub emv_data: String,
    /// Encrypted card data.
    pub card_data: String,
    /// CBC IV of the card data (absent: zeros).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_data_iv: Option<String>,
    /// Encrypted PIN block.
    pub pin_block: Option<String>,
    /// KSN.
    pub ksn: String,
    /// Location.
    pub location: Option<GeoPoint>,
}

impl std::fmt::Debug for SaleBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaleBody")
            .field("amount_minor", &self.amount_minor)
            .field("currency", &self.currency)
            .field("ksn", &self.ksn)
            .field("pin_block", &self.pin_block.is_some())
            .finish_non_exhaustive()
    }
}

/// A transaction as the server shows it (PAN masked).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TransactionView {
    /// Id.
    pub id: Uuid,
    /// Device.
    pub device_id: Uuid,
    /// `APPROVED`, `DECLINED`, `FAILED`, `REFUNDED`, ...
    pub state: String,
    /// The issuer approved it.
    pub approved: bool,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Currency.
    pub currency: String,
    /// Refunded so far.
    #[serde(default)]
    pub refunded_minor: i64,
    /// Card scheme.
    #[serde(default)]
    pub scheme: String,
    /// PAN, first six and last four.
    #[serde(default)]
    pub pan_masked: String,
    /// An online PIN was sent.
    #[serde(default)]
    pub online_pin: bool,
    /// KSN, hex.
    #[serde(default)]
    pub ksn: String,
    /// ISO 8583 response code.
    pub response_code: Option<String>,
    /// Authorisation code.
    pub authorisation_code: Option<String>,
    /// Decline reason code.
    pub decline_reason: Option<String>,
    /// ARPC, hex.
    pub arpc: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A page of the device's transactions, newest first.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TransactionPage {
    /// The transactions.
    #[serde(alias = "transactions")]
    pub items: Vec<TransactionView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// A kernel release offered to this device (`GET /api/v1/device/kernel`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KernelOffer {
    /// Release id.
    pub release_id: Uuid,
    /// Version.
    pub version: String,
    /// ABI version.
    pub abi_version: Option<u32>,
    /// SHA-256 of the `.wasm`, hex.
    pub sha256: String,
    /// Size.
    pub size: u64,
    /// Signed manifest.
    pub signed_manifest: release_manifest::SignedManifest,
    /// Download path.
    pub download_url: String,
}

/// An update task delivered at check-in.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CheckIn {
    /// Server time.
    pub server_time: DateTime<Utc>,
    /// Open tasks, as the server sent them.
    pub tasks: Vec<serde_json::Value>,
}
