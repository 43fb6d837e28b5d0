//! Android Key Attestation at device registration: runs the `android-attestation` verifier
//! with the server's policy, binds the verdict to the issued challenge and the registered
//! device key, and keeps the operator's revocation status list (re-read when the file
//! changes). No SQL and no HTTP here; the stored record goes through
//! [`crate::repository::attestations::AttestationRepository`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use android_attestation::{
    Outcome, Policy, RevocationList, SecurityLevel, TrustAnchors, Verification,
};
use base64::Engine;

use crate::domain::{DeviceFacts, UnixMillis};
use crate::error::{AppError, AppResult};

/// Android attestation policy, from configuration.
#[derive(Debug, Clone)]
pub struct AndroidPolicy {
    /// Allowed app packages; empty: the package the device reports in its facts.
    pub allowed_packages: Vec<String>,
    /// Allowed signing certificate SHA-256 digests; empty: the digest in the facts.
    pub allowed_signing_digests: Vec<Vec<u8>>,
    /// Lowest acceptable security level (attestation and KeyMint).
    pub required_security_level: SecurityLevel,
    /// The operator-maintained copy of Google's status list; `None`: revocation unchecked.
    pub revocation_list: Option<PathBuf>,
    /// Oldest acceptable revocation list (by file modification time), seconds.
    pub revocation_max_age_secs: i64,
    /// Accept unlocked bootloaders / unverified boot (never in production).
    pub allow_unlocked_bootloader: bool,
}

impl Default for AndroidPolicy {
    fn default() -> Self {
        Self {
            allowed_packages: Vec::new(),
            allowed_signing_digests: Vec::new(),
            required_security_level: SecurityLevel::TrustedEnvironment,
            revocation_list: None,
            revocation_max_age_secs: 24 * 3600,
            allow_unlocked_bootloader: false,
        }
    }
}

/// What the registration stores about an accepted attestation.
#[derive(Debug, Clone)]
pub struct AttestationRecord {
    /// `android_key` or `software`.
    pub format: String,
    /// `accepted` (refusals are not stored: nothing is registered).
    pub verdict: String,
    /// Attestation security level, if the format has one.
    pub attestation_security_level: Option<String>,
    /// KeyMint security level, if the format has one.
    pub keymint_security_level: Option<String>,
    /// attestationVersion, if the format has one.
    pub attestation_version: Option<i64>,
    /// Every check with outcome and reason, JSON array.
    pub checks: serde_json::Value,
    /// Parsed KeyDescription, JSON (no key material beyond public values).
    pub key_description: Option<serde_json::Value>,
    /// When verified.
    pub verified_at: UnixMillis,
}

/// The verifier with its trust anchors and revocation list cache.
pub struct AndroidKeyVerifier {
    anchors: TrustAnchors,
    policy: AndroidPolicy,
    cache: Mutex<Option<(SystemTime, Arc<RevocationList>)>>,
}

