//! The versioned security policy: how health reports are scored, which threat rules run
//! with which limits, and which response each (kind, severity) gets. Pure data and its
//! validation; storage lives in `repository::health`.
//!
//! One document covers health and threats so that a single version number explains every
//! score, every threat and every automatic action recorded under it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;
use crate::service::ports::{Severity, ThreatKind};

/// Every health check, by its stable name.
pub const CHECKS: &[&str] = &[
    "root",
    "hook_framework",
    "debugger",
    "emulator",
    "app_signature",
    "app_outdated",
    "attestation_stale",
    "os_outdated",
    "patch_outdated",
    "developer_options",
    "adb",
    "overlay",
    "screen_capture",
    "clock_skew",
    "nfc_unavailable",
];

/// The threat kind a failed check raises.
pub fn check_threat_kind(check: &str) -> ThreatKind {
    match check {
        "root" => ThreatKind::Rooted,
        "hook_framework" => ThreatKind::HookFramework,
        "debugger" => ThreatKind::Debugger,
        "emulator" => ThreatKind::Emulator,
        "app_signature" | "app_outdated" => ThreatKind::AppIntegrity,
        "attestation_stale" => ThreatKind::AttestationFailure,
        "os_outdated" | "patch_outdated" => ThreatKind::OsOutdated,
        "clock_skew" => ThreatKind::ClockSkew,
        _ => ThreatKind::UnsafeDeviceSettings,
    }
}

/// How one check counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRule {
    /// Points taken off the score of 100 when the check fails (0-100).
    pub weight: u8,
    /// A failed critical check fails the report whatever the score.
    pub critical: bool,
    /// Raise a threat event of this severity when the check fails; `null`: no event.
    pub threat: Option<Severity>,
}

/// Transaction amount ceiling from a score upwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmountCeiling {
    /// Applies to scores at or above this.
    pub min_score: u8,
    /// Largest amount in minor units; `null`: no ceiling.
    pub ceiling_minor: Option<u64>,
}

/// Consecutive declines on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineStreakRule {
    /// Rule on.
    pub enabled: bool,
    /// A threat is raised at this many consecutive declines (and each further multiple).
    pub max_consecutive: u32,
    /// Severity of the event.
    pub severity: Severity,
}

/// Transactions per device per sliding window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VelocityRule {
    /// Rule on.
    pub enabled: bool,
    /// More than this many transactions within the window raises a threat.
    pub max_transactions: u32,
    /// Window length in seconds.
    pub window_secs: u64,
    /// Severity of the event.
    pub severity: Severity,
}

/// Two transaction locations further apart than travel allows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationJumpRule {
    /// Rule on.
    pub enabled: bool,
    /// Fastest plausible travel, km/h.
    pub max_speed_kmh: f64,
    /// Jumps shorter than this (km) are ignored (GPS noise).
    pub min_distance_km: f64,
    /// Severity of the event.
    pub severity: Severity,
}

/// Devices that stop sending health reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MissedHeartbeatRule {
    /// Rule on.
    pub enabled: bool,
    /// Extra time after the heartbeat interval before an active device counts as overdue.
    pub grace_secs: u64,
    /// Severity of the event.
    pub severity: Severity,
}

/// Attestation failures reported for one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationFailureRule {
    /// Rule on.
    pub enabled: bool,
    /// At this many failures within the window the event is raised to `severity`.
    pub max_failures: u32,
    /// Window length in seconds.
    pub window_secs: u64,
    /// Severity once repeated.
    pub severity: Severity,
}

/// The threat detection rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreatRules {
    /// Decline streaks.
    pub decline_streak: DeclineStreakRule,
    /// Velocity.
    pub velocity: VelocityRule,
    /// Impossible location jumps.
    pub location_jump: LocationJumpRule,
    /// Missed heartbeats.
    pub missed_heartbeat: MissedHeartbeatRule,
    /// Repeated attestation failures.
    pub attestation_failures: AttestationFailureRule,
    /// Severity of an unsigned-nonce, stale, replayed or cross-device health report.
    pub invalid_health_report_severity: Severity,
}

