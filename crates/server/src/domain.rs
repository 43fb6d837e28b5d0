//! Domain types: what the services reason about. No HTTP and no SQL shapes here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Milliseconds since the Unix epoch, UTC. Stored as BIGINT in both databases.
pub type UnixMillis = i64;

/// Current time in Unix milliseconds.
pub fn now_millis() -> UnixMillis {
    chrono::Utc::now().timestamp_millis()
}

/// Renders Unix milliseconds as an RFC 3339 UTC timestamp for the wire.
pub fn to_rfc3339(millis: UnixMillis) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_newtype!(
    /// A user's id.
    UserId
);
id_newtype!(
    /// A login session's id (also the refresh-token family id).
    SessionId
);
id_newtype!(
    /// An API key's id.
    ApiKeyId
);
id_newtype!(
    /// A merchant's id.
    MerchantId
);

/// A person's role. Each user has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users, keys, configuration; can do everything operators can.
    Admin,
    /// Watches device health and threats, handles incidents, runs key ceremonies.
    SecurityOfficer,
    /// Approves devices, manages merchants, looks up transactions.
    Operator,
    /// Reads the audit trail and exports; changes nothing.
    Auditor,
}

impl Role {
    /// Every role, for matrices and validation.
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::SecurityOfficer,
        Role::Operator,
        Role::Auditor,
    ];

    /// The stable name stored in the database and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::SecurityOfficer => "security_officer",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(())
    }
}

/// A scope an API key may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// Read merchants.
    #[serde(rename = "merchants:read")]
    MerchantsRead,
    /// Create and update merchants.
    #[serde(rename = "merchants:write")]
    MerchantsWrite,
    /// Read and verify the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read transactions, their statistics, exports and PIN-pad logs.
    #[serde(rename = "transactions:read")]
    TransactionsRead,
    /// Refund, void and reverse transactions.
    #[serde(rename = "transactions:refund")]
    TransactionsRefund,
    /// Read devices and their security record: state, health reports, threat events, key
    /// sets (what an integration or a fleet operator watches).
    #[serde(rename = "devices:read")]
    DevicesRead,
    /// Approve or reject device registrations (REGISTERED → APPROVED / REVOKED); suspending,
    /// resuming and revoking stay with people.
    #[serde(rename = "devices:approve")]
    DevicesApprove,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 7] = [
        Scope::MerchantsRead,
        Scope::MerchantsWrite,
        Scope::AuditRead,
        Scope::TransactionsRead,
        Scope::TransactionsRefund,
        Scope::DevicesRead,
        Scope::DevicesApprove,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::MerchantsRead => "merchants:read",
            Scope::MerchantsWrite => "merchants:write",
            Scope::AuditRead => "audit:read",
            Scope::TransactionsRead => "transactions:read",
            Scope::TransactionsRefund => "transactions:refund",
            Scope::DevicesRead => "devices:read",
            Scope::DevicesApprove => "devices:approve",
        }
    }
}

impl FromStr for Scope {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or(())
    }
}

/// A person who can log in.
#[derive(Debug, Clone)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique login name.
    pub username: String,
    /// PHC string (`$argon2id$…`). Never leaves the service layer.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// When the account was disabled, if it was.
    pub disabled_at: Option<UnixMillis>,
    /// Creation time.
    pub created_at: UnixMillis,
}

/// A login session (one refresh-token family).
#[derive(Debug, Clone)]
pub struct Session {
    /// Id (family id).
    pub id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last refresh.
    pub last_used_at: UnixMillis,
    /// Absolute expiry.
    pub expires_at: UnixMillis,
    /// Revocation time, if revoked.
    pub revoked_at: Option<UnixMillis>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
    /// Client address at login.
    pub client_addr: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
}

