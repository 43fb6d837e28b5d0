//! Health self-checks: what the terminal measures about itself, sent to the server as the
//! body of `POST /api/v1/device/health` ([`HealthReport`], field for field the server's
//! `HealthReportBody`).
//!
//! Two sources feed a report:
//! - real checks where they mean something on a desktop ([`desktop`]): a debugger attached
//!   (`TracerPid` in `/proc/self/status`), running as root, the own binary's SHA-256 against a
//!   signed release manifest, clock skew against the server;
//! - injected signals ([`InjectedSignals`]) for every Android signal of the report (root
//!   indicators, hook frameworks, emulator, debuggable build, ADB, developer options, overlay,
//!   screen capture, patch level, …), so tests and the fleet simulator can play rooted, hooked
//!   or emulated devices ([`Compromise`]).
//!
//! An injected value always wins over a measured one.

pub mod desktop;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The development security policy's allowed app signing digest (the server's default policy
/// allows exactly this one); real deployments configure their own.
pub const DEV_APP_SIGNING_DIGEST: &str =
    "abababababababababababababababababababababababababababababababab";

/// A health report, exactly the server's body (`deny_unknown_fields` there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthReport {
    /// Root / jailbreak indicators found (e.g. `su_binary`, `magisk`, `running_as_root`).
    pub root_indicators: Vec<String>,
    /// Hook frameworks found (`frida`, `xposed`, `lsposed`, `substrate`, ...).
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
    /// When the device key was last attested.
    pub last_attestation_at: DateTime<Utc>,
    /// OS version (major first).
    pub os_version: String,
    /// Security patch level, `YYYY-MM-DD`.
    pub security_patch: String,
    /// Developer options on.
    pub developer_options: bool,
    /// ADB on.
    pub adb_enabled: bool,
    /// Another app draws over the terminal.
    pub overlay_detected: bool,
    /// Screen capture or recording active.
    pub screen_capture: bool,
    /// NFC present and on.
    pub nfc_available: bool,
    /// The device clock when the report was made.
    pub device_time: DateTime<Utc>,
}

/// Signals set from outside (tests, the fleet simulator, an Android shell that measured
/// them). `None` leaves the collector's own value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectedSignals {
    /// Root indicators.
    pub root_indicators: Option<Vec<String>>,
    /// Hook frameworks.
    pub hook_frameworks: Option<Vec<String>>,
    /// Debugger attached.
    pub debugger_attached: Option<bool>,
    /// Debuggable build.
    pub debuggable_build: Option<bool>,
    /// Emulator.
    pub emulator: Option<bool>,
    /// Developer options.
    pub developer_options: Option<bool>,
    /// ADB.
    pub adb_enabled: Option<bool>,
    /// Overlay.
    pub overlay_detected: Option<bool>,
    /// Screen capture.
    pub screen_capture: Option<bool>,
    /// NFC available.
    pub nfc_available: Option<bool>,
    /// OS version.
    pub os_version: Option<String>,
    /// Security patch level, `YYYY-MM-DD`.
    pub security_patch: Option<String>,
    /// Patch age in days (sets the patch level to today minus this); `security_patch` wins.
    pub patch_age_days: Option<i64>,
    /// App version.
    pub app_version: Option<String>,
    /// App signing digest.
    pub app_signing_digest: Option<String>,
    /// Last attestation time.
    pub last_attestation_at: Option<DateTime<Utc>>,
    /// Milliseconds added to the device clock (a skewed clock).
    pub clock_offset_ms: Option<i64>,
}

/// Ready-made compromised devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compromise {
    /// Magisk and an `su` binary.
    Rooted,
    /// Frida hooking the app.
    Hooked,
    /// Xposed / LSPosed hooks.
    Xposed,
    /// Running in an emulator.
    Emulator,
    /// A debugger attached.
    Debugger,
    /// A debuggable build.
    Debuggable,
    /// ADB and developer options on.
    Adb,
    /// An overlay drawing over the PIN pad.
    Overlay,
    /// Security patch level two years old.
    StalePatch,
    /// Clock ten minutes ahead of the server.
    ClockSkew,
    /// An app signed with another certificate.
    ForeignSignature,
}