/// What the server does about a threat event.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ResponseAction {
    /// Store the event only.
    Record,
    /// Store and alert the console (live event, metric).
    Alert,
    /// While the event is open the device gets no Transaction Token.
    BlockTransactions,
    /// Suspend the device (and block).
    Suspend,
    /// Revoke the device for good (and block).
    Revoke,
}

impl ResponseAction {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Alert => "alert",
            Self::BlockTransactions => "block_transactions",
            Self::Suspend => "suspend",
            Self::Revoke => "revoke",
        }
    }

    /// Whether an open event with this action blocks transactions.
    pub fn blocks(self) -> bool {
        self >= Self::BlockTransactions
    }
}

impl std::str::FromStr for ResponseAction {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        Ok(match text {
            "record" => Self::Record,
            "alert" => Self::Alert,
            "block_transactions" => Self::BlockTransactions,
            "suspend" => Self::Suspend,
            "revoke" => Self::Revoke,
            _ => return Err(()),
        })
    }
}

/// One line of the response policy. A line with a `kind` wins over one without.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseRule {
    /// Threat kind; `null`: any kind.
    pub kind: Option<ThreatKind>,
    /// Exact severity.
    pub severity: Severity,
    /// Action.
    pub action: ResponseAction,
}

/// The security policy as admins edit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Lowest passing score (0-100).
    pub pass_score: u8,
    /// Per check: weight, critical, threat severity. Every check in `CHECKS`, no others.
    pub checks: BTreeMap<String, CheckRule>,
    /// App signing certificate digests (SHA-256, lowercase hex) the terminal app may have.
    pub allowed_signing_digests: Vec<String>,
    /// Lowest allowed terminal app version (dotted numbers, e.g. `1.0.0`).
    pub min_app_version: String,
    /// Lowest allowed Android major version.
    pub min_os_version: u32,
    /// Largest accepted age of the security patch, days.
    pub max_patch_age_days: u32,
    /// Largest accepted age of the device's last key attestation, days.
    pub max_attestation_age_days: u32,
    /// Largest accepted difference between device and server clocks, seconds.
    pub max_clock_skew_secs: u64,
    /// A passing report counts for tokens and resume this long, seconds.
    pub max_report_age_secs: u64,
    /// Active devices are expected to report at least this often, seconds.
    pub heartbeat_interval_secs: u64,
    /// A health nonce is accepted this long after it was issued, seconds.
    pub nonce_ttl_secs: u64,
    /// Per-score transaction amount ceilings.
    pub amount_ceilings: Vec<AmountCeiling>,
    /// Threat detection rules.
    pub threat_rules: ThreatRules,
    /// Response policy.
    pub responses: Vec<ResponseRule>,
}

fn rule(weight: u8, critical: bool, threat: Option<Severity>) -> CheckRule {
    CheckRule {
        weight,
        critical,
        threat,
    }
}

