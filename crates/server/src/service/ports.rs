//! Ports between services: the traits one service calls and another implements.
//!
//! Health, threats, tokens, keys and payments depend on each other's answers (a token needs
//! a fresh passing health check and no blocking threat; a payment consumes a token and
//! derives DUKPT keys; a replayed KSN raises a threat). Each of those services depends on
//! these traits rather than on the others' concrete types, so each can be built and tested
//! alone, and `build_state` wires the implementations together. Each trait names its
//! implementation and its callers.

use std::fmt;

use async_trait::async_trait;
use payment_crypto::SecretKey;
use payment_crypto::pinblock::PinBlockFormat;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::RequestContext;
use crate::domain::{Device, DeviceId, DeviceState, UnixMillis};
use crate::error::AppResult;

/// Live-event kind published on the `EventBus` when a threat event is recorded.
pub const EVENT_THREAT_RECORDED: &str = "threat.recorded";
/// Live-event kind published when a threat event changes state (acknowledged, resolved).
pub const EVENT_THREAT_UPDATED: &str = "threat.updated";
/// Live-event kind published on every device lifecycle transition.
pub const EVENT_DEVICE_STATE_CHANGED: &str = "device.state_changed";

/// What kind of threat a signal is. Health-check failures are one kind per critical check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThreatKind {
    /// Root / jailbreak indicators in a health report.
    Rooted,
    /// Frida, Xposed/LSPosed, Substrate or another hook framework.
    HookFramework,
    /// Debugger attached or debuggable build.
    Debugger,
    /// Running on an emulator.
    Emulator,
    /// App signing digest or version not on the allow-list (tampered or outdated app).
    AppIntegrity,
    /// OS or security patch too old.
    OsOutdated,
    /// Developer options, ADB, overlays or screen capture.
    UnsafeDeviceSettings,
    /// A health report that is unsigned, stale, replayed or for another device.
    InvalidHealthReport,
    /// No health report within the policy's heartbeat interval.
    MissedHeartbeat,
    /// A KSN equal to one already used.
    KsnReplay,
    /// A KSN lower than the device's last.
    KsnRollback,
    /// A Transaction Token presented a second time.
    TokenReuse,
    /// A Transaction Token with a bad signature, other device's id, or altered claims.
    TokenForgery,
    /// A device request whose signature does not verify.
    BadSignature,
    /// Consecutive declines beyond the policy's streak.
    DeclineStreak,
    /// Transactions per device per window above the policy's limit.
    Velocity,
    /// Two locations further apart than travel in the elapsed time allows.
    LocationJump,
    /// Device clock skew beyond the policy's limit.
    ClockSkew,
    /// Repeated attestation failures.
    AttestationFailure,
}

/// How serious a threat is; the response policy maps (kind, severity) to actions.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth recording.
    Low,
    /// Worth an alert.
    Medium,
    /// Blocks transactions or suspends, by policy.
    High,
    /// Suspends or revokes, by policy.
    Critical,
}

/// A threat the server observed or a signed device report revealed.
#[derive(Debug, Clone)]
pub struct ThreatSignal {
    /// The device concerned.
    pub device_id: DeviceId,
    /// Kind.
    pub kind: ThreatKind,
    /// Severity as the reporting rule judged it.
    pub severity: Severity,
    /// Evidence: what was seen (never PAN, PIN or key bytes).
    pub evidence: serde_json::Value,
    /// When it was observed.
    pub observed_at: UnixMillis,
}

/// An open threat event that blocks transactions for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingThreat {
    /// The threat event.
    pub threat_id: Uuid,
    /// Its kind.
    pub kind: ThreatKind,
    /// Its severity.
    pub severity: Severity,
}

/// A point on Earth reported with a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GeoPoint {
    /// Degrees, -90..=90.
    pub latitude: f64,
    /// Degrees, -180..=180.
    pub longitude: f64,
    /// Metres, if known.
    pub accuracy_m: Option<f64>,
}

/// A finished authorisation, fed to the behaviour rules.
#[derive(Debug, Clone)]
pub struct TransactionObservation {
    /// Device.
    pub device_id: DeviceId,
    /// The transaction.
    pub transaction_id: Uuid,
    /// When it was decided.
    pub at: UnixMillis,
    /// Approved (`true`) or declined.
    pub approved: bool,
    /// Amount in minor units.
    pub amount_minor: u64,
    /// ISO 4217 alpha code.
    pub currency: String,
    /// Where, if the device said.
    pub location: Option<GeoPoint>,
}

/// Records threats and answers whether one blocks a device.
///
/// Implemented by `service::threats::ThreatService`; called by health (critical checks,
/// invalid reports), devices (bad signatures, attestation failures), tokens (reuse,
/// forgery) and payments (KSN replay/rollback, and every finished transaction).
#[async_trait]
pub trait ThreatReporter: Send + Sync + fmt::Debug {
    /// Records the signal as a threat event and applies the response policy (which may
    /// block transactions, suspend or revoke the device, each action audited).
    async fn report(&self, signal: ThreatSignal, ctx: &RequestContext) -> AppResult<()>;

    /// The open threat event that blocks transactions for `device`, if any.
    async fn blocking_threat(&self, device: DeviceId) -> AppResult<Option<BlockingThreat>>;

    /// Runs the behaviour rules (decline streaks, velocity, location jumps) over a finished
    /// transaction and reports what they find.
    async fn observe_transaction(
        &self,
        observation: TransactionObservation,
        ctx: &RequestContext,
    ) -> AppResult<()>;
}

