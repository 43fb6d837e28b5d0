//! Scoring a health report under a policy: pure, no I/O, no clock (the server time comes in
//! as an argument).
//!
//! The score starts at 100 and loses each failed check's weight (never below 0). A report
//! passes when the score reaches the policy's pass score and no critical check failed.
//! Nothing is assumed: a check whose evidence is missing or unparseable fails.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::{SecurityPolicy, parse_version, version_at_least};
use crate::domain::UnixMillis;

/// What the device measured about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthReportBody {
    /// Root / jailbreak indicators found (e.g. `su_binary`, `magisk`); empty when none.
    pub root_indicators: Vec<String>,
    /// Hook frameworks found (`frida`, `xposed`, `lsposed`, `substrate`, ...); empty when none.
    pub hook_frameworks: Vec<String>,
    /// A debugger is attached.
    pub debugger_attached: bool,
    /// The app is a debuggable build.
    pub debuggable_build: bool,
    /// Running on an emulator.
    pub emulator: bool,
    /// Terminal app version.
    pub app_version: String,
    /// SHA-256 of the app signing certificate, hex.
    pub app_signing_digest: String,
    /// When the device key was last attested (RFC 3339).
    pub last_attestation_at: chrono::DateTime<chrono::Utc>,
    /// Android version (major first, e.g. `14` or `13.0.1`).
    pub os_version: String,
    /// Security patch level, `YYYY-MM-DD`.
    pub security_patch: String,
    /// Developer options on.
    pub developer_options: bool,
    /// ADB (USB or wireless debugging) on.
    pub adb_enabled: bool,
    /// Another app draws over the terminal app.
    pub overlay_detected: bool,
    /// Screen capture or recording is active.
    pub screen_capture: bool,
    /// NFC hardware present and on.
    pub nfc_available: bool,
    /// The device clock when the report was made (RFC 3339).
    pub device_time: chrono::DateTime<chrono::Utc>,
}

/// The result of scoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    /// 0-100.
    pub score: u8,
    /// Passed the policy.
    pub passed: bool,
    /// Failed checks, in `CHECKS` order.
    pub failed_checks: Vec<&'static str>,
    /// Failed checks that are critical.
    pub critical_failures: Vec<&'static str>,
    /// Device clock minus server clock, milliseconds.
    pub clock_skew_ms: i64,
    /// Amount ceiling at this score (only when passed).
    pub amount_ceiling_minor: Option<u64>,
}

const DAY_MS: i64 = 86_400_000;

