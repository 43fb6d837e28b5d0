//! The verdict: chain checks, then policy checks on the KeyDescription, each a named
//! [`Check`]; accepted only when none failed.

use serde::Serialize;

use crate::chain::{ChainCert, TrustAnchors, parse_chain};
use crate::error::Error;
use crate::key_description::{
    KEY_DESCRIPTION_OID, KeyDescription, SecurityLevel, VerifiedBootState,
};
use crate::revocation::RevocationList;

/// What the relying party requires.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The challenge the verifier issued; `None` skips the check (offline inspection only).
    pub expected_challenge: Option<Vec<u8>>,
    /// Package names allowed to own the key; empty skips the check.
    pub allowed_packages: Vec<String>,
    /// SHA-256 digests of allowed app signing certificates; empty skips the check.
    pub allowed_signing_digests: Vec<Vec<u8>>,
    /// Lowest acceptable security level, for both attestation and KeyMint.
    pub required_security_level: SecurityLevel,
    /// Refuse anything but `VERIFIED` boot.
    pub require_verified_boot: bool,
    /// Refuse unlocked bootloaders.
    pub require_device_locked: bool,
    /// Oldest acceptable revocation list, seconds.
    pub max_revocation_age_secs: i64,
    /// Refuse when no revocation list is supplied.
    pub require_revocation_list: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            expected_challenge: None,
            allowed_packages: Vec::new(),
            allowed_signing_digests: Vec::new(),
            required_security_level: SecurityLevel::TrustedEnvironment,
            require_verified_boot: true,
            require_device_locked: true,
            max_revocation_age_secs: 24 * 3600,
            require_revocation_list: false,
        }
    }
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Satisfied.
    Pass,
    /// Not satisfied: the verdict is a refusal.
    Fail,
    /// Not asked for by the policy.
    Skipped,
}

/// One named check with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name (`chain_to_google_root`, `challenge_matches`, …).
    pub name: &'static str,
    /// Outcome.
    pub outcome: Outcome,
    /// Why, in a sentence (no key material).
    pub reason: String,
}

/// One certificate of the chain, for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Subject.
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// Serial, lowercase hex without leading zeros.
    pub serial: String,
    /// Not before, Unix seconds.
    pub not_before: i64,
    /// Not after, Unix seconds.
    pub not_after: i64,
    /// Carries a KeyDescription.
    pub has_key_description: bool,
}

/// The verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// No check failed.
    pub accepted: bool,
    /// The instant the chain was judged at, Unix seconds.
    pub verified_at: i64,
    /// Index of the attestation certificate (0 unless something was placed before it).
    pub attestation_certificate: usize,
    /// The attestation certificate's KeyDescription.
    pub key_description: KeyDescription,
    /// The leaf's public key: SEC1 point for EC keys, empty otherwise.
    #[serde(with = "crate::hexser")]
    pub leaf_public_key: Vec<u8>,
    /// `ec_p256`, `ec_p384`, `rsa` or `other`.
    pub leaf_key_type: &'static str,
    /// Every check, in order.
    pub checks: Vec<Check>,
    /// The chain, leaf first.
    pub chain: Vec<CertSummary>,
}

impl Verification {
    /// Failed checks.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.outcome == Outcome::Fail)
    }

    /// A check by name.
    #[must_use]
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, name: &'static str, outcome: Outcome, reason: impl Into<String>) {
        self.0.push(Check {
            name,
            outcome,
            reason: reason.into(),
        });
    }

    fn pass_if(
        &mut self,
        name: &'static str,
        ok: bool,
        pass: impl Into<String>,
        fail: impl Into<String>,
    ) {
        if ok {
            self.add(name, Outcome::Pass, pass);
        } else {
            self.add(name, Outcome::Fail, fail);
        }
    }
}

/// Reads a PEM or DER chain and verifies it (see [`verify`]).
///
/// # Errors
/// Input that cannot be judged: see [`Error`].
pub fn verify_bytes(
    input: &[u8],
    anchors: &TrustAnchors,
    policy: &Policy,
    revocations: Option<&RevocationList>,
    at: i64,
) -> Result<Verification, Error> {
    let chain = parse_chain(input)?;
    verify(&chain, anchors, policy, revocations, at)
}