/// A device's latest health verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthVerdict {
    /// The stored health report.
    pub report_id: Uuid,
    /// Device.
    pub device_id: DeviceId,
    /// Score 0-100 under `policy_version`.
    pub score: u8,
    /// Whether the score and critical checks pass the policy.
    pub passed: bool,
    /// Names of the failed checks.
    pub failed_checks: Vec<String>,
    /// The health policy version that scored it.
    pub policy_version: i64,
    /// When the server received it.
    pub received_at: UnixMillis,
    /// Largest transaction amount (minor units) the policy allows at this score, if capped.
    pub amount_ceiling_minor: Option<u64>,
}

/// Why a device has no fresh passing health verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthRefusal {
    /// The device never sent a valid report.
    NoHealthCheck,
    /// The latest report failed the policy.
    HealthCheckFailed,
    /// The latest report is older than the policy's maximum age.
    HealthCheckStale,
}

impl HealthRefusal {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoHealthCheck => "no_health_check",
            Self::HealthCheckFailed => "health_check_failed",
            Self::HealthCheckStale => "health_check_stale",
        }
    }
}

/// Answers whether a device has a fresh passing health check.
///
/// Implemented by `service::health::HealthService`; called by tokens (issuance), keys
/// (activation after key injection) and devices (resume from `SUSPENDED`).
#[async_trait]
pub trait HealthGate: Send + Sync + fmt::Debug {
    /// The latest verdict when it passed and is younger than the policy's maximum age,
    /// otherwise the reason it does not count.
    async fn fresh_passing_verdict(
        &self,
        device: DeviceId,
    ) -> AppResult<Result<HealthVerdict, HealthRefusal>>;
}

/// The verified claims of a consumed Transaction Token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// Token id (`jti`).
    pub token_id: Uuid,
    /// Device (`sub`).
    pub device_id: DeviceId,
    /// Issued at.
    pub issued_at: UnixMillis,
    /// Expires at.
    pub expires_at: UnixMillis,
    /// Health report the token was issued on.
    pub health_report_id: Uuid,
    /// Its score.
    pub health_score: u8,
    /// Device state at issue.
    pub device_state: DeviceState,
    /// The device's active key set at issue.
    pub key_set_id: Option<Uuid>,
    /// Largest amount the token allows (minor units), if capped.
    pub amount_ceiling_minor: Option<u64>,
}

/// Consumes Transaction Tokens.
///
/// Implemented by `service::tokens::TokenService`; called by payments.
#[async_trait]
pub trait TokenConsumer: Send + Sync + fmt::Debug {
    /// Verifies `token` for `device` (as the request's authentication read it) and consumes
    /// it in one atomic step, valid across instances. A second use is refused (`token_reused`) and reported as
    /// [`ThreatKind::TokenReuse`]; expired, forged and other-device tokens have their own
    /// codes.
    async fn consume(
        &self,
        token: &str,
        device: &Device,
        ctx: &RequestContext,
    ) -> AppResult<TokenClaims>;

    /// The id (`jti`) of a token this server signed, checked but not consumed: how a sale
    /// retried after its worker died finds what that worker recorded.
    async fn token_id(&self, token: &str) -> AppResult<Uuid>;
}

/// Which DUKPT variant a key set uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DukptScheme {
    /// ANSI X9.24-3 AES DUKPT, AES-128 working keys (the default).
    Aes128,
    /// ANSI X9.24-1 TDES DUKPT (double-length keys).
    Tdes,
}

/// A device's key set: one initial DUKPT key injected under one BDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySetInfo {
    /// Key set id.
    pub id: Uuid,
    /// Device.
    pub device_id: DeviceId,
    /// 1 for the first key set of a device, then +1 per rotation.
    pub version: u32,
    /// DUKPT variant.
    pub scheme: DukptScheme,
    /// AES: the 8-byte initial key id (BDK id ‖ derivation id); TDES: the initial KSN with
    /// the counter bits zero (10 bytes).
    pub initial_key_id: Vec<u8>,
    /// The BDK the initial key was derived from.
    pub bdk_id: Uuid,
}

/// Host-side DUKPT for one key set: the BDK unwrapped in memory (zeroized on drop).
pub enum DukptHost {
    /// AES DUKPT (boxed: the key schedule is large).
    Aes(Box<payment_crypto::dukpt::aes::HostBdk>),
    /// TDES DUKPT (boxed like the AES schedule).
    Tdes(Box<payment_crypto::dukpt::tdes::BaseDerivationKey>),
}

impl fmt::Debug for DukptHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Aes(_) => f.write_str("DukptHost::Aes(<redacted>)"),
            Self::Tdes(_) => f.write_str("DukptHost::Tdes(<redacted>)"),
        }
    }
}

/// A processor connection's zone PIN key (ZPK), unwrapped in memory.
#[derive(Debug)]
pub struct ZonePinKey {
    /// Key id in the key store.
    pub key_id: Uuid,
    /// The key (redacted in `Debug`, zeroized on drop).
    pub key: SecretKey,
    /// The PIN block format the processor expects under this key (0 or 4).
    pub format: PinBlockFormat,
}

/// Key material the payment pipeline needs.
///
/// Implemented by `service::keys::KeyService`; called by tokens (the key set claim) and
/// payments (DUKPT derivation, PIN translation).
#[async_trait]
pub trait DeviceKeys: Send + Sync + fmt::Debug {
    /// The device's active key set, if keys were injected and confirmed.
    async fn active_key_set(&self, device: DeviceId) -> AppResult<Option<KeySetInfo>>;

    /// Host DUKPT derivation for a key set just read by [`Self::active_key_set`] (its state
    /// is not read again).
    async fn dukpt_host(&self, key_set: &KeySetInfo) -> AppResult<DukptHost>;

    /// The active zone PIN key of a processor connection.
    async fn zone_pin_key(&self, processor: &str) -> AppResult<ZonePinKey>;
}