impl Compromise {
    /// Every kind, for help texts and the fleet's mix.
    pub const ALL: [Self; 11] = [
        Self::Rooted,
        Self::Hooked,
        Self::Xposed,
        Self::Emulator,
        Self::Debugger,
        Self::Debuggable,
        Self::Adb,
        Self::Overlay,
        Self::StalePatch,
        Self::ClockSkew,
        Self::ForeignSignature,
    ];

    /// Stable name (`rooted`, `hooked`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rooted => "rooted",
            Self::Hooked => "hooked",
            Self::Xposed => "xposed",
            Self::Emulator => "emulator",
            Self::Debugger => "debugger",
            Self::Debuggable => "debuggable",
            Self::Adb => "adb",
            Self::Overlay => "overlay",
            Self::StalePatch => "stale_patch",
            Self::ClockSkew => "clock_skew",
            Self::ForeignSignature => "foreign_signature",
        }
    }

    /// Parses a stable name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// Adds this compromise to `signals`.
    pub fn apply(self, signals: &mut InjectedSignals) {
        match self {
            Self::Rooted => {
                signals.root_indicators = Some(vec!["magisk".to_owned(), "su_binary".to_owned()]);
            }
            Self::Hooked => signals.hook_frameworks = Some(vec!["frida".to_owned()]),
            Self::Xposed => {
                signals.hook_frameworks = Some(vec!["xposed".to_owned(), "lsposed".to_owned()]);
            }
            Self::Emulator => signals.emulator = Some(true),
            Self::Debugger => signals.debugger_attached = Some(true),
            Self::Debuggable => signals.debuggable_build = Some(true),
            Self::Adb => {
                signals.adb_enabled = Some(true);
                signals.developer_options = Some(true);
            }
            Self::Overlay => signals.overlay_detected = Some(true),
            Self::StalePatch => signals.patch_age_days = Some(730),
            Self::ClockSkew => signals.clock_offset_ms = Some(600_000),
            Self::ForeignSignature => signals.app_signing_digest = Some("cd".repeat(32)),
        }
    }

    /// Signals of a device with this compromise only.
    #[must_use]
    pub fn signals(self) -> InjectedSignals {
        let mut signals = InjectedSignals::default();
        self.apply(&mut signals);
        signals
    }
}

/// What the terminal app is, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFacts {
    /// App version (semantic version).
    pub app_version: String,
    /// App signing digest, hex.
    pub app_signing_digest: String,
    /// OS version.
    pub os_version: String,
    /// Security patch age in days (the desktop has no patch level of its own).
    pub patch_age_days: i64,
}

impl Default for AppFacts {
    fn default() -> Self {
        Self::development()
    }
}

impl AppFacts {
    /// The facts of a development build: version 1.0.0 (the development policy's minimum),
    /// the development signing digest, OS 14, patched 30 days ago.
    #[must_use]
    pub fn development() -> Self {
        Self {
            app_version: "1.0.0".to_owned(),
            app_signing_digest: DEV_APP_SIGNING_DIGEST.to_owned(),
            os_version: "14".to_owned(),
            patch_age_days: 30,
        }
    }
}

/// Builds health reports from measured and injected signals.
#[derive(Debug, Clone)]
pub struct HealthCollector {
    /// App facts.
    pub facts: AppFacts,
    /// Injected signals (win over measured ones).
    pub injected: InjectedSignals,
    /// Real desktop checks to run, if any.
    pub desktop: Option<desktop::DesktopChecks>,
    /// When the device key was attested (registration time).
    pub last_attestation_at: Option<DateTime<Utc>>,
}

impl HealthCollector {
    /// A collector with no real checks: a clean device unless signals are injected (tests,
    /// fleets).
    #[must_use]
    pub fn simulated(facts: AppFacts) -> Self {
        Self {
            facts,
            injected: InjectedSignals::default(),
            desktop: None,
            last_attestation_at: None,
        }
    }

    /// A collector that also runs `checks` on this machine.
    #[must_use]
    pub fn desktop(facts: AppFacts, checks: desktop::DesktopChecks) -> Self {
        Self {
            desktop: Some(checks),
            ..Self::simulated(facts)
        }
    }

    /// Makes a report now.
    #[must_use]
    pub fn collect(&self) -> HealthReport {
        self.collect_at(Utc::now())
    }