impl Default for SecurityPolicy {
    /// Version 1, created at first start.
    fn default() -> Self {
        use Severity::{Critical, High, Low, Medium};
        let checks = [
            ("root", rule(60, true, Some(Critical))),
            ("hook_framework", rule(60, true, Some(Critical))),
            ("debugger", rule(40, true, Some(High))),
            ("emulator", rule(40, true, Some(High))),
            ("app_signature", rule(60, true, Some(Critical))),
            ("app_outdated", rule(30, true, Some(Medium))),
            ("attestation_stale", rule(15, false, None)),
            ("os_outdated", rule(15, false, Some(Low))),
            ("patch_outdated", rule(10, false, Some(Low))),
            ("developer_options", rule(5, false, None)),
            ("adb", rule(15, false, Some(Medium))),
            ("overlay", rule(25, true, Some(High))),
            ("screen_capture", rule(20, false, Some(Medium))),
            ("clock_skew", rule(10, false, Some(Low))),
            ("nfc_unavailable", rule(30, true, None)),
        ]
        .into_iter()
        .map(|(name, rule)| (name.to_owned(), rule))
        .collect();
        Self {
            pass_score: 70,
            checks,
            allowed_signing_digests: vec!["ab".repeat(32)],
            min_app_version: "1.0.0".to_owned(),
            min_os_version: 10,
            max_patch_age_days: 180,
            max_attestation_age_days: 90,
            max_clock_skew_secs: 60,
            max_report_age_secs: 900,
            heartbeat_interval_secs: 3600,
            nonce_ttl_secs: 120,
            amount_ceilings: vec![
                AmountCeiling {
                    min_score: 70,
                    ceiling_minor: Some(5_000),
                },
                AmountCeiling {
                    min_score: 90,
                    ceiling_minor: None,
                },
            ],
            threat_rules: ThreatRules {
                decline_streak: DeclineStreakRule {
                    enabled: true,
                    max_consecutive: 5,
                    severity: Medium,
                },
                velocity: VelocityRule {
                    enabled: true,
                    max_transactions: 30,
                    window_secs: 60,
                    severity: High,
                },
                location_jump: LocationJumpRule {
                    enabled: true,
                    max_speed_kmh: 900.0,
                    min_distance_km: 50.0,
                    severity: High,
                },
                missed_heartbeat: MissedHeartbeatRule {
                    enabled: true,
                    grace_secs: 600,
                    severity: Medium,
                },
                attestation_failures: AttestationFailureRule {
                    enabled: true,
                    max_failures: 3,
                    window_secs: 3600,
                    severity: High,
                },
                invalid_health_report_severity: Medium,
            },
            responses: vec![
                ResponseRule {
                    kind: None,
                    severity: Low,
                    action: ResponseAction::Record,
                },
                ResponseRule {
                    kind: None,
                    severity: Medium,
                    action: ResponseAction::Alert,
                },
                ResponseRule {
                    kind: None,
                    severity: High,
                    action: ResponseAction::BlockTransactions,
                },
                ResponseRule {
                    kind: None,
                    severity: Critical,
                    action: ResponseAction::Suspend,
                },
            ],
        }
    }
}

/// `1.2.10` → `[1, 2, 10]`; `None` for anything but dot-separated decimal numbers.
pub fn parse_version(text: &str) -> Option<Vec<u64>> {
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    text.split('.')
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                part.parse().ok()
            }
        })
        .collect()
}

/// Compares dotted versions numerically, missing parts as zero (`1.2` == `1.2.0`).
pub fn version_at_least(version: &[u64], minimum: &[u64]) -> bool {
    let len = version.len().max(minimum.len());
    for idx in 0..len {
        let have = version.get(idx).copied().unwrap_or(0);
        let need = minimum.get(idx).copied().unwrap_or(0);
        if have != need {
            return have > need;
        }
    }
    true
}