/// Verifies a chain (leaf first) at the instant `at` (Unix seconds).
///
/// # Errors
/// [`Error::NoAttestationExtension`], [`Error::BadKeyDescription`]; everything else is a
/// check in the returned [`Verification`].
pub fn verify(
    chain: &[ChainCert],
    anchors: &TrustAnchors,
    policy: &Policy,
    revocations: Option<&RevocationList>,
    at: i64,
) -> Result<Verification, Error> {
    // The attestation certificate is the one the secure hardware's provisioned key signed:
    // the extension-bearing certificate nearest the root. Anything before it was signed by an
    // attested key the app controls (the "chain extension" attack), so it is refused.
    let attestation_index = chain
        .iter()
        .rposition(|c| c.extension(KEY_DESCRIPTION_OID).is_some())
        .ok_or(Error::NoAttestationExtension)?;
    let extension = chain[attestation_index]
        .extension(KEY_DESCRIPTION_OID)
        .ok_or(Error::NoAttestationExtension)?;
    let key_description = KeyDescription::parse(extension)?;
    let mut checks = Checks(Vec::new());

    checks.pass_if(
        "attestation_certificate_is_leaf",
        attestation_index == 0,
        "the leaf carries the KeyDescription",
        format!(
            "{attestation_index} certificate(s) come after the attestation certificate; chains \
             extended below it are refused"
        ),
    );

    let unchained: Vec<usize> = chain
        .windows(2)
        .enumerate()
        .filter(|(_, pair)| !pair[0].issued_by(&pair[1]))
        .map(|(i, _)| i)
        .collect();
    checks.pass_if(
        "chain_issuer_subject",
        unchained.is_empty(),
        "each issuer names the next certificate's subject",
        format!("issuer of certificate(s) {unchained:?} is not the next certificate's subject"),
    );

    let mut bad_signatures: Vec<usize> = chain
        .windows(2)
        .enumerate()
        .filter(|(_, pair)| !pair[0].signed_by(pair[1].public_key()))
        .map(|(i, _)| i)
        .collect();

    // Anchors are keys: the last certificate either holds an anchor key (and must be
    // self-signed by it) or was signed by one (root omitted).
    let last = chain.len() - 1;
    let root = &chain[last];
    let anchor = match anchors.matching(root.public_key()) {
        Some(name) => {
            if !root.signed_by(root.public_key()) {
                bad_signatures.push(last);
            }
            Some(name.to_owned())
        }
        None => anchors.signer_of(root).map(str::to_owned),
    };
    checks.pass_if(
        "chain_signatures",
        bad_signatures.is_empty(),
        "every certificate verifies under its issuer's key",
        format!("signature of certificate(s) {bad_signatures:?} does not verify"),
    );
    checks.pass_if(
        "chain_to_google_root",
        anchor.is_some(),
        format!(
            "chain ends at trust anchor {}",
            anchor.as_deref().unwrap_or("")
        ),
        format!(
            "the last certificate ({}) neither holds nor is signed by a trusted root key",
            root.subject()
        ),
    );

    // The leaf's dates are not enforced (KeyMint writes placeholder dates); issuers' are.
    let expired: Vec<usize> = chain
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, cert)| {
            let (from, to) = cert.validity();
            at < from || at > to
        })
        .map(|(i, _)| i)
        .collect();
    checks.pass_if(
        "chain_validity",
        expired.is_empty(),
        "every issuing certificate is valid at the verification time",
        format!("certificate(s) {expired:?} are not valid at {at} (Unix seconds)"),
    );

    policy_checks(&mut checks, &key_description, policy);
    revocation_checks(&mut checks, chain, policy, revocations, at);

    let leaf = &chain[0];
    let (leaf_key_type, leaf_public_key) = key_of(leaf);
    let summaries = chain
        .iter()
        .map(|cert| {
            let (not_before, not_after) = cert.validity();
            CertSummary {
                subject: cert.subject(),
                issuer: cert.issuer(),
                serial: cert.serial_hex(),
                not_before,
                not_after,
                has_key_description: cert.extension(KEY_DESCRIPTION_OID).is_some(),
            }
        })
        .collect();
    let checks = checks.0;
    Ok(Verification {
        accepted: checks.iter().all(|c| c.outcome != Outcome::Fail),
        verified_at: at,
        attestation_certificate: attestation_index,
        key_description,
        leaf_public_key,
        leaf_key_type,
        checks,
        chain: summaries,
    })
}

fn key_of(cert: &ChainCert) -> (&'static str, Vec<u8>) {
    let key = cert.public_key();
    match key.algorithm.oid.to_string().as_str() {
        "1.2.840.10045.2.1" => {
            let curve = key
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .map(|oid| oid.to_string());
            let kind = match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ec_p256",
                Some("1.3.132.0.34") => "ec_p384",
                _ => "other",
            };
            (kind, key.subject_public_key.raw_bytes().to_vec())
        }
        "1.2.840.113549.1.1.1" => ("rsa", Vec::new()),
        _ => ("other", Vec::new()),
    }
}

fn level_name(level: SecurityLevel) -> &'static str {
    match level {
        SecurityLevel::Software => "SOFTWARE",
        SecurityLevel::TrustedEnvironment => "TRUSTED_ENVIRONMENT",
        SecurityLevel::StrongBox => "STRONG_BOX",
        SecurityLevel::Unknown => "UNKNOWN",
    }
}