/// Scores `report`, received at `now`, under `policy`.
pub fn score(policy: &SecurityPolicy, report: &HealthReportBody, now: UnixMillis) -> Scored {
    let clock_skew_ms = report.device_time.timestamp_millis() - now;
    let app_current = match (
        parse_version(&report.app_version),
        parse_version(&policy.min_app_version),
    ) {
        (Some(version), Some(minimum)) => version_at_least(&version, &minimum),
        _ => false,
    };
    let digest = report.app_signing_digest.to_ascii_lowercase();
    let os_major = report
        .os_version
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok());
    let patch_age_days = chrono::NaiveDate::parse_from_str(&report.security_patch, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|date| (now - date.and_utc().timestamp_millis()) / DAY_MS);
    let attestation_age_ms = now - report.last_attestation_at.timestamp_millis();

    let failed = |check: &str| -> bool {
        match check {
            "root" => !report.root_indicators.is_empty(),
            "hook_framework" => !report.hook_frameworks.is_empty(),
            "debugger" => report.debugger_attached || report.debuggable_build,
            "emulator" => report.emulator,
            "app_signature" => !policy.allowed_signing_digests.contains(&digest),
            "app_outdated" => !app_current,
            // An attestation "from the future" is as suspicious as an old one.
            "attestation_stale" => {
                attestation_age_ms < -i64::try_from(policy.max_clock_skew_secs * 1000).unwrap_or(0)
                    || attestation_age_ms > i64::from(policy.max_attestation_age_days) * DAY_MS
            }
            "os_outdated" => os_major.is_none_or(|major| major < policy.min_os_version),
            "patch_outdated" => patch_age_days
                .is_none_or(|age| age < -1 || age > i64::from(policy.max_patch_age_days)),
            "developer_options" => report.developer_options,
            "adb" => report.adb_enabled,
            "overlay" => report.overlay_detected,
            "screen_capture" => report.screen_capture,
            "clock_skew" => {
                clock_skew_ms.unsigned_abs() > policy.max_clock_skew_secs.saturating_mul(1000)
            }
            "nfc_unavailable" => !report.nfc_available,
            _ => true,
        }
    };

    let mut penalty: u32 = 0;
    let mut failed_checks = Vec::new();
    let mut critical_failures = Vec::new();
    for check in super::policy::CHECKS {
        if !failed(check) {
            continue;
        }
        failed_checks.push(*check);
        // Validation guarantees a rule per check; a missing one counts as fully weighted
        // and critical rather than as a pass.
        match policy.checks.get(*check) {
            Some(rule) => {
                penalty += u32::from(rule.weight);
                if rule.critical {
                    critical_failures.push(*check);
                }
            }
            None => {
                penalty += 100;
                critical_failures.push(*check);
            }
        }
    }
    let score = u8::try_from(100u32.saturating_sub(penalty)).unwrap_or(0);
    let passed = score >= policy.pass_score && critical_failures.is_empty();
    Scored {
        score,
        passed,
        failed_checks,
        critical_failures,
        clock_skew_ms,
        amount_ceiling_minor: if passed {
            policy.amount_ceiling(score)
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::health::policy::CHECKS;

    const NOW: &str = "2026-11-26T12:00:00Z";

    fn now() -> UnixMillis {
        chrono::DateTime::parse_from_rfc3339(NOW)
            .unwrap()
            .timestamp_millis()
    }

    fn clean() -> HealthReportBody {
        HealthReportBody {
            root_indicators: vec![],
            hook_frameworks: vec![],
            debugger_attached: false,
            debuggable_build: false,
            emulator: false,
            app_version: "1.2.0".to_owned(),
            app_signing_digest: "ab".repeat(32),
            last_attestation_at: "2026-11-20T00:00:00Z".parse().unwrap(),
            os_version: "14".to_owned(),
            security_patch: "2026-10-05".to_owned(),
            developer_options: false,
            adb_enabled: false,
            overlay_detected: false,
            screen_capture: false,
            nfc_available: true,
            device_time: NOW.parse().unwrap(),
        }
    }

    /// One row per check: the change that fails it, and the expected (score, passed) under
    /// the default policy (weights in `SecurityPolicy::default`).
    fn check(change: fn(&mut HealthReportBody), failed: &[&str], score: u8, passed: bool) {
        let policy = SecurityPolicy::default();
        let mut report = clean();
        change(&mut report);
        let scored = super::score(&policy, &report, now());
        assert_eq!(scored.failed_checks, failed, "{report:?}");
        assert_eq!((scored.score, scored.passed), (score, passed), "{failed:?}");
    }

    #[test]
    fn scoring_table() {
        check(|_| {}, &[], 100, true);
        check(
            |r| r.root_indicators = vec!["su_binary".into()],
            &["root"],
            40,
            false,
        );
        check(
            |r| r.hook_frameworks = vec!["frida".into()],
            &["hook_framework"],
            40,
            false,
        );
        check(|r| r.debugger_attached = true, &["debugger"], 60, false);
        check(|r| r.debuggable_build = true, &["debugger"], 60, false);
        check(|r| r.emulator = true, &["emulator"], 60, false);
        check(
            |r| r.app_signing_digest = "cd".repeat(32),
            &["app_signature"],
            40,
            false,
        );
        // Upper-case hex is the same digest.
        check(|r| r.app_signing_digest = "AB".repeat(32), &[], 100, true);
        check(
            |r| r.app_version = "0.9.9".into(),
            &["app_outdated"],
            70,
            false,
        );
        check(|r| r.app_version = "1.0".into(), &[], 100, true);
        check(
            |r| r.app_version = "banana".into(),
            &["app_outdated"],
            70,
            false,
        );
        check(
            |r| r.last_attestation_at = "2026-08-01T00:00:00Z".parse().unwrap(),
            &["attestation_stale"],
            85,
            true,
        );
        check(|r| r.os_version = "9".into(), &["os_outdated"], 85, true);
        check(|r| r.os_version = "14.1.2".into(), &[], 100, true);
        check(
            |r| r.security_patch = "2025-01-01".into(),
            &["patch_outdated"],
            90,
            true,
        );
        check(
            |r| r.security_patch = "soon".into(),
            &["patch_outdated"],
            90,
            true,
        );
        check(
            |r| r.developer_options = true,
            &["developer_options"],
            95,
            true,
        );
        check(|r| r.adb_enabled = true, &["adb"], 85, true);
        check(|r| r.overlay_detected = true, &["overlay"], 75, false);
        check(|r| r.screen_capture = true, &["screen_capture"], 80, true);
        check(
            |r| r.device_time = "2026-11-26T12:01:01Z".parse().unwrap(),
            &["clock_skew"],
            90,
            true,
        );
        check(
            |r| r.device_time = "2026-11-26T11:59:00Z".parse().unwrap(),
            &[],
            100,
            true,
        );
        check(|r| r.nfc_available = false, &["nfc_unavailable"], 70, false);
        // Non-critical failures add up until the score drops below the pass score.
        check(
            |r| {
                r.adb_enabled = true;
                r.screen_capture = true;
            },
            &["adb", "screen_capture"],
            65,
            false,
        );
        // Everything at once: the score floors at 0.
        check(
            |r| {
                r.root_indicators = vec!["magisk".into()];
                r.hook_frameworks = vec!["xposed".into()];
                r.emulator = true;
            },
            &["root", "hook_framework", "emulator"],
            0,
            false,
        );
    }

    #[test]
    fn score_follows_the_policy_weights() {
        let mut policy = SecurityPolicy::default();
        policy.checks.get_mut("adb").unwrap().weight = 40;
        policy.checks.get_mut("adb").unwrap().critical = true;
        let mut report = clean();
        report.adb_enabled = true;
        let scored = score(&policy, &report, now());
        assert_eq!((scored.score, scored.passed), (60, false));
        assert_eq!(scored.critical_failures, ["adb"]);
        policy.pass_score = 50;
        policy.checks.get_mut("adb").unwrap().critical = false;
        let scored = score(&policy, &report, now());
        assert_eq!((scored.score, scored.passed), (60, true));
        assert_eq!(
            scored.amount_ceiling_minor, None,
            "below every ceiling entry"
        );
    }

    #[test]
    fn every_check_can_fail() {
        assert_eq!(CHECKS.len(), SecurityPolicy::default().checks.len());
    }

    #[test]
    fn ceiling_only_when_passed() {
        let policy = SecurityPolicy::default();
        let mut report = clean();
        report.adb_enabled = true;
        assert_eq!(
            score(&policy, &report, now()).amount_ceiling_minor,
            Some(5_000)
        );
        assert_eq!(score(&policy, &clean(), now()).amount_ceiling_minor, None);
        report.overlay_detected = true;
        let scored = score(&policy, &report, now());
        assert!(!scored.passed);
        assert_eq!(scored.amount_ceiling_minor, None);
    }
}