impl std::fmt::Debug for AndroidKeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AndroidKeyVerifier")
            .field("anchors", &self.anchors.len())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn level_text(level: SecurityLevel) -> String {
    serde_json::to_value(level)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl AndroidKeyVerifier {
    /// Google's roots plus `extra_roots` (PEM files; testing only).
    ///
    /// # Errors
    /// A root file that cannot be read or parsed.
    pub fn new(policy: AndroidPolicy, extra_roots: &[PathBuf]) -> anyhow::Result<Self> {
        let mut anchors = TrustAnchors::google();
        for path in extra_roots {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading trust anchor {}: {e}", path.display()))?;
            anchors
                .add_pem(&format!("extra:{}", path.display()), &pem)
                .map_err(|e| anyhow::anyhow!("trust anchor {}: {e}", path.display()))?;
        }
        Ok(Self {
            anchors,
            policy,
            cache: Mutex::new(None),
        })
    }

    async fn revocations(&self) -> AppResult<Option<Arc<RevocationList>>> {
        let Some(path) = &self.policy.revocation_list else {
            return Ok(None);
        };
        let unavailable = |what: &str| {
            tracing::error!(path = %path.display(), "attestation revocation list {what}");
            AppError::Unprocessable {
                code: "attestation_revocation_list_unavailable",
                message: "the attestation revocation list cannot be read; registrations are refused until it is fixed",
            }
        };
        let modified = tokio::fs::metadata(path)
            .await
            .and_then(|m| m.modified())
            .map_err(|_| unavailable("is missing"))?;
        if let Ok(cache) = self.cache.lock()
            && let Some((at, list)) = cache.as_ref()
            && *at == modified
        {
            return Ok(Some(list.clone()));
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|_| unavailable("cannot be read"))?;
        let fetched_at = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let list = Arc::new(
            RevocationList::parse(&bytes, fetched_at).map_err(|_| unavailable("does not parse"))?,
        );
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((modified, list.clone()));
        }
        Ok(Some(list))
    }

    /// Verifies `chain` (base64 DER certificates or PEM blocks, leaf first) for a device that
    /// registers `device_key` (SEC1, uncompressed) over `challenge`, at `now_secs`.
    ///
    /// # Errors
    /// `attestation_evidence_malformed` (422) for input that is not a chain with a
    /// KeyDescription; `attestation_challenge_mismatch`, `attestation_key_mismatch` or
    /// `attestation_refused` (422) when the verdict is a refusal;
    /// `attestation_revocation_list_unavailable` when the configured list is unusable.
    pub async fn verify(
        &self,
        chain: &[String],
        challenge: &[u8],
        device_key: &[u8],
        facts: &DeviceFacts,
        now_secs: i64,
    ) -> AppResult<(Verification, AttestationRecord)> {
        let malformed = || AppError::Unprocessable {
            code: "attestation_evidence_malformed",
            message: "attestation.certificate_chain must be 2 to 10 certificates (base64 DER or PEM), leaf first, the leaf carrying a KeyDescription",
        };
        let mut ders = Vec::with_capacity(chain.len());
        for item in chain {
            if item.contains("-----BEGIN") {
                ders.extend(pem_bodies(item).ok_or_else(malformed)?);
            } else {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(item.trim())
                    .map_err(|_| malformed())?;
                ders.push(der);
            }
        }
        let certs = android_attestation::from_ders(ders).map_err(|_| malformed())?;

        let package_list = if self.policy.allowed_packages.is_empty() {
            vec![facts.app_package.clone()]
        } else {
            self.policy.allowed_packages.clone()
        };
        let digest_list = if self.policy.allowed_signing_digests.is_empty() {
            hex::decode(&facts.app_signing_digest).into_iter().collect()
        } else {
            self.policy.allowed_signing_digests.clone()
        };
        let policy = Policy {
            expected_challenge: Some(challenge.to_vec()),
            allowed_packages: package_list,
            allowed_signing_digests: digest_list,
            required_security_level: self.policy.required_security_level,
            require_verified_boot: !self.policy.allow_unlocked_bootloader,
            require_device_locked: !self.policy.allow_unlocked_bootloader,
            max_revocation_age_secs: self.policy.revocation_max_age_secs,
            require_revocation_list: self.policy.revocation_list.is_some(),
        };
        let revocations = self.revocations().await?;
        let mut verification = android_attestation::verify(
            &certs,
            &self.anchors,
            &policy,
            revocations.as_deref(),
            now_secs,
        )
        .map_err(|_| malformed())?;

        // The attested key must be the key the device registers.
        let key_ok = verification.leaf_key_type == "ec_p256"
            && p256::ecdsa::VerifyingKey::from_sec1_bytes(&verification.leaf_public_key)
                .map(|k| k.to_sec1_bytes().as_ref() == device_key)
                .unwrap_or(false);
        verification.checks.push(android_attestation::Check {
            name: "device_key_matches",
            outcome: if key_ok { Outcome::Pass } else { Outcome::Fail },
            reason: if key_ok {
                "the attested leaf key is the registered device key".to_owned()
            } else {
                format!(
                    "the attested leaf key ({}) is not the registered device key",
                    verification.leaf_key_type
                )
            },
        });
        verification.accepted = verification.accepted && key_ok;

        if !verification.accepted {
            let failed: Vec<&str> = verification.failed().map(|c| c.name).collect();
            tracing::info!(failed = ?failed, "android key attestation refused");
            metrics::counter!("device_attestation_refusals_total", "format" => "android_key")
                .increment(1);
            let code = if failed.contains(&"challenge_matches") {
                (
                    "attestation_challenge_mismatch",
                    "the attestation challenge is not the issued challenge",
                )
            } else if failed.contains(&"device_key_matches") {
                (
                    "attestation_key_mismatch",
                    "the attested key is not the registered device key",
                )
            } else {
                (
                    "attestation_refused",
                    "the Android key attestation does not satisfy the device policy",
                )
            };
            return Err(AppError::Unprocessable {
                code: code.0,
                message: code.1,
            });
        }
        let kd = &verification.key_description;
        let record = AttestationRecord {
            format: "android_key".to_owned(),
            verdict: "accepted".to_owned(),
            attestation_security_level: Some(level_text(kd.attestation_security_level)),
            keymint_security_level: Some(level_text(kd.keymint_security_level)),
            attestation_version: Some(kd.attestation_version),
            checks: serde_json::to_value(&verification.checks).map_err(anyhow::Error::from)?,
            key_description: Some(serde_json::to_value(kd).map_err(anyhow::Error::from)?),
            verified_at: now_secs.saturating_mul(1000),
        };
        Ok((verification, record))
    }
}

/// The certificates of one or more PEM blocks.
fn pem_bodies(text: &str) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("-----BEGIN") {
            inside = true;
            body.clear();
        } else if line.starts_with("-----END") {
            if !inside {
                return None;
            }
            inside = false;
            out.push(
                base64::engine::general_purpose::STANDARD
                    .decode(&body)
                    .ok()?,
            );
        } else if inside {
            body.push_str(line);
        }
    }
    (!inside && !out.is_empty()).then_some(out)
}