impl SecurityPolicy {
    /// Checks every field; all problems at once.
    ///
    /// # Errors
    /// The list of field problems.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut bad = |field: &str, problem: &str| problems.push(FieldError::new(field, problem));
        if self.pass_score > 100 {
            bad("pass_score", "0 to 100");
        }
        for name in CHECKS {
            if !self.checks.contains_key(*name) {
                bad(
                    &format!("checks.{name}"),
                    "missing: every check needs a rule",
                );
            }
        }
        for (name, rule) in &self.checks {
            if !CHECKS.contains(&name.as_str()) {
                bad(&format!("checks.{name}"), "unknown check");
            } else if rule.weight > 100 {
                bad(&format!("checks.{name}.weight"), "0 to 100");
            }
        }
        if self.allowed_signing_digests.is_empty() || self.allowed_signing_digests.len() > 50 {
            bad("allowed_signing_digests", "1 to 50 digests");
        }
        for (idx, digest) in self.allowed_signing_digests.iter().enumerate() {
            let ok = digest.len() == 64
                && digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !ok {
                bad(
                    &format!("allowed_signing_digests[{idx}]"),
                    "SHA-256, 64 lowercase hex digits",
                );
            }
        }
        if parse_version(&self.min_app_version).is_none() {
            bad("min_app_version", "dotted decimal numbers, e.g. 1.4.0");
        }
        if !(1..=100).contains(&self.min_os_version) {
            bad("min_os_version", "1 to 100");
        }
        if !(1..=3650).contains(&self.max_patch_age_days) {
            bad("max_patch_age_days", "1 to 3650");
        }
        if !(1..=3650).contains(&self.max_attestation_age_days) {
            bad("max_attestation_age_days", "1 to 3650");
        }
        if !(1..=300).contains(&self.max_clock_skew_secs) {
            bad(
                "max_clock_skew_secs",
                "1 to 300 (signed requests beyond 300 s are refused anyway)",
            );
        }
        if !(1..=86_400).contains(&self.max_report_age_secs) {
            bad("max_report_age_secs", "1 to 86400");
        }
        if !(1..=7 * 86_400).contains(&self.heartbeat_interval_secs) {
            bad("heartbeat_interval_secs", "1 to 604800");
        }
        if !(1..=600).contains(&self.nonce_ttl_secs) {
            bad("nonce_ttl_secs", "1 to 600");
        }
        if self.amount_ceilings.len() > 20 {
            bad("amount_ceilings", "at most 20 entries");
        }
        for (idx, ceiling) in self.amount_ceilings.iter().enumerate() {
            if ceiling.min_score > 100 {
                bad(&format!("amount_ceilings[{idx}].min_score"), "0 to 100");
            }
            if self.amount_ceilings[..idx]
                .iter()
                .any(|other| other.min_score == ceiling.min_score)
            {
                bad(
                    &format!("amount_ceilings[{idx}].min_score"),
                    "duplicate min_score",
                );
            }
        }
        let rules = &self.threat_rules;
        if rules.decline_streak.max_consecutive < 2 || rules.decline_streak.max_consecutive > 1000 {
            bad("threat_rules.decline_streak.max_consecutive", "2 to 1000");
        }
        if !(1..=100_000).contains(&rules.velocity.max_transactions) {
            bad("threat_rules.velocity.max_transactions", "1 to 100000");
        }
        if !(1..=86_400).contains(&rules.velocity.window_secs) {
            bad("threat_rules.velocity.window_secs", "1 to 86400");
        }
        let jump = &rules.location_jump;
        if !(jump.max_speed_kmh.is_finite()
            && jump.max_speed_kmh > 0.0
            && jump.max_speed_kmh <= 5000.0)
        {
            bad(
                "threat_rules.location_jump.max_speed_kmh",
                "above 0, at most 5000",
            );
        }
        if !(jump.min_distance_km.is_finite()
            && jump.min_distance_km >= 0.0
            && jump.min_distance_km <= 20_000.0)
        {
            bad("threat_rules.location_jump.min_distance_km", "0 to 20000");
        }
        if rules.missed_heartbeat.grace_secs > 86_400 {
            bad("threat_rules.missed_heartbeat.grace_secs", "0 to 86400");
        }
        if !(1..=1000).contains(&rules.attestation_failures.max_failures) {
            bad(
                "threat_rules.attestation_failures.max_failures",
                "1 to 1000",
            );
        }
        if !(1..=30 * 86_400).contains(&rules.attestation_failures.window_secs) {
            bad(
                "threat_rules.attestation_failures.window_secs",
                "1 to 2592000",
            );
        }
        for severity in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            if !self
                .responses
                .iter()
                .any(|line| line.kind.is_none() && line.severity == severity)
            {
                bad(
                    "responses",
                    "needs a line without kind for every severity (low, medium, high, critical)",
                );
                break;
            }
        }
        for (idx, line) in self.responses.iter().enumerate() {
            if self.responses[..idx]
                .iter()
                .any(|other| other.kind == line.kind && other.severity == line.severity)
            {
                bad(
                    &format!("responses[{idx}]"),
                    "duplicate (kind, severity) line",
                );
            }
        }
        if self.responses.len() > 200 {
            bad("responses", "at most 200 lines");
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The action for a (kind, severity): the line naming the kind, else the line for any
    /// kind, else record.
    pub fn response_for(&self, kind: ThreatKind, severity: Severity) -> ResponseAction {
        self.responses
            .iter()
            .find(|line| line.kind == Some(kind) && line.severity == severity)
            .or_else(|| {
                self.responses
                    .iter()
                    .find(|line| line.kind.is_none() && line.severity == severity)
            })
            .map_or(ResponseAction::Record, |line| line.action)
    }

    /// The amount ceiling at `score`: the entry with the highest `min_score` not above it.
    /// `None` below every entry means no token-level cap is defined (a failing score gets no
    /// token anyway).
    pub fn amount_ceiling(&self, score: u8) -> Option<u64> {
        self.amount_ceilings
            .iter()
            .filter(|ceiling| ceiling.min_score <= score)
            .max_by_key(|ceiling| ceiling.min_score)
            .and_then(|ceiling| ceiling.ceiling_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid() {
        assert_eq!(
            SecurityPolicy::default().validate().map_err(|p| p.len()),
            Ok(())
        );
    }

    #[test]
    fn validation_names_each_bad_field() {
        let mut policy = SecurityPolicy {
            pass_score: 101,
            ..SecurityPolicy::default()
        };
        policy.checks.remove("root");
        policy
            .checks
            .insert("telepathy".to_owned(), rule(1, false, None));
        policy.allowed_signing_digests = vec!["AB".repeat(32)];
        policy.min_app_version = "1.x".to_owned();
        policy.nonce_ttl_secs = 0;
        policy.threat_rules.location_jump.max_speed_kmh = f64::NAN;
        policy
            .responses
            .retain(|line| line.severity != Severity::High);
        let fields: Vec<String> = policy
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|p| p.field)
            .collect();
        for expected in [
            "pass_score",
            "checks.root",
            "checks.telepathy",
            "allowed_signing_digests[0]",
            "min_app_version",
            "nonce_ttl_secs",
            "threat_rules.location_jump.max_speed_kmh",
            "responses",
        ] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} in {fields:?}"
            );
        }
    }

    #[test]
    fn response_lines_prefer_the_kind() {
        let mut policy = SecurityPolicy::default();
        policy.responses.push(ResponseRule {
            kind: Some(ThreatKind::Rooted),
            severity: Severity::Critical,
            action: ResponseAction::Revoke,
        });
        assert_eq!(
            policy.response_for(ThreatKind::Rooted, Severity::Critical),
            ResponseAction::Revoke
        );
        assert_eq!(
            policy.response_for(ThreatKind::Emulator, Severity::Critical),
            ResponseAction::Suspend
        );
        assert_eq!(
            policy.response_for(ThreatKind::Rooted, Severity::Low),
            ResponseAction::Record
        );
    }

    #[test]
    fn ceilings_and_versions() {
        let policy = SecurityPolicy::default();
        assert_eq!(policy.amount_ceiling(69), None);
        assert_eq!(policy.amount_ceiling(70), Some(5_000));
        assert_eq!(policy.amount_ceiling(89), Some(5_000));
        assert_eq!(policy.amount_ceiling(90), None);
        let v = |t| parse_version(t).unwrap();
        assert!(version_at_least(&v("1.0.0"), &v("1.0")));
        assert!(version_at_least(&v("1.10.0"), &v("1.9.9")));
        assert!(!version_at_least(&v("1.9.9"), &v("1.10")));
        assert!(!version_at_least(&v("0.9"), &v("1.0.0")));
        assert_eq!(parse_version("1..2"), None);
        assert_eq!(parse_version("-1"), None);
        assert_eq!(parse_version(""), None);
    }
}