fn policy_checks(checks: &mut Checks, kd: &KeyDescription, policy: &Policy) {
    match &policy.expected_challenge {
        Some(expected) => checks.pass_if(
            "challenge_matches",
            &kd.attestation_challenge == expected,
            "attestationChallenge equals the issued challenge",
            format!(
                "attestationChallenge ({} bytes) differs from the issued challenge ({} bytes)",
                kd.attestation_challenge.len(),
                expected.len()
            ),
        ),
        None => checks.add("challenge_matches", Outcome::Skipped, "no challenge given"),
    }

    let required = policy.required_security_level;
    for (name, what, level) in [
        (
            "security_level_attestation",
            "attestationSecurityLevel",
            kd.attestation_security_level,
        ),
        (
            "security_level_keymint",
            "keyMintSecurityLevel",
            kd.keymint_security_level,
        ),
    ] {
        checks.pass_if(
            name,
            level.rank() >= required.rank(),
            format!(
                "{what} {} meets {}",
                level_name(level),
                level_name(required)
            ),
            format!(
                "{what} {} is below the required {}",
                level_name(level),
                level_name(required)
            ),
        );
    }

    let rot = kd.root_of_trust();
    if policy.require_verified_boot {
        let state = rot.map(|r| r.verified_boot_state);
        checks.pass_if(
            "verified_boot_verified",
            state == Some(VerifiedBootState::Verified),
            "verifiedBootState is VERIFIED",
            match state {
                Some(state) => format!("verifiedBootState is {state:?}"),
                None => "no rootOfTrust in the KeyDescription".to_owned(),
            },
        );
    } else {
        checks.add(
            "verified_boot_verified",
            Outcome::Skipped,
            "not required by policy",
        );
    }
    if policy.require_device_locked {
        checks.pass_if(
            "device_locked",
            rot.is_some_and(|r| r.device_locked),
            "the bootloader is locked",
            if rot.is_some() {
                "the bootloader is unlocked"
            } else {
                "no rootOfTrust in the KeyDescription"
            },
        );
    } else {
        checks.add("device_locked", Outcome::Skipped, "not required by policy");
    }

    let app = kd.application_id();
    if policy.allowed_packages.is_empty() {
        checks.add(
            "package_allowed",
            Outcome::Skipped,
            "no package restriction",
        );
    } else {
        let names: Vec<&str> = app
            .map(|a| a.packages.iter().map(|p| p.name.as_str()).collect())
            .unwrap_or_default();
        checks.pass_if(
            "package_allowed",
            names
                .iter()
                .any(|n| policy.allowed_packages.iter().any(|a| a == n)),
            format!("attested package(s) {names:?} include an allowed one"),
            format!("attested package(s) {names:?} are not allowed"),
        );
    }
    if policy.allowed_signing_digests.is_empty() {
        checks.add(
            "signing_digest_allowed",
            Outcome::Skipped,
            "no signing digest restriction",
        );
    } else {
        let digests: Vec<String> = app
            .map(|a| a.signature_digests.iter().map(hex::encode).collect())
            .unwrap_or_default();
        checks.pass_if(
            "signing_digest_allowed",
            app.is_some_and(|a| {
                a.signature_digests
                    .iter()
                    .any(|d| policy.allowed_signing_digests.contains(d))
            }),
            "an attested signing certificate digest is allowed",
            format!("attested signing digest(s) {digests:?} are not allowed"),
        );
    }
}

fn revocation_checks(
    checks: &mut Checks,
    chain: &[ChainCert],
    policy: &Policy,
    revocations: Option<&RevocationList>,
    at: i64,
) {
    let Some(list) = revocations else {
        let outcome = if policy.require_revocation_list {
            Outcome::Fail
        } else {
            Outcome::Skipped
        };
        checks.add(
            "revocation_list_fresh",
            outcome,
            "no revocation list supplied",
        );
        checks.add("not_revoked", outcome, "no revocation list supplied");
        return;
    };
    let age = at - list.fetched_at();
    checks.pass_if(
        "revocation_list_fresh",
        age <= policy.max_revocation_age_secs,
        format!("revocation list is {age} s old"),
        format!(
            "revocation list is {age} s old, more than the allowed {} s",
            policy.max_revocation_age_secs
        ),
    );
    let revoked: Vec<String> = chain
        .iter()
        .enumerate()
        .filter_map(|(i, cert)| {
            list.lookup(&cert.serial_hex()).map(|entry| {
                format!(
                    "certificate {i} serial {} is {} ({})",
                    cert.serial_hex(),
                    entry.status,
                    entry.reason.as_deref().unwrap_or("no reason")
                )
            })
        })
        .collect();
    checks.pass_if(
        "not_revoked",
        revoked.is_empty(),
        format!("no certificate is on the list of {} entries", list.len()),
        revoked.join("; "),
    );
}