/// An API key as stored (without its secret).
#[derive(Debug, Clone)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Human label.
    pub name: String,
    /// Public lookup prefix (part of the key).
    pub prefix: String,
    /// SHA-256 of the full key, hex.
    pub key_hash: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Creator.
    pub created_by: UserId,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last successful use.
    pub last_used_at: Option<UnixMillis>,
    /// Revocation time.
    pub revoked_at: Option<UnixMillis>,
}

/// A merchant status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MerchantStatus {
    /// Trading.
    Active,
    /// Temporarily not allowed to trade.
    Suspended,
    /// Closed for good.
    Closed,
}

impl MerchantStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended => "suspended",
            MerchantStatus::Closed => "closed",
        }
    }
}

impl FromStr for MerchantStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "closed" => Ok(Self::Closed),
            _ => Err(()),
        }
    }
}

/// A merchant (devices belong to one).
#[derive(Debug, Clone)]
pub struct Merchant {
    /// Id.
    pub id: MerchantId,
    /// Trading name, unique.
    pub name: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// ISO 18245 merchant category code, 4 digits.
    pub mcc: String,
    /// Status.
    pub status: MerchantStatus,
    /// Creation time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// One audit-log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Time of the action.
    pub occurred_at: UnixMillis,
    /// Who: `user:<id>`, `api_key:<id>`, `system`, or `anonymous`.
    pub actor: String,
    /// What, e.g. `auth.login`.
    pub action: String,
    /// On what, e.g. `user:<id>`.
    pub target: Option<String>,
    /// Why (free text given by the actor, or the outcome).
    pub reason: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// Hash of the previous record (hex), 64 zeros for the first.
    pub prev_hash: String,
    /// SHA-256 over the canonical encoding of this record, hex.
    pub hash: String,
}

/// What a caller supplies to append an audit record.
#[derive(Debug, Clone)]
pub struct NewAuditRecord {
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A logged-in person.
    User {
        /// User id.
        id: UserId,
        /// Username.
        username: String,
        /// Role.
        role: Role,
        /// The session the access token belongs to.
        session_id: SessionId,
    },
    /// An integration using an API key.
    ApiKey {
        /// Key id.
        id: ApiKeyId,
        /// Granted scopes.
        scopes: Vec<Scope>,
    },
    /// The server itself, acting on a rule (threat response, rollout, expiry). Never comes
    /// from a request; `component` names the service that acted, e.g. `threat_response`.
    System {
        /// The acting component.
        component: &'static str,
    },
}

impl Principal {
    /// The audit `actor` string.
    pub fn actor(&self) -> String {
        match self {
            Principal::User { id, .. } => format!("user:{id}"),
            Principal::ApiKey { id, .. } => format!("api_key:{id}"),
            Principal::System { component } => format!("system:{component}"),
        }
    }
}

id_newtype!(
    /// A device's id.
    DeviceId
);

/// A device's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeviceState {
    /// Registered, waiting for an operator.
    Registered,
    /// Approved, waiting for key injection and a passing health check.
    Approved,
    /// May transact.
    Active,
    /// Temporarily blocked.
    Suspended,
    /// Final; keys destroyed.
    Revoked,
}

impl DeviceState {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::Approved => "APPROVED",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Revoked => "REVOKED",
        }
    }

    /// Every state.
    pub const ALL: [DeviceState; 5] = [
        Self::Registered,
        Self::Approved,
        Self::Active,
        Self::Suspended,
        Self::Revoked,
    ];
}

impl FromStr for DeviceState {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or(())
    }
}

/// A lifecycle action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAction {
    /// REGISTERED → APPROVED.
    Approve,
    /// REGISTERED → REVOKED (refused at onboarding).
    Reject,
    /// APPROVED → ACTIVE (after key injection; service only for now).
    Activate,
    /// ACTIVE → SUSPENDED.
    Suspend,
    /// SUSPENDED → ACTIVE.
    Resume,
    /// any but REVOKED → REVOKED.
    Revoke,
}