    /// Makes a report as if the clock read `now`.
    #[must_use]
    pub fn collect_at(&self, now: DateTime<Utc>) -> HealthReport {
        let measured = self
            .desktop
            .as_ref()
            .map(desktop::DesktopChecks::run)
            .unwrap_or_default();
        let injected = &self.injected;
        let mut root_indicators = measured.root_indicators.clone();
        if let Some(values) = &injected.root_indicators {
            root_indicators.clone_from(values);
        }
        let app_signing_digest = injected
            .app_signing_digest
            .clone()
            .or_else(|| measured.binary_digest_mismatch.clone())
            .unwrap_or_else(|| self.facts.app_signing_digest.clone());
        let patch_age = injected.patch_age_days.unwrap_or(self.facts.patch_age_days);
        let security_patch = injected.security_patch.clone().unwrap_or_else(|| {
            (now - Duration::days(patch_age))
                .format("%Y-%m-%d")
                .to_string()
        });
        HealthReport {
            root_indicators,
            hook_frameworks: injected.hook_frameworks.clone().unwrap_or_default(),
            debugger_attached: injected
                .debugger_attached
                .unwrap_or(measured.debugger_attached),
            debuggable_build: injected.debuggable_build.unwrap_or(false),
            emulator: injected.emulator.unwrap_or(false),
            app_version: injected
                .app_version
                .clone()
                .unwrap_or_else(|| self.facts.app_version.clone()),
            app_signing_digest,
            last_attestation_at: injected
                .last_attestation_at
                .or(self.last_attestation_at)
                .unwrap_or(now - Duration::hours(1)),
            os_version: injected
                .os_version
                .clone()
                .unwrap_or_else(|| self.facts.os_version.clone()),
            security_patch,
            developer_options: injected.developer_options.unwrap_or(false),
            adb_enabled: injected.adb_enabled.unwrap_or(false),
            overlay_detected: injected.overlay_detected.unwrap_or(false),
            screen_capture: injected.screen_capture.unwrap_or(false),
            nfc_available: injected.nfc_available.unwrap_or(true),
            device_time: now + Duration::milliseconds(injected.clock_offset_ms.unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_report_has_exactly_the_server_fields() {
        let report = HealthCollector::simulated(AppFacts::development()).collect();
        let value = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "adb_enabled",
                "app_signing_digest",
                "app_version",
                "debuggable_build",
                "debugger_attached",
                "developer_options",
                "device_time",
                "emulator",
                "hook_frameworks",
                "last_attestation_at",
                "nfc_available",
                "os_version",
                "overlay_detected",
                "root_indicators",
                "screen_capture",
                "security_patch",
            ]
        );
        assert!(report.root_indicators.is_empty() && report.hook_frameworks.is_empty());
        assert_eq!(report.app_signing_digest, DEV_APP_SIGNING_DIGEST);
        // It parses back under the server's `deny_unknown_fields`.
        let back: HealthReport = serde_json::from_value(value).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn injected_compromises_show_in_the_report() {
        let now = Utc::now();
        let check = |kind: Compromise, verify: &dyn Fn(&HealthReport) -> bool| {
            let mut collector = HealthCollector::simulated(AppFacts::development());
            collector.injected = kind.signals();
            assert!(verify(&collector.collect_at(now)), "{}", kind.as_str());
            assert_eq!(Compromise::parse(kind.as_str()), Some(kind));
        };
        check(Compromise::Rooted, &|r| {
            r.root_indicators.contains(&"magisk".to_owned())
        });
        check(Compromise::Hooked, &|r| r.hook_frameworks == ["frida"]);
        check(Compromise::Emulator, &|r| r.emulator);
        check(Compromise::Debugger, &|r| r.debugger_attached);
        check(Compromise::Adb, &|r| r.adb_enabled && r.developer_options);
        check(Compromise::Overlay, &|r| r.overlay_detected);
        check(Compromise::StalePatch, &|r| {
            r.security_patch == (now - Duration::days(730)).format("%Y-%m-%d").to_string()
        });
        check(Compromise::ClockSkew, &|r| {
            (r.device_time - now).num_milliseconds() == 600_000
        });
        check(Compromise::ForeignSignature, &|r| {
            r.app_signing_digest != DEV_APP_SIGNING_DIGEST
        });
        assert_eq!(Compromise::parse("nonsense"), None);
    }
}