/// One line per check, for the device's `attestation_notes`.
pub fn notes(verification: &Verification) -> Vec<String> {
    let mut out = vec![format!(
        "format android_key: attestation version {}, {} / KeyMint {}",
        verification.key_description.attestation_version,
        level_text(verification.key_description.attestation_security_level),
        level_text(verification.key_description.keymint_security_level),
    )];
    out.extend(verification.checks.iter().map(|c| {
        let outcome = match c.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skipped",
        };
        format!("{}: {outcome}: {}", c.name, c.reason)
    }));
    out
}

impl AndroidPolicy {
    /// The policy from configuration.
    ///
    /// # Errors
    /// An unknown security level or a digest that is not 64 hex digits.
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Self> {
        let list = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let required_security_level =
            SecurityLevel::parse(&config.android_attestation_security_level).ok_or_else(|| {
                anyhow::anyhow!(
                    "ANDROID_ATTESTATION_SECURITY_LEVEL must be tee, strongbox or software"
                )
            })?;
        let mut digests = Vec::new();
        for digest in list(&config.android_attestation_allowed_digests) {
            let bytes = hex::decode(&digest)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "ANDROID_ATTESTATION_ALLOWED_DIGESTS: {digest:?} is not a SHA-256 in hex"
                    )
                })?;
            digests.push(bytes);
        }
        Ok(Self {
            allowed_packages: list(&config.android_attestation_allowed_packages),
            allowed_signing_digests: digests,
            required_security_level,
            revocation_list: config.android_attestation_revocation_list.clone(),
            revocation_max_age_secs: i64::try_from(
                config.android_attestation_revocation_max_age_secs,
            )
            .unwrap_or(i64::MAX),
            allow_unlocked_bootloader: config.android_attestation_allow_unlocked_bootloader,
        })
    }
}

/// The testing-only extra roots from configuration.
pub fn extra_roots(config: &crate::config::Config) -> Vec<PathBuf> {
    config
        .android_attestation_extra_roots_for_testing
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The record stored for the software format (its checks are fixed by the format).
pub fn software_record(now: UnixMillis) -> AttestationRecord {
    AttestationRecord {
        format: "software".to_owned(),
        verdict: "accepted".to_owned(),
        attestation_security_level: None,
        keymint_security_level: None,
        attestation_version: None,
        checks: serde_json::json!([
            {"name": "signature_over_challenge", "outcome": "pass",
             "reason": "signature over the challenge verified with the device key"},
            {"name": "software_format_allowed", "outcome": "pass",
             "reason": "policy allows the software attestation format"},
            {"name": "hardware_backed_key", "outcome": "skipped",
             "reason": "not proven by the software format"}
        ]),
        key_description: None,
        verified_at: now,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::Config;

    fn config(args: &[&str]) -> Config {
        let mut all = vec!["softpos-server"];
        all.extend_from_slice(args);
        Config::parse_from(all)
    }

    #[test]
    fn policy_from_configuration() {
        let policy = AndroidPolicy::from_config(&config(&[
            "--android-attestation-allowed-packages",
            " com.a , com.b ,",
            "--android-attestation-allowed-digests",
            &"AB".repeat(32),
            "--android-attestation-security-level",
            "strongbox",
        ]))
        .unwrap();
        assert_eq!(policy.allowed_packages, vec!["com.a", "com.b"]);
        assert_eq!(policy.allowed_signing_digests, vec![vec![0xab; 32]]);
        assert_eq!(policy.required_security_level, SecurityLevel::StrongBox);
        assert!(!policy.allow_unlocked_bootloader);
        let defaults = AndroidPolicy::from_config(&config(&[])).unwrap();
        assert_eq!(
            defaults.required_security_level,
            SecurityLevel::TrustedEnvironment
        );
        assert!(defaults.revocation_list.is_none());
        assert!(extra_roots(&config(&[])).is_empty());
    }

    #[test]
    fn bad_policy_configuration_is_refused() {
        for args in [
            &["--android-attestation-security-level", "high"][..],
            &["--android-attestation-allowed-digests", "abcd"][..],
            &["--android-attestation-allowed-digests", &"zz".repeat(32)][..],
        ] {
            assert!(
                AndroidPolicy::from_config(&config(args)).is_err(),
                "{args:?}"
            );
        }
    }

    #[test]
    fn pem_text_with_several_blocks() {
        let text = "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n\
                    -----BEGIN CERTIFICATE-----\nBAU=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_bodies(text).unwrap(),
            vec![vec![0, 1, 2, 3], vec![4, 5]]
        );
        assert!(pem_bodies("-----BEGIN CERTIFICATE-----\nAAEC\n").is_none());
        assert!(pem_bodies("-----BEGIN CERTIFICATE-----\n%%\n-----END CERTIFICATE-----").is_none());
        assert!(pem_bodies("no blocks").is_none());
    }
}