impl DeviceAction {
    /// Every action.
    pub const ALL: [DeviceAction; 6] = [
        Self::Approve,
        Self::Reject,
        Self::Activate,
        Self::Suspend,
        Self::Resume,
        Self::Revoke,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Activate => "activate",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Revoke => "revoke",
        }
    }

    /// The state this action leads to from `from`, or `None` when the transition is not
    /// allowed. This table is the whole lifecycle.
    pub fn next_state(self, from: DeviceState) -> Option<DeviceState> {
        use DeviceState as S;
        match (self, from) {
            (Self::Approve, S::Registered) => Some(S::Approved),
            (Self::Reject, S::Registered) => Some(S::Revoked),
            (Self::Activate, S::Approved) => Some(S::Active),
            (Self::Suspend, S::Active) => Some(S::Suspended),
            (Self::Resume, S::Suspended) => Some(S::Active),
            (Self::Revoke, S::Registered | S::Approved | S::Active | S::Suspended) => {
                Some(S::Revoked)
            }
            _ => None,
        }
    }
}

/// How the terminal is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceMode {
    /// Phone with PIN on glass.
    Softpos,
    /// PIN pad.
    Pinpad,
}

impl DeviceMode {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Softpos => "softpos",
            Self::Pinpad => "pinpad",
        }
    }
}

impl FromStr for DeviceMode {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "softpos" => Ok(Self::Softpos),
            "pinpad" => Ok(Self::Pinpad),
            _ => Err(()),
        }
    }
}

/// Facts a device reports about itself at registration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceFacts {
    /// Manufacturer and model.
    pub model: String,
    /// OS version, e.g. `14`.
    pub os_version: String,
    /// Security patch level, `YYYY-MM-DD`.
    pub security_patch: String,
    /// App package name.
    pub app_package: String,
    /// App version.
    pub app_version: String,
    /// SHA-256 of the app signing certificate, hex.
    pub app_signing_digest: String,
    /// Trusted execution environment present.
    pub tee: bool,
    /// StrongBox present.
    pub strongbox: bool,
    /// NFC present.
    pub nfc: bool,
    /// IMEI, if the platform exposes it (informational, never identity).
    #[serde(default)]
    pub imei: Option<String>,
    /// Serial number (informational, never identity).
    #[serde(default)]
    pub serial: Option<String>,
}

/// A registered device.
#[derive(Debug, Clone)]
pub struct Device {
    /// Id.
    pub id: DeviceId,
    /// Owning merchant.
    pub merchant_id: MerchantId,
    /// P-256 public key, SEC1 uncompressed (65 bytes).
    pub public_key: Vec<u8>,
    /// SHA-256 of `public_key`, hex: the device's identity.
    pub key_fingerprint: String,
    /// Mode.
    pub mode: DeviceMode,
    /// Lifecycle state.
    pub state: DeviceState,
    /// Reported facts.
    pub facts: DeviceFacts,
    /// Attestation format used (`software`, later `android_key`).
    pub attestation_format: String,
    /// Verification reasons, stored with the device.
    pub attestation_notes: Vec<String>,
    /// Registration time.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// One entry of a device's state history.
#[derive(Debug, Clone)]
pub struct DeviceStateChange {
    /// Previous state (`None` at registration).
    pub from_state: Option<DeviceState>,
    /// New state.
    pub to_state: DeviceState,
    /// Action name.
    pub action: String,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub at: UnixMillis,
}

/// Device statistics, computed from the stored devices.
#[derive(Debug, Clone, Default)]
pub struct DeviceStats {
    /// All devices.
    pub total: i64,
    /// Count per state.
    pub by_state: Vec<(DeviceState, i64)>,
    /// Count per model, largest first (top 20).
    pub by_model: Vec<(String, i64)>,
    /// Count per merchant, largest first (top 20).
    pub by_merchant: Vec<(MerchantId, i64)>,
    /// Registrations per UTC day (days since the epoch), oldest first.
    pub registrations_per_day: Vec<(i64, i64)>,
}
